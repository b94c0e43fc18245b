//! Whether a folder is berth's to replace. berth owns an output folder it created: the
//! folder carries [`MARKER`], which lists every file berth wrote there. A folder without
//! it, one that holds the project, a regular file, or a file berth did not write inside
//! an owned folder is refused before anything changes: berth deletes only what it wrote.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::error::OutputError;

/// The marker file at the top of every output folder berth writes (and of golden/).
pub const MARKER: &str = ".berth-output";

const HEADER: &str = "# This folder is berth's output: every build replaces it.\n\
                      # The files berth wrote here; a file not listed stops the next build.\n";

/// At most this many unlisted files are named in the error; the rest are counted.
const N_NAMED: usize = 5;

/// What [`claim`] found in an output folder.
#[derive(Debug, Default)]
pub struct Claimed {
    /// The files the marker lists.
    pub listed: BTreeSet<PathBuf>,
    /// Every file (or symlink) below the folder, the marker included; empty when the
    /// folder does not exist.
    pub existing: Vec<PathBuf>,
    /// Whether the folder exists.
    pub exists: bool,
}

/// Checks that berth may write `tree` into `dest` (as a whole, or only `subdirs` of it)
/// and returns what is there.
///
/// # Errors
/// `dest` holds the project, is not a folder, is a non-empty folder without the marker,
/// or holds a file that neither the marker lists nor `tree` replaces.
pub fn claim(
    dest: &Path,
    project_root: &Path,
    tree: &BTreeMap<PathBuf, String>,
    subdirs: Option<&[PathBuf]>,
) -> Result<Claimed, OutputError> {
    let dest_resolved = resolve(dest);
    if resolve(project_root).starts_with(&dest_resolved) {
        return Err(OutputError::HoldsProject {
            dest: dest.to_path_buf(),
        });
    }
    let Ok(metadata) = std::fs::metadata(dest) else {
        // Nothing there yet (a dangling symlink is replaced like a missing folder).
        return Ok(Claimed::default());
    };
    if !metadata.is_dir() {
        return Err(OutputError::NotAFolder {
            dest: dest.to_path_buf(),
        });
    }
    let existing = files_below(dest)?;
    let marker_path = dest.join(MARKER);
    if !marker_path.is_file() {
        if existing.is_empty() {
            return Ok(Claimed {
                exists: true,
                ..Claimed::default()
            });
        }
        return Err(OutputError::NotOwned {
            dest: dest.to_path_buf(),
            marker: super::MARKER,
        });
    }
    let listed = parse(&std::fs::read_to_string(&marker_path).map_err(super::io(&marker_path))?);
    let in_scope =
        |path: &Path| subdirs.is_none_or(|dirs| dirs.iter().any(|d| path.starts_with(d)));
    let unlisted: Vec<PathBuf> = existing
        .iter()
        .filter(|path| path.as_path() != Path::new(MARKER) && in_scope(path))
        .filter(|path| !listed.contains(*path) && !tree.contains_key(*path))
        .cloned()
        .collect();
    if unlisted.is_empty() {
        Ok(Claimed {
            listed,
            existing,
            exists: true,
        })
    } else {
        Err(OutputError::NotBerths {
            dest: dest.to_path_buf(),
            files: named(&unlisted),
        })
    }
}

/// The marker's text: a header, then one path per line, `/`-separated, sorted.
pub fn marker<'a>(paths: impl Iterator<Item = &'a PathBuf>) -> String {
    let mut lines: Vec<String> = paths
        .map(|path| {
            path.components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect();
    lines.sort();
    lines.dedup();
    let mut text = HEADER.to_string();
    for line in lines {
        text.push_str(&line);
        text.push('\n');
    }
    text
}

fn parse(marker: &str) -> BTreeSet<PathBuf> {
    marker
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(PathBuf::from)
        .collect()
}

/// Every entry below `dir` that is not a folder (files, symlinks), relative to `dir`.
fn files_below(dir: &Path) -> Result<Vec<PathBuf>, OutputError> {
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let entry = entry.map_err(|e| OutputError::Io {
            path: dir.to_path_buf(),
            source: e.into(),
        })?;
        if !entry.file_type().is_dir() {
            let relative = entry.path().strip_prefix(dir).unwrap_or(entry.path());
            found.push(relative.to_path_buf());
        }
    }
    Ok(found)
}

/// `a, b, c (and 4 more)`.
fn named(files: &[PathBuf]) -> String {
    let mut text = files
        .iter()
        .take(N_NAMED)
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if files.len() > N_NAMED {
        text.push_str(&format!(" (and {} more)", files.len() - N_NAMED));
    }
    text
}

/// `path` made absolute with symlinks resolved as far as it exists, so that `out/..` and
/// a symlink to the project compare equal to the project.
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(canonical) = existing.canonicalize() {
            return rest
                .iter()
                .rev()
                .fold(canonical, |acc, part| acc.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return absolute,
        }
    }
}
