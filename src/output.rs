//! The only module that writes files. A tree of artifacts is written into a temporary
//! folder beside its destination and renamed into place, so a failed run leaves the old
//! output untouched and a reader never sees half a build. berth deletes only what it
//! wrote: an output folder carries a marker listing berth's files ([`MARKER`]), and a
//! folder that is not berth's, or holds a file berth did not write, is refused untouched.

pub mod golden;
mod owned;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::error::OutputError;

pub use owned::MARKER;

/// Replaces `dest` as a whole with `tree` (paths relative to `dest`), and marks it as
/// berth's output. `project_root` is the project being built, which `dest` must not hold.
///
/// # Errors
/// `dest` is not berth's to replace (see [`MARKER`]), or any IO failure; `dest` then
/// still holds what it held before.
pub fn replace_dir(
    dest: &Path,
    project_root: &Path,
    tree: &BTreeMap<PathBuf, String>,
) -> Result<(), OutputError> {
    owned::claim(dest, project_root, tree, None)?;
    let mut marked = tree.clone();
    marked.insert(PathBuf::from(MARKER), owned::marker(tree.keys()));
    let staged = stage(dest, &marked)?;
    swap_into_place(staged.path(), dest)
}

/// Replaces only the given sub-folders of `dest` (e.g. `ape/dev`), leaving the rest alone,
/// and adds their files to the marker.
///
/// # Errors
/// `dest` or one of the sub-folders is not berth's to replace, or any IO failure; folders
/// not yet swapped keep their old contents.
pub fn replace_subdirs(
    dest: &Path,
    project_root: &Path,
    subdirs: &[PathBuf],
    tree: &BTreeMap<PathBuf, String>,
) -> Result<(), OutputError> {
    let previous = owned::claim(dest, project_root, tree, Some(subdirs))?;
    let staged = stage(dest, tree)?;
    for subdir in subdirs {
        let target = dest.join(subdir);
        let parent = target.parent().unwrap_or(dest);
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        swap_into_place(&staged.path().join(subdir), &target)?;
    }
    // Files of the folders just replaced are now exactly `tree`'s; the others stay listed.
    let kept = previous
        .iter()
        .filter(|path| !subdirs.iter().any(|subdir| path.starts_with(subdir)));
    let listed: std::collections::BTreeSet<&PathBuf> = kept.chain(tree.keys()).collect();
    replace_file(&dest.join(MARKER), &owned::marker(listed.into_iter()))
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

/// Every file below `dir`, keyed by its path relative to `dir`, except berth's [`MARKER`];
/// empty if `dir` is missing.
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
        let path = entry.path();
        let relative = path.strip_prefix(dir).unwrap_or(path).to_path_buf();
        if entry.file_type().is_file() && relative != Path::new(MARKER) {
            let contents = std::fs::read_to_string(path).map_err(io(path))?;
            tree.insert(relative, contents);
        }
    }
    Ok(tree)
}
