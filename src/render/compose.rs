//! Renders a stack as a Compose file (current Compose specification, no `version:`).
//! Pure. Variables become `${NAME:-default}` / `${NAME:?message}`; every other `$` is
//! escaped, so compose never interpolates what the user meant literally.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use serde_saphyr::{Commented, FlowSeq};

use super::yaml::to_yaml;
use super::{Artifact, RenderError, header};
use crate::model::net::{NetworkAddress, Subnet};
use crate::model::{
    Build, Command, Condition, EnvFile, GpuCount, Gpus, HealthTest, Healthcheck, Logging, Mount,
    MountKind, Network, Param, Pid, Placement, Port, Published, ResourceSet, Resources,
    SecretMount, Service, Stack, Text, Ulimit, Variable, Volume,
};

pub const FILE_NAME: &str = "compose.yaml";

/// `compose.yaml` for `stack`.
///
/// # Errors
/// Only if the YAML serializer fails.
pub fn compose(stack: &Stack) -> Result<Artifact, RenderError> {
    let stack = &*stack.with_volume_owners();
    let file = ComposeFile {
        name: stack.name.clone(),
        services: stack
            .services
            .iter()
            .map(|(name, service)| (name.clone(), service_of(stack, name, service)))
            .collect(),
        volumes: stack
            .volumes
            .iter()
            .map(|(name, volume)| (name.clone(), volume_of(volume)))
            .collect(),
        networks: stack
            .networks
            .iter()
            .map(|(name, network)| (name.clone(), network_of(network)))
            .collect(),
        secrets: stack
            .services
            .values()
            .flat_map(|service| &service.secrets)
            .map(|mount| (mount.file_name(), secret_of(stack, &mount.variable)))
            .collect(),
    };
    let body = to_yaml(FILE_NAME, &file)?;
    Ok(Artifact {
        path: PathBuf::from(FILE_NAME),
        contents: format!("{}{body}", header(stack)),
    })
}

// -- the Compose file's own types, in the key order people write them ----------------------

#[derive(Serialize)]
struct ComposeFile {
    name: String,
    services: BTreeMap<String, ComposeService>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    volumes: BTreeMap<String, ComposeVolume>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    networks: BTreeMap<String, ComposeNetwork>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    secrets: BTreeMap<String, ComposeSecret>,
}

/// A secret compose mounts at /run/secrets/<its key>: read from an environment variable
/// (the filled-in .env), so the value never sits in the compose file, or from a file.
#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum ComposeSecret {
    Environment(String),
    /// Relative to the project directory, as bind sources are.
    File(String),
}

#[derive(Serialize)]
struct ComposeService {
    #[serde(skip_serializing_if = "Option::is_none")]
    container_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    profiles: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pull_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    build: Option<ComposeBuild>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entrypoint: Option<ComposeCommand>,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<ComposeCommand>,
    #[serde(skip_serializing_if = "Option::is_none")]
    working_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    env_file: Vec<ComposeEnvFile>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    environment: BTreeMap<String, EnvValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ports: Vec<ComposePort>,
    /// Ports reachable on the stack network only. (A long-syntax port without `published`
    /// would be published on a random host port, which is not what an internal port means.)
    #[serde(skip_serializing_if = "Vec::is_empty")]
    expose: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    volumes: Vec<ComposeMount>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tmpfs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    secrets: Vec<String>,
    #[serde(skip_serializing_if = "ComposeNetworks::is_empty")]
    networks: ComposeNetworks,
    #[serde(skip_serializing_if = "Option::is_none")]
    network_mode: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    depends_on: BTreeMap<String, ComposeDependency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    healthcheck: Option<ComposeHealthcheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restart: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deploy: Option<ComposeDeploy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_grace_period: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attach: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    init: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    privileged: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cap_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cap_drop: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    devices: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    sysctls: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shm_size: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    ulimits: BTreeMap<String, ComposeUlimit>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    extra_hosts: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logging: Option<ComposeLogging>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dns: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dns_search: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dns_opt: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tty: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stdin_open: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    security_opt: Vec<String>,
}

/// An argument vector: on one line (`[CMD, curl, -f, …]`) when every word reads the same
/// there, else one word per line: inside brackets Compose's go-yaml stops a plain word at
/// `?` that serde-saphyr leaves unquoted (seen with Compose v2.40), so such words go one
/// per line.
#[derive(Serialize)]
#[serde(untagged)]
enum Words {
    Flow(FlowSeq<Vec<String>>),
    Block(Vec<String>),
}

fn words(words: Vec<String>) -> Words {
    let flow_safe = |word: &String| {
        !word.is_empty()
            && word.trim() == word
            && !word.contains(['?', '\n'])
            && !word.contains(": ")
            && !word.contains(" #")
    };
    if words.iter().all(flow_safe) {
        Words::Flow(FlowSeq(words))
    } else {
        Words::Block(words)
    }
}

/// `path`, or `{path, required: false}` for a file that may be missing.
#[derive(Serialize)]
#[serde(untagged)]
enum ComposeEnvFile {
    Required(String),
    Optional { path: String, required: bool },
}

/// The networks a service joins: a list, or a map when it has aliases on some of them.
#[derive(Serialize)]
#[serde(untagged)]
enum ComposeNetworks {
    List(Vec<String>),
    Map(BTreeMap<String, Option<ComposeServiceNetwork>>),
}

impl ComposeNetworks {
    fn is_empty(&self) -> bool {
        match self {
            ComposeNetworks::List(names) => names.is_empty(),
            ComposeNetworks::Map(names) => names.is_empty(),
        }
    }
}

#[derive(Serialize, Default)]
struct ComposeServiceNetwork {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ipv4_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ipv6_address: Option<String>,
}

/// An environment value; one that falls back to a dev-only secret says so on its line.
#[derive(Serialize)]
#[serde(untagged)]
enum EnvValue {
    Plain(String),
    Marked(Commented<String>),
    /// `NAME: null`: Compose passes the deploy environment's value, or leaves it unset.
    FromHost(()),
}

#[derive(Serialize)]
struct ComposeBuild {
    context: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    dockerfile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    args: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cache_from: Vec<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ComposeCommand {
    Shell(String),
    Exec(Words),
}

#[derive(Serialize)]
struct ComposePort {
    target: ComposeTarget,
    #[serde(skip_serializing_if = "Option::is_none")]
    published: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host_ip: Option<String>,
    protocol: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_protocol: Option<String>,
}

#[derive(Serialize)]
struct ComposeMount {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    target: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    bind: Option<ComposeBindOptions>,
}

#[derive(Serialize)]
struct ComposeBindOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    selinux: Option<String>,
    /// Written for every bind, `false` included: Compose v2 creates a missing bind source
    /// (as an empty root-owned folder) unless told `false`, even in the long syntax.
    #[serde(skip_serializing_if = "Option::is_none")]
    create_host_path: Option<bool>,
}

#[derive(Serialize)]
struct ComposeDependency {
    condition: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    restart: bool,
}

#[derive(Serialize)]
struct ComposeHealthcheck {
    test: Words,
    interval: String,
    timeout: String,
    retries: Count,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_period: Option<String>,
}

/// A number, or the `${NAME:-default}` Compose turns into one at deploy time.
#[derive(Serialize)]
#[serde(untagged)]
enum Count {
    Number(u32),
    Variable(String),
}

#[derive(Serialize)]
struct ComposeDeploy {
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replicas: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<ComposeResources>,
    #[serde(skip_serializing_if = "Option::is_none")]
    placement: Option<ComposePlacement>,
}

#[derive(Serialize)]
struct ComposePlacement {
    constraints: Vec<String>,
}

#[derive(Serialize)]
struct ComposeResources {
    #[serde(skip_serializing_if = "Option::is_none")]
    limits: Option<ComposeResourceSet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reservations: Option<ComposeResourceSet>,
}

#[derive(Serialize)]
struct ComposeResourceSet {
    #[serde(skip_serializing_if = "Option::is_none")]
    cpus: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    devices: Vec<ComposeDevice>,
}

/// A device reservation; berth's are GPUs.
#[derive(Serialize)]
struct ComposeDevice {
    driver: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<ComposeGpuCount>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    device_ids: Vec<String>,
    capabilities: [&'static str; 1],
}

#[derive(Serialize)]
#[serde(untagged)]
enum ComposeGpuCount {
    All(&'static str),
    Count(u32),
}

#[derive(Serialize)]
struct ComposeUlimit {
    soft: i64,
    hard: i64,
}

#[derive(Serialize)]
struct ComposeLogging {
    driver: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    options: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct ComposeVolume {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    driver: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    driver_opts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    external: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct ComposeNetwork {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    driver: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    driver_opts: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    enable_ipv6: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    ipam: Option<ComposeIpam>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    internal: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    attachable: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    external: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
}

// -- model -> compose ---------------------------------------------------------------------

fn service_of(stack: &Stack, name: &str, service: &Service) -> ComposeService {
    let Service {
        description: _,
        container_name,
        hostname,
        platform,
        pull_policy,
        compose_profiles,
        image,
        build,
        command,
        entrypoint,
        working_dir,
        user,
        // `Stack::with_volume_owners` has added the chown job and the dependency on it.
        volume_owner: _,
        env_file,
        environment,
        host_environment,
        ports,
        volumes,
        // Bound through `volumes`, where `model::files::resolve` put their mounts.
        files: _,
        secrets,
        networks,
        network_aliases,
        network_addresses,
        network_mode,
        depends_on,
        healthcheck,
        restart,
        replicas,
        global,
        placement,
        resources,
        labels,
        logging,
        ulimits,
        extra_hosts,
        stop_grace_period,
        stop_signal,
        attach,
        devices,
        sysctls,
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
        // Rendered by the systemd and Prometheus backends.
        backup: _,
        metrics: _,
        // Rendered by the Kubernetes backend.
        kubernetes: _,
    } = service;
    let text = |value: &Text| interpolate(stack, value);
    ComposeService {
        container_name: container_name.as_ref().map(text),
        hostname: hostname.as_ref().map(text),
        profiles: compose_profiles.clone(),
        // A build is tagged with the name every backend runs (and `push` sends).
        image: image
            .as_ref()
            .map(text)
            .or_else(|| build.as_ref().map(|_| stack.built_image(name))),
        platform: platform.as_ref().map(text),
        pull_policy: pull_policy.as_ref().map(text),
        build: build.as_ref().map(|build| build_of(stack, build)),
        entrypoint: entrypoint
            .as_ref()
            .map(|command| command_of(stack, command)),
        command: command.as_ref().map(|command| command_of(stack, command)),
        working_dir: working_dir.as_ref().map(text),
        user: user.as_ref().map(text),
        env_file: env_file
            .iter()
            .map(|file| env_file_of(stack, file))
            .collect(),
        environment: environment
            .iter()
            .map(|(key, value)| (key.clone(), env_value(stack, value)))
            .chain(
                host_environment
                    .iter()
                    .map(|name| (name.clone(), EnvValue::FromHost(()))),
            )
            .collect(),
        ports: ports
            .iter()
            .filter(|port| port.published.is_some())
            .map(|port| port_of(stack, port))
            .collect(),
        expose: ports
            .iter()
            .filter(|port| port.published.is_none())
            .map(|port| expose_of(stack, port))
            .collect(),
        volumes: volumes.iter().map(|mount| mount_of(stack, mount)).collect(),
        tmpfs: tmpfs.clone(),
        secrets: secrets.iter().map(SecretMount::file_name).collect(),
        networks: networks_of(
            networks,
            &network_aliases
                .iter()
                .map(|(network, names)| (network.clone(), names.iter().map(text).collect()))
                .collect(),
            network_addresses,
        ),
        network_mode: network_mode.clone(),
        depends_on: depends_on
            .iter()
            .map(|(name, dependency)| {
                (
                    name.clone(),
                    ComposeDependency {
                        condition: condition_of(dependency.condition),
                        restart: dependency.restart,
                    },
                )
            })
            .collect(),
        healthcheck: healthcheck
            .as_ref()
            .map(|healthcheck| healthcheck_of(stack, healthcheck)),
        restart: restart
            .as_ref()
            .map(|restart| param(stack, restart, |r| r.as_str().to_string())),
        deploy: deploy_of(*replicas, *global, placement, resources, gpus.as_ref()),
        stop_grace_period: stop_grace_period.as_ref().map(ToString::to_string),
        stop_signal: stop_signal.clone(),
        attach: *attach,
        init: *init,
        read_only: *read_only,
        privileged: *privileged,
        cap_add: cap_add.clone(),
        cap_drop: cap_drop.clone(),
        devices: devices.iter().map(text).collect(),
        sysctls: sysctls.clone(),
        shm_size: shm_size.as_ref().map(ToString::to_string),
        ulimits: ulimits
            .iter()
            .map(|(name, Ulimit { soft, hard })| {
                (
                    name.clone(),
                    ComposeUlimit {
                        soft: *soft,
                        hard: *hard,
                    },
                )
            })
            .collect(),
        extra_hosts: extra_hosts
            .iter()
            .map(|(host, address)| format!("{host}={address}"))
            .collect(),
        labels: labels
            .iter()
            .map(|(key, value)| (key.clone(), text(value)))
            .collect(),
        logging: logging
            .as_ref()
            .map(|Logging { driver, options }| ComposeLogging {
                driver: driver.clone(),
                options: options.clone(),
            }),
        dns: dns.clone(),
        dns_search: dns_search.clone(),
        dns_opt: dns_opt.clone(),
        tty: *tty,
        stdin_open: *stdin_open,
        pid: pid.map(Pid::as_str),
        security_opt: security_opt.clone(),
    }
}

fn env_file_of(stack: &Stack, file: &EnvFile) -> ComposeEnvFile {
    let EnvFile { path, required } = file;
    let path = interpolate(stack, path);
    if *required {
        ComposeEnvFile::Required(path)
    } else {
        ComposeEnvFile::Optional {
            path,
            required: false,
        }
    }
}

/// A list of names, unless the service has aliases or fixed addresses on some network
/// (Compose then needs the map form, which names `default` when the service joins it by
/// listing no network; validation keeps aliases and addresses to networks it joins).
fn networks_of(
    networks: &[String],
    aliases: &BTreeMap<String, Vec<String>>,
    addresses: &BTreeMap<String, NetworkAddress>,
) -> ComposeNetworks {
    if aliases.is_empty() && addresses.is_empty() {
        return ComposeNetworks::List(networks.to_vec());
    }
    let joined = if networks.is_empty() {
        vec!["default".to_string()]
    } else {
        networks.to_vec()
    };
    let map = joined
        .into_iter()
        .map(|network| {
            let address = addresses.get(&network).cloned().unwrap_or_default();
            let settings = ComposeServiceNetwork {
                aliases: aliases.get(&network).cloned().unwrap_or_default(),
                ipv4_address: address.ipv4.map(|ip| ip.to_string()),
                ipv6_address: address.ipv6.map(|ip| ip.to_string()),
            };
            let plain = settings.aliases.is_empty()
                && settings.ipv4_address.is_none()
                && settings.ipv6_address.is_none();
            (network, (!plain).then_some(settings))
        })
        .collect();
    ComposeNetworks::Map(map)
}

fn build_of(stack: &Stack, build: &Build) -> ComposeBuild {
    let Build {
        context,
        dockerfile,
        target,
        args,
        cache_from,
    } = build;
    ComposeBuild {
        context: context.clone(),
        dockerfile: dockerfile.clone(),
        target: target.clone(),
        args: args
            .iter()
            .map(|(key, value)| (key.clone(), interpolate(stack, value)))
            .collect(),
        cache_from: cache_from.clone(),
    }
}

fn command_of(stack: &Stack, command: &Command) -> ComposeCommand {
    match command {
        Command::Shell(line) => ComposeCommand::Shell(interpolate(stack, line)),
        Command::Exec(args) => ComposeCommand::Exec(words(
            args.iter().map(|arg| interpolate(stack, arg)).collect(),
        )),
    }
}

/// A container port: a number, or `${NAME:-default}` (Compose turns the result into one).
#[derive(Serialize)]
#[serde(untagged)]
enum ComposeTarget {
    Number(u16),
    Variable(String),
}

fn target_of(stack: &Stack, target: &Param<u16>) -> ComposeTarget {
    match target.variable() {
        Some(_) => ComposeTarget::Variable(param(stack, target, ToString::to_string)),
        None => ComposeTarget::Number(*target.value()),
    }
}

fn port_of(stack: &Stack, port: &Port) -> ComposePort {
    let Port {
        target,
        published,
        host_ip: _,
        private: _,
        protocol,
        name,
        app_protocol,
    } = port;
    let host_ip = port.effective_host_ip(&stack.profile).map(str::to_string);
    ComposePort {
        target: target_of(stack, target),
        // Compose reads `published` as a string in its long syntax (ranges included).
        // A port in `ports` with no `published` is published on a free host port.
        published: published.as_ref().and_then(|published| match published {
            Published::Port(port) => Some(port.to_string()),
            Published::Range(range) => Some(interpolate(stack, range)),
            Published::Random => None,
        }),
        host_ip,
        protocol: protocol.as_str().to_string(),
        name: name.clone(),
        app_protocol: app_protocol.clone(),
    }
}

fn expose_of(stack: &Stack, port: &Port) -> String {
    let target = param(stack, &port.target, ToString::to_string);
    match port.protocol.as_str() {
        "tcp" => target,
        protocol => format!("{target}/{protocol}"),
    }
}

fn mount_of(stack: &Stack, mount: &Mount) -> ComposeMount {
    let Mount {
        kind,
        source,
        target,
        read_only,
        create_host_path,
        selinux,
        host_path: _,
        tls_certificate: _,
    } = mount;
    // Compose keeps the SELinux relabel flag under `bind:` for named volumes too. A bind
    // states whether Compose may create its source: a folder Compose makes in place of a
    // missing one is root's and empty (an operator's certificate folder, a configuration
    // file turned into a folder), which fails later and further from the cause than
    // Compose's "bind source path does not exist".
    let create_host_path = (*kind == MountKind::Bind).then_some(*create_host_path);
    let bind = (create_host_path.is_some() || selinux.is_some()).then(|| ComposeBindOptions {
        selinux: selinux.clone(),
        create_host_path,
    });
    ComposeMount {
        kind: match kind {
            MountKind::Volume => "volume",
            MountKind::Bind => "bind",
            MountKind::Tmpfs => "tmpfs",
        },
        source: source.as_ref().map(|source| interpolate(stack, source)),
        target: target.clone(),
        read_only: *read_only,
        bind,
    }
}

fn condition_of(condition: Condition) -> &'static str {
    match condition {
        Condition::Started => "service_started",
        Condition::Healthy => "service_healthy",
        Condition::Completed => "service_completed_successfully",
    }
}

fn healthcheck_of(stack: &Stack, healthcheck: &Healthcheck) -> ComposeHealthcheck {
    let Healthcheck {
        test,
        interval,
        timeout,
        retries,
        start_period,
    } = healthcheck;
    let test = match test {
        HealthTest::Exec(args) => std::iter::once("CMD".to_string())
            .chain(args.iter().map(|arg| interpolate(stack, arg)))
            .collect(),
        HealthTest::Shell(line) => vec!["CMD-SHELL".to_string(), interpolate(stack, line)],
        HealthTest::Http { http } => std::iter::once("CMD".to_string())
            .chain(http.command())
            .collect(),
    };
    ComposeHealthcheck {
        test: words(test),
        interval: param(stack, interval, ToString::to_string),
        timeout: param(stack, timeout, ToString::to_string),
        retries: match retries.variable() {
            Some(name) => Count::Variable(reference(stack, name)),
            None => Count::Number(*retries.value()),
        },
        start_period: start_period
            .as_ref()
            .map(|start| param(stack, start, ToString::to_string)),
    }
}

/// A typed field as Compose reads it: its value, or `${NAME:-default}` when it names a
/// variable, so the operator's `.env` changes it at deploy time.
fn param<T>(stack: &Stack, param: &Param<T>, written: impl Fn(&T) -> String) -> String {
    match param.variable() {
        Some(name) => reference(stack, name),
        None => written(param.value()),
    }
}

fn deploy_of(
    replicas: u32,
    global: bool,
    placement: &[Placement],
    resources: &Resources,
    gpus: Option<&Gpus>,
) -> Option<ComposeDeploy> {
    let set = |set: &ResourceSet| {
        (!set.is_empty()).then(|| ComposeResourceSet {
            cpus: set.cpus.map(|cpus| format!("{cpus:?}")),
            memory: set.memory.as_ref().map(ToString::to_string),
            devices: Vec::new(),
        })
    };
    let limits = set(&resources.limits);
    let mut reservations = set(&resources.reservations);
    if let Some(gpus) = gpus {
        reservations
            .get_or_insert_with(|| ComposeResourceSet {
                cpus: None,
                memory: None,
                devices: Vec::new(),
            })
            .devices
            .push(gpu_device(gpus));
    }
    let resources = (limits.is_some() || reservations.is_some()).then_some(ComposeResources {
        limits,
        reservations,
    });
    let replicas = (replicas != 1).then_some(replicas);
    let mode = global.then_some("global");
    let placement = (!placement.is_empty()).then(|| ComposePlacement {
        constraints: placement.iter().map(ToString::to_string).collect(),
    });
    let any = mode.is_some() || replicas.is_some() || resources.is_some() || placement.is_some();
    any.then_some(ComposeDeploy {
        mode,
        replicas,
        resources,
        placement,
    })
}

/// Compose refuses `count` beside `device_ids`.
fn gpu_device(gpus: &Gpus) -> ComposeDevice {
    let Gpus {
        count,
        device_ids,
        driver,
    } = gpus;
    ComposeDevice {
        driver: driver.clone(),
        count: (!gpus.by_id()).then_some(match count {
            GpuCount::All => ComposeGpuCount::All("all"),
            GpuCount::Count(n) => ComposeGpuCount::Count(*n),
        }),
        device_ids: device_ids.clone(),
        capabilities: ["gpu"],
    }
}

fn volume_of(volume: &Volume) -> ComposeVolume {
    let Volume {
        description: _,
        name,
        driver,
        driver_opts,
        external,
        labels,
        size: _,
        storage_class: _,
        // Kubernetes only: Compose's named volume is shared by its services anyway.
        cache: _,
    } = volume;
    ComposeVolume {
        name: name.clone(),
        driver: driver.clone(),
        driver_opts: driver_opts.clone(),
        external: *external,
        labels: labels.clone(),
    }
}

#[derive(Serialize)]
struct ComposeIpam {
    config: Vec<ComposeSubnet>,
}

#[derive(Serialize)]
struct ComposeSubnet {
    subnet: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_range: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway: Option<String>,
}

fn ipam_of(subnets: &[Subnet]) -> Option<ComposeIpam> {
    let config = subnets
        .iter()
        .map(
            |Subnet {
                 subnet,
                 gateway,
                 ip_range,
             }| ComposeSubnet {
                subnet: subnet.to_string(),
                ip_range: ip_range.map(|range| range.to_string()),
                gateway: gateway.map(|ip| ip.to_string()),
            },
        )
        .collect::<Vec<_>>();
    (!config.is_empty()).then_some(ComposeIpam { config })
}

fn network_of(network: &Network) -> ComposeNetwork {
    let Network {
        description: _,
        name,
        driver,
        internal,
        attachable,
        driver_opts,
        labels,
        external,
        subnets,
        enable_ipv6,
    } = network;
    ComposeNetwork {
        name: name.clone(),
        driver: driver.clone(),
        driver_opts: driver_opts.clone(),
        enable_ipv6: *enable_ipv6,
        ipam: ipam_of(subnets),
        internal: *internal,
        attachable: *attachable,
        external: *external,
        labels: labels.clone(),
    }
}

fn secret_of(stack: &Stack, variable: &str) -> ComposeSecret {
    match stack.secret_file(variable) {
        Some(file) => ComposeSecret::File(file.to_string()),
        None => ComposeSecret::Environment(variable.to_string()),
    }
}

/// Compose text for model text: references become interpolations, literal `$` is doubled.
pub(super) fn interpolate(stack: &Stack, text: &Text) -> String {
    text.render(
        escape,
        |name| reference(stack, name),
        // Validation keeps `:+` to variables whose default is empty: unset is empty.
        |name, alternative| format!("${{{name}:+{}}}", escape(alternative)),
    )
}

fn reference(stack: &Stack, name: &str) -> String {
    let Some(variable) = stack.variables.get(name) else {
        return format!("${{{name}}}");
    };
    let Variable {
        default,
        secret,
        dev_value,
        // Documentation, written into .env.template, not into the reference.
        description: _,
        group: _,
        example: _,
        // Only mounted (`secret_of`): validation refuses a reference to a file secret.
        file: _,
    } = variable;
    match (secret, default, dev_value) {
        (true, _, Some(dev_value)) if stack.profile.dev_secrets => {
            format!("${{{name}:-{}}}", escape(dev_value))
        }
        (true, _, _) => {
            format!("${{{name}:?{name} is a secret: set it in .env, see .env.template}}")
        }
        (false, Some(default), _) => format!("${{{name}:-{}}}", escape(default)),
        (false, None, _) => format!("${{{name}:?set {name} in .env, see .env.template}}"),
    }
}

fn env_value(stack: &Stack, value: &Text) -> EnvValue {
    let rendered = interpolate(stack, value);
    let uses_dev_secret = value.variables().any(|name| {
        stack
            .variables
            .get(name)
            .is_some_and(|v| v.secret && v.dev_value.is_some() && stack.profile.dev_secrets)
    });
    if uses_dev_secret {
        EnvValue::Marked(Commented(
            rendered,
            "dev-only fallback for a secret; other profiles require it".to_string(),
        ))
    } else {
        EnvValue::Plain(rendered)
    }
}

fn escape(literal: &str) -> String {
    literal.replace('$', "$$")
}
