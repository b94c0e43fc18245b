//! Brings an existing output folder to a new tree by touching only what differs: a file
//! whose bytes are already right is left as it is (its mtime too, so make and rsync see no
//! change), a changed or new one is staged beside the folder and renamed into place, a
//! stale one removed. The changes are one transaction: a failure at any step puts back
//! what was already changed, so the folder holds the old output or the new one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::{MARKER, io, is_safe_relative};
use crate::error::OutputError;

/// What has to change in an output folder.
#[derive(Debug, Default)]
pub(super) struct Plan<'a> {
    /// Folders to create, parents before children.
    dirs: Vec<PathBuf>,
    /// Files to write (new or changed), relative to the folder, the marker last.
    writes: Vec<(PathBuf, &'a str)>,
    /// Files to remove, relative to the folder.
    removals: Vec<PathBuf>,
}

impl Plan<'_> {
    pub(super) fn is_empty(&self) -> bool {
        self.dirs.is_empty() && self.writes.is_empty() && self.removals.is_empty()
    }
}

/// The changes that turn `dest` (holding `existing`) into `tree` plus the marker
/// `marker`, for the whole folder or, with `scope`, only the sub-folders listed.
/// `None` when a file must become a folder or the other way round: the caller then
/// replaces the folder as a whole.
///
/// # Errors
/// An unsafe artifact path, or a file that cannot be read for comparison.
pub(super) fn plan<'a>(
    dest: &Path,
    existing: &[PathBuf],
    tree: &'a BTreeMap<PathBuf, String>,
    marker: &'a str,
    scope: Option<&[PathBuf]>,
) -> Result<Option<Plan<'a>>, OutputError> {
    let mut plan = Plan::default();
    let mut dirs_seen = BTreeSet::new();
    let marker_path = PathBuf::from(MARKER);
    let files = tree
        .iter()
        .map(|(path, contents)| (path, contents.as_str()))
        .chain(std::iter::once((&marker_path, marker)));
    for (path, contents) in files {
        if !is_safe_relative(path) {
            return Err(OutputError::UnsafePath { path: path.clone() });
        }
        if !parents_are_folders(dest, path, &mut dirs_seen, &mut plan.dirs) {
            return Ok(None);
        }
        match differs(&dest.join(path), contents)? {
            Some(true) => plan.writes.push((path.clone(), contents)),
            Some(false) => {}
            None => return Ok(None),
        }
    }
    let in_scope =
        |path: &Path| scope.is_none_or(|dirs| dirs.iter().any(|dir| path.starts_with(dir)));
    plan.removals = existing
        .iter()
        .filter(|path| path.as_path() != Path::new(MARKER) && in_scope(path))
        .filter(|path| !tree.contains_key(*path))
        .cloned()
        .collect();
    Ok(Some(plan))
}

/// Applies `plan` to `dest`: every new content is written into a staging folder beside
/// `dest` first, then renamed into place; the files replaced or removed are kept in the
/// staging folder until the end, to be put back if a later step fails.
///
/// # Errors
/// Any IO failure; `dest` then holds what it held before.
pub(super) fn apply(dest: &Path, plan: &Plan<'_>) -> Result<(), OutputError> {
    let staging = super::staging_dir(dest)?;
    for (index, (_, contents)) in plan.writes.iter().enumerate() {
        let file = staging.path().join(index.to_string());
        std::fs::write(&file, contents).map_err(io(&file))?;
    }
    let mut undo = Vec::new();
    if let Err(e) = commit(dest, staging.path(), plan, &mut undo) {
        for step in undo.into_iter().rev() {
            // Best effort: the error below is what the user needs to see.
            let _ = step.revert();
        }
        return Err(e);
    }
    remove_emptied_dirs(dest, &plan.removals);
    Ok(())
}

/// One committed step and how to revert it.
enum Undo {
    /// A folder that was created.
    Created(PathBuf),
    /// A file that did not exist before.
    Added(PathBuf),
    /// A file that was replaced or removed: its old version is kept at `old`.
    Moved { old: PathBuf, path: PathBuf },
}

impl Undo {
    fn revert(self) -> std::io::Result<()> {
        match self {
            Undo::Created(dir) => std::fs::remove_dir(dir),
            Undo::Added(file) => std::fs::remove_file(file),
            Undo::Moved { old, path } => std::fs::rename(old, path),
        }
    }
}

fn commit(
    dest: &Path,
    staging: &Path,
    plan: &Plan<'_>,
    undo: &mut Vec<Undo>,
) -> Result<(), OutputError> {
    for dir in &plan.dirs {
        let dir = dest.join(dir);
        std::fs::create_dir(&dir).map_err(io(&dir))?;
        undo.push(Undo::Created(dir));
    }
    for (index, path) in plan.removals.iter().enumerate() {
        let path = dest.join(path);
        let old = staging.join(format!("removed-{index}"));
        std::fs::rename(&path, &old).map_err(io(&path))?;
        undo.push(Undo::Moved { old, path });
    }
    for (index, (path, _)) in plan.writes.iter().enumerate() {
        let path = dest.join(path);
        let new = staging.join(index.to_string());
        let old = staging.join(format!("old-{index}"));
        // A hard link keeps the old version for a rollback while the name still points
        // at it, so a reader never finds the file missing; rename() then swaps atomically.
        let kept = match std::fs::hard_link(&path, &old) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(_) => {
                std::fs::rename(&path, &old).map_err(io(&path))?;
                true
            }
        };
        std::fs::rename(&new, &path).map_err(io(&path))?;
        undo.push(if kept {
            Undo::Moved { old, path }
        } else {
            Undo::Added(path)
        });
    }
    Ok(())
}

/// Whether `path`'s folders inside `dest` are folders; records those to create in `dirs`.
fn parents_are_folders(
    dest: &Path,
    path: &Path,
    seen: &mut BTreeSet<PathBuf>,
    dirs: &mut Vec<PathBuf>,
) -> bool {
    let Some(parent) = path.parent() else {
        return true;
    };
    let ancestors: Vec<&Path> = parent
        .ancestors()
        .filter(|dir| !dir.as_os_str().is_empty())
        .collect();
    // Outermost first, so that a folder is created before the ones inside it.
    for dir in ancestors.into_iter().rev() {
        if !seen.insert(dir.to_path_buf()) {
            continue;
        }
        match std::fs::symlink_metadata(dest.join(dir)) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => return false,
            Err(_) => dirs.push(dir.to_path_buf()),
        }
    }
    true
}

/// Whether `file` must be written to hold `contents`: `Some(false)` when it is a regular
/// file with exactly those bytes, `None` when it is a folder.
fn differs(file: &Path, contents: &str) -> Result<Option<bool>, OutputError> {
    let metadata = match std::fs::symlink_metadata(file) {
        Ok(metadata) => metadata,
        Err(_) => return Ok(Some(true)),
    };
    if metadata.is_dir() {
        return Ok(None);
    }
    // A symlink is replaced by a file even when it points at the right bytes.
    if !metadata.is_file() || metadata.len() != contents.len() as u64 {
        return Ok(Some(true));
    }
    let found = std::fs::read(file).map_err(io(file))?;
    Ok(Some(found != contents.as_bytes()))
}

/// Removes the folders that `removals` left empty, innermost first (a folder still
/// holding anything stays).
fn remove_emptied_dirs(dest: &Path, removals: &[PathBuf]) {
    let mut dirs: BTreeSet<&Path> = BTreeSet::new();
    for path in removals {
        dirs.extend(
            path.ancestors()
                .skip(1)
                .filter(|dir| !dir.as_os_str().is_empty()),
        );
    }
    for dir in dirs.into_iter().rev() {
        let _ = std::fs::remove_dir(dest.join(dir));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> BTreeMap<PathBuf, String> {
        files
            .iter()
            .map(|(path, contents)| (PathBuf::from(path), (*contents).to_string()))
            .collect()
    }

    fn write(dest: &Path, files: &BTreeMap<PathBuf, String>) {
        for (path, contents) in files {
            let file = dest.join(path);
            std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
            std::fs::write(file, contents).expect("write");
        }
    }

    fn existing(dest: &Path) -> Vec<PathBuf> {
        super::super::read_tree(dest)
            .expect("read")
            .into_keys()
            .collect()
    }

    #[test]
    fn plans_only_what_differs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = tree(&[("a/same", "1\n"), ("a/changed", "old\n"), ("b/gone", "x\n")]);
        write(dir.path(), &old);
        let new = tree(&[
            ("a/same", "1\n"),
            ("a/changed", "new\n"),
            ("c/d/new", "n\n"),
        ]);
        let plan = plan(dir.path(), &existing(dir.path()), &new, "m\n", None)
            .expect("plan")
            .expect("no conflict");
        let writes: Vec<&Path> = plan.writes.iter().map(|(path, _)| path.as_path()).collect();
        assert_eq!(
            writes,
            [
                Path::new("a/changed"),
                Path::new("c/d/new"),
                Path::new(MARKER)
            ]
        );
        assert_eq!(plan.removals, [PathBuf::from("b/gone")]);
        assert_eq!(plan.dirs, [PathBuf::from("c"), PathBuf::from("c/d")]);
    }

    #[test]
    fn a_failed_step_puts_everything_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("out");
        let old = tree(&[("a/x", "old x\n"), ("b/gone", "g\n"), ("c/y", "old y\n")]);
        write(&dest, &old);
        let new = tree(&[("a/x", "new x\n"), ("c/y", "new y\n"), ("d/z", "z\n")]);
        let mut plan = plan(&dest, &existing(&dest), &new, "m\n", None)
            .expect("plan")
            .expect("no conflict");
        // A write whose target cannot exist (its folder is a file) fails after the others
        // were committed.
        plan.writes.push((PathBuf::from("a/x/impossible"), "!"));
        let error = apply(&dest, &plan).expect_err("the last write fails");
        assert!(error.to_string().contains("impossible"), "{error}");
        assert_eq!(super::super::read_tree(&dest).expect("read"), old);
        assert!(!dest.join("d").exists(), "a created folder stayed");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(leftovers, ["out"], "staging left behind");
    }
}
