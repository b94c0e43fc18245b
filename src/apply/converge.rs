//! Carries out a plan: networks and volumes first, leftovers removed, then one task per
//! service that waits until each dependency meets its condition (started, healthy,
//! completed), (re)creates and starts its containers, and watches them until they settle.
//! Services whose dependencies are met start at once, in parallel; a container is looked
//! at again when the engine reports an event about it (so a dependent starts as soon as
//! its dependency turns healthy), and every [`POLL_BESIDE_EVENTS`] anyway.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::ApplyError;
use super::engine::{
    Engine, Health, LABEL_HASH, LABEL_PROFILE, LABEL_REPLICA, LABEL_SERVICE, LABEL_STACK, POLL,
    POLL_BESIDE_EVENTS, Status, create_body,
};
use super::plan::{Change, ContainerStep, Plan};
use super::spec::{AddressSpec, Desired, ServiceSpec};
use super::values::Values;
use crate::model::Condition;

/// What went wrong with one service, with what its container said last.
#[derive(Debug, Clone)]
pub struct Failure {
    pub service: String,
    pub container: String,
    pub reason: String,
    pub log_tail: String,
}

/// Either the engine refused a request, or a service did not come up, or the user
/// interrupted (SIGINT, SIGTERM).
#[derive(Debug)]
pub enum Stopped {
    Engine(ApplyError),
    Service(Failure),
    Interrupted,
}

/// Whether SIGINT or SIGTERM has arrived. Convergence asks between engine operations, so
/// the one in flight finishes and no new one starts.
#[derive(Clone)]
pub struct Interrupt(watch::Receiver<bool>);

impl Interrupt {
    /// Never set: for the rollback that follows an interrupt, which must run to its end.
    pub fn never() -> Interrupt {
        Interrupt(watch::channel(false).1)
    }

    /// Set by the first SIGINT or SIGTERM from now on (instead of the process ending).
    ///
    /// # Errors
    /// The signal handlers cannot be installed.
    pub fn on_signals(progress: Progress) -> std::io::Result<Interrupt> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let (sender, receiver) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
                if !sender.send_replace(true) {
                    progress(
                        "interrupted: finishing the operation in flight, then rolling back".into(),
                    );
                }
            }
        });
        Ok(Interrupt(receiver))
    }

    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    fn check(&self) -> Result<(), Stopped> {
        if self.is_set() {
            Err(Stopped::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Returns once interrupted; never, when nothing can interrupt any more.
    async fn wait(&self) {
        let mut receiver = self.0.clone();
        if receiver.wait_for(|set| *set).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Receives one line per service event (created, healthy, failed…).
pub type Progress = Arc<dyn Fn(String) + Send + Sync>;

/// How far a service has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reached {
    Pending,
    Started,
    Healthy,
    Completed,
    Failed,
}

impl Reached {
    fn meets(self, condition: Condition) -> bool {
        match condition {
            Condition::Started => matches!(self, Self::Started | Self::Healthy | Self::Completed),
            Condition::Healthy => self == Self::Healthy,
            Condition::Completed => self == Self::Completed,
        }
    }
}

/// Converges the engine by `plan` towards `desired`.
///
/// # Errors
/// The first service that failed (the cause, not the dependents that then gave up), or
/// the engine's refusal.
pub async fn converge(
    engine: &Engine,
    desired: &Desired,
    plan: &Plan,
    timeout: Duration,
    progress: Progress,
    secrets: &Values,
    interrupt: &Interrupt,
) -> Result<(), Stopped> {
    interrupt.check()?;
    let started = Instant::now();
    let stack_labels = BTreeMap::from([
        (LABEL_STACK.to_string(), desired.stack.clone()),
        (LABEL_PROFILE.to_string(), desired.profile.clone()),
    ]);
    // Containers of services gone from the modules go first: one may still be attached to
    // a network that is about to be recreated.
    for step in plan
        .containers
        .iter()
        .filter(|c| c.step.change == Change::Remove)
    {
        interrupt.check()?;
        if let Some(id) = &step.existing {
            engine
                .remove_container(id, 10)
                .await
                .map_err(Stopped::Engine)?;
            progress(format!("{:<16} removed", step.service));
        }
    }
    let plan = &free_recreated_networks(engine, desired, plan, &progress, interrupt).await?;
    // Networks and volumes do not depend on one another: create them all at once.
    let networks = plan
        .networks
        .iter()
        .filter(|s| matches!(s.change, Change::Create | Change::Recreate(_)))
        .filter_map(|step| Some((step, desired.networks.get(&step.name)?)))
        .map(|(step, spec)| engine.create_network(&step.name, spec, &stack_labels));
    let volumes = plan
        .volumes
        .iter()
        .filter(|s| s.change == Change::Create)
        .filter_map(|step| Some((step, desired.volumes.get(&step.name)?)))
        .map(|(step, spec)| engine.create_volume(&step.name, spec, &stack_labels));
    futures_util::future::try_join(
        futures_util::future::try_join_all(networks),
        futures_util::future::try_join_all(volumes),
    )
    .await
    .map_err(Stopped::Engine)?;
    let secrets = Arc::new(secrets.clone());
    let services = run_services(
        engine,
        desired,
        plan,
        (timeout, started),
        &progress,
        &secrets,
        interrupt,
    )
    .await;
    // Networks go last: a network in use cannot be removed.
    for step in plan.networks.iter().filter(|s| s.change == Change::Remove) {
        engine
            .remove_network(&step.name)
            .await
            .map_err(Stopped::Engine)?;
    }
    for step in plan.volumes.iter().filter(|s| s.change == Change::Remove) {
        engine
            .remove_volume(&step.name)
            .await
            .map_err(Stopped::Engine)?;
    }
    services
}

/// Removes each network to recreate, after the containers on it (which the plan recreates
/// anyway): the plan returned has those containers as gone, to be created afresh.
async fn free_recreated_networks(
    engine: &Engine,
    desired: &Desired,
    plan: &Plan,
    progress: &Progress,
    interrupt: &Interrupt,
) -> Result<Plan, Stopped> {
    let mut plan = plan.clone();
    let recreated: Vec<String> = plan
        .networks
        .iter()
        .filter(|step| matches!(step.change, Change::Recreate(_)))
        .map(|step| step.name.clone())
        .collect();
    if recreated.is_empty() {
        return Ok(plan);
    }
    for step in &mut plan.containers {
        let Some(spec) = desired.services.get(&step.service) else {
            continue;
        };
        let on_recreated = spec
            .container
            .networks
            .iter()
            .any(|n| recreated.contains(n));
        if !on_recreated || !matches!(step.step.change, Change::Recreate(_)) {
            continue;
        }
        if let Some(id) = step.existing.take() {
            interrupt.check()?;
            let grace = spec.container.stop_grace_seconds.unwrap_or(10);
            engine
                .remove_container(&id, grace)
                .await
                .map_err(Stopped::Engine)?;
        }
    }
    for name in &recreated {
        engine.remove_network(name).await.map_err(Stopped::Engine)?;
        progress(format!(
            "{name:<16} network removed, to be made with its new settings"
        ));
    }
    Ok(plan)
}

async fn run_services(
    engine: &Engine,
    desired: &Desired,
    plan: &Plan,
    (timeout, started): (Duration, Instant),
    progress: &Progress,
    secrets: &Arc<Values>,
    interrupt: &Interrupt,
) -> Result<(), Stopped> {
    let mut senders = BTreeMap::new();
    let mut receivers = BTreeMap::new();
    for name in desired.services.keys() {
        let (sender, receiver) = watch::channel(Reached::Pending);
        senders.insert(name.clone(), sender);
        receivers.insert(name.clone(), receiver);
    }
    let mut tasks = Vec::new();
    for (name, sender) in senders {
        let Some(spec) = desired.services.get(&name).cloned() else {
            continue;
        };
        let steps: Vec<ContainerStep> = plan
            .containers
            .iter()
            .filter(|c| c.service == name && c.step.change != Change::Remove)
            .cloned()
            .collect();
        let task = ServiceTask {
            engine: engine.clone(),
            stack: desired.stack.clone(),
            profile: desired.profile.clone(),
            name: name.clone(),
            dependencies: spec
                .depends_on
                .iter()
                .filter_map(|(dep, condition)| {
                    receivers
                        .get(dep)
                        .map(|r| (dep.clone(), *condition, r.clone()))
                })
                .collect(),
            spec,
            steps,
            timeout,
            started,
            progress: progress.clone(),
            quiet: false,
            secrets: secrets.clone(),
            interrupt: interrupt.clone(),
        };
        tasks.push((task, sender));
    }
    // Compose's order: every new container is created, then they start in dependency
    // order. Creating a container fills an empty named volume from its image (Docker's
    // copy-up, ownership included), so it must come before any container of the volume
    // runs: a one-shot job's chown of the volume would otherwise be undone. Creation then
    // costs nothing on the critical path but the longest one.
    let created =
        futures_util::future::join_all(tasks.iter_mut().map(|(task, _)| task.create_new())).await;
    if let Some(stopped) = created.into_iter().find_map(Result::err) {
        return Err(stopped);
    }
    let tasks: Vec<_> = tasks
        .into_iter()
        .map(|(task, sender)| {
            tokio::spawn(async move {
                let outcome = task.run(&sender).await;
                if outcome.is_err() {
                    sender.send_replace(Reached::Failed);
                }
                outcome
            })
        })
        .collect();
    let mut failures = Vec::new();
    for task in tasks {
        let outcome = task.await.unwrap_or_else(|e| {
            Err(Stopped::Engine(ApplyError::Engine {
                action: "waiting for a service".into(),
                message: e.to_string(),
            }))
        });
        if let Err(stopped) = outcome {
            failures.push(stopped);
        }
    }
    // Report the cause, not the dependents that gave up because of it.
    let cause = failures.iter().position(|f| !gave_up(f)).unwrap_or(0);
    if interrupt.is_set() && !failures.is_empty() {
        Err(Stopped::Interrupted)
    } else if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.swap_remove(cause))
    }
}

fn gave_up(stopped: &Stopped) -> bool {
    matches!(stopped, Stopped::Service(f) if f.reason.starts_with("dependency "))
}

/// Waits between two looks at some containers: until the engine reports an event about
/// them, or [`POLL_BESIDE_EVENTS`] has passed; every [`POLL`] once the engine's event
/// stream has ended.
struct Watch {
    changes: Option<futures_util::stream::BoxStream<'static, ()>>,
}

impl Watch {
    fn new(engine: &Engine, ids: &[String]) -> Watch {
        Watch {
            changes: Some(engine.changes(ids)),
        }
    }

    async fn next(&mut self) {
        use futures_util::StreamExt;
        let Some(changes) = &mut self.changes else {
            tokio::time::sleep(POLL).await;
            return;
        };
        tokio::select! {
            change = changes.next() => {
                if change.is_none() {
                    self.changes = None;
                }
            }
            () = tokio::time::sleep(POLL_BESIDE_EVENTS) => {}
        }
    }
}

struct ServiceTask {
    engine: Engine,
    stack: String,
    profile: String,
    name: String,
    spec: ServiceSpec,
    dependencies: Vec<(String, Condition, watch::Receiver<Reached>)>,
    steps: Vec<ContainerStep>,
    timeout: Duration,
    started: Instant,
    progress: Progress,
    quiet: bool,
    secrets: Arc<Values>,
    interrupt: Interrupt,
}

impl ServiceTask {
    async fn run(mut self, reached: &watch::Sender<Reached>) -> Result<(), Stopped> {
        // A service left as it was settles quietly; only changes are news.
        self.quiet = self.steps.iter().all(|s| s.step.change == Change::Keep);
        let steps = std::mem::take(&mut self.steps);
        for (dependency, condition, mut receiver) in std::mem::take(&mut self.dependencies) {
            let waited = tokio::select! {
                waited = receiver.wait_for(|r| r.meets(condition) || *r == Reached::Failed) => {
                    waited.map(|r| *r)
                }
                () = self.interrupt.wait() => return Err(Stopped::Interrupted),
            };
            if matches!(waited, Ok(r) if r != Reached::Failed) {
                continue;
            }
            return Err(self.failure(
                String::new(),
                format!("dependency {dependency} failed"),
                String::new(),
            ));
        }
        let mut ids = Vec::new();
        for step in steps {
            self.interrupt.check()?;
            ids.push((step.step.name.clone(), self.carry_out(&step).await?));
        }
        self.settle(&ids, reached).await
    }

    /// Creates the service's new containers (see [`run_services`]).
    async fn create_new(&mut self) -> Result<(), Stopped> {
        let mut steps = std::mem::take(&mut self.steps);
        for step in &mut steps {
            if step.step.change == Change::Create {
                self.interrupt.check()?;
                step.existing = Some(self.create(&step.step.name, step.replica).await?);
            }
        }
        self.steps = steps;
        Ok(())
    }

    /// Makes one container match its step; returns its id.
    async fn carry_out(&self, step: &ContainerStep) -> Result<String, Stopped> {
        let engine = &self.engine;
        match (&step.step.change, &step.existing) {
            (Change::Keep, Some(id)) => Ok(id.clone()),
            (Change::Start, Some(id)) => {
                engine.start(id).await.map_err(Stopped::Engine)?;
                self.say("started");
                Ok(id.clone())
            }
            // Created up front, see `run`.
            (Change::Create, Some(id)) => {
                engine.start(id).await.map_err(Stopped::Engine)?;
                self.say("created");
                Ok(id.clone())
            }
            (Change::Recreate(_), Some(old)) if self.rolls() => {
                self.replace_start_first(step, old).await
            }
            (change, existing) => {
                if let (Change::Recreate(_), Some(old)) = (change, existing) {
                    let grace = self.spec.container.stop_grace_seconds.unwrap_or(10);
                    engine
                        .remove_container(old, grace)
                        .await
                        .map_err(Stopped::Engine)?;
                }
                let id = self.create(&step.step.name, step.replica).await?;
                engine.start(&id).await.map_err(Stopped::Engine)?;
                self.say(if matches!(change, Change::Recreate(_)) {
                    "recreated"
                } else {
                    "created"
                });
                Ok(id)
            }
        }
    }

    async fn create(&self, name: &str, replica: u32) -> Result<String, Stopped> {
        // The values go to the engine in the create request and the copied files only.
        let container = &self
            .spec
            .container
            .revealed(&|secret| self.secrets.secret(secret))
            .map_err(|secret| {
                Stopped::Engine(ApplyError::MissingVariables {
                    env_file: None,
                    names: vec![secret],
                })
            })?;
        // Run the image by name when the name still means the pinned image (readable
        // `docker ps`); by ID when the tag has moved on since (a rollback).
        let current = self
            .engine
            .image_id(&container.image)
            .await
            .map_err(Stopped::Engine)?;
        let image = match (&container.image_id, current) {
            (Some(pinned), Some(current)) if *pinned != current => pinned.clone(),
            (Some(pinned), None) => pinned.clone(),
            _ => container.image.clone(),
        };
        let labels = BTreeMap::from([
            (LABEL_STACK.to_string(), self.stack.clone()),
            (LABEL_PROFILE.to_string(), self.profile.clone()),
            (LABEL_SERVICE.to_string(), self.name.clone()),
            // The hash of the spec with placeholders: a label holds no value.
            (LABEL_HASH.to_string(), self.spec.container.hash()),
            (LABEL_REPLICA.to_string(), replica.to_string()),
        ]);
        let body = create_body(container, &image, replica, labels, &self.name);
        let endpoints: Vec<(String, Vec<String>, Option<AddressSpec>)> = container
            .networks
            .iter()
            .map(|network| {
                let aliases = container.aliases_on(network, &self.name);
                (
                    network.clone(),
                    aliases,
                    container.addresses.get(network).cloned(),
                )
            })
            .collect();
        let id = self
            .engine
            .create_container(name, body, &endpoints)
            .await
            .map_err(Stopped::Engine)?;
        let files: Vec<(String, String)> = container
            .secret_files
            .iter()
            .map(|(path, secret)| {
                let value = self.secrets.secret(secret).unwrap_or_default();
                (path.clone(), value.to_string())
            })
            .collect();
        if !files.is_empty() {
            self.engine
                .copy_files(&id, &files)
                .await
                .map_err(Stopped::Engine)?;
        }
        Ok(id)
    }

    /// Watches the containers until each is where the service must end: running (and
    /// healthy, when it has a healthcheck), or exited 0 for a one-shot job.
    async fn settle(
        &self,
        ids: &[(String, String)],
        reached: &watch::Sender<Reached>,
    ) -> Result<(), Stopped> {
        let deadline = Instant::now() + self.timeout;
        let has_healthcheck = self.spec.container.healthcheck.is_some();
        let mut announced = Reached::Pending;
        let ids_only: Vec<String> = ids.iter().map(|(_, id)| id.clone()).collect();
        let mut watch = Watch::new(&self.engine, &ids_only);
        loop {
            self.interrupt.check()?;
            let mut all = Vec::new();
            for (name, id) in ids {
                let status = self.engine.status(id).await.map_err(Stopped::Engine)?;
                if let Some(reason) = self.broken(&status) {
                    return Err(self.failed(name.clone(), id, reason).await);
                }
                all.push(status);
            }
            let now = if all.iter().all(|s| matches!(s, Status::Exited(0))) {
                Reached::Completed
            } else if all
                .iter()
                .all(|s| matches!(s, Status::Running(Health::Healthy)))
            {
                Reached::Healthy
            } else if all
                .iter()
                .all(|s| matches!(s, Status::Running(_) | Status::Exited(0)))
            {
                Reached::Started
            } else {
                Reached::Pending
            };
            if now != announced && now != Reached::Pending {
                announced = now;
                reached.send_replace(now);
                match now {
                    Reached::Healthy => self.say("healthy"),
                    Reached::Completed => self.say("completed"),
                    Reached::Started if !has_healthcheck => self.say("running"),
                    _ => {}
                }
            }
            let settled = match now {
                Reached::Completed | Reached::Healthy => true,
                Reached::Started => !has_healthcheck && !self.spec.one_shot,
                _ => false,
            };
            if settled {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let (name, id) = ids.first().cloned().unwrap_or_default();
                return Err(self.failed(name, &id, self.not_ready()).await);
            }
            watch.next().await;
        }
    }

    /// Whether replicas are replaced one at a time, each new one started beside the old and
    /// ready before the old one goes (Compose's start-first update order), so the service
    /// always has a ready replica: several replicas of a long-running service, none bound
    /// to a fixed host port (old and new would need the same one at once).
    fn rolls(&self) -> bool {
        let container = &self.spec.container;
        self.spec.replicas > 1
            && !self.spec.one_shot
            && container
                .ports
                .iter()
                .all(|port| port.published.as_deref().is_none_or(str::is_empty))
    }

    /// Replaces one replica start-first: the new container runs as `<name>-next` until it
    /// is ready, then the old one is stopped and removed and the new one takes its name.
    /// A new one that never gets ready is removed, and the old one kept running.
    async fn replace_start_first(
        &self,
        step: &ContainerStep,
        old: &str,
    ) -> Result<String, Stopped> {
        let name = &step.step.name;
        let next = format!("{name}-next");
        // A rollout interrupted before it finished may have left one behind.
        self.engine
            .remove_container(&next, 0)
            .await
            .map_err(Stopped::Engine)?;
        let id = self.create(&next, step.replica).await?;
        let ready = async {
            self.engine.start(&id).await.map_err(Stopped::Engine)?;
            self.until_ready(&next, &id).await
        };
        if let Err(stopped) = ready.await {
            let _ = self.engine.remove_container(&id, 0).await;
            return Err(stopped);
        }
        let grace = self.spec.container.stop_grace_seconds.unwrap_or(10);
        self.engine
            .remove_container(old, grace)
            .await
            .map_err(Stopped::Engine)?;
        self.engine
            .rename(&id, name)
            .await
            .map_err(Stopped::Engine)?;
        self.say(&format!("replaced {}", step.replica));
        Ok(id)
    }

    /// Waits until one new container is ready: healthy, or running when the service has
    /// no healthcheck.
    async fn until_ready(&self, name: &str, id: &str) -> Result<(), Stopped> {
        let deadline = Instant::now() + self.timeout;
        let has_healthcheck = self.spec.container.healthcheck.is_some();
        let mut watch = Watch::new(&self.engine, &[id.to_string()]);
        loop {
            self.interrupt.check()?;
            let status = self.engine.status(id).await.map_err(Stopped::Engine)?;
            if let Some(reason) = self.broken(&status) {
                return Err(self.failed(name.to_string(), id, reason).await);
            }
            let ready = match status {
                Status::Running(Health::Healthy) => true,
                Status::Running(_) => !has_healthcheck,
                _ => false,
            };
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.failed(name.to_string(), id, self.not_ready()).await);
            }
            watch.next().await;
        }
    }

    /// Why a container's status means the service failed, if it does.
    fn broken(&self, status: &Status) -> Option<String> {
        match status {
            Status::Running(Health::Unhealthy) => Some("healthcheck failed (unhealthy)".into()),
            Status::Exited(0) => None,
            Status::Exited(code) => Some(format!("exited with code {code}")),
            Status::Restarting => Some("crashed and is restarting".into()),
            Status::Other(state) if state != "created" => Some(format!("is {state}")),
            _ => None,
        }
    }

    /// Why the service failed when the time ran out: not what it had to become.
    fn not_ready(&self) -> String {
        let wanted = if self.spec.one_shot {
            "completed"
        } else if self.spec.container.healthcheck.is_some() {
            "healthy"
        } else {
            "running"
        };
        format!("not {wanted} after {:?}", self.timeout)
    }

    /// Says that container `id` failed, and the failure with the tail of its log.
    async fn failed(&self, container: String, id: &str, reason: String) -> Stopped {
        let log = self.engine.log_tail(id, 20).await;
        self.say(&format!("FAILED: {reason}"));
        self.failure(container, reason, log)
    }

    fn failure(&self, container: String, reason: String, log_tail: String) -> Stopped {
        Stopped::Service(Failure {
            service: self.name.clone(),
            container,
            reason,
            log_tail,
        })
    }

    fn say(&self, what: &str) {
        if self.quiet && !what.starts_with("FAILED") {
            return;
        }
        (self.progress)(format!(
            "{:<16} {what:<10} {:>6.1}s",
            self.name,
            self.started.elapsed().as_secs_f64()
        ));
    }
}
