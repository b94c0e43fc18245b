//! Renders Kubernetes manifests for `kubectl apply -k`: a kustomization, the namespace, one
//! multi-document file per service, and `secrets.env` listing (empty) every secret for the
//! kustomize secretGenerator. Pure; built from typed `k8s_openapi` objects.
//!
//! Translations, each said in the manifests where it applies:
//! - environment: literal values go to a per-service ConfigMap; a value that reads stack
//!   variables gets them as `env` entries (secrets and required variables from the
//!   `<stack>-secrets` Secret, the rest from the `<stack>-variables` ConfigMap) and
//!   composes them with Kubernetes' own `$(VAR)` expansion;
//! - workloads: a one-shot job that others wait to complete is a Job; a service with a
//!   backup (or `kubernetes.stateful`) is a StatefulSet with a claim per replica for the
//!   volumes only it uses; everything else is a Deployment;
//! - `depends_on` becomes init containers that wait until the dependency's Service
//!   answers (a Service routes only to ready pods, so this also waits for health);
//! - volumes are PersistentVolumeClaims; bind mounts of folders berth generates (e.g.
//!   `./prometheus`) are ConfigMaps; other bind mounts become hostPath only when the module
//!   says `host_path = true`, and are otherwise left out and listed in the manifest.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget,
    ResourceMetricSource,
};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapEnvSource, ConfigMapKeySelector, ConfigMapVolumeSource,
    Container, ContainerPort, EmptyDirVolumeSource, EnvFromSource, EnvVar, EnvVarSource,
    ExecAction, HTTPGetAction, HostPathVolumeSource, KeyToPath, Namespace, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SecretKeySelector, SecurityContext,
    Service as KService, ServicePort, ServiceSpec, Volume as KVolume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress as KIngress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use super::yaml::to_yaml;
use super::{Artifact, RenderError, alertmanager, grafana, header, prometheus};
use crate::model::text::{self, Piece};
use crate::model::{
    Autoscaling, Command, Condition, HealthTest, Healthcheck, Ingress, MountKind, Port,
    ScalePolicy, Service, Stack, Variable,
};

pub const DIR: &str = "k8s";
const SECRETS_FILE: &str = "secrets.env";
const WAIT_IMAGE: &str = "busybox:1.36";

/// The manifests of `stack`.
///
/// # Errors
/// Only if the YAML serializer fails.
pub fn k8s(stack: &Stack) -> Result<Vec<Artifact>, RenderError> {
    let ctx = Context::new(stack)?;
    let mut files: Vec<(String, String)> = vec![(
        "namespace.yaml".to_string(),
        documents(&[yaml(&namespace(&ctx))?])?,
    )];
    if let Some(variables) = variables_config_map(&ctx) {
        files.push(("variables.yaml".to_string(), yaml(&variables)?));
    }
    for (name, service) in &stack.services {
        files.push((
            format!("{}.yaml", k8s_name(name)),
            service_manifests(&ctx, name, service)?,
        ));
    }
    let has_secrets = ctx.secret_variables().next().is_some();
    let mut artifacts: Vec<Artifact> = files
        .iter()
        .map(|(file, body)| artifact(stack, file, format!("{}{body}", header(stack, "#"))))
        .collect();
    if has_secrets {
        artifacts.push(artifact(stack, SECRETS_FILE, secrets_env(&ctx)));
    }
    let resources: Vec<String> = files.iter().map(|(file, _)| file.clone()).collect();
    artifacts.push(artifact(
        stack,
        "kustomization.yaml",
        kustomization(&ctx, resources, has_secrets)?,
    ));
    Ok(artifacts)
}

fn artifact(_stack: &Stack, file: &str, contents: String) -> Artifact {
    Artifact {
        path: PathBuf::from(DIR).join(file),
        contents,
    }
}

/// What every manifest of one stack shares.
struct Context<'a> {
    stack: &'a Stack,
    namespace: String,
    /// Services others wait on to complete: rendered as Jobs.
    jobs: BTreeSet<&'a str>,
    /// Volume name -> the services that mount it.
    volume_users: BTreeMap<&'a str, Vec<&'a str>>,
    /// Folder (as mounted, e.g. "./prometheus") -> generated files below it (path inside it -> text).
    generated: BTreeMap<String, BTreeMap<String, String>>,
}

impl<'a> Context<'a> {
    fn new(stack: &'a Stack) -> Result<Self, RenderError> {
        let mut jobs = BTreeSet::new();
        for service in stack.services.values() {
            for (dependency, condition) in &service.depends_on {
                let is_job = stack
                    .services
                    .get(dependency)
                    .is_some_and(|d| d.restart.as_deref() == Some("no"));
                if *condition == Condition::Completed && is_job {
                    jobs.insert(dependency.as_str());
                }
            }
        }
        let mut volume_users: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, service) in &stack.services {
            for mount in service
                .volumes
                .iter()
                .filter(|m| m.kind == MountKind::Volume)
            {
                if let Some(source) = &mount.source {
                    let users = volume_users.entry(source.as_str()).or_default();
                    if !users.contains(&name.as_str()) {
                        users.push(name);
                    }
                }
            }
        }
        let mut generated: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let config_artifacts = [
            prometheus::prometheus(stack)?,
            alertmanager::alertmanager(stack)?,
            grafana::grafana(stack)?,
        ];
        for artifact in config_artifacts.into_iter().flatten() {
            let path = artifact.path.to_string_lossy().into_owned();
            for dir in [prometheus::DIR, alertmanager::DIR, grafana::DIR] {
                if let Some(inside) = path.strip_prefix(&format!("{dir}/")) {
                    generated
                        .entry(format!("./{dir}"))
                        .or_default()
                        .insert(inside.to_string(), artifact.contents.clone());
                }
            }
        }
        let namespace = stack
            .namespace
            .clone()
            .unwrap_or_else(|| stack.name.clone());
        Ok(Context {
            stack,
            namespace,
            jobs,
            volume_users,
            generated,
        })
    }

    fn secret_variables(&self) -> impl Iterator<Item = (&'a String, &'a Variable)> {
        self.stack
            .variables
            .iter()
            .filter(|(_, variable)| from_secret(variable))
    }

    fn meta(&self, name: &str, service: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels(service)),
            ..ObjectMeta::default()
        }
    }

    /// The recommended `app.kubernetes.io/*` labels.
    fn labels(&self, service: &str) -> BTreeMap<String, String> {
        let mut labels = self.selector(service);
        labels.insert(
            "app.kubernetes.io/part-of".to_string(),
            self.stack.name.clone(),
        );
        labels.insert(
            "app.kubernetes.io/managed-by".to_string(),
            "berth".to_string(),
        );
        labels
    }

    fn selector(&self, service: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_string(), k8s_name(service)),
            (
                "app.kubernetes.io/instance".to_string(),
                format!("{}-{}", self.stack.name, self.stack.profile.name),
            ),
        ])
    }

    fn secret_name(&self) -> String {
        format!("{}-secrets", self.stack.name)
    }

    fn variables_name(&self) -> String {
        format!("{}-variables", self.stack.name)
    }
}

/// Secrets, and variables with no default, come from the operator's secrets.env.
fn from_secret(variable: &Variable) -> bool {
    variable.secret || variable.default.is_none()
}

fn namespace(ctx: &Context) -> Namespace {
    let mut meta = ctx.meta(&ctx.namespace, &ctx.stack.name);
    meta.namespace = None;
    Namespace {
        metadata: meta,
        ..Namespace::default()
    }
}

fn variables_config_map(ctx: &Context) -> Option<ConfigMap> {
    let data: BTreeMap<String, String> = ctx
        .stack
        .variables
        .iter()
        .filter_map(|(name, variable)| {
            variable
                .default
                .clone()
                .filter(|_| !from_secret(variable))
                .map(|v| (name.clone(), v))
        })
        .collect();
    (!data.is_empty()).then(|| ConfigMap {
        metadata: ctx.meta(&ctx.variables_name(), &ctx.stack.name),
        data: Some(data),
        ..ConfigMap::default()
    })
}

fn secrets_env(ctx: &Context) -> String {
    let mut out = header(ctx.stack, "#");
    out.push_str(
        "# Fill in before `kubectl apply -k .`: the secretGenerator in kustomization.yaml\n",
    );
    out.push_str(
        "# turns this file into the Secret the pods read. See ../.env.template for each one.\n",
    );
    for (name, _) in ctx.secret_variables() {
        out.push_str(&format!("{name}=\n"));
    }
    out
}

#[derive(Serialize)]
struct Kustomization {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    namespace: String,
    resources: Vec<String>,
    #[serde(rename = "secretGenerator", skip_serializing_if = "Vec::is_empty")]
    secret_generator: Vec<SecretGenerator>,
}

#[derive(Serialize)]
struct SecretGenerator {
    name: String,
    envs: Vec<String>,
}

fn kustomization(
    ctx: &Context,
    resources: Vec<String>,
    has_secrets: bool,
) -> Result<String, RenderError> {
    let kustomization = Kustomization {
        api_version: "kustomize.config.k8s.io/v1beta1",
        kind: "Kustomization",
        namespace: ctx.namespace.clone(),
        resources,
        secret_generator: if has_secrets {
            vec![SecretGenerator {
                name: ctx.secret_name(),
                envs: vec![SECRETS_FILE.to_string()],
            }]
        } else {
            Vec::new()
        },
    };
    Ok(format!(
        "{}{}",
        header(ctx.stack, "#"),
        to_yaml("kustomization.yaml", &kustomization)?
    ))
}

// -- one service ----------------------------------------------------------------------------

/// The documents of one service, with a leading comment for whatever it could not keep.
fn service_manifests(ctx: &Context, name: &str, service: &Service) -> Result<String, RenderError> {
    let mut notes = Vec::new();
    let mut docs = Vec::new();
    let env = environment(ctx, name, service);
    if let Some(config_map) = &env.config_map {
        docs.push(yaml(config_map)?);
    }
    let (pod, storage) = pod_template(ctx, name, service, &env, &mut notes);
    for config_map in &storage.config_maps {
        docs.push(yaml(config_map)?);
    }
    for claim in &storage.claims {
        docs.push(yaml(claim)?);
    }
    let claims = storage.claim_templates;
    let is_job = ctx.jobs.contains(name);
    let replicas =
        i32::try_from(service.kubernetes.replicas.unwrap_or(service.replicas)).unwrap_or(i32::MAX);
    let stateful = service
        .kubernetes
        .stateful
        .unwrap_or(service.backup.is_some());
    let selector = LabelSelector {
        match_labels: Some(ctx.selector(name)),
        ..LabelSelector::default()
    };
    let k8s = k8s_name(name);
    let kind = if is_job {
        docs.push(yaml(&Job {
            metadata: ctx.meta(&k8s, name),
            spec: Some(JobSpec {
                backoff_limit: Some(4),
                template: pod,
                ..JobSpec::default()
            }),
            ..Job::default()
        })?);
        "Job"
    } else if stateful {
        docs.push(yaml(&StatefulSet {
            metadata: ctx.meta(&k8s, name),
            spec: Some(StatefulSetSpec {
                replicas: Some(replicas),
                selector,
                service_name: Some(k8s.clone()),
                template: pod,
                volume_claim_templates: (!claims.is_empty()).then_some(claims),
                ..StatefulSetSpec::default()
            }),
            ..StatefulSet::default()
        })?);
        "StatefulSet"
    } else {
        docs.push(yaml(&Deployment {
            metadata: ctx.meta(&k8s, name),
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                selector,
                template: pod,
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        })?);
        "Deployment"
    };
    if !is_job && !service.ports.is_empty() {
        docs.push(yaml(&service_object(ctx, name, service))?);
    }
    if let Some(autoscaling) = &service.kubernetes.autoscaling {
        docs.push(yaml(&autoscaler(ctx, name, kind, autoscaling))?);
    }
    if let Some(ingress) = &service.kubernetes.ingress {
        docs.push(yaml(&ingress_object(ctx, name, service, ingress))?);
    }
    let min_replicas = service
        .kubernetes
        .autoscaling
        .as_ref()
        .map_or(replicas, |a| i32::try_from(a.min).unwrap_or(i32::MAX));
    if !is_job && min_replicas > 1 {
        docs.push(yaml(&PodDisruptionBudget {
            metadata: ctx.meta(&k8s, name),
            spec: Some(PodDisruptionBudgetSpec {
                min_available: Some(IntOrString::Int(1)),
                selector: Some(LabelSelector {
                    match_labels: Some(ctx.selector(name)),
                    ..LabelSelector::default()
                }),
                ..PodDisruptionBudgetSpec::default()
            }),
            ..PodDisruptionBudget::default()
        })?);
    }
    let comment: String = notes.iter().map(|note| format!("# {note}\n")).collect();
    Ok(format!("{comment}{}", documents(&docs)?))
}

/// Environment split into what a ConfigMap can carry and what needs `env` entries.
struct Environment {
    config_map: Option<ConfigMap>,
    /// `env` entries: variable sources first (sorted), then values composed from them.
    entries: Vec<EnvVar>,
}

fn environment(ctx: &Context, name: &str, service: &Service) -> Environment {
    let mut literal = BTreeMap::new();
    let mut composed = Vec::new();
    let mut sources: BTreeSet<String> = BTreeSet::new();
    for (key, value) in &service.environment {
        let pieces = text::parse(value).unwrap_or_else(|_| vec![Piece::Text(value.clone())]);
        let references: Vec<&String> = pieces
            .iter()
            .filter_map(|p| if let Piece::Var(v) = p { Some(v) } else { None })
            .collect();
        match (references.as_slice(), pieces.len()) {
            ([], _) => {
                literal.insert(key.clone(), text_of(&pieces));
            }
            ([variable], 1) if *variable == key => {
                sources.insert(key.clone());
            }
            _ => {
                sources.extend(references.into_iter().cloned());
                composed.push(EnvVar {
                    name: key.clone(),
                    value: Some(expand(&pieces)),
                    ..EnvVar::default()
                });
            }
        }
    }
    for command in [&service.command, &service.entrypoint]
        .into_iter()
        .flatten()
    {
        let words = match command {
            Command::Shell(line) => vec![line.as_str()],
            Command::Exec(args) => args.iter().map(String::as_str).collect(),
        };
        sources.extend(words.into_iter().flat_map(text::references));
    }
    let mut entries: Vec<EnvVar> = sources
        .iter()
        .map(|variable| variable_source(ctx, variable))
        .collect();
    entries.extend(composed);
    let config_map = (!literal.is_empty()).then(|| ConfigMap {
        metadata: ctx.meta(&format!("{}-env", k8s_name(name)), name),
        data: Some(literal),
        ..ConfigMap::default()
    });
    Environment {
        config_map,
        entries,
    }
}

fn variable_source(ctx: &Context, variable: &str) -> EnvVar {
    let is_secret = ctx.stack.variables.get(variable).is_none_or(from_secret);
    let value_from = if is_secret {
        EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: ctx.secret_name(),
                key: variable.to_string(),
                ..SecretKeySelector::default()
            }),
            ..EnvVarSource::default()
        }
    } else {
        EnvVarSource {
            config_map_key_ref: Some(ConfigMapKeySelector {
                name: ctx.variables_name(),
                key: variable.to_string(),
                ..ConfigMapKeySelector::default()
            }),
            ..EnvVarSource::default()
        }
    };
    EnvVar {
        name: variable.to_string(),
        value_from: Some(value_from),
        ..EnvVar::default()
    }
}

/// Literal text, as a ConfigMap value (no expansion happens there).
fn text_of(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|piece| match piece {
            Piece::Text(t) => t.clone(),
            Piece::Var(v) => format!("${{{v}}}"),
        })
        .collect()
}

/// Text for an `env` value or a command word: references become `$(VAR)`, and a literal
/// `$(` is escaped as `$$(` so Kubernetes leaves it alone.
fn expand(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|piece| match piece {
            Piece::Text(t) => t.replace("$(", "$$("),
            Piece::Var(v) => format!("$({v})"),
        })
        .collect()
}

fn expand_text(value: &str) -> String {
    expand(&text::parse(value).unwrap_or_else(|_| vec![Piece::Text(value.to_string())]))
}

/// The pod template, and what its storage needs besides (claims, config maps).
fn pod_template(
    ctx: &Context,
    name: &str,
    service: &Service,
    env: &Environment,
    notes: &mut Vec<String>,
) -> (PodTemplateSpec, Storage) {
    let stateful = service
        .kubernetes
        .stateful
        .unwrap_or(service.backup.is_some())
        && !ctx.jobs.contains(name);
    let mut storage = storage(ctx, name, service, stateful, notes);
    let volumes = std::mem::take(&mut storage.volumes);
    let container = main_container(ctx, name, service, env, std::mem::take(&mut storage.mounts));
    let init_containers = waits(ctx, name, service, notes);
    let (run_as_user, run_as_group) = numeric_user(service.user.as_deref());
    let non_root = service.kubernetes.run_as_non_root;
    let security = (non_root || run_as_user.is_some()).then(|| PodSecurityContext {
        run_as_non_root: non_root.then_some(true),
        run_as_user,
        run_as_group,
        ..PodSecurityContext::default()
    });
    let is_job = ctx.jobs.contains(name);
    let spec = PodSpec {
        containers: vec![container],
        init_containers: (!init_containers.is_empty()).then_some(init_containers),
        volumes: (!volumes.is_empty()).then_some(volumes),
        security_context: security,
        restart_policy: is_job.then(|| "OnFailure".to_string()),
        termination_grace_period_seconds: service
            .stop_grace_period
            .as_deref()
            .map(|d| i64::from(seconds(d))),
        ..PodSpec::default()
    };
    let template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(ctx.labels(name)),
            ..ObjectMeta::default()
        }),
        spec: Some(spec),
    };
    (template, storage)
}

fn main_container(
    ctx: &Context,
    name: &str,
    service: &Service,
    env: &Environment,
    mounts: Vec<VolumeMount>,
) -> Container {
    let built = service.image.is_none();
    let image = service
        .image
        .clone()
        .unwrap_or_else(|| format!("{}-{name}:latest", ctx.stack.name));
    let words = |command: &Command| -> Vec<String> {
        match command {
            Command::Exec(args) => args.iter().map(|a| expand_text(a)).collect(),
            Command::Shell(line) => match shell_words::split(line) {
                Ok(words) => words.iter().map(|w| expand_text(w)).collect(),
                Err(_) => vec!["sh".to_string(), "-c".to_string(), expand_text(line)],
            },
        }
    };
    let healthcheck = service.healthcheck.as_ref();
    let mut liveness = healthcheck.map(probe);
    if let (Some(probe), Some(start)) = (
        liveness.as_mut(),
        healthcheck.and_then(|h| h.start_period.as_deref()),
    ) {
        probe.initial_delay_seconds = Some(seconds(start));
    }
    Container {
        name: k8s_name(name),
        image: Some(image),
        image_pull_policy: built.then(|| "IfNotPresent".to_string()),
        command: service.entrypoint.as_ref().map(words),
        args: service.command.as_ref().map(words),
        working_dir: service.working_dir.clone(),
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
        readiness_probe: healthcheck.map(probe),
        liveness_probe: liveness,
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        security_context: container_security(service),
        ..Container::default()
    }
}

fn container_security(service: &Service) -> Option<SecurityContext> {
    let capabilities =
        (!service.cap_add.is_empty() || !service.cap_drop.is_empty()).then(|| Capabilities {
            add: (!service.cap_add.is_empty()).then(|| service.cap_add.clone()),
            drop: (!service.cap_drop.is_empty()).then(|| service.cap_drop.clone()),
        });
    let non_root = service.kubernetes.run_as_non_root;
    let context = SecurityContext {
        privileged: service.privileged.filter(|p| *p),
        read_only_root_filesystem: service.read_only.filter(|r| *r),
        allow_privilege_escalation: non_root.then_some(false),
        capabilities,
        ..SecurityContext::default()
    };
    (context != SecurityContext::default()).then_some(context)
}

fn numeric_user(user: Option<&str>) -> (Option<i64>, Option<i64>) {
    let Some(user) = user else {
        return (None, None);
    };
    let (uid, gid) = user
        .split_once(':')
        .map_or((user, None), |(u, g)| (u, Some(g)));
    (uid.parse().ok(), gid.and_then(|g| g.parse().ok()))
}

fn container_port(port: &Port) -> ContainerPort {
    ContainerPort {
        container_port: i32::from(port.target),
        name: Some(port_name(port)),
        protocol: Some(port.protocol.to_uppercase()),
        ..ContainerPort::default()
    }
}

/// A valid IANA service name (at most 15 characters, lower-case letters, digits, '-').
fn port_name(port: &Port) -> String {
    let fallback = format!("{}-{}", port.protocol, port.target);
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

fn resources(service: &Service) -> Option<ResourceRequirements> {
    let set = |cpus: Option<f64>, memory: &Option<String>| {
        let mut map = BTreeMap::new();
        if let Some(cpus) = cpus {
            map.insert("cpu".to_string(), Quantity(millicores(cpus)));
        }
        if let Some(memory) = memory {
            map.insert("memory".to_string(), Quantity(binary_quantity(memory)));
        }
        (!map.is_empty()).then_some(map)
    };
    let limits = set(
        service.resources.limits.cpus,
        &service.resources.limits.memory,
    );
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

fn millicores(cpus: f64) -> String {
    format!("{}m", (cpus * 1000.0).round() as u64)
}

/// Docker sizes ("512M", "8G": binary units) as Kubernetes quantities ("512Mi", "8Gi").
pub fn binary_quantity(size: &str) -> String {
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

fn probe(healthcheck: &Healthcheck) -> Probe {
    let Healthcheck {
        test,
        interval,
        timeout,
        retries,
        start_period: _,
    } = healthcheck;
    let mut probe = Probe {
        period_seconds: Some(seconds(interval)),
        timeout_seconds: Some(seconds(timeout)),
        failure_threshold: Some(i32::try_from(*retries).unwrap_or(i32::MAX).max(1)),
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
        HealthTest::Exec(args) => {
            probe.exec = Some(ExecAction {
                command: Some(args.iter().map(|a| plain_text(a)).collect()),
            });
        }
        HealthTest::Shell(line) => {
            probe.exec = Some(ExecAction {
                command: Some(vec!["sh".to_string(), "-c".to_string(), plain_text(line)]),
            });
        }
    }
    probe
}

/// Text for a place Kubernetes does not expand: a variable reads the container's own
/// environment through the shell (`${VAR}`), a literal `$` stays itself.
fn plain_text(value: &str) -> String {
    text_of(&text::parse(value).unwrap_or_else(|_| vec![Piece::Text(value.to_string())]))
}

/// Whole seconds of a duration such as "1m30s" or "500ms" (at least 1).
pub fn seconds(duration: &str) -> i32 {
    let mut total_ms: u64 = 0;
    let mut number = String::new();
    let mut chars = duration.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if let Some(&next) = chars.peek().filter(|n| n.is_ascii_alphabetic()) {
            unit.push(next);
            chars.next();
        }
        let value: f64 = number.parse().unwrap_or(0.0);
        number.clear();
        let ms = match unit.as_str() {
            "h" => value * 3_600_000.0,
            "m" => value * 60_000.0,
            "s" => value * 1000.0,
            "ms" => value,
            _ => 0.0,
        };
        total_ms += ms as u64;
    }
    i32::try_from(total_ms.div_ceil(1000).max(1)).unwrap_or(i32::MAX)
}

/// What a service's storage turns into.
#[derive(Default)]
struct Storage {
    volumes: Vec<KVolume>,
    mounts: Vec<VolumeMount>,
    /// Claims per replica (StatefulSet).
    claim_templates: Vec<PersistentVolumeClaim>,
    /// Standalone claims and config maps this service's manifest carries.
    claims: Vec<PersistentVolumeClaim>,
    config_maps: Vec<ConfigMap>,
}

/// Volumes and mounts of a service, with the claims and config maps they need.
fn storage(
    ctx: &Context,
    name: &str,
    service: &Service,
    stateful: bool,
    notes: &mut Vec<String>,
) -> Storage {
    let mut config_maps = Vec::new();
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    let mut claim_templates = Vec::new();
    let mut claims = Vec::new();
    for (index, mount) in service.volumes.iter().enumerate() {
        let volume_name = match (&mount.kind, &mount.source) {
            (MountKind::Volume, Some(source)) => k8s_name(source),
            _ => format!("{}-{index}", mount_kind_name(mount.kind)),
        };
        let mut volume = KVolume {
            name: volume_name.clone(),
            ..KVolume::default()
        };
        match (&mount.kind, &mount.source) {
            (MountKind::Volume, Some(source)) => {
                let shared = ctx
                    .volume_users
                    .get(source.as_str())
                    .is_some_and(|users| users.len() > 1);
                let claim = claim(ctx, source, name);
                if stateful && !shared {
                    claim_templates.push(claim);
                    mounts.push(mount_of(&volume_name, &mount.target, mount.read_only));
                    continue;
                }
                // A shared claim is written once, with the first service (by name) that mounts it.
                if ctx
                    .volume_users
                    .get(source.as_str())
                    .and_then(|users| users.first())
                    == Some(&name)
                {
                    claims.push(claim);
                }
                volume.persistent_volume_claim = Some(PersistentVolumeClaimVolumeSource {
                    claim_name: k8s_name(source),
                    read_only: mount.read_only.then_some(true),
                });
            }
            (MountKind::Bind, Some(source))
                if ctx.generated.contains_key(source.trim_end_matches('/')) =>
            {
                let files = &ctx.generated[source.trim_end_matches('/')];
                let map_name = format!(
                    "{}-{}",
                    k8s_name(name),
                    k8s_name(source.trim_start_matches("./"))
                );
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
                volume.host_path = Some(HostPathVolumeSource {
                    path: source.clone(),
                    ..HostPathVolumeSource::default()
                });
            }
            (MountKind::Bind, source) => {
                notes.push(format!(
                    "Not mounted on Kubernetes: bind mount {} -> {} (a host folder; modules mark host agents' absolute paths `host_path = true` to mount them as hostPath).",
                    source.as_deref().unwrap_or("?"),
                    mount.target
                ));
                continue;
            }
            (MountKind::Tmpfs, _) | (MountKind::Volume, None) => {
                volume.empty_dir = Some(EmptyDirVolumeSource {
                    medium: Some("Memory".to_string()),
                    ..EmptyDirVolumeSource::default()
                });
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

fn mount_kind_name(kind: MountKind) -> &'static str {
    match kind {
        MountKind::Volume => "volume",
        MountKind::Bind => "bind",
        MountKind::Tmpfs => "tmpfs",
    }
}

fn mount_of(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_string(),
        mount_path: path.to_string(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

/// Whether pods of more than one replica or service mount `volume` (from a shared claim).
fn mounted_by_several_pods(ctx: &Context, volume: &str) -> bool {
    let users = ctx
        .volume_users
        .get(volume)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let replicas_of = |name: &&str| {
        let service = &ctx.stack.services[*name];
        let autoscaled = service
            .kubernetes
            .autoscaling
            .as_ref()
            .is_some_and(|a| a.max > 1);
        if autoscaled {
            2
        } else {
            service.kubernetes.replicas.unwrap_or(service.replicas)
        }
    };
    users.len() > 1 || users.iter().map(replicas_of).sum::<u32>() > 1
}

fn claim(ctx: &Context, volume: &str, service: &str) -> PersistentVolumeClaim {
    let declared = ctx.stack.volumes.get(volume);
    // One claim mounted by several pods needs ReadWriteMany (and a storage class that offers
    // it, e.g. NFS); ReadWriteOnce would only work while every pod lands on one node.
    let access_mode = if mounted_by_several_pods(ctx, volume) {
        "ReadWriteMany"
    } else {
        "ReadWriteOnce"
    };
    let size = declared.map_or_else(|| "1G".to_string(), |v| v.size.clone());
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
fn config_key(path: &str) -> String {
    path.replace('/', "_")
}

/// Init containers that hold the pod until each dependency's Service answers.
fn waits(ctx: &Context, name: &str, service: &Service, notes: &mut Vec<String>) -> Vec<Container> {
    let mut containers = Vec::new();
    for (dependency, condition) in &service.depends_on {
        let Some(target) = ctx.stack.services.get(dependency) else {
            continue;
        };
        if ctx.jobs.contains(dependency.as_str()) {
            notes.push(format!(
                "{name} waits for job {dependency} to complete under Compose; on Kubernetes the Job runs alongside and {name} must tolerate its absence until it has."
            ));
            continue;
        }
        let Some(port) = target.ports.first() else {
            notes.push(format!("{name} depends on {dependency} ({condition:?}), which serves no port: nothing to wait on, so it is not gated."));
            continue;
        };
        let host = k8s_name(dependency);
        containers.push(Container {
            name: format!("wait-for-{host}"),
            image: Some(WAIT_IMAGE.to_string()),
            command: Some(vec![
                "sh".to_string(),
                "-c".to_string(),
                format!(
                    "until nc -z -w 2 {host} {port}; do echo waiting for {host}; sleep 2; done",
                    port = port.target
                ),
            ]),
            ..Container::default()
        });
    }
    containers
}

fn service_object(ctx: &Context, name: &str, service: &Service) -> KService {
    KService {
        metadata: ctx.meta(&k8s_name(name), name),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_string()),
            selector: Some(ctx.selector(name)),
            ports: Some(
                service
                    .ports
                    .iter()
                    .map(|port| ServicePort {
                        name: Some(port_name(port)),
                        port: i32::from(port.target),
                        target_port: Some(IntOrString::Int(i32::from(port.target))),
                        protocol: Some(port.protocol.to_uppercase()),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        ..KService::default()
    }
}

fn autoscaler(
    ctx: &Context,
    name: &str,
    kind: &str,
    autoscaling: &Autoscaling,
) -> HorizontalPodAutoscaler {
    let Autoscaling {
        min,
        max,
        cpu_percent,
        memory_percent,
        scale_up,
        scale_down,
    } = autoscaling;
    let metric = |resource: &str, percent: u32| MetricSpec {
        type_: "Resource".to_string(),
        resource: Some(ResourceMetricSource {
            name: resource.to_string(),
            target: MetricTarget {
                type_: "Utilization".to_string(),
                average_utilization: Some(i32::try_from(percent).unwrap_or(i32::MAX)),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    };
    let mut metrics = Vec::new();
    metrics.extend(cpu_percent.map(|p| metric("cpu", p)));
    metrics.extend(memory_percent.map(|p| metric("memory", p)));
    let behavior =
        (scale_up.is_some() || scale_down.is_some()).then(|| HorizontalPodAutoscalerBehavior {
            scale_up: scale_up.as_ref().map(scaling_rules),
            scale_down: scale_down.as_ref().map(scaling_rules),
        });
    HorizontalPodAutoscaler {
        metadata: ctx.meta(&k8s_name(name), name),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_string()),
                kind: kind.to_string(),
                name: k8s_name(name),
            },
            min_replicas: Some(i32::try_from(*min).unwrap_or(i32::MAX)),
            max_replicas: i32::try_from(*max).unwrap_or(i32::MAX),
            metrics: (!metrics.is_empty()).then_some(metrics),
            behavior,
        }),
        ..HorizontalPodAutoscaler::default()
    }
}

/// Percent and pod policies per period; with both, the stricter one (`Min`) applies.
fn scaling_rules(policy: &ScalePolicy) -> HPAScalingRules {
    let ScalePolicy {
        percent,
        pods,
        period,
    } = policy;
    let period_seconds = seconds(period);
    let mut policies = Vec::new();
    if let Some(percent) = percent {
        policies.push(HPAScalingPolicy {
            type_: "Percent".to_string(),
            value: i32::try_from(*percent).unwrap_or(i32::MAX),
            period_seconds,
        });
    }
    if let Some(pods) = pods {
        policies.push(HPAScalingPolicy {
            type_: "Pods".to_string(),
            value: i32::try_from(*pods).unwrap_or(i32::MAX),
            period_seconds,
        });
    }
    let both = policies.len() > 1;
    HPAScalingRules {
        policies: Some(policies),
        select_policy: both.then(|| "Min".to_string()),
        ..HPAScalingRules::default()
    }
}

fn ingress_object(ctx: &Context, name: &str, service: &Service, ingress: &Ingress) -> KIngress {
    let Ingress {
        host,
        path,
        port,
        tls,
        issuer,
        class,
    } = ingress;
    let port = port
        .or_else(|| service.ports.first().map(|p| p.target))
        .unwrap_or(80);
    let mut meta = ctx.meta(&k8s_name(name), name);
    if *tls {
        meta.annotations = Some(BTreeMap::from([(
            "cert-manager.io/cluster-issuer".to_string(),
            issuer.clone(),
        )]));
    }
    KIngress {
        metadata: meta,
        spec: Some(IngressSpec {
            ingress_class_name: class.clone(),
            rules: Some(vec![IngressRule {
                host: Some(host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some(path.clone()),
                        path_type: "Prefix".to_string(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: k8s_name(name),
                                port: Some(ServiceBackendPort {
                                    number: Some(i32::from(port)),
                                    ..ServiceBackendPort::default()
                                }),
                            }),
                            ..IngressBackend::default()
                        },
                    }],
                }),
            }]),
            tls: tls.then(|| {
                vec![IngressTLS {
                    hosts: Some(vec![host.clone()]),
                    secret_name: Some(format!("{}-tls", k8s_name(name))),
                }]
            }),
            ..IngressSpec::default()
        }),
        ..KIngress::default()
    }
}

/// A name Kubernetes accepts (DNS-1123): lower case, '-' instead of '_' and '/', no dots.
fn k8s_name(name: &str) -> String {
    name.to_ascii_lowercase()
        .replace(['_', '/', '.'], "-")
        .trim_matches('-')
        .to_string()
}

fn yaml<T: Serialize>(value: &T) -> Result<String, RenderError> {
    to_yaml("kubernetes manifest", value)
}

fn documents(docs: &[String]) -> Result<String, RenderError> {
    Ok(docs.join("---\n"))
}
