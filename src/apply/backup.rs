//! Backups taken before apply recreates or removes a service that declares one: the same
//! command the systemd backup units run (`sh -c` in the running container, or, for an
//! offline dump, in a one-off container beside the stopped one, with its volumes), its
//! output kept gzip-compressed in the stack's backup folder under the number of the
//! generation whose data it holds, the newest few per service (older ones are removed
//! once a new one is whole). A backup that fails stops apply before anything has changed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ApplyError;
use super::converge::Progress;
use super::engine::{Engine, Status};
use super::plan::{Change, Plan};
use super::spec::{BackupSpec, Desired};
use super::state::Generation;

/// One backup berth took.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Taken {
    pub service: String,
    /// The generation the host ran when it was taken (0: none recorded).
    pub generation: u32,
    pub path: PathBuf,
    /// How to put it back, when the module declares a restore command.
    pub restore: Option<String>,
}

/// How many backups of a service apply keeps in its backup folder (`--keep-backups`).
pub const DEFAULT_KEEP: usize = 5;

/// Takes the backup of every service with one that `plan` recreates or removes (from its
/// first container), into `root` (default: the profile's backup folder), keeping the
/// newest `keep` of each service there.
///
/// # Errors
/// A backup that fails; the containers stopped for offline dumps are started again.
pub async fn before_changes(
    engine: &Engine,
    plan: &Plan,
    desired: &Desired,
    deployed: Option<&Generation>,
    root: Option<&Path>,
    keep: usize,
    progress: &Progress,
) -> Result<Vec<Taken>, ApplyError> {
    let generation = deployed.map_or(0, |g| g.number);
    let mut taken = Vec::new();
    let mut stopped = Vec::new();
    for step in &plan.containers {
        let risky = matches!(step.step.change, Change::Recreate(_) | Change::Remove);
        let (Some(id), true, 1) = (&step.existing, risky, step.replica) else {
            continue;
        };
        let spec = desired
            .services
            .get(&step.service)
            .or_else(|| deployed.and_then(|g| g.desired.services.get(&step.service)));
        let Some(backup) = spec.and_then(|s| s.backup.as_ref()) else {
            continue;
        };
        let dir = root.map_or_else(|| PathBuf::from(&backup.dir), |r| r.join(&desired.stack));
        progress(format!(
            "{:<16} backing up (generation {generation})",
            step.service
        ));
        match take(
            engine,
            id,
            backup,
            &dir,
            &step.service,
            generation,
            &mut stopped,
        )
        .await
        {
            Ok(path) => {
                progress(format!(
                    "{:<16} backup written to {}",
                    step.service,
                    path.display()
                ));
                for old in prune(&dir, &step.service, keep) {
                    progress(format!(
                        "{:<16} removed the old backup {} (keeping {keep})",
                        step.service,
                        old.display()
                    ));
                }
                taken.push(Taken {
                    service: step.service.clone(),
                    generation,
                    restore: backup
                        .restore
                        .as_ref()
                        .map(|r| restore_command(&step.step.name, &path, r, backup.offline)),
                    path,
                });
            }
            Err(message) => {
                for id in &stopped {
                    let _ = engine.start(id).await;
                }
                return Err(ApplyError::Backup {
                    service: step.service.clone(),
                    message,
                });
            }
        }
    }
    Ok(taken)
}

async fn take(
    engine: &Engine,
    id: &str,
    backup: &BackupSpec,
    dir: &Path,
    service: &str,
    generation: u32,
    stopped: &mut Vec<String>,
) -> Result<PathBuf, String> {
    create_private_dir(dir)?;
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let path = dir.join(format!(
        "{service}-generation-{generation}-{seconds}.{}.gz",
        backup.extension
    ));
    let partial = PathBuf::from(format!("{}.partial", path.display()));
    let mut file =
        flate2::write::GzEncoder::new(private_file(&partial)?, flate2::Compression::default());
    let running = matches!(engine.status(id).await, Ok(Status::Running(_)));
    let outcome = if backup.offline || !running {
        if running {
            engine.stop(id, 10).await.map_err(|e| e.to_string())?;
            stopped.push(id.to_string());
        }
        engine.run_beside(id, &backup.command, &mut file).await
    } else {
        engine.exec_to(id, &backup.command, &mut file).await
    };
    // The gzip trailer is written only on finish: without it the file is no backup.
    let outcome = outcome.and_then(|()| {
        file.finish()
            .map(drop)
            .map_err(|e| format!("{}: {e}", partial.display()))
    });
    match outcome {
        Ok(()) => std::fs::rename(&partial, &path)
            .map(|()| path)
            .map_err(|e| e.to_string()),
        Err(message) => {
            let _ = std::fs::remove_file(&partial);
            Err(message)
        }
    }
}

/// The command that feeds the dump to the service's restore command, as the systemd
/// backup units print it.
fn restore_command(container: &str, path: &Path, restore: &str, offline: bool) -> String {
    let file = shell_words::quote(&path.display().to_string()).into_owned();
    let restore = shell_words::quote(restore).into_owned();
    if offline {
        format!(
            "docker stop {container} && gunzip -c {file} | docker run --rm -i --volumes-from {container} --entrypoint sh \"$(docker inspect --format '{{{{.Image}}}}' {container})\" -c {restore} && docker start {container}"
        )
    } else {
        format!("gunzip -c {file} | docker exec -i {container} sh -c {restore}")
    }
}

/// Removes all but the newest `keep` of `service`'s compressed backups in `dir` (newest
/// by the time in their name); returns what it removed. Files it cannot remove stay.
fn prune(dir: &Path, service: &str, keep: usize) -> Vec<PathBuf> {
    let prefix = format!("{service}-generation-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut backups: Vec<(u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_string();
            let rest = name.strip_prefix(&prefix)?;
            if !name.ends_with(".gz") {
                return None;
            }
            // `<generation>-<seconds>.<extension>.gz`
            let (_, after) = rest.split_once('-')?;
            let seconds = after.split('.').next()?.parse().ok()?;
            Some((seconds, entry.path()))
        })
        .collect();
    backups.sort();
    let n_old = backups.len().saturating_sub(keep.max(1));
    backups
        .into_iter()
        .take(n_old)
        .filter(|(_, path)| std::fs::remove_file(path).is_ok())
        .map(|(_, path)| path)
        .collect()
}

fn create_private_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// A dump holds the service's data: readable by its owner only.
fn private_file(path: &Path) -> Result<std::fs::File, String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}
