//! The typed stack every renderer reads: deserialized from the evaluated Nickel value,
//! then checked by [`validate`] for what contracts cannot see (references, cycles, clashes).
//! Maps are `BTreeMap`, so iteration order, and with it every artifact, is deterministic.

pub mod files;
pub mod net;
pub mod param;
pub mod podman;
pub mod text;
pub mod units;

pub use param::Param;
pub use text::Text;
pub mod validate;

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::error::{Diagnostic, ModelError};
use crate::eval::Evaluated;
pub use units::{ByteSize, Duration};

/// One stack built with one profile.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Stack {
    pub name: String,
    pub description: Option<String>,
    pub namespace: Option<String>,
    pub profile: ProfileInfo,
    pub services: BTreeMap<String, Service>,
    #[serde(default)]
    pub volumes: BTreeMap<String, Volume>,
    #[serde(default)]
    pub networks: BTreeMap<String, Network>,
    #[serde(default)]
    pub variables: BTreeMap<String, Variable>,
    #[serde(default)]
    pub monitoring: Monitoring,
}

/// The profile's settings as the stack saw them.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProfileInfo {
    pub name: String,
    pub description: String,
    pub debug: bool,
    pub log_level: String,
    /// Serves real users: refuses `dev_secrets` (validated).
    pub production: bool,
    pub dev_secrets: bool,
    pub systemd: bool,
    pub quadlet: bool,
    /// The podman release Quadlet units are written for (`"5.2"`); required with `quadlet`.
    #[serde(default)]
    pub podman_version: Option<String>,
    pub metrics: bool,
    pub alerting: bool,
    pub alert_webhook: Option<String>,
    pub private_host_ip: Option<String>,
    pub scrape_interval: Duration,
    pub evaluation_interval: Duration,
    /// Where built images are pushed and pulled (see [`Stack::built_image`]).
    #[serde(default)]
    pub registry: Option<String>,
    #[serde(default = "latest")]
    pub image_tag: String,
    pub install_root: String,
    pub backup_root: String,
    /// Backends' warnings are errors: nothing is written that a backend could not carry.
    #[serde(default)]
    pub strict: bool,
}

/// Which services play which monitoring role (set by the monitoring modules).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Monitoring {
    pub prometheus: Option<String>,
    pub alertmanager: Option<String>,
    pub grafana: Option<String>,
    pub loki: Option<String>,
    pub node_exporter: Option<String>,
    pub blackbox: Option<String>,
    /// Exporter services by what they export: each gets its Grafana dashboard.
    #[serde(default)]
    pub exporters: BTreeMap<String, ExporterKind>,
    /// Secret variable whose file holds Alertmanager's webhook URL (read as `url_file`).
    pub alert_webhook_secret: Option<String>,
    /// What listens at that URL, which says the payload Alertmanager posts.
    #[serde(default)]
    pub alert_receiver: AlertReceiver,
}

/// What listens at the webhook secret's URL: Slack refuses Alertmanager's generic webhook
/// JSON ("no_text"), so a Slack URL needs Alertmanager's Slack integration.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AlertReceiver {
    /// Alertmanager's own JSON: a pager gateway, a relay.
    #[default]
    Webhook,
    /// A Slack incoming webhook.
    Slack,
}

/// What an exporter service exports, which says the panels of its dashboard.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ExporterKind {
    /// postgres_exporter (PostgreSQL, TimescaleDB).
    Postgres,
    /// redis_exporter.
    Redis,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub description: Option<String>,
    pub container_name: Option<Text>,
    pub hostname: Option<Text>,
    pub platform: Option<Text>,
    pub pull_policy: Option<Text>,
    #[serde(default)]
    pub compose_profiles: Vec<String>,
    pub image: Option<Text>,
    pub build: Option<Build>,
    pub command: Option<Command>,
    pub entrypoint: Option<Command>,
    pub working_dir: Option<Text>,
    pub user: Option<Text>,
    /// `uid[:gid]` the image writes its volumes as (see [`Stack::with_volume_owners`]).
    pub volume_owner: Option<String>,
    #[serde(default)]
    pub env_file: Vec<EnvFile>,
    #[serde(default)]
    pub environment: BTreeMap<String, Text>,
    /// Names passed from the deploy environment when set there.
    #[serde(default)]
    pub host_environment: Vec<String>,
    #[serde(default)]
    pub ports: Vec<Port>,
    #[serde(default)]
    pub volumes: Vec<Mount>,
    /// Files berth writes and mounts read-only, by their path in the container; resolved
    /// into `volumes` by [`files::resolve`] before rendering.
    #[serde(default)]
    pub files: BTreeMap<String, GeneratedFile>,
    /// Secret variables mounted as files under /run/secrets.
    #[serde(default)]
    pub secrets: Vec<SecretMount>,
    #[serde(default)]
    pub networks: Vec<String>,
    #[serde(default)]
    pub network_aliases: BTreeMap<String, Vec<Text>>,
    /// Fixed addresses by network key.
    #[serde(default)]
    pub network_addresses: BTreeMap<String, net::NetworkAddress>,
    pub network_mode: Option<String>,
    #[serde(default)]
    pub depends_on: BTreeMap<String, Dependency>,
    pub healthcheck: Option<Healthcheck>,
    pub restart: Option<Param<Restart>>,
    #[serde(default = "one")]
    pub replicas: u32,
    /// One container per node (`deploy.mode: global`).
    #[serde(default)]
    pub global: bool,
    /// Which nodes may run it (Swarm's constraint syntax; the contract checks the form).
    #[serde(default)]
    pub placement: Vec<Placement>,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub labels: BTreeMap<String, Text>,
    pub logging: Option<Logging>,
    #[serde(default)]
    pub ulimits: BTreeMap<String, Ulimit>,
    #[serde(default)]
    pub extra_hosts: BTreeMap<String, String>,
    pub stop_grace_period: Option<Duration>,
    pub stop_signal: Option<String>,
    pub attach: Option<bool>,
    #[serde(default)]
    pub devices: Vec<Text>,
    #[serde(default, deserialize_with = "env_map")]
    pub sysctls: BTreeMap<String, String>,
    pub init: Option<bool>,
    pub read_only: Option<bool>,
    pub privileged: Option<bool>,
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub cap_drop: Vec<String>,
    pub shm_size: Option<ByteSize>,
    #[serde(default)]
    pub tmpfs: Vec<String>,
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub dns_search: Vec<String>,
    #[serde(default)]
    pub dns_opt: Vec<String>,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub stdin_open: bool,
    pub pid: Option<Pid>,
    #[serde(default)]
    pub security_opt: Vec<String>,
    pub gpus: Option<Gpus>,
    pub backup: Option<Backup>,
    pub metrics: Option<Metrics>,
    #[serde(default)]
    pub kubernetes: Kubernetes,
}

/// A file a service mounts whose text comes from the model: a Nickel string or a template.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GeneratedFile {
    pub content: Option<String>,
    /// A minijinja template, relative to the project root (`berth:<path>`: the library's).
    pub template: Option<String>,
    /// What the module hands its template besides the stack (`params` in the context),
    /// e.g. the nginx module's routes.
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
}

/// What only the Kubernetes backend reads.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Kubernetes {
    pub replicas: Option<u32>,
    pub autoscaling: Option<Autoscaling>,
    pub ingress: Option<Ingress>,
    #[serde(default)]
    pub run_as_non_root: bool,
    pub stateful: Option<bool>,
    /// Runs inside every pod of this other service (a native side-car).
    pub sidecar_of: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Autoscaling {
    pub min: u32,
    pub max: u32,
    pub cpu_percent: Option<u32>,
    pub memory_percent: Option<u32>,
    pub scale_up: Option<ScalePolicy>,
    pub scale_down: Option<ScalePolicy>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScalePolicy {
    pub percent: Option<u32>,
    pub pods: Option<u32>,
    pub period: Duration,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Ingress {
    pub host: String,
    #[serde(default = "root_path")]
    pub path: String,
    pub port: Option<u16>,
    #[serde(default = "yes")]
    pub tls: bool,
    #[serde(default = "letsencrypt")]
    pub issuer: String,
    pub class: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Build {
    pub context: String,
    pub dockerfile: Option<String>,
    pub target: Option<String>,
    #[serde(default)]
    pub args: BTreeMap<String, Text>,
    #[serde(default)]
    pub cache_from: Vec<String>,
}

/// A file of environment variables that Compose reads when it creates the container.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EnvFile {
    pub path: Text,
    #[serde(default = "yes")]
    pub required: bool,
}

/// A command or entrypoint: run by a shell, or as an argument vector.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(try_from = "WrittenCommand")]
pub enum Command {
    Shell(Text),
    Exec(Vec<Text>),
}

/// How a module writes a command; parsed into [`Text`] after the variant is chosen, so
/// that a malformed reference keeps its own message (an untagged enum would say only
/// "did not match any variant").
#[derive(Deserialize)]
#[serde(untagged)]
enum WrittenCommand {
    Shell(String),
    Exec(Vec<String>),
}

impl TryFrom<WrittenCommand> for Command {
    type Error = String;
    fn try_from(written: WrittenCommand) -> Result<Self, String> {
        Ok(match written {
            WrittenCommand::Shell(line) => Command::Shell(Text::parse(&line)?),
            WrittenCommand::Exec(args) => Command::Exec(texts(&args)?),
        })
    }
}

fn texts(words: &[String]) -> Result<Vec<Text>, String> {
    words.iter().map(|word| Text::parse(word)).collect()
}

impl Command {
    /// The argument vector, a shell string split into words the way Compose splits it
    /// (quotes removed, references kept whole). `None` when the string does not split
    /// (an unbalanced quote): run it through `sh -c` instead.
    pub fn words(&self) -> Option<Vec<Text>> {
        match self {
            Command::Exec(args) => Some(args.clone()),
            Command::Shell(line) => shell_words::split(&line.source())
                .ok()?
                .iter()
                .map(|word| Text::parse(word).ok())
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Port {
    pub target: Param<u16>,
    pub published: Option<Published>,
    pub host_ip: Option<String>,
    #[serde(default)]
    pub private: bool,
    #[serde(default)]
    pub protocol: Protocol,
    pub name: Option<String>,
    pub app_protocol: Option<String>,
}

/// A host port, or a range of them (one per replica), or a `${VARIABLE}` holding the port.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(try_from = "WrittenPublished")]
pub enum Published {
    Port(u16),
    Range(Text),
    /// A free host port the engine picks when the container starts.
    Random,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WrittenPublished {
    Port(u16),
    Range(String),
}

impl TryFrom<WrittenPublished> for Published {
    type Error = String;
    fn try_from(written: WrittenPublished) -> Result<Self, String> {
        Ok(match written {
            WrittenPublished::Port(port) => Published::Port(port),
            WrittenPublished::Range(range) if range == "random" => Published::Random,
            WrittenPublished::Range(range) => Published::Range(Text::parse(&range)?),
        })
    }
}

impl Published {
    /// The variable that holds the port, for `"${HTTP_PORT}"`.
    pub fn variable(&self) -> Option<&str> {
        match self {
            Published::Port(_) | Published::Random => None,
            Published::Range(text) => text.sole_variable(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    #[serde(rename = "type", default = "volume_kind")]
    pub kind: MountKind,
    pub source: Option<Text>,
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub create_host_path: bool,
    pub selinux: Option<String>,
    #[serde(default)]
    pub host_path: bool,
    /// A bind of the operator's TLS certificate folder (`tls.crt`, `tls.key`): a TLS
    /// Secret on Kubernetes, and the install text says where to put the files.
    #[serde(default)]
    pub tls_certificate: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Volume,
    Bind,
    Tmpfs,
}

/// What a dependency must reach before its dependent starts.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    Started,
    Healthy,
    Completed,
}

/// One entry of `depends_on`: the condition, and whether the dependent is restarted when
/// its dependency is replaced or restarted (Compose's `restart: true`). Written either as
/// the condition alone (`"healthy"`) or as `{ condition = "healthy", restart = true }`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(from = "WrittenDependency")]
pub struct Dependency {
    pub condition: Condition,
    pub restart: bool,
}

impl Dependency {
    pub fn on(condition: Condition) -> Self {
        Dependency {
            condition,
            restart: false,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WrittenDependency {
    Condition(Condition),
    Record {
        #[serde(default = "started")]
        condition: Condition,
        #[serde(default)]
        restart: bool,
    },
}

/// One entry of a service's `secrets`: a secret variable, and the file name under
/// /run/secrets it is mounted as. Written either as the variable alone (mounted at its
/// name in lower case) or as `{ variable = "MYSQL_USER", target = "MYSQL_USER" }`, for
/// images (and imported Compose files) that read a fixed path.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(from = "WrittenSecretMount")]
pub struct SecretMount {
    pub variable: String,
    /// The file name under /run/secrets, when it is not the variable's in lower case.
    pub target: Option<String>,
}

impl SecretMount {
    /// The file name under /run/secrets: also the secret's name in the Compose file, so one
    /// name means one variable in a stack (validated).
    pub fn file_name(&self) -> String {
        self.target
            .clone()
            .unwrap_or_else(|| Stack::secret_file_name(&self.variable))
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WrittenSecretMount {
    Variable(String),
    Record { variable: String, target: String },
}

impl From<WrittenSecretMount> for SecretMount {
    fn from(written: WrittenSecretMount) -> Self {
        match written {
            WrittenSecretMount::Variable(variable) => SecretMount {
                variable,
                target: None,
            },
            WrittenSecretMount::Record { variable, target } => SecretMount {
                variable,
                target: Some(target),
            },
        }
    }
}

fn started() -> Condition {
    Condition::Started
}

impl From<WrittenDependency> for Dependency {
    fn from(written: WrittenDependency) -> Self {
        match written {
            WrittenDependency::Condition(condition) => Dependency::on(condition),
            WrittenDependency::Record { condition, restart } => Dependency { condition, restart },
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    pub test: HealthTest,
    #[serde(default = "ten_seconds")]
    pub interval: Param<Duration>,
    #[serde(default = "five_seconds")]
    pub timeout: Param<Duration>,
    #[serde(default = "five_times")]
    pub retries: Param<u32>,
    pub start_period: Option<Param<Duration>>,
}

/// A healthcheck command. Compose's own spelling is accepted too: `["CMD", args…]` is
/// an argument array and `["CMD-SHELL", line]` a shell string, so every backend runs the
/// same check; what is left starting with `CMD`, `CMD-SHELL` or `NONE` is refused by
/// validation.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(try_from = "WrittenHealthTest")]
pub enum HealthTest {
    Shell(Text),
    Exec(Vec<Text>),
    Http { http: HttpProbe },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WrittenHealthTest {
    Shell(String),
    Exec(Vec<String>),
    Http { http: HttpProbe },
}

impl TryFrom<WrittenHealthTest> for HealthTest {
    type Error = String;
    fn try_from(written: WrittenHealthTest) -> Result<Self, String> {
        Ok(match written {
            WrittenHealthTest::Shell(line) => HealthTest::Shell(Text::parse(&line)?),
            WrittenHealthTest::Http { http } => HealthTest::Http { http },
            WrittenHealthTest::Exec(args) => match args.as_slice() {
                [form, line] if form == "CMD-SHELL" => HealthTest::Shell(Text::parse(line)?),
                [form, rest @ ..] if form == "CMD" && !rest.is_empty() => {
                    HealthTest::Exec(texts(rest)?)
                }
                _ => HealthTest::Exec(texts(&args)?),
            },
        })
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HttpProbe {
    pub port: u16,
    #[serde(default = "root_path")]
    pub path: String,
    #[serde(default = "curl")]
    pub client: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    pub limits: ResourceSet,
    #[serde(default)]
    pub reservations: ResourceSet,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourceSet {
    pub cpus: Option<f64>,
    pub memory: Option<ByteSize>,
}

impl ResourceSet {
    pub fn is_empty(&self) -> bool {
        self.cpus.is_none() && self.memory.is_none()
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Logging {
    #[serde(default = "json_file")]
    pub driver: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// A process resource limit; -1 is unlimited. Written as one number, both limits are it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

impl<'de> Deserialize<'de> for Ulimit {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Single(i64),
            Pair { soft: i64, hard: i64 },
        }
        Ok(match Written::deserialize(deserializer)? {
            Written::Single(limit) => Ulimit {
                soft: limit,
                hard: limit,
            },
            Written::Pair { soft, hard } => Ulimit { soft, hard },
        })
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    pub command: String,
    pub restore: Option<String>,
    #[serde(default = "daily")]
    pub schedule: String,
    #[serde(default = "seven")]
    pub keep: u32,
    #[serde(default = "dump")]
    pub extension: String,
    #[serde(default)]
    pub offline: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    pub port: u16,
    #[serde(default = "metrics_path")]
    pub path: String,
    pub interval: Option<Duration>,
    /// The exporter's gauge of what it watches (`pg_up`): 0 raises an alert.
    pub up_metric: Option<String>,
    /// The service the exporter reports on: its alert is labelled with it.
    pub watches: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    pub description: Option<String>,
    pub name: Option<String>,
    pub driver: Option<String>,
    #[serde(default)]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(default)]
    pub external: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default = "one_gigabyte")]
    pub size: ByteSize,
    pub storage_class: Option<String>,
    /// Rebuildable contents: a Kubernetes pod's own emptyDir rather than a shared claim.
    #[serde(default)]
    pub cache: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub description: Option<String>,
    pub name: Option<String>,
    #[serde(default = "bridge")]
    pub driver: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub external: bool,
    #[serde(default)]
    pub subnets: Vec<net::Subnet>,
    #[serde(default)]
    pub enable_ipv6: bool,
}

/// What a network the stack does not configure is: a bridge with nothing set.
impl Default for Network {
    fn default() -> Self {
        Network {
            description: None,
            name: None,
            driver: bridge(),
            internal: false,
            attachable: false,
            driver_opts: BTreeMap::new(),
            labels: BTreeMap::new(),
            external: false,
            subnets: Vec::new(),
            enable_ipv6: false,
        }
    }
}

impl Stack {
    /// The reference of the image a service with `build` and no `image` runs, the same in
    /// every backend: `<registry>/<stack>-<service>:<tag>` when the profile names a
    /// registry, else the local `<stack>-<service>:<tag>` (Compose's own default name).
    pub fn built_image(&self, service: &str) -> String {
        let tag = &self.profile.image_tag;
        match &self.profile.registry {
            Some(registry) => format!(
                "{}/{}-{service}:{tag}",
                registry.trim_end_matches('/'),
                self.name
            ),
            None => format!("{}-{service}:{tag}", self.name),
        }
    }

    /// The name the engine knows volume `key` by; see [`engine_name`].
    pub fn volume_engine_name(&self, key: &str) -> String {
        let volume = self.volumes.get(key);
        engine_name(
            &self.name,
            key,
            volume.and_then(|v| v.name.as_deref()),
            volume.is_some_and(|v| v.external),
        )
    }

    /// The name the engine knows network `key` by (`default` too); see [`engine_name`].
    pub fn network_engine_name(&self, key: &str) -> String {
        let network = self.networks.get(key);
        engine_name(
            &self.name,
            key,
            network.and_then(|n| n.name.as_deref()),
            network.is_some_and(|n| n.external),
        )
    }
}

/// An image reference with its registry spelt out, as Docker reads a short one: a first
/// path component that is no host (no `.` or `:`, not `localhost`) means Docker Hub, and a
/// single-component name its `library/` namespace. Docker and containerd read a short name
/// so; podman and CRI-O search the registries of their host's registries.conf instead, and
/// with `short-name-mode = "enforcing"` (RHEL, Fedora) a unit that pulls without a TTY fails.
/// Written out, the name means the same image in every backend. A reference still holding
/// `${` (a variable read at deploy time) is left as it is.
pub fn qualified_image(reference: &str) -> String {
    if reference.contains("${") {
        return reference.to_string();
    }
    match reference.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => {
            reference.to_string()
        }
        Some(_) => format!("docker.io/{reference}"),
        None => format!("docker.io/library/{reference}"),
    }
}

/// The engine name of a stack volume or network, one rule for Compose, Quadlet, apply and
/// import so that every backend finds the same data: its `name` when set; an external one's
/// key (it exists already, under that name); else `<stack>_<key>`, Compose's own default for
/// project `<stack>`.
pub fn engine_name(stack: &str, key: &str, name: Option<&str>, external: bool) -> String {
    match (name, external) {
        (Some(name), _) => name.to_string(),
        (None, true) => key.to_string(),
        (None, false) => format!("{stack}_{key}"),
    }
}

/// Suffix of the one-shot service that gives a service's volumes to its `volume_owner`.
pub const CHOWN_SUFFIX: &str = "-chown";

impl Stack {
    /// The stack as Docker runs it (Compose and apply). Docker creates a fresh named volume
    /// root-owned when the image does not hold the mount path, and has no fsGroup: so each
    /// service with a `volume_owner` gets a one-shot `<service>-chown` that it waits for,
    /// which runs as root in the service's image and chowns its writable named volumes when
    /// their owner differs (a second start changes nothing). Kubernetes and Quadlet have
    /// their own means (fsGroup, `:U`) and use the stack as it is.
    pub fn with_volume_owners(&self) -> std::borrow::Cow<'_, Stack> {
        let jobs: Vec<(String, String, Service)> = self
            .services
            .iter()
            .filter_map(|(name, service)| {
                chown_job(name, service)
                    .map(|job| (name.clone(), format!("{name}{CHOWN_SUFFIX}"), job))
            })
            .collect();
        if jobs.is_empty() {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut stack = self.clone();
        for (owner, job_name, job) in jobs {
            if let Some(service) = stack.services.get_mut(&owner) {
                service
                    .depends_on
                    .insert(job_name.clone(), Dependency::on(Condition::Completed));
            }
            stack.services.insert(job_name, job);
        }
        std::borrow::Cow::Owned(stack)
    }
}

/// The one-shot service that chowns `service`'s writable named volumes, if it needs one.
fn chown_job(name: &str, service: &Service) -> Option<Service> {
    let owner = service.volume_owner.as_deref()?;
    let image = service.image.as_ref()?;
    let mounts: Vec<&Mount> = service
        .volumes
        .iter()
        .filter(|mount| {
            mount.kind == MountKind::Volume && !mount.read_only && mount.source.is_some()
        })
        .collect();
    if mounts.is_empty() {
        return None;
    }
    // Compare as written: `uid` alone says nothing of the group.
    let format = if owner.contains(':') { "%u:%g" } else { "%u" };
    let script = format!(
        "for d in \"$@\"; do [ \"$(stat -c {format} \"$d\")\" = {owner} ] || chown -R {owner} \"$d\"; done"
    );
    let volumes: Vec<serde_json::Value> = mounts
        .iter()
        .map(|mount| {
            serde_json::json!({
                "type": "volume",
                "source": mount.source.as_ref().map(Text::written),
                "target": mount.target,
            })
        })
        .collect();
    let targets: Vec<&str> = mounts.iter().map(|mount| mount.target.as_str()).collect();
    let job = serde_json::json!({
        "description": format!("Gives the volumes of {name} to {owner}, the user its image writes as"),
        "image": image.written(),
        "user": "0:0",
        "entrypoint": ["sh", "-c", script, "chown"],
        "command": targets,
        "volumes": volumes,
        "restart": "no",
        "network_mode": "none",
    });
    serde_json::from_value(job).ok()
}

/// When the engine restarts a container (Compose's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    No,
    Always,
    OnFailure,
    UnlessStopped,
}

impl Restart {
    /// Compose's and Docker's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Restart::No => "no",
            Restart::Always => "always",
            Restart::OnFailure => "on-failure",
            Restart::UnlessStopped => "unless-stopped",
        }
    }

    /// Restarted after it exits successfully, too (what a one-shot job must not be).
    pub fn restarts_after_success(self) -> bool {
        matches!(self, Restart::Always | Restart::UnlessStopped)
    }
}

/// Whose process namespace a container sees (Compose's `pid`); only the host's for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pid {
    Host,
}

impl Pid {
    /// Compose's and Docker's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Pid::Host => "host",
        }
    }
}

/// One placement constraint, `node.labels.zone == eu-1`: the node attribute, whether it
/// must equal or differ from the value, and the value.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String")]
pub struct Placement {
    pub attribute: NodeAttribute,
    pub equal: bool,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeAttribute {
    Label(String),
    Role,
    Hostname,
    Os,
    Arch,
}

impl TryFrom<String> for Placement {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let (attribute, equal, value) = if let Some((a, v)) = text.split_once("==") {
            (a, true, v)
        } else if let Some((a, v)) = text.split_once("!=") {
            (a, false, v)
        } else {
            return Err(format!("{text:?} has no `==` or `!=`"));
        };
        let attribute = match attribute.trim() {
            "node.role" => NodeAttribute::Role,
            "node.hostname" => NodeAttribute::Hostname,
            "node.platform.os" => NodeAttribute::Os,
            "node.platform.arch" => NodeAttribute::Arch,
            other => match other.strip_prefix("node.labels.") {
                Some(label) if !label.is_empty() => NodeAttribute::Label(label.to_string()),
                _ => return Err(format!("{other:?} is no node attribute berth places by")),
            },
        };
        Ok(Placement {
            attribute,
            equal,
            value: value.trim().to_string(),
        })
    }
}

impl Placement {
    /// A constraint as the schema's `PlacementConstraint` accepts it: the attributes berth
    /// places by, a value of letters, digits and `._-`, and a role of manager or worker.
    ///
    /// # Errors
    /// Says what is wrong with `text`.
    pub fn checked(text: &str) -> Result<Placement, String> {
        let placement = Placement::try_from(text.to_string())?;
        let value_ok = placement
            .value
            .starts_with(|c: char| c.is_ascii_alphanumeric())
            && placement
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !value_ok {
            return Err(format!(
                "{text:?}: berth holds constraint values of letters, digits and `._-`"
            ));
        }
        if let NodeAttribute::Label(key) = &placement.attribute
            && !is_label_key(key)
        {
            return Err(format!(
                "{text:?}: `{key}` is no Kubernetes label key (an optional DNS prefix and `/`, then up to 63 letters, digits and `-_.`)"
            ));
        }
        if placement.attribute == NodeAttribute::Role
            && !matches!(placement.value.as_str(), "manager" | "worker")
        {
            return Err(format!("{text:?}: a node's role is manager or worker"));
        }
        Ok(placement)
    }
}

/// A Kubernetes label key: an optional DNS-subdomain prefix and `/`, then a name of at most
/// 63 letters, digits and `-_.`, beginning and ending with a letter or digit.
fn is_label_key(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let alphanumeric_ends = |part: &str| {
        part.starts_with(|c: char| c.is_ascii_alphanumeric())
            && part.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    let prefix_ok = prefix.is_none_or(|prefix| {
        prefix.len() <= 253
            && prefix.split('.').all(|label| {
                alphanumeric_ends(label)
                    && label
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
    });
    prefix_ok
        && name.len() <= 63
        && alphanumeric_ends(name)
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

impl fmt::Display for Placement {
    /// Swarm's spelling, as Compose writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let attribute = match &self.attribute {
            NodeAttribute::Label(label) => format!("node.labels.{label}"),
            NodeAttribute::Role => "node.role".into(),
            NodeAttribute::Hostname => "node.hostname".into(),
            NodeAttribute::Os => "node.platform.os".into(),
            NodeAttribute::Arch => "node.platform.arch".into(),
        };
        let operator = if self.equal { "==" } else { "!=" };
        write!(f, "{attribute} {operator} {}", self.value)
    }
}

/// GPUs reserved for a container.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Gpus {
    #[serde(default)]
    pub count: GpuCount,
    #[serde(default)]
    pub device_ids: Vec<String>,
    #[serde(default = "nvidia")]
    pub driver: String,
}

fn nvidia() -> String {
    "nvidia".to_string()
}

/// How many GPUs: all of them, or the first N.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum GpuCount {
    #[default]
    #[serde(deserialize_with = "all")]
    All,
    Count(u32),
}

fn all<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<(), D::Error> {
    let text = String::deserialize(deserializer)?;
    if text == "all" {
        Ok(())
    } else {
        Err(serde::de::Error::custom("expected \"all\""))
    }
}

impl Gpus {
    /// Specific devices were named (then the count means nothing).
    pub fn by_id(&self) -> bool {
        !self.device_ids.is_empty()
    }
}

/// One `security_opt` entry as Docker reads it: `name=value`, or the older `name:value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityOption<'a> {
    /// `no-new-privileges` (alone: true).
    NoNewPrivileges(bool),
    /// `seccomp=unconfined`, or a profile file.
    Seccomp(&'a str),
    /// `apparmor=unconfined`, or the name of a profile loaded on the host.
    AppArmor(&'a str),
    /// `label=disable`, `label=type:spc_t`…
    Label(&'a str),
    Other,
}

impl<'a> SecurityOption<'a> {
    pub fn parse(text: &'a str) -> SecurityOption<'a> {
        let (name, value) = match text.split_once('=') {
            Some(pair) => pair,
            None => text.split_once(':').unwrap_or((text, "")),
        };
        match name {
            "no-new-privileges" => match value {
                "" | "true" => SecurityOption::NoNewPrivileges(true),
                "false" => SecurityOption::NoNewPrivileges(false),
                _ => SecurityOption::Other,
            },
            "seccomp" if !value.is_empty() => SecurityOption::Seccomp(value),
            "apparmor" if !value.is_empty() => SecurityOption::AppArmor(value),
            "label" if !value.is_empty() => SecurityOption::Label(value),
            _ => SecurityOption::Other,
        }
    }
}

/// The transport of a port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A variable the stack reads from its environment (`.env`), listed in `.env.template`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    pub description: String,
    #[serde(default = "general")]
    pub group: String,
    #[serde(default, deserialize_with = "optional_env_text")]
    pub default: Option<String>,
    #[serde(default)]
    pub secret: bool,
    pub dev_value: Option<String>,
    pub example: Option<String>,
    /// A secret read from this file (relative to the deploy folder) rather than the
    /// environment: Compose can only mount it, so no text reads it (validated).
    pub file: Option<String>,
}

// Defaults of optional schema fields. The schema documents each one next to its field;
// they live here, not in the schema, so that modules can use `| default` freely (two
// `| default` values of one field would clash in Nickel).
fn one() -> u32 {
    1
}
fn seven() -> u32 {
    7
}
fn volume_kind() -> MountKind {
    MountKind::Volume
}
fn ten_seconds() -> Param<Duration> {
    Param::fixed("10s".into())
}
fn five_times() -> Param<u32> {
    Param::fixed(5)
}
fn five_seconds() -> Param<Duration> {
    Param::fixed("5s".into())
}
fn latest() -> String {
    "latest".into()
}
fn root_path() -> String {
    "/".into()
}
fn curl() -> String {
    "curl".into()
}
fn json_file() -> String {
    "json-file".into()
}
fn daily() -> String {
    "daily".into()
}
fn dump() -> String {
    "dump".into()
}
fn metrics_path() -> String {
    "/metrics".into()
}
fn bridge() -> String {
    "bridge".into()
}
fn general() -> String {
    "General".into()
}
fn yes() -> bool {
    true
}
fn letsencrypt() -> String {
    "letsencrypt-prod".into()
}
fn one_gigabyte() -> ByteSize {
    "1G".into()
}

impl HttpProbe {
    /// The command that probes the endpoint from inside the container; its exit code is
    /// the verdict. 127.0.0.1, not localhost: many images resolve localhost to ::1 first
    /// while the service listens on IPv4 only.
    pub fn command(&self) -> Vec<String> {
        let url = format!("http://127.0.0.1:{}{}", self.port, self.path);
        let words: Vec<String> = match self.client.as_str() {
            "wget" => vec![
                "wget".into(),
                "-q".into(),
                "-O".into(),
                "/dev/null".into(),
                url,
            ],
            // urlopen raises on 4xx/5xx and on connection errors.
            "python" => vec![
                "python".into(),
                "-c".into(),
                format!("import urllib.request; urllib.request.urlopen('{url}', timeout=3)"),
            ],
            _ => vec![
                "curl".into(),
                "-fsS".into(),
                "-o".into(),
                "/dev/null".into(),
                url,
            ],
        };
        words
    }
}

impl Port {
    /// The port the process listens on: the value, or its variable's declared default
    /// (what the backends that do not read .env use; apply reads the host's value).
    pub fn container_port(&self) -> u16 {
        *self.target.value()
    }

    /// The host address the port binds to: its own, or the profile's for a private port.
    pub fn effective_host_ip<'a>(&'a self, profile: &'a ProfileInfo) -> Option<&'a str> {
        self.host_ip.as_deref().or_else(|| {
            self.private
                .then_some(profile.private_host_ip.as_deref())
                .flatten()
        })
    }
}

impl Stack {
    /// The services some other service waits for to reach `condition`. Awaited as
    /// `Completed`, a service is a one-shot job (validation makes sure it is not restarted).
    pub fn awaited(&self, condition: Condition) -> std::collections::BTreeSet<&str> {
        self.services
            .values()
            .flat_map(|service| &service.depends_on)
            .filter(|(_, awaited)| awaited.condition == condition)
            .map(|(dependency, _)| dependency.as_str())
            .filter(|dependency| self.services.contains_key(*dependency))
            .collect()
    }

    /// `text` with each variable replaced by its declared default, for targets that do
    /// not expand variables themselves. `None` when one is a secret or has no default.
    pub fn declared_value(&self, text: &Text) -> Option<String> {
        text.resolve(|name| {
            self.variables
                .get(name)
                .filter(|variable| !variable.secret)
                .and_then(|variable| variable.default.as_deref())
        })
    }

    /// Folder of the stack on the host: `<install_root>/<stack>`.
    pub fn install_dir(&self) -> String {
        format!(
            "{}/{}",
            self.profile.install_root.trim_end_matches('/'),
            self.name
        )
    }

    /// A path of the host as a file of the stack names it: relative ones start at the
    /// install folder, as relative bind sources do.
    pub fn host_path(&self, path: &str) -> String {
        if path.starts_with('/') {
            return path.to_string();
        }
        format!("{}/{}", self.install_dir(), path.trim_start_matches("./"))
    }

    /// Folder of the stack's backups on the host: `<backup_root>/<stack>`.
    pub fn backup_dir(&self) -> String {
        format!(
            "{}/{}",
            self.profile.backup_root.trim_end_matches('/'),
            self.name
        )
    }

    /// File name of a secret variable under /run/secrets (and its compose secret name),
    /// unless its mount names another (see [`SecretMount::file_name`]).
    pub fn secret_file_name(variable: &str) -> String {
        variable.to_ascii_lowercase()
    }

    /// The secret files the services mount: (variable, its file, the services mounting it).
    pub fn mounted_secret_files(&self) -> Vec<(&str, &str, Vec<&str>)> {
        let mut files: BTreeMap<&str, (&str, Vec<&str>)> = BTreeMap::new();
        for (name, service) in &self.services {
            for mount in &service.secrets {
                let Some((variable, _)) = self.variables.get_key_value(&mount.variable) else {
                    continue;
                };
                let Some(file) = self.secret_file(variable) else {
                    continue;
                };
                let (_, users) = files.entry(variable).or_insert((file, Vec::new()));
                if !users.contains(&name.as_str()) {
                    users.push(name);
                }
            }
        }
        files
            .into_iter()
            .map(|(variable, (file, users))| (variable, file, users))
            .collect()
    }

    /// The file a secret variable is read from, when it is one (`variables.X.file`).
    pub fn secret_file(&self, variable: &str) -> Option<&str> {
        self.variables
            .get(variable)
            .filter(|v| v.secret)
            .and_then(|v| v.file.as_deref())
    }

    /// Deserializes and validates an evaluated stack.
    ///
    /// # Errors
    /// Every problem [`validate::stack`] finds, each located in the user's files.
    pub fn from_evaluated(evaluated: &Evaluated) -> Result<Stack, ModelError> {
        let fail = |diagnostics| ModelError {
            stack: text_at(&evaluated.value, "name"),
            profile: text_at(&evaluated.value["profile"], "name"),
            diagnostics,
        };
        // Variables in typed fields become their declared defaults first (`param::bind`).
        let mut value = evaluated.value.clone();
        let unbound = param::bind(&mut value);
        if !unbound.is_empty() {
            let located = unbound.into_iter().map(|mut diagnostic| {
                diagnostic.location = evaluated.positions.locate(&diagnostic.field);
                diagnostic
            });
            return Err(fail(located.collect()));
        }
        let stack: Stack = serde_path_to_error::deserialize(&value).map_err(|e| {
            let field = e.path().to_string();
            let message = e.inner().to_string();
            let user_error = message
                .strip_prefix(text::REFERENCE_ERROR)
                .or_else(|| message.strip_prefix(net::ADDRESS_ERROR));
            let mut diagnostic = if let Some(reason) = user_error {
                Diagnostic::new(&field, reason)
            } else if let Some(limit) = out_of_range(&message) {
                Diagnostic::new(&field, limit)
            } else {
                Diagnostic::new(&field, message)
                    .with_hint("the schema and the model disagree; was a file in schemas/ edited?")
            };
            diagnostic.location = evaluated.positions.locate(&field);
            fail(vec![diagnostic])
        })?;
        let mut diagnostics = validate::control_characters(&evaluated.value);
        diagnostics.extend(validate::stack(&stack));
        for diagnostic in &mut diagnostics {
            diagnostic.location = evaluated.positions.locate(&diagnostic.field);
        }
        if diagnostics.is_empty() {
            Ok(stack)
        } else {
            Err(fail(diagnostics))
        }
    }
}

/// A number the schema accepts but berth's type cannot hold (`replicas = 1e20`): the
/// value and the limit, from serde's `invalid value: integer `N`, expected u32`.
fn out_of_range(message: &str) -> Option<String> {
    let (found, expected) = message.split_once(", expected ")?;
    let found = found
        .strip_prefix("invalid value: integer ")
        .or_else(|| found.strip_prefix("invalid type: floating point "))?;
    let largest = match expected.trim() {
        "u8" => u64::from(u8::MAX),
        "u16" => u64::from(u16::MAX),
        "u32" => u64::from(u32::MAX),
        "u64" => u64::MAX,
        _ => return None,
    };
    Some(format!(
        "{found} is out of range: the largest value here is {largest}"
    ))
}

fn text_at(value: &serde_json::Value, key: &str) -> String {
    value
        .get(key)
        .and_then(|v| v.as_str())
        .unwrap_or("?")
        .to_string()
}

/// Environment values may be written as strings, numbers or booleans; all are text to a process.
fn env_text(value: serde_json::Value) -> Result<String, String> {
    match value {
        serde_json::Value::String(text) => Ok(text),
        serde_json::Value::Number(number) => Ok(number.to_string()),
        serde_json::Value::Bool(flag) => Ok(flag.to_string()),
        other => Err(format!("expected a string, number or boolean, got {other}")),
    }
}

fn env_map<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, serde_json::Value>::deserialize(deserializer)?;
    raw.into_iter()
        .map(|(key, value)| {
            env_text(value)
                .map(|text| (key, text))
                .map_err(serde::de::Error::custom)
        })
        .collect()
}

fn optional_env_text<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let raw = Option::<serde_json::Value>::deserialize(deserializer)?;
    raw.map(env_text)
        .transpose()
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::qualified_image;

    #[test]
    fn short_image_names_are_read_as_docker_reads_them() {
        for (short, qualified) in [
            ("redis:7.4-alpine", "docker.io/library/redis:7.4-alpine"),
            ("neo4j", "docker.io/library/neo4j"),
            (
                "oliver006/redis_exporter:v1.62.0",
                "docker.io/oliver006/redis_exporter:v1.62.0",
            ),
            (
                "docker.io/prom/prometheus:v2.55.1",
                "docker.io/prom/prometheus:v2.55.1",
            ),
            ("ghcr.io/org/app@sha256:ab", "ghcr.io/org/app@sha256:ab"),
            ("registry:5000/app:1", "registry:5000/app:1"),
            ("localhost/ape-api:latest", "localhost/ape-api:latest"),
            ("${IMAGE}", "${IMAGE}"),
        ] {
            assert_eq!(qualified_image(short), qualified, "{short}");
        }
    }
}
