//! Storage on Kubernetes: claims for volumes (per replica for StatefulSets), ConfigMaps
//! for generated config folders, hostPath where a module opts in, memory for tmpfs.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, EmptyDirVolumeSource, HostPathVolumeSource, KeyToPath,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource,
    PodTemplateSpec, SecretVolumeSource, Volume as KVolume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::fidelity::Warning;
use super::pod::binary_quantity;
use super::{Context, fitted, k8s_name, note};
use crate::model::{ByteSize, MountKind, Service};

/// What a service's storage turns into.
#[derive(Default)]
pub(super) struct Storage {
    pub(super) volumes: Vec<KVolume>,
    pub(super) mounts: Vec<VolumeMount>,
    /// Claims per replica (StatefulSet).
    pub(super) claim_templates: Vec<PersistentVolumeClaim>,
    /// Standalone claims and config maps this service's manifest carries.
    pub(super) claims: Vec<PersistentVolumeClaim>,
    pub(super) config_maps: Vec<ConfigMap>,
}

/// Volumes and mounts of a service, with the claims and config maps they need.
pub(super) fn storage(
    ctx: &Context,
    name: &str,
    service: &Service,
    stateful: bool,
    notes: &mut Vec<Warning>,
) -> Storage {
    let mut config_maps = Vec::new();
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    let mut claim_templates = Vec::new();
    let mut claims = Vec::new();
    for (index, mount) in service.volumes.iter().enumerate() {
        // A volume's source is its key; a host path takes its variables' declared values.
        let source = mount.source.as_ref().map(|source| match mount.kind {
            MountKind::Volume => source.to_string(),
            MountKind::Bind | MountKind::Tmpfs => ctx
                .stack
                .declared_value(source)
                .unwrap_or_else(|| source.to_string()),
        });
        let volume_name = match (&mount.kind, &source) {
            (MountKind::Volume, Some(source)) => k8s_name(source),
            _ => format!("{}-{index}", mount_kind_name(mount.kind)),
        };
        let mut volume = KVolume {
            name: volume_name.clone(),
            ..KVolume::default()
        };
        match (&mount.kind, &source) {
            // Used only by one service and its side-cars: the pod's own, an emptyDir.
            (MountKind::Volume, Some(source)) if ctx.pod_local.contains(source.as_str()) => {
                volume.empty_dir = Some(bounded_empty_dir(ctx, source));
            }
            // Rebuildable: each pod its own, so no pods need a ReadWriteMany claim to share it.
            (MountKind::Volume, Some(source)) if is_cache(ctx, source) => {
                if first_user(ctx, source) == Some(name) {
                    notes.push(note(
                        format!("volumes.{source}"),
                        format!(
                            "volume {source} is a cache (`cache = true`): an emptyDir of each pod{}, of at most {}, emptied when the pod goes (Compose, Quadlet and apply keep one named volume)",
                            if ctx.volume_pods(source).len() > 1 { " of every service that mounts it" } else { "" },
                            binary_quantity(&ctx.stack.volumes[source.as_str()].size)
                        ),
                    ));
                }
                volume.empty_dir = Some(bounded_empty_dir(ctx, source));
            }
            (MountKind::Volume, Some(source)) => {
                // A side-car's mounts are its host pod's: shared means by several pods.
                let shared = ctx.volume_pods(source).len() > 1;
                let claim = claim(ctx, source, name);
                if stateful && !shared {
                    claim_templates.push(claim);
                    mounts.push(mount_of(&volume_name, &mount.target, mount.read_only));
                    continue;
                }
                // A shared claim is written once, with the first service (by name) that mounts it.
                if first_user(ctx, source) == Some(name) {
                    if let Some(text) = read_write_many_note(ctx, source) {
                        notes.push(note(format!("volumes.{source}"), text));
                    }
                    claims.push(claim);
                }
                volume.persistent_volume_claim = Some(PersistentVolumeClaimVolumeSource {
                    claim_name: k8s_name(source),
                    read_only: mount.read_only.then_some(true),
                });
            }
            // The proxy's certificate folder is, on Kubernetes, a TLS Secret the operator
            // (or cert-manager) makes: its keys are the file names nginx reads.
            (MountKind::Bind, Some(source)) if mount.tls_certificate => {
                let secret = format!("{}-tls", k8s_name(name));
                notes.push(note(
                    format!("services.{name}.volumes[{index}]"),
                    format!("the certificate folder {source} is the TLS Secret `{secret}` on Kubernetes: create it (kubectl create secret tls {secret} --cert=tls.crt --key=tls.key, or with cert-manager) before the pod can start"),
                ));
                volume.secret = Some(SecretVolumeSource {
                    secret_name: Some(secret),
                    ..SecretVolumeSource::default()
                });
            }
            // A file of the service's `files`: a ConfigMap of one key, mounted on the file
            // alone (subPath), so the folder around it keeps the image's other files.
            (MountKind::Bind, Some(source)) if generated_file(ctx, source).is_some() => {
                let (inside, text) = generated_file(ctx, source).unwrap_or_default();
                let file_name = mount
                    .target
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let map_name = fitted(format!(
                    "{}-{}",
                    k8s_name(name),
                    k8s_name(source.trim_start_matches("./"))
                ));
                volume.config_map = Some(ConfigMapVolumeSource {
                    name: map_name.clone(),
                    items: Some(vec![KeyToPath {
                        key: config_key(&inside),
                        path: file_name.clone(),
                        ..KeyToPath::default()
                    }]),
                    ..ConfigMapVolumeSource::default()
                });
                config_maps.push(ConfigMap {
                    metadata: ctx.meta(&map_name, name),
                    data: Some(BTreeMap::from([(config_key(&inside), text)])),
                    ..ConfigMap::default()
                });
                let mut file_mount = mount_of(&volume_name, &mount.target, true);
                file_mount.sub_path = Some(file_name);
                mounts.push(file_mount);
                volumes.push(volume);
                continue;
            }
            (MountKind::Bind, Some(source))
                if ctx.generated.contains_key(source.trim_end_matches('/')) =>
            {
                let files = &ctx.generated[source.trim_end_matches('/')];
                let map_name = fitted(format!(
                    "{}-{}",
                    k8s_name(name),
                    k8s_name(source.trim_start_matches("./"))
                ));
                volume.config_map = Some(ConfigMapVolumeSource {
                    name: map_name.clone(),
                    items: Some(
                        files
                            .keys()
                            .map(|path| KeyToPath {
                                key: config_key(path),
                                path: path.clone(),
                                ..KeyToPath::default()
                            })
                            .collect(),
                    ),
                    ..ConfigMapVolumeSource::default()
                });
                config_maps.push(ConfigMap {
                    metadata: ctx.meta(&map_name, name),
                    data: Some(
                        files
                            .iter()
                            .map(|(path, text)| (config_key(path), text.clone()))
                            .collect(),
                    ),
                    ..ConfigMap::default()
                });
            }
            (MountKind::Bind, Some(source)) if mount.host_path && source.starts_with('/') => {
                if let Some(label) = &mount.selinux {
                    notes.push(note(
                        format!("services.{name}.volumes[{index}].selinux"),
                        format!("Kubernetes does not relabel a hostPath (`selinux = \"{label}\"`): on SELinux nodes label {source} for containers yourself (chcon -Rt container_file_t)"),
                    ));
                }
                volume.host_path = Some(HostPathVolumeSource {
                    path: source.clone(),
                    ..HostPathVolumeSource::default()
                });
            }
            (MountKind::Bind, source) => {
                notes.push(note(
                    format!("services.{name}.volumes[{index}]"),
                    format!(
                        "bind mount {} -> {} is not mounted: a host folder (modules mark host agents' absolute paths `host_path = true` to mount them as hostPath)",
                        source.as_deref().unwrap_or("?"),
                        mount.target
                    ),
                ));
                continue;
            }
            (MountKind::Tmpfs, _) => {
                volume.empty_dir = Some(EmptyDirVolumeSource {
                    medium: Some("Memory".to_string()),
                    ..EmptyDirVolumeSource::default()
                });
            }
            (MountKind::Volume, None) => {
                notes.push(note(
                    format!("services.{name}.volumes[{index}]"),
                    format!(
                        "anonymous volume {} is an emptyDir: its data lasts as long as the pod (Compose keeps it when the container is recreated); name a volume to keep it",
                        mount.target
                    ),
                ));
                volume.empty_dir = Some(EmptyDirVolumeSource::default());
            }
        }
        mounts.push(mount_of(&volume_name, &mount.target, mount.read_only));
        volumes.push(volume);
    }
    for (index, path) in service.tmpfs.iter().enumerate() {
        let volume_name = format!("tmpfs-extra-{index}");
        volumes.push(KVolume {
            name: volume_name.clone(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".to_string()),
                ..EmptyDirVolumeSource::default()
            }),
            ..KVolume::default()
        });
        mounts.push(mount_of(&volume_name, path, false));
    }
    Storage {
        volumes,
        mounts,
        claim_templates,
        claims,
        config_maps,
    }
}

/// The path inside `files/` and the text of the generated file `source` binds, if it is one.
fn generated_file(ctx: &Context, source: &str) -> Option<(String, String)> {
    let inside = source.strip_prefix(&format!("./{}/", crate::model::files::DIR))?;
    let text = ctx
        .generated
        .get(&format!("./{}", crate::model::files::DIR))?
        .get(inside)?;
    Some((inside.to_string(), text.clone()))
}

pub(super) fn mount_kind_name(kind: MountKind) -> &'static str {
    match kind {
        MountKind::Volume => "volume",
        MountKind::Bind => "bind",
        MountKind::Tmpfs => "tmpfs",
    }
}

/// A pod's own volume, bounded by the declared volume's `size`.
fn bounded_empty_dir(ctx: &Context, volume: &str) -> EmptyDirVolumeSource {
    EmptyDirVolumeSource {
        size_limit: (ctx.stack.volumes.get(volume))
            .map(|declared| Quantity(binary_quantity(&declared.size))),
        ..EmptyDirVolumeSource::default()
    }
}

fn is_cache(ctx: &Context, volume: &str) -> bool {
    ctx.stack.volumes.get(volume).is_some_and(|v| v.cache)
}

/// Whether the stack volume `volume` is a claim on Kubernetes (its data outlives the pod):
/// neither one pod's own emptyDir nor a cache, the two arms before the claim's in
/// [`storage`].
pub(super) fn is_claimed(ctx: &Context, volume: &str) -> bool {
    ctx.stack.volumes.contains_key(volume)
        && !ctx.pod_local.contains(volume)
        && !is_cache(ctx, volume)
}

/// The first service (by name) that mounts `volume`: where what is said of it once goes.
fn first_user<'a>(ctx: &Context<'a>, volume: &str) -> Option<&'a str> {
    ctx.volume_users
        .get(volume)
        .and_then(|users| users.first())
        .copied()
}

pub(super) fn mount_of(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_string(),
        mount_path: path.to_string(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

/// Whether pods of more than one replica or service mount `volume` (from a shared claim).
pub(super) fn mounted_by_several_pods(ctx: &Context, volume: &str) -> bool {
    let owners = ctx.volume_pods(volume);
    owners.len() > 1 || owners.iter().map(|name| pods_of(ctx, name)).sum::<u32>() > 1
}

/// How many pods a service runs on Kubernetes: its replicas there, or at most the
/// autoscaler's maximum.
fn pods_of(ctx: &Context, name: &str) -> u32 {
    let service = &ctx.stack.services[name];
    match &service.kubernetes.autoscaling {
        Some(autoscaling) => autoscaling.max,
        None => service.kubernetes.replicas.unwrap_or(service.replicas),
    }
}

/// Whether the pod mounts a standalone claim only one node can mount (ReadWriteOnce).
pub(super) fn mounts_single_node_claim(ctx: &Context, pod: &PodTemplateSpec) -> bool {
    let claims = pod
        .spec
        .iter()
        .flat_map(|spec| spec.volumes.iter().flatten())
        .filter_map(|volume| volume.persistent_volume_claim.as_ref())
        .map(|claim| claim.claim_name.as_str());
    claims.into_iter().any(|claim| {
        ctx.stack
            .volumes
            .keys()
            .any(|key| k8s_name(key) == claim && !mounted_by_several_pods(ctx, key))
    })
}

/// A ReadWriteMany claim on the cluster's default StorageClass stays Pending where that
/// class is block storage (EBS, GCE PD, Azure disk, most local provisioners): said at the
/// top of the manifest, with the pods that share it, unless the stack names a class.
fn read_write_many_note(ctx: &Context, volume: &str) -> Option<String> {
    let declared = ctx.stack.volumes.get(volume);
    if !mounted_by_several_pods(ctx, volume)
        || declared.is_some_and(|v| v.storage_class.is_some() || v.external)
    {
        return None;
    }
    let users = ctx
        .volume_users
        .get(volume)
        .into_iter()
        .flatten()
        .map(|user| match pods_of(ctx, user) {
            1 => user.to_string(),
            n => format!("{user} ×{n}"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    Some(format!(
        "claim `{}` is ReadWriteMany, as several pods mount it ({users}): it stays Pending unless the cluster's default StorageClass offers ReadWriteMany (NFS, CephFS, EFS, Azure Files); set `volumes.{volume}.storage_class` to one that does",
        k8s_name(volume)
    ))
}

pub(super) fn claim(ctx: &Context, volume: &str, service: &str) -> PersistentVolumeClaim {
    let declared = ctx.stack.volumes.get(volume);
    // One claim mounted by several pods needs ReadWriteMany (and a storage class that offers
    // it, e.g. NFS); ReadWriteOnce would only work while every pod lands on one node.
    let access_mode = if mounted_by_several_pods(ctx, volume) {
        "ReadWriteMany"
    } else {
        "ReadWriteOnce"
    };
    let size = declared.map_or_else(|| ByteSize::from("1G"), |v| v.size.clone());
    PersistentVolumeClaim {
        metadata: ctx.meta(&k8s_name(volume), service),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec![access_mode.to_string()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(binary_quantity(&size)),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            storage_class_name: declared.and_then(|v| v.storage_class.clone()),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// A ConfigMap key for a file path ('/' is not allowed in keys).
pub(super) fn config_key(path: &str) -> String {
    path.replace('/', "_")
}
