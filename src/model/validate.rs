//! Checks a deserialized stack for what contracts cannot see: references between parts,
//! dependency cycles, host-port clashes, health-gated dependencies without a healthcheck,
//! a production profile with alerting whose alerts would reach no receiver.
//! Returns every problem found; field paths are located by the caller.

mod addresses;
mod lines;
mod names;

use std::collections::BTreeMap;

pub use lines::control_characters;
pub use names::{MAX_NAME, kubernetes_name};

use super::podman::{self, PodmanVersion};
use super::text::Piece;
use super::{
    AlertReceiver, Command, Condition, Dependency, HealthTest, MountKind, Protocol, Published,
    Restart, Service, Stack, Text, Variable,
};
use crate::error::Diagnostic;
use names::names;

/// All problems of `stack`, in a stable order.
pub fn stack(stack: &Stack) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    names(stack, &mut found);
    addresses::addresses(stack, &mut found);
    for (name, service) in &stack.services {
        image_or_build(name, service, &mut found);
        dependencies(stack, name, service, &mut found);
        watched(stack, name, service, &mut found);
        mounts(stack, name, service, &mut found);
        networks(stack, name, service, &mut found);
        replicas_and_ports(name, service, &mut found);
        global(name, service, &mut found);
        references(stack, name, service, &mut found);
        secret_files(stack, name, service, &mut found);
        autoscaling(name, service, &mut found);
        healthcheck(name, service, &mut found);
        host_environment(name, service, &mut found);
        network_mode(stack, name, service, &mut found);
        ingress_port(name, service, &mut found);
        sidecar(stack, name, service, &mut found);
    }
    monitoring(stack, &mut found);
    external_caches(stack, &mut found);
    certificates(stack, &mut found);
    cycles(stack, &mut found);
    host_port_clashes(stack, &mut found);
    variables(stack, &mut found);
    secret_names(stack, &mut found);
    dev_secrets(stack, &mut found);
    podman_release(stack, &mut found);
    found
}

/// A cache is a pod's own emptyDir on Kubernetes: a volume made by someone else is theirs.
fn external_caches(stack: &Stack, found: &mut Vec<Diagnostic>) {
    for (key, _) in stack.volumes.iter().filter(|(_, v)| v.cache && v.external) {
        found.push(
            Diagnostic::new(
                format!("volumes.{key}.cache"),
                "an external volume is made outside berth, and its data is not berth's to discard",
            )
            .with_hint("leave out `cache`, or `external`"),
        );
    }
}

/// Every field of a service that holds [`Text`], with its path: the fields where a
/// `${NAME}` reference is read. Destructured without `..`, so a new field must be sorted here.
pub fn service_texts<'a>(name: &str, service: &'a Service) -> Vec<(String, &'a Text)> {
    let Service {
        description: _,
        container_name,
        hostname,
        platform,
        pull_policy,
        compose_profiles: _,
        image,
        build,
        command,
        entrypoint,
        working_dir,
        user,
        volume_owner: _,
        env_file,
        environment,
        host_environment: _,
        ports,
        volumes,
        // Checked by `model::files::resolve`, which reads their templates first.
        files: _,
        secrets: _,
        networks: _,
        network_aliases,
        network_addresses: _,
        network_mode: _,
        depends_on: _,
        healthcheck,
        restart: _,
        replicas: _,
        global: _,
        placement: _,
        resources: _,
        labels,
        logging: _,
        ulimits: _,
        extra_hosts: _,
        stop_grace_period: _,
        stop_signal: _,
        attach: _,
        devices,
        sysctls: _,
        init: _,
        read_only: _,
        privileged: _,
        cap_add: _,
        cap_drop: _,
        shm_size: _,
        tmpfs: _,
        dns: _,
        dns_search: _,
        dns_opt: _,
        tty: _,
        stdin_open: _,
        pid: _,
        security_opt: _,
        gpus: _,
        backup: _,
        metrics: _,
        kubernetes: _,
    } = service;
    let at = |field: &str| format!("services.{name}.{field}");
    let mut texts: Vec<(String, &Text)> = Vec::new();
    for (field, text) in [
        ("container_name", container_name),
        ("hostname", hostname),
        ("platform", platform),
        ("pull_policy", pull_policy),
        ("image", image),
        ("working_dir", working_dir),
        ("user", user),
    ] {
        if let Some(text) = text {
            texts.push((at(field), text));
        }
    }
    for (key, value) in environment {
        texts.push((at(&format!("environment.{key}")), value));
    }
    for (field, command) in [("command", command), ("entrypoint", entrypoint)] {
        match command {
            Some(Command::Shell(line)) => texts.push((at(field), line)),
            Some(Command::Exec(args)) => texts.extend(
                args.iter()
                    .enumerate()
                    .map(|(i, arg)| (at(&format!("{field}[{i}]")), arg)),
            ),
            None => {}
        }
    }
    match healthcheck.as_ref().map(|h| &h.test) {
        Some(HealthTest::Shell(line)) => texts.push((at("healthcheck.test"), line)),
        Some(HealthTest::Exec(args)) => texts.extend(
            args.iter()
                .enumerate()
                .map(|(i, arg)| (at(&format!("healthcheck.test[{i}]")), arg)),
        ),
        _ => {}
    }
    for (key, value) in labels {
        texts.push((at(&format!("labels.{key}")), value));
    }
    if let Some(build) = build {
        for (key, value) in &build.args {
            texts.push((at(&format!("build.args.{key}")), value));
        }
    }
    for (index, mount) in volumes.iter().enumerate() {
        if let Some(source) = &mount.source {
            texts.push((at(&format!("volumes[{index}].source")), source));
        }
    }
    for (index, port) in ports.iter().enumerate() {
        if let Some(Published::Range(text)) = &port.published {
            texts.push((at(&format!("ports[{index}].published")), text));
        }
    }
    for (index, file) in env_file.iter().enumerate() {
        texts.push((at(&format!("env_file[{index}].path")), &file.path));
    }
    for (network, aliases) in network_aliases {
        for (index, alias) in aliases.iter().enumerate() {
            texts.push((at(&format!("network_aliases.{network}[{index}]")), alias));
        }
    }
    for (index, device) in devices.iter().enumerate() {
        texts.push((at(&format!("devices[{index}]")), device));
    }
    texts
}

/// A name passed from the host is the container's variable: set twice, one would win
/// silently (and each backend picks another).
fn host_environment(name: &str, service: &Service, found: &mut Vec<Diagnostic>) {
    let mut seen = std::collections::BTreeSet::new();
    for (index, variable) in service.host_environment.iter().enumerate() {
        let field = format!("services.{name}.host_environment[{index}]");
        if service.environment.contains_key(variable) {
            found.push(
                Diagnostic::new(
                    &field,
                    format!("`{variable}` is also set in `environment`; the container gets one value"),
                )
                .with_hint(format!(
                    "keep `environment.{variable} = \"${{{variable}}}\"` (always set, with the variable's default) or this entry (set only when the deploy environment sets it)"
                )),
            );
        }
        if !seen.insert(variable) {
            found.push(Diagnostic::new(
                field,
                format!("`{variable}` is listed twice"),
            ));
        }
    }
}

fn image_or_build(name: &str, service: &Service, found: &mut Vec<Diagnostic>) {
    if service.image.is_none() && service.build.is_none() {
        found.push(
            Diagnostic::new(format!("services.{name}"), "needs an `image` or a `build`")
                .with_hint("e.g. image = \"postgres:16\" or build = { context = \"./api\" }"),
        );
    }
}

/// `metrics.watches` names a service of the stack.
fn watched(stack: &Stack, name: &str, service: &Service, found: &mut Vec<Diagnostic>) {
    let Some(watched) = service.metrics.as_ref().and_then(|m| m.watches.as_ref()) else {
        return;
    };
    if !stack.services.contains_key(watched) {
        let field = format!("services.{name}.metrics.watches");
        found.push(unknown(field, "service", watched, stack.services.keys()));
    }
}

fn dependencies(stack: &Stack, name: &str, service: &Service, found: &mut Vec<Diagnostic>) {
    for (dependency, Dependency { condition, .. }) in &service.depends_on {
        let field = format!("services.{name}.depends_on.{dependency}");
        if dependency == name {
            found.push(Diagnostic::new(field, "a service cannot depend on itself"));
            continue;
        }
        let Some(target) = stack.services.get(dependency) else {
            found.push(unknown(field, "service", dependency, stack.services.keys()));
            continue;
        };
        let restart = target.restart.as_ref().map(|r| *r.value());
        let restarts = restart.is_some_and(Restart::restarts_after_success);
        if *condition == Condition::Completed && restarts {
            let policy = restart.map_or("", Restart::as_str);
            found.push(
                Diagnostic::new(
                    &field,
                    format!("waits for `{dependency}` to complete, but `{dependency}` is restarted (`{policy}`) and never completes"),
                )
                .with_hint(format!(
                    "a one-shot job needs `restart | force = \"no\"` in services.{dependency} (a profile's restart policy applies otherwise)"
                )),
            );
        }
        if *condition == Condition::Healthy && target.healthcheck.is_none() {
            found.push(
                Diagnostic::new(field, format!("waits for `{dependency}` to be healthy, but `{dependency}` has no healthcheck"))
                    .with_hint(format!("give services.{dependency} a healthcheck, or wait for \"started\"")),
            );
        }
    }
}

fn mounts(stack: &Stack, name: &str, service: &Service, found: &mut Vec<Diagnostic>) {
    for (index, mount) in service.volumes.iter().enumerate() {
        let field = format!("services.{name}.volumes[{index}]");
        match (mount.kind, mount.source.as_ref().map(Text::written)) {
            (MountKind::Volume, Some(source)) if !stack.volumes.contains_key(source) => {
                let mut diagnostic = unknown(
                    format!("{field}.source"),
                    "volume",
                    source,
                    stack.volumes.keys(),
                );
                if !diagnostic
                    .hint
                    .as_deref()
                    .is_some_and(|hint| hint.starts_with("did you mean"))
                {
                    diagnostic =
                        diagnostic.with_hint(format!("declare it: volumes.{source} = {{}}"));
                }
                found.push(diagnostic);
            }
            // A volume without a source is anonymous (Compose's `- /var/lib/data`).
            (MountKind::Bind, None) => {
                found.push(Diagnostic::new(&field, "a bind mount needs a `source`"));
            }
            (MountKind::Tmpfs, Some(_)) => {
                found.push(Diagnostic::new(
                    format!("{field}.source"),
                    "a tmpfs mount has no source",
                ));
            }
            _ => {}
        }
        if !mount.target.starts_with('/') {
            found.push(Diagnostic::new(
                format!("{field}.target"),
                "the mount target must be an absolute path",
            ));
        }
    }
}

fn networks(stack: &Stack, name: &str, service: &Service, found: &mut Vec<Diagnostic>) {
    for (index, network) in service.networks.iter().enumerate() {
        if network != "default" && !stack.networks.contains_key(network) {
            let field = format!("services.{name}.networks[{index}]");
            found.push(unknown(field, "network", network, stack.networks.keys()));
        }
    }
}

/// A global service has one container per node: no replica count, no autoscaling.
fn global(name: &str, service: &Service, found: &mut Vec<Diagnostic>) {
    if !service.global {
        return;
    }
    let field = format!("services.{name}.global");
    if service.replicas != 1 {
        found.push(
            Diagnostic::new(
                &field,
                format!(
                    "a global service runs one container per node, not {} replicas",
                    service.replicas
                ),
            )
            .with_hint("leave out `replicas`, or `global`"),
        );
    }
    if service.kubernetes.autoscaling.is_some() || service.kubernetes.replicas.is_some() {
        found.push(
            Diagnostic::new(
                &field,
                "a global service runs one pod per node; `kubernetes.replicas` and `kubernetes.autoscaling` do not apply",
            )
            .with_hint("leave out `kubernetes.replicas` and `kubernetes.autoscaling`, or `global`"),
        );
    }
}

/// A side-car runs in the pods of a workload of its own: a service that is neither itself,
/// nor a side-car, nor a job; and it has no count, scaling or entrance of its own.
fn sidecar(stack: &Stack, name: &str, service: &Service, found: &mut Vec<Diagnostic>) {
    let Some(host) = &service.kubernetes.sidecar_of else {
        return;
    };
    let field = format!("services.{name}.kubernetes.sidecar_of");
    let jobs = stack.awaited(Condition::Completed);
    let problem = match stack.services.get(host) {
        None => {
            found.push(unknown(field, "service", host, stack.services.keys()));
            return;
        }
        Some(_) if host == name => Some("a service cannot be its own side-car".to_string()),
        Some(target) if target.kubernetes.sidecar_of.is_some() => Some(format!(
            "`{host}` is itself a side-car; name the service whose pods both run in"
        )),
        Some(_) if waits_for_its_pod(stack, name, host) => Some(format!(
            "a side-car starts before `{host}`'s own container, so it cannot wait for `{host}` or another side-car of it, directly or through another service"
        )),
        Some(_)
            if !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') =>
        {
            Some(format!(
                "the side-car's name is its host name inside `{host}`'s pods, where Kubernetes takes lower-case letters, digits and `-` only"
            ))
        }
        Some(_) if !service.placement.is_empty() => Some(format!(
            "a side-car runs where `{host}`'s pods run: `placement` belongs to `{host}`"
        )),
        Some(_) if jobs.contains(host.as_str()) || jobs.contains(name) => Some(format!(
            "a one-shot job runs to completion; a side-car of `{host}` must keep running beside it"
        )),
        Some(_)
            if service.replicas != 1
                || service.global
                || service.kubernetes.replicas.is_some()
                || service.kubernetes.autoscaling.is_some()
                || service.kubernetes.ingress.is_some() =>
        {
            Some(format!(
                "a side-car runs once in each pod of `{host}`: `replicas`, `global` and `kubernetes.replicas`/`autoscaling`/`ingress` belong to `{host}`"
            ))
        }
        Some(_) => None,
    };
    if let Some(problem) = problem {
        found.push(Diagnostic::new(field, problem));
    }
}

/// Whether `sidecar` depends, directly or through others, on `host` or one of its side-cars:
/// their Services answer only once the pod is ready, after the side-car has started.
fn waits_for_its_pod(stack: &Stack, sidecar: &str, host: &str) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    let mut next: Vec<&str> = vec![sidecar];
    while let Some(name) = next.pop() {
        let Some(service) = stack.services.get(name) else {
            continue;
        };
        for dependency in service.depends_on.keys() {
            let Some(target) = stack.services.get(dependency) else {
                continue;
            };
            if dependency == host
                || (dependency != sidecar && target.kubernetes.sidecar_of.as_deref() == Some(host))
            {
                return true;
            }
            if seen.insert(dependency.as_str()) {
                next.push(dependency);
            }
        }
    }
    false
}

/// Replicas of one service cannot share one host port; a range must have a port per replica.
fn replicas_and_ports(name: &str, service: &Service, found: &mut Vec<Diagnostic>) {
    for (index, port) in service.ports.iter().enumerate() {
        let Some(published) = &port.published else {
            continue;
        };
        // Each replica gets a free port of its own.
        if published.variable().is_some() || matches!(published, Published::Random) {
            continue;
        }
        let field = format!("services.{name}.ports[{index}].published");
        let Some((first, last)) = host_range(published) else {
            found.push(Diagnostic::new(
                field,
                "a port range must be FIRST-LAST with FIRST <= LAST, both 1 to 65535",
            ));
            continue;
        };
        let n_ports = u32::from(last - first) + 1;
        if n_ports < service.replicas {
            found.push(
                Diagnostic::new(field, format!("{} replicas need {} host ports, {n_ports} published", service.replicas, service.replicas))
                    .with_hint(format!("publish a range, e.g. \"{first}-{}\", or leave the port unpublished behind a proxy", u32::from(first) + service.replicas - 1)),
            );
        }
    }
}

fn references(stack: &Stack, name: &str, service: &Service, found: &mut Vec<Diagnostic>) {
    for (field, text) in service_texts(name, service) {
        for variable in text.variables() {
            if !stack.variables.contains_key(variable) {
                found.push(
                    Diagnostic::new(
                        &field,
                        format!("references undeclared variable `{variable}`"),
                    )
                    .with_hint(format!(
                        "declare it: variables.{variable} = {{ description = \"…\" }}"
                    )),
                );
            } else if let Some(file) = stack.secret_file(variable) {
                found.push(file_secret_in_text(&field, name, variable, file));
            }
        }
        for piece in text.pieces() {
            if let Piece::IfSet {
                name: variable,
                alternative: _,
            } = piece
                && let Some(declared) = stack.variables.get(variable)
                && (declared.secret || declared.default.as_deref() != Some(""))
            {
                found.push(alternative_needs_empty_default(&field, variable));
            }
        }
    }
}

/// `${NAME:+text}` means "NAME set and not empty" only where unset is empty in every
/// backend: Compose reads the variable from .env alone (no berth default there), so its
/// declared default must be "" (a secret is never empty).
fn alternative_needs_empty_default(field: &str, variable: &str) -> Diagnostic {
    Diagnostic::new(
        field,
        format!("`${{{variable}:+…}}` reads `{variable}`, whose declared default is not \"\"; Compose would ignore that default and each backend would choose differently"),
    )
    .with_hint(format!(
        "declare variables.{variable}.default = \"\" (unset means empty), or write the text without `:+`"
    ))
}

/// Compose reads a `file` secret only to mount it: it cannot put its value in an
/// environment value or a command, so no backend does.
fn file_secret_in_text(field: &str, service: &str, variable: &str, file: &str) -> Diagnostic {
    Diagnostic::new(
        field,
        format!("reads the secret `{variable}`, whose value is the file {file}: a file secret can only be mounted, never read as ${{{variable}}}"),
    )
    .with_hint(format!(
        "mount it (services.{service}.secrets = [\"{variable}\"]) and let the image read /run/secrets/{}, e.g. {variable}_FILE=/run/secrets/{}",
        Stack::secret_file_name(variable),
        Stack::secret_file_name(variable),
    ))
}

/// What is left of Compose's spelling after the model mapped `CMD` and `CMD-SHELL`.
fn healthcheck(name: &str, service: &Service, found: &mut Vec<Diagnostic>) {
    let Some(HealthTest::Exec(args)) = service.healthcheck.as_ref().map(|h| &h.test) else {
        return;
    };
    let field = format!("services.{name}.healthcheck.test");
    let problem = match args.first().map(Text::written) {
        None | Some("CMD") => Some("an empty command can never pass"),
        Some("CMD-SHELL") => Some("`CMD-SHELL` takes exactly one shell string"),
        Some("NONE") => Some("`NONE` would turn the check off"),
        Some(_) => None,
    };
    if let Some(problem) = problem {
        found.push(
            Diagnostic::new(field, format!("{problem}: {args:?}")).with_hint(
                "write an argument array [\"pg_isready\", \"-U\", \"app\"] (or [\"CMD\", …]), a shell string \"pg_isready -U app\" (or [\"CMD-SHELL\", \"…\"]), or leave `healthcheck` out",
            ),
        );
    }
}

/// `service:<name>` must name a service of the stack; `container:<name>` names a container
/// outside it, which berth cannot check.
fn network_mode(stack: &Stack, name: &str, service: &Service, found: &mut Vec<Diagnostic>) {
    let Some(mode) = &service.network_mode else {
        return;
    };
    let field = format!("services.{name}.network_mode");
    match mode.split_once(':') {
        Some(("service", other)) if other == name => {
            found.push(Diagnostic::new(
                field,
                "a service cannot share its own network stack",
            ));
        }
        Some(("service", other)) if !stack.services.contains_key(other) => {
            found.push(unknown(field, "service", other, stack.services.keys()));
        }
        Some(("service" | "container", "")) => found.push(
            Diagnostic::new(field, format!("`{mode}` names no service or container"))
                .with_hint("e.g. \"service:vpn\""),
        ),
        // host, none, bridge, a network of the engine, `container:<name>`: not the stack's.
        _ => {}
    }
}

/// An Ingress sends traffic to a port the service's Kubernetes Service serves.
fn ingress_port(name: &str, service: &Service, found: &mut Vec<Diagnostic>) {
    let Some(ingress) = &service.kubernetes.ingress else {
        return;
    };
    // Without a port of its own, the Ingress takes the first one (80 when there is none).
    let port = ingress
        .port
        .or_else(|| service.ports.first().map(|p| p.container_port()))
        .unwrap_or(80);
    let served: Vec<String> = service
        .ports
        .iter()
        .map(|p| p.container_port().to_string())
        .collect();
    if served.contains(&port.to_string()) {
        return;
    }
    let field = format!("services.{name}.kubernetes.ingress.port");
    let known: Vec<&str> = served.iter().map(String::as_str).collect();
    let hint = match known.as_slice() {
        [] => format!("services.{name} declares no ports: add one to `ports`"),
        [only] => format!("did you mean {only}?"),
        _ => format!("the service serves {}", known.join(", ")),
    };
    found.push(
        Diagnostic::new(
            field,
            format!("the Service of `{name}` does not serve port {port}"),
        )
        .with_hint(hint),
    );
}

fn autoscaling(name: &str, service: &Service, found: &mut Vec<Diagnostic>) {
    let Some(autoscaling) = &service.kubernetes.autoscaling else {
        return;
    };
    let field = format!("services.{name}.kubernetes.autoscaling");
    if autoscaling.min == 0 || autoscaling.min > autoscaling.max {
        found.push(Diagnostic::new(
            format!("{field}.min"),
            format!(
                "min {} must be at least 1 and at most max {}",
                autoscaling.min, autoscaling.max
            ),
        ));
    }
    if autoscaling.cpu_percent.is_none() && autoscaling.memory_percent.is_none() {
        found.push(Diagnostic::new(
            field,
            "an autoscaler needs a target: cpu_percent, memory_percent or both",
        ));
    }
}

/// A certificate folder (`tls_certificate`) is a bind mount: the operator's files on the
/// host, a TLS Secret on Kubernetes.
fn certificates(stack: &Stack, found: &mut Vec<Diagnostic>) {
    for (name, service) in &stack.services {
        for (index, mount) in service.volumes.iter().enumerate() {
            if mount.tls_certificate && mount.kind != MountKind::Bind {
                found.push(Diagnostic::new(
                    format!("services.{name}.volumes[{index}].tls_certificate"),
                    "a certificate folder is a bind mount of the operator's files (type \"bind\")",
                ));
            }
        }
    }
}

fn monitoring(stack: &Stack, found: &mut Vec<Diagnostic>) {
    let super::Monitoring {
        prometheus,
        alertmanager,
        grafana,
        loki,
        node_exporter,
        blackbox,
        exporters,
        alert_webhook_secret,
        alert_receiver,
    } = &stack.monitoring;
    let roles = [
        ("prometheus", prometheus),
        ("alertmanager", alertmanager),
        ("grafana", grafana),
        ("loki", loki),
        ("node_exporter", node_exporter),
        ("blackbox", blackbox),
    ];
    for (role, service) in roles {
        if let Some(service) = service
            .as_deref()
            .filter(|s| !stack.services.contains_key(*s))
        {
            found.push(unknown(
                format!("monitoring.{role}"),
                "service",
                service,
                stack.services.keys(),
            ));
        }
    }
    for service in exporters
        .keys()
        .filter(|s| !stack.services.contains_key(s.as_str()))
    {
        found.push(unknown(
            format!("monitoring.exporters.{service}"),
            "service",
            service,
            stack.services.keys(),
        ));
    }
    match alert_webhook_secret {
        Some(secret) => webhook_secret(stack, alertmanager.as_deref(), secret, found),
        // The receiver kind says what listens at the secret's URL; the profile's
        // `alert_webhook` is always Alertmanager's webhook JSON.
        None if *alert_receiver != AlertReceiver::Webhook => found.push(
            Diagnostic::new(
                "monitoring.alert_receiver",
                "says what listens at the URL of `monitoring.alert_webhook_secret`, which is not set",
            )
            .with_hint("set `monitoring.alert_webhook_secret` to the secret variable holding the Slack webhook URL"),
        ),
        None => {}
    }
    receiver(stack, found);
}

/// The webhook secret is a file only where the Alertmanager service mounts it.
fn webhook_secret(
    stack: &Stack,
    alertmanager: Option<&str>,
    secret: &str,
    found: &mut Vec<Diagnostic>,
) {
    let field = "monitoring.alert_webhook_secret";
    if !stack.variables.get(secret).is_some_and(|v| v.secret) {
        found.push(
            Diagnostic::new(
                field,
                format!("`{secret}` is no secret variable of the stack"),
            )
            .with_hint(format!(
                "declare it: variables.{secret} = {{ description = \"…\", secret = true }}"
            )),
        );
    }
    let Some((name, service)) = alertmanager.and_then(|name| stack.services.get_key_value(name))
    else {
        return;
    };
    if !service.secrets.iter().any(|s| s.variable == secret) {
        found.push(
            Diagnostic::new(
                field,
                format!("Alertmanager `{name}` does not mount the secret `{secret}`, so the file it would read is missing"),
            )
            .with_hint(format!("add \"{secret}\" to services.{name}.secrets")),
        );
    }
}

/// Alerting on means alerts reach someone: a production stack that evaluates alert rules
/// (it runs Prometheus) needs an Alertmanager with a receiver, not one that only shows
/// them in its UI. Non-production profiles may leave alerts on screen.
fn receiver(stack: &Stack, found: &mut Vec<Diagnostic>) {
    let profile = &stack.profile;
    let monitoring = &stack.monitoring;
    if !(profile.production && profile.alerting) || monitoring.prometheus.is_none() {
        return;
    }
    let problem = match &monitoring.alertmanager {
        None => "but the stack runs Prometheus without an Alertmanager".to_string(),
        Some(_) if profile.alert_webhook.is_some() || monitoring.alert_webhook_secret.is_some() => {
            return;
        }
        Some(alertmanager) => format!("but Alertmanager `{alertmanager}` has no receiver"),
    };
    found.push(
        Diagnostic::new(
            "profile.alerting",
            format!(
                "production profile `{}` turns alerting on, {problem}: alerts would reach no one",
                profile.name
            ),
        )
        .with_hint("set `monitoring.alert_webhook_secret` to a secret the Alertmanager service mounts (the prometheus module does so when `alertmanager = true`), or `alert_webhook` in the profile; or turn `alerting` off"),
    );
}

fn secret_files(stack: &Stack, name: &str, service: &Service, found: &mut Vec<Diagnostic>) {
    let mut file_names = std::collections::BTreeSet::new();
    for (index, mount) in service.secrets.iter().enumerate() {
        let field = format!("services.{name}.secrets[{index}]");
        if !file_names.insert(mount.file_name()) {
            found.push(
                Diagnostic::new(
                    &field,
                    format!("a second secret at /run/secrets/{}", mount.file_name()),
                )
                .with_hint(
                    "mount it under another file name: { variable = \"…\", target = \"…\" }",
                ),
            );
        }
        let secret = &mount.variable;
        match stack.variables.get(secret) {
            None => found.push(
                Diagnostic::new(field, format!("unknown secret `{secret}`")).with_hint(format!(
                    "declare it: variables.{secret} = {{ description = \"…\", secret = true }}"
                )),
            ),
            Some(variable) if !variable.secret => found.push(
                Diagnostic::new(field, format!("`{secret}` is not a secret")).with_hint(format!(
                    "mark it `secret = true`, or pass it as an environment value \"${{{secret}}}\""
                )),
            ),
            Some(_) => {}
        }
    }
}

/// A file name under /run/secrets is also the secret's name in the Compose file, where it
/// stands for one source: two variables under one name would be one secret there.
/// (Two in one service are `secret_files`' to report.)
fn secret_names(stack: &Stack, found: &mut Vec<Diagnostic>) {
    let mut first: BTreeMap<String, (&str, &str, String)> = BTreeMap::new();
    for (name, service) in &stack.services {
        for (index, mount) in service.secrets.iter().enumerate() {
            let field = format!("services.{name}.secrets[{index}]");
            let file_name = mount.file_name();
            match first.get(&file_name) {
                Some((owner, variable, at)) if owner != name && *variable != mount.variable => {
                    found.push(
                        Diagnostic::new(
                            &field,
                            format!(
                                "mounts `{}` as /run/secrets/{file_name}, the name {at} gives to `{variable}`",
                                mount.variable
                            ),
                        )
                        .with_hint("one file name under /run/secrets means one secret in a stack (Compose names the secret so): give one of them another `target`"),
                    );
                }
                Some(_) => {}
                None => {
                    first.insert(file_name, (name, &mount.variable, field));
                }
            }
        }
    }
}

fn variables(stack: &Stack, found: &mut Vec<Diagnostic>) {
    for (name, variable) in &stack.variables {
        file_secret(name, variable, found);
        if variable.secret && variable.default.is_some() {
            found.push(
                Diagnostic::new(
                    format!("variables.{name}.default"),
                    "a secret cannot have a default: it would be written into artifacts",
                )
                .with_hint("use `dev_value` for a throw-away value that only dev profiles use"),
            );
        }
        if !variable.secret && variable.dev_value.is_some() {
            found.push(Diagnostic::new(
                format!("variables.{name}.dev_value"),
                "only secrets have a dev_value; use `default`",
            ));
        }
    }
}

/// `file` says where a secret's value is: only secrets have one, and then the file is
/// the value in every profile (Compose reads it whatever the profile), so no dev value.
fn file_secret(name: &str, variable: &Variable, found: &mut Vec<Diagnostic>) {
    let Some(file) = &variable.file else {
        return;
    };
    let field = format!("variables.{name}.file");
    if !variable.secret {
        found.push(
            Diagnostic::new(&field, "only a secret is read from a file")
                .with_hint("mark it `secret = true` and mount it (services.<name>.secrets), or give a plain value as `default`"),
        );
    }
    if file.trim().is_empty() {
        found.push(Diagnostic::new(&field, "names no file"));
    }
    if variable.secret && variable.dev_value.is_some() {
        found.push(
            Diagnostic::new(
                format!("variables.{name}.dev_value"),
                format!("a secret read from a file has no dev value: every profile reads {file}"),
            )
            .with_hint(
                "put a throw-away value in that file on dev machines, and remove `dev_value`",
            ),
        );
    }
}

/// A secret's dev value in an artifact is only acceptable where nothing real runs.
fn dev_secrets(stack: &Stack, found: &mut Vec<Diagnostic>) {
    let profile = &stack.profile;
    if profile.production && profile.dev_secrets {
        found.push(
            Diagnostic::new(
                "profile.dev_secrets",
                format!("profile `{}` is a production profile, so secrets cannot fall back to their dev values", profile.name),
            )
            .with_hint("remove `dev_secrets = true`, or say `production = false` if the profile only serves throw-away environments (a profile is production unless it says so)"),
        );
    }
}

/// A Quadlet profile names the podman release it targets, one berth writes units for, and
/// the stack asks nothing of Quadlet that this release cannot say (see `model::podman`).
fn podman_release(stack: &Stack, found: &mut Vec<Diagnostic>) {
    let profile = &stack.profile;
    if !profile.quadlet {
        return;
    }
    let Some(written) = profile.podman_version.as_deref() else {
        found.push(
            Diagnostic::new(
                "profile.quadlet",
                format!("profile `{}` turns Quadlet on but does not say which podman release its hosts run; Quadlet refuses a unit with a key its release does not know", profile.name),
            )
            .with_hint("add e.g. `podman_version = \"5.2\"` (what `podman --version` prints on the hosts)"),
        );
        return;
    };
    let Some(target) = PodmanVersion::parse(written) else {
        found.push(Diagnostic::new(
            "profile.podman_version",
            format!("{written:?} is not a podman release such as \"5.2\""),
        ));
        return;
    };
    if target < podman::OLDEST {
        found.push(
            Diagnostic::new(
                "profile.podman_version",
                format!("berth writes Quadlet units for podman {} or later (NetworkName= and VolumeName=, which keep the names every backend uses); this profile targets {target}", podman::OLDEST),
            )
            .with_hint("upgrade podman on the hosts, or leave Quadlet off and run the compose file"),
        );
        return;
    }
    let too_old = |since: PodmanVersion| target < since;
    for (name, service) in &stack.services {
        if service.entrypoint.is_some() && too_old(podman::ENTRYPOINT) {
            found.push(
                Diagnostic::new(
                    format!("services.{name}.entrypoint"),
                    format!(
                        "Quadlet's Entrypoint= needs podman 5.0; profile `{}` targets {target}",
                        profile.name
                    ),
                )
                .with_hint("set the entrypoint in the image, or target podman 5.0 or later"),
            );
        }
        for (dependency, Dependency { condition, .. }) in &service.depends_on {
            if *condition == Condition::Healthy && too_old(podman::NOTIFY_HEALTHY) {
                found.push(
                    Diagnostic::new(
                        format!("services.{name}.depends_on.{dependency}"),
                        format!("waiting for {dependency} to be healthy needs Notify=healthy (podman 5.0); podman {target} reads it as `no` and would start {name} before {dependency} is healthy"),
                    )
                    .with_hint("target podman 5.0 or later, or wait for `started` if that is enough"),
                );
            }
        }
    }
    for (key, volume) in &stack.volumes {
        if volume.driver.is_some() && !volume.external && too_old(podman::VOLUME_DRIVER) {
            found.push(Diagnostic::new(
                format!("volumes.{key}.driver"),
                format!("Quadlet's Driver= in a volume unit needs podman {}; profile `{}` targets {target}", podman::VOLUME_DRIVER, profile.name),
            ));
        }
    }
}

/// Reports dependency cycles: a depth-first search that marks each service done once all
/// its dependencies are explored, so the whole check is linear in services and edges.
/// Iterative, so a long dependency chain cannot overflow the stack.
fn cycles(stack: &Stack, found: &mut Vec<Diagnostic>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let names: Vec<&str> = stack.services.keys().map(String::as_str).collect();
    let index_of = |name: &str| names.binary_search(&name).ok();
    let mut marks = vec![Mark::New; names.len()];
    let mut reports = Vec::new();
    for root in 0..names.len() {
        if marks[root] != Mark::New {
            continue;
        }
        // Each frame: a service on the current path and the dependencies it has left to visit.
        let mut path: Vec<(usize, Vec<usize>)> =
            vec![(root, dependencies_of(stack, names[root], &index_of))];
        marks[root] = Mark::OnPath;
        while let Some((current, pending)) = path.last_mut() {
            let current = *current;
            let Some(next) = pending.pop() else {
                marks[current] = Mark::Done;
                path.pop();
                continue;
            };
            match marks[next] {
                Mark::Done => {}
                Mark::OnPath => {
                    let at = path
                        .iter()
                        .position(|(service, _)| *service == next)
                        .unwrap_or(0);
                    let cycle: Vec<&str> = path[at..]
                        .iter()
                        .map(|(service, _)| names[*service])
                        .collect();
                    reports.push(cycle_diagnostic(&cycle));
                }
                Mark::New => {
                    marks[next] = Mark::OnPath;
                    path.push((next, dependencies_of(stack, names[next], &index_of)));
                }
            }
        }
    }
    reports.sort_by(|a, b| a.field.cmp(&b.field));
    found.extend(reports);
}

/// Indexes of a service's existing dependencies, in reverse name order (popped in order).
fn dependencies_of(
    stack: &Stack,
    name: &str,
    index_of: &impl Fn(&str) -> Option<usize>,
) -> Vec<usize> {
    // A service that depends on itself is reported by `dependencies`, not as a cycle.
    let mut dependencies: Vec<usize> = stack.services[name]
        .depends_on
        .keys()
        .filter(|d| *d != name)
        .filter_map(|d| index_of(d))
        .collect();
    dependencies.reverse();
    dependencies
}

fn cycle_diagnostic(cycle: &[&str]) -> Diagnostic {
    // Start the cycle at its smallest name, so the message does not depend on search order.
    let start = cycle
        .iter()
        .enumerate()
        .min_by_key(|(_, name)| **name)
        .map_or(0, |(i, _)| i);
    let rotated: Vec<&str> = cycle[start..]
        .iter()
        .chain(&cycle[..start])
        .copied()
        .collect();
    let first = rotated[0];
    let next = rotated.get(1).copied().unwrap_or(first);
    let shown: Vec<&str> = rotated.iter().copied().chain([first]).collect();
    Diagnostic::new(
        format!("services.{first}.depends_on.{next}"),
        format!("dependency cycle: {}", shown.join(" -> ")),
    )
}

/// Two services (or two ports of one) that would bind the same host port.
fn host_port_clashes(stack: &Stack, found: &mut Vec<Diagnostic>) {
    struct Binding<'a> {
        service: &'a str,
        field: String,
        host_ip: &'a str,
        protocol: Protocol,
        first: u16,
        last: u16,
    }
    let mut earlier: Vec<Binding> = Vec::new();
    for (name, service) in &stack.services {
        for (index, port) in service.ports.iter().enumerate() {
            let Some((first, last)) = port.published.as_ref().and_then(host_range) else {
                continue;
            };
            let binding = Binding {
                service: name,
                field: format!("services.{name}.ports[{index}].published"),
                host_ip: port.effective_host_ip(&stack.profile).unwrap_or(""),
                protocol: port.protocol,
                first,
                last,
            };
            let clash = earlier.iter().find(|other| {
                // Services only ever enabled by different Compose profiles never run together.
                let profiles = &stack.services[other.service].compose_profiles;
                let apart = !profiles.is_empty()
                    && !service.compose_profiles.is_empty()
                    && profiles
                        .iter()
                        .all(|p| !service.compose_profiles.contains(p));
                let same_address = other.host_ip.is_empty()
                    || binding.host_ip.is_empty()
                    || other.host_ip == binding.host_ip;
                !apart
                    && same_address
                    && other.protocol == binding.protocol
                    && other.first <= binding.last
                    && binding.first <= other.last
            });
            if let Some(other) = clash {
                let host_port = binding.first.max(other.first);
                found.push(
                    Diagnostic::new(
                        &binding.field,
                        format!(
                            "host port {host_port}/{} is already published by `{}` ({})",
                            binding.protocol, other.service, other.field
                        ),
                    )
                    .with_hint("publish a different host port, or leave this one unpublished"),
                );
            }
            earlier.push(binding);
        }
    }
}

/// First and last host port of a published port.
pub fn host_range(published: &Published) -> Option<(u16, u16)> {
    match published {
        Published::Port(port) => Some((*port, *port)),
        Published::Random => None,
        Published::Range(range) => {
            let range = range.as_literal()?;
            let (first, last) = range.split_once('-')?;
            let (first, last): (u16, u16) = (first.parse().ok()?, last.parse().ok()?);
            (first >= 1 && first <= last).then_some((first, last))
        }
    }
}

fn unknown<'a>(
    field: String,
    kind: &str,
    name: &str,
    known: impl Iterator<Item = &'a String>,
) -> Diagnostic {
    let known: Vec<&str> = known.map(String::as_str).collect();
    let diagnostic = Diagnostic::new(field, format!("unknown {kind} `{name}`"));
    match closest(name, &known) {
        Some(guess) => diagnostic.with_hint(format!("did you mean `{guess}`?")),
        None if known.is_empty() => diagnostic.with_hint(format!("the stack declares no {kind}s")),
        None => diagnostic.with_hint(format!("known {kind}s: {}", known.join(", "))),
    }
}

/// The known name `name` most likely misspells: within edit distance 2 (more for long
/// names), or one of the two a prefix of the other.
pub fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let tolerance = (name.chars().count() / 4).max(2);
    known
        .iter()
        .map(|k| {
            let is_prefix = k.len() >= 3 && (name.starts_with(k) || k.starts_with(name));
            (if is_prefix { 1 } else { edit_distance(name, k) }, *k)
        })
        .filter(|(distance, _)| *distance <= tolerance)
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::stack as validate;
    use crate::model::Stack;

    /// A stack of services with only the given dependencies (name -> [dependency, ...]).
    fn with_dependencies(edges: &[(&str, &[&str])]) -> Stack {
        let services: serde_json::Map<String, serde_json::Value> = edges
            .iter()
            .map(|(name, deps)| {
                let depends_on: serde_json::Map<String, serde_json::Value> = deps
                    .iter()
                    .map(|d| (d.to_string(), "started".into()))
                    .collect();
                (
                    name.to_string(),
                    serde_json::json!({ "image": "x", "depends_on": depends_on }),
                )
            })
            .collect();
        let profile = serde_json::json!({
            "name": "t", "description": "t", "debug": false, "log_level": "info", "production": true, "dev_secrets": false,
            "systemd": false, "quadlet": false, "metrics": false, "alerting": false, "scrape_interval": "15s",
            "evaluation_interval": "15s", "install_root": "/opt", "backup_root": "/var/backups",
        });
        serde_json::from_value(
            serde_json::json!({ "name": "t", "profile": profile, "services": services }),
        )
        .unwrap()
    }

    fn check(edges: &[(&str, &[&str])], expect: &[&str]) {
        let messages: Vec<String> = validate(&with_dependencies(edges))
            .into_iter()
            .map(|d| d.message)
            .collect();
        assert_eq!(messages, expect);
    }

    #[test]
    fn diamond_is_no_cycle() {
        check(
            &[("a", &["b", "c"]), ("b", &["d"]), ("c", &["d"]), ("d", &[])],
            &[],
        );
    }

    #[test]
    fn each_cycle_is_reported_once_from_its_smallest_name() {
        check(
            &[
                ("x", &["y"]),
                ("y", &["z"]),
                ("z", &["x"]),
                ("p", &["q"]),
                ("q", &["p"]),
                ("free", &["x"]),
            ],
            &[
                "dependency cycle: p -> q -> p",
                "dependency cycle: x -> y -> z -> x",
            ],
        );
    }

    #[test]
    fn self_dependency_is_one_problem() {
        check(&[("a", &["a"])], &["a service cannot depend on itself"]);
    }

    /// Each service depends on the two before it: exponential for a naive search.
    #[test]
    fn long_dependency_chains_are_checked_quickly() {
        let names: Vec<String> = (0..2000).map(|i| format!("s{i:04}")).collect();
        let deps: Vec<Vec<&str>> = (0..names.len())
            .map(|i| {
                names[i.saturating_sub(2)..i]
                    .iter()
                    .map(String::as_str)
                    .collect()
            })
            .collect();
        let edges: Vec<(&str, &[&str])> = names
            .iter()
            .map(String::as_str)
            .zip(deps.iter().map(Vec::as_slice))
            .collect();
        check(&edges, &[]);
    }
}
