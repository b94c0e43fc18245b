//! A berth project on disk: `schemas/`, `modules/` (with `modules/stacks/`) and `profiles/`
//! under one root. Finds stacks and profiles by name; reads nothing else.

use std::path::{Path, PathBuf};

use crate::error::LoadError;

/// The folders of a project, checked to exist.
#[derive(Debug, Clone)]
pub struct Project {
    root: PathBuf,
}

/// A stack module: `modules/stacks/<name>.ncl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackRef {
    pub name: String,
    pub path: PathBuf,
}

/// A profile overlay: `profiles/<name>.ncl`, or none at all (`--no-profile`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileRef {
    File { name: String, path: PathBuf },
    None,
}

/// The name berth uses for a build without a profile overlay.
pub const NO_PROFILE: &str = "none";

impl ProfileRef {
    pub fn name(&self) -> &str {
        match self {
            ProfileRef::File { name, .. } => name,
            ProfileRef::None => NO_PROFILE,
        }
    }
}

impl Project {
    /// Opens the project at `root`.
    ///
    /// # Errors
    /// `NotAProject` when one of the three folders is missing.
    pub fn open(root: &Path) -> Result<Project, LoadError> {
        let root = std::path::absolute(root).map_err(|source| LoadError::Io {
            path: root.into(),
            source,
        })?;
        for missing in ["schemas", "modules/stacks", "profiles"] {
            if !root.join(missing).is_dir() {
                return Err(LoadError::NotAProject { root, missing });
            }
        }
        Ok(Project { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Folders searched by `import "x.ncl"` after the importing file's own folder.
    pub fn import_paths(&self) -> Vec<PathBuf> {
        vec![self.root.join("schemas"), self.root.join("modules")]
    }

    /// Every stack, sorted by name.
    ///
    /// # Errors
    /// When `modules/stacks/` cannot be read.
    pub fn stacks(&self) -> Result<Vec<StackRef>, LoadError> {
        let entries = ncl_files(&self.root.join("modules/stacks"))?;
        Ok(entries
            .into_iter()
            .map(|(name, path)| StackRef { name, path })
            .collect())
    }

    /// Every profile, sorted by name.
    ///
    /// # Errors
    /// When `profiles/` cannot be read.
    pub fn profiles(&self) -> Result<Vec<ProfileRef>, LoadError> {
        let entries = ncl_files(&self.root.join("profiles"))?;
        Ok(entries
            .into_iter()
            .map(|(name, path)| ProfileRef::File { name, path })
            .collect())
    }

    /// The stacks named, or all of them when `names` is empty.
    ///
    /// # Errors
    /// `UnknownStack` naming the stacks that do exist.
    pub fn select_stacks(&self, names: &[String]) -> Result<Vec<StackRef>, LoadError> {
        let all = self.stacks()?;
        let selected = select(
            all,
            names,
            |stack| &stack.name,
            |name, known| LoadError::UnknownStack {
                name,
                dir: self.root.join("modules/stacks"),
                known,
            },
        )?;
        selected
            .iter()
            .try_for_each(|stack| self.check_stack_name(stack))?;
        Ok(selected)
    }

    /// A build must build something: an empty `modules/stacks/` or `profiles/` would
    /// otherwise replace the previous output with nothing, without a word.
    ///
    /// # Errors
    /// `NothingToBuild` naming the empty folder.
    pub fn require_something(
        &self,
        stacks: &[StackRef],
        profiles: &[ProfileRef],
    ) -> Result<(), LoadError> {
        if stacks.is_empty() {
            return Err(LoadError::NothingToBuild {
                dir: self
                    .relative(&self.root.join("modules/stacks"))
                    .to_path_buf(),
                hint: "add a stack module, e.g. with `berth import docker-compose.yml`",
            });
        }
        if profiles.is_empty() {
            return Err(LoadError::NothingToBuild {
                dir: self.relative(&self.root.join("profiles")).to_path_buf(),
                hint: "add a profile, or pass --no-profile to build without one",
            });
        }
        Ok(())
    }

    /// A stack's file name is its name, which lands in artifact paths, unit names and the
    /// headers that point back at the file; only names every backend can carry are built.
    fn check_stack_name(&self, stack: &StackRef) -> Result<(), LoadError> {
        if is_valid_name(&stack.name) {
            return Ok(());
        }
        let mut suggestion = normalized_name(&stack.name);
        if suggestion.is_empty() {
            suggestion = "stack".to_string();
        }
        Err(LoadError::BadStackName {
            path: self.relative(&stack.path).to_path_buf(),
            stem: stack.name.clone(),
            suggestion,
        })
    }

    /// The profiles named, or all of them when `names` is empty.
    ///
    /// # Errors
    /// `UnknownProfile` naming the profiles that do exist.
    pub fn select_profiles(&self, names: &[String]) -> Result<Vec<ProfileRef>, LoadError> {
        let all = self.profiles()?;
        select(
            all,
            names,
            |profile| profile.name(),
            |name, known| LoadError::UnknownProfile {
                name,
                dir: self.root.join("profiles"),
                known,
            },
        )
    }

    /// `path` relative to the project root when it lies inside it.
    pub fn relative<'a>(&self, path: &'a Path) -> &'a Path {
        path.strip_prefix(&self.root).unwrap_or(path)
    }
}

/// A name berth accepts for stacks, services, volumes and networks (the `Name` contract
/// of schemas/contracts.ncl): lower-case letters, digits, `-` and `_`, not starting with
/// `-` or `_`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// `name` made valid as far as possible: lower case, other characters as `-`, leading
/// `-` and `_` dropped (empty when nothing is left).
pub fn normalized_name(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            'a'..='z' | '0'..='9' | '-' | '_' => c,
            _ => '-',
        })
        .collect();
    mapped.trim_start_matches(['-', '_']).to_string()
}

fn select<T: Clone>(
    all: Vec<T>,
    names: &[String],
    name_of: impl Fn(&T) -> &str,
    unknown: impl Fn(String, Vec<String>) -> LoadError,
) -> Result<Vec<T>, LoadError> {
    if names.is_empty() {
        return Ok(all);
    }
    names
        .iter()
        .map(|wanted| {
            all.iter()
                .find(|item| name_of(item) == wanted)
                .cloned()
                .ok_or_else(|| {
                    unknown(
                        wanted.clone(),
                        all.iter().map(|item| name_of(item).to_string()).collect(),
                    )
                })
        })
        .collect()
}

/// `(stem, path)` of every `*.ncl` file directly in `dir`, sorted by stem.
fn ncl_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, LoadError> {
    let io_error = |source| LoadError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        let is_ncl = path.extension().is_some_and(|ext| ext == "ncl");
        if let (true, Some(stem)) = (is_ncl, path.file_stem().and_then(|s| s.to_str())) {
            found.push((stem.to_string(), path.clone()));
        }
    }
    found.sort();
    Ok(found)
}
