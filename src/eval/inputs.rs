//! Checks of the user's files before Nickel sees them. The stack and profile files must be
//! readable UTF-8 text: Nickel would only say it "could not find" them, naming berth's own
//! generated file. No module may nest deeper than [`scan::MAX_DEPTH`]: Nickel would abort
//! the process on a stack overflow.

use std::path::{Path, PathBuf};

use super::scan;
use crate::project::{ProfileRef, Project, StackRef};

/// Checks the stack and profile files, and the nesting of every module of the project.
///
/// # Errors
/// berth's report: `file[:line:col]: cause`, with a hint where one helps.
/// `nesting`: whether to check the nesting of every project module (not when it was
/// checked already for this run).
pub fn check(
    project: &Project,
    stack: &StackRef,
    profile: &ProfileRef,
    nesting: bool,
) -> Result<(), String> {
    read_module(project, &stack.path)?;
    if let ProfileRef::File { path, .. } = profile {
        read_module(project, path)?;
    }
    if nesting {
        check_nesting(project)?;
    }
    Ok(())
}

/// Checks the nesting of every module of the project.
///
/// # Errors
/// As [`check`].
pub fn check_nesting(project: &Project) -> Result<(), String> {
    for file in project_modules(project) {
        // A file berth cannot read is reported if and when something imports it.
        if let Ok(source) = std::fs::read_to_string(&file) {
            check_depth(project, &file, &source)?;
        }
    }
    Ok(())
}

/// The text of a module, or what is wrong with the file.
///
/// # Errors
/// `file: cause` for a file that cannot be read, `file:line:col: not UTF-8 text` for one
/// that is not text.
pub fn read_module(project: &Project, path: &Path) -> Result<String, String> {
    let shown = project.relative(path).display().to_string();
    let bytes = std::fs::read(path).map_err(|e| format!("{shown}: {}", describe(path, &e)))?;
    String::from_utf8(bytes).map_err(|e| {
        let (line, column, byte) = crate::error::not_utf8_at(&e);
        format!(
            "{shown}:{line}:{column}: not UTF-8 text (byte 0x{byte:02x})\n  hint: modules are UTF-8; convert the file, e.g. with iconv"
        )
    })
}

/// Why `path` could not be read, in the user's terms.
pub fn describe(path: &Path, error: &std::io::Error) -> String {
    if path.is_dir() {
        return "is a folder, not a file".to_string();
    }
    // ELOOP has no stable `ErrorKind`; its OS code is 40 on Linux.
    if error.raw_os_error() == Some(40) {
        return "a symlink loop (the link points back at itself)".to_string();
    }
    match error.kind() {
        std::io::ErrorKind::PermissionDenied => {
            "permission denied: berth cannot read it".to_string()
        }
        std::io::ErrorKind::NotFound if path.symlink_metadata().is_ok() => {
            "a symlink to a file that does not exist".to_string()
        }
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        _ => error.to_string(),
    }
}

fn check_depth(project: &Project, file: &Path, source: &str) -> Result<(), String> {
    match scan::scan(source).too_deep {
        None => Ok(()),
        Some(place) => Err(format!(
            "{}:{}:{}: nested more than {} levels deep (records, arrays, parentheses)\n  hint: berth refuses such nesting before evaluating it, as the evaluator would run out of stack",
            project.relative(file).display(),
            place.line,
            place.column,
            scan::MAX_DEPTH
        )),
    }
}

/// Every `.ncl` file under schemas/, modules/ and profiles/, sorted.
fn project_modules(project: &Project) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["schemas", "modules", "profiles"]
        .iter()
        .flat_map(|dir| walkdir::WalkDir::new(project.root().join(dir)).max_depth(8))
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_file())
        .map(walkdir::DirEntry::into_path)
        .filter(|path| path.extension().is_some_and(|ext| ext == "ncl"))
        .collect();
    files.sort();
    files
}
