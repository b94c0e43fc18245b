//! What the commands that touch an engine share: which stack and profile, where the
//! variable values and the state live, and the async runtime they run on.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::Error;
use crate::apply::converge::Progress;
use crate::apply::host::Host;
use crate::apply::state::StateDir;
use crate::apply::{ApplyError, Target};
use crate::project::{ProfileRef, Project};

/// One stack with one profile on this host.
#[derive(Debug, Clone, Args)]
pub struct Deployment {
    /// The stack (a file in modules/stacks/).
    #[arg(long, value_name = "NAME")]
    pub stack: String,
    /// The profile (a file in profiles/).
    #[arg(long, value_name = "NAME", required_unless_present = "no_profile")]
    pub profile: Option<String>,
    /// Apply the stack with no profile overlay.
    #[arg(long, conflicts_with = "profile")]
    pub no_profile: bool,
    #[command(flatten)]
    pub place: Place,
    #[command(flatten)]
    cache: super::CacheArgs,
}

/// Where this host keeps what berth needs besides the modules.
#[derive(Debug, Clone, Args)]
pub struct Place {
    /// Variable values (KEY=value lines), read after the process environment.
    #[arg(long, default_value = ".env", value_name = "FILE")]
    pub env_file: PathBuf,
    /// berth's state with the local engine: generations, lock, mounted files [default:
    /// $BERTH_STATE_DIR, else $XDG_STATE_HOME/berth, else ~/.local/state/berth]. A remote
    /// engine (--host) keeps it on its host instead.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The age identity that opens secrets/<profile>.env.age [default: $BERTH_AGE_IDENTITY,
    /// a key or the path of a key file].
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// The engine to drive: ssh://[user@]host[:port] (over the host's `docker system
    /// dial-stdio`), tcp://host:port (TLS with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH) or
    /// unix://PATH [default: $DOCKER_HOST, else the local socket]. A remote engine keeps
    /// berth's state (generations, lock) on its host, in /var/lib/berth.
    #[arg(short = 'H', long, value_name = "URL")]
    pub host: Option<String>,
    /// Take the stack's lock even though another berth holds it: only when that berth is
    /// gone (say, a machine that died holding it on shared storage).
    #[arg(long)]
    pub break_lock: bool,
}

impl Place {
    /// The state of the engine this command drives.
    ///
    /// # Errors
    /// An engine address berth cannot use; no working copy for a remote state.
    pub fn state(&self) -> Result<StateDir, Error> {
        let host = Host::locate(self.host.as_deref()).map_err(ApplyError::Host)?;
        Ok(StateDir::locate(self.state_dir.as_deref())
            .breaking_lock(self.break_lock)
            .on_host(host)?)
    }
}

impl Deployment {
    pub fn profile_name(&self) -> &str {
        self.profile
            .as_deref()
            .unwrap_or(crate::project::NO_PROFILE)
    }

    pub fn target<'a>(&self, project: &'a Project) -> Result<Target<'a>, Error> {
        let stack = project
            .select_stacks(std::slice::from_ref(&self.stack))?
            .remove(0);
        let profile = match &self.profile {
            Some(name) => project
                .select_profiles(std::slice::from_ref(name))?
                .remove(0),
            None => ProfileRef::None,
        };
        Ok(Target {
            project,
            stack,
            profile,
            env_file: Some(self.place.env_file.clone()),
            identity: self.place.identity.clone(),
            state: self.place.state()?,
            build_root: project.root().to_path_buf(),
            backup_root: None,
            keep_backups: crate::apply::backup::DEFAULT_KEEP,
            cache: self.cache.open(project)?,
        })
    }
}

/// Runs a future to completion on a small runtime (engine calls are IO-bound).
pub fn block_on<T>(
    future: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            Error::from(ApplyError::Engine {
                action: "starting the async runtime".into(),
                message: e.to_string(),
            })
        })?
        .block_on(future)
}

/// Progress lines on stderr, unless quiet.
pub fn progress(quiet: bool) -> Progress {
    Arc::new(move |line: String| {
        if !quiet {
            eprintln!("  {line}");
        }
    })
}

/// A duration option such as `120s` or `5m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let valid = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || "nsumh".contains(c));
    let nanos = crate::model::units::duration_ns(text).unwrap_or(0);
    if valid && nanos > 0 {
        Ok(Duration::from_nanos(nanos))
    } else {
        Err(format!(
            "expected a duration such as 120s or 5m, got {text:?}"
        ))
    }
}

pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}
