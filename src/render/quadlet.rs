//! Renders podman Quadlet units for hosts that run podman instead of Docker, when the
//! profile turns `quadlet` on: a `.network` per stack network, a `.volume` per volume and
//! a `.container` per service, for rootful podman's /etc/containers/systemd/, and a
//! `README` beside them with the install text (the compose unit's, which a podman host does
//! not get: see `render::install`). Pure.
//!
//! Environment values that read stack variables are not given to Quadlet's `Environment=`
//! (how it passes `$` on to systemd could not be checked here): each container's
//! `ExecStartPre` runs `berth-env`, which renders the service's template (compose's own
//! `${VAR:-default}` / `${VAR:?message}` syntax) with the host's `.env` into a file under
//! /run that the container reads as its `EnvironmentFile=`. A secret variable read there
//! reaches the container's environment, so `podman inspect` shows its value and podman's
//! container record (under /var/lib/containers) holds it while the container exists, as
//! Docker's do under Compose; the unit says so. Only `secrets = [...]` keeps a value out of
//! both: berth-env writes those files to /run (a tmpfs) and the unit mounts them. Podman's
//! own `Secret=…,type=env` is not used: its default file driver keeps every value in plain
//! text under /var/lib/containers, and it hides values from inspect only from podman 5.3.
//!
//! Health-gated ordering is kept: a dependency others wait for as healthy sets
//! `Notify=healthy`, so its unit is active only once healthy, and dependents are ordered
//! `After=` it (with `Requires=`). A dependency that is not ready in time at boot fails its
//! start job, and systemd then fails its dependents' jobs for good; so each dependency's
//! unit starts its dependents itself once ready (`ExecStartPost=`, which runs after
//! `READY=1` for a notify unit and after a job's success for a one-shot one): when its own
//! `Restart=` brings it up later, they follow, as `docker compose up` would start them. It
//! queues them (`systemctl --no-block start`; a failure to queue, say of a masked unit,
//! does not fail the dependency) and does not hold them up: a dependent stopped by hand
//! stays stopped until its dependency next starts. `Upholds=` would restart a stopped
//! dependent at once, making `systemctl stop` of it impossible while its dependency runs.
//! A one-shot job (a dependency others wait to complete) stays active once done
//! (`RemainAfterExit=yes`), so starting it again does not run it again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::compose::interpolate;
use super::fidelity::{self, Backend};
use super::install::{self, Engine};
use super::unit::{UnitFile, environment, exec_line};
use super::{Artifact, header, header_text};
use crate::model::net::Subnet;
use crate::model::podman::{self, PodmanVersion};
use crate::model::{
    Command, Condition, GpuCount, Gpus, HealthTest, Logging, Mount, MountKind, Network, Protocol,
    Published, Restart, SecretMount, Service, Stack, Text, Variable, qualified_image,
};

pub const DIR: &str = "quadlet";
const ENV_SCRIPT: &str = "berth-env";
const README: &str = "README";
/// Where the dependency units queue their dependents' start: systemd's own path on the
/// releases podman 4.7 and later ship on (merged /usr).
const SYSTEMCTL: &str = "/usr/bin/systemctl";

/// The Quadlet units of `stack`; none unless its profile turns `quadlet` on.
pub fn quadlet(stack: &Stack) -> Vec<Artifact> {
    if !stack.profile.quadlet {
        return Vec::new();
    }
    let awaited = Awaited {
        completed: stack.awaited(Condition::Completed),
        healthy: stack.awaited(Condition::Healthy),
        dependents: dependents(stack),
    };
    let mut artifacts = vec![network(stack)];
    artifacts.extend(
        stack
            .networks
            .iter()
            .filter(|(key, network)| *key != "default" && !network.external)
            .map(|(key, network)| stack_network(stack, key, network)),
    );
    // An external volume exists already: containers name it, no unit creates it.
    for name in stack
        .volumes
        .iter()
        .filter(|(_, v)| !v.external)
        .map(|(k, _)| k)
    {
        let unit = UnitFile::default()
            .section("Volume")
            .entry("VolumeName", stack.volume_engine_name(name));
        artifacts.push(file(
            &format!("{}-{name}.volume", stack.name),
            unit.render(unit_header(stack).trim_end()),
        ));
    }
    for (name, service) in &stack.services {
        artifacts.push(container(stack, name, service, &awaited));
        if has_environment(service) {
            artifacts.push(file(
                &format!("{}-{name}.env.tmpl", stack.name),
                env_template(stack, service),
            ));
        }
    }
    artifacts.push(file(
        ENV_SCRIPT,
        format!("#!/bin/bash\n{}{ENV_SCRIPT_BODY}", header(stack)),
    ));
    artifacts.push(file(README, readme(stack)));
    artifacts
}

/// The lines every unit opens with: [`header_text`], and that the units are rootful podman's.
fn unit_header(stack: &Stack) -> String {
    format!(
        "{}For rootful podman (/etc/containers/systemd/): README in this folder says how to install.\n",
        header_text(stack)
    )
}

/// The install text of a podman host: what the compose unit's header says on a Docker host
/// (the same [`install::notes`]), and how to put the units in place. Plain text, beside
/// the units, where an operator unpacking the build looks first; podman's generator reads
/// only unit files, so it ignores it.
fn readme(stack: &Stack) -> String {
    let install_dir = stack.install_dir();
    let name = &stack.name;
    let mut kinds = vec!["container", "network"];
    if stack.volumes.values().any(|volume| !volume.external) {
        kinds.push("volume");
    }
    let sources: Vec<String> = kinds
        .iter()
        .map(|kind| format!("{install_dir}/{DIR}/*.{kind}"))
        .collect();
    let units: Vec<String> = stack
        .services
        .keys()
        .map(|service| format!("{}.service", unit_name(stack, service)))
        .collect();
    let backups: Vec<&String> = stack
        .services
        .iter()
        .filter(|(_, service)| stack.profile.systemd && service.backup.is_some())
        .map(|(service, _)| service)
        .collect();
    let mut text = header_text(stack);
    text.push_str(&format!(
        "\nPodman Quadlet units of the stack {name}, for ROOTFUL podman {} or later: system units\n\
         that root's podman runs, whose berth-env writes each service's environment and secrets\n\
         under /run/berth/{name} (root's alone). They are not rootless units: rootless podman\n\
         reads ~/.config/containers/systemd/ under `systemctl --user`, with other paths, and berth\n\
         does not generate units for it.\n\
         \nInstall, as root:\n\
         1. Copy this build to {install_dir}, and fill in {install_dir}/.env from .env.template\n\
         \u{20}  (the units run {install_dir}/{DIR}/{ENV_SCRIPT}, which reads it).\n\
         2. cp {} /etc/containers/systemd/\n",
        podman_version(stack),
        sources.join(" "),
    ));
    if !backups.is_empty() {
        text.push_str(&format!(
            "   cp {install_dir}/systemd/*.service {install_dir}/systemd/*.timer /etc/systemd/system/\n"
        ));
    }
    text.push_str(&format!(
        "3. systemctl daemon-reload\n\
         \u{20}  (podman's generator turns each unit into a service: {name}-<service>.service)\n\
         4. systemctl start {}\n",
        units.join(" ")
    ));
    if !backups.is_empty() {
        let timers: Vec<String> = backups
            .iter()
            .map(|service| format!("{name}-backup-{service}.timer"))
            .collect();
        text.push_str(&format!("   systemctl enable --now {}\n", timers.join(" ")));
    }
    text.push_str(
        "   Each unit starts the units it Requires= first, in After= order (health-gated where a\n\
         \u{20}  service waits for a healthy one); at boot multi-user.target starts them all (WantedBy=),\n\
         \u{20}  and a dependency that becomes ready late starts its dependents then.\n",
    );
    let notes = install::notes(stack, Engine::Podman);
    if !notes.is_empty() {
        text.push_str(&format!("\nBefore the first start, on this host:{notes}\n"));
    }
    text
}

fn file(name: &str, contents: String) -> Artifact {
    Artifact {
        path: PathBuf::from(DIR).join(name),
        contents,
    }
}

/// The stack's default network (named as Compose would name it, or as the stack says).
fn network(stack: &Stack) -> Artifact {
    let settings = stack.networks.get("default").cloned().unwrap_or_default();
    network_unit(
        stack,
        "default",
        &settings,
        &format!("{}.network", stack.name),
    )
}

/// A network of the stack other than the default one, named as Compose names it.
fn stack_network(stack: &Stack, key: &str, network: &Network) -> Artifact {
    network_unit(
        stack,
        key,
        network,
        &format!("{}-{key}.network", stack.name),
    )
}

fn network_unit(stack: &Stack, key: &str, network: &Network, file_name: &str) -> Artifact {
    let Network {
        description: _,
        name: _, // through `network_engine_name`, as every backend names it
        driver,
        internal,
        attachable: _,
        driver_opts,
        labels,
        external: _,
        subnets,
        enable_ipv6,
    } = network;
    let mut unit = UnitFile::default()
        .section("Network")
        .entry("NetworkName", stack.network_engine_name(key));
    if driver != "bridge" {
        unit = unit.entry("Driver", driver.clone());
    }
    if *internal {
        unit = unit.entry("Internal", "true");
    }
    if *enable_ipv6 {
        unit = unit.entry("IPv6", "true");
    }
    let (entries, notes) = subnet_entries(subnets);
    for (key, value) in entries {
        unit = unit.entry(key, value);
    }
    for (option, value) in driver_opts {
        unit = unit.entry("Options", environment(option, value));
    }
    for (label, value) in labels {
        unit = unit.entry("Label", environment(label, value));
    }
    let mut header = unit_header(stack).trim_end().to_string();
    for note in notes {
        header.push_str(&format!("\n{note}"));
    }
    file(file_name, unit.render(&header))
}

/// `Subnet=`, `Gateway=` and `IPRange=` entries. podman pairs the i-th gateway and the
/// i-th range with the i-th subnet, so subnets with a gateway come first, then those with
/// a range; a gateway or range that still has no position (a subnet with a range only
/// before one with a gateway only) cannot be given, and the unit's header says so.
fn subnet_entries(subnets: &[Subnet]) -> (Vec<(&'static str, String)>, Vec<String>) {
    let mut ordered: Vec<&Subnet> = subnets.iter().collect();
    ordered.sort_by_key(|s| (s.gateway.is_none(), s.ip_range.is_none()));
    let mut entries: Vec<(&'static str, String)> = ordered
        .iter()
        .map(|s| ("Subnet", s.subnet.to_string()))
        .collect();
    let mut notes = Vec::new();
    let gateways = ordered.iter().take_while(|s| s.gateway.is_some()).count();
    let ranges = ordered.iter().take_while(|s| s.ip_range.is_some()).count();
    for (index, subnet) in ordered.iter().enumerate() {
        if let Some(gateway) = subnet.gateway {
            if index < gateways {
                entries.push(("Gateway", gateway.to_string()));
            } else {
                notes.push(format!("warning: podman cannot take the gateway {gateway} of {} (gateways pair with subnets by position); it uses the range's first address", subnet.subnet));
            }
        }
        if let Some(range) = subnet.ip_range {
            if index < ranges {
                entries.push(("IPRange", range.to_string()));
            } else {
                notes.push(format!("warning: podman cannot take the ip_range {range} of {} (ranges pair with subnets by position); it assigns addresses from the whole subnet", subnet.subnet));
            }
        }
    }
    (entries, notes)
}

/// The Quadlet reference of a network the service joins: a unit berth writes, or the
/// name of an external network.
fn network_ref(stack: &Stack, key: &str) -> String {
    match stack.networks.get(key) {
        Some(network) if network.external => stack.network_engine_name(key),
        _ if key == "default" => format!("{}.network", stack.name),
        _ => format!("{}-{key}.network", stack.name),
    }
}

/// The release the profile targets; validation has made sure it is set and known.
fn podman_version(stack: &Stack) -> PodmanVersion {
    stack
        .profile
        .podman_version
        .as_deref()
        .and_then(PodmanVersion::parse)
        .unwrap_or(podman::OLDEST)
}

/// A `[Container]` entry as `target` reads it: a key newer than the target becomes its
/// `podman run` option in `PodmanArgs=` (validation refuses fields with no such option).
fn older_spelling(
    target: PodmanVersion,
    key: &'static str,
    value: String,
) -> (&'static str, String) {
    match podman::newer_key(key) {
        Some(newer) if newer.since > target => match newer.podman_option {
            Some(option) => ("PodmanArgs", podman_arg(option, &value)),
            None => (key, value),
        },
        _ => (key, value),
    }
}

/// `--option=value` as one `PodmanArgs=` word, double-quoted when the value has blanks or
/// quotes (Quadlet splits the line as systemd splits words).
fn podman_arg(option: &str, value: &str) -> String {
    if value
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'))
    {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{option}={escaped}\"")
    } else {
        format!("{option}={value}")
    }
}

/// How a mount names a stack volume: by its Quadlet unit (which creates it), or by the
/// engine name (for `podman run` outside Quadlet, once the unit has created it).
#[derive(Clone, Copy)]
pub(super) enum Reference {
    Unit,
    Engine,
}

/// `source:target[:ro][,z|Z]` of a volume or bind mount, as `Volume=` and `podman run
/// --volume` read it (a bind's SELinux relabelling as Compose's `bind.selinux`); `None`
/// for a tmpfs.
pub(super) fn mount_spec(stack: &Stack, mount: &Mount, reference: Reference) -> Option<String> {
    let relabel = mount
        .selinux
        .as_deref()
        .filter(|_| mount.kind == MountKind::Bind);
    let options: Vec<&str> = [mount.read_only.then_some("ro"), relabel]
        .into_iter()
        .flatten()
        .collect();
    let options = if options.is_empty() {
        String::new()
    } else {
        format!(":{}", options.join(","))
    };
    let source = mount.source.as_ref().map(|source| baked(stack, source));
    let source = match (mount.kind, source) {
        (MountKind::Volume, Some(volume)) => match (stack.volumes.get(&volume), reference) {
            (Some(declared), _) if declared.external => stack.volume_engine_name(&volume),
            (_, Reference::Engine) => stack.volume_engine_name(&volume),
            (_, Reference::Unit) => format!("{}-{volume}.volume", stack.name),
        },
        (MountKind::Bind, Some(path)) => match path.strip_prefix("./") {
            Some(relative) => format!("{}/{relative}", stack.install_dir()),
            None => path,
        },
        (MountKind::Tmpfs, _) | (_, None) => return None,
    };
    Some(format!("{source}:{}{options}", mount.target))
}

/// The image a service's unit runs.
pub(super) fn image(stack: &Stack, name: &str, service: &Service) -> String {
    service.image.as_ref().map_or_else(
        || match &stack.profile.registry {
            Some(_) => stack.built_image(name),
            // Podman qualifies a short name with a registry; a local build is localhost's.
            None => format!("localhost/{}", stack.built_image(name)),
        },
        |image| qualified_image(&baked(stack, image)),
    )
}

pub(super) fn unit_name(stack: &Stack, service: &str) -> String {
    format!("{}-{service}", stack.name)
}

/// Which services others wait for, by condition, and who waits for each; computed once per
/// stack.
struct Awaited<'a> {
    completed: BTreeSet<&'a str>,
    healthy: BTreeSet<&'a str>,
    dependents: BTreeMap<&'a str, Vec<&'a str>>,
}

/// For each service of the stack that others depend on (whatever the condition), those
/// that do, in name order.
fn dependents(stack: &Stack) -> BTreeMap<&str, Vec<&str>> {
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, service) in &stack.services {
        for dependency in service.depends_on.keys() {
            if stack.services.contains_key(dependency) {
                dependents
                    .entry(dependency.as_str())
                    .or_default()
                    .push(name.as_str());
            }
        }
    }
    dependents
}

/// `ExecStartPost=` queuing the start of `dependent`'s unit: without waiting for it (it
/// is ordered after this unit, whose start is still running), and with a leading `-`, so
/// that a failure to queue it (a masked unit) cannot fail this one.
fn start_later(stack: &Stack, dependent: &str) -> String {
    let dependent_unit = format!("{}.service", unit_name(stack, dependent));
    format!(
        "-{}",
        exec_line(&[SYSTEMCTL, "--no-block", "start", &dependent_unit])
    )
}

/// The comment of a dependency's unit on its `ExecStartPost=` lines.
fn dependents_note(stack: &Stack, dependents: &[&str], is_job: bool, healthy: bool) -> String {
    let ready = if is_job {
        "Once its job has completed"
    } else if healthy {
        "Once healthy"
    } else {
        "Once its container runs"
    };
    let units: Vec<String> = dependents
        .iter()
        .map(|dependent| unit_name(stack, dependent))
        .collect();
    format!(
        "{ready}, ExecStartPost= starts the units that depend on it ({}): one whose start failed because this unit was not ready in time at boot starts when this unit comes up later. One stopped by hand stays stopped until this unit starts again (`systemctl mask --runtime` keeps it down past that).\n",
        units.join(", ")
    )
}

/// The secret variables a service's environment reads or passes from the host: their values
/// reach the container's environment. (A secret has no default, so validation refuses
/// `${SECRET:+text}`: every reference is a value.)
fn secret_environment<'a>(stack: &Stack, service: &'a Service) -> BTreeSet<&'a str> {
    let is_secret = |name: &str| stack.variables.get(name).is_some_and(|v| v.secret);
    let read = service.environment.values().flat_map(Text::variables);
    let passed = service.host_environment.iter().map(String::as_str);
    read.chain(passed).filter(|name| is_secret(name)).collect()
}

fn container(stack: &Stack, name: &str, service: &Service, awaited: &Awaited) -> Artifact {
    let install_dir = stack.install_dir();
    let is_job = awaited.completed.contains(name);
    let awaited_healthy = awaited.healthy.contains(name);
    let mut unit = UnitFile::default().section("Unit").entry(
        "Description",
        format!(
            "{} (berth stack {}, profile {})",
            service.description.as_deref().unwrap_or(name),
            stack.name,
            stack.profile.name
        ),
    );
    for dependency in service.depends_on.keys() {
        let dependency_unit = format!("{}.service", unit_name(stack, dependency));
        unit = unit
            .entry("Requires", dependency_unit.clone())
            .entry("After", dependency_unit);
    }
    unit = unit
        .section("Container")
        .entry("ContainerName", unit_name(stack, name))
        .entry("Image", image(stack, name, service))
        .entry("NetworkAlias", name.to_string());
    unit = networking(stack, service, unit);
    if has_environment(service) {
        unit = unit.entry(
            "EnvironmentFile",
            format!("/run/berth/{}/{name}.env", stack.name),
        );
    }
    if let Some(entrypoint) = &service.entrypoint {
        unit = unit.entry("Entrypoint", json_words(stack, entrypoint));
    }
    if let Some(command) = &service.command {
        unit = unit.entry("Exec", command_words(stack, command));
    }
    unit = ports_and_mounts(stack, service, unit);
    if !service.secrets.is_empty() {
        // berth-env writes them to the host's tmpfs before each start, as Compose mounts
        // an environment secret: never on disk, and no value in `podman inspect`.
        unit = unit.entry(
            "Volume",
            format!("{}:/run/secrets:ro,Z", secrets_dir(stack, name)),
        );
    }
    unit = health(stack, service, unit, awaited_healthy);
    unit = limits(stack, service, unit);
    let script = format!("{install_dir}/{DIR}/{ENV_SCRIPT}");
    let secrets: Vec<String> = service
        .secrets
        .iter()
        .map(|mount| secret_argument(stack, mount))
        .collect();
    let mut env_command = vec!["/bin/bash", &script, &stack.name, name, &install_dir];
    env_command.extend(secrets.iter().map(String::as_str));
    unit = unit
        .section("Service")
        .entry("ExecStartPre", exec_line(&env_command));
    unit = if is_job {
        // A job others wait to complete: active once it has exited successfully.
        unit.entry("Type", "oneshot")
            .entry("RemainAfterExit", "yes")
    } else {
        unit.entry(
            "Restart",
            restart_of(service.restart.as_ref().map(|r| *r.value())),
        )
        .entry("TimeoutStartSec", "15min")
    };
    let dependents = awaited.dependents.get(name).map_or(&[][..], Vec::as_slice);
    for dependent in dependents {
        unit = unit.entry("ExecStartPost", start_later(stack, dependent));
    }
    unit = unit
        .section("Install")
        .entry("WantedBy", "multi-user.target");
    let target = podman_version(stack);
    unit = unit.rewrite("Container", |key, value| older_spelling(target, key, value));
    let mut comment = unit_header(stack);
    comment.push_str(&format!(
        "For podman {target} or later (profile `podman_version`): Quadlet skips a unit with a key its release does not know.\n"
    ));
    for warning in fidelity::service_warnings(stack, name, Backend::Quadlet) {
        comment.push_str(&format!(
            "Not carried by Quadlet: {}: {}\n",
            warning.diagnostic.field, warning.diagnostic.message
        ));
    }
    for (index, mount) in service.volumes.iter().enumerate() {
        if mount.kind == MountKind::Volume && mount.source.is_none() && mount.read_only {
            comment.push_str(&format!(
                "Not carried by Quadlet: services.{name}.volumes[{index}]: the anonymous volume {} is mounted read-write (Quadlet has no read-only anonymous volume: `Mount=type=volume` needs a source)\n",
                mount.target
            ));
        }
    }
    for mount in &service.secrets {
        if let Some(path) = stack.secret_file(&mount.variable) {
            comment.push_str(&format!(
                "Secret {} is read from {} on this host (berth-env copies it before each start).\n",
                mount.variable,
                stack.host_path(path)
            ));
        }
    }
    if !dependents.is_empty() {
        comment.push_str(&dependents_note(stack, dependents, is_job, awaited_healthy));
    }
    for variable in secret_environment(stack, service) {
        comment.push_str(&format!(
            "Secret {variable} reaches the environment (EnvironmentFile=): `podman inspect` shows its value, and podman's container record under /var/lib/containers holds it while the container exists, as Docker's do under Compose. Mount it with `secrets = [...]` instead to keep it out of both.\n"
        ));
    }
    let baked_variables = command_variables(service);
    if !baked_variables.is_empty() {
        comment.push_str(&format!(
            "The command uses the declared values of {}: edit Exec= here to change them on this host.\n",
            baked_variables.join(", ")
        ));
    }
    if service.build.is_some() && service.image.is_none() && stack.profile.registry.is_none() {
        comment.push_str(&format!(
            "Built locally: podman build -t {} <context> before starting.\n",
            image(stack, name, service)
        ));
    }
    file(
        &format!("{}.container", unit_name(stack, name)),
        unit.render(comment.trim_end()),
    )
}

/// Networks, host names and the container's metadata: what Compose sets on `docker run`.
fn networking(stack: &Stack, service: &Service, mut unit: UnitFile) -> UnitFile {
    let default = ["default".to_string()];
    let joined = if service.networks.is_empty() {
        &default[..]
    } else {
        &service.networks[..]
    };
    for key in joined {
        let mut network = network_ref(stack, key);
        if let Some(address) = service.network_addresses.get(key) {
            // podman's per-network options: `ip=` and `ip6=` after the network's name.
            let options: Vec<String> = address
                .ipv4
                .map(|ip| format!("ip={ip}"))
                .into_iter()
                .chain(address.ipv6.map(|ip| format!("ip6={ip}")))
                .collect();
            network = format!("{network}:{}", options.join(","));
        }
        unit = unit.entry("Network", network);
    }
    // Podman gives a container's aliases on every network it joins.
    for alias in service.network_aliases.values().flatten() {
        unit = unit.entry("NetworkAlias", baked(stack, alias));
    }
    if let Some(hostname) = &service.hostname {
        unit = unit.entry("HostName", baked(stack, hostname));
    }
    for (host, address) in &service.extra_hosts {
        unit = unit.entry("AddHost", format!("{host}:{address}"));
    }
    for (key, value) in &service.labels {
        unit = unit.entry("Label", environment(key, &baked(stack, value)));
    }
    if let Some(Logging { driver, options }) = &service.logging {
        // podman reads json-file as its k8s-file driver.
        unit = unit.entry("LogDriver", driver.clone());
        for (option, value) in options {
            if fidelity::PODMAN_LOG_OPTIONS.contains(&option.as_str()) {
                unit = unit.entry("LogOpt", environment(option, value));
            }
        }
    }
    for file in &service.env_file {
        let path = baked(stack, &file.path);
        let path = match path.strip_prefix("./") {
            Some(relative) => format!("{}/{relative}", stack.install_dir()),
            None => path,
        };
        unit = unit.entry("EnvironmentFile", path);
    }
    unit
}

fn ports_and_mounts(stack: &Stack, service: &Service, mut unit: UnitFile) -> UnitFile {
    for port in &service.ports {
        let Some(published) = &port.published else {
            continue;
        };
        let host = match published {
            Published::Port(port) => port.to_string(),
            // `PublishPort=8080` or `127.0.0.1::8080`: podman picks a free host port.
            Published::Random => String::new(),
            Published::Range(variable) if published.variable().is_some() => baked(stack, variable),
            // One container per unit: it takes the first port of the range.
            Published::Range(range) => {
                let range = range.source();
                range.split('-').next().unwrap_or(&range).to_string()
            }
        };
        let address = port
            .effective_host_ip(&stack.profile)
            .map(|ip| format!("{ip}:"))
            .unwrap_or_default();
        let protocol = if port.protocol == Protocol::Udp {
            "/udp"
        } else {
            ""
        };
        let host_part = if host.is_empty() && address.is_empty() {
            String::new()
        } else {
            format!("{address}{host}:")
        };
        unit = unit.entry(
            "PublishPort",
            format!("{host_part}{}{protocol}", port.container_port()),
        );
    }
    for mount in &service.volumes {
        match mount_spec(stack, mount, Reference::Unit) {
            // `:U` gives a named volume to the container's user, as fsGroup does on
            // Kubernetes (Docker has neither: Compose runs a chown job instead).
            Some(spec)
                if service.volume_owner.is_some()
                    && mount.kind == MountKind::Volume
                    && !mount.read_only =>
            {
                unit = unit.entry("Volume", format!("{spec}:U"));
            }
            Some(spec) => unit = unit.entry("Volume", spec),
            // An anonymous volume: podman creates one for the container (`-v PATH`), as
            // Docker does. Not `Mount=type=volume` without a source: Quadlet 5.4's
            // generator crashes on it. Read-only, an anonymous volume stays empty: `ro`
            // has nothing to protect, and `PATH:ro` would read as a bind of PATH on `ro`.
            None if mount.kind == MountKind::Volume => {
                unit = unit.entry("Volume", mount.target.clone());
            }
            None => unit = unit.entry("Tmpfs", mount.target.clone()),
        }
    }
    for path in &service.tmpfs {
        unit = unit.entry("Tmpfs", path.clone());
    }
    unit
}

fn health(stack: &Stack, service: &Service, mut unit: UnitFile, awaited_healthy: bool) -> UnitFile {
    let Some(healthcheck) = &service.healthcheck else {
        return unit;
    };
    let command = match &healthcheck.test {
        HealthTest::Shell(line) => baked(stack, line),
        HealthTest::Exec(args) => {
            json_array(&args.iter().map(|a| baked(stack, a)).collect::<Vec<_>>())
        }
        HealthTest::Http { http } => json_array(&http.command()),
    };
    unit = unit
        .entry("HealthCmd", command)
        // A variable's declared default: units do not read the stack's .env.
        .entry("HealthInterval", healthcheck.interval.value().to_string())
        .entry("HealthTimeout", healthcheck.timeout.value().to_string())
        .entry("HealthRetries", healthcheck.retries.value().to_string());
    if let Some(start) = &healthcheck.start_period {
        unit = unit.entry("HealthStartPeriod", start.value().to_string());
    }
    if awaited_healthy {
        // The unit becomes active only once the container is healthy; dependents start After= it.
        unit = unit.entry("Notify", "healthy");
    }
    unit
}

fn limits(stack: &Stack, service: &Service, mut unit: UnitFile) -> UnitFile {
    for (name, limit) in &service.ulimits {
        unit = unit.entry("Ulimit", format!("{name}={}:{}", limit.soft, limit.hard));
    }
    if let Some(user) = &service.user {
        unit = unit.entry("User", baked(stack, user));
    }
    if let Some(dir) = &service.working_dir {
        unit = unit.entry("WorkingDir", baked(stack, dir));
    }
    for capability in &service.cap_add {
        unit = unit.entry("AddCapability", capability.clone());
    }
    for capability in &service.cap_drop {
        unit = unit.entry("DropCapability", capability.clone());
    }
    if service.read_only == Some(true) {
        unit = unit.entry("ReadOnly", "true");
    }
    if let Some(size) = &service.shm_size {
        unit = unit.entry("ShmSize", size.to_string());
    }
    for device in &service.devices {
        unit = unit.entry("AddDevice", baked(stack, device));
    }
    for (key, value) in &service.sysctls {
        unit = unit.entry("Sysctl", environment(key, value));
    }
    for server in &service.dns {
        unit = unit.entry("DNS", server.clone());
    }
    for domain in &service.dns_search {
        unit = unit.entry("DNSSearch", domain.clone());
    }
    for option in &service.dns_opt {
        unit = unit.entry("DNSOption", option.clone());
    }
    for device in service.gpus.iter().flat_map(cdi_devices) {
        unit = unit.entry("AddDevice", device);
    }
    if let Some(signal) = &service.stop_signal {
        unit = unit.entry("StopSignal", signal.clone());
    }
    if let Some(grace) = &service.stop_grace_period {
        unit = unit.entry("StopTimeout", grace.seconds_ceil().to_string());
    }
    let mut args = Vec::new();
    if let Some(cpus) = service.resources.limits.cpus {
        args.push(format!("--cpus={cpus}"));
    }
    if let Some(memory) = &service.resources.limits.memory {
        args.push(format!("--memory={}", memory.as_str().to_lowercase()));
    }
    if service.privileged == Some(true) {
        args.push("--privileged".to_string());
    }
    if service.init == Some(true) {
        args.push("--init".to_string());
    }
    // Quadlet has no keys for these (podman run options carry them).
    if service.tty {
        args.push("--tty".to_string());
    }
    if service.stdin_open {
        args.push("--interactive".to_string());
    }
    if let Some(pid) = service.pid {
        args.push(format!("--pid={}", pid.as_str()));
    }
    for option in &service.security_opt {
        args.push(podman_arg("--security-opt", option));
    }
    if !args.is_empty() {
        unit = unit.entry("PodmanArgs", args.join(" "));
    }
    unit
}

/// GPUs by their CDI names, as the NVIDIA container toolkit generates them for podman:
/// the first N by index, as Docker's count picks them. Another driver is reported.
fn cdi_devices(gpus: &Gpus) -> Vec<String> {
    if gpus.driver != "nvidia" {
        return Vec::new();
    }
    let names: Vec<String> = match gpus.count {
        _ if gpus.by_id() => gpus.device_ids.clone(),
        GpuCount::All => vec!["all".to_string()],
        GpuCount::Count(n) => (0..n).map(|index| index.to_string()).collect(),
    };
    names
        .into_iter()
        .map(|name| format!("nvidia.com/gpu={name}"))
        .collect()
}

fn restart_of(policy: Option<Restart>) -> &'static str {
    match policy {
        Some(Restart::Always | Restart::UnlessStopped) => "always",
        Some(Restart::OnFailure) => "on-failure",
        Some(Restart::No) | None => "no",
    }
}

/// `Exec=` words with systemd command-line quoting (`%` and `$` escaped). A variable in a
/// command takes its declared value here: how Quadlet passes a `$` on could not be checked,
/// so nothing is left for it to expand.
fn command_words(stack: &Stack, command: &Command) -> String {
    match command {
        Command::Exec(args) => {
            let words: Vec<String> = args.iter().map(|a| baked(stack, a)).collect();
            exec_line(&words.iter().map(String::as_str).collect::<Vec<_>>())
        }
        // As Compose: the values first, then the split.
        Command::Shell(line) => match shell_words::split(&baked(stack, line)) {
            Ok(words) => exec_line(&words.iter().map(String::as_str).collect::<Vec<_>>()),
            Err(_) => exec_line(&["sh", "-c", &baked(stack, line)]),
        },
    }
}

fn json_words(stack: &Stack, command: &Command) -> String {
    match command {
        Command::Exec(args) => {
            json_array(&args.iter().map(|a| baked(stack, a)).collect::<Vec<_>>())
        }
        Command::Shell(line) => json_array(&["sh".into(), "-c".into(), baked(stack, line)]),
    }
}

/// Text with each variable replaced by its declared value (a secret or a variable without
/// a value stays `${NAME}`, and the unit says it needs attention).
fn baked(stack: &Stack, value: &Text) -> String {
    let declared = |name: &str| match stack.variables.get(name) {
        Some(Variable {
            default: Some(default),
            secret: false,
            ..
        }) => Some(default.clone()),
        _ => None,
    };
    value.render(
        str::to_string,
        |name| declared(name).unwrap_or_else(|| format!("${{{name}}}")),
        |name, alternative| {
            let set = declared(name).is_some_and(|value| !value.is_empty());
            if set {
                alternative.to_string()
            } else {
                String::new()
            }
        },
    )
}

/// Variables a command reads, for the unit's comment.
fn command_variables(service: &Service) -> Vec<String> {
    let mut names: Vec<String> = [&service.command, &service.entrypoint]
        .into_iter()
        .flatten()
        .flat_map(|command| match command {
            Command::Shell(line) => vec![line],
            Command::Exec(args) => args.iter().collect(),
        })
        .flat_map(|text| text.variables().map(str::to_string).collect::<Vec<_>>())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn json_array(words: &[String]) -> String {
    serde_json::to_string(words).unwrap_or_default()
}

/// How berth-env is told of one secret (see its usage): `NAME`, a variable of .env written
/// at its name in lower case; `FILE=NAME` under another name; `FILE=file:PATH`, a copy of
/// a file of the host (a relative path is in the install folder, as bind sources are).
fn secret_argument(stack: &Stack, mount: &SecretMount) -> String {
    let file_name = mount.file_name();
    match stack.secret_file(&mount.variable) {
        Some(path) => format!("{file_name}=file:{}", stack.host_path(path)),
        None if mount.target.is_none() => mount.variable.clone(),
        None => format!("{file_name}={}", mount.variable),
    }
}

/// The host folder (on `/run`, a tmpfs) where berth-env writes a service's file secrets.
fn secrets_dir(stack: &Stack, service: &str) -> String {
    format!("/run/berth/{}/{service}.secrets", stack.name)
}

fn has_environment(service: &Service) -> bool {
    !service.environment.is_empty() || !service.host_environment.is_empty()
}

/// `KEY=template` lines in compose's interpolation syntax, rendered on the host by
/// berth-env, then a bare `NAME` per variable passed from the host's .env when set there.
fn env_template(stack: &Stack, service: &Service) -> String {
    let mut out = header(stack);
    for (key, value) in &service.environment {
        out.push_str(&format!("{key}={}\n", interpolate(stack, value)));
    }
    for name in &service.host_environment {
        out.push_str(&format!("{name}\n"));
    }
    out
}

const ENV_SCRIPT_BODY: &str = r##"# Usage: berth-env STACK SERVICE INSTALL_DIR [SECRET...]
# Renders INSTALL_DIR/quadlet/STACK-SERVICE.env.tmpl with the variables of INSTALL_DIR/.env into
# /run/berth/STACK/SERVICE.env, the container's EnvironmentFile. Understands exactly what
# berth writes: ${NAME}, ${NAME:-default}, ${NAME:?message}, ${NAME:+text} and $$ for a
# literal $; a line that is a bare NAME passes NAME from .env when .env sets it, and
# nothing otherwise.
# Each SECRET is written to /run/berth/STACK/SERVICE.secrets/, which the unit mounts at
# /run/secrets (a missing one stops the unit): NAME, a variable of INSTALL_DIR/.env, as
# <name in lower case>; FILE=NAME, that variable as FILE; FILE=file:PATH, a copy of the
# host's file PATH (its bytes as they are, line breaks included) as FILE.
set -euo pipefail
umask 077

stack="$1" service="$2" install_dir="$3"
shift 3
template="$install_dir/quadlet/$stack-$service.env.tmpl"
out_dir="${BERTH_RUNTIME_DIR:-/run/berth}/$stack"
out="$out_dir/$service.env"
mkdir -p "$out_dir"

expand() {
  local rest="$1" result="" name modifier word
  while [[ "$rest" == *'$'* ]]; do
    result+="${rest%%\$*}"
    rest="${rest#*\$}"
    if [[ "$rest" == '$'* ]]; then
      result+='$'
      rest="${rest#\$}"
    elif [[ "$rest" =~ ^\{([A-Za-z_][A-Za-z0-9_]*)(:[-?+])?([^}]*)\}(.*)$ ]]; then
      name="${BASH_REMATCH[1]}" modifier="${BASH_REMATCH[2]}" word="${BASH_REMATCH[3]}" rest="${BASH_REMATCH[4]}"
      if [ "$modifier" = ":+" ]; then
        if [ -n "${vars[$name]:-}" ]; then result+="$word"; fi
      elif [ -n "${vars[$name]:-}" ]; then
        result+="${vars[$name]}"
      elif [ "$modifier" = ":-" ]; then
        result+="$word"
      elif [ "$modifier" = ":?" ]; then
        echo "berth-env: $service: $word" >&2
        return 1
      fi
    else
      result+='$'
    fi
  done
  printf '%s' "$result$rest"
}

declare -A vars=()
env_file="$install_dir/.env"

fail() {
  echo "berth-env: $service: $*" >&2
  exit 1
}

trim() {
  local text="$1"
  text="${text#"${text%%[![:space:]]*}"}"
  printf '%s' "${text%"${text##*[![:space:]]}"}"
}

# A double-quoted value as Compose reads it: up to the first unescaped quote, with \n, \t,
# \r and \<char> escapes. Prints nothing and fails when the quote is not closed.
double_quoted() {
  local rest="$1" out="" c
  while [ -n "$rest" ]; do
    c="${rest:0:1}" rest="${rest:1}"
    if [ "$c" = "\\" ]; then
      c="${rest:0:1}" rest="${rest:1}"
      case "$c" in n) out+=$'\n' ;; t) out+=$'\t' ;; r) out+=$'\r' ;; '') out+="\\" ;; *) out+="$c" ;; esac
    elif [ "$c" = '"' ]; then
      printf '%s' "$out"
      return 0
    else
      out+="$c"
    fi
  done
  return 1
}

# The host's .env with Compose's rules: `#` comment lines, an optional `export `, spaces
# around `=`, single quotes literal, double quotes with escapes, an unquoted value up to an
# inline ` #` comment, and `${NAME}` in unquoted and double-quoted values reading the
# lines above.
if [ -f "$env_file" ]; then
  n=0
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    line="$(trim "$line")"
    case "$line" in '' | '#'*) continue ;; esac
    line="${line#export }"
    case "$line" in *=*) ;; *) continue ;; esac
    key="$(trim "${line%%=*}")"
    value="$(trim "${line#*=}")"
    case "$value" in
      "'"*)
        value="${value#\'}"
        case "$value" in *"'"*) value="${value%%\'*}" ;; *) fail "$env_file:$n: unterminated '-quoted value (podman hosts take one line per value)" ;; esac
        ;;
      '"'*)
        value="$(double_quoted "${value#\"}")" || fail "$env_file:$n: unterminated \"-quoted value (podman hosts take one line per value)"
        value="$(expand "$value")"
        ;;
      *)
        case "$value" in *" #"*) value="$(trim "${value%% #*}")" ;; esac
        value="$(expand "$value")"
        ;;
    esac
    case "$value" in *$'\n'* | *$'\r'*) fail "$env_file:$n: $key holds a line break, which podman's environment file cannot carry" ;; esac
    vars["$key"]="$value"
  done <"$env_file"
fi

tmp="$out.tmp"
trap 'rm -f "$tmp"' EXIT
: >"$tmp"
if [ -f "$template" ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in '' | '#'*) continue ;; esac
    if [[ "$line" != *=* ]]; then
      if [ -n "${vars[$line]+set}" ]; then
        printf '%s=%s\n' "$line" "${vars[$line]}" >>"$tmp"
      fi
      continue
    fi
    # An assignment, so that a failed expansion (a missing secret) stops the script under set -e.
    value="$(expand "${line#*=}")"
    printf '%s=%s\n' "${line%%=*}" "$value" >>"$tmp"
  done <"$template"
fi
mv "$tmp" "$out"

if [ "$#" -gt 0 ]; then
  # Readable by the container's user whoever it is (0444, as Compose mounts secrets); the
  # folder above stays root's alone (0700).
  secrets="$out_dir/$service.secrets"
  staged="$(mktemp -d "$out_dir/.$service.secrets.XXXXXX")"
  trap 'rm -f "$tmp"; rm -rf "$staged"' EXIT
  # Without its secrets the service does not start, and no previous value stays behind.
  missing() {
    echo "berth-env: $service: $*" >&2
    rm -rf "$secrets"
    exit 1
  }
  for secret in "$@"; do
    name="" file=""
    case "$secret" in
      *=file:*) target="${secret%%=*}" file="${secret#*=file:}" ;;
      *=*) target="${secret%%=*}" name="${secret#*=}" ;;
      *) target="${secret,,}" name="$secret" ;;
    esac
    if [ -n "$file" ]; then
      if [ ! -f "$file" ] || [ ! -r "$file" ]; then
        missing "the secret file $file (mounted as /run/secrets/$target) is missing or unreadable"
      fi
      cp -- "$file" "$staged/$target"
    else
      if [ -z "${vars[$name]:-}" ]; then
        missing "the secret $name is not set in $install_dir/.env"
      fi
      printf '%s' "${vars[$name]}" >"$staged/$target"
    fi
    chmod 0444 "$staged/$target"
  done
  chmod 0755 "$staged"
  rm -rf "$secrets"
  mv "$staged" "$secrets"
fi
"##;
