//! berth's own records on the host, in the state folder: generations (what each successful
//! apply ran, so it can be run again), the lock that keeps two applies apart, and the
//! generated files containers bind-mount, stored by content hash. No secret value is ever
//! written here: a generation names the secrets a container used, with a keyed digest
//! (see [`super::secrets`]).
//!
//! With a remote engine the folder is on its host (see [`super::host_state`]) and `root`
//! is this command's working copy of it; `host_root` is where the host has it, which is
//! what bind mounts name.
//!
//! ```text
//! <state>/<stack>/lock
//! <state>/<stack>/files/<hash>/…            generated files a service mounts
//! <state>/<stack>/<profile>/generations/<n>/{generation.json, values.json, artifacts/…}
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ApplyError;
use super::backup::Taken;
use super::host::Host;
use super::spec::{Desired, hex};
use crate::render::Artifact;

/// The root of berth's state on this host.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
    /// Take the lock even when another berth holds it (`--break-lock`).
    break_lock: bool,
    /// The engine this state belongs to.
    host: Host,
    /// The folder on a remote engine's host that `root` is a copy of.
    host_root: Option<PathBuf>,
    /// Keeps the working copy of a remote state until the last clone is gone.
    _working_copy: Option<std::sync::Arc<tempfile::TempDir>>,
}

/// One recorded apply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Generation {
    pub number: u32,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// `apply`, or `rollback to N`.
    pub source: String,
    /// SHA-256 of the rendered artifacts: equal hashes, equal modules and profile.
    pub model_hash: String,
    /// Image ID each service ran.
    pub images: BTreeMap<String, String>,
    pub desired: Desired,
}

/// Holds the stack's lock until dropped (the OS releases it if the process dies).
#[derive(Debug)]
pub struct Lock {
    _file: fs::File,
}

impl StateDir {
    /// `explicit`, else `$BERTH_STATE_DIR`, else `$XDG_STATE_HOME/berth`, else
    /// `~/.local/state/berth`.
    pub fn locate(explicit: Option<&Path>) -> StateDir {
        let from_env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let root = explicit
            .map(Path::to_path_buf)
            .or_else(|| from_env("BERTH_STATE_DIR").map(PathBuf::from))
            .or_else(|| from_env("XDG_STATE_HOME").map(|d| PathBuf::from(d).join("berth")))
            .or_else(|| from_env("HOME").map(|home| PathBuf::from(home).join(".local/state/berth")))
            .unwrap_or_else(|| PathBuf::from(".berth-state"));
        StateDir {
            root,
            break_lock: false,
            host: Host::Local,
            host_root: None,
            _working_copy: None,
        }
    }

    /// The state of the engine at `host`: this folder for the local engine, a working
    /// copy of the host's `/var/lib/berth` for a remote one.
    ///
    /// # Errors
    /// The working copy cannot be made.
    pub fn on_host(self, host: Host) -> Result<StateDir, ApplyError> {
        if !host.is_remote() {
            return Ok(StateDir { host, ..self });
        }
        let working = tempfile::Builder::new()
            .prefix("berth-state-")
            .tempdir()
            .map_err(|e| io_error(&std::env::temp_dir(), e))?;
        Ok(StateDir {
            root: working.path().to_path_buf(),
            host,
            host_root: Some(PathBuf::from(super::host_state::HOST_ROOT)),
            _working_copy: Some(std::sync::Arc::new(working)),
            ..self
        })
    }

    /// The engine this state belongs to.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// True when the state lives on a remote engine's host.
    pub fn is_on_host(&self) -> bool {
        self.host_root.is_some()
    }

    /// `--break-lock`.
    pub fn breaks_lock(&self) -> bool {
        self.break_lock
    }

    /// Where the engine's host has the stack's stored files (what bind mounts name).
    pub fn files_root(&self, stack: &str) -> PathBuf {
        self.host_root
            .as_deref()
            .unwrap_or(&self.root)
            .join(stack)
            .join("files")
    }

    /// The working copy of a path on the engine's host (the path itself for the local
    /// engine).
    pub fn local_path(&self, on_host: &Path) -> PathBuf {
        match &self.host_root {
            Some(host_root) => match on_host.strip_prefix(host_root) {
                Ok(rest) => self.root.join(rest),
                Err(_) => on_host.to_path_buf(),
            },
            None => on_host.to_path_buf(),
        }
    }

    /// The same folder, whose lock is taken even when another berth holds it.
    pub fn breaking_lock(self, break_lock: bool) -> StateDir {
        StateDir { break_lock, ..self }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn stack_dir(&self, stack: &str) -> PathBuf {
        self.root.join(stack)
    }

    fn generations_dir(&self, stack: &str, profile: &str) -> PathBuf {
        self.stack_dir(stack).join(profile).join("generations")
    }

    /// The folder of generation `number`: its record, values and artifacts.
    pub fn generation_dir(&self, stack: &str, profile: &str, number: u32) -> PathBuf {
        self.generations_dir(stack, profile)
            .join(number.to_string())
    }

    /// Takes the stack's lock, or says who holds it and since when. With `break_lock`,
    /// takes it even so: the lock file is replaced, so the holder (gone, on another machine whose
    /// lock the network file system never released) keeps a lock on a file no one reads.
    ///
    /// # Errors
    /// Another apply holds it, or the state folder cannot be written.
    pub fn lock(&self, stack: &str) -> Result<Lock, ApplyError> {
        let dir = self.stack_dir(stack);
        create_dir(&dir)?;
        self.remove_old_plaintext(stack)?;
        let path = dir.join("lock");
        let open = || {
            fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| io_error(&path, e))
        };
        let mut file = open()?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) if self.break_lock => {
                tracing::warn!("breaking the lock of {}", path.display());
                fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
                file = open()?;
                match file.try_lock() {
                    Ok(()) => {}
                    Err(fs::TryLockError::WouldBlock) => return Err(locked(stack, &path)),
                    Err(fs::TryLockError::Error(e)) => return Err(io_error(&path, e)),
                }
            }
            Err(fs::TryLockError::WouldBlock) => return Err(locked(stack, &path)),
            Err(fs::TryLockError::Error(e)) => return Err(io_error(&path, e)),
        }
        file.set_len(0).map_err(|e| io_error(&path, e))?;
        writeln!(
            file,
            "pid {} on {} since {}",
            std::process::id(),
            host_name(),
            now()
        )
        .map_err(|e| io_error(&path, e))?;
        Ok(Lock { _file: file })
    }

    /// Removes what berth versions before secrets-at-rest left in plain text: the
    /// `<stack>/secrets/` folder of secret values, and the generations' `values.json`, which
    /// held every value, secrets included (rollback needs neither: a generation's spec has
    /// its values, and secrets come from the environment or the encrypted file). Says so.
    ///
    /// # Errors
    /// They cannot be removed.
    fn remove_old_plaintext(&self, stack: &str) -> Result<(), ApplyError> {
        let secrets = self.stack_dir(stack).join("secrets");
        if !secrets.is_dir() {
            return Ok(());
        }
        fs::remove_dir_all(&secrets).map_err(|e| io_error(&secrets, e))?;
        let mut removed = vec![secrets.display().to_string()];
        let Ok(profiles) = fs::read_dir(self.stack_dir(stack)) else {
            return Ok(());
        };
        for profile in profiles.filter_map(Result::ok) {
            let Ok(generations) = fs::read_dir(profile.path().join("generations")) else {
                continue;
            };
            for generation in generations.filter_map(Result::ok) {
                let values = generation.path().join("values.json");
                if values.is_file() {
                    fs::remove_file(&values).map_err(|e| io_error(&values, e))?;
                    removed.push(values.display().to_string());
                }
            }
        }
        tracing::warn!(
            "removed secret values an older berth kept in plain text: {}",
            removed.join(", ")
        );
        Ok(())
    }

    /// Where the generated files under `relative` (e.g. `prometheus`) are stored, by the
    /// hash of their paths and contents, so a service is recreated only when its own
    /// files change. `None` when no artifact lives there.
    pub fn files_path(
        &self,
        stack: &str,
        artifacts: &[Artifact],
        relative: &str,
    ) -> Option<PathBuf> {
        let relative = relative.trim_start_matches("./").trim_end_matches('/');
        let mine: Vec<&Artifact> = artifacts
            .iter()
            .filter(|a| a.path.starts_with(relative))
            .collect();
        if mine.is_empty() {
            return None;
        }
        let mut hasher = Sha256::new();
        for artifact in &mine {
            hasher.update(artifact.path.to_string_lossy().as_bytes());
            hasher.update([0]);
            hasher.update(artifact.contents.as_bytes());
            hasher.update([0]);
        }
        let hash = &hex(&hasher.finalize())[..16];
        Some(self.files_root(stack).join(hash).join(relative))
    }

    /// Writes the artifacts that `files_path` placed under `store_path`.
    ///
    /// # Errors
    /// The state folder cannot be written.
    pub fn store_files(
        &self,
        store_path: &Path,
        relative: &str,
        artifacts: &[Artifact],
    ) -> Result<(), ApplyError> {
        let store_path = &self.local_path(store_path);
        if store_path.exists() {
            return Ok(());
        }
        let relative = relative.trim_start_matches("./").trim_end_matches('/');
        let base = store_path
            .ancestors()
            .nth(Path::new(relative).components().count())
            .unwrap_or(store_path);
        for artifact in artifacts.iter().filter(|a| a.path.starts_with(relative)) {
            let path = base.join(&artifact.path);
            if let Some(parent) = path.parent() {
                create_dir(parent)?;
            }
            fs::write(&path, &artifact.contents).map_err(|e| io_error(&path, e))?;
        }
        Ok(())
    }

    fn backups_path(&self, stack: &str, profile: &str) -> PathBuf {
        self.stack_dir(stack).join(profile).join("backups.json")
    }

    /// The backups apply took before risky changes, oldest first.
    ///
    /// # Errors
    /// The record cannot be read.
    pub fn backups(&self, stack: &str, profile: &str) -> Result<Vec<Taken>, ApplyError> {
        let path = self.backups_path(stack, profile);
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| ApplyError::Corrupt {
                path,
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io_error(&path, e)),
        }
    }

    /// Adds backups to the record (written beside and renamed: whole or as it was).
    ///
    /// # Errors
    /// The state folder cannot be read or written.
    pub fn add_backups(
        &self,
        stack: &str,
        profile: &str,
        taken: &[Taken],
    ) -> Result<(), ApplyError> {
        if taken.is_empty() {
            return Ok(());
        }
        let mut all = self.backups(stack, profile)?;
        all.extend_from_slice(taken);
        // Backups apply pruned are no longer offered for restore.
        all.retain(|backup| backup.path.exists());
        let path = self.backups_path(stack, profile);
        if let Some(parent) = path.parent() {
            create_dir(parent)?;
        }
        let staging = path.with_extension("json.partial");
        let json = serde_json::to_string_pretty(&all).unwrap_or_default() + "\n";
        fs::write(&staging, json).map_err(|e| io_error(&staging, e))?;
        fs::rename(&staging, &path).map_err(|e| io_error(&path, e))
    }

    /// Every recorded generation of a stack and profile, oldest first.
    ///
    /// # Errors
    /// A generation record cannot be read.
    pub fn generations(&self, stack: &str, profile: &str) -> Result<Vec<Generation>, ApplyError> {
        let dir = self.generations_dir(stack, profile);
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(Vec::new());
        };
        let mut numbers: Vec<u32> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        numbers.sort_unstable();
        numbers
            .into_iter()
            .map(|n| self.generation(stack, profile, n))
            .collect()
    }

    /// Generation `number`, with the values it was applied with.
    ///
    /// # Errors
    /// No such generation, or its record cannot be read.
    pub fn generation(
        &self,
        stack: &str,
        profile: &str,
        number: u32,
    ) -> Result<Generation, ApplyError> {
        let path = self
            .generations_dir(stack, profile)
            .join(number.to_string())
            .join("generation.json");
        let text = fs::read_to_string(&path).map_err(|_| ApplyError::NoSuchGeneration {
            stack: stack.into(),
            profile: profile.into(),
            number,
        })?;
        serde_json::from_str(&text).map_err(|e| ApplyError::Corrupt {
            path,
            message: e.to_string(),
        })
    }

    /// The values of the variables that are no secret generation `number` was applied with.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn values(
        &self,
        stack: &str,
        profile: &str,
        number: u32,
    ) -> Result<BTreeMap<String, String>, ApplyError> {
        let path = self
            .generations_dir(stack, profile)
            .join(number.to_string())
            .join("values.json");
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            // Removed with an older berth's plain-text secrets (`remove_old_plaintext`).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(io_error(&path, e)),
        };
        serde_json::from_str(&text).map_err(|e| ApplyError::Corrupt {
            path,
            message: e.to_string(),
        })
    }

    /// Records a successful apply as the next generation: written in a staging folder and
    /// renamed into place, so a generation is whole or absent.
    ///
    /// # Errors
    /// The state folder cannot be written.
    pub fn record(
        &self,
        mut generation: Generation,
        values: &BTreeMap<String, String>,
        artifacts: &[Artifact],
    ) -> Result<u32, ApplyError> {
        let dir = self.generations_dir(&generation.desired.stack, &generation.desired.profile);
        create_dir(&dir)?;
        let number = self
            .generations(&generation.desired.stack, &generation.desired.profile)?
            .last()
            .map_or(1, |g| g.number + 1);
        generation.number = number;
        let staging = tempfile::Builder::new()
            .prefix(".staging-")
            .tempdir_in(&dir)
            .map_err(|e| io_error(&dir, e))?;
        let json = serde_json::to_string_pretty(&generation).unwrap_or_default() + "\n";
        let record = staging.path().join("generation.json");
        fs::write(&record, json).map_err(|e| io_error(&record, e))?;
        // No secrets, but still what this host's configuration is: the owner's only.
        let values_json = serde_json::to_string_pretty(values).unwrap_or_default() + "\n";
        write_private(&staging.path().join("values.json"), values_json.as_bytes())?;
        for artifact in artifacts {
            let path = staging.path().join("artifacts").join(&artifact.path);
            if let Some(parent) = path.parent() {
                create_dir(parent)?;
            }
            fs::write(&path, &artifact.contents).map_err(|e| io_error(&path, e))?;
        }
        let target = dir.join(number.to_string());
        let staged = staging.keep();
        fs::rename(&staged, &target).map_err(|e| io_error(&target, e))?;
        Ok(number)
    }
}

/// Who holds a lock and for how long, from the line its holder wrote.
fn locked(stack: &str, path: &Path) -> ApplyError {
    let line = fs::read_to_string(path).unwrap_or_default();
    let line = line.trim();
    let holder = match line.rsplit_once(" since ") {
        Some((who, since)) => match since.parse::<u64>() {
            Ok(since) => format!("{who}, for {}", age(now().saturating_sub(since))),
            Err(_) => line.to_string(),
        },
        None if line.is_empty() => "holder unknown".into(),
        None => line.to_string(),
    };
    ApplyError::Locked {
        stack: stack.to_string(),
        path: path.to_path_buf(),
        holder,
    }
}

/// `3h 2m`, `5m 10s` or `42s`.
pub(super) fn age(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m {}s", seconds / 60, seconds % 60),
        _ => format!("{}h {}m", seconds / 3600, seconds % 3600 / 60),
    }
}

pub(super) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(super) fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "an unknown host".into())
}

/// SHA-256 of a set of artifacts, the generation's model hash.
pub fn artifacts_hash(artifacts: &[Artifact]) -> String {
    let mut hasher = Sha256::new();
    for artifact in artifacts {
        hasher.update(artifact.path.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(artifact.contents.as_bytes());
        hasher.update([0]);
    }
    hex(&hasher.finalize())
}

fn create_dir(path: &Path) -> Result<(), ApplyError> {
    fs::create_dir_all(path).map_err(|e| io_error(path, e))
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), ApplyError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| io_error(path, e))?;
    file.write_all(contents).map_err(|e| io_error(path, e))
}

fn io_error(path: &Path, source: std::io::Error) -> ApplyError {
    ApplyError::State {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_berths_plain_text_secrets_are_removed_on_the_next_lock() {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = StateDir::locate(Some(dir.path()));
        let secret = dir.path().join("shop/secrets/0123abcd");
        let values = dir.path().join("shop/prod/generations/1/values.json");
        for (path, text) in [
            (&secret, "hunter2"),
            (&values, r#"{"DB_PASSWORD":"hunter2"}"#),
        ] {
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(path, text).expect("write");
        }
        let _lock = state.lock("shop").expect("lock");
        assert!(!dir.path().join("shop/secrets").exists());
        assert!(!values.exists());
        assert_eq!(
            state.values("shop", "prod", 1).expect("values"),
            BTreeMap::new()
        );
    }
}
