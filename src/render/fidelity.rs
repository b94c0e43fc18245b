//! Which backend carries which service field, in one table, and the warnings a build gives
//! when a stack sets a field that a backend it renders cannot carry. Pure.
//!
//! The rule: for every field of the model, each backend either renders it with the
//! model's meaning, or reports that it cannot (a [`Warning`], printed by `build`, repeated
//! at the top of the artifact concerned, an error with `--strict`), or the field means
//! nothing there (a Kubernetes-only field for Compose). `tests/cli/fidelity.rs` sets every
//! field of the schema and checks each cell of this table against the real output.

use std::fmt;

use crate::error::Diagnostic;
use crate::model::{Command, GpuCount, SecurityOption, Service, Stack, Text};

/// A target that renders services.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Backend {
    Compose,
    Quadlet,
    Kubernetes,
    Apply,
}

impl Backend {
    pub const ALL: [Backend; 4] = [
        Backend::Compose,
        Backend::Quadlet,
        Backend::Kubernetes,
        Backend::Apply,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Compose => "compose",
            Backend::Quadlet => "quadlet",
            Backend::Kubernetes => "k8s",
            Backend::Apply => "apply",
        }
    }
}

/// How a backend carries a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Rendered with the model's meaning.
    Rendered,
    /// The backend cannot express it; a stack that sets it gets this warning.
    Reported(&'static str),
    /// The field means nothing for this backend (said why).
    NotApplicable(&'static str),
}

/// One row of the table: a service field and its support in compose, Quadlet,
/// Kubernetes and apply.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub field: &'static str,
    pub support: [Support; 4],
}

impl Row {
    pub fn get(&self, backend: Backend) -> Support {
        self.support[backend as usize]
    }
}

/// A field a backend cannot carry, as one stack sets it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Warning {
    pub backend: Backend,
    pub diagnostic: Diagnostic,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "warning: {}: {}", self.backend.name(), self.diagnostic)
    }
}

use Support::{NotApplicable as Na, Rendered as R, Reported};

const COMPOSE_NAMES: &str = "the engine names containers itself";
const K8S_ONLY: &str = "read by the Kubernetes backend only";
const FILES_ONLY: &str = "rendered by the systemd and Prometheus backends";

/// Every field of `Service`, in schema order. `tests/cli/fidelity.rs` fails when a schema
/// field is missing here, or when a cell does not match what the backend does.
pub const SERVICE_FIELDS: &[Row] = &[
    row(
        "description",
        [
            Na("Compose files have no description; .env.template and the units carry it"),
            R,
            R,
            Na("the engine keeps no description"),
        ],
    ),
    row(
        "container_name",
        [
            R,
            Na("Quadlet names the container after its unit"),
            Na("pods are named by their controller"),
            Na(COMPOSE_NAMES),
        ],
    ),
    row(
        "hostname",
        [
            R,
            R,
            Reported("the pod is reached through its Service name; hostname is not set"),
            R,
        ],
    ),
    row(
        "platform",
        [
            R,
            Reported("Quadlet has no platform key; pull the right image beforehand"),
            Na("the node's platform decides"),
            Na("images are resolved in pre-flight"),
        ],
    ),
    row(
        "pull_policy",
        [
            R,
            Reported("Quadlet pulls missing images only"),
            Reported("imagePullPolicy is derived from whether the image is built"),
            Na("images are resolved in pre-flight"),
        ],
    ),
    row(
        "compose_profiles",
        [
            R,
            Na("every unit is installed on its own"),
            Na("every manifest is applied"),
            Na("apply runs every service"),
        ],
    ),
    row("image", [R, R, R, R]),
    row(
        "build",
        [
            R,
            Reported(
                "Quadlet builds nothing when the unit starts: build the image on the host first (podman build -t IMAGE CONTEXT)",
            ),
            Reported(
                "Kubernetes pulls images: set the profile's `registry` (CI pushes the built image there), or `image` to a reference the cluster reads",
            ),
            R,
        ],
    ),
    row("command", [R, R, R, R]),
    row("entrypoint", [R, R, R, R]),
    row("working_dir", [R, R, R, R]),
    row("user", [R, R, R, R]),
    row("volume_owner", [R, R, R, R]),
    row(
        "env_file",
        [
            R,
            R,
            Reported("a file on the Docker host; move its variables into `environment`"),
            R,
        ],
    ),
    row("environment", [R, R, R, R]),
    // On Kubernetes the deploy environment is the stack's ConfigMap and Secret (optional
    // keys), as the schema's doc says.
    row("host_environment", [R, R, R, R]),
    row("ports", [R, R, R, R]),
    row("volumes", [R, R, R, R]),
    // A read-only bind of the generated file: compose and Quadlet bind it from the output
    // folder, Kubernetes mounts it from a ConfigMap, apply from its content-hashed copy.
    row("files", [R, R, R, R]),
    row("secrets", [R, R, R, R]),
    row(
        "networks",
        [
            R,
            R,
            Na("one cluster network; Services and NetworkPolicies separate traffic"),
            R,
        ],
    ),
    row(
        "network_aliases",
        [
            R,
            R,
            Reported("add Services of those names if clients use them"),
            R,
        ],
    ),
    row(
        "network_addresses",
        [
            R,
            R,
            Reported(
                "the cluster gives each pod its address; clients reach the service through its Service name",
            ),
            R,
        ],
    ),
    row(
        "network_mode",
        [
            R,
            Reported("Quadlet units join the stack network"),
            Reported("containers of one pod share a network, separate pods do not"),
            Reported(
                "apply does not share network stacks; deploy the generated compose.yaml with docker compose",
            ),
        ],
    ),
    row("depends_on", [R, R, R, R]),
    row("healthcheck", [R, R, R, R]),
    row(
        "restart",
        [
            R,
            R,
            Na("a Deployment's pods always restart; a one-shot Job restarts on failure"),
            R,
        ],
    ),
    row(
        "replicas",
        [
            R,
            Reported(
                "Quadlet runs one container per unit: one replica runs here; copy this unit under another name with the next host port for more",
            ),
            R,
            R,
        ],
    ),
    row(
        "global",
        [
            R,
            Na("one host: its unit runs the one container a global service has here"),
            R,
            Na("one host: apply runs the one container a global service has here"),
        ],
    ),
    row(
        "placement",
        [
            R,
            Na("one host: a Quadlet unit runs where it is installed"),
            R,
            Na("one host: apply runs on the engine it is given"),
        ],
    ),
    row("resources", [R, R, R, R]),
    row("labels", [R, R, R, R]),
    row(
        "logging",
        [
            R,
            R,
            Na("the cluster's log collector reads container output"),
            R,
        ],
    ),
    row(
        "ulimits",
        [
            R,
            R,
            Reported("Kubernetes has no per-container ulimits; set them in the container runtime"),
            R,
        ],
    ),
    row("extra_hosts", [R, R, R, R]),
    row("stop_grace_period", [R, R, R, R]),
    row(
        "stop_signal",
        [
            R,
            R,
            Reported("Kubernetes 1.33 sends the image's STOPSIGNAL; set it in the image"),
            R,
        ],
    ),
    row(
        "attach",
        [
            R,
            Na("journald keeps every unit's output"),
            Na("kubectl logs reads every container"),
            Na("apply shows no logs"),
        ],
    ),
    row(
        "sysctls",
        [
            R,
            R,
            Reported("pod securityContext.sysctls needs unsafe sysctls allowed on the kubelet"),
            R,
        ],
    ),
    row("devices", [R, R, Reported("needs a device plugin"), R]),
    row(
        "init",
        [
            R,
            R,
            Reported(
                "no init process in pods; use an image with one (tini) or shareProcessNamespace",
            ),
            R,
        ],
    ),
    row("read_only", [R, R, R, R]),
    row("privileged", [R, R, R, R]),
    row("cap_add", [R, R, R, R]),
    row("cap_drop", [R, R, R, R]),
    row("shm_size", [R, R, R, R]),
    row("tmpfs", [R, R, R, R]),
    row(
        "dns",
        [
            R,
            R,
            Reported(
                "pods resolve through the cluster DNS, which forwards to the node's servers; set upstream servers in CoreDNS (dnsConfig nameservers would be tried only when it fails, or replace it and lose the stack's service names)",
            ),
            R,
        ],
    ),
    row("dns_search", [R, R, R, R]),
    row("dns_opt", [R, R, R, R]),
    row("tty", [R, R, R, R]),
    row("stdin_open", [R, R, R, R]),
    row("pid", [R, R, R, R]),
    row("security_opt", [R, R, R, R]),
    row("gpus", [R, R, R, R]),
    row(
        "backup",
        [
            Na(FILES_ONLY),
            Na(FILES_ONLY),
            Reported("no backups on Kubernetes yet; run them as CronJobs"),
            // Taken before apply recreates or removes the service.
            R,
        ],
    ),
    row(
        "metrics",
        [
            Na(FILES_ONLY),
            Na(FILES_ONLY),
            // A headless Service, through which the cluster's Prometheus finds every pod.
            R,
            Na(FILES_ONLY),
        ],
    ),
    row("kubernetes", [Na(K8S_ONLY), Na(K8S_ONLY), R, Na(K8S_ONLY)]),
];

const fn row(field: &'static str, support: [Support; 4]) -> Row {
    Row { field, support }
}

/// The table as Markdown (docs/fidelity.md, `scripts/fidelity`): field × backend, each
/// cell "rendered", "reported: why" or "n/a: why".
pub fn matrix_markdown() -> String {
    let mut out = String::from(
        "# Fidelity of service fields per backend\n\n\
         Generated from `src/render/fidelity.rs` by `scripts/fidelity`; `tests/cli/fidelity.rs` checks every cell\n\
         against the real output. **rendered**: the backend carries the field with the model's meaning.\n\
         **reported**: it cannot; `berth build` warns (an error with `--strict` or a profile's `strict = true`)\n\
         and the artifact says so at the top. **n/a**: the field means nothing there.\n\n\
         | field | compose | quadlet | kubernetes | apply |\n| --- | --- | --- | --- | --- |\n",
    );
    for row in SERVICE_FIELDS {
        let cells: Vec<String> = Backend::ALL
            .iter()
            .map(|backend| match row.get(*backend) {
                Support::Rendered => "rendered".to_string(),
                Support::Reported(why) => format!("reported: {why}"),
                Support::NotApplicable(why) => format!("n/a: {why}"),
            })
            .collect();
        out.push_str(&format!("| `{}` | {} |\n", row.field, cells.join(" | ")));
    }
    out.push_str(&typed_variables_markdown());
    out
}

/// How each backend reads a typed field that names a variable (`model::param`).
pub const TYPED_VARIABLE: [&str; 4] = [
    "`${NAME:-default}`: docker compose reads NAME from .env at deploy time",
    "the declared default: units do not read the stack's .env",
    "the declared default: manifests do not read the stack's .env",
    "the value on this host (environment, then .env, then the default), as docker compose reads it; one that is no value of the field stops apply in pre-flight",
];

fn typed_variables_markdown() -> String {
    let mut out = String::from(
        "\n## Variables in typed fields\n\n\
         These fields may hold a stack variable (`\"${NAME}\"`) instead of a value. The variable must be\n\
         declared with a default that is a valid value of the field (else `berth build` stops, exit 2);\n\
         `berth import` keeps a Compose variable there when its default (or the env file's value) is one.\n\n\
         | field | compose | quadlet | kubernetes | apply |\n| --- | --- | --- | --- | --- |\n",
    );
    for path in crate::model::param::SERVICE_PARAMS {
        out.push_str(&format!(
            "| `{}` | {} |\n",
            path.join(".").replace(".[]", "[]"),
            TYPED_VARIABLE.join(" | ")
        ));
    }
    out
}

/// The row of a service field.
pub fn service_field(field: &str) -> Option<&'static Row> {
    SERVICE_FIELDS.iter().find(|row| row.field == field)
}

/// Every warning the table gives `backend` for `stack`: fields it cannot carry that a
/// service sets, and text it cannot expand. Locations are left to the caller.
pub fn warnings(stack: &Stack, backend: Backend) -> Vec<Warning> {
    stack
        .services
        .keys()
        .flat_map(|name| service_warnings(stack, name, backend))
        .collect()
}

/// The table's warnings for one service, for the comment at the top of its artifact.
pub fn service_warnings(stack: &Stack, name: &str, backend: Backend) -> Vec<Warning> {
    let Some(service) = stack.services.get(name) else {
        return Vec::new();
    };
    let mut found: Vec<Warning> = set_fields(service)
        .into_iter()
        .filter_map(|field| match service_field(field)?.get(backend) {
            Support::Reported(reason) => {
                Some(warning(backend, format!("services.{name}.{field}"), reason))
            }
            Support::Rendered | Support::NotApplicable(_) => None,
        })
        .collect();
    // With a registry, a built image is a pushed reference every backend pulls.
    if stack.profile.registry.is_some() {
        found.retain(|warning| warning.diagnostic.field != format!("services.{name}.build"));
    }
    found.extend(unexpanded(stack, name, service, backend));
    if backend == Backend::Kubernetes {
        found.extend(decided_alternatives(name, service));
    }
    if backend == Backend::Quadlet {
        found.extend(quadlet_partial(name, service));
        found.extend(quadlet_gpus(name, service));
    }
    if backend == Backend::Kubernetes {
        found.extend(k8s_security_options(name, service));
        found.extend(k8s_gpus(name, service));
    }
    if backend == Backend::Apply {
        found.extend(apply_security_options(name, service));
    }
    found
}

/// `security_opt` entries a securityContext has no field for: SELinux `label=disable`
/// (Kubernetes cannot turn labelling off), a seccomp profile file (a Localhost profile
/// must be on the node), anything else Docker knows.
fn k8s_security_options(name: &str, service: &Service) -> Vec<Warning> {
    service
        .security_opt
        .iter()
        .enumerate()
        .filter(|(_, option)| match SecurityOption::parse(option) {
            SecurityOption::NoNewPrivileges(_) | SecurityOption::AppArmor(_) => false,
            SecurityOption::Seccomp(profile) => profile != "unconfined",
            SecurityOption::Label(label) => !matches!(
                label.split_once(':'),
                Some(("user" | "role" | "type" | "level", _))
            ),
            SecurityOption::Other => true,
        })
        .map(|(index, option)| {
            warning(
                Backend::Kubernetes,
                format!("services.{name}.security_opt[{index}]"),
                format!("`{option}` has no securityContext field (it maps no-new-privileges, seccomp=unconfined, apparmor=…, label=user|role|type|level:…); left out"),
            )
        })
        .collect()
}

/// Kubernetes asks for a number of `nvidia.com/gpu`: not all of a node's, not chosen ones,
/// not another vendor's under this field.
fn k8s_gpus(name: &str, service: &Service) -> Vec<Warning> {
    let Some(gpus) = &service.gpus else {
        return Vec::new();
    };
    let at = |field: &str| format!("services.{name}.gpus.{field}");
    let mut found = Vec::new();
    if gpus.driver != "nvidia" {
        found.push(warning(
            Backend::Kubernetes,
            at("driver"),
            format!(
                "only NVIDIA GPUs are requested (nvidia.com/gpu); `{}` is left out",
                gpus.driver
            ),
        ));
    } else if gpus.by_id() {
        found.push(warning(
            Backend::Kubernetes,
            at("device_ids"),
            "the device plugin picks the GPUs; as many are requested as IDs are named",
        ));
    } else if gpus.count == GpuCount::All {
        found.push(warning(
            Backend::Kubernetes,
            at("count"),
            "Kubernetes requests a number of GPUs, not all of a node's; none is requested: set a count",
        ));
    }
    found
}

/// podman names GPUs through CDI (`nvidia.com/gpu=…`): another driver has no name there.
fn quadlet_gpus(name: &str, service: &Service) -> Vec<Warning> {
    match &service.gpus {
        Some(gpus) if gpus.driver != "nvidia" => vec![warning(
            Backend::Quadlet,
            format!("services.{name}.gpus.driver"),
            format!(
                "podman's CDI names NVIDIA GPUs only here; `{}` is left out",
                gpus.driver
            ),
        )],
        _ => Vec::new(),
    }
}

/// The engine API takes a seccomp profile's JSON, which the Docker CLI and Compose read
/// from the file named; apply passes options as they are, so a file is refused.
fn apply_security_options(name: &str, service: &Service) -> Vec<Warning> {
    service
        .security_opt
        .iter()
        .enumerate()
        .filter(|(_, option)| {
            matches!(SecurityOption::parse(option), SecurityOption::Seccomp(profile) if profile != "unconfined")
        })
        .map(|(index, option)| {
            warning(
                Backend::Apply,
                format!("services.{name}.security_opt[{index}]"),
                format!("`{option}`: apply does not read seccomp profile files; use Compose"),
            )
        })
        .collect()
}

fn warning(backend: Backend, field: String, message: impl Into<String>) -> Warning {
    Warning {
        backend,
        diagnostic: Diagnostic::new(field, message),
    }
}

/// The log options podman knows (`podman run --log-opt`); it keeps one file per
/// container, so Docker's `max-file` has no counterpart.
pub const PODMAN_LOG_OPTIONS: [&str; 3] = ["max-size", "path", "tag"];

/// Settings inside a field that Quadlet cannot carry although it carries the field.
fn quadlet_partial(name: &str, service: &Service) -> Vec<Warning> {
    let mut found = Vec::new();
    if let Some(logging) = &service.logging {
        for option in logging.options.keys() {
            if !PODMAN_LOG_OPTIONS.contains(&option.as_str()) {
                found.push(warning(
                    Backend::Quadlet,
                    format!("services.{name}.logging.options.{option}"),
                    format!(
                        "podman has no log option `{option}` (it knows {}); left out",
                        PODMAN_LOG_OPTIONS.join(", ")
                    ),
                ));
            }
        }
    }
    for (index, file) in service.env_file.iter().enumerate() {
        if !file.required {
            found.push(warning(
                Backend::Quadlet,
                format!("services.{name}.env_file[{index}].required"),
                "podman fails on a missing EnvironmentFile; create the file (it may be empty)",
            ));
        }
    }
    found
}

/// Kubernetes composes `$(VAR)` but no conditional: a `${NAME:+text}` is decided when the
/// manifests are built, by NAME's declared default (empty, so the text is left out).
fn decided_alternatives(name: &str, service: &Service) -> Vec<Warning> {
    crate::model::validate::service_texts(name, service)
        .into_iter()
        .filter(|(_, text)| text.has_alternative())
        .map(|(field, text)| {
            warning(
                Backend::Kubernetes,
                field,
                format!("`{text}`: Kubernetes has no conditional value; the `:+` text is left out (its variable's default is empty), whatever the cluster's ConfigMap says later"),
            )
        })
        .collect()
}

/// Quadlet and Kubernetes do not expand `${VAR}` in these fields; berth writes the
/// variable's declared value. A secret or a variable without a default has none to write.
fn unexpanded(stack: &Stack, name: &str, service: &Service, backend: Backend) -> Vec<Warning> {
    if matches!(backend, Backend::Compose | Backend::Apply) {
        return Vec::new();
    }
    let mut fields: Vec<(&str, &Text)> = [
        ("image", service.image.as_ref()),
        ("user", service.user.as_ref()),
        ("working_dir", service.working_dir.as_ref()),
    ]
    .into_iter()
    .filter_map(|(field, text)| Some((field, text?)))
    .collect();
    fields.extend(
        service
            .volumes
            .iter()
            .filter_map(|mount| Some(("volumes", mount.source.as_ref()?))),
    );
    fields.extend(service.labels.values().map(|value| ("labels", value)));
    if backend == Backend::Quadlet {
        fields.extend(service.hostname.iter().map(|text| ("hostname", text)));
        fields.extend(service.devices.iter().map(|text| ("devices", text)));
        fields.extend(service.env_file.iter().map(|file| ("env_file", &file.path)));
        let aliases = service.network_aliases.values().flatten();
        fields.extend(aliases.map(|text| ("network_aliases", text)));
        let commands = [&service.command, &service.entrypoint]
            .into_iter()
            .flatten();
        fields.extend(commands.flat_map(|command| match command {
            Command::Shell(line) => vec![("command", line)],
            Command::Exec(args) => args.iter().map(|arg| ("command", arg)).collect(),
        }));
    }
    let mut seen = std::collections::BTreeSet::new();
    fields
        .into_iter()
        .filter(|(_, text)| stack.declared_value(text).is_none())
        .filter(|(field, _)| seen.insert(*field))
        .map(|(field, text)| {
            warning(
                backend,
                format!("services.{name}.{field}"),
                format!(
                    "`{text}` reads a variable without a declared default (or a secret); {} does not expand variables here, so the text is written as it is",
                    backend.name()
                ),
            )
        })
        .collect()
}

/// The fields a service sets (a default value counts as unset). Destructured without
/// `..`, so a new field must be sorted here, and then in [`SERVICE_FIELDS`].
pub fn set_fields(service: &Service) -> Vec<&'static str> {
    let Service {
        description,
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
        volume_owner,
        env_file,
        environment,
        host_environment,
        ports,
        volumes,
        files,
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
        backup,
        metrics,
        kubernetes,
    } = service;
    let set = [
        ("description", description.is_some()),
        ("container_name", container_name.is_some()),
        ("hostname", hostname.is_some()),
        ("platform", platform.is_some()),
        ("pull_policy", pull_policy.is_some()),
        ("compose_profiles", !compose_profiles.is_empty()),
        ("image", image.is_some()),
        ("build", build.is_some()),
        ("command", command.is_some()),
        ("entrypoint", entrypoint.is_some()),
        ("working_dir", working_dir.is_some()),
        ("user", user.is_some()),
        ("volume_owner", volume_owner.is_some()),
        ("env_file", !env_file.is_empty()),
        ("environment", !environment.is_empty()),
        ("host_environment", !host_environment.is_empty()),
        ("ports", !ports.is_empty()),
        ("volumes", !volumes.is_empty()),
        ("files", !files.is_empty()),
        ("secrets", !secrets.is_empty()),
        ("networks", !networks.is_empty()),
        ("network_aliases", !network_aliases.is_empty()),
        ("network_addresses", !network_addresses.is_empty()),
        ("network_mode", network_mode.is_some()),
        ("depends_on", !depends_on.is_empty()),
        ("healthcheck", healthcheck.is_some()),
        ("restart", restart.is_some()),
        ("replicas", *replicas != 1),
        ("global", *global),
        ("placement", !placement.is_empty()),
        (
            "resources",
            !resources.limits.is_empty() || !resources.reservations.is_empty(),
        ),
        ("labels", !labels.is_empty()),
        ("logging", logging.is_some()),
        ("ulimits", !ulimits.is_empty()),
        ("extra_hosts", !extra_hosts.is_empty()),
        ("stop_grace_period", stop_grace_period.is_some()),
        ("stop_signal", stop_signal.is_some()),
        ("attach", attach.is_some()),
        ("devices", !devices.is_empty()),
        ("sysctls", !sysctls.is_empty()),
        ("init", *init == Some(true)),
        ("read_only", read_only.is_some()),
        ("privileged", privileged.is_some()),
        ("cap_add", !cap_add.is_empty()),
        ("cap_drop", !cap_drop.is_empty()),
        ("shm_size", shm_size.is_some()),
        ("tmpfs", !tmpfs.is_empty()),
        ("dns", !dns.is_empty()),
        ("dns_search", !dns_search.is_empty()),
        ("dns_opt", !dns_opt.is_empty()),
        ("tty", *tty),
        ("stdin_open", *stdin_open),
        ("pid", pid.is_some()),
        ("security_opt", !security_opt.is_empty()),
        ("gpus", gpus.is_some()),
        ("backup", backup.is_some()),
        ("metrics", metrics.is_some()),
        (
            "kubernetes",
            *kubernetes != crate::model::Kubernetes::default(),
        ),
    ];
    set.into_iter()
        .filter_map(|(field, is_set)| is_set.then_some(field))
        .collect()
}
