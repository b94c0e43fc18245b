//! Files a service mounts whose text comes from the model (`services.<name>.files`): a
//! Nickel string, or a minijinja template rendered against the stack (strict: an undefined
//! variable is an error). Pure: the caller reads the templates. Each file becomes a
//! read-only bind mount of `./files/<service>/<path>`, so every backend carries it the way
//! it carries berth's other generated files (compose binds it, Quadlet mounts it,
//! Kubernetes ships it as a ConfigMap, apply stores it by content hash).

use std::collections::BTreeMap;
use std::path::PathBuf;

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Value, json};

use super::{GeneratedFile, Mount, MountKind, Stack, Text};
use crate::error::{Diagnostic, Location};

/// The folder of the generated files in the build output.
pub const DIR: &str = "files";

/// Where the file a service mounts at `target` is written, below the output folder.
pub fn output_path(service: &str, target: &str) -> String {
    format!("{DIR}/{service}/{}", target.trim_start_matches('/'))
}

/// The template files `stack` names, relative to the project root, each with the field
/// that names it.
pub fn templates(stack: &Stack) -> Vec<(String, String)> {
    stack
        .services
        .iter()
        .flat_map(|(name, service)| {
            service.files.iter().filter_map(move |(target, file)| {
                let path = file.template.clone()?;
                Some((format!("services.{name}.files.{target}.template"), path))
            })
        })
        .collect()
}

/// Renders every file of `stack` into its `content` (templates' texts from `sources`, by
/// path) and mounts it read-only. Returns every problem; the stack is then unusable.
pub fn resolve(stack: &mut Stack, sources: &BTreeMap<String, String>) -> Vec<Diagnostic> {
    let context = context(stack);
    let mut problems = Vec::new();
    let mut rendered: Vec<(String, String, String)> = Vec::new();
    for (name, service) in &stack.services {
        for (target, file) in &service.files {
            let field = format!("services.{name}.files.{target}");
            if let Err(problem) = check_target(service, target, &field) {
                problems.push(problem);
                continue;
            }
            match text(file, sources, &context, name, &field) {
                Ok(text) => rendered.push((name.clone(), target.clone(), text)),
                Err(problem) => problems.push(problem),
            }
        }
    }
    if !problems.is_empty() {
        return problems;
    }
    for (name, target, text) in rendered {
        let Some(service) = stack.services.get_mut(&name) else {
            continue;
        };
        service.volumes.push(Mount {
            kind: MountKind::Bind,
            source: Some(Text::literal(&format!("./{}", output_path(&name, &target)))),
            target: target.clone(),
            read_only: true,
            create_host_path: false,
            selinux: None,
            host_path: false,
            tls_certificate: false,
        });
        if let Some(file) = service.files.get_mut(&target) {
            file.content = Some(text);
        }
    }
    problems
}

/// An absolute, normalised path no other mount of the service claims.
fn check_target(service: &super::Service, target: &str, field: &str) -> Result<(), Diagnostic> {
    let normal = target.starts_with('/')
        && !target.ends_with('/')
        && target
            .split('/')
            .skip(1)
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if !normal {
        return Err(
            Diagnostic::new(field, format!("`{target}` is no absolute file path"))
                .with_hint("key a file by where the container reads it, e.g. \"/etc/app/app.yml\""),
        );
    }
    if service
        .volumes
        .iter()
        .any(|mount| mount.target.trim_end_matches('/') == target)
    {
        return Err(Diagnostic::new(
            field,
            format!("`{target}` is also the target of a volume"),
        ));
    }
    Ok(())
}

/// The file's text: its `content`, or its template rendered.
fn text(
    file: &GeneratedFile,
    sources: &BTreeMap<String, String>,
    context: &Value,
    service: &str,
    field: &str,
) -> Result<String, Diagnostic> {
    match (&file.content, &file.template) {
        (Some(content), None) => Ok(content.clone()),
        (None, Some(path)) => {
            let source = sources.get(path).ok_or_else(|| {
                Diagnostic::new(
                    format!("{field}.template"),
                    format!("template `{path}` was not read"),
                )
            })?;
            let mut context = context.clone();
            context["params"] = json!(file.params);
            render(
                path,
                source,
                &context,
                service,
                &format!("{field}.template"),
            )
        }
        _ => Err(Diagnostic::new(
            field,
            "set one of `content` and `template`",
        )),
    }
}

/// Renders `source` (the template at `path`) for `service`; a failure names the template's
/// line.
fn render(
    path: &str,
    source: &str,
    context: &Value,
    service: &str,
    field: &str,
) -> Result<String, Diagnostic> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // A template's own check of the stack (the nginx module's: a route's port is one its
    // service declares) fails the build at its line, as a bad value in a module does.
    env.add_function(
        "fail",
        |message: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                message,
            ))
        },
    );
    // A config file keeps its final line feed.
    env.set_keep_trailing_newline(true);
    let mut context = context.clone();
    context["service"] = json!(service);
    let rendered = env
        .add_template(path, source)
        .and_then(|()| env.get_template(path))
        .and_then(|template| template.render(&context));
    rendered.map_err(|error| {
        let mut diagnostic =
            Diagnostic::new(field, format!("template `{path}`: {}", describe(&error)));
        diagnostic.location = Some(Location {
            file: PathBuf::from(path),
            line: error
                .line()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(1),
            column: 1,
        });
        diagnostic
    })
}

/// minijinja's message without its own "(in template:line)" suffix, which the location says.
fn describe(error: &minijinja::Error) -> String {
    let mut message = error.kind().to_string();
    if let Some(detail) = error.detail() {
        message.push_str(": ");
        message.push_str(detail);
    }
    message
}

/// What a template sees (README: "Files from the model"). Secrets are named, never valued:
/// a secret variable shows `secret = true` and no default (it has none), and no `dev_value`.
fn context(stack: &Stack) -> Value {
    let profile = &stack.profile;
    let services: serde_json::Map<String, Value> = stack
        .services
        .iter()
        .map(|(name, service)| {
            let ports: Vec<Value> = service
                .ports
                .iter()
                .map(|port| json!({ "target": port.container_port(), "protocol": port.protocol.as_str(), "name": port.name }))
                .collect();
            let value = json!({
                "description": service.description,
                "replicas": service.replicas,
                "ports": ports,
                "metrics_port": service.metrics.as_ref().map(|m| m.port),
                "files": service.files.keys().collect::<Vec<_>>(),
            });
            (name.clone(), value)
        })
        .collect();
    let variables: serde_json::Map<String, Value> = stack
        .variables
        .iter()
        .map(|(name, variable)| {
            let default = (!variable.secret)
                .then(|| variable.default.clone())
                .flatten();
            (
                name.clone(),
                json!({ "secret": variable.secret, "default": default }),
            )
        })
        .collect();
    let monitoring = &stack.monitoring;
    json!({
        "stack": { "name": stack.name, "description": stack.description },
        "profile": {
            "name": profile.name,
            "production": profile.production,
            "debug": profile.debug,
            "log_level": profile.log_level,
            "metrics": profile.metrics,
            "alerting": profile.alerting,
            "systemd": profile.systemd,
            "quadlet": profile.quadlet,
        },
        "services": services,
        "variables": variables,
        "monitoring": {
            "prometheus": monitoring.prometheus,
            "alertmanager": monitoring.alertmanager,
            "grafana": monitoring.grafana,
            "loki": monitoring.loki,
            "node_exporter": monitoring.node_exporter,
            "blackbox": monitoring.blackbox,
        },
    })
}
