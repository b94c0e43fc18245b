//! The standard library berth ships: this repository's `schemas/`, `modules/services/` and
//! `profiles/`, embedded at build time. Nickel resolves imports only from files, so the
//! library is materialised once per content into a cache folder named by its digest;
//! error reports then name its files `berth:schemas/service.ncl`, never the cache path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};

use crate::error::OutputError;

/// How reports name a library file: `berth:` then its path inside the library.
pub const PREFIX: &str = "berth:";

/// The berth version this binary is; a project's `berth.toml` is checked against it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The embedded folders, each with the path it has inside the library.
static FOLDERS: [(&str, Dir<'static>); 3] = [
    ("schemas", include_dir!("$CARGO_MANIFEST_DIR/schemas")),
    (
        "modules/services",
        include_dir!("$CARGO_MANIFEST_DIR/modules/services"),
    ),
    ("profiles", include_dir!("$CARGO_MANIFEST_DIR/profiles")),
];

/// Every library file, keyed by its path inside the library (`schemas/berth.ncl`,
/// `modules/services/postgres.ncl`, `profiles/dev.ncl`). Only `.ncl` files and the
/// modules' minijinja templates (`.j2`, named `berth:<path>` in a `files` entry) are part
/// of it.
pub fn files() -> BTreeMap<PathBuf, String> {
    let mut tree = BTreeMap::new();
    for (prefix, dir) in &FOLDERS {
        for file in dir.files() {
            let is_library = file
                .path()
                .extension()
                .is_some_and(|ext| ext == "ncl" || ext == "j2");
            // The library is written in UTF-8 Nickel and minijinja; anything else is not part of it.
            if let (true, Some(contents)) = (is_library, file.contents_utf8()) {
                tree.insert(Path::new(prefix).join(file.path()), contents.to_string());
            }
        }
    }
    tree
}

/// The library's folder in the cache, written on first use and rewritten when its files
/// differ from the embedded ones (edited by hand, or half-deleted).
///
/// # Errors
/// When the cache folder cannot be created or written.
pub fn materialise() -> Result<PathBuf, OutputError> {
    let tree = files();
    let dest = cache_base()
        .join("library")
        .join(format!("{VERSION}-{}", digest(&tree)));
    if !matches(&dest, &tree) {
        crate::output::install_dir(&dest, &tree)?;
    }
    Ok(dest)
}

/// Writes the library as files into `dir`, which must not exist or be empty.
///
/// # Errors
/// When `dir` holds files already, or cannot be written.
pub fn export(dir: &Path) -> Result<usize, OutputError> {
    let tree = files();
    crate::output::write_new_dir(dir, &tree)?;
    Ok(tree.len())
}

/// Where berth keeps its cache: `$BERTH_CACHE_DIR`, else `$XDG_CACHE_HOME/berth`, else
/// `~/.cache/berth`, else a folder in the system's temporary folder.
pub fn cache_base() -> PathBuf {
    let from_env = |name: &str| {
        std::env::var_os(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = from_env("BERTH_CACHE_DIR") {
        return dir;
    }
    if let Some(dir) = from_env("XDG_CACHE_HOME") {
        return dir.join("berth");
    }
    if let Some(home) = from_env("HOME") {
        return home.join(".cache/berth");
    }
    std::env::temp_dir().join("berth-cache")
}

/// The first 16 hex digits of a SHA-256 over every path and content, so two builds of
/// berth with different libraries never share a cache folder.
fn digest(tree: &BTreeMap<PathBuf, String>) -> String {
    let mut hasher = Sha256::new();
    for (path, contents) in tree {
        hasher.update(path.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(contents.as_bytes());
        hasher.update([0]);
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    hex[..16].to_string()
}

/// Whether `dir` holds exactly the library's files with the library's contents.
fn matches(dir: &Path, tree: &BTreeMap<PathBuf, String>) -> bool {
    crate::output::read_tree(dir).is_ok_and(|found| &found == tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeds_the_repository_library_and_nothing_else() {
        let tree = files();
        for path in [
            "schemas/berth.ncl",
            "schemas/service.ncl",
            "modules/services/postgres.ncl",
            "profiles/prod-lite.ncl",
        ] {
            let embedded = tree.get(Path::new(path)).expect(path);
            let on_disk = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
                .expect("read");
            assert_eq!(embedded, &on_disk, "{path}");
        }
        assert!(
            tree.keys().all(|path| !path.starts_with("modules/stacks")),
            "bundled stacks are not library"
        );
    }

    #[test]
    fn digest_changes_with_any_content() {
        let tree = files();
        let mut changed = tree.clone();
        if let Some(contents) = changed.get_mut(Path::new("schemas/berth.ncl")) {
            contents.push(' ');
        }
        assert_ne!(digest(&tree), digest(&changed));
        assert_eq!(digest(&tree), digest(&files()));
    }
}
