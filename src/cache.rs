//! The build cache: the result of building one stack with one profile (its artifacts, its
//! warnings) kept under a key that digests everything the build read, so that the same
//! inputs are never built twice. The key covers this build of berth, the stack and profile
//! selected, every file of the import closure with the places Nickel looked for it
//! (`eval::inputs_digest`), and the files the render read outside Nickel (the templates of
//! `files`).
//!
//! Which files a render reads is known only after evaluating, but it is a function of the
//! evaluated closure; so, as ccache's manifests do, the cache keeps under the closure's
//! digest either the result itself (a build that read nothing outside Nickel, the common
//! case: one file read on a hit) or the list of those outside files, and then the result
//! under one key that digests the closure and each listed file's bytes.
//!
//! An entry is one file, written through a temporary file and a rename (two builds may
//! write the same entry at once; either copy is whole), and carries a digest of its body:
//! a truncated or altered entry is ignored and rebuilt. The cache is pruned after a build
//! that stored something: entries unused for [`MAX_AGE`], then the least recently used
//! beyond a size cap ([`DEFAULT_MAX_BYTES`], `--cache-max-size`, `$BERTH_CACHE_MAX_SIZE`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::eval::{self, Reads};
use crate::project::{ProfileRef, Project, StackRef};
use crate::render::Artifact;
use crate::render::fidelity::Warning;

/// What a build of this berth is: entries of another build are never read.
const BUILD_ID: &str = concat!(env!("CARGO_PKG_VERSION"), "-", env!("BERTH_BUILD_ID"));

/// The first line of every entry, before the digest of the rest. Format 1 (before the key
/// covered templates) carried the templates' digests in the entry: such an entry is
/// ignored and rebuilt.
const MAGIC: &str = "berth-cache-entry-2";

/// An entry not used for this long is removed by the next pruning.
pub const MAX_AGE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The cache's size cap unless `--cache-max-size` or `$BERTH_CACHE_MAX_SIZE` says otherwise.
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;

/// A used entry's modification time, its last use for pruning, is brought forward when it
/// is older than this: a hit costs no write for entries used within the hour.
const TOUCH_AFTER: Duration = Duration::from_secs(60 * 60);

/// A file in the cache that is no entry (a temporary file left by a build that was killed
/// while writing) is removed once it is this old: a live build writes its temporary files
/// within seconds.
const STALE_TEMPORARY: Duration = Duration::from_secs(24 * 60 * 60);

/// A cache folder, and the files read so far to compute keys.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    reads: Reads,
    /// Whether the project's modules passed the nesting check (see [`Cache::open`]).
    usable: bool,
    /// The size cap, in bytes of entries.
    max_bytes: u64,
    /// Whether this run stored an entry (then [`Cache::prune`] has work to do).
    stored: AtomicBool,
}

/// The key of one stack × profile build, or of the closure it evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(String);

/// What is kept of a build.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub artifacts: Vec<Artifact>,
    pub warnings: Vec<Warning>,
    /// The profile asks for a strict build (its warnings are errors).
    pub strict: bool,
}

/// What an entry's file holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Stored {
    /// The result of a build that read nothing outside the closure.
    Built(Entry),
    /// The files (project-relative) a build of this closure read outside it: the result is
    /// under [`Key::with_reads`] of them.
    Reads(Vec<String>),
    /// The evaluation of this closure, under [`Key::evaluated`] (for `plan` and `apply`,
    /// which need the model a build entry does not keep).
    Evaluated(Box<eval::Evaluated>),
}

/// The cache's answer for one stack × profile.
#[derive(Debug)]
pub enum Lookup {
    /// Its inputs cannot be known without evaluating: build, and store nothing.
    Uncacheable,
    /// The result of a build with the same inputs.
    Hit(Entry),
    /// Build, then [`Cache::store`] under this closure key.
    Miss(Key),
}

impl Cache {
    /// The cache at `dir` (created on the first write), for builds of `project`, holding
    /// at most `max_bytes` of entries after pruning. A project holding a module nested too
    /// deep to evaluate uses no cache, so that every build reports it as an uncached one
    /// would.
    pub fn open(dir: &Path, project: &Project, max_bytes: u64) -> Cache {
        Cache {
            dir: dir.join("builds"),
            reads: Reads::default(),
            usable: eval::modules_nest_shallowly(project),
            max_bytes,
            stored: AtomicBool::new(false),
        }
    }

    /// Where berth keeps its build cache by default (`builds/` below it).
    pub fn default_dir() -> PathBuf {
        crate::library::cache_base()
    }

    /// The result kept for building `stack` with `profile`, or the key to store it under.
    pub fn lookup(&self, project: &Project, stack: &StackRef, profile: &ProfileRef) -> Lookup {
        let Some(closure) = self.closure_key(project, stack, profile) else {
            return Lookup::Uncacheable;
        };
        let found = match self.get(&closure) {
            Some(Stored::Built(entry)) => Some(entry),
            Some(Stored::Reads(paths)) => {
                let reads = paths
                    .iter()
                    .map(|path| (path.as_str(), project.read_template(path).ok()));
                match self.get(&closure.with_reads(reads)) {
                    Some(Stored::Built(entry)) => Some(entry),
                    _ => None,
                }
            }
            Some(Stored::Evaluated(_)) | None => None,
        };
        found.map_or(Lookup::Miss(closure), Lookup::Hit)
    }

    /// Stores `entry`, built from the closure of `closure` and `reads` (each file read
    /// outside it, project-relative, with the text the build used).
    pub fn store(&self, closure: &Key, reads: &BTreeMap<String, String>, entry: Entry) {
        if reads.is_empty() {
            self.put(closure, &Stored::Built(entry));
            return;
        }
        let key = closure.with_reads(
            reads
                .iter()
                .map(|(path, text)| (path.as_str(), Some(text.clone()))),
        );
        self.put(closure, &Stored::Reads(reads.keys().cloned().collect()));
        self.put(&key, &Stored::Built(entry));
    }

    /// The evaluation of `stack` with `profile` kept for the same inputs, else the one
    /// `evaluate` makes, kept for the next time (`plan` then `apply` evaluate once).
    ///
    /// # Errors
    /// `evaluate`'s.
    pub fn evaluated<E>(
        &self,
        project: &Project,
        stack: &StackRef,
        profile: &ProfileRef,
        evaluate: impl FnOnce() -> Result<eval::Evaluated, E>,
    ) -> Result<eval::Evaluated, E> {
        let Some(key) = self
            .closure_key(project, stack, profile)
            .map(|closure| closure.evaluated())
        else {
            return evaluate();
        };
        if let Some(Stored::Evaluated(evaluated)) = self.get(&key) {
            tracing::debug!(
                "{}/{}: evaluation reused from the cache",
                stack.name,
                profile.name()
            );
            return Ok(*evaluated);
        }
        let evaluated = evaluate()?;
        self.put(&key, &Stored::Evaluated(Box::new(evaluated.clone())));
        Ok(evaluated)
    }

    /// The digest of everything evaluating `stack` with `profile` reads; `None` when its
    /// inputs cannot be known without evaluating.
    fn closure_key(
        &self,
        project: &Project,
        stack: &StackRef,
        profile: &ProfileRef,
    ) -> Option<Key> {
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

    /// What is stored under `key`, if there is a whole entry. Its modification time is its
    /// last use for pruning, so a used entry older than [`TOUCH_AFTER`] is touched.
    fn get(&self, key: &Key) -> Option<Stored> {
        use std::io::Read;
        let path = self.path(key);
        let mut file = std::fs::File::open(&path).ok()?;
        let mut text = String::new();
        file.read_to_string(&mut text).ok()?;
        let Some(stored) = decode(&text) else {
            if text.starts_with("berth-cache-entry-") && !text.starts_with(MAGIC) {
                tracing::debug!("{}: an entry of another format, rebuilt", path.display());
            } else {
                tracing::warn!("{}: a damaged cache entry, rebuilt", path.display());
            }
            return None;
        };
        let now = SystemTime::now();
        let modified = file.metadata().and_then(|m| m.modified());
        if modified.is_ok_and(|time| now.duration_since(time).unwrap_or_default() > TOUCH_AFTER) {
            // Only the owner may set a time; another user's cache is still read.
            let _ = file.set_modified(now);
        }
        Some(stored)
    }

    /// Stores `stored` under `key`. A failure only costs the next build its reuse, so it
    /// is logged, not returned.
    fn put(&self, key: &Key, stored: &Stored) {
        let Ok(body) = serde_json::to_string(stored) else {
            return;
        };
        let text = format!("{MAGIC} {}\n{body}", hex(&Sha256::digest(body.as_bytes())));
        let path = self.path(key);
        match crate::output::replace_file(&path, &text) {
            Ok(()) => self.stored.store(true, Ordering::Relaxed),
            Err(e) => tracing::debug!("cache entry not written: {e}"),
        }
    }

    fn path(&self, key: &Key) -> PathBuf {
        self.dir.join(&key.0[..2]).join(&key.0)
    }

    /// After a run that stored an entry: removes entries unused for [`MAX_AGE`], then the
    /// least recently used until the rest fit the size cap. Safe beside other builds: an
    /// entry removed while one reads it was opened already or is a miss (rebuilt), and
    /// another build's temporary files are left alone until stale.
    pub fn prune(&self) {
        if self.stored.load(Ordering::Relaxed) {
            prune(&self.dir, self.max_bytes, SystemTime::now());
        }
    }
}

impl Key {
    /// The key of this closure's evaluation (a function of the closure alone: evaluating
    /// reads nothing outside it).
    fn evaluated(&self) -> Key {
        let mut hasher = Sha256::new();
        hasher.update(self.0.as_bytes());
        hasher.update(b"\0evaluated");
        Key(hex(&hasher.finalize()))
    }

    /// The key of a result built from this closure and the files read outside it
    /// (project-relative path, and text or `None` when unreadable).
    fn with_reads<'a>(&self, reads: impl Iterator<Item = (&'a str, Option<String>)>) -> Key {
        let mut hasher = Sha256::new();
        hasher.update(self.0.as_bytes());
        for (path, text) in reads {
            hasher.update([0]);
            hasher.update(path.as_bytes());
            hasher.update([0]);
            match text {
                Some(text) => {
                    hasher.update([1]);
                    hasher.update(Sha256::digest(text.as_bytes()));
                }
                None => hasher.update([0]),
            }
        }
        Key(hex(&hasher.finalize()))
    }
}

/// One file of the cache, as pruning sees it.
struct Found {
    path: PathBuf,
    used: SystemTime,
    bytes: u64,
}

/// Prunes the entries below `dir` (`<2 hex>/<key>`) as of `now` (see [`Cache::prune`]).
/// Folders are kept: removing one could race with a build about to write into it.
fn prune(dir: &Path, max_bytes: u64, now: SystemTime) {
    let age = |time: SystemTime| now.duration_since(time).unwrap_or_default();
    let mut entries = Vec::new();
    for shard in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(shard.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(metadata) = file.metadata() else {
                continue;
            };
            let Ok(used) = metadata.modified() else {
                continue;
            };
            let found = Found {
                path: file.path(),
                used,
                bytes: metadata.len(),
            };
            let is_entry = file.file_name().to_str().is_some_and(is_key);
            if !is_entry {
                if metadata.is_file() && age(used) > STALE_TEMPORARY {
                    remove(&found.path);
                }
            } else if age(used) > MAX_AGE {
                remove(&found.path);
            } else {
                entries.push(found);
            }
        }
    }
    // Most recently used first (the name breaks ties, so two prunings agree).
    entries.sort_by(|a, b| b.used.cmp(&a.used).then_with(|| a.path.cmp(&b.path)));
    let mut kept: u64 = 0;
    for entry in entries {
        kept = kept.saturating_add(entry.bytes);
        if kept > max_bytes {
            remove(&entry.path);
        }
    }
}

fn remove(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => tracing::debug!("{}: pruned from the cache", path.display()),
        // Another build pruned it first.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::debug!("{}: not pruned: {e}", path.display()),
    }
}

/// Whether `name` is a key: 64 lower-case hex digits.
fn is_key(name: &str) -> bool {
    name.len() == 64
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What `text` holds, when its digest matches its body.
fn decode(text: &str) -> Option<Stored> {
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
        }
    }

    fn encoded(magic: &str, body: &str) -> String {
        format!("{magic} {}\n{body}", hex(&Sha256::digest(body.as_bytes())))
    }

    fn built() -> String {
        let body = serde_json::to_string(&Stored::Built(entry())).expect("json");
        encoded(MAGIC, &body)
    }

    #[test]
    fn a_whole_entry_reads_back() {
        assert_eq!(decode(&built()), Some(Stored::Built(entry())));
        let reads = Stored::Reads(vec!["templates/motd.j2".to_string()]);
        let body = serde_json::to_string(&reads).expect("json");
        assert_eq!(decode(&encoded(MAGIC, &body)), Some(reads));
    }

    #[test]
    fn a_truncated_or_altered_entry_is_refused() {
        let text = built();
        for cut in [0, MAGIC.len(), text.len() / 2, text.len() - 1] {
            assert_eq!(decode(&text[..cut]), None, "cut at {cut}");
        }
        assert_eq!(decode(&text.replace("services", "servicez")), None);
    }

    /// Format 1 kept the templates' digests beside the result; its entries are whole and
    /// correctly digested, and still not read.
    #[test]
    fn an_entry_of_format_1_is_refused() {
        let body = r#"{"artifacts":[{"path":"compose.yaml","contents":"services: {}\n"}],"warnings":[],"strict":false,"templates":{}}"#;
        assert_eq!(decode(&encoded("berth-cache-entry-1", body)), None);
        // Not even relabelled: the old body is no `Stored`.
        assert_eq!(decode(&encoded(MAGIC, body)), None);
    }

    #[test]
    fn a_key_covers_each_read_and_its_state() {
        let closure = Key("a".repeat(64));
        let key = |reads: &[(&'static str, Option<&str>)]| {
            closure.with_reads(reads.iter().map(|(p, t)| (*p, t.map(str::to_string))))
        };
        let one = key(&[("t.j2", Some("one"))]);
        assert_ne!(one, closure);
        assert_eq!(one, key(&[("t.j2", Some("one"))]));
        assert_ne!(one, key(&[("t.j2", Some("two"))]));
        assert_ne!(one, key(&[("u.j2", Some("one"))]));
        assert_ne!(one, key(&[("t.j2", None)]));
        assert_ne!(key(&[("t.j2", Some(""))]), key(&[("t.j2", None)]));
        assert!(is_key(&one.0));
    }

    /// Writes a file of `bytes` bytes last used `age` before `now`.
    fn file_used(path: &Path, bytes: usize, now: SystemTime, age: Duration) {
        std::fs::create_dir_all(path.parent().expect("shard")).expect("mkdir");
        std::fs::write(path, vec![b'x'; bytes]).expect("write");
        let file = std::fs::File::options()
            .write(true)
            .open(path)
            .expect("open");
        file.set_modified(now - age).expect("set mtime");
    }

    #[test]
    fn pruning_removes_old_entries_then_the_least_recently_used_beyond_the_cap() {
        let dir = tempfile::tempdir().expect("dir");
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        let entry = |c: char| {
            dir.path()
                .join(format!("{c}{c}/{}", c.to_string().repeat(64)))
        };
        file_used(&entry('a'), 100, now, hour); // newest
        file_used(&entry('b'), 100, now, 2 * hour);
        file_used(&entry('c'), 100, now, 3 * hour); // beyond the cap
        file_used(&entry('d'), 10, now, MAX_AGE + hour); // unused too long
        let writing = dir.path().join("aa/.berth-staging-x1");
        let stale = dir.path().join("bb/.berth-staging-x2");
        file_used(&writing, 500, now, Duration::from_secs(1));
        file_used(&stale, 500, now, STALE_TEMPORARY + hour);
        prune(dir.path(), 250, now);
        let left: Vec<bool> = [
            entry('a'),
            entry('b'),
            entry('c'),
            entry('d'),
            writing,
            stale,
        ]
        .iter()
        .map(|path| path.exists())
        .collect();
        assert_eq!(left, [true, true, false, false, true, false]);
        // Within the cap, nothing recent goes.
        prune(dir.path(), 250, now);
        assert!(entry('a').exists() && entry('b').exists());
        prune(dir.path(), 0, now);
        assert!(!entry('a').exists() && !entry('b').exists());
        assert!(dir.path().join("aa").is_dir(), "folders are kept");
    }
}
