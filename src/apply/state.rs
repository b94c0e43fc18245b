//! berth's own records on the host, in the state folder: generations (what each successful
//! apply ran, so it can be run again), the lock that keeps two applies apart, and the files
//! containers bind-mount (generated configs, secrets), stored by content hash.
//!
//! ```text
//! <state>/<stack>/lock
//! <state>/<stack>/files/<hash>/…            generated files a service mounts
//! <state>/<stack>/secrets/<hash>            one secret value (folder mode 0700)
//! <state>/<stack>/<profile>/generations/<n>/{generation.json, values.json, artifacts/…}
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ApplyError;
use super::spec::{Desired, hex};
use super::values::Values;
use crate::render::Artifact;

/// The root of berth's state on this host.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
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
        StateDir { root }
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

    /// Takes the stack's lock, or says who holds it.
    ///
    /// # Errors
    /// Another apply holds it, or the state folder cannot be written.
    pub fn lock(&self, stack: &str) -> Result<Lock, ApplyError> {
        let dir = self.stack_dir(stack);
        create_dir(&dir)?;
        let path = dir.join("lock");
        let mut file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_error(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(&path).unwrap_or_default();
                let holder = if holder.trim().is_empty() {
                    "holder unknown".into()
                } else {
                    holder
                };
                return Err(ApplyError::Locked {
                    stack: stack.to_string(),
                    path,
                    holder: holder.trim().to_string(),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_error(&path, e)),
        }
        file.set_len(0).map_err(|e| io_error(&path, e))?;
        writeln!(file, "pid {}", std::process::id()).map_err(|e| io_error(&path, e))?;
        Ok(Lock { _file: file })
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
        Some(
            self.stack_dir(stack)
                .join("files")
                .join(hash)
                .join(relative),
        )
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

    /// The host file a secret value is mounted from.
    pub fn secret_path(&self, stack: &str, value: &str) -> PathBuf {
        let hash = &hex(&Sha256::digest(value.as_bytes()))[..16];
        self.stack_dir(stack).join("secrets").join(hash)
    }

    /// Writes a secret value to its file, readable by its owner only.
    ///
    /// # Errors
    /// The state folder cannot be written.
    pub fn store_secret(&self, path: &Path, value: &str) -> Result<(), ApplyError> {
        if path.exists() {
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            create_private_dir(parent)?;
        }
        // The folder keeps other host users out; inside the container the file must be
        // readable by whatever user the image runs as, as Compose makes its secrets.
        write_private(path, value.as_bytes())?;
        set_mode(path, 0o444)
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

    /// The variable values generation `number` was applied with.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn values(&self, stack: &str, profile: &str, number: u32) -> Result<Values, ApplyError> {
        let path = self
            .generations_dir(stack, profile)
            .join(number.to_string())
            .join("values.json");
        let text = fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
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
        values: &Values,
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
        // The values include secrets: readable by the owner only, like a filled-in .env.
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

fn create_private_dir(path: &Path) -> Result<(), ApplyError> {
    create_dir(path)?;
    set_mode(path, 0o700)
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

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<(), ApplyError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| io_error(path, e))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<(), ApplyError> {
    Ok(())
}

fn io_error(path: &Path, source: std::io::Error) -> ApplyError {
    ApplyError::State {
        path: path.to_path_buf(),
        source,
    }
}
