//! What apply would change: the desired state against what the engine holds. Pure, so
//! `plan` and `apply` agree by construction and the diff logic is tested without an engine.

use std::collections::BTreeSet;
use std::fmt;

use super::engine::{Existing, Health, Observed, Status};
use super::spec::{ContainerSpec, Desired, MountSpec, NetworkSpec};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Create,
    /// With the reasons: the fields that changed (never their values: they may be secret).
    Recreate(Vec<String>),
    /// The container is as specified but not running.
    Start,
    Keep,
    Remove,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub kind: Kind,
    pub name: String,
    pub change: Change,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Network,
    Volume,
    Container,
}

/// A container step also knows its service, replica and the container it replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStep {
    pub step: Step,
    pub service: String,
    pub replica: u32,
    pub existing: Option<String>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Remove containers and networks of services no longer in the modules.
    pub prune: bool,
    /// Also remove the stack's volumes that no service uses any more.
    pub prune_volumes: bool,
    /// Rebuild images that have a build section even when the engine has them.
    pub build: bool,
    /// Back up a service that declares a backup before recreating or removing it.
    pub backup: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub networks: Vec<Step>,
    pub volumes: Vec<Step>,
    pub containers: Vec<ContainerStep>,
}

/// The plan that takes the engine from `observed` to `desired`. `deployed` is the spec
/// of the last generation, used only to say which fields changed.
pub fn plan(
    desired: &Desired,
    observed: &Observed,
    deployed: Option<&Desired>,
    options: Options,
) -> Plan {
    let networks = changed_networks(
        desired,
        observed,
        resources(
            Kind::Network,
            &desired.stack,
            desired
                .networks
                .iter()
                .map(|(name, spec)| (name.as_str(), spec.external)),
            &observed.networks,
            options.prune,
        ),
    );
    let containers = on_recreated_networks(
        desired,
        &networks,
        containers(desired, observed, deployed, options.prune),
    );
    Plan {
        networks,
        volumes: resources(
            Kind::Volume,
            &desired.stack,
            desired
                .volumes
                .iter()
                .map(|(name, spec)| (name.as_str(), spec.external)),
            &observed.volumes,
            options.prune_volumes,
        ),
        containers: restart_with_dependencies(desired, containers),
    }
}

/// A network of the stack that exists with other settings than the spec's (a subnet, an
/// option, IPv6) is recreated: the engine changes none of them in place.
fn changed_networks(desired: &Desired, observed: &Observed, mut steps: Vec<Step>) -> Vec<Step> {
    for step in &mut steps {
        if step.change != Change::Keep {
            continue;
        }
        let (Some(spec), Some(found)) = (
            desired.networks.get(&step.name),
            observed.network_settings.get(&step.name),
        ) else {
            continue;
        };
        let owned = observed.networks.get(&step.name).and_then(Option::as_deref)
            == Some(desired.stack.as_str());
        if spec.external || !owned {
            continue;
        }
        let why = network_differences(spec, found);
        if !why.is_empty() {
            step.change = Change::Recreate(why);
        }
    }
    steps
}

/// What the spec sets that the engine's network lacks. Only what the spec says is
/// compared: the engine fills in a subnet, a gateway and options of its own.
fn network_differences(spec: &NetworkSpec, found: &NetworkSpec) -> Vec<String> {
    let mut why = Vec::new();
    if spec.driver != found.driver {
        why.push(format!("driver {} → {}", found.driver, spec.driver));
    }
    if spec.internal != found.internal {
        why.push("internal".to_string());
    }
    if spec.enable_ipv6 && !found.enable_ipv6 {
        why.push("enable_ipv6".to_string());
    }
    let same_subnets = spec.subnets.len() == found.subnets.len()
        && spec.subnets.iter().all(|wanted| {
            found.subnets.iter().any(|have| {
                have.subnet == wanted.subnet
                    && (wanted.gateway.is_none() || have.gateway == wanted.gateway)
                    && have.ip_range == wanted.ip_range
            })
        });
    if !spec.subnets.is_empty() && !same_subnets {
        why.push("subnets".to_string());
    }
    for (key, value) in &spec.driver_opts {
        if found.driver_opts.get(key) != Some(value) {
            why.push(format!("driver_opts.{key}"));
        }
    }
    for (key, value) in &spec.labels {
        if found.labels.get(key) != Some(value) {
            why.push(format!("labels.{key}"));
        }
    }
    why
}

/// The containers on a network that is recreated are recreated with it: a network in use
/// cannot be removed, and a container keeps no endpoint on a network that is gone.
fn on_recreated_networks(
    desired: &Desired,
    networks: &[Step],
    mut steps: Vec<ContainerStep>,
) -> Vec<ContainerStep> {
    let recreated: Vec<&str> = networks
        .iter()
        .filter(|step| matches!(step.change, Change::Recreate(_)))
        .map(|step| step.name.as_str())
        .collect();
    for step in &mut steps {
        if !matches!(step.step.change, Change::Keep | Change::Start) {
            continue;
        }
        let Some(spec) = desired.services.get(&step.service) else {
            continue;
        };
        let on: Vec<String> = recreated
            .iter()
            .filter(|network| spec.container.networks.iter().any(|n| n == *network))
            .map(|network| format!("network {network} is recreated"))
            .collect();
        if !on.is_empty() {
            step.step.change = Change::Recreate(on);
        }
    }
    steps
}

/// A service that restarts with a dependency (`depends_on.<name>.restart`) is recreated
/// when that dependency's containers are created, recreated or started and its own would
/// be kept: a proxy that resolved the dependency's address at start would otherwise go on
/// sending to a container that is gone. Repeated until nothing changes, so a chain of such
/// services follows its first link.
fn restart_with_dependencies(
    desired: &Desired,
    mut steps: Vec<ContainerStep>,
) -> Vec<ContainerStep> {
    loop {
        let replaced: BTreeSet<String> = steps
            .iter()
            .filter(|step| {
                // A replica removed (scaled down) is an address gone too.
                matches!(
                    step.step.change,
                    Change::Create | Change::Recreate(_) | Change::Start | Change::Remove
                )
            })
            .map(|step| step.service.clone())
            .collect();
        let mut changed = false;
        for step in &mut steps {
            if step.step.change != Change::Keep {
                continue;
            }
            let Some(spec) = desired.services.get(&step.service) else {
                continue;
            };
            let why: Vec<String> = spec
                .restart_with
                .iter()
                .filter(|dependency| replaced.contains(*dependency))
                .map(|dependency| format!("restarts with {dependency}"))
                .collect();
            if !why.is_empty() {
                step.step.change = Change::Recreate(why);
                changed = true;
            }
        }
        if !changed {
            return steps;
        }
    }
}

fn resources<'a>(
    kind: Kind,
    stack: &str,
    wanted: impl Iterator<Item = (&'a str, bool)>,
    existing: &std::collections::BTreeMap<String, Option<String>>,
    prune: bool,
) -> Vec<Step> {
    let mut wanted_names = BTreeSet::new();
    let mut steps: Vec<Step> = wanted
        .map(|(name, external)| {
            wanted_names.insert(name.to_string());
            let change = if existing.contains_key(name) || external {
                Change::Keep
            } else {
                Change::Create
            };
            Step {
                kind,
                name: name.to_string(),
                change,
            }
        })
        .collect();
    if prune {
        steps.extend(
            existing
                .iter()
                .filter(|(name, owner)| {
                    owner.as_deref() == Some(stack) && !wanted_names.contains(*name)
                })
                .map(|(name, _)| Step {
                    kind,
                    name: name.clone(),
                    change: Change::Remove,
                }),
        );
    }
    steps
}

fn containers(
    desired: &Desired,
    observed: &Observed,
    deployed: Option<&Desired>,
    prune: bool,
) -> Vec<ContainerStep> {
    let mut steps = Vec::new();
    let mut claimed = BTreeSet::new();
    for (service, spec) in &desired.services {
        let hash = spec.container.hash();
        for replica in 1..=spec.replicas {
            let name = desired.container_name(service, replica);
            let existing = observed
                .containers
                .iter()
                .find(|c| c.service == *service && c.replica == replica);
            let change = match existing {
                None => Change::Create,
                Some(existing) => {
                    claimed.insert(existing.id.clone());
                    container_change(desired, existing, &hash, spec.one_shot, || {
                        changed_fields(
                            deployed
                                .and_then(|d| d.services.get(service))
                                .map(|s| &s.container)
                                .filter(|previous| previous.hash() == existing.hash),
                            &spec.container,
                        )
                    })
                }
            };
            steps.push(ContainerStep {
                step: Step {
                    kind: Kind::Container,
                    name,
                    change,
                },
                service: service.clone(),
                replica,
                existing: existing.map(|c| c.id.clone()),
            });
        }
    }
    if prune {
        for leftover in observed
            .containers
            .iter()
            .filter(|c| !claimed.contains(&c.id))
        {
            steps.push(ContainerStep {
                step: Step {
                    kind: Kind::Container,
                    name: leftover.name.clone(),
                    change: Change::Remove,
                },
                service: leftover.service.clone(),
                replica: leftover.replica,
                existing: Some(leftover.id.clone()),
            });
        }
    }
    steps
}

fn container_change(
    desired: &Desired,
    existing: &Existing,
    hash: &str,
    one_shot: bool,
    why: impl FnOnce() -> Vec<String>,
) -> Change {
    if existing.profile != desired.profile {
        return Change::Recreate(vec![format!(
            "profile {} → {}",
            existing.profile, desired.profile
        )]);
    }
    if existing.hash != hash {
        return Change::Recreate(why());
    }
    match existing.status {
        Status::Running(Health::None | Health::Starting | Health::Healthy) | Status::Restarting => {
            Change::Keep
        }
        Status::Exited(0) if one_shot => Change::Keep,
        _ => Change::Start,
    }
}

/// The fields of a container spec that differ, one level into maps (`environment.API_KEY`).
fn changed_fields(previous: Option<&ContainerSpec>, current: &ContainerSpec) -> Vec<String> {
    let Some(previous) = previous else {
        return vec!["configuration changed outside the recorded generations".into()];
    };
    let (Ok(serde_json::Value::Object(old)), Ok(serde_json::Value::Object(new))) = (
        serde_json::to_value(previous),
        serde_json::to_value(current),
    ) else {
        return vec!["configuration".into()];
    };
    let mut fields = Vec::new();
    for (key, new_value) in &new {
        let old_value = old.get(key).unwrap_or(&serde_json::Value::Null);
        if old_value == new_value {
            continue;
        }
        match (old_value, new_value) {
            (serde_json::Value::Array(_), serde_json::Value::Array(_)) if key == "mounts" => {
                fields.extend(changed_mounts(&previous.mounts, &current.mounts));
            }
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                fields.extend(
                    keys.into_iter()
                        .filter(|k| a.get(*k) != b.get(*k))
                        .map(|k| format!("{key}.{k}")),
                );
            }
            _ => fields.push(key.clone()),
        }
    }
    fields
}

/// The mounts that differ, by target: `file <target>` for a bind whose source moved (a
/// generated file is stored by content hash, so a new text is a new source), else
/// `mounts.<target>`.
fn changed_mounts(previous: &[MountSpec], current: &[MountSpec]) -> Vec<String> {
    let targets: BTreeSet<&str> = previous
        .iter()
        .chain(current)
        .map(|mount| mount.target.as_str())
        .collect();
    let at = |mounts: &'_ [MountSpec], target: &str| -> Option<MountSpec> {
        mounts.iter().find(|mount| mount.target == target).cloned()
    };
    targets
        .into_iter()
        .filter_map(|target| match (at(previous, target), at(current, target)) {
            (Some(old), Some(new)) if old == new => None,
            (Some(old), Some(new))
                if old.kind == "bind" && new.kind == "bind" && old.source != new.source =>
            {
                Some(format!("file {target}"))
            }
            _ => Some(format!("mounts.{target}")),
        })
        .collect()
}

impl Plan {
    /// Every step, networks first, then volumes, then containers.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.networks
            .iter()
            .chain(&self.volumes)
            .chain(self.containers.iter().map(|c| &c.step))
    }

    /// True when applying would change nothing.
    pub fn is_noop(&self) -> bool {
        self.steps().all(|step| step.change == Change::Keep)
    }

    /// `2 to create, 1 to recreate, …`
    pub fn summary(&self) -> String {
        let count =
            |wanted: fn(&Change) -> bool| self.steps().filter(|s| wanted(&s.change)).count();
        format!(
            "{} to create, {} to recreate, {} to start, {} to remove, {} unchanged",
            count(|c| *c == Change::Create),
            count(|c| matches!(c, Change::Recreate(_))),
            count(|c| *c == Change::Start),
            count(|c| *c == Change::Remove),
            count(|c| *c == Change::Keep),
        )
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in self.steps() {
            let kind = match step.kind {
                Kind::Network => "network",
                Kind::Volume => "volume",
                Kind::Container => "container",
            };
            let change = match &step.change {
                Change::Create => "create".to_string(),
                Change::Recreate(why) => format!("recreate ({})", why.join(", ")),
                Change::Start => "start (exists, not running)".to_string(),
                Change::Keep => "unchanged".to_string(),
                Change::Remove => "remove (no longer in the modules)".to_string(),
            };
            writeln!(f, "  {kind:<9} {:<32} {change}", step.name)?;
        }
        write!(f, "{}", self.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::spec::{NetworkSpec, ServiceSpec, SubnetSpec};
    use std::collections::BTreeMap;

    fn container(env: &[(&str, &str)]) -> ContainerSpec {
        serde_json::from_value(serde_json::json!({
            "image": "busybox", "image_id": "sha256:1", "entrypoint": null, "command": null,
            "environment": env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
            "user": null, "working_dir": null, "ports": [], "mounts": [], "tmpfs": [],
            "networks": ["s_default"], "healthcheck": null, "restart": null, "labels": {},
            "logging": null, "ulimits": {}, "extra_hosts": [], "stop_grace_seconds": null,
            "init": null, "read_only": null, "privileged": null, "cap_add": [], "cap_drop": [],
            "shm_size": null, "memory": null, "memory_reservation": null, "nano_cpus": null
        }))
        .expect("a valid spec")
    }

    fn desired(env: &[(&str, &str)]) -> Desired {
        Desired {
            stack: "s".into(),
            profile: "dev".into(),
            networks: BTreeMap::from([("s_default".into(), bridge())]),
            volumes: BTreeMap::new(),
            services: BTreeMap::from([(
                "api".into(),
                ServiceSpec {
                    depends_on: BTreeMap::new(),
                    restart_with: BTreeSet::new(),
                    one_shot: false,
                    replicas: 1,
                    build: None,
                    container: container(env),
                    backup: None,
                },
            )]),
        }
    }

    /// An engine running api with the spec hash its label would carry: the hash of a
    /// spec built on its own from `env`, not taken from the desired state under test.
    fn running_with(env: &[(&str, &str)]) -> Observed {
        Observed {
            containers: vec![Existing {
                id: "c1".into(),
                name: "s-api-1".into(),
                service: "api".into(),
                profile: "dev".into(),
                hash: container(env).hash(),
                replica: 1,
                status: Status::Running(Health::None),
            }],
            networks: BTreeMap::from([("s_default".into(), Some("s".into()))]),
            network_settings: BTreeMap::from([("s_default".into(), bridge())]),
            volumes: BTreeMap::new(),
        }
    }

    fn bridge() -> NetworkSpec {
        NetworkSpec {
            driver: "bridge".into(),
            internal: false,
            external: false,
            driver_opts: BTreeMap::new(),
            labels: BTreeMap::new(),
            subnets: Vec::new(),
            enable_ipv6: false,
        }
    }

    fn subnet(range: &str, gateway: Option<&str>) -> SubnetSpec {
        SubnetSpec {
            subnet: range.into(),
            gateway: gateway.map(str::to_string),
            ip_range: None,
        }
    }

    #[test]
    fn what_the_engine_adds_to_a_network_is_no_change_and_what_the_spec_sets_is() {
        // The engine picks a subnet and gateway, and adds options and berth's labels.
        let mut found = bridge();
        found.subnets = vec![subnet("172.18.0.0/16", Some("172.18.0.1"))];
        found.driver_opts = BTreeMap::from([("com.docker.network.mtu".into(), "1500".into())]);
        found.labels = BTreeMap::from([("berth.stack".into(), "s".into())]);
        assert!(network_differences(&bridge(), &found).is_empty());
        let mut wanted = bridge();
        wanted.subnets = vec![subnet("172.18.0.0/16", None)];
        assert!(network_differences(&wanted, &found).is_empty());
        wanted.subnets = vec![subnet("10.5.0.0/24", None)];
        wanted.enable_ipv6 = true;
        wanted.labels = BTreeMap::from([("team".into(), "core".into())]);
        assert_eq!(
            network_differences(&wanted, &found),
            ["enable_ipv6", "subnets", "labels.team"]
        );
    }

    #[test]
    fn a_changed_network_is_recreated_with_every_container_on_it() {
        let mut wanted = desired(&[("A", "1")]);
        wanted
            .networks
            .get_mut("s_default")
            .expect("network")
            .subnets = vec![subnet("10.5.0.0/24", None)];
        let plan = plan(
            &wanted,
            &running_with(&[("A", "1")]),
            None,
            Options::default(),
        );
        assert_eq!(
            steps(&plan),
            [
                (
                    Kind::Network,
                    "s_default",
                    &Change::Recreate(vec!["subnets".into()])
                ),
                (
                    Kind::Container,
                    "s-api-1",
                    &Change::Recreate(vec!["network s_default is recreated".into()])
                ),
            ]
        );
        // A network of another stack, or an external one, is never touched.
        let mut foreign = running_with(&[("A", "1")]);
        foreign
            .networks
            .insert("s_default".into(), Some("other".into()));
        let plan = super::plan(&wanted, &foreign, None, Options::default());
        assert_eq!(steps(&plan)[0].2, &Change::Keep);
    }

    /// (kind, name, change) of every step.
    fn steps(plan: &Plan) -> Vec<(Kind, &str, &Change)> {
        plan.steps()
            .map(|s| (s.kind, s.name.as_str(), &s.change))
            .collect()
    }

    #[test]
    fn an_empty_engine_gets_everything_created() {
        let wanted = desired(&[]);
        let plan = plan(&wanted, &Observed::default(), None, Options::default());
        assert_eq!(
            steps(&plan),
            [
                (Kind::Network, "s_default", &Change::Create),
                (Kind::Container, "s-api-1", &Change::Create),
            ]
        );
        assert!(!plan.is_noop());
    }

    #[test]
    fn a_converged_engine_is_left_alone() {
        let wanted = desired(&[("A", "1")]);
        let plan = plan(
            &wanted,
            &running_with(&[("A", "1")]),
            Some(&wanted),
            Options::default(),
        );
        assert_eq!(
            steps(&plan),
            [
                (Kind::Network, "s_default", &Change::Keep),
                (Kind::Container, "s-api-1", &Change::Keep),
            ]
        );
        assert!(plan.is_noop(), "{plan}");
    }

    #[test]
    fn a_container_running_another_spec_is_recreated_even_without_a_record() {
        let wanted = desired(&[("A", "1")]);
        let plan = plan(
            &wanted,
            &running_with(&[("A", "2")]),
            None,
            Options::default(),
        );
        assert_eq!(
            plan.containers[0].step.change,
            Change::Recreate(vec![
                "configuration changed outside the recorded generations".into()
            ])
        );
    }

    #[test]
    fn a_changed_variable_is_named_without_its_value() {
        let before = desired(&[("A", "1")]);
        let after = desired(&[("A", "secret-2")]);
        let plan = plan(
            &after,
            &running_with(&[("A", "1")]),
            Some(&before),
            Options::default(),
        );
        assert_eq!(
            plan.containers[0].step.change,
            Change::Recreate(vec!["environment.A".into()])
        );
        assert!(!plan.to_string().contains("secret-2"));
    }

    /// A proxy restarting with api (and a cache restarting with the proxy) is recreated
    /// when api is; a service that merely depends on api is kept.
    #[test]
    fn a_service_restarting_with_a_recreated_dependency_is_recreated_after_it() {
        let stack = |env: &[(&str, &str)]| {
            let mut wanted = desired(env);
            let api = wanted.services["api"].clone();
            let follower = |name: &str, with: &[&str]| {
                let mut spec = api.clone();
                spec.container = container(&[("NAME", name)]);
                spec.depends_on = with
                    .iter()
                    .map(|d| (d.to_string(), crate::model::Condition::Started))
                    .collect();
                spec.restart_with = with.iter().map(|d| d.to_string()).collect();
                spec
            };
            let mut worker = follower("worker", &["api"]);
            worker.restart_with.clear();
            wanted.services.extend([
                ("proxy".to_string(), follower("proxy", &["api"])),
                ("cache".to_string(), follower("cache", &["proxy"])),
                ("worker".to_string(), worker),
            ]);
            wanted
        };
        let mut observed = running_with(&[("A", "1")]);
        for name in ["proxy", "cache", "worker"] {
            observed.containers.push(Existing {
                id: format!("id-{name}"),
                name: format!("s-{name}-1"),
                service: name.into(),
                hash: container(&[("NAME", name)]).hash(),
                ..observed.containers[0].clone()
            });
        }
        let before = stack(&[("A", "1")]);
        let unchanged = plan(&before, &observed, Some(&before), Options::default());
        assert!(unchanged.is_noop(), "{unchanged}");

        let after = stack(&[("A", "2")]);
        let changed = plan(&after, &observed, Some(&before), Options::default());
        let change = |name: &str| {
            changed
                .containers
                .iter()
                .find(|c| c.service == name)
                .map(|c| c.step.change.clone())
        };
        assert_eq!(
            change("api"),
            Some(Change::Recreate(vec!["environment.A".into()]))
        );
        assert_eq!(
            change("proxy"),
            Some(Change::Recreate(vec!["restarts with api".into()]))
        );
        assert_eq!(
            change("cache"),
            Some(Change::Recreate(vec!["restarts with proxy".into()]))
        );
        assert_eq!(change("worker"), Some(Change::Keep));

        // Scaled down: api's second replica is removed, an address gone from under the proxy.
        let mut scaled = running_with(&[("A", "1")]);
        scaled
            .containers
            .extend(observed.containers[1..].iter().cloned());
        scaled.containers.push(Existing {
            id: "c2".into(),
            name: "s-api-2".into(),
            replica: 2,
            ..scaled.containers[0].clone()
        });
        let pruned = plan(
            &before,
            &scaled,
            Some(&before),
            Options {
                prune: true,
                ..Options::default()
            },
        );
        let proxy = pruned
            .containers
            .iter()
            .find(|c| c.service == "proxy")
            .expect("proxy");
        assert_eq!(
            proxy.step.change,
            Change::Recreate(vec!["restarts with api".into()])
        );
    }

    #[test]
    fn a_moved_bind_source_is_named_as_the_file_it_mounts() {
        let mount = |kind: &str, source: &str, target: &str| MountSpec {
            kind: kind.into(),
            source: Some(source.into()),
            target: target.into(),
            read_only: true,
            selinux: None,
        };
        let before = [
            mount("bind", "/state/files/aaaa/motd", "/etc/motd"),
            mount("volume", "data", "/data"),
            mount("bind", "/srv/conf", "/conf"),
        ];
        let after = [
            mount("bind", "/state/files/bbbb/motd", "/etc/motd"),
            mount("volume", "data", "/data"),
            mount("volume", "logs", "/logs"),
        ];
        assert_eq!(
            changed_mounts(&before, &after),
            ["mounts./conf", "file /etc/motd", "mounts./logs"]
        );
    }

    #[test]
    fn leftovers_are_removed_only_when_pruning() {
        let wanted = desired(&[]);
        let mut observed = running_with(&[]);
        observed.containers[0].service = "gone".into();
        observed.containers[0].name = "s-gone-1".into();
        let kept = plan(&wanted, &observed, None, Options::default());
        assert_eq!(
            steps(&kept),
            [
                (Kind::Network, "s_default", &Change::Keep),
                (Kind::Container, "s-api-1", &Change::Create),
            ]
        );
        let pruned = plan(
            &wanted,
            &observed,
            None,
            Options {
                prune: true,
                ..Options::default()
            },
        );
        assert_eq!(
            steps(&pruned),
            [
                (Kind::Network, "s_default", &Change::Keep),
                (Kind::Container, "s-api-1", &Change::Create),
                (Kind::Container, "s-gone-1", &Change::Remove),
            ]
        );
    }

    #[test]
    fn a_stopped_container_is_started_not_recreated() {
        let wanted = desired(&[]);
        let mut observed = running_with(&[]);
        observed.containers[0].status = Status::Exited(137);
        let plan = plan(&wanted, &observed, Some(&wanted), Options::default());
        assert_eq!(plan.containers[0].step.change, Change::Start);
    }
}
