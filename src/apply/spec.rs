//! What the engine should run for one stack: networks, volumes, and a container spec per
//! service, with every variable expanded and every host path absolute. Pure: the same
//! model, values and places give the same spec, and so the same config hashes.
//!
//! Names follow Compose's, so people find their way around `docker ps`: containers
//! `<stack>-<service>-<n>`, networks and volumes `<stack>_<key>`, a `<stack>_default`
//! network for services that name none, and the service name as a DNS alias.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::secrets::{host_secret, placeholder};
use super::values::Values;
use crate::model::{
    Build, Command, Condition, GpuCount, HealthTest, Healthcheck, Logging, Mount, MountKind,
    Network, Param, Port, Published, Service, Stack, Text,
};
use crate::model::{ByteSize, Duration};

/// The whole stack as the engine should hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Desired {
    pub stack: String,
    pub profile: String,
    /// Keyed by engine name.
    pub networks: BTreeMap<String, NetworkSpec>,
    /// Keyed by engine name.
    pub volumes: BTreeMap<String, VolumeSpec>,
    pub services: BTreeMap<String, ServiceSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    pub driver: String,
    pub internal: bool,
    /// Made by someone else: used, never created or removed.
    pub external: bool,
    // Later additions default when a generation written before them is read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subnets: Vec<SubnetSpec>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub enable_ipv6: bool,
}

/// One address range of a network, as the engine's IPAM configuration has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetSpec {
    pub subnet: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
}

impl NetworkSpec {
    fn of(network: &Network) -> NetworkSpec {
        let Network {
            description: _,
            name: _, // the key of `Desired::networks`
            driver,
            internal,
            attachable: _, // Swarm only
            driver_opts,
            labels,
            external,
            subnets,
            enable_ipv6,
        } = network;
        NetworkSpec {
            driver: driver.clone(),
            internal: *internal,
            external: *external,
            driver_opts: driver_opts.clone(),
            labels: labels.clone(),
            subnets: subnets
                .iter()
                .map(|s| SubnetSpec {
                    subnet: s.subnet.to_string(),
                    gateway: s.gateway.map(|ip| ip.to_string()),
                    ip_range: s.ip_range.map(|range| range.to_string()),
                })
                .collect(),
            enable_ipv6: *enable_ipv6,
        }
    }
}

/// A container's fixed addresses on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    pub driver: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub external: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub depends_on: BTreeMap<String, Condition>,
    /// The dependencies whose replacement or restart restarts this service (Compose's
    /// `depends_on.<name>.restart`): apply recreates it after them.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub restart_with: BTreeSet<String>,
    /// A job others wait on to complete: it runs once and exits 0.
    pub one_shot: bool,
    pub replicas: u32,
    pub build: Option<BuildSpec>,
    pub container: ContainerSpec,
    /// The backup apply takes before it recreates or removes the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupSpec>,
}

/// A service's backup, as its systemd backup unit runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSpec {
    /// Run by `sh -c`; the dump on its standard output.
    pub command: String,
    /// Reads a dump on its standard input.
    pub restore: Option<String>,
    pub extension: String,
    /// Dumped from a one-off container while the service is stopped.
    pub offline: bool,
    /// The stack's backup folder on the host.
    pub dir: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildSpec {
    pub context: PathBuf,
    pub dockerfile: Option<String>,
    pub target: Option<String>,
    pub args: BTreeMap<String, String>,
}

/// One container, as its replicas share it. Everything that, changed, means the container
/// must be recreated is here, and nothing else: its hash is the `berth.config-hash` label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub image: String,
    /// The image ID the reference resolved to when the spec was applied; a rollback runs
    /// this exact image even if the tag has moved since.
    pub image_id: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub environment: BTreeMap<String, String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub ports: Vec<PortSpec>,
    pub mounts: Vec<MountSpec>,
    pub tmpfs: Vec<String>,
    /// Engine names of the networks, each joined with the service name as alias.
    pub networks: Vec<String>,
    pub healthcheck: Option<HealthSpec>,
    pub restart: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub logging: Option<LoggingSpec>,
    pub ulimits: BTreeMap<String, (i64, i64)>,
    pub extra_hosts: Vec<String>,
    pub stop_grace_seconds: Option<u64>,
    pub init: Option<bool>,
    pub read_only: Option<bool>,
    pub privileged: Option<bool>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub shm_size: Option<u64>,
    pub memory: Option<u64>,
    pub memory_reservation: Option<u64>,
    pub nano_cpus: Option<u64>,
    // Later additions are left out of the canonical JSON when unset, so that the hash
    // of a container deployed before they existed does not change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    /// Extra host names on a network (engine name), besides the service name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aliases: BTreeMap<String, Vec<String>>,
    /// Fixed addresses on a network (engine name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub addresses: BTreeMap<String, AddressSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_opt: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stdin_open: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<GpuSpec>,
    /// The secrets the container uses (in placeholders or as files), each with the keyed
    /// digest of its value: a changed value changes the hash, and no value is kept.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
    /// Secret files, path in the container → secret name: copied in by the engine API
    /// between create and start, never written on the host.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_files: BTreeMap<String, String>,
}

/// A GPU request as the engine takes it: `count` -1 is all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuSpec {
    pub driver: String,
    pub count: Option<i64>,
    pub device_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    pub target: u16,
    pub protocol: String,
    pub host_ip: Option<String>,
    /// A port, or a range `a-b` whose n-th port goes to replica n.
    pub published: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    pub kind: String,
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
    /// A bind's SELinux relabelling, `z` or `Z` (absent from earlier generations' records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selinux: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthSpec {
    /// `CMD …` or `CMD-SHELL …`, as the engine takes it.
    pub test: Vec<String>,
    pub interval_ns: u64,
    pub timeout_ns: u64,
    pub retries: u32,
    pub start_period_ns: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggingSpec {
    pub driver: String,
    pub options: BTreeMap<String, String>,
}

/// Where host paths come from: relative bind sources, secret files, build contexts.
pub struct Places<'a> {
    /// Folder that relative build contexts start from.
    pub build_root: &'a Path,
    /// The host path a relative bind source (`./prometheus`) is mounted from.
    pub bind: &'a dyn Fn(&str) -> PathBuf,
    /// The keyed digest of a secret's value, by name.
    pub digest: &'a dyn Fn(&str) -> String,
    /// The variables of an env file (path as the service names it); empty when the file
    /// is missing, which pre-flight has already refused unless the file is optional.
    pub env_file: &'a dyn Fn(&str) -> BTreeMap<String, String>,
}

impl ContainerSpec {
    /// The names the container answers to on `network`: the service's, then its aliases.
    pub fn aliases_on(&self, network: &str, service: &str) -> Vec<String> {
        std::iter::once(service.to_string())
            .chain(self.aliases.get(network).into_iter().flatten().cloned())
            .collect()
    }

    /// The spec with each secret placeholder replaced by its value: what the engine gets,
    /// and only the engine.
    ///
    /// # Errors
    /// The name of a secret with no value.
    pub fn revealed<'a>(
        &self,
        value: &impl Fn(&str) -> Option<&'a str>,
    ) -> Result<ContainerSpec, String> {
        let json = serde_json::to_value(self).map_err(|e| e.to_string())?;
        let json = reveal_json(json, value)?;
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    /// Every secret name the spec's placeholders and files refer to.
    pub fn secret_names(&self) -> std::collections::BTreeSet<String> {
        let names = std::cell::RefCell::new(std::collections::BTreeSet::new());
        let record = |name: &str| {
            names.borrow_mut().insert(name.to_string());
            Some("")
        };
        if let Ok(json) = serde_json::to_value(self) {
            let _ = reveal_json(json, &record);
        }
        let mut names = names.into_inner();
        names.extend(self.secret_files.values().cloned());
        names
    }

    /// The `berth.config-hash` of this spec: SHA-256 of its canonical JSON (maps are
    /// sorted, so the same spec always hashes the same), first 16 hex digits.
    pub fn hash(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex(&Sha256::digest(&json))[..16].to_string()
    }
}

impl Desired {
    /// Engine name of a service's n-th container (n from 1).
    pub fn container_name(&self, service: &str, replica: u32) -> String {
        format!("{}-{service}-{replica}", self.stack)
    }
}

fn reveal_json<'a>(
    json: serde_json::Value,
    value: &impl Fn(&str) -> Option<&'a str>,
) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    Ok(match json {
        Value::String(text) => Value::String(super::secrets::reveal(&text, value)?),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| reveal_json(item, value))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, item)| Ok((key, reveal_json(item, value)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other,
    })
}

pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The desired state of `stack` on a host where its variables have `values`.
pub fn desired(stack: &Stack, values: &Values, places: &Places<'_>) -> Desired {
    let stack = &*stack.with_volume_owners();
    let default_network = stack.network_engine_name("default");
    let uses_default = stack.services.values().any(|s| s.networks.is_empty());
    let mut networks: BTreeMap<String, NetworkSpec> = stack
        .networks
        .iter()
        .map(|(key, network)| (stack.network_engine_name(key), NetworkSpec::of(network)))
        .collect();
    if uses_default && !networks.contains_key(&default_network) {
        networks.insert(default_network, NetworkSpec::of(&Network::default()));
    }
    let volumes = stack
        .volumes
        .iter()
        .map(|(key, volume)| {
            (
                stack.volume_engine_name(key),
                VolumeSpec {
                    driver: volume.driver.clone(),
                    labels: volume.labels.clone(),
                    external: volume.external,
                },
            )
        })
        .collect();
    let one_shots = stack.awaited(Condition::Completed);
    let services = stack
        .services
        .iter()
        .map(|(name, service)| {
            let spec = ServiceSpec {
                depends_on: service
                    .depends_on
                    .iter()
                    .map(|(name, dependency)| (name.clone(), dependency.condition))
                    .collect(),
                restart_with: service
                    .depends_on
                    .iter()
                    .filter(|(_, dependency)| dependency.restart)
                    .map(|(name, _)| name.clone())
                    .collect(),
                one_shot: one_shots.contains(name.as_str()),
                replicas: service.replicas,
                build: service
                    .build
                    .as_ref()
                    .map(|build| build_spec(build, values, places)),
                container: container_spec(stack, name, service, values, places),
                backup: service.backup.as_ref().map(|backup| BackupSpec {
                    command: backup.command.clone(),
                    restore: backup.restore.clone(),
                    extension: backup.extension.clone(),
                    offline: backup.offline,
                    dir: stack.backup_dir(),
                }),
            };
            (name.clone(), spec)
        })
        .collect();
    Desired {
        stack: stack.name.clone(),
        profile: stack.profile.name.clone(),
        networks,
        volumes,
        services,
    }
}

/// The image a service runs: its own reference, or the one its build is tagged with.
pub fn image_reference(stack: &Stack, service_name: &str, service: &Service) -> String {
    service
        .image
        .as_ref()
        .map_or_else(|| stack.built_image(service_name), ToString::to_string)
}

fn build_spec(build: &Build, values: &Values, places: &Places<'_>) -> BuildSpec {
    let Build {
        context,
        dockerfile,
        target,
        args,
        // A registry cache; the engine here builds from its local cache.
        cache_from: _,
    } = build;
    BuildSpec {
        context: places.build_root.join(context.trim_start_matches("./")),
        dockerfile: dockerfile.clone(),
        target: target.clone(),
        args: args
            .iter()
            .map(|(key, value)| (key.clone(), values.expand(value)))
            .collect(),
    }
}

fn container_spec(
    stack: &Stack,
    name: &str,
    service: &Service,
    values: &Values,
    places: &Places<'_>,
) -> ContainerSpec {
    let Service {
        description: _,
        // Compose-only: apply names containers itself (one per replica), runs every
        // service of the stack, resolves images in pre-flight and shows no logs.
        container_name: _,
        platform: _,
        pull_policy: _,
        compose_profiles: _,
        attach: _,
        // Refused before this point (`unsupported`).
        network_mode: _,
        env_file,
        network_aliases,
        network_addresses,
        hostname,
        stop_signal,
        devices,
        sysctls,
        image,
        build: _,
        command,
        entrypoint,
        working_dir,
        user,
        // `Stack::with_volume_owners` has added the chown job and the dependency on it.
        volume_owner: _,
        environment,
        host_environment,
        ports,
        volumes,
        // Mounted through `volumes`, where `model::files::resolve` put their bind mounts.
        files: _,
        secrets,
        networks,
        depends_on: _,
        healthcheck,
        restart,
        replicas: _,
        // One host: one container, what a global service is on every node.
        global: _,
        // One host: there is no node to choose.
        placement: _,
        resources,
        labels,
        logging,
        ulimits,
        extra_hosts,
        stop_grace_period,
        init,
        read_only,
        privileged,
        cap_add,
        cap_drop,
        shm_size,
        tmpfs,
        dns,
        dns_search,
        dns_opt,
        tty,
        stdin_open,
        pid,
        security_opt,
        gpus,
        // Not the container's: `ServiceSpec::backup`, taken before a risky change.
        backup: _,
        metrics: _,
        kubernetes: _,
    } = service;
    let expand = |text: &Text| values.expand(text);
    let image = match image {
        Some(image) => values.expand(image),
        None => image_reference(stack, name, service),
    };
    let mounts: Vec<MountSpec> = volumes
        .iter()
        .map(|mount| mount_spec(stack, mount, values, places))
        .collect();
    let secret_files = secrets
        .iter()
        .map(|mount| {
            (
                format!("/run/secrets/{}", mount.file_name()),
                secret_name(stack, &mount.variable),
            )
        })
        .collect();
    let network_name = |key: &String| stack.network_engine_name(key);
    let aliases = network_aliases
        .iter()
        .map(|(key, names)| (network_name(key), names.iter().map(expand).collect()))
        .collect();
    let addresses = network_addresses
        .iter()
        .map(|(key, address)| {
            let spec = AddressSpec {
                ipv4: address.ipv4.map(|ip| ip.to_string()),
                ipv6: address.ipv6.map(|ip| ip.to_string()),
            };
            (network_name(key), spec)
        })
        .collect();
    // As Compose: each file in order, later ones win, `environment` over all of them.
    let mut environment_of_files = BTreeMap::new();
    for file in env_file {
        environment_of_files.extend((places.env_file)(&values.expand(&file.path)));
    }
    let mut networks: Vec<String> = if networks.is_empty() {
        vec![format!("{}_default", stack.name)]
    } else {
        networks.iter().map(network_name).collect()
    };
    // A network the service has aliases on is one it joins (as the Compose renderer says).
    for key in network_aliases.keys() {
        let name = network_name(key);
        if !networks.contains(&name) {
            networks.push(name);
        }
    }
    let mut spec = ContainerSpec {
        image,
        image_id: None,
        entrypoint: entrypoint.as_ref().map(|c| argv(c, values)),
        command: command.as_ref().map(|c| argv(c, values)),
        environment: environment_of_files
            .into_iter()
            .chain(
                environment
                    .iter()
                    .map(|(key, value)| (key.clone(), expand(value))),
            )
            .chain(host_environment.iter().filter_map(|name| {
                let secret = host_secret(name);
                values
                    .secret(&secret)
                    .map(|_| (name.clone(), placeholder(&secret)))
            }))
            .collect(),
        user: user.as_ref().map(expand),
        working_dir: working_dir.as_ref().map(expand),
        ports: ports
            .iter()
            .map(|port| port_spec(stack, port, values))
            .collect(),
        mounts,
        tmpfs: tmpfs.clone(),
        networks,
        healthcheck: healthcheck.as_ref().map(|h| health_spec(h, values)),
        restart: restart
            .as_ref()
            .map(|restart| on_host(values, restart).as_str().to_string()),
        labels: labels
            .iter()
            .map(|(key, value)| (key.clone(), expand(value)))
            .collect(),
        logging: logging
            .as_ref()
            .map(|Logging { driver, options }| LoggingSpec {
                driver: driver.clone(),
                options: options.clone(),
            }),
        ulimits: ulimits
            .iter()
            .map(|(name, limit)| (name.clone(), (limit.soft, limit.hard)))
            .collect(),
        extra_hosts: extra_hosts
            .iter()
            .map(|(host, address)| format!("{host}:{address}"))
            .collect(),
        stop_grace_seconds: stop_grace_period.as_ref().map(Duration::seconds_ceil),
        init: *init,
        read_only: *read_only,
        privileged: *privileged,
        cap_add: cap_add.clone(),
        cap_drop: cap_drop.clone(),
        shm_size: shm_size.as_ref().map(ByteSize::bytes),
        memory: resources.limits.memory.as_ref().map(ByteSize::bytes),
        memory_reservation: resources.reservations.memory.as_ref().map(ByteSize::bytes),
        nano_cpus: resources
            .limits
            .cpus
            .map(|cpus| (cpus * 1e9).round() as u64),
        hostname: hostname.as_ref().map(expand),
        stop_signal: stop_signal.clone(),
        devices: devices.iter().map(expand).collect(),
        sysctls: sysctls.clone(),
        aliases,
        addresses,
        dns: dns.clone(),
        dns_search: dns_search.clone(),
        dns_opt: dns_opt.clone(),
        tty: *tty,
        stdin_open: *stdin_open,
        pid: pid.map(|pid| pid.as_str().to_string()),
        security_opt: security_opt.clone(),
        gpus: gpus.as_ref().map(|gpus| GpuSpec {
            driver: gpus.driver.clone(),
            count: (!gpus.by_id()).then_some(match gpus.count {
                GpuCount::All => -1,
                GpuCount::Count(n) => i64::from(n),
            }),
            device_ids: gpus.device_ids.clone(),
        }),
        secrets: BTreeMap::new(),
        secret_files,
    };
    spec.secrets = spec
        .secret_names()
        .into_iter()
        .map(|name| {
            let digest = (places.digest)(&name);
            (name, digest)
        })
        .collect();
    spec
}

/// The name a mounted secret has in the spec: the variable, or for one read from a file
/// the file (see [`super::secrets::file_secret`]), which a rollback reads again.
fn secret_name(stack: &Stack, variable: &str) -> String {
    match stack.secret_file(variable) {
        Some(path) => super::secrets::file_secret(path),
        None => variable.to_string(),
    }
}

/// What the model can say and apply cannot do yet, one sentence per service and field;
/// apply refuses the stack before it touches the engine.
pub fn unsupported(stack: &Stack) -> Vec<String> {
    crate::render::fidelity::warnings(stack, crate::render::fidelity::Backend::Apply)
        .into_iter()
        .map(|warning| {
            format!(
                "{}: {}",
                warning.diagnostic.field, warning.diagnostic.message
            )
        })
        .collect()
}

/// An argument vector the way Compose makes one: a string is split like a shell would
/// split it (no shell runs), a list is taken as is.
fn argv(command: &Command, values: &Values) -> Vec<String> {
    match command {
        Command::Exec(args) => args.iter().map(|arg| values.expand(arg)).collect(),
        // Compose interpolates first and splits the result, so a value with spaces makes
        // several words there too.
        Command::Shell(line) => {
            let line = values.expand(line);
            shell_words::split(&line).unwrap_or_else(|_| vec!["sh".into(), "-c".into(), line])
        }
    }
}

fn port_spec(stack: &Stack, port: &Port, values: &Values) -> PortSpec {
    PortSpec {
        target: on_host(values, &port.target),
        protocol: port.protocol.as_str().to_string(),
        host_ip: port.effective_host_ip(&stack.profile).map(str::to_string),
        published: port.published.as_ref().map(|published| match published {
            Published::Port(port) => port.to_string(),
            Published::Range(range) => values.expand(range),
            // The engine picks a free port for an empty host port.
            Published::Random => String::new(),
        }),
    }
}

fn mount_spec(stack: &Stack, mount: &Mount, values: &Values, places: &Places<'_>) -> MountSpec {
    let Mount {
        kind,
        source,
        target,
        read_only,
        // The engine's mount API never creates a missing host path (pre-flight refuses a
        // missing source instead).
        create_host_path: _,
        selinux,
        host_path: _,
        // A certificate folder is a plain bind to the engine (a Secret on Kubernetes only).
        tls_certificate: _,
    } = mount;
    let (kind, source) = match kind {
        MountKind::Volume => (
            "volume",
            source
                .as_ref()
                .map(|key| stack.volume_engine_name(&values.expand(key))),
        ),
        MountKind::Bind => (
            "bind",
            source.as_ref().map(|source| {
                let source = values.expand(source);
                if Path::new(&source).is_absolute() {
                    source
                } else {
                    (places.bind)(&source).display().to_string()
                }
            }),
        ),
        MountKind::Tmpfs => ("tmpfs", None),
    };
    MountSpec {
        kind: kind.into(),
        source,
        target: target.clone(),
        read_only: *read_only,
        selinux: selinux.clone().filter(|_| kind == "bind"),
    }
}

/// A typed field as this host sets it (see `Values::param`). Apply's pre-flight refuses a
/// host value that is no value of the field ([`typed_value_problems`]), so the declared
/// default taken here otherwise is only for callers that skipped it.
fn on_host<T: Clone + DeserializeOwned>(values: &Values, param: &Param<T>) -> T {
    values
        .param(param)
        .unwrap_or_else(|_| param.value().clone())
}

/// Typed fields whose variable has a value on this host that is no value of the field.
pub fn typed_value_problems(stack: &Stack, values: &Values) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, service) in &stack.services {
        let mut check = |field: &str, problem: Option<String>| {
            if let Some(problem) = problem {
                problems.push(format!("{name}: {field}: {problem}"));
            }
        };
        if let Some(restart) = &service.restart {
            check("restart", values.param(restart).err());
        }
        for (index, port) in service.ports.iter().enumerate() {
            check(
                &format!("ports[{index}].target"),
                values.param(&port.target).err(),
            );
        }
        if let Some(healthcheck) = &service.healthcheck {
            let Healthcheck {
                test: _,
                interval,
                timeout,
                retries,
                start_period,
            } = healthcheck;
            check("healthcheck.interval", values.param(interval).err());
            check("healthcheck.timeout", values.param(timeout).err());
            check("healthcheck.retries", values.param(retries).err());
            if let Some(start) = start_period {
                check("healthcheck.start_period", values.param(start).err());
            }
        }
    }
    problems
}

fn health_spec(healthcheck: &Healthcheck, values: &Values) -> HealthSpec {
    let Healthcheck {
        test,
        interval,
        timeout,
        retries,
        start_period,
    } = healthcheck;
    let test = match test {
        HealthTest::Exec(args) => std::iter::once("CMD".to_string())
            .chain(args.iter().map(|arg| values.expand(arg)))
            .collect(),
        HealthTest::Shell(line) => vec!["CMD-SHELL".into(), values.expand(line)],
        HealthTest::Http { http } => std::iter::once("CMD".to_string())
            .chain(http.command())
            .collect(),
    };
    HealthSpec {
        test,
        interval_ns: on_host(values, interval).nanos(),
        timeout_ns: on_host(values, timeout).nanos(),
        retries: on_host(values, retries),
        start_period_ns: start_period
            .as_ref()
            .map(|start| on_host(values, start).nanos()),
    }
}
