//! berth's state on a remote engine's host, shared by everyone who applies there: the
//! state folder is `/var/lib/berth/<stack>` on the host, reached only through the engine
//! API (a never-started container, `berth-state`, of an empty image bind-mounts it; the
//! archive API reads and writes through that mount), and the lock is a container named
//! `berth-lock.<stack>`, whose creation is atomic on the engine: a name conflict means
//! someone holds it. Its labels say who and since when.
//!
//! A command works on a local copy of the stack's folder: pulled after the lock is taken,
//! pushed before containers need their files and again when the command ends. The lock
//! makes that copy the only writer.

use std::collections::HashMap;
use std::path::Path;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, DownloadFromContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::ApplyError;
use super::engine::{Engine, Observer};
use super::state::StateDir;

/// The folder on the host.
pub const HOST_ROOT: &str = "/var/lib/berth";
/// An image with no files (imported from an empty tar): the containers below are only
/// ever created, never started, so they need nothing to run.
const STATE_IMAGE: &str = "berth/state:1";
const STATE_CONTAINER: &str = "berth-state";
const LABEL_HOLDER: &str = "berth.lock.holder";
const LABEL_SINCE: &str = "berth.lock.since";

/// The stack's lock on the engine, until [`HostLock::release`].
pub struct HostLock {
    name: String,
}

impl Observer {
    /// Replaces the local copy of the stack's state with the host's (none yet: empty).
    ///
    /// # Errors
    /// The engine fails, or the copy cannot be written.
    pub async fn pull_state(&self, state: &StateDir, stack: &str) -> Result<(), ApplyError> {
        let local = state.root().join(stack);
        if local.exists() {
            std::fs::remove_dir_all(&local).map_err(|e| io_error(&local, e))?;
        }
        let options = DownloadFromContainerOptionsBuilder::default()
            .path(&format!("{HOST_ROOT}/{stack}"))
            .build();
        let mut stream = self
            .client()
            .download_from_container(STATE_CONTAINER, Some(options));
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => archive.extend_from_slice(&bytes),
                // No state container, or no folder for this stack: nothing applied yet.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => return Ok(()),
                Err(e) => return Err(engine_error("reading berth's state on the host", e)),
            }
        }
        tar::Archive::new(archive.as_slice())
            .unpack(state.root())
            .map_err(|e| io_error(state.root(), e))
    }
}

impl Engine {
    /// Takes the stack's lock on the engine (with `break_lock`, removing a holder's first).
    ///
    /// # Errors
    /// Someone holds it; the engine fails.
    pub async fn lock_on_host(
        &self,
        state: &StateDir,
        stack: &str,
        holder: &str,
        since: u64,
    ) -> Result<HostLock, ApplyError> {
        self.ensure_state_image().await?;
        let name = format!("berth-lock.{stack}");
        if state.breaks_lock() {
            tracing::warn!("breaking the lock {name} on {}", state.host());
            self.remove_quietly(&name).await?;
        }
        let labels = HashMap::from([
            (LABEL_HOLDER.to_string(), holder.to_string()),
            (LABEL_SINCE.to_string(), since.to_string()),
        ]);
        let body = ContainerCreateBody {
            image: Some(STATE_IMAGE.into()),
            cmd: Some(vec!["lock".into()]),
            labels: Some(labels),
            ..Default::default()
        };
        match self.create_named(&name, body.clone()).await {
            Ok(()) => return Ok(HostLock { name }),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => {}
            Err(e) => return Err(engine_error("taking the lock on the host", e)),
        }
        // A berth of this machine that was killed before it could release the lock (kill
        // -9, a lost terminal) left it: its process is gone, so the lock is taken over.
        let held_by = self.holder_label(&name).await;
        let Some(dead) = held_by.as_deref().filter(|h| is_dead_local_holder(h)) else {
            return Err(self.lock_holder(state, stack, &name).await);
        };
        tracing::warn!(
            "taking over the lock {name} on {}: its holder ({dead}) is no longer running",
            state.host()
        );
        self.remove_quietly(&name).await?;
        match self.create_named(&name, body).await {
            Ok(()) => Ok(HostLock { name }),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Err(self.lock_holder(state, stack, &name).await),
            Err(e) => Err(engine_error("taking the lock on the host", e)),
        }
    }

    /// The holder a lock container names (`pid N on HOST`).
    async fn holder_label(&self, name: &str) -> Option<String> {
        self.client()
            .inspect_container(name, None)
            .await
            .ok()
            .and_then(|c| c.config?.labels)?
            .remove(LABEL_HOLDER)
    }

    /// Copies the local copy of the stack's state onto the host (files already there
    /// and not here are left alone: generations and stored files are only ever added).
    ///
    /// # Errors
    /// The engine fails, or the copy cannot be read.
    pub async fn push_state(&self, state: &StateDir, stack: &str) -> Result<(), ApplyError> {
        let local = state.root().join(stack);
        if !local.exists() {
            return Ok(());
        }
        self.ensure_state_container().await?;
        let mut archive = tar::Builder::new(Vec::new());
        archive
            .append_dir_all(stack, &local)
            .map_err(|e| io_error(&local, e))?;
        let body = archive.into_inner().map_err(|e| io_error(&local, e))?;
        let options = UploadToContainerOptionsBuilder::default()
            .path(HOST_ROOT)
            .build();
        self.client()
            .upload_to_container(
                STATE_CONTAINER,
                Some(options),
                bollard::body_full(body.into()),
            )
            .await
            .map_err(|e| engine_error("writing berth's state on the host", e))
    }

    async fn ensure_state_image(&self) -> Result<(), ApplyError> {
        if self.image_id(STATE_IMAGE).await?.is_some() {
            return Ok(());
        }
        let empty_tar = vec![0u8; 1024];
        let options = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo("berth/state")
            .tag("1")
            .build();
        let mut stream = self.client().create_image(
            Some(options),
            Some(bollard::body_full(empty_tar.into())),
            None,
        );
        while let Some(step) = stream.next().await {
            step.map_err(|e| engine_error("importing the empty image berth/state:1", e))?;
        }
        Ok(())
    }

    async fn ensure_state_container(&self) -> Result<(), ApplyError> {
        self.ensure_state_image().await?;
        let body = ContainerCreateBody {
            image: Some(STATE_IMAGE.into()),
            cmd: Some(vec!["state".into()]),
            host_config: Some(HostConfig {
                // A bind (not a mount) so the engine creates the folder when it is missing.
                binds: Some(vec![format!("{HOST_ROOT}:{HOST_ROOT}")]),
                ..Default::default()
            }),
            ..Default::default()
        };
        match self.create_named(STATE_CONTAINER, body).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(engine_error("creating the berth-state container", e)),
        }
    }

    async fn create_named(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<(), bollard::errors::Error> {
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        self.client()
            .create_container(Some(options), body)
            .await
            .map(|_| ())
    }

    async fn remove_quietly(&self, name: &str) -> Result<(), ApplyError> {
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        match self.client().remove_container(name, Some(options)).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(engine_error("removing a lock container", e)),
        }
    }

    /// Who holds the lock, from its labels.
    async fn lock_holder(&self, state: &StateDir, stack: &str, name: &str) -> ApplyError {
        let labels = self
            .client()
            .inspect_container(name, None)
            .await
            .ok()
            .and_then(|c| c.config?.labels)
            .unwrap_or_default();
        let holder = labels
            .get(LABEL_HOLDER)
            .cloned()
            .unwrap_or_else(|| "holder unknown".into());
        let holder = match labels.get(LABEL_SINCE).and_then(|s| s.parse::<u64>().ok()) {
            Some(since) => format!(
                "{holder}, for {}",
                super::state::age(super::state::now().saturating_sub(since))
            ),
            None => holder,
        };
        ApplyError::Locked {
            stack: stack.into(),
            path: format!("container {name} on {}", state.host()).into(),
            holder,
        }
    }
}

/// Whether `holder` (`pid N on HOST`) is a process of this machine that is no longer
/// running. A pid reused since by another process reads as alive: the lock then stays,
/// which is the safe side; so does every holder where /proc does not list processes
/// (macOS).
fn is_dead_local_holder(holder: &str) -> bool {
    let proc = std::path::Path::new("/proc");
    if !proc.join("self").exists() {
        return false;
    }
    let Some((pid, host)) = holder
        .strip_prefix("pid ")
        .and_then(|rest| rest.split_once(" on "))
    else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    host == super::state::host_name()
        && pid != std::process::id()
        && !proc.join(pid.to_string()).exists()
}

impl HostLock {
    /// Removes the lock container.
    ///
    /// # Errors
    /// The engine fails.
    pub async fn release(self, engine: &Engine) -> Result<(), ApplyError> {
        engine.remove_quietly(&self.name).await
    }
}

fn engine_error(action: &str, e: bollard::errors::Error) -> ApplyError {
    ApplyError::Engine {
        action: action.into(),
        message: e.to_string(),
    }
}

fn io_error(path: &Path, source: std::io::Error) -> ApplyError {
    ApplyError::State {
        path: path.to_path_buf(),
        source,
    }
}

/// The stack's lock wherever its state is: the state folder's lock file for the local
/// engine, the lock container on a remote one (whose state is pulled on taking it and
/// pushed back on release).
pub enum StackLock {
    Local(super::state::Lock),
    Host(HostLock),
}

impl StackLock {
    /// # Errors
    /// Someone holds it; the state cannot be read.
    pub async fn take(
        engine: &Engine,
        state: &StateDir,
        stack: &str,
    ) -> Result<StackLock, ApplyError> {
        if !state.is_on_host() {
            return state.lock(stack).map(StackLock::Local);
        }
        let holder = format!(
            "pid {} on {}",
            std::process::id(),
            super::state::host_name()
        );
        let lock = engine
            .lock_on_host(state, stack, &holder, super::state::now())
            .await?;
        if let Err(e) = engine.pull_state(state, stack).await {
            lock.release(engine).await?;
            return Err(e);
        }
        Ok(StackLock::Host(lock))
    }

    /// Writes the state back to the host (remote) and releases the lock.
    ///
    /// # Errors
    /// The engine fails; the lock is released all the same when it can be.
    pub async fn release(
        self,
        engine: &Engine,
        state: &StateDir,
        stack: &str,
    ) -> Result<(), ApplyError> {
        match self {
            StackLock::Local(_) => Ok(()),
            StackLock::Host(lock) => {
                let pushed = engine.push_state(state, stack).await;
                lock.release(engine).await?;
                pushed
            }
        }
    }
}
