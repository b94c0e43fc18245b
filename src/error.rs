//! Errors of the build phases, each carrying the place in the user's files it is about.
//! This module sits at the bottom of the import graph: it names no other module of berth
//! (`berth::Error`, in lib.rs, wraps these and the errors of render, apply, import, init).
//! One format for all of them: `file:line:col: field.path: message`, then `hint:`.

use std::fmt;
use std::path::PathBuf;

/// Finding the project, its stacks and profiles.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "{root}: not a berth project: no `{missing}` folder\nhint: pass --root DIR, the folder that holds modules/stacks/, or start a project there with `berth init`"
    )]
    NotAProject {
        root: PathBuf,
        missing: &'static str,
    },
    /// `berth.toml` is unreadable or asks for another berth.
    #[error("{0}")]
    Manifest(Diagnostic),
    #[error(
        "cannot write berth's library into its cache: {0}\nhint: set BERTH_CACHE_DIR to a writable folder"
    )]
    Library(OutputError),
    #[error("unknown stack `{name}`\nhint: stacks in {dir}: {}", known.join(", "))]
    UnknownStack {
        name: String,
        dir: PathBuf,
        known: Vec<String>,
    },
    #[error("unknown profile `{name}`\nhint: profiles in {dir}: {}", known.join(", "))]
    UnknownProfile {
        name: String,
        dir: PathBuf,
        known: Vec<String>,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An environment variable berth reads holds no value it accepts.
    #[error("${name}: {message}")]
    Setting { name: &'static str, message: String },
    #[error("nothing to build: {}/ holds no `.ncl` file\nhint: {hint}", dir.display())]
    NothingToBuild { dir: PathBuf, hint: &'static str },
    #[error(
        "{}: `{stem}` cannot be a stack name (lower-case letters, digits, `-` and `_`, starting with a letter or digit)\nhint: rename the file, e.g. to {suggestion}.ncl",
        path.display()
    )]
    BadStackName {
        path: PathBuf,
        stem: String,
        suggestion: String,
    },
}

/// Nickel could not evaluate a stack with a profile: syntax, contract, merge errors.
/// `report` is Nickel's own diagnostic (file, line, column, the offending source).
#[derive(Debug, thiserror::Error)]
#[error("stack `{stack}` with profile `{profile}`: evaluation failed\n{report}")]
pub struct EvalError {
    pub stack: String,
    pub profile: String,
    pub report: String,
}

/// The evaluated stack does not hold together (broken references, cycles, port clashes…).
/// Every problem found is listed, not only the first.
#[derive(Debug, thiserror::Error)]
pub struct ModelError {
    pub stack: String,
    pub profile: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n_problems = self.diagnostics.len();
        let noun = if n_problems == 1 {
            "problem"
        } else {
            "problems"
        };
        write!(
            f,
            "stack `{}` with profile `{}`: {n_problems} {noun}",
            self.stack, self.profile
        )?;
        for diagnostic in &self.diagnostics {
            write!(f, "\n{diagnostic}")?;
        }
        Ok(())
    }
}

/// A strict build met fields a backend cannot carry.
#[derive(Debug, thiserror::Error)]
pub struct StrictError {
    pub stack: String,
    pub profile: String,
    /// Backend name and what it could not carry.
    pub problems: Vec<(String, Diagnostic)>,
}

impl fmt::Display for StrictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stack `{}` with profile `{}`: strict build, {} field(s) a backend cannot carry; nothing was written",
            self.stack,
            self.profile,
            self.problems.len()
        )?;
        for (backend, diagnostic) in &self.problems {
            write!(f, "\n{backend}: {diagnostic}")?;
        }
        write!(
            f,
            "\n  hint: change the fields, or build without --strict (and without `strict = true` in the profile) to accept these as warnings"
        )
    }
}

/// Writing artifacts or reading the golden tree.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: artifact path escapes the output folder", path.display())]
    UnsafePath { path: PathBuf },
    #[error("{}: not empty; berth writes only into a new or empty folder", path.display())]
    NotEmpty { path: PathBuf },
    #[error(
        "{}: the output folder holds the project itself; berth replaces its output folder as a whole\nhint: pass a folder of its own, e.g. --out out",
        dest.display()
    )]
    HoldsProject { dest: PathBuf },
    #[error(
        "{}: exists and is not a folder; nothing was written\nhint: pass a folder, e.g. --out out",
        dest.display()
    )]
    NotAFolder { dest: PathBuf },
    #[error(
        "{}: a folder berth did not write (it has no `{}`), and berth replaces its output folder as a whole; nothing was written\nhint: pass a new or empty folder, or remove this one yourself if it is an old berth output",
        dest.display(), marker
    )]
    NotOwned { dest: PathBuf, marker: &'static str },
    #[error(
        "{}: holds files berth did not write: {files}; a build would delete them, so nothing was written\nhint: move them out of the folder, then build again",
        dest.display()
    )]
    NotBerths { dest: PathBuf, files: String },
}

/// Where a file stops being UTF-8: 1-based line and column of the first bad byte, and the byte.
pub fn not_utf8_at(error: &std::string::FromUtf8Error) -> (usize, usize, u8) {
    let bytes = error.as_bytes();
    let valid = &bytes[..error.utf8_error().valid_up_to()];
    let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
    let column = valid.iter().rev().take_while(|b| **b != b'\n').count() + 1;
    (
        line,
        column,
        bytes.get(valid.len()).copied().unwrap_or_default(),
    )
}

/// A place in a source file. `file` is relative to the project root when it lies inside it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Location {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One problem with a field of the model.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diagnostic {
    /// Where the offending value was written, when berth could trace it.
    pub location: Option<Location>,
    /// Dotted field path, e.g. `services.api.depends_on.postgres`.
    pub field: String,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            location: None,
            field: field.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(location) = &self.location {
            write!(f, "{location}: ")?;
        }
        write!(f, "{}: {}", self.field, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}
