//! Side-cars (`kubernetes.sidecar_of`): a service that runs in every pod of another, as a
//! native side-car (an init container with `restartPolicy: Always`, Kubernetes 1.29), so
//! each replica has its own — a Docker-in-Docker runner beside the worker that drives it.
//! Within the pod the side-car's name resolves to 127.0.0.1 (the same address the Compose
//! file uses, and the name its TLS certificate carries); volumes only the two mount are
//! the pod's emptyDirs, where separate pods would need a ReadWriteMany claim; its Service,
//! for other clients, selects the host's pods. Pure.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, HostAlias, PodSpec, SecurityContext};

use super::env::environment;
use super::expose::{headless_service, service_object};
use super::fidelity::{self, Backend, Warning};
use super::pod::{
    Probes, declared, has_claim_templates, main_container, numeric_user, secret_files,
    shared_memory, waits,
};
use super::storage::{Storage, storage};
use super::{Context, RenderError, documents, fitted, k8s_name, note, notes_comment, yaml};
use crate::model::{Service, Stack};

/// Host service -> its side-cars, for the side-cars whose host is in the stack.
pub(super) fn by_host(stack: &Stack) -> BTreeMap<&str, Vec<&str>> {
    let mut hosts: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, service) in &stack.services {
        if let Some(host) = &service.kubernetes.sidecar_of
            && let Some((host, _)) = stack.services.get_key_value(host)
        {
            hosts.entry(host.as_str()).or_default().push(name);
        }
    }
    hosts
}

/// The volumes every user of which is one host or its side-cars, where that host keeps no
/// claim per pod (a StatefulSet's template keeps the data, and both containers mount it)
/// and the volume is the stack's own (an external one is a claim made by someone else).
pub(super) fn pod_local_volumes<'a>(
    stack: &'a Stack,
    jobs: &BTreeSet<&str>,
    sidecars: &BTreeMap<&'a str, Vec<&'a str>>,
    volume_users: &BTreeMap<&'a str, Vec<&'a str>>,
) -> BTreeSet<&'a str> {
    let mut local = BTreeSet::new();
    for (host, cars) in sidecars {
        let service = &stack.services[*host];
        let per_pod_claims = service
            .kubernetes
            .stateful
            .unwrap_or(service.backup.is_some())
            && !jobs.contains(host);
        if per_pod_claims {
            continue;
        }
        let pod: BTreeSet<&str> = cars.iter().copied().chain([*host]).collect();
        local.extend(
            volume_users
                .iter()
                .filter(|(_, users)| users.iter().all(|user| pod.contains(user)))
                .filter(|(_, users)| users.iter().any(|user| cars.contains(user)))
                .filter(|(volume, _)| !stack.volumes.get(**volume).is_some_and(|v| v.external))
                .map(|(volume, _)| *volume),
        );
    }
    local
}

/// Adds the side-cars of `host` to its pod: each after its own waits, all before the
/// host's, kept running; their volumes (a stack volume once, the others under the
/// side-car's name so they cannot meet the host's `bind-0` or `run-secrets`); their names on
/// the loopback address.
pub(super) fn join(
    ctx: &Context,
    host: &str,
    spec: &mut PodSpec,
    storage_of_host: &mut Storage,
    notes: &mut Vec<Warning>,
) {
    let Some(cars) = ctx.sidecars.get(host) else {
        return;
    };
    let host_service = &ctx.stack.services[host];
    let per_pod_claims = has_claim_templates(ctx, host, host_service);
    let stack_volumes: BTreeSet<String> = ctx.stack.volumes.keys().map(|v| k8s_name(v)).collect();
    let mut containers = Vec::new();
    for car in cars {
        let service = &ctx.stack.services[*car];
        let env = environment(ctx, car, service);
        // The host's claim templates are the pod's: the side-car mounts them by name.
        let mut storage = storage(ctx, car, service, per_pod_claims, notes);
        let extra = secret_files(ctx, car, service)
            .into_iter()
            .chain(shared_memory(service));
        let (mut own_volumes, mut mounts) = (
            std::mem::take(&mut storage.volumes),
            std::mem::take(&mut storage.mounts),
        );
        for (volume, mount) in extra {
            own_volumes.push(volume);
            mounts.push(mount);
        }
        let volumes = spec.volumes.get_or_insert_with(Vec::new);
        for mut volume in own_volumes {
            if stack_volumes.contains(&volume.name) {
                match volumes.iter_mut().find(|known| known.name == volume.name) {
                    // Read-only on the claim binds every mount of it: only when both are.
                    Some(known) => {
                        if let (Some(claim), None | Some(false)) = (
                            known.persistent_volume_claim.as_mut(),
                            volume
                                .persistent_volume_claim
                                .as_ref()
                                .and_then(|c| c.read_only),
                        ) {
                            claim.read_only = None;
                        }
                    }
                    None => volumes.push(volume),
                }
                continue;
            }
            let renamed = fitted(format!("{}-{}", k8s_name(car), volume.name));
            for mount in mounts.iter_mut().filter(|mount| mount.name == volume.name) {
                mount.name.clone_from(&renamed);
            }
            volume.name = renamed;
            volumes.push(volume);
        }
        storage_of_host.claims.append(&mut storage.claims);
        storage_of_host.config_maps.append(&mut storage.config_maps);
        let mut container = main_container(ctx, car, service, &env, mounts);
        // Kept running beside the pod's containers, which start once it is started and,
        // with a startup probe, healthy: the healthcheck gates them, as depends_on does.
        container.restart_policy = Some("Always".to_string());
        if let Some(healthcheck) = &service.healthcheck
            && container.startup_probe.is_none()
        {
            container.startup_probe = Some(Probes::of(healthcheck, &env, false).readiness);
        }
        own_user(ctx, car, service, host, spec, &mut container, notes);
        // Its own dependencies are waited for before it starts, as the host's are.
        containers.extend(waits(ctx, car, service, notes));
        containers.push(container);
    }
    let init = spec.init_containers.get_or_insert_with(Vec::new);
    init.splice(0..0, containers);
    // A dependency both wait for is waited for once, first.
    let mut seen = BTreeSet::new();
    init.retain(|container| seen.insert(container.name.clone()));
    let aliases = spec.host_aliases.get_or_insert_with(Vec::new);
    let names = cars.iter().map(|car| car.to_string());
    match aliases.iter_mut().find(|alias| alias.ip == "127.0.0.1") {
        Some(loopback) => loopback
            .hostnames
            .get_or_insert_with(Vec::new)
            .extend(names),
        None => aliases.push(HostAlias {
            ip: "127.0.0.1".to_string(),
            hostnames: Some(names.collect()),
        }),
    }
    for volume in ctx.pod_local.iter().filter(|volume| {
        ctx.volume_users
            .get(*volume)
            .is_some_and(|users| users.contains(&host) || users.iter().any(|u| cars.contains(u)))
    }) {
        notes.push(note(
            format!("volumes.{volume}"),
            format!(
                "volume {volume} is used only by {host} and its side-car{}: an emptyDir of each pod, whose data lasts as long as the pod (`kubernetes.stateful = true` on {host} keeps a claim per pod instead)",
                if cars.len() == 1 { "" } else { "s" }
            ),
        ));
    }
}

/// The pod's securityContext is the host's: a side-car runs as its own `user` (set on its
/// container), may run as root where the host must not (`runAsNonRoot: false` on it), and
/// where the host fixes a user the side-car does not name, it runs as that user — said.
fn own_user(
    ctx: &Context,
    car: &str,
    service: &Service,
    host: &str,
    spec: &PodSpec,
    container: &mut Container,
    notes: &mut Vec<Warning>,
) {
    let pod = spec.security_context.as_ref();
    let user = service.user.as_ref().map(|user| declared(ctx, user));
    let (run_as_user, run_as_group) = numeric_user(user.as_deref());
    let security = container
        .security_context
        .get_or_insert_with(Default::default);
    security.run_as_user = run_as_user;
    security.run_as_group = run_as_group;
    if pod.and_then(|p| p.run_as_non_root) == Some(true) && !service.kubernetes.run_as_non_root {
        security.run_as_non_root = Some(false);
    }
    if run_as_user.is_none() && pod.and_then(|p| p.run_as_user).is_some() {
        notes.push(note(
            format!("services.{car}.user"),
            format!("side-car {car} runs as the user of {host}'s pod: Kubernetes cannot give it back the image's own user; set `user` on {car}"),
        ));
    }
    if container.security_context.as_ref() == Some(&SecurityContext::default()) {
        container.security_context = None;
    }
}

/// A side-car's own manifest: its environment's ConfigMap, and the Services that select
/// its host's pods when it serves ports (empty when it needs neither).
pub(super) fn manifests(
    ctx: &Context,
    name: &str,
    service: &Service,
    host: &str,
    notes: &mut Vec<Warning>,
) -> Result<String, RenderError> {
    let first_note = notes.len();
    notes.extend(fidelity::service_warnings(
        ctx.stack,
        name,
        Backend::Kubernetes,
    ));
    let mut docs = Vec::new();
    if let Some(config_map) = environment(ctx, name, service).config_map {
        docs.push(yaml(&config_map)?);
    }
    let selecting_host = |mut object: k8s_openapi::api::core::v1::Service| {
        if let Some(spec) = object.spec.as_mut() {
            spec.selector = Some(ctx.selector(host));
        }
        object
    };
    if !service.ports.is_empty() {
        docs.push(yaml(&selecting_host(service_object(ctx, name, service)))?);
    }
    if service.metrics.is_some() {
        docs.push(yaml(&selecting_host(headless_service(ctx, name, service)))?);
    }
    if docs.is_empty() {
        return Ok(String::new());
    }
    let host = k8s_name(host);
    Ok(format!(
        "# A side-car: its container runs in every pod of {host} (see {host}.yaml).\n{}{}",
        notes_comment(&notes[first_note..]),
        documents(&docs)
    ))
}
