//! Side-cars (`kubernetes.sidecar_of`): a service that runs in every pod of another, as a
//! native side-car (an init container with `restartPolicy: Always`, Kubernetes 1.29), so
//! each replica has its own — a Docker-in-Docker runner beside the worker that drives it.
//! Within the pod the side-car's name resolves to 127.0.0.1 (the same address the Compose
//! file uses, and the name its TLS certificate carries); volumes only the two mount are
//! the pod's emptyDirs, where separate pods would need a ReadWriteMany claim; its Service,
//! for other clients, selects the host's pods. Pure.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{HostAlias, PodSpec};

use super::env::environment;
use super::expose::{headless_service, service_object};
use super::fidelity::{self, Backend, Warning};
use super::pod::{Probes, main_container, secret_files, shared_memory, waits};
use super::storage::{Storage, storage};
use super::{Context, RenderError, documents, k8s_name, note, yaml};
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

/// The volumes every user of which is one host or its side-cars.
pub(super) fn pod_local_volumes<'a>(
    sidecars: &BTreeMap<&'a str, Vec<&'a str>>,
    volume_users: &BTreeMap<&'a str, Vec<&'a str>>,
) -> BTreeSet<&'a str> {
    let mut local = BTreeSet::new();
    for (host, cars) in sidecars {
        let pod: BTreeSet<&str> = cars.iter().copied().chain([*host]).collect();
        local.extend(
            volume_users
                .iter()
                .filter(|(_, users)| users.iter().all(|user| pod.contains(user)))
                .filter(|(_, users)| users.iter().any(|user| cars.contains(user)))
                .map(|(volume, _)| *volume),
        );
    }
    local
}

/// Adds the side-cars of `host` to its pod: their containers first among the init
/// containers, their volumes (once each), their names on the loopback address.
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
    let mut containers = Vec::new();
    for car in cars {
        let service = &ctx.stack.services[*car];
        let env = environment(ctx, car, service);
        let mut storage = storage(ctx, car, service, false, notes);
        let mut mounts = std::mem::take(&mut storage.mounts);
        let volumes = spec.volumes.get_or_insert_with(Vec::new);
        let extra = secret_files(ctx, car, service)
            .into_iter()
            .chain(shared_memory(service));
        for (volume, mount) in extra {
            volumes.push(volume);
            mounts.push(mount);
        }
        for volume in std::mem::take(&mut storage.volumes) {
            if !volumes.iter().any(|known| known.name == volume.name) {
                volumes.push(volume);
            }
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
            container.startup_probe = Some(Probes::of(healthcheck, &env).readiness);
        }
        // Its own dependencies are waited for before it starts, as the host's are.
        containers.extend(waits(ctx, car, service, notes));
        containers.push(container);
    }
    let init = spec.init_containers.get_or_insert_with(Vec::new);
    init.splice(0..0, containers);
    spec.host_aliases
        .get_or_insert_with(Vec::new)
        .push(HostAlias {
            ip: "127.0.0.1".to_string(),
            hostnames: Some(cars.iter().map(|car| car.to_string()).collect()),
        });
    for volume in ctx.pod_local.iter().filter(|volume| {
        ctx.volume_users
            .get(*volume)
            .is_some_and(|users| users.contains(&host) || users.iter().any(|u| cars.contains(u)))
    }) {
        notes.push(note(
            format!("volumes.{volume}"),
            format!(
                "volume {volume} is used only by {host} and its side-car{}: an emptyDir of each pod, whose data lasts as long as the pod",
                if cars.len() == 1 { "" } else { "s" }
            ),
        ));
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
    let comment: String = std::iter::once(format!(
        "# A side-car: its container runs in every pod of {} (see {}.yaml).\n",
        k8s_name(host),
        k8s_name(host)
    ))
    .chain(notes[first_note..].iter().map(|note| {
        format!(
            "# Not carried by Kubernetes: {}: {}\n",
            note.diagnostic.field, note.diagnostic.message
        )
    }))
    .collect();
    Ok(format!("{comment}{}", documents(&docs)))
}
