//! Names every backend can carry: services, volumes, networks, variables, environment
//! keys, and no two that one backend's normalisation turns into the same name
//! (Kubernetes writes `a_b` and `a-b` both as `a-b`).

use std::collections::BTreeMap;

use super::super::text::is_variable_name;
use super::super::{Service, Stack};
use crate::error::Diagnostic;

/// Longest stack, service or volume name. Kubernetes object names and label values hold
/// 63 characters, and a StatefulSet's pods carry a `controller-revision-hash` label of
/// its name plus 11 characters, so names stay within 52.
pub const MAX_NAME: usize = 52;

/// Kubernetes file names berth writes beside the per-service `<name>.yaml`.
const RESERVED_K8S: [&str; 3] = ["namespace", "variables", "kustomization"];

/// The Kubernetes form of a berth name (DNS-1123): lower case, '-' for '_', '/' and '.'.
pub fn kubernetes_name(name: &str) -> String {
    name.to_ascii_lowercase()
        .replace(['_', '/', '.'], "-")
        .trim_matches('-')
        .to_string()
}

/// Problems with the names of `stack`.
pub fn names(stack: &Stack, found: &mut Vec<Diagnostic>) {
    if stack.name.chars().count() > MAX_NAME {
        found.push(too_long("name", &stack.name));
    }
    if let Some(namespace) = &stack.namespace
        && kubernetes_name(namespace).chars().count() > 63
    {
        found.push(
            Diagnostic::new(
                "namespace",
                "a Kubernetes namespace has at most 63 characters",
            )
            .with_hint("choose a shorter namespace"),
        );
    }
    let kinds = [
        ("services", stack.services.keys().collect::<Vec<_>>()),
        ("volumes", stack.volumes.keys().collect()),
        ("networks", stack.networks.keys().collect()),
    ];
    for (kind, keys) in kinds {
        for key in keys {
            if !is_name(key) {
                found.push(Diagnostic::new(
                    format!("{kind}.{key}"),
                    format!(
                        "`{key}` is not a valid name: use lower-case letters, digits, '-' and '_'"
                    ),
                ));
            } else if kind != "networks" && key.chars().count() > MAX_NAME {
                found.push(too_long(&format!("{kind}.{key}"), key));
            }
        }
    }
    services(stack, found);
    collisions("volumes", stack.volumes.keys(), found);
    for key in stack.variables.keys() {
        if !is_variable_name(key) {
            found.push(Diagnostic::new(
                format!("variables.{key}"),
                "not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)",
            ));
        }
    }
    for (name, service) in &stack.services {
        environment_keys(name, service, found);
    }
}

/// A Kubernetes Service name is a DNS-1035 label: it starts with a letter. Its manifest
/// file must not be one berth writes for the stack.
fn services(stack: &Stack, found: &mut Vec<Diagnostic>) {
    for name in stack.services.keys().filter(|name| is_name(name)) {
        let field = format!("services.{name}");
        if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            found.push(
                Diagnostic::new(&field, format!("`{name}` must start with a letter: a Kubernetes Service name cannot start with a digit"))
                    .with_hint(format!("e.g. `s{name}`")),
            );
        }
        let k8s = kubernetes_name(name);
        if RESERVED_K8S.contains(&k8s.as_str()) {
            found.push(
                Diagnostic::new(
                    &field,
                    format!(
                        "`{name}` is a name berth uses for its own Kubernetes file ({k8s}.yaml)"
                    ),
                )
                .with_hint(format!("rename the service, e.g. `{name}-app`")),
            );
        }
    }
    collisions("services", stack.services.keys(), found);
}

/// Two names of one kind that Kubernetes would write the same: the second is reported.
fn collisions<'a>(
    kind: &str,
    names: impl Iterator<Item = &'a String>,
    found: &mut Vec<Diagnostic>,
) {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for name in names.filter(|name| is_name(name)) {
        let k8s = kubernetes_name(name);
        match seen.get(k8s.as_str()) {
            Some(first) => found.push(
                Diagnostic::new(
                    format!("{kind}.{name}"),
                    format!("`{name}` and `{first}` are both `{k8s}` on Kubernetes ('_' becomes '-'), so one would replace the other"),
                )
                .with_hint(format!("rename one of them; e.g. `{}`", alternative(name))),
            ),
            None => {
                seen.insert(k8s, name);
            }
        }
    }
}

fn alternative(name: &str) -> String {
    format!("{}-2", name.replace('_', "-"))
}

/// Environment keys reach a Kubernetes ConfigMap, whose keys are `[-._a-zA-Z0-9]+`, and
/// line-based env files, where `=` ends the key.
fn environment_keys(name: &str, service: &Service, found: &mut Vec<Diagnostic>) {
    for key in service.environment.keys() {
        let valid = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
        if !valid {
            found.push(
                Diagnostic::new(
                    format!("services.{name}.environment.{key}"),
                    format!("`{}` is not an environment key every backend can carry: use letters, digits, '_', '-' and '.'", key.escape_debug()),
                )
                .with_hint(match key.split_once('=') {
                    Some((key, value)) => format!("write it as {key} = \"{value}\""),
                    None => "e.g. LOG_LEVEL".to_string(),
                }),
            );
        }
    }
}

fn too_long(field: &str, name: &str) -> Diagnostic {
    let shorter: String = name.chars().take(MAX_NAME).collect();
    Diagnostic::new(
        field,
        format!(
            "`{name}` has {} characters; names have at most {MAX_NAME}, so that every Kubernetes name and label made from them stays within 63",
            name.chars().count()
        ),
    )
    .with_hint(format!("e.g. `{}`", shorter.trim_end_matches(['-', '_'])))
}

/// Lower-case letters, digits, '-' and '_', starting with a letter or digit.
pub fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}
