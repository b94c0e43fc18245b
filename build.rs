//! Rebuilds berth when a file of the embedded library changes: `include_dir!` reads the
//! folders at compile time, but cargo only knows to recompile when told to watch them.
//! Also names this build (`BERTH_BUILD_ID`, a hash of the sources that make berth's
//! output): the build cache must not reuse a result from a berth whose renderers differ
//! under the same version number.

use std::hash::{Hash as _, Hasher as _};
use std::path::Path;

fn main() {
    for dir in ["schemas", "modules/services", "profiles"] {
        println!("cargo:rerun-if-changed={dir}");
    }
    let inputs = [
        "src",
        "schemas",
        "modules/services",
        "profiles",
        "Cargo.toml",
        "Cargo.lock",
    ];
    let mut hasher = std::hash::DefaultHasher::new();
    for input in inputs {
        println!("cargo:rerun-if-changed={input}");
        hash_tree(Path::new(input), &mut hasher);
    }
    println!("cargo:rustc-env=BERTH_BUILD_ID={:016x}", hasher.finish());
}

/// Hashes every file below `path` (or `path` itself), names and contents, in name order.
fn hash_tree(path: &Path, hasher: &mut std::hash::DefaultHasher) {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for entry in entries {
            hash_tree(&entry, hasher);
        }
    } else if let Ok(bytes) = std::fs::read(path) {
        path.hash(hasher);
        bytes.hash(hasher);
    }
}
