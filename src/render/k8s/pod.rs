//! The pod of a service: its container (image, command, env, ports, probes, resources,
//! security) and the init containers that wait for its dependencies.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    AppArmorProfile, Capabilities, ConfigMapEnvSource, Container, ContainerPort,
    EmptyDirVolumeSource, EnvFromSource, ExecAction, HTTPGetAction, HostAlias, KeyToPath,
    PodDNSConfig, PodDNSConfigOption, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SELinuxOptions, SeccompProfile, SecretVolumeSource, SecurityContext,
    Volume as KVolume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::env::{Environment, text_of};
use super::fidelity::Warning;
use super::placement;
use super::sidecar;
use super::storage::{Storage, is_claimed, storage};
use super::{Context, WAIT_IMAGE, fitted, k8s_name, note};
use crate::model::{
    ByteSize, Command, Dependency, Duration, GpuCount, Gpus, HealthTest, Healthcheck, MountKind,
    Pid, Port, SecurityOption, Service, Text, qualified_image,
};

/// Whether the service's pods get a claim per replica (a StatefulSet's templates).
pub(super) fn has_claim_templates(ctx: &Context, name: &str, service: &Service) -> bool {
    service
        .kubernetes
        .stateful
        .unwrap_or(service.backup.is_some())
        && !ctx.jobs.contains(name)
}

/// The pod template, and what its storage needs besides (claims, config maps).
pub(super) fn pod_template(
    ctx: &Context,
    name: &str,
    service: &Service,
    env: &Environment,
    notes: &mut Vec<Warning>,
) -> (PodTemplateSpec, Storage) {
    let stateful = has_claim_templates(ctx, name, service);
    let mut storage = storage(ctx, name, service, stateful, notes);
    let mut volumes = std::mem::take(&mut storage.volumes);
    let mut mounts = std::mem::take(&mut storage.mounts);
    for (volume, mount) in secret_files(ctx, name, service)
        .into_iter()
        .chain(shared_memory(service))
    {
        volumes.push(volume);
        mounts.push(mount);
    }
    let container = main_container(ctx, name, service, env, mounts);
    let init_containers = waits(ctx, name, service, notes);
    let user = service.user.as_ref().map(|user| declared(ctx, user));
    let (run_as_user, run_as_group) = numeric_user(user.as_deref());
    let non_root = service.kubernetes.run_as_non_root;
    // Claims are mounted root-owned; fsGroup gives them to the group the image writes as
    // (only when their owner differs, so a large volume is not walked at every start):
    // `volume_owner`'s, else that of the numeric non-root `user` the container runs as
    // when it writes to a claim (Docker would copy the image folder's owner into a new
    // volume; a claim has no such copy).
    let writes_a_claim = service
        .volumes
        .iter()
        .any(|mount| mount.kind == MountKind::Volume && mount.source.is_some() && !mount.read_only);
    let fs_group = service
        .volume_owner
        .as_deref()
        .and_then(|owner| owner.rsplit(':').next())
        .and_then(|group| group.parse::<i64>().ok())
        .or_else(|| {
            let group = run_as_group.or(run_as_user)?;
            (writes_a_claim && group != 0).then_some(group)
        });
    let security =
        (non_root || run_as_user.is_some() || fs_group.is_some()).then(|| PodSecurityContext {
            run_as_non_root: non_root.then_some(true),
            run_as_user,
            run_as_group,
            fs_group,
            fs_group_change_policy: fs_group.map(|_| "OnRootMismatch".to_string()),
            ..PodSecurityContext::default()
        });
    let is_job = ctx.jobs.contains(name);
    let mut spec = PodSpec {
        containers: vec![container],
        init_containers: (!init_containers.is_empty()).then_some(init_containers),
        volumes: (!volumes.is_empty()).then_some(volumes),
        security_context: security,
        restart_policy: is_job.then(|| "OnFailure".to_string()),
        termination_grace_period_seconds: service
            .stop_grace_period
            .as_ref()
            .map(|d| i64::from(seconds(d))),
        host_aliases: host_aliases(service),
        // One service is one pod, so the pod's DNS settings are the container's. Its
        // `dns` servers are reported (fidelity): the cluster DNS stays first.
        dns_config: dns_config(service),
        host_pid: service.pid.map(|Pid::Host| true),
        // Compose gives a container no `<SERVICE>_PORT`-style variables; Kubernetes' service
        // links would, and images that read their prefix as configuration (Neo4j's
        // `NEO4J_*`) refuse to start on them.
        enable_service_links: Some(false),
        affinity: placement::node_affinity(&service.placement),
        tolerations: placement::control_plane_toleration(&service.placement),
        ..PodSpec::default()
    };
    sidecar::join(ctx, name, &mut spec, &mut storage, notes);
    // Container labels are metadata for tools, not selectors: annotations carry any
    // value, where label values are limited to 63 characters of a small alphabet.
    let mut annotations: BTreeMap<String, String> = service
        .labels
        .iter()
        .map(|(key, value)| (key.clone(), declared(ctx, value)))
        .collect();
    if let Some(description) = &service.description {
        annotations.insert("kubernetes.io/description".to_string(), description.clone());
    }
    let template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(ctx.labels(name)),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..ObjectMeta::default()
        }),
        spec: Some(spec),
    };
    (template, storage)
}

/// File secrets at `/run/secrets/<name>`, as Compose mounts them: one read-only volume of
/// the stack's Secret (made by the kustomization's secretGenerator) with the service's keys.
pub(super) fn secret_files(
    ctx: &Context,
    name: &str,
    service: &Service,
) -> Option<(KVolume, VolumeMount)> {
    if service.secrets.is_empty() {
        return None;
    }
    let items = service
        .secrets
        .iter()
        .map(|mount| KeyToPath {
            key: mount.variable.clone(),
            path: mount.file_name(),
            ..KeyToPath::default()
        })
        .collect();
    let volume = KVolume {
        name: "run-secrets".to_string(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(ctx.secret_name_for(name)),
            items: Some(items),
            // 0444, as Compose writes them: images that drop to a user must still read them.
            default_mode: Some(0o444),
            ..SecretVolumeSource::default()
        }),
        ..KVolume::default()
    };
    Some((volume, mount_at("run-secrets", "/run/secrets")))
}

/// `shm_size`: a memory-backed emptyDir at /dev/shm of that size.
pub(super) fn shared_memory(service: &Service) -> Option<(KVolume, VolumeMount)> {
    let size = service.shm_size.as_ref()?;
    let volume = KVolume {
        name: "dev-shm".to_string(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".to_string()),
            size_limit: Some(Quantity(binary_quantity(size))),
        }),
        ..KVolume::default()
    };
    Some((volume, mount_at("dev-shm", "/dev/shm")))
}

fn mount_at(volume: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: volume.to_string(),
        mount_path: path.to_string(),
        read_only: (path == "/run/secrets").then_some(true),
        ..VolumeMount::default()
    }
}

/// `extra_hosts` as the pod's /etc/hosts entries, one per address.
fn host_aliases(service: &Service) -> Option<Vec<HostAlias>> {
    let mut by_address: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (host, address) in &service.extra_hosts {
        by_address.entry(address).or_default().push(host.clone());
    }
    (!by_address.is_empty()).then(|| {
        by_address
            .into_iter()
            .map(|(ip, hostnames)| HostAlias {
                ip: ip.to_string(),
                hostnames: Some(hostnames),
            })
            .collect()
    })
}

pub(super) fn main_container(
    ctx: &Context,
    name: &str,
    service: &Service,
    env: &Environment,
    mounts: Vec<VolumeMount>,
) -> Container {
    // A local build is on no registry: the node must have it loaded (IfNotPresent).
    let built = service.image.is_none() && ctx.stack.profile.registry.is_none();
    let image = service.image.as_ref().map_or_else(
        || ctx.stack.built_image(name),
        |image| qualified_image(&declared(ctx, image)),
    );
    let words = |command: &Command| -> Vec<String> {
        match (command.words(), command) {
            (Some(words), _) => words.iter().map(|word| env.expand(word)).collect(),
            (None, Command::Shell(line)) => {
                vec!["sh".to_string(), "-c".to_string(), env.expand(line)]
            }
            (None, Command::Exec(args)) => args.iter().map(|arg| env.expand(arg)).collect(),
        }
    };
    let probes = service
        .healthcheck
        .as_ref()
        .map(|healthcheck| Probes::of(healthcheck, env, keeps_data(ctx, service)));
    Container {
        name: k8s_name(name),
        image: Some(image),
        image_pull_policy: built.then(|| "IfNotPresent".to_string()),
        command: service.entrypoint.as_ref().map(words),
        args: service.command.as_ref().map(words),
        working_dir: service.working_dir.as_ref().map(|dir| declared(ctx, dir)),
        env: (!env.entries.is_empty()).then(|| env.entries.clone()),
        env_from: env.config_map.as_ref().map(|config_map| {
            vec![EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource {
                    name: config_map.metadata.name.clone().unwrap_or_default(),
                    ..ConfigMapEnvSource::default()
                }),
                ..EnvFromSource::default()
            }]
        }),
        ports: (!service.ports.is_empty())
            .then(|| service.ports.iter().map(container_port).collect()),
        resources: resources(service),
        startup_probe: probes.as_ref().and_then(|probes| probes.startup.clone()),
        readiness_probe: probes.as_ref().map(|probes| probes.readiness.clone()),
        liveness_probe: probes.map(|probes| probes.liveness),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        security_context: container_security(service),
        tty: service.tty.then_some(true),
        stdin: service.stdin_open.then_some(true),
        ..Container::default()
    }
}

fn dns_config(service: &Service) -> Option<PodDNSConfig> {
    if service.dns_search.is_empty() && service.dns_opt.is_empty() {
        return None;
    }
    let options = service
        .dns_opt
        .iter()
        .map(|option| {
            let (name, value) = match option.split_once(':') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (option.as_str(), None),
            };
            PodDNSConfigOption {
                name: Some(name.to_string()),
                value,
            }
        })
        .collect::<Vec<_>>();
    Some(PodDNSConfig {
        nameservers: None,
        options: (!options.is_empty()).then_some(options),
        searches: (!service.dns_search.is_empty()).then(|| service.dns_search.clone()),
    })
}

pub(super) fn container_security(service: &Service) -> Option<SecurityContext> {
    let capabilities =
        (!service.cap_add.is_empty() || !service.cap_drop.is_empty()).then(|| Capabilities {
            add: (!service.cap_add.is_empty()).then(|| service.cap_add.clone()),
            drop: (!service.cap_drop.is_empty()).then(|| service.cap_drop.clone()),
        });
    let non_root = service.kubernetes.run_as_non_root;
    let mut context = SecurityContext {
        privileged: service.privileged.filter(|p| *p),
        read_only_root_filesystem: service.read_only.filter(|r| *r),
        allow_privilege_escalation: non_root.then_some(false),
        capabilities,
        ..SecurityContext::default()
    };
    for option in &service.security_opt {
        security_option(&mut context, SecurityOption::parse(option));
    }
    (context != SecurityContext::default()).then_some(context)
}

/// The `security_opt` entries a securityContext has a field for; the others are reported
/// (`fidelity::k8s_security_option`).
fn security_option(context: &mut SecurityContext, option: SecurityOption<'_>) {
    match option {
        SecurityOption::NoNewPrivileges(true) => context.allow_privilege_escalation = Some(false),
        SecurityOption::Seccomp("unconfined") => {
            context.seccomp_profile = Some(SeccompProfile {
                type_: "Unconfined".to_string(),
                localhost_profile: None,
            });
        }
        SecurityOption::AppArmor(profile) => {
            context.app_armor_profile = Some(match profile {
                "unconfined" => AppArmorProfile {
                    type_: "Unconfined".to_string(),
                    localhost_profile: None,
                },
                name => AppArmorProfile {
                    type_: "Localhost".to_string(),
                    localhost_profile: Some(name.to_string()),
                },
            });
        }
        SecurityOption::Label(label) => {
            let options = context
                .se_linux_options
                .get_or_insert_with(SELinuxOptions::default);
            match label.split_once(':') {
                Some(("user", value)) => options.user = Some(value.to_string()),
                Some(("role", value)) => options.role = Some(value.to_string()),
                Some(("type", value)) => options.type_ = Some(value.to_string()),
                Some(("level", value)) => options.level = Some(value.to_string()),
                _ => {}
            }
            if context.se_linux_options == Some(SELinuxOptions::default()) {
                context.se_linux_options = None;
            }
        }
        SecurityOption::NoNewPrivileges(false)
        | SecurityOption::Seccomp(_)
        | SecurityOption::Other => {}
    }
}

pub(super) fn numeric_user(user: Option<&str>) -> (Option<i64>, Option<i64>) {
    let Some(user) = user else {
        return (None, None);
    };
    let (uid, gid) = user
        .split_once(':')
        .map_or((user, None), |(u, g)| (u, Some(g)));
    (uid.parse().ok(), gid.and_then(|g| g.parse().ok()))
}

pub(super) fn container_port(port: &Port) -> ContainerPort {
    ContainerPort {
        container_port: i32::from(port.container_port()),
        name: Some(port_name(port)),
        protocol: Some(port.protocol.as_str().to_uppercase()),
        ..ContainerPort::default()
    }
}

/// A valid IANA service name (at most 15 characters, lower-case letters, digits, '-').
pub(super) fn port_name(port: &Port) -> String {
    let fallback = format!("{}-{}", port.protocol, port.container_port());
    let Some(name) = &port.name else {
        return fallback;
    };
    let valid = name.len() <= 15
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.chars().any(|c| c.is_ascii_lowercase())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if valid { name.clone() } else { fallback }
}

pub(super) fn resources(service: &Service) -> Option<ResourceRequirements> {
    let set = |cpus: Option<f64>, memory: &Option<ByteSize>| {
        let mut map = BTreeMap::new();
        if let Some(cpus) = cpus {
            map.insert("cpu".to_string(), Quantity(millicores(cpus)));
        }
        if let Some(memory) = memory {
            map.insert("memory".to_string(), Quantity(binary_quantity(memory)));
        }
        (!map.is_empty()).then_some(map)
    };
    let mut limits = set(
        service.resources.limits.cpus,
        &service.resources.limits.memory,
    );
    // Extended resources are asked for in limits alone (the request follows); what
    // cannot be asked (all GPUs, another vendor) is reported by `fidelity`.
    if let Some(n_gpus) = service.gpus.as_ref().and_then(gpu_count) {
        limits
            .get_or_insert_with(BTreeMap::new)
            .insert("nvidia.com/gpu".to_string(), Quantity(n_gpus.to_string()));
    }
    let requests = set(
        service.resources.reservations.cpus,
        &service.resources.reservations.memory,
    );
    (limits.is_some() || requests.is_some()).then(|| ResourceRequirements {
        limits,
        requests,
        ..ResourceRequirements::default()
    })
}

fn gpu_count(gpus: &Gpus) -> Option<usize> {
    if gpus.driver != "nvidia" {
        return None;
    }
    match gpus.count {
        _ if gpus.by_id() => Some(gpus.device_ids.len()),
        GpuCount::Count(n) => usize::try_from(n).ok(),
        GpuCount::All => None,
    }
}

pub(super) fn millicores(cpus: f64) -> String {
    format!("{}m", (cpus * 1000.0).round() as u64)
}

/// Docker sizes ("512M", "8G": binary units) as Kubernetes quantities ("512Mi", "8Gi").
pub(super) fn binary_quantity(size: &ByteSize) -> String {
    let size = size.as_str();
    let unit = size.chars().last().unwrap_or('b').to_ascii_lowercase();
    let number: f64 = size[..size.len().saturating_sub(1)].parse().unwrap_or(0.0);
    let (scale, suffixes) = match unit {
        'k' => (1u64 << 10, ["Ki", "Ki"]),
        'm' => (1 << 20, ["Mi", "Ki"]),
        'g' => (1 << 30, ["Gi", "Mi"]),
        _ => (1, ["", ""]),
    };
    if number.fract() == 0.0 {
        format!("{}{}", number as u64, suffixes[0])
    } else {
        // 1.5G is 1536Mi: one unit down keeps it whole.
        format!(
            "{}{}",
            (number * scale as f64 / (scale as f64 / 1024.0)).round() as u64,
            suffixes[1]
        )
    }
}

/// The three probes Kubernetes asks for, from the one healthcheck Compose has.
///
/// Docker never restarts an unhealthy container; Kubernetes restarts one whose liveness
/// probe fails. So the healthcheck's meaning is kept by readiness (out of its Service
/// after `retries` failures, as Compose marks it unhealthy), while liveness restarts only
/// after three times as long a failure, and never during the start period: a startup probe
/// gives the container `start_period` plus `retries` intervals to answer first. A container
/// that keeps data on a claim gets at least [`RECOVERY_SECONDS`] of them, so a database
/// replaying its log after an unclean stop is not killed half-way and made to start over.
pub(super) struct Probes {
    pub startup: Option<Probe>,
    pub readiness: Probe,
    pub liveness: Probe,
}

impl Probes {
    /// `keeps_data`: the container mounts a claim, whose data it may have to recover.
    pub(super) fn of(healthcheck: &Healthcheck, env: &Environment, keeps_data: bool) -> Probes {
        let readiness = probe(healthcheck, env);
        let failures = readiness.failure_threshold.unwrap_or(1);
        let start = healthcheck
            .start_period
            .as_ref()
            .map(|start| seconds(start.value()));
        let budget = match (start, keeps_data) {
            (start, true) => Some(start.unwrap_or(0).max(RECOVERY_SECONDS)),
            (start, false) => start,
        };
        let startup = budget.map(|budget| {
            let period = seconds(healthcheck.interval.value()).max(1);
            Probe {
                failure_threshold: Some((budget + period - 1) / period + failures),
                ..readiness.clone()
            }
        });
        let liveness = Probe {
            failure_threshold: Some(failures.saturating_mul(LIVENESS_PATIENCE)),
            ..readiness.clone()
        };
        Probes {
            startup,
            readiness,
            liveness,
        }
    }
}

/// How many times longer than readiness a liveness probe waits before a restart.
const LIVENESS_PATIENCE: i32 = 3;

/// The least time a container with data on a claim has to answer its first healthcheck:
/// crash recovery (PostgreSQL's WAL, Neo4j's transaction log, Kafka's segments) of a
/// volume that size can take minutes. The startup probe succeeds at the first healthy
/// answer, so a normal start is not made any slower by it.
const RECOVERY_SECONDS: i32 = 600;

/// Whether `service` mounts a claim (whose data it may have to recover at start).
fn keeps_data(ctx: &Context, service: &Service) -> bool {
    service.volumes.iter().any(|mount| {
        mount.kind == MountKind::Volume
            && (mount.source.as_ref()).is_some_and(|source| is_claimed(ctx, source.written()))
    })
}

fn probe(healthcheck: &Healthcheck, env: &Environment) -> Probe {
    let Healthcheck {
        test,
        interval,
        timeout,
        retries,
        start_period: _,
    } = healthcheck;
    let mut probe = Probe {
        // A variable's declared default: manifests do not read the stack's .env.
        period_seconds: Some(seconds(interval.value())),
        timeout_seconds: Some(seconds(timeout.value())),
        failure_threshold: Some(i32::try_from(*retries.value()).unwrap_or(i32::MAX).max(1)),
        ..Probe::default()
    };
    match test {
        HealthTest::Http { http } => {
            probe.http_get = Some(HTTPGetAction {
                path: Some(http.path.clone()),
                port: IntOrString::Int(i32::from(http.port)),
                ..HTTPGetAction::default()
            });
        }
        // Kubernetes expands nothing in a probe, where Compose interpolates: a probe that
        // reads a variable runs through a shell, which reads the entry holding it.
        HealthTest::Exec(args) if args.iter().any(|arg| arg.variables().next().is_some()) => {
            let line: Vec<String> = args.iter().map(|arg| env.shell_word(arg)).collect();
            probe.exec = Some(ExecAction {
                command: Some(vec!["sh".to_string(), "-c".to_string(), line.join(" ")]),
            });
        }
        HealthTest::Exec(args) => {
            probe.exec = Some(ExecAction {
                command: Some(args.iter().map(text_of).collect()),
            });
        }
        HealthTest::Shell(line) => {
            probe.exec = Some(ExecAction {
                command: Some(vec!["sh".to_string(), "-c".to_string(), env.shell(line)]),
            });
        }
    }
    probe
}

/// Whole seconds of a duration such as "1m30s" or "500ms" (at least 1).
pub(super) fn seconds(duration: &Duration) -> i32 {
    i32::try_from(duration.seconds_ceil().max(1)).unwrap_or(i32::MAX)
}

/// Init containers that hold the pod until each dependency's Service answers.
pub(super) fn waits(
    ctx: &Context,
    name: &str,
    service: &Service,
    notes: &mut Vec<Warning>,
) -> Vec<Container> {
    let mut containers = Vec::new();
    for (dependency, Dependency { condition, .. }) in &service.depends_on {
        let Some(target) = ctx.stack.services.get(dependency) else {
            continue;
        };
        // A side-car of this pod starts, healthy, before its own container: no wait.
        if target.kubernetes.sidecar_of.as_deref() == Some(name) {
            continue;
        }
        if ctx.jobs.contains(dependency.as_str()) {
            notes.push(note(
                format!("services.{name}.depends_on.{dependency}"),
                format!("{name} waits for job {dependency} to complete under Compose; on Kubernetes the Job runs alongside and {name} must tolerate its absence until it has."),
            ));
            continue;
        }
        let Some(port) = target.ports.first() else {
            notes.push(note(
                format!("services.{name}.depends_on.{dependency}"),
                format!("{name} depends on {dependency} ({condition:?}), which serves no port: nothing to wait on, so it is not gated."),
            ));
            continue;
        };
        let host = k8s_name(dependency);
        containers.push(Container {
            name: fitted(format!("wait-for-{host}")),
            image: Some(WAIT_IMAGE.to_string()),
            command: Some(vec![
                "sh".to_string(),
                "-c".to_string(),
                format!(
                    "until nc -z -w 2 {host} {port}; do echo waiting for {host}; sleep 2; done",
                    port = port.container_port()
                ),
            ]),
            ..Container::default()
        });
    }
    containers
}

/// Text in a field Kubernetes does not expand: variables take their declared values (the
/// fidelity report names the field when one has none, and the text is kept as written).
pub(super) fn declared(ctx: &Context, text: &Text) -> String {
    ctx.stack
        .declared_value(text)
        .unwrap_or_else(|| text_of(text))
}

#[cfg(test)]
mod tests {
    use super::{binary_quantity, millicores, port_name, seconds};
    use crate::model::Port;

    #[test]
    fn docker_sizes_become_binary_quantities() {
        for (docker, kubernetes) in [
            ("512M", "512Mi"),
            ("8G", "8Gi"),
            ("1024k", "1024Ki"),
            ("1.5G", "1536Mi"),
            ("100b", "100"),
        ] {
            assert_eq!(binary_quantity(&docker.into()), kubernetes, "{docker}");
        }
    }

    #[test]
    fn durations_round_up_to_whole_seconds() {
        for (duration, whole) in [
            ("10s", 10),
            ("1m30s", 90),
            ("500ms", 1),
            ("2h", 7200),
            ("1.5s", 2),
        ] {
            assert_eq!(seconds(&duration.into()), whole, "{duration}");
        }
    }

    #[test]
    fn cpus_become_millicores() {
        assert_eq!(millicores(0.5), "500m");
        assert_eq!(millicores(1.0), "1000m");
        assert_eq!(millicores(0.25), "250m");
    }

    #[test]
    fn port_names_are_valid_iana_names_or_derived() {
        let port = |name: Option<&str>| Port {
            target: crate::model::Param::fixed(8080),
            published: None,
            host_ip: None,
            private: false,
            protocol: crate::model::Protocol::Tcp,
            name: name.map(str::to_string),
            app_protocol: None,
        };
        assert_eq!(port_name(&port(Some("http"))), "http");
        assert_eq!(port_name(&port(Some("otlp-grpc"))), "otlp-grpc");
        // Too long, upper case, or digits only: fall back to protocol and number.
        assert_eq!(port_name(&port(Some("metrics-endpoint-v2"))), "tcp-8080");
        assert_eq!(port_name(&port(Some("HTTP"))), "tcp-8080");
        assert_eq!(port_name(&port(Some("8080"))), "tcp-8080");
        assert_eq!(port_name(&port(None)), "tcp-8080");
    }
}
