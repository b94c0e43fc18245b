//! The build cache: the result of building one stack with one profile (its artifacts, its
//! warnings) kept under a key that digests everything the build read, so that the same
//! inputs are never built twice. The key covers this build of berth, the stack and profile
//! selected, and every file of the import closure with the places Nickel looked for it
//! (`eval::inputs_digest`). An entry is one file, written through a temporary file and a
//! rename (two builds may write the same entry at once; either copy is whole), and carries
//! a digest of its body: a truncated or altered entry is ignored and rebuilt.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::eval::{self, Reads};
use crate::project::{ProfileRef, Project, StackRef};
use crate::render::Artifact;
use crate::render::fidelity::Warning;

/// What a build of this berth is: entries of another build are never read.
const BUILD_ID: &str = concat!(env!("CARGO_PKG_VERSION"), "-", env!("BERTH_BUILD_ID"));

/// The first line of every entry, before the digest of the rest.
const MAGIC: &str = "berth-cache-entry-1";

/// A cache folder, and the files read so far to compute keys.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    reads: Reads,
    /// Whether the project's modules passed the nesting check (see [`Cache::open`]).
    usable: bool,
}

/// The key of one stack × profile build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(String);

/// What is kept of a build.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub artifacts: Vec<Artifact>,
    pub warnings: Vec<Warning>,
    /// The profile asks for a strict build (its warnings are errors).
    pub strict: bool,
    /// Templates the build read (project-relative path → SHA-256 of their text): files
    /// outside the Nickel import closure, so the key cannot cover them; an entry whose
    /// templates changed is not reused.
    #[serde(default)]
    pub templates: std::collections::BTreeMap<String, String>,
}

/// The SHA-256 of a template's text, as [`Entry::templates`] records it.
pub fn template_digest(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

impl Cache {
    /// The cache at `dir` (created on the first write), for builds of `project`. A project
    /// holding a module nested too deep to evaluate uses no cache, so that every build
    /// reports it as an uncached one would.
    pub fn open(dir: &Path, project: &Project) -> Cache {
        Cache {
            dir: dir.join("builds"),
            reads: Reads::default(),
            usable: eval::modules_nest_shallowly(project),
        }
    }

    /// Where berth keeps its build cache by default (`builds/` below it).
    pub fn default_dir() -> PathBuf {
        crate::library::cache_base()
    }

    /// The key of building `stack` with `profile`; `None` when its inputs cannot be
    /// known without evaluating (then the build is not cached).
    pub fn key(&self, project: &Project, stack: &StackRef, profile: &ProfileRef) -> Option<Key> {
        if !self.usable {
            return None;
        }
        let inputs = eval::inputs_digest(project, stack, profile, &self.reads)?;
        let mut hasher = Sha256::new();
        for part in [BUILD_ID, &stack.name, profile.name()] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        hasher.update(inputs);
        Some(Key(hex(&hasher.finalize())))
    }

    /// The entry stored under `key`, if there is a whole one.
    pub fn get(&self, key: &Key) -> Option<Entry> {
        let path = self.path(key);
        let text = std::fs::read_to_string(&path).ok()?;
        match decode(&text) {
            Some(entry) => Some(entry),
            None => {
                tracing::warn!("{}: a damaged cache entry, rebuilt", path.display());
                None
            }
        }
    }

    /// Stores `entry` under `key`. A failure only costs the next build its reuse, so it
    /// is logged, not returned.
    pub fn put(&self, key: &Key, entry: &Entry) {
        let Ok(body) = serde_json::to_string(entry) else {
            return;
        };
        let text = format!("{MAGIC} {}\n{body}", hex(&Sha256::digest(body.as_bytes())));
        let path = self.path(key);
        if let Err(e) = crate::output::replace_file(&path, &text) {
            tracing::debug!("cache entry not written: {e}");
        }
    }

    fn path(&self, key: &Key) -> PathBuf {
        self.dir.join(&key.0[..2]).join(&key.0)
    }
}

/// The entry in `text`, when its digest matches its body.
fn decode(text: &str) -> Option<Entry> {
    let (header, body) = text.split_once('\n')?;
    let digest = header.strip_prefix(MAGIC)?.strip_prefix(' ')?;
    if digest != hex(&Sha256::digest(body.as_bytes())) {
        return None;
    }
    serde_json::from_str(body).ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            artifacts: vec![Artifact {
                path: PathBuf::from("compose.yaml"),
                contents: "services: {}\n".to_string(),
            }],
            warnings: Vec::new(),
            strict: false,
            templates: std::collections::BTreeMap::new(),
        }
    }

    fn encoded() -> String {
        let body = serde_json::to_string(&entry()).expect("json");
        format!("{MAGIC} {}\n{body}", hex(&Sha256::digest(body.as_bytes())))
    }

    #[test]
    fn a_whole_entry_reads_back() {
        assert_eq!(decode(&encoded()), Some(entry()));
    }

    #[test]
    fn a_truncated_or_altered_entry_is_refused() {
        let text = encoded();
        for cut in [0, MAGIC.len(), text.len() / 2, text.len() - 1] {
            assert_eq!(decode(&text[..cut]), None, "cut at {cut}");
        }
        assert_eq!(decode(&text.replace("services", "servicez")), None);
    }
}
