//! Converges a Docker engine to a stack, the way `nixos-rebuild switch` converges a
//! machine: `plan` (read-only), `apply` (with health-gated ordered start, automatic
//! rollback on failure, and a recorded generation on success), `rollback`, `down`.
//!
//! The pipeline: the compiled model → [`values`] (variables on this host) → [`spec`]
//! (the desired state, pure) → [`mod@plan`] (desired against observed, pure) → [`mod@converge`]
//! (carries the plan out through [`engine`]) → [`state`] (generations, lock, files).

pub mod backup;
pub mod converge;
pub mod engine;
pub mod host;
pub mod host_state;
pub mod plan;
pub mod secrets;
pub mod spec;
pub mod ssh;
pub mod state;
pub mod values;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Error;
use crate::compile::{compile_one_cached, on_eval_thread};
use crate::project::{ProfileRef, Project, StackRef};
use crate::render::Artifact;
use converge::{Failure, Interrupt, Progress, Stopped, converge};
use engine::{Engine, Observed, Observer};
use host_state::StackLock;
use plan::{Options, Plan};
use secrets::{DigestKey, Identity};
use spec::{Desired, Places};
use state::{Generation, StateDir, artifacts_hash};
use values::Values;

/// Everything that stops plan, apply, rollback or down.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{}", missing_variables(env_file.as_deref(), names))]
    MissingVariables {
        env_file: Option<PathBuf>,
        names: Vec<String>,
    },
    #[error("{}: {message}", path.display())]
    EnvFile { path: PathBuf, message: String },
    #[error("{0}")]
    Secrets(String),
    #[error(
        "{0}\nhint: --host (or DOCKER_HOST) takes unix://PATH, ssh://[user@]host[:port] or tcp://host:port"
    )]
    Host(String),
    #[error(
        "{action}: {message}\nhint: is the Docker engine running, and may this user reach its socket (DOCKER_HOST)?"
    )]
    Engine { action: String, message: String },
    #[error("building image {tag} from {}: {message}", context.display())]
    Build {
        tag: String,
        context: PathBuf,
        message: String,
    },
    #[error(
        "the backup of `{service}` before apply changes it failed: {message}\nnothing was changed\nhint: fix the backup command, or pass --no-backup to apply without one"
    )]
    Backup { service: String, message: String },
    #[error("{}", preflight_problems(problems))]
    Preflight { problems: Vec<String> },
    #[error(
        "stack `{stack}` is being applied by another berth ({holder}); lock: {}\nhint: if that berth is gone (a machine that died holding a lock on shared storage), pass --break-lock",
        path.display()
    )]
    Locked {
        stack: String,
        path: PathBuf,
        holder: String,
    },
    #[error(
        "stack `{stack}` with profile `{profile}` has no generation {number}\nhint: `berth generations --stack {stack} --profile {profile}` lists them"
    )]
    NoSuchGeneration {
        stack: String,
        profile: String,
        number: u32,
    },
    #[error("stack `{stack}` with profile `{profile}` has {what}")]
    NothingToRollBackTo {
        stack: String,
        profile: String,
        what: String,
    },
    #[error("{}: unreadable state record: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error("{}: {source}", path.display())]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", interrupted(rolled_back_to, rollback_error.as_deref()))]
    Interrupted {
        rolled_back_to: Option<u32>,
        rollback_error: Option<String>,
    },
    #[error("{}", failed(failure, rolled_back_to, rollback_error.as_deref()))]
    Failed {
        failure: Box<Failure>,
        rolled_back_to: Option<u32>,
        rollback_error: Option<String>,
    },
}

fn preflight_problems(problems: &[String]) -> String {
    let mut text = String::from("pre-flight failed, nothing was changed:");
    for problem in problems {
        text.push_str(&format!("\n  - {problem}"));
    }
    if problems.iter().any(|p| p.contains("building image")) {
        text.push_str("\nhint: build contexts are relative to the project root (--root)");
    }
    text
}

fn missing_variables(env_file: Option<&Path>, names: &[String]) -> String {
    let file = env_file.map_or_else(
        || "the env file (--env-file)".to_string(),
        |p| p.display().to_string(),
    );
    format!(
        "no value for {}; nothing was changed\nhint: set them in {file} or in the environment; .env.template describes each",
        names.join(", ")
    )
}

fn interrupted(rolled_back_to: &Option<u32>, rollback_error: Option<&str>) -> String {
    let text = "apply interrupted: the container operation in flight was finished and nothing new was started; ";
    match (rolled_back_to, rollback_error) {
        (_, Some(error)) => format!("{text}rolling back failed: {error}"),
        (Some(n), None) => {
            format!("{text}rolled back to generation {n}, the host runs what it ran before")
        }
        (None, None) => format!(
            "{text}no earlier generation: removed the containers this apply created (volumes kept)"
        ),
    }
}

fn failed(failure: &Failure, rolled_back_to: &Option<u32>, rollback_error: Option<&str>) -> String {
    let mut text = format!("apply failed: service `{}`", failure.service);
    if !failure.container.is_empty() {
        text.push_str(&format!(" (container {})", failure.container));
    }
    text.push_str(&format!(": {}\n", failure.reason));
    if !failure.log_tail.trim().is_empty() {
        text.push_str("last lines of its log:\n");
        for line in failure.log_tail.lines() {
            text.push_str(&format!("  | {line}\n"));
        }
    }
    match (rolled_back_to, rollback_error) {
        (_, Some(error)) => text.push_str(&format!("rollback failed too: {error}")),
        (Some(n), None) => text.push_str(&format!(
            "rolled back to generation {n}; the host runs what it ran before"
        )),
        (None, None) => text.push_str(
            "no earlier generation: removed the containers this apply created (volumes kept)",
        ),
    }
    text
}

/// One stack with one profile on this host.
pub struct Target<'a> {
    pub project: &'a Project,
    pub stack: StackRef,
    pub profile: ProfileRef,
    /// Variable values; missing is fine when the environment has them all.
    pub env_file: Option<PathBuf>,
    /// The age identity that opens `secrets/<profile>.env.age` (else
    /// `$BERTH_AGE_IDENTITY`).
    pub identity: Option<PathBuf>,
    pub state: StateDir,
    /// Folder relative build contexts and non-generated bind sources start from.
    pub build_root: PathBuf,
    /// Where backups before a risky change go, instead of the profile's backup root.
    pub backup_root: Option<PathBuf>,
    /// How many backups of each service to keep there.
    pub keep_backups: usize,
    /// The build cache, whose evaluation of the same inputs stands in for evaluating.
    pub cache: Option<crate::cache::Cache>,
}

/// The model compiled and placed on this host.
struct Prepared {
    artifacts: Vec<Artifact>,
    values: Values,
    desired: Desired,
    /// Generated folders services mount: (store path, path relative to the artifacts).
    files: Vec<(PathBuf, String)>,
    secrets: SecretSource,
}

/// Where secret values come from on this run (the process environment, the env file, the
/// profile's encrypted secrets file), and the key their digests are made with.
pub struct SecretSource {
    /// The project, which services' env files are relative to.
    root: PathBuf,
    env_file: Option<PathBuf>,
    file: BTreeMap<String, String>,
    vault: BTreeMap<String, String>,
    key: DigestKey,
}

impl SecretSource {
    /// Opens `secrets/<profile>.env.age` under `root` if there is one. `create_key`: make
    /// this user's digest key when there is none (apply), or use a throw-away one (plan).
    ///
    /// # Errors
    /// An unreadable env file, a secrets file that cannot be opened.
    pub fn open(
        root: &Path,
        profile: &str,
        env_file: Option<&Path>,
        identity: Option<&Path>,
        create_key: bool,
    ) -> Result<SecretSource, ApplyError> {
        let identity = Identity::load(identity)?;
        let vault = secrets::read_vault(&secrets::vault_path(root, profile), identity.as_ref())?;
        let file = match env_file {
            Some(path) if path.exists() => {
                read_env_file(path).map_err(|message| ApplyError::EnvFile {
                    path: path.to_path_buf(),
                    message,
                })?
            }
            _ => BTreeMap::new(),
        };
        Ok(SecretSource {
            root: root.to_path_buf(),
            env_file: env_file.map(Path::to_path_buf),
            file,
            vault,
            key: DigestKey::load(identity.as_ref(), create_key)?,
        })
    }

    fn lookup(&self, name: &str) -> Option<String> {
        if let Some((path, key)) = secrets::parse_env_file_secret(name) {
            return read_env_file(&self.root.join(path)).ok()?.remove(key);
        }
        if let Some(path) = secrets::parse_file_secret(name) {
            return secrets::read_secret_file(&secrets::secret_file_path(&self.root, path)).ok();
        }
        let name = secrets::parse_host_secret(name).unwrap_or(name);
        std::env::var(name)
            .ok()
            .or_else(|| self.file.get(name).cloned())
            .or_else(|| self.vault.get(name).cloned())
    }

    /// The values of the secrets `desired` uses, `known` first, then this source's, with
    /// each digest brought up to date. Returns the names whose digest changed.
    fn values_for(
        &self,
        desired: &mut Desired,
        known: Option<&Values>,
    ) -> Result<(Values, Vec<String>), ApplyError> {
        let mut values = BTreeMap::new();
        let mut missing = Vec::new();
        let mut changed = Vec::new();
        for service in desired.services.values_mut() {
            for (name, digest) in &mut service.container.secrets {
                let value = known
                    .and_then(|k| k.secret(name).map(str::to_string))
                    .or_else(|| self.lookup(name));
                let Some(value) = value else {
                    if !missing.contains(name) {
                        missing.push(name.clone());
                    }
                    continue;
                };
                let now = self.key.digest(name, &value);
                if *digest != now {
                    *digest = now;
                    if !changed.contains(name) {
                        changed.push(name.clone());
                    }
                }
                values.insert(name.clone(), value);
            }
        }
        if !missing.is_empty() {
            return Err(ApplyError::MissingVariables {
                env_file: self.env_file.clone(),
                names: missing,
            });
        }
        changed.sort();
        Ok((Values::of_secrets(values), changed))
    }
}

/// An env file's variables, read as Compose reads them.
fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    crate::env_file::parse(&text).map_err(|(line, message)| format!("line {line}: {message}"))
}

/// Env files that are required and missing, or unreadable: pre-flight problems.
fn env_file_problems(
    model: &crate::model::Stack,
    values: &Values,
    build_root: &Path,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, service) in &model.services {
        for file in &service.env_file {
            let path = build_root.join(values.expand(&file.path));
            match read_env_file(&path) {
                Err(_) if !path.exists() && !file.required => {}
                Err(e) => problems.push(format!("{name}: env file {}: {e}", path.display())),
                Ok(_) => {}
            }
        }
    }
    problems
}

/// The content of every secret file a service mounts, by secret name; and, as pre-flight
/// problems, the files that cannot be read (before anything changes, as Compose refuses a
/// missing secret file before it starts a container).
fn file_secret_values(
    model: &crate::model::Stack,
    build_root: &Path,
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut values = BTreeMap::new();
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mounted = model.services.values().flat_map(|service| &service.secrets);
    for variable in mounted.map(|mount| mount.variable.as_str()) {
        let Some(path) = model.secret_file(variable) else {
            continue;
        };
        let name = secrets::file_secret(path);
        if !seen.insert(name.clone()) {
            continue;
        }
        let full = secrets::secret_file_path(build_root, path);
        match secrets::read_secret_file(&full) {
            Ok(value) => {
                values.insert(name, value);
            }
            Err(e) => problems.push(format!(
                "secret {variable}: its file {}: {e}",
                full.display()
            )),
        }
    }
    (values, problems)
}

fn prepare(target: &Target<'_>, create_key: bool) -> Result<Prepared, Error> {
    let (model, built) = on_eval_thread(|| {
        compile_one_cached(
            target.project,
            &target.stack,
            &target.profile,
            target.cache.as_ref(),
        )
    })?;
    let problems = spec::unsupported(&model);
    if !problems.is_empty() {
        return Err(ApplyError::Preflight { problems }.into());
    }
    let source = SecretSource::open(
        target.project.root(),
        &model.profile.name,
        target.env_file.as_deref(),
        target.identity.as_deref(),
        // Only a stack with secrets (env files' values and values passed from the deploy
        // environment are) needs this user's digest key.
        create_key
            && (model.variables.values().any(|v| v.secret)
                || model
                    .services
                    .values()
                    .any(|s| !s.env_file.is_empty() || !s.host_environment.is_empty())),
    )?;
    let mut values = Values::resolve(&model, target.env_file.as_deref(), &source.vault, |name| {
        std::env::var(name).ok()
    })?;
    let mut problems = env_file_problems(&model, &values, &target.build_root);
    problems.extend(spec::typed_value_problems(&model, &values));
    let (file_secrets, unreadable) = file_secret_values(&model, &target.build_root);
    problems.extend(unreadable);
    if !problems.is_empty() {
        return Err(ApplyError::Preflight { problems }.into());
    }
    for (name, value) in file_secrets {
        values.add_secret(name, value);
    }
    // Services' env files: every value a secret, a placeholder in the spec.
    let mut env_files = BTreeMap::new();
    for service in model.services.values() {
        for file in &service.env_file {
            let path = values.expand(&file.path);
            let read = read_env_file(&target.build_root.join(&path)).unwrap_or_default();
            env_files.insert(path, read);
        }
    }
    for (path, read) in &env_files {
        for (key, value) in read {
            values.add_secret(secrets::env_file_secret(path, key), value.clone());
        }
    }
    // Variables passed from the deploy environment, where it sets them.
    for name in model.services.values().flat_map(|s| &s.host_environment) {
        let secret = secrets::host_secret(name);
        if let Some(value) = source.lookup(&secret) {
            values.add_secret(secret, value);
        }
    }
    let artifacts = built.artifacts;
    let files = RefCell::new(Vec::new());
    let bind = |relative: &str| match target.state.files_path(&model.name, &artifacts, relative) {
        Some(stored) => {
            files
                .borrow_mut()
                .push((stored.clone(), relative.to_string()));
            stored
        }
        None => target.build_root.join(relative),
    };
    let digest = |name: &str| {
        source
            .key
            .digest(name, values.secret(name).unwrap_or_default())
    };
    let env_file = |path: &str| {
        env_files
            .get(path)
            .into_iter()
            .flatten()
            .map(|(key, _)| {
                let name = secrets::env_file_secret(path, key);
                (key.clone(), secrets::placeholder(&name))
            })
            .collect()
    };
    let places = Places {
        build_root: &target.build_root,
        bind: &bind,
        digest: &digest,
        env_file: &env_file,
    };
    let desired = spec::desired(&model, &values, &places);
    let mut problems = secret_file_problems(&desired);
    problems.extend(bind_source_problems(&desired, &files.borrow()));
    if !problems.is_empty() {
        return Err(ApplyError::Preflight { problems }.into());
    }
    Ok(Prepared {
        desired,
        values,
        files: files.into_inner(),
        secrets: source,
        artifacts,
    })
}

/// Host paths the services bind that do not exist: the engine's mount API refuses them
/// only when the container is created, which is after other services changed. berth does
/// not create them either (as Compose would, root-owned and empty): a certificate folder
/// or a configuration file is the operator's to provide. The generated files berth stores
/// (`stored`) are written after pre-flight and are not asked for.
fn bind_source_problems(desired: &Desired, stored: &[(PathBuf, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, service) in &desired.services {
        for mount in service.container.mounts.iter().filter(|m| m.kind == "bind") {
            let Some(source) = mount.source.as_deref().map(Path::new) else {
                continue;
            };
            let generated = stored.iter().any(|(path, _)| source.starts_with(path));
            if !generated && !source.exists() {
                problems.push(format!(
                    "{name}: bind source {} (for {}) does not exist; create it before apply",
                    source.display(),
                    mount.target
                ));
            }
        }
    }
    problems
}

/// Secret files are copied into the container before it starts, which a read-only root
/// file system refuses.
fn secret_file_problems(desired: &Desired) -> Vec<String> {
    desired
        .services
        .iter()
        .filter(|(_, s)| s.container.read_only == Some(true) && !s.container.secret_files.is_empty())
        .map(|(name, _)| format!("{name}: apply copies secret files into the container, and its root file system is read-only; pass the secret as an environment value instead"))
        .collect()
}

/// What `plan` found.
pub struct Planned {
    pub plan: Plan,
    /// Things apply would do first (build, pull), or could not check.
    pub notes: Vec<String>,
}

/// What apply would do, touching nothing: the engine only answers questions.
///
/// # Errors
/// Compile errors, missing variables, an engine that does not answer.
pub async fn plan(target: &Target<'_>, options: Options) -> Result<Planned, Error> {
    let mut prepared = prepare(target, false)?;
    let observer = Observer::connect(target.state.host()).await?;
    if target.state.is_on_host() {
        observer
            .pull_state(&target.state, &prepared.desired.stack)
            .await?;
    }
    let mut notes = Vec::new();
    for (name, service) in &mut prepared.desired.services {
        let reference = service.container.image.clone();
        service.container.image_id = observer.image_id(&reference).await?;
        match (&service.build, &service.container.image_id) {
            (Some(_), image_id) if options.build || image_id.is_none() => {
                let note = format!("apply builds image {reference} first");
                if !notes.contains(&note) {
                    notes.push(note);
                }
            }
            (None, None) => notes.push(format!(
                "{name}: image {reference} is not on the engine; apply will try to pull it"
            )),
            _ => {}
        }
    }
    let observed = observer.observe(&prepared.desired.stack).await?;
    let deployed = last_generation(&target.state, &prepared.desired)?;
    let plan = plan::plan(
        &prepared.desired,
        &observed,
        deployed.as_ref().map(|g| &g.desired),
        options,
    );
    for step in &plan.containers {
        let risky = matches!(
            step.step.change,
            plan::Change::Recreate(_) | plan::Change::Remove
        );
        let has_backup = prepared
            .desired
            .services
            .get(&step.service)
            .or_else(|| deployed.as_ref()?.desired.services.get(&step.service))
            .is_some_and(|s| s.backup.is_some());
        if risky && has_backup && step.replica == 1 && options.backup {
            notes.push(format!(
                "{}: apply backs it up first (--no-backup skips that)",
                step.service
            ));
        }
    }
    Ok(Planned { plan, notes })
}

/// How an apply went.
pub struct Applied {
    pub plan: Plan,
    /// The generation recorded, `None` when nothing changed.
    pub generation: Option<u32>,
    /// Backups taken before the change.
    pub backups: Vec<backup::Taken>,
}

/// Converges the engine to the stack, after `confirm` accepts the plan.
///
/// # Errors
/// Anything before the first change (compile, variables, images, lock) leaves the host as
/// it was; a service that fails after that is [`ApplyError::Failed`], with the host
/// rolled back to the last generation.
pub async fn apply(
    target: &Target<'_>,
    options: Options,
    timeout: Duration,
    confirm: impl FnOnce(&Plan) -> bool,
    progress: Progress,
) -> Result<Option<Applied>, Error> {
    let prepared = prepare(target, true)?;
    let stack = prepared.desired.stack.clone();
    let engine = Engine::take_control(Observer::connect(target.state.host()).await?);
    let lock = StackLock::take(&engine, &target.state, &stack).await?;
    let applied = apply_locked(
        target, &engine, prepared, options, timeout, confirm, progress,
    )
    .await;
    let released = lock.release(&engine, &target.state, &stack).await;
    let applied = applied?;
    released?;
    Ok(applied)
}

/// [`apply`] with the stack's lock held (and, on a remote engine, its state pulled).
async fn apply_locked(
    target: &Target<'_>,
    engine: &Engine,
    mut prepared: Prepared,
    options: Options,
    timeout: Duration,
    confirm: impl FnOnce(&Plan) -> bool,
    progress: Progress,
) -> Result<Option<Applied>, Error> {
    let stack = prepared.desired.stack.clone();
    let preflighted = preflight(
        engine,
        &mut prepared.desired,
        &prepared.values,
        options.build,
        &progress,
    )
    .await?;
    for (path, relative) in &prepared.files {
        target
            .state
            .store_files(path, relative, &prepared.artifacts)?;
    }
    // Containers bind-mount the stored files: on a remote engine they must be on its host
    // before the first container is created.
    // What pre-flight observed still holds (it builds images, which no container, network
    // or volume of the stack notices), unless the state was pushed to a remote host since.
    let observed = if target.state.is_on_host() {
        engine.push_state(&target.state, &stack).await?;
        engine.observe(&stack).await?
    } else {
        preflighted
    };
    let deployed = last_generation(&target.state, &prepared.desired)?;
    let plan = plan::plan(
        &prepared.desired,
        &observed,
        deployed.as_ref().map(|g| &g.desired),
        options,
    );
    if plan.is_noop() {
        return Ok(Some(Applied {
            plan,
            generation: None,
            backups: Vec::new(),
        }));
    }
    if !confirm(&plan) {
        return Ok(None);
    }
    // From the first change on, SIGINT and SIGTERM roll back instead of ending berth.
    let interrupt = Interrupt::on_signals(progress.clone()).map_err(|e| ApplyError::Engine {
        action: "installing the SIGINT and SIGTERM handlers".into(),
        message: e.to_string(),
    })?;
    let backups = if options.backup {
        backup::before_changes(
            engine,
            &plan,
            &prepared.desired,
            deployed.as_ref(),
            target.backup_root.as_deref(),
            target.keep_backups,
            &progress,
        )
        .await?
    } else {
        Vec::new()
    };
    target
        .state
        .add_backups(&stack, &prepared.desired.profile, &backups)?;
    match converge(
        engine,
        &prepared.desired,
        &plan,
        timeout,
        progress.clone(),
        &prepared.values,
        &interrupt,
    )
    .await
    {
        Ok(()) => {
            let generation = new_generation("apply".into(), &prepared.desired, &prepared.artifacts);
            let number =
                target
                    .state
                    .record(generation, &prepared.values.public(), &prepared.artifacts)?;
            Ok(Some(Applied {
                plan,
                generation: Some(number),
                backups,
            }))
        }
        Err(stopped) => {
            let was_interrupted = matches!(stopped, Stopped::Interrupted);
            let failure = as_failure(stopped);
            progress(format!(
                "rolling back: {} {}",
                failure.service, failure.reason
            ));
            let (rolled_back_to, rollback_error) = match restore(
                engine,
                &target.state,
                &prepared.desired,
                deployed.as_ref(),
                Secrets {
                    source: &prepared.secrets,
                    known: Some(&prepared.values),
                },
                timeout,
                &progress,
            )
            .await
            {
                Ok(()) => (deployed.as_ref().map(|g| g.number), None),
                Err(e) => (None, Some(e.to_string())),
            };
            if was_interrupted {
                return Err(ApplyError::Interrupted {
                    rolled_back_to,
                    rollback_error,
                }
                .into());
            }
            Err(ApplyError::Failed {
                failure: Box::new(failure),
                rolled_back_to,
                rollback_error,
            }
            .into())
        }
    }
}

/// How a rollback went.
pub struct RolledBack {
    /// The generation recorded for it.
    pub number: u32,
    /// Secrets whose value differs from the one the generation ran with: the host now
    /// runs their current value.
    pub changed_secrets: Vec<String>,
}

/// Re-applies generation `to` (default: the one before the last) and records it as a
/// new generation. Needs only the state folder and the secret values, not the modules.
///
/// # Errors
/// No such generation, its images are gone, or a service fails (then the host is put
/// back on the last generation).
pub async fn rollback(
    state: &StateDir,
    stack: &str,
    profile: &str,
    to: Option<u32>,
    source: &SecretSource,
    timeout: Duration,
    progress: Progress,
) -> Result<RolledBack, Error> {
    let engine = Engine::take_control(Observer::connect(state.host()).await?);
    let lock = StackLock::take(&engine, state, stack).await?;
    let rolled_back = rollback_locked(
        &engine, state, stack, profile, to, source, timeout, progress,
    )
    .await;
    let released = lock.release(&engine, state, stack).await;
    let rolled_back = rolled_back?;
    released?;
    Ok(rolled_back)
}

#[expect(
    clippy::too_many_arguments,
    reason = "rollback's own arguments plus the engine it holds the lock on"
)]
async fn rollback_locked(
    engine: &Engine,
    state: &StateDir,
    stack: &str,
    profile: &str,
    to: Option<u32>,
    source: &SecretSource,
    timeout: Duration,
    progress: Progress,
) -> Result<RolledBack, Error> {
    let generations = state.generations(stack, profile)?;
    let nothing = |what: &str| ApplyError::NothingToRollBackTo {
        stack: stack.into(),
        profile: profile.into(),
        what: what.into(),
    };
    let latest = generations
        .last()
        .ok_or_else(|| nothing("no generations"))?
        .clone();
    let wanted = match to {
        Some(number) => state.generation(stack, profile, number)?,
        None => generations
            .iter()
            .rev()
            .nth(1)
            .cloned()
            .ok_or_else(|| nothing("only one generation"))?,
    };
    let secrets = Secrets {
        source,
        known: None,
    };
    let converged = match converge_to(engine, state, &wanted, &secrets, timeout, &progress).await {
        Ok(converged) => converged,
        Err(stopped) => {
            let failure = as_failure(stopped);
            let back = restore(
                engine,
                state,
                &latest.desired,
                Some(&latest),
                secrets,
                timeout,
                &progress,
            )
            .await;
            return Err(ApplyError::Failed {
                failure: Box::new(failure),
                rolled_back_to: back.is_ok().then_some(latest.number),
                rollback_error: back.err().map(|e| e.to_string()),
            }
            .into());
        }
    };
    let values = state.values(stack, profile, wanted.number)?;
    let artifacts = generation_artifacts(state, &wanted)?;
    let generation = new_generation(
        format!("rollback to {}", wanted.number),
        &converged.desired,
        &artifacts,
    );
    Ok(RolledBack {
        number: state.record(generation, &values, &artifacts)?,
        changed_secrets: converged.changed_secrets,
    })
}

/// Stops and removes the stack's containers (with this profile, or all of them) and, once
/// none is left, its networks; volumes stay. Returns what was removed.
///
/// # Errors
/// The engine refuses, or another apply holds the lock.
pub async fn down(
    state: &StateDir,
    stack: &str,
    profile: Option<&str>,
) -> Result<Vec<String>, Error> {
    let engine = Engine::take_control(Observer::connect(state.host()).await?);
    let lock = StackLock::take(&engine, state, stack).await?;
    let removed = down_locked(&engine, stack, profile).await;
    let released = lock.release(&engine, state, stack).await;
    let removed = removed?;
    released?;
    Ok(removed)
}

async fn down_locked(
    engine: &Engine,
    stack: &str,
    profile: Option<&str>,
) -> Result<Vec<String>, Error> {
    let mut removed = Vec::new();
    let observed = engine.observe(stack).await?;
    let (going, staying): (Vec<_>, Vec<_>) = observed
        .containers
        .iter()
        .partition(|c| profile.is_none_or(|p| c.profile == p));
    for container in going {
        engine.remove_container(&container.id, 10).await?;
        removed.push(format!("container {}", container.name));
    }
    if staying.is_empty() {
        for (name, owner) in &observed.networks {
            if owner.as_deref() == Some(stack) {
                engine.remove_network(name).await?;
                removed.push(format!("network {name}"));
            }
        }
    }
    Ok(removed)
}

/// Builds what has a build section and no image yet (or everything, with `rebuild`), resolves every image to its ID (pulling what is
/// missing), checks external networks and volumes: every problem at once, before any
/// change.
async fn preflight(
    engine: &Engine,
    desired: &mut Desired,
    values: &Values,
    rebuild: bool,
    progress: &Progress,
) -> Result<Observed, Error> {
    let mut problems = Vec::new();
    let observed = engine.observe(&desired.stack).await?;
    // Services built from one context share the image: build it once.
    let mut built = std::collections::BTreeSet::new();
    // Image reference -> its ID on the engine, asked once per reference (services of one
    // image are common: replicas of a build, a migration job beside its app).
    let mut ids: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (name, service) in &mut desired.services {
        let reference = service.container.image.clone();
        let known = match ids.get(&reference) {
            Some(id) => id.clone(),
            None => engine.image_id(&reference).await?,
        };
        // Whether this service put a new image under the reference (its ID is asked again).
        let replaced = if let Some(build) = &service.build {
            // As `docker compose up`: build what is missing, rebuild only when asked.
            let wanted = rebuild || known.is_none();
            let first = wanted && built.insert((reference.clone(), build.context.clone()));
            if first {
                progress(format!("{name:<16} building {reference}"));
                // A build argument may be a secret: revealed for the engine only.
                let mut build = build.clone();
                for value in build.args.values_mut() {
                    *value = secrets::reveal(value, &|n| values.secret(n)).unwrap_or_default();
                }
                if let Err(e) = engine.build(&build, &reference).await {
                    problems.push(format!("{name}: {e}"));
                    continue;
                }
            }
            first
        } else if known.is_none() {
            progress(format!("{name:<16} pulling {reference}"));
            if let Err(e) = engine.pull(&reference).await {
                problems.push(format!(
                    "{name}: image {reference} is not on the engine and could not be pulled ({})",
                    first_line(&e.to_string())
                ));
                continue;
            }
            true
        } else {
            false
        };
        let id = if replaced {
            engine.image_id(&reference).await?
        } else {
            known
        };
        ids.insert(reference, id.clone());
        service.container.image_id = id;
    }
    for (name, network) in &desired.networks {
        if network.external && !observed.networks.contains_key(name) {
            problems.push(format!("external network {name} does not exist"));
        }
    }
    for (name, volume) in &desired.volumes {
        if volume.external && !observed.volumes.contains_key(name) {
            problems.push(format!("external volume {name} does not exist"));
        }
    }
    if problems.is_empty() {
        Ok(observed)
    } else {
        Err(ApplyError::Preflight { problems }.into())
    }
}

/// Puts the host back on `generation`, or, with none, removes the stack's containers
/// with this profile (the ones a failed first apply created).
async fn restore(
    engine: &Engine,
    state: &StateDir,
    desired: &Desired,
    generation: Option<&Generation>,
    secrets: Secrets<'_>,
    timeout: Duration,
    progress: &Progress,
) -> Result<(), Error> {
    let Some(generation) = generation else {
        let observed = engine.observe(&desired.stack).await?;
        for container in observed
            .containers
            .iter()
            .filter(|c| c.profile == desired.profile)
        {
            engine.remove_container(&container.id, 10).await?;
        }
        return Ok(());
    };
    converge_to(engine, state, generation, &secrets, timeout, progress)
        .await
        .map(|_| ())
        .map_err(|stopped| {
            let failure = as_failure(stopped);
            Error::from(ApplyError::Engine {
                action: format!("restoring generation {}", generation.number),
                message: format!("{}: {}", failure.service, failure.reason),
            })
        })
}

/// Where the secret values a generation needs come from: the values of this apply first
/// (`known`), then the source.
#[derive(Clone, Copy)]
struct Secrets<'a> {
    source: &'a SecretSource,
    known: Option<&'a Values>,
}

/// A generation as it now runs.
struct Converged {
    /// Its spec, with the digests of the secret values it now runs with.
    desired: Desired,
    changed_secrets: Vec<String>,
}

/// Converges to a recorded generation: its pinned images, its files, and the current
/// values of its secrets (which are not kept), saying which of them have changed since.
async fn converge_to(
    engine: &Engine,
    state: &StateDir,
    generation: &Generation,
    secrets: &Secrets<'_>,
    timeout: Duration,
    progress: &Progress,
) -> Result<Converged, Stopped> {
    let mut desired = generation.desired.clone();
    let (values, changed_secrets) = secrets
        .source
        .values_for(&mut desired, secrets.known)
        .map_err(Stopped::Engine)?;
    for name in &changed_secrets {
        progress(format!(
            "secret {name} has changed since generation {}: it runs with its current value",
            generation.number
        ));
    }
    let mut problems = Vec::new();
    for (name, service) in &desired.services {
        if let Some(id) = &service.container.image_id
            && engine
                .image_id(id)
                .await
                .map_err(Stopped::Engine)?
                .is_none()
        {
            problems.push(format!(
                "{name}: image {id} of generation {} is gone",
                generation.number
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Stopped::Engine(ApplyError::Preflight { problems }));
    }
    restore_files(state, generation).map_err(Stopped::Engine)?;
    if state.is_on_host() {
        engine
            .push_state(state, &desired.stack)
            .await
            .map_err(Stopped::Engine)?;
    }
    let observed = engine
        .observe(&desired.stack)
        .await
        .map_err(Stopped::Engine)?;
    let options = Options {
        prune: true,
        ..Options::default()
    };
    let plan = plan::plan(&desired, &observed, None, options);
    // Getting back to a generation is not to be cut short: it is what an interrupt asks for.
    let interrupt = Interrupt::never();
    converge(
        engine,
        &desired,
        &plan,
        timeout,
        progress.clone(),
        &values,
        &interrupt,
    )
    .await?;
    Ok(Converged {
        desired,
        changed_secrets,
    })
}

/// Rewrites the generated files a generation's containers mount, should they have been
/// removed from the state folder since.
fn restore_files(state: &StateDir, generation: &Generation) -> Result<(), ApplyError> {
    let desired = &generation.desired;
    let sources: Vec<PathBuf> = desired
        .services
        .values()
        .flat_map(|s| &s.container.mounts)
        .filter_map(|m| m.source.as_ref().map(PathBuf::from))
        .collect();
    let files_root = state.files_root(&desired.stack);
    let mut artifacts = None;
    for source in sources
        .iter()
        .filter(|s| s.starts_with(&files_root) && !state.local_path(s).exists())
    {
        let Ok(rest) = source.strip_prefix(&files_root) else {
            continue;
        };
        let relative: PathBuf = rest.components().skip(1).collect();
        if artifacts.is_none() {
            artifacts = Some(generation_artifacts(state, generation)?);
        }
        let artifacts = artifacts.as_deref().unwrap_or_default();
        state.store_files(source, &relative.to_string_lossy(), artifacts)?;
    }
    Ok(())
}

fn generation_artifacts(
    state: &StateDir,
    generation: &Generation,
) -> Result<Vec<Artifact>, ApplyError> {
    let dir = state
        .generation_dir(
            &generation.desired.stack,
            &generation.desired.profile,
            generation.number,
        )
        .join("artifacts");
    let tree = crate::output::read_tree(&dir).map_err(|e| ApplyError::Corrupt {
        path: dir.clone(),
        message: e.to_string(),
    })?;
    Ok(tree
        .into_iter()
        .map(|(path, contents)| Artifact { path, contents })
        .collect())
}

fn last_generation(state: &StateDir, desired: &Desired) -> Result<Option<Generation>, ApplyError> {
    Ok(state.generations(&desired.stack, &desired.profile)?.pop())
}

fn new_generation(source: String, desired: &Desired, artifacts: &[Artifact]) -> Generation {
    Generation {
        number: 0,
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        source,
        model_hash: artifacts_hash(artifacts),
        images: desired
            .services
            .iter()
            .filter_map(|(name, s)| Some((name.clone(), s.container.image_id.clone()?)))
            .collect::<BTreeMap<_, _>>(),
        desired: desired.clone(),
    }
}

fn as_failure(stopped: Stopped) -> Failure {
    match stopped {
        Stopped::Service(failure) => failure,
        Stopped::Interrupted => Failure {
            service: "(all)".into(),
            container: String::new(),
            reason: "interrupted (SIGINT or SIGTERM)".into(),
            log_tail: String::new(),
        },
        Stopped::Engine(error) => Failure {
            service: "(engine)".into(),
            container: String::new(),
            reason: error.to_string(),
            log_tail: String::new(),
        },
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Brings a remote engine's state of `stack` into `state`'s working copy, for commands that
/// only read it (`generations`); nothing to do for the local engine.
///
/// # Errors
/// The engine cannot be reached or read.
pub async fn fetch_state(state: &StateDir, stack: &str) -> Result<(), Error> {
    if state.is_on_host() {
        let observer = Observer::connect(state.host()).await?;
        observer.pull_state(state, stack).await?;
    }
    Ok(())
}
