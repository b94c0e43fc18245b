//! The only module that writes files. A tree of artifacts is written into a temporary
//! folder beside its destination and renamed into place, so a failed run leaves the old
//! output untouched and a reader never sees half a build.

pub mod golden;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::error::OutputError;

/// Replaces `dest` as a whole with `tree` (paths relative to `dest`).
///
/// # Errors
/// Any IO failure; `dest` then still holds what it held before.
pub fn replace_dir(dest: &Path, tree: &BTreeMap<PathBuf, String>) -> Result<(), OutputError> {
    let staged = stage(dest, tree)?;
    swap_into_place(staged.path(), dest)
}

/// Replaces only the given sub-folders of `dest` (e.g. `ape/dev`), leaving the rest alone.
///
/// # Errors
/// Any IO failure; folders not yet swapped keep their old contents.
pub fn replace_subdirs(
    dest: &Path,
    subdirs: &[PathBuf],
    tree: &BTreeMap<PathBuf, String>,
) -> Result<(), OutputError> {
    let staged = stage(dest, tree)?;
    for subdir in subdirs {
        let target = dest.join(subdir);
        let parent = target.parent().unwrap_or(dest);
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        swap_into_place(&staged.path().join(subdir), &target)?;
    }
    Ok(())
}

/// Writes one file through a temporary file beside it and a rename: readers see the old
/// file or the new one, never half of one.
///
/// # Errors
/// Any IO failure; `path` then still holds what it held before.
pub fn replace_file(path: &Path, contents: &str) -> Result<(), OutputError> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let mut staged = tempfile::Builder::new()
        .prefix(".berth-staging-")
        .tempfile_in(&parent)
        .map_err(io(&parent))?;
    std::io::Write::write_all(&mut staged, contents.as_bytes()).map_err(io(staged.path()))?;
    staged.persist(path).map_err(|e| OutputError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// Writes `tree` into a fresh temporary folder beside `dest` (same filesystem, so renames work).
fn stage(dest: &Path, tree: &BTreeMap<PathBuf, String>) -> Result<tempfile::TempDir, OutputError> {
    let parent = match dest.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let staged = tempfile::Builder::new()
        .prefix(".berth-staging-")
        .tempdir_in(&parent)
        .map_err(io(&parent))?;
    for (path, contents) in tree {
        if !is_safe_relative(path) {
            return Err(OutputError::UnsafePath { path: path.clone() });
        }
        let file = staged.path().join(path);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        std::fs::write(&file, contents).map_err(io(&file))?;
    }
    Ok(staged)
}

/// Moves `new` to `dest`; an existing `dest` is moved aside first and deleted afterwards.
fn swap_into_place(new: &Path, dest: &Path) -> Result<(), OutputError> {
    if !new.exists() {
        std::fs::create_dir_all(new).map_err(io(new))?;
    }
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let aside = tempfile::Builder::new()
        .prefix(".berth-old-")
        .tempdir_in(parent)
        .map_err(io(parent))?;
    let old = aside.path().join("old");
    let had_old = dest.exists();
    if had_old {
        std::fs::rename(dest, &old).map_err(io(dest))?;
    }
    if let Err(e) = std::fs::rename(new, dest) {
        if had_old {
            // Put the old tree back; the error below is what the user needs to see.
            let _ = std::fs::rename(&old, dest);
        }
        return Err(io(dest)(e));
    }
    Ok(())
}

fn is_safe_relative(path: &Path) -> bool {
    path.components()
        .all(|component| matches!(component, Component::Normal(_)))
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Every file below `dir`, keyed by its path relative to `dir`; empty if `dir` is missing.
///
/// # Errors
/// A file that cannot be read.
pub fn read_tree(dir: &Path) -> Result<BTreeMap<PathBuf, String>, OutputError> {
    let mut tree = BTreeMap::new();
    if !dir.exists() {
        return Ok(tree);
    }
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|e| OutputError::Io {
            path: dir.to_path_buf(),
            source: e.into(),
        })?;
        if entry.file_type().is_file() {
            let path = entry.path();
            let contents = std::fs::read_to_string(path).map_err(io(path))?;
            let relative = path.strip_prefix(dir).unwrap_or(path).to_path_buf();
            tree.insert(relative, contents);
        }
    }
    Ok(tree)
}
