//! What the operator must provide on the host before a stack's first start: the images it
//! builds, the TLS certificates it serves, the host paths its services mount that the build
//! does not hold, and the files its secrets are read from. Pure. The compose unit's install
//! text and the Quadlet README both list these from here, so a podman host is told what a
//! Docker host is.

use std::collections::{BTreeMap, BTreeSet};

use super::quadlet;
use crate::model::{MountKind, Stack};

/// Which engine runs the stack: how images are named, built and pulled there.
#[derive(Clone, Copy)]
pub(super) enum Engine {
    Compose,
    Podman,
}

/// The notes, each on its own line (`Images:`, `TLS:`, `Host paths…`, `Secret:`), each
/// line starting with a line break; empty when the stack needs nothing from the host.
pub(super) fn notes(stack: &Stack, engine: Engine) -> String {
    format!(
        "{}{}{}{}",
        built_images_note(stack, engine),
        certificates_note(stack),
        host_folders_note(stack),
        secret_files_note(stack),
    )
}

/// What the install text says of images the stack builds: pushed by CI and pulled here,
/// or built here from contexts that must be copied beside the compose file.
fn built_images_note(stack: &Stack, engine: Engine) -> String {
    let built: Vec<(String, String)> = stack
        .services
        .iter()
        .filter(|(_, service)| service.image.is_none())
        .filter_map(|(name, service)| {
            let build = service.build.as_ref()?;
            let image = match engine {
                Engine::Compose => stack.built_image(name),
                Engine::Podman => quadlet::image(stack, name, service),
            };
            Some((image, build.context.clone()))
        })
        .collect();
    if built.is_empty() {
        return String::new();
    }
    let images: Vec<&str> = built.iter().map(|(image, _)| image.as_str()).collect();
    let install_dir = stack.install_dir();
    let contexts: BTreeSet<&str> = built.iter().map(|(_, context)| context.as_str()).collect();
    let contexts: Vec<&str> = contexts.into_iter().collect();
    match (&stack.profile.registry, engine) {
        (Some(_), Engine::Compose) => format!(
            "\nImages: CI builds and pushes {} (docker compose build && docker compose push);\n      this host pulls them (docker compose pull) before the first start.",
            images.join(", ")
        ),
        (Some(_), Engine::Podman) => format!(
            "\nImages: CI builds and pushes {} (docker compose build && docker compose push);\n      podman pulls them when a unit starts and the host lacks them (podman pull to check access first).",
            images.join(", ")
        ),
        (None, Engine::Compose) => format!(
            "\nImages: {} are built on this host from {}: copy those folders to {install_dir} too,\n      or set the profile's `registry` and push them from CI.",
            images.join(", "),
            contexts.join(", "),
        ),
        (None, Engine::Podman) => format!(
            "\nImages: {} are built on this host from {}: copy those folders to {install_dir}\n      too and build each before the first start (podman build -t IMAGE CONTEXT; its unit names it),\n      or set the profile's `registry` and push them from CI.",
            images.join(", "),
            contexts.join(", "),
        ),
    }
}

/// The host folders the services mount that this build does not hold (berth writes the
/// [`super::GENERATED_DIRS`]): the operator provides them, with each service that mounts it.
fn provided_host_paths(stack: &Stack) -> Vec<(String, Vec<&str>)> {
    let mut paths: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (name, service) in &stack.services {
        for mount in service.volumes.iter().filter(|m| m.kind == MountKind::Bind) {
            let Some(source) = mount
                .source
                .as_ref()
                .map(|s| stack.declared_value(s).unwrap_or_else(|| s.to_string()))
            else {
                continue;
            };
            let relative = source.trim_start_matches("./").trim_end_matches('/');
            // The host's root (node exporter's view of it) is there on every host.
            let generated = super::GENERATED_DIRS
                .iter()
                .any(|dir| relative == *dir || relative.starts_with(&format!("{dir}/")));
            if generated || source == "/" {
                continue;
            }
            let users = paths.entry(source.clone()).or_default();
            if !users.contains(&name.as_str()) {
                users.push(name);
            }
        }
    }
    paths.into_iter().collect()
}

fn host_folders_note(stack: &Stack) -> String {
    let paths = provided_host_paths(stack);
    if paths.is_empty() {
        return String::new();
    }
    let listed: Vec<String> = paths
        .iter()
        .map(|(path, users)| format!("{path} ({})", users.join(", ")))
        .collect();
    format!(
        "\nHost paths the services mount that this build does not hold; they must exist before the\n      start (relative ones in {}): {}.",
        stack.install_dir(),
        listed.join(", ")
    )
}

/// The files secrets are read from (`variables.X.file`): the operator's to put in place,
/// as compose refuses to start a service whose secret file is missing.
fn secret_files_note(stack: &Stack) -> String {
    let mut note = String::new();
    for (variable, file, users) in stack.mounted_secret_files() {
        note.push_str(&format!(
            "\nSecret: put {variable} in {} (read by {}; never commit it).",
            stack.host_path(file),
            users.join(", ")
        ));
    }
    note
}

/// The operator's certificates the services serve (binds marked `tls_certificate`).
fn certificates_note(stack: &Stack) -> String {
    let mut note = String::new();
    for (name, service) in &stack.services {
        for mount in service.volumes.iter().filter(|m| m.tls_certificate) {
            let Some(source) = &mount.source else {
                continue;
            };
            let source = stack
                .declared_value(source)
                .unwrap_or_else(|| source.to_string());
            let folder = match source.strip_prefix("./") {
                Some(relative) => format!("{}/{relative}", stack.install_dir()),
                None => source,
            };
            note.push_str(&format!(
                "\nTLS: put the certificate chain and key in {folder}/tls.crt and tls.key (read by {name})."
            ));
        }
    }
    note
}
