//! The only module that writes files. A tree of artifacts is written into a temporary
//! folder beside its destination and renamed into place, so a failed run leaves the old
//! output untouched and a reader never sees half a file; into an existing output folder,
//! only the files that differ are written (`update`), as one transaction. berth deletes only what it
//! wrote: an output folder carries a marker listing berth's files ([`MARKER`]), and a
//! folder that is not berth's, or holds a file berth did not write, is refused untouched.

pub mod golden;
mod owned;
mod update;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::error::OutputError;

pub use owned::MARKER;

/// Makes `dest` hold exactly `tree` (paths relative to `dest`) and marks it as berth's
/// output. Only what differs is written: a file that already holds the right bytes is
/// not touched (see `update`). `project_root` is the project being built, which `dest`
/// must not hold.
///
/// # Errors
/// `dest` is not berth's to replace (see [`MARKER`]), or any IO failure; `dest` then
/// still holds what it held before.
pub fn replace_dir(
    dest: &Path,
    project_root: &Path,
    tree: &BTreeMap<PathBuf, String>,
) -> Result<(), OutputError> {
    let claimed = owned::claim(dest, project_root, tree, None)?;
    let marker = owned::marker(tree.keys());
    if claimed.exists
        && let Some(plan) = update::plan(dest, &claimed.existing, tree, &marker, None)?
    {
        return apply_plan(dest, &plan);
    }
    let mut marked = tree.clone();
    marked.insert(PathBuf::from(MARKER), marker);
    let staged = stage(dest, &marked)?;
    swap_into_place(staged.path(), dest)
}

/// Makes only the given sub-folders of `dest` (e.g. `ape/dev`) hold `tree`'s files,
/// leaving the rest alone, and adds their files to the marker. Only what differs is
/// written, as in [`replace_dir`].
///
/// # Errors
/// `dest` or one of the sub-folders is not berth's to replace, or any IO failure; `dest`
/// then still holds what it held before.
pub fn replace_subdirs(
    dest: &Path,
    project_root: &Path,
    subdirs: &[PathBuf],
    tree: &BTreeMap<PathBuf, String>,
) -> Result<(), OutputError> {
    let claimed = owned::claim(dest, project_root, tree, Some(subdirs))?;
    // Files of the folders replaced are now exactly `tree`'s; the others stay listed.
    let kept = claimed
        .listed
        .iter()
        .filter(|path| !subdirs.iter().any(|subdir| path.starts_with(subdir)));
    let listed: std::collections::BTreeSet<&PathBuf> = kept.chain(tree.keys()).collect();
    let marker = owned::marker(listed.into_iter());
    let scope = Some(subdirs);
    if claimed.exists
        && let Some(plan) = update::plan(dest, &claimed.existing, tree, &marker, scope)?
    {
        return apply_plan(dest, &plan);
    }
    let staged = stage(dest, tree)?;
    for subdir in subdirs {
        let target = dest.join(subdir);
        let parent = target.parent().unwrap_or(dest);
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        swap_into_place(&staged.path().join(subdir), &target)?;
    }
    replace_file(&dest.join(MARKER), &marker)
}

fn apply_plan(dest: &Path, plan: &update::Plan<'_>) -> Result<(), OutputError> {
    if plan.is_empty() {
        tracing::debug!("{}: every file is up to date", dest.display());
        return Ok(());
    }
    update::apply(dest, plan)
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

/// Puts `tree` at `dest` as a whole, for a folder several berth processes may create at
/// once (the library cache): when another process renamed its copy into place first, that
/// copy is kept, so a reader never sees the folder missing or half-written.
///
/// # Errors
/// Any IO failure.
pub fn install_dir(dest: &Path, tree: &BTreeMap<PathBuf, String>) -> Result<(), OutputError> {
    let staged = stage(dest, tree)?;
    if dest.exists() {
        return swap_into_place(staged.path(), dest);
    }
    match std::fs::rename(staged.path(), dest) {
        Ok(()) => Ok(()),
        Err(_) if dest.is_dir() => Ok(()),
        Err(e) => Err(io(dest)(e)),
    }
}

/// Writes `tree` as the new folder `dir`, which must not exist or be empty.
///
/// # Errors
/// `NotEmpty` when `dir` holds anything; any IO failure (nothing is then left behind).
pub fn write_new_dir(dir: &Path, tree: &BTreeMap<PathBuf, String>) -> Result<(), OutputError> {
    if !is_empty_or_missing(dir)? {
        return Err(OutputError::NotEmpty {
            path: dir.to_path_buf(),
        });
    }
    // Not an output folder: no marker, and nothing of the user's to protect in it.
    let staged = stage(dir, tree)?;
    swap_into_place(staged.path(), dir)
}

/// What [`write_new_files`] did with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    /// A file of that name was there already and was left as it was.
    Kept,
}

/// Writes each file of `tree` below `dir` unless a file of that name exists: an existing
/// file is never replaced, even when it appears between a check and the write (each file
/// is created with `create_new`, which the kernel refuses for an existing name).
///
/// # Errors
/// Any IO failure; files written before it stay.
pub fn write_new_files(
    dir: &Path,
    tree: &BTreeMap<PathBuf, String>,
) -> Result<Vec<(PathBuf, Written)>, OutputError> {
    let mut done = Vec::new();
    for (path, contents) in tree {
        if !is_safe_relative(path) {
            return Err(OutputError::UnsafePath { path: path.clone() });
        }
        let file = dir.join(path);
        let parent = file.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        done.push((path.clone(), write_new_file(&file, contents)?));
    }
    Ok(done)
}

/// Creates `file` with `contents` unless it exists (`create_new` refuses atomically).
fn write_new_file(file: &Path, contents: &str) -> Result<Written, OutputError> {
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(file);
    let mut handle = match opened {
        Ok(handle) => handle,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(Written::Kept),
        Err(e) => return Err(io(file)(e)),
    };
    if let Err(e) = std::io::Write::write_all(&mut handle, contents.as_bytes()) {
        // The file is ours, created a moment ago: leave nothing half-written behind.
        let _ = std::fs::remove_file(file);
        return Err(io(file)(e));
    }
    Ok(Written::Created)
}

/// Whether `dir` is missing or an empty folder.
///
/// # Errors
/// When `dir` exists but cannot be read.
pub fn is_empty_or_missing(dir: &Path) -> Result<bool, OutputError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io(dir)(e)),
    }
}

/// Writes `tree` into a fresh temporary folder beside `dest` (same filesystem, so renames
/// work), creating each folder once.
fn stage(dest: &Path, tree: &BTreeMap<PathBuf, String>) -> Result<tempfile::TempDir, OutputError> {
    let staged = staging_dir(dest)?;
    let mut dirs = std::collections::BTreeSet::new();
    for path in tree.keys() {
        if !is_safe_relative(path) {
            return Err(OutputError::UnsafePath { path: path.clone() });
        }
        let parents = path.ancestors().skip(1);
        dirs.extend(parents.filter(|dir| !dir.as_os_str().is_empty()));
    }
    // Sorted by components: a folder comes before the folders inside it.
    for dir in dirs {
        let dir = staged.path().join(dir);
        std::fs::create_dir(&dir).map_err(io(&dir))?;
    }
    for (path, contents) in tree {
        let file = staged.path().join(path);
        std::fs::write(&file, contents).map_err(io(&file))?;
    }
    Ok(staged)
}

/// A fresh, empty temporary folder beside `dest`, removed when dropped.
fn staging_dir(dest: &Path) -> Result<tempfile::TempDir, OutputError> {
    let parent = match dest.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    tempfile::Builder::new()
        .prefix(".berth-staging-")
        .tempdir_in(&parent)
        .map_err(io(&parent))
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
