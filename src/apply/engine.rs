//! The Docker engine, through bollard, split in two on purpose: an [`Observer`] can only
//! read (what `plan` gets), an [`Engine`] can also change things (what `apply`, `down`
//! and `rollback` get). The only way to an `Engine` is [`Engine::take_control`], so a
//! read-only path cannot mutate the host by mistake.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, DeviceRequest, EndpointIpamConfig,
    EndpointSettings, HealthConfig, HealthStatusEnum, HostConfig, HostConfigLogConfig, Ipam,
    IpamConfig, Mount, MountType, NetworkConnectRequest, NetworkCreateRequest, NetworkingConfig,
    PortBinding, ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    EventsOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    ListNetworksOptions, ListVolumesOptions, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::ApplyError;
use super::host::Host;
use super::spec::{AddressSpec, BuildSpec, ContainerSpec, NetworkSpec, SubnetSpec, VolumeSpec};

pub const LABEL_STACK: &str = "berth.stack";
pub const LABEL_PROFILE: &str = "berth.profile";
pub const LABEL_SERVICE: &str = "berth.service";
pub const LABEL_HASH: &str = "berth.config-hash";
pub const LABEL_REPLICA: &str = "berth.replica";

/// Read-only access to the engine.
#[derive(Clone)]
pub struct Observer {
    docker: Docker,
}

/// Read-write access to the engine.
#[derive(Clone)]
pub struct Engine {
    observer: Observer,
}

impl std::ops::Deref for Engine {
    type Target = Observer;
    fn deref(&self) -> &Observer {
        &self.observer
    }
}

/// What the engine holds of one stack.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub containers: Vec<Existing>,
    /// Every network on the engine by name, with its `berth.stack` label if any.
    pub networks: BTreeMap<String, Option<String>>,
    /// What the engine says of each network, by name: compared with the spec, so that a
    /// changed subnet or option recreates the network.
    pub network_settings: BTreeMap<String, NetworkSpec>,
    /// Every volume on the engine by name, with its `berth.stack` label if any.
    pub volumes: BTreeMap<String, Option<String>>,
}

/// A container that carries the stack's label.
#[derive(Debug, Clone)]
pub struct Existing {
    pub id: String,
    pub name: String,
    pub service: String,
    pub profile: String,
    pub hash: String,
    pub replica: u32,
    pub status: Status,
}

/// Where a container is in its life, as far as convergence cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Created,
    Running(Health),
    Restarting,
    Exited(i64),
    Other(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// The container has no healthcheck.
    None,
    Starting,
    Healthy,
    Unhealthy,
}

impl Observer {
    /// Connects to the engine at `host` and checks that it answers.
    ///
    /// # Errors
    /// No engine, or it does not answer.
    pub async fn connect(host: &Host) -> Result<Observer, ApplyError> {
        let action = format!("connecting to the Docker engine ({host})");
        let unreachable = |e: bollard::errors::Error| ApplyError::Engine {
            action: action.clone(),
            message: e.to_string(),
        };
        let docker = host.client().map_err(|message| ApplyError::Engine {
            action: action.clone(),
            message,
        })?;
        // bollard speaks a newer API than many engines in the field; settle on theirs.
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        Ok(Observer { docker })
    }

    /// The client, for the other engine modules (`host_state`).
    pub(super) fn client(&self) -> &Docker {
        &self.docker
    }

    /// Everything the engine holds of `stack`, plus every network and volume name (a
    /// stack may use ones it does not own).
    ///
    /// # Errors
    /// The engine fails a request.
    pub async fn observe(&self, stack: &str) -> Result<Observed, ApplyError> {
        let filters =
            HashMap::from([("label".to_string(), vec![format!("{LABEL_STACK}={stack}")])]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let summaries = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(engine_error("listing containers"))?;
        let mut containers = Vec::new();
        for summary in summaries {
            let Some(id) = summary.id else { continue };
            let labels: BTreeMap<String, String> =
                summary.labels.unwrap_or_default().into_iter().collect();
            let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
            let name = summary
                .names
                .and_then(|names| names.into_iter().next())
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string();
            containers.push(Existing {
                status: self.status(&id).await?,
                id,
                name,
                service: label(LABEL_SERVICE),
                profile: label(LABEL_PROFILE),
                hash: label(LABEL_HASH),
                replica: label(LABEL_REPLICA).parse().unwrap_or(1),
            });
        }
        containers.sort_by(|a, b| a.name.cmp(&b.name));
        let listed = self
            .docker
            .list_networks(None::<ListNetworksOptions>)
            .await
            .map_err(engine_error("listing networks"))?;
        let mut networks = BTreeMap::new();
        let mut network_settings = BTreeMap::new();
        for network in listed {
            let Some(name) = network.name.clone() else {
                continue;
            };
            let owner = network
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_STACK).cloned());
            networks.insert(name.clone(), owner);
            network_settings.insert(name, observed_network(network));
        }
        let volumes = self
            .docker
            .list_volumes(None::<ListVolumesOptions>)
            .await
            .map_err(engine_error("listing volumes"))?
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|volume| {
                let owner = volume.labels.get(LABEL_STACK).cloned();
                (volume.name, owner)
            })
            .collect();
        Ok(Observed {
            containers,
            networks,
            network_settings,
            volumes,
        })
    }

    /// The ID of a local image, `None` if the engine does not have it.
    ///
    /// # Errors
    /// The engine fails otherwise than with "no such image".
    pub async fn image_id(&self, reference: &str) -> Result<Option<String>, ApplyError> {
        match self.docker.inspect_image(reference).await {
            Ok(image) => Ok(image.id),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(engine_error("inspecting an image")(e)),
        }
    }

    /// A container's status now.
    ///
    /// # Errors
    /// The engine fails the request (a vanished container is `Other("gone")`).
    pub async fn status(&self, id: &str) -> Result<Status, ApplyError> {
        let inspected = match self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(inspected) => inspected,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(Status::Other("gone".into())),
            Err(e) => return Err(engine_error("inspecting a container")(e)),
        };
        let state = inspected.state.unwrap_or_default();
        let health = match state.health.and_then(|h| h.status) {
            Some(HealthStatusEnum::STARTING) => Health::Starting,
            Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
            Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
            _ => Health::None,
        };
        Ok(match state.status {
            Some(ContainerStateStatusEnum::CREATED) => Status::Created,
            Some(ContainerStateStatusEnum::RUNNING) => Status::Running(health),
            Some(ContainerStateStatusEnum::RESTARTING) => Status::Restarting,
            Some(ContainerStateStatusEnum::EXITED) => Status::Exited(state.exit_code.unwrap_or(0)),
            other => Status::Other(format!("{other:?}").to_lowercase()),
        })
    }

    /// The engine's events about the containers `ids` (started, died, health changed…),
    /// each one only a sign that [`Observer::status`] may have changed: a dependent then
    /// starts when its dependency turns healthy, not up to a poll later. Ends when the
    /// engine ends or breaks the stream.
    pub fn changes(&self, ids: &[String]) -> futures_util::stream::BoxStream<'static, ()> {
        let filters = HashMap::from([
            ("type", vec!["container"]),
            ("container", ids.iter().map(String::as_str).collect()),
            ("event", WATCHED_EVENTS.to_vec()),
        ]);
        let options = EventsOptionsBuilder::default().filters(&filters).build();
        self.docker
            .events(Some(options))
            .take_while(|event| std::future::ready(event.is_ok()))
            .map(|_| ())
            .boxed()
    }

    /// The last `lines` lines of a container's output, for failure reports.
    pub async fn log_tail(&self, id: &str, lines: usize) -> String {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let mut stream = self.docker.logs(id, Some(options));
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        text
    }
}

impl Engine {
    /// Read-write access: only `apply`, `rollback` and `down` ask for it.
    pub fn take_control(observer: Observer) -> Engine {
        Engine { observer }
    }

    fn docker(&self) -> &Docker {
        &self.observer.docker
    }

    /// Creates a network labelled as the stack's.
    ///
    /// # Errors
    /// The engine refuses.
    pub async fn create_network(
        &self,
        name: &str,
        spec: &NetworkSpec,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), ApplyError> {
        let mut all_labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
        all_labels.extend(labels.clone());
        let ipam = (!spec.subnets.is_empty()).then(|| Ipam {
            config: Some(
                spec.subnets
                    .iter()
                    .map(|s| IpamConfig {
                        subnet: Some(s.subnet.clone()),
                        ip_range: s.ip_range.clone(),
                        gateway: s.gateway.clone(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        });
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some(spec.driver.clone()),
            internal: Some(spec.internal),
            ipam,
            enable_ipv6: spec.enable_ipv6.then_some(true),
            options: (!spec.driver_opts.is_empty())
                .then(|| spec.driver_opts.clone().into_iter().collect()),
            labels: Some(all_labels),
            ..Default::default()
        };
        self.docker()
            .create_network(request)
            .await
            .map(|_| ())
            .map_err(engine_error(&format!("creating network {name}")))
    }

    /// Creates a volume labelled as the stack's.
    ///
    /// # Errors
    /// The engine refuses.
    pub async fn create_volume(
        &self,
        name: &str,
        spec: &VolumeSpec,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), ApplyError> {
        let mut all_labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
        all_labels.extend(labels.clone());
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            driver: spec.driver.clone(),
            labels: Some(all_labels),
            ..Default::default()
        };
        self.docker()
            .create_volume(request)
            .await
            .map(|_| ())
            .map_err(engine_error(&format!("creating volume {name}")))
    }

    /// # Errors
    /// The engine refuses.
    pub async fn remove_network(&self, name: &str) -> Result<(), ApplyError> {
        self.docker()
            .remove_network(name)
            .await
            .map_err(engine_error(&format!("removing network {name}")))
    }

    /// # Errors
    /// The engine refuses (a volume still in use, say).
    pub async fn remove_volume(&self, name: &str) -> Result<(), ApplyError> {
        self.docker()
            .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
            .map_err(engine_error(&format!("removing volume {name}")))
    }

    /// Creates (not starts) a container and joins it to its networks.
    ///
    /// # Errors
    /// The engine refuses (a name taken by a container berth does not own, a bad mount…).
    pub async fn create_container(
        &self,
        name: &str,
        body: ContainerCreateBody,
        // Each network with the names the container answers to there, and its fixed
        // addresses there.
        networks: &[(String, Vec<String>, Option<AddressSpec>)],
    ) -> Result<String, ApplyError> {
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        let created = self
            .docker()
            .create_container(Some(options), body)
            .await
            .map_err(engine_error(&format!("creating container {name}")))?;
        // Engines before API 1.44 take one network at creation; join the others now.
        for (network, aliases, address) in networks.iter().skip(1) {
            let request = NetworkConnectRequest {
                container: created.id.clone(),
                endpoint_config: Some(endpoint(aliases.clone(), address.as_ref())),
            };
            self.docker()
                .connect_network(network, request)
                .await
                .map_err(engine_error(&format!("connecting {name} to {network}")))?;
        }
        Ok(created.id)
    }

    /// Copies files (absolute path in the container → contents, readable by all as
    /// Compose's secret files are) into a created container, before it starts: through
    /// the engine's archive API, so nothing is written on the host.
    ///
    /// # Errors
    /// The engine refuses (a read-only root file system, say).
    pub async fn copy_files(&self, id: &str, files: &[(String, String)]) -> Result<(), ApplyError> {
        let failed = |e: std::io::Error| ApplyError::Engine {
            action: "copying secret files into a container".into(),
            message: e.to_string(),
        };
        let mut archive = tar::Builder::new(Vec::new());
        for (path, contents) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(contents.len() as u64);
            header.set_mode(0o444);
            header.set_uid(0);
            header.set_gid(0);
            header.set_entry_type(tar::EntryType::Regular);
            archive
                .append_data(
                    &mut header,
                    path.trim_start_matches('/'),
                    contents.as_bytes(),
                )
                .map_err(failed)?;
        }
        let body = archive.into_inner().map_err(failed)?;
        let options = bollard::query_parameters::UploadToContainerOptionsBuilder::default()
            .path("/")
            .build();
        self.docker()
            .upload_to_container(id, Some(options), bollard::body_full(body.into()))
            .await
            .map_err(engine_error("copying secret files into a container"))
    }

    /// # Errors
    /// The engine refuses.
    pub async fn start(&self, id: &str) -> Result<(), ApplyError> {
        self.docker()
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .map_err(engine_error("starting a container"))
    }

    /// Gives a container another name: a replica started beside the one it replaces takes
    /// the old one's name once that is gone.
    ///
    /// # Errors
    /// The engine refuses (the name is taken).
    pub async fn rename(&self, id: &str, name: &str) -> Result<(), ApplyError> {
        let options = bollard::query_parameters::RenameContainerOptionsBuilder::default()
            .name(name)
            .build();
        self.docker()
            .rename_container(id, options)
            .await
            .map_err(engine_error(&format!("renaming a container to {name}")))
    }

    /// Stops (within its grace period) and removes a container.
    ///
    /// # Errors
    /// The engine refuses.
    pub async fn remove_container(&self, id: &str, grace_seconds: u64) -> Result<(), ApplyError> {
        let stop = StopContainerOptionsBuilder::default()
            .t(i32::try_from(grace_seconds).unwrap_or(10))
            .build();
        // Stopping a stopped container is fine; a vanished one too.
        let _ = self.docker().stop_container(id, Some(stop)).await;
        let remove = RemoveContainerOptionsBuilder::default().force(true).build();
        match self.docker().remove_container(id, Some(remove)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            // The engine is removing it already (seen under load right after the container
            // was replaced): what is wanted is under way, so wait for it to be gone.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409,
                message,
            }) if message.contains("already in progress") => self.until_gone(id).await,
            Err(e) => Err(engine_error("removing a container")(e)),
        }
    }

    /// Waits (up to a minute) until the engine no longer knows container `id`.
    async fn until_gone(&self, id: &str) -> Result<(), ApplyError> {
        for _ in 0..600 {
            match self
                .docker()
                .inspect_container(id, None::<InspectContainerOptions>)
                .await
            {
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => return Ok(()),
                Err(e) => return Err(engine_error("removing a container")(e)),
                Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        Err(ApplyError::Engine {
            action: "removing a container".into(),
            message: format!("{id} was still being removed after a minute"),
        })
    }

    /// Stops a container within its grace period, keeping it.
    ///
    /// # Errors
    /// The engine refuses.
    pub async fn stop(&self, id: &str, grace_seconds: u64) -> Result<(), ApplyError> {
        let stop = StopContainerOptionsBuilder::default()
            .t(i32::try_from(grace_seconds).unwrap_or(10))
            .build();
        match self.docker().stop_container(id, Some(stop)).await {
            // 304: it was stopped already.
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(engine_error("stopping a container")(e)),
        }
    }

    /// Runs `sh -c command` in a running container, as `docker exec` does; its standard
    /// output goes to `out`.
    ///
    /// # Errors
    /// The engine refuses, or the command fails (with the end of its standard error).
    pub async fn exec_to(
        &self,
        id: &str,
        command: &str,
        out: &mut impl std::io::Write,
    ) -> Result<(), String> {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        let config = CreateExecOptions {
            cmd: Some(vec!["sh".to_string(), "-c".into(), command.into()]),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = self
            .docker()
            .create_exec(id, config)
            .await
            .map_err(|e| e.to_string())?;
        let StartExecResults::Attached { mut output, .. } = self
            .docker()
            .start_exec(&exec.id, None)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Err("the engine did not attach to the command".into());
        };
        let mut errors = String::new();
        while let Some(chunk) = output.next().await {
            match chunk.map_err(|e| e.to_string())? {
                bollard::container::LogOutput::StdOut { message } => {
                    out.write_all(&message).map_err(|e| e.to_string())?;
                }
                other => errors.push_str(&String::from_utf8_lossy(&other.into_bytes())),
            }
        }
        let code = self
            .docker()
            .inspect_exec(&exec.id)
            .await
            .map_err(|e| e.to_string())?
            .exit_code
            .unwrap_or(0);
        exit_status(code, &errors)
    }

    /// Runs `sh -c command` in a one-off container made from `id`'s image, with its
    /// environment and volumes and no network, as the systemd backup units' offline dumps
    /// do; its standard output goes to `out`. `id` should be stopped.
    ///
    /// # Errors
    /// The engine refuses, or the command fails (with the end of its standard error).
    pub async fn run_beside(
        &self,
        id: &str,
        command: &str,
        out: &mut impl std::io::Write,
    ) -> Result<(), String> {
        let inspected = self
            .docker()
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(|e| e.to_string())?;
        let config = inspected.config.unwrap_or_default();
        let body = ContainerCreateBody {
            image: inspected.image.or(config.image),
            env: config.env,
            user: config.user,
            entrypoint: Some(vec!["sh".into()]),
            cmd: Some(vec!["-c".into(), command.into()]),
            host_config: Some(HostConfig {
                volumes_from: Some(vec![id.to_string()]),
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self
            .docker()
            .create_container(
                None::<bollard::query_parameters::CreateContainerOptions>,
                body,
            )
            .await
            .map_err(|e| e.to_string())?;
        let outcome = self.run_to_end(&created.id, out).await;
        let _ = self.remove_container(&created.id, 0).await;
        outcome
    }

    /// Starts a created container and copies its output until it ends. Attached, not
    /// read back from the log driver, which would mangle a binary dump.
    async fn run_to_end(&self, id: &str, out: &mut impl std::io::Write) -> Result<(), String> {
        let options = bollard::query_parameters::AttachContainerOptionsBuilder::default()
            .stream(true)
            .stdout(true)
            .stderr(true)
            .build();
        let mut attached = self
            .docker()
            .attach_container(id, Some(options))
            .await
            .map_err(|e| e.to_string())?;
        self.start(id).await.map_err(|e| e.to_string())?;
        let mut errors = String::new();
        while let Some(chunk) = attached.output.next().await {
            match chunk.map_err(|e| e.to_string())? {
                bollard::container::LogOutput::StdOut { message } => {
                    out.write_all(&message).map_err(|e| e.to_string())?;
                }
                other => errors.push_str(&String::from_utf8_lossy(&other.into_bytes())),
            }
        }
        let mut wait = self
            .docker()
            .wait_container(id, None::<bollard::query_parameters::WaitContainerOptions>);
        let code = match wait.next().await {
            Some(Ok(response)) => response.status_code,
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("the engine did not say how the command ended".into()),
        };
        exit_status(code, &errors)
    }

    /// Builds an image through the engine from a context folder, tagged `tag`.
    ///
    /// # Errors
    /// The context cannot be read, or the build fails (with the builder's message).
    pub async fn build(&self, spec: &BuildSpec, tag: &str) -> Result<(), ApplyError> {
        let failed = |message: String| ApplyError::Build {
            tag: tag.to_string(),
            context: spec.context.clone(),
            message,
        };
        let mut archive = tar::Builder::new(Vec::new());
        archive.follow_symlinks(false);
        archive
            .append_dir_all(".", &spec.context)
            .map_err(|e| failed(e.to_string()))?;
        let body = archive.into_inner().map_err(|e| failed(e.to_string()))?;
        let args: HashMap<String, String> = spec.args.clone().into_iter().collect();
        let mut options = BuildImageOptionsBuilder::default()
            .t(tag)
            .rm(true)
            .dockerfile(spec.dockerfile.as_deref().unwrap_or("Dockerfile"))
            .buildargs(&args);
        if let Some(target) = &spec.target {
            options = options.target(target);
        }
        let mut stream =
            self.docker()
                .build_image(options.build(), None, Some(bollard::body_full(body.into())));
        while let Some(step) = stream.next().await {
            let step = step.map_err(|e| failed(e.to_string()))?;
            if let Some(detail) = step.error_detail {
                return Err(failed(detail.message.unwrap_or_default()));
            }
        }
        Ok(())
    }

    /// Pulls an image.
    ///
    /// # Errors
    /// The registry cannot be reached or has no such image.
    pub async fn pull(&self, reference: &str) -> Result<(), ApplyError> {
        let options = CreateImageOptionsBuilder::default()
            .from_image(reference)
            .build();
        let mut stream = self.docker().create_image(Some(options), None, None);
        while let Some(step) = stream.next().await {
            step.map_err(engine_error(&format!("pulling {reference}")))?;
        }
        Ok(())
    }
}

/// The engine's create request for replica `replica` of a container spec.
pub fn create_body(
    spec: &ContainerSpec,
    image: &str,
    replica: u32,
    labels: BTreeMap<String, String>,
    alias: &str,
) -> ContainerCreateBody {
    let mut exposed = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for port in &spec.ports {
        let key = format!("{}/{}", port.target, port.protocol);
        exposed.push(key.clone());
        if let Some(published) = &port.published {
            bindings
                .entry(key)
                .or_default()
                .get_or_insert_default()
                .push(PortBinding {
                    host_ip: port.host_ip.clone(),
                    host_port: Some(replica_port(published, replica)),
                });
        }
    }
    // The mount API has no SELinux relabelling: a bind that asks for it is a `Binds` entry
    // (`source:target:ro,z`), as `docker run -v` and Compose send it. Its source exists:
    // pre-flight refuses a missing bind source, so the engine creates none.
    let (relabelled, mounts): (Vec<&super::spec::MountSpec>, Vec<_>) = spec
        .mounts
        .iter()
        .partition(|mount| mount.selinux.is_some());
    let binds: Vec<String> = relabelled
        .iter()
        .map(|mount| {
            let access = if mount.read_only { "ro" } else { "rw" };
            format!(
                "{}:{}:{access},{}",
                mount.source.as_deref().unwrap_or_default(),
                mount.target,
                mount.selinux.as_deref().unwrap_or_default()
            )
        })
        .collect();
    let mounts = mounts
        .into_iter()
        .map(|mount| Mount {
            target: Some(mount.target.clone()),
            source: mount.source.clone(),
            typ: Some(match mount.kind.as_str() {
                "bind" => MountType::BIND,
                "tmpfs" => MountType::TMPFS,
                _ => MountType::VOLUME,
            }),
            read_only: Some(mount.read_only),
            ..Default::default()
        })
        .collect();
    let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let host_config = HostConfig {
        port_bindings: Some(bindings),
        binds: (!binds.is_empty()).then_some(binds),
        mounts: Some(mounts),
        tmpfs: (!spec.tmpfs.is_empty()).then(|| {
            spec.tmpfs
                .iter()
                .map(|entry| match entry.split_once(':') {
                    Some((path, options)) => (path.to_string(), options.to_string()),
                    None => (entry.clone(), String::new()),
                })
                .collect()
        }),
        restart_policy: spec.restart.as_deref().map(restart_policy),
        log_config: spec.logging.as_ref().map(|logging| HostConfigLogConfig {
            typ: Some(logging.driver.clone()),
            config: Some(logging.options.clone().into_iter().collect()),
        }),
        ulimits: (!spec.ulimits.is_empty()).then(|| {
            spec.ulimits
                .iter()
                .map(|(name, (soft, hard))| ResourcesUlimits {
                    name: Some(name.clone()),
                    soft: Some(*soft),
                    hard: Some(*hard),
                })
                .collect()
        }),
        extra_hosts: (!spec.extra_hosts.is_empty()).then(|| spec.extra_hosts.clone()),
        init: spec.init,
        readonly_rootfs: spec.read_only,
        privileged: spec.privileged,
        cap_add: (!spec.cap_add.is_empty()).then(|| spec.cap_add.clone()),
        cap_drop: (!spec.cap_drop.is_empty()).then(|| spec.cap_drop.clone()),
        shm_size: spec.shm_size.map(to_i64),
        memory: spec.memory.map(to_i64),
        memory_reservation: spec.memory_reservation.map(to_i64),
        nano_cpus: spec.nano_cpus.map(to_i64),
        sysctls: (!spec.sysctls.is_empty()).then(|| spec.sysctls.clone().into_iter().collect()),
        devices: (!spec.devices.is_empty())
            .then(|| spec.devices.iter().map(|d| device_mapping(d)).collect()),
        network_mode: spec.networks.first().cloned(),
        dns: (!spec.dns.is_empty()).then(|| spec.dns.clone()),
        dns_search: (!spec.dns_search.is_empty()).then(|| spec.dns_search.clone()),
        dns_options: (!spec.dns_opt.is_empty()).then(|| spec.dns_opt.clone()),
        pid_mode: spec.pid.clone(),
        security_opt: (!spec.security_opt.is_empty()).then(|| spec.security_opt.clone()),
        device_requests: spec.gpus.as_ref().map(|gpus| {
            vec![DeviceRequest {
                driver: Some(gpus.driver.clone()),
                count: gpus.count,
                device_ids: (!gpus.device_ids.is_empty()).then(|| gpus.device_ids.clone()),
                capabilities: Some(vec![vec!["gpu".to_string()]]),
                options: None,
            }]
        }),
        ..Default::default()
    };
    let networking_config = spec.networks.first().map(|network| NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            network.clone(),
            endpoint(spec.aliases_on(network, alias), spec.addresses.get(network)),
        )])),
    });
    let mut all_labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
    all_labels.extend(labels);
    ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: spec.entrypoint.clone(),
        cmd: spec.command.clone(),
        env: Some(
            spec.environment
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect(),
        ),
        user: spec.user.clone(),
        working_dir: spec.working_dir.clone(),
        hostname: spec.hostname.clone(),
        stop_signal: spec.stop_signal.clone(),
        exposed_ports: Some(exposed),
        healthcheck: spec.healthcheck.as_ref().map(|health| HealthConfig {
            test: Some(health.test.clone()),
            interval: Some(to_i64(health.interval_ns)),
            timeout: Some(to_i64(health.timeout_ns)),
            retries: Some(i64::from(health.retries)),
            start_period: health.start_period_ns.map(to_i64),
            start_interval: None,
        }),
        labels: Some(all_labels),
        stop_timeout: spec.stop_grace_seconds.map(to_i64),
        tty: spec.tty.then_some(true),
        open_stdin: spec.stdin_open.then_some(true),
        host_config: Some(host_config),
        networking_config,
        ..Default::default()
    }
}

/// A command's exit code as a result, with the last lines of its standard error.
fn exit_status(code: i64, errors: &str) -> Result<(), String> {
    if code == 0 {
        return Ok(());
    }
    let lines: Vec<&str> = errors.lines().collect();
    let tail = lines[lines.len().saturating_sub(5)..].join("\n  | ");
    if tail.is_empty() {
        Err(format!("exited with code {code}"))
    } else {
        Err(format!("exited with code {code}:\n  | {tail}"))
    }
}

/// The host port replica `replica` (from 1) publishes: the port itself, or the replica's
/// own port of a range.
fn replica_port(published: &str, replica: u32) -> String {
    match published.split_once('-') {
        Some((start, _end)) => start.parse::<u32>().map_or_else(
            |_| published.to_string(),
            |start| (start + replica - 1).to_string(),
        ),
        None => published.to_string(),
    }
}

fn restart_policy(restart: &str) -> RestartPolicy {
    let (name, retries) = match restart.split_once(':') {
        Some((name, retries)) => (name, retries.parse().ok()),
        None => (restart, None),
    };
    RestartPolicy {
        name: Some(match name {
            "always" => RestartPolicyNameEnum::ALWAYS,
            "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
            "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
            _ => RestartPolicyNameEnum::NO,
        }),
        maximum_retry_count: retries,
    }
}

/// How often convergence asks the engine how a container is doing, when the engine's
/// event stream is not there to say when to.
pub const POLL: Duration = Duration::from_millis(25);

/// How often it asks anyway while the event stream is there: events sent before the
/// stream was open are not sent again.
pub const POLL_BESIDE_EVENTS: Duration = Duration::from_millis(250);

/// What makes a container worth asking about again: it started, ended or was removed,
/// or its health changed (the engine matches `health_status` to `health_status: healthy`).
const WATCHED_EVENTS: [&str; 7] = [
    "start",
    "die",
    "oom",
    "restart",
    "destroy",
    "rename",
    "health_status",
];

/// A container's settings on one network: the names it answers to, its fixed addresses.
fn endpoint(aliases: Vec<String>, address: Option<&AddressSpec>) -> EndpointSettings {
    EndpointSettings {
        aliases: Some(aliases),
        ipam_config: address.map(|address| EndpointIpamConfig {
            ipv4_address: address.ipv4.clone(),
            ipv6_address: address.ipv6.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A network as the engine lists it, in the terms of a spec (labels without berth's own).
fn observed_network(network: bollard::models::Network) -> NetworkSpec {
    let subnets = network
        .ipam
        .and_then(|ipam| ipam.config)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|config| {
            Some(SubnetSpec {
                subnet: config.subnet?,
                gateway: config.gateway,
                ip_range: config.ip_range,
            })
        })
        .collect();
    NetworkSpec {
        driver: network.driver.unwrap_or_default(),
        internal: network.internal.unwrap_or(false),
        external: false,
        driver_opts: network.options.unwrap_or_default().into_iter().collect(),
        labels: network.labels.unwrap_or_default().into_iter().collect(),
        subnets,
        enable_ipv6: network.enable_ipv6.unwrap_or(false),
    }
}

fn engine_error(action: &str) -> impl Fn(bollard::errors::Error) -> ApplyError + '_ {
    move |e| ApplyError::Engine {
        action: action.to_string(),
        message: e.to_string(),
    }
}

/// `/dev/x`, `/dev/x:/dev/y` or `/dev/x:/dev/y:rw`, as `docker run --device` reads it.
fn device_mapping(device: &str) -> bollard::models::DeviceMapping {
    let mut parts = device.splitn(3, ':');
    let host = parts.next().unwrap_or(device).to_string();
    let container = parts.next().map_or_else(|| host.clone(), str::to_string);
    let permissions = parts.next().unwrap_or("rwm").to_string();
    bollard::models::DeviceMapping {
        path_on_host: Some(host),
        path_in_container: Some(container),
        cgroup_permissions: Some(permissions),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_replica_takes_its_own_port_of_a_range() {
        assert_eq!(replica_port("8000-8002", 1), "8000");
        assert_eq!(replica_port("8000-8002", 3), "8002");
        assert_eq!(replica_port("5432", 2), "5432");
    }

    #[test]
    fn restart_policies_read_as_compose_writes_them() {
        let policy = restart_policy("on-failure:3");
        assert_eq!(policy.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(policy.maximum_retry_count, Some(3));
        assert_eq!(
            restart_policy("unless-stopped").name,
            Some(RestartPolicyNameEnum::UNLESS_STOPPED)
        );
        assert_eq!(restart_policy("no").name, Some(RestartPolicyNameEnum::NO));
    }
}
