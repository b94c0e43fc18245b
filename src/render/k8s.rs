//! Renders Kubernetes manifests for `kubectl apply -k`: a kustomization, the namespace, one
//! multi-document file per service, and `secrets.env` listing (empty) every secret for the
//! kustomize secretGenerator (a secret read from a file: a file the generator reads from
//! `secrets/`, which secrets.env names). Pure; built from typed `k8s_openapi` objects.
//!
//! Translations, each said in the manifests where it applies:
//! - environment: literal values go to a per-service ConfigMap; a value that reads stack
//!   variables gets them as `env` entries (secrets and required variables from the
//!   `<stack>-secrets` Secret, the rest from the `<stack>-variables` ConfigMap) and
//!   composes them with Kubernetes' own `$(VAR)` expansion;
//! - workloads: a one-shot job that others wait to complete is a Job, named after a digest
//!   of its pod template and reading an unhashed copy of the Secret, because a Job's
//!   template is immutable (a changed Job is a new Job; a rotated secret changes none); a service with a
//!   backup (or `kubernetes.stateful`) is a StatefulSet with a claim per replica for the
//!   volumes only it uses; a host agent (a `host_path` mount) or a `global` service is a DaemonSet; everything
//!   else is a Deployment;
//! - a service with `kubernetes.sidecar_of` is a native side-car in each pod of that other
//!   service (module `sidecar`): volumes only the two use are emptyDirs of the pod;
//! - `depends_on` becomes init containers that wait until the dependency's Service
//!   answers (a Service routes only to ready pods, so this also waits for health);
//! - volumes are PersistentVolumeClaims; bind mounts of folders berth generates (e.g.
//!   `./prometheus`) are ConfigMaps; other bind mounts become hostPath only when the module
//!   says `host_path = true`, and are otherwise left out and listed in the manifest; an
//!   anonymous volume (no `source`) is an emptyDir, listed too (its data lasts as long as the pod).

mod env;
mod expose;
mod placement;
mod pod;
mod sidecar;
mod storage;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, Deployment, DeploymentSpec, DeploymentStrategy, StatefulSet,
    StatefulSetSpec,
};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PodTemplateSpec};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use super::fidelity::{self, Backend, Warning};
use super::yaml::to_yaml;
use super::{Artifact, RenderError, header};
use crate::error::Diagnostic;
use crate::model::validate::kubernetes_name;
use crate::model::{Condition, MountKind, Service, Stack, Variable};
use env::environment;
pub use expose::headless_name;
use expose::{autoscaler, headless_service, ingress_object, service_object};
use pod::pod_template;
use storage::mounts_single_node_claim;

pub const DIR: &str = "k8s";

const SECRETS_FILE: &str = "secrets.env";

const WAIT_IMAGE: &str = "docker.io/library/busybox:1.36";

/// The manifests of `stack`. `config_files` are the files the other renderers generated
/// for it (Prometheus, Alertmanager, Grafana), shipped as ConfigMaps where mounted.
///
/// # Errors
/// Only if the YAML serializer fails.
pub fn k8s(
    stack: &Stack,
    config_files: &[Artifact],
) -> Result<(Vec<Artifact>, Vec<Warning>), RenderError> {
    let ctx = Context::new(stack, config_files);
    let mut notes = Vec::new();
    let mut files: Vec<(String, String)> =
        vec![("namespace.yaml".to_string(), yaml(&namespace(&ctx))?)];
    if let Some(variables) = variables_config_map(&ctx) {
        files.push(("variables.yaml".to_string(), yaml(&variables)?));
    }
    for (name, service) in &stack.services {
        let manifests = match &service.kubernetes.sidecar_of {
            Some(host) => sidecar::manifests(&ctx, name, service, host, &mut notes)?,
            None => service_manifests(&ctx, name, service, &mut notes)?,
        };
        if !manifests.is_empty() {
            files.push((format!("{}.yaml", k8s_name(name)), manifests));
        }
    }
    let has_secrets =
        ctx.secret_variables().next().is_some() || !env::passed_through_secret(&ctx).is_empty();
    let mut artifacts: Vec<Artifact> = files
        .iter()
        .map(|(file, body)| artifact(file, format!("{}{body}", header(stack))))
        .collect();
    if has_secrets {
        artifacts.push(artifact(SECRETS_FILE, secrets_env(&ctx)));
    }
    let resources: Vec<String> = files.iter().map(|(file, _)| file.clone()).collect();
    artifacts.push(artifact(
        "kustomization.yaml",
        kustomization(&ctx, resources, has_secrets)?,
    ));
    Ok((artifacts, notes))
}

fn artifact(file: &str, contents: String) -> Artifact {
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
    /// Whether a Job's manifest read the unhashed Secret: only then is it generated.
    job_secrets_read: std::cell::Cell<bool>,
    /// Service -> the side-cars that run in its pods (`kubernetes.sidecar_of`).
    sidecars: BTreeMap<&'a str, Vec<&'a str>>,
    /// Volumes only one service and its side-cars mount: emptyDirs of that pod.
    pod_local: BTreeSet<&'a str>,
}

impl<'a> Context<'a> {
    fn new(stack: &'a Stack, config_files: &[Artifact]) -> Self {
        let jobs = stack.awaited(Condition::Completed);
        let mut volume_users: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, service) in &stack.services {
            for mount in service
                .volumes
                .iter()
                .filter(|m| m.kind == MountKind::Volume)
            {
                if let Some(source) = &mount.source {
                    let users = volume_users.entry(source.written()).or_default();
                    if !users.contains(&name.as_str()) {
                        users.push(name);
                    }
                }
            }
        }
        let mut generated: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for artifact in config_files {
            let path = artifact.path.to_string_lossy().into_owned();
            for dir in super::GENERATED_DIRS {
                if let Some(inside) = path.strip_prefix(&format!("{dir}/")) {
                    generated
                        .entry(format!("./{dir}"))
                        .or_default()
                        .insert(inside.to_string(), artifact.contents.clone());
                }
            }
        }
        // One namespace per stack and profile: staging applied to the cluster that runs
        // prod-lite must not rewrite prod-lite's Services, nor meet its immutable selectors.
        // A namespace is a DNS-1123 label: `my_stack` lives in `my-stack-<profile>`.
        let namespace = stack.namespace.as_deref().map_or_else(
            || fitted(k8s_name(&format!("{}-{}", stack.name, stack.profile.name))),
            k8s_name,
        );
        let sidecars = sidecar::by_host(stack);
        let pod_local = sidecar::pod_local_volumes(stack, &jobs, &sidecars, &volume_users);
        Context {
            stack,
            namespace,
            jobs,
            volume_users,
            generated,
            job_secrets_read: std::cell::Cell::new(false),
            sidecars,
            pod_local,
        }
    }

    /// The service whose pods `service` runs in: its host for a side-car, else itself.
    fn pod_owner(&self, service: &'a str) -> &'a str {
        self.stack
            .services
            .get(service)
            .and_then(|s| s.kubernetes.sidecar_of.as_deref())
            .and_then(|host| self.stack.services.get_key_value(host))
            .map_or(service, |(host, _)| host.as_str())
    }

    /// The distinct pod owners among the services that mount `volume`.
    fn volume_pods(&self, volume: &str) -> Vec<&'a str> {
        let mut owners: Vec<&str> = Vec::new();
        for user in self.volume_users.get(volume).into_iter().flatten() {
            let owner = self.pod_owner(user);
            if !owners.contains(&owner) {
                owners.push(owner);
            }
        }
        owners
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
            k8s_name(&self.stack.name),
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
                fitted(format!(
                    "{}-{}",
                    k8s_name(&self.stack.name),
                    self.stack.profile.name
                )),
            ),
        ])
    }

    fn secret_name(&self) -> String {
        format!("{}-secrets", k8s_name(&self.stack.name))
    }

    /// The Secret `service` reads. kustomize names the stack's Secret after a hash of its
    /// values, so rotating one rolls the Deployments that read it; a Job's pod template is
    /// immutable, so Jobs read a copy without the hash (`<stack>-job-secrets`): a rotation
    /// leaves their spec, hence `kubectl apply`, unchanged.
    fn secret_name_for(&self, service: &str) -> String {
        if self.jobs.contains(service) {
            self.job_secrets_read.set(true);
            format!("{}-job-secrets", k8s_name(&self.stack.name))
        } else {
            self.secret_name()
        }
    }

    fn variables_name(&self) -> String {
        format!("{}-variables", k8s_name(&self.stack.name))
    }
}

/// Secrets, and variables with no default, come from the operator's secrets.env.
fn from_secret(variable: &Variable) -> bool {
    variable.secret || variable.default.is_none()
}

fn namespace(ctx: &Context) -> Namespace {
    let mut meta = ctx.meta(&ctx.namespace, &ctx.stack.name);
    meta.namespace = None;
    // A privileged container or a hostPath volume is refused under the baseline Pod
    // Security level many clusters enforce by default: the namespace says what it needs.
    let needs_privileged = ctx.stack.services.values().any(|service| {
        service.privileged == Some(true) || service.volumes.iter().any(|mount| mount.host_path)
    });
    if needs_privileged && let Some(labels) = meta.labels.as_mut() {
        labels.insert(
            "pod-security.kubernetes.io/enforce".to_string(),
            "privileged".to_string(),
        );
    }
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
    let mut out = header(ctx.stack);
    out.push_str(
        "# Fill in before `kubectl apply -k .`: the secretGenerator in kustomization.yaml\n",
    );
    out.push_str(
        "# turns this file into the Secret the pods read. See ../.env.template for each one.\n",
    );
    let files = ctx.stack.mounted_secret_files();
    if !files.is_empty() {
        out.push_str(
            "# Secrets read from files are not listed here: put each file beside this one, where\n",
        );
        out.push_str("# the secretGenerator reads it whole (line breaks kept):\n");
        for (variable, file, _) in &files {
            out.push_str(&format!(
                "#   {}: {variable} (the file {file} of a compose host)\n",
                secret_file_path(variable)
            ));
        }
    }
    for (name, _) in ctx.secret_variables() {
        if ctx.stack.secret_file(name).is_none() {
            out.push_str(&format!("{name}=\n"));
        }
    }
    let passed = env::passed_through_secret(ctx);
    if !passed.is_empty() {
        out.push_str(
            "# Passed to these services only when set here (host_environment); uncomment to set:\n",
        );
        for (name, services) in passed {
            out.push_str(&format!("# {name}=    ({})\n", services.join(", ")));
        }
    }
    out
}

/// Where, beside kustomization.yaml, the file of a secret read from a file goes: inside
/// the kustomization folder, as kustomize refuses files outside it by default.
fn secret_file_path(variable: &str) -> String {
    format!("secrets/{}", Stack::secret_file_name(variable))
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
    /// `KEY=path`: secrets read from files, each key's value a whole file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    files: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<GeneratorOptions>,
}

#[derive(Serialize)]
struct GeneratorOptions {
    #[serde(rename = "disableNameSuffixHash")]
    disable_name_suffix_hash: bool,
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
            secret_generators(ctx)
        } else {
            Vec::new()
        },
    };
    let files_note = if ctx.stack.mounted_secret_files().is_empty() {
        ""
    } else {
        "# Before `kubectl apply -k .`: fill in secrets.env, and put the secret files it lists in secrets/.\n"
    };
    Ok(format!(
        "{}{files_note}{}",
        header(ctx.stack),
        to_yaml("kustomization.yaml", &kustomization)?
    ))
}

/// The stack's Secret, hashed for rollouts; and, when Jobs run, the unhashed copy they read
/// (see [`Context::secret_name_for`]).
fn secret_generators(ctx: &Context) -> Vec<SecretGenerator> {
    let files: Vec<String> = ctx
        .stack
        .mounted_secret_files()
        .into_iter()
        .map(|(variable, _, _)| format!("{variable}={}", secret_file_path(variable)))
        .collect();
    let mut generators = vec![SecretGenerator {
        name: ctx.secret_name(),
        envs: vec![SECRETS_FILE.to_string()],
        files: files.clone(),
        options: None,
    }];
    if let Some(job) = ctx.jobs.first().filter(|_| ctx.job_secrets_read.get()) {
        generators.push(SecretGenerator {
            name: ctx.secret_name_for(job),
            envs: vec![SECRETS_FILE.to_string()],
            files,
            options: Some(GeneratorOptions {
                disable_name_suffix_hash: true,
            }),
        });
    }
    generators
}

// -- one service ----------------------------------------------------------------------------

/// A translation the manifest cannot make, said at the top of the manifest and at build time.
fn note(field: String, message: String) -> Warning {
    Warning {
        backend: Backend::Kubernetes,
        diagnostic: Diagnostic::new(field, message),
    }
}

/// The documents of one service, with a leading comment for whatever it could not keep.
fn service_manifests(
    ctx: &Context,
    name: &str,
    service: &Service,
    notes: &mut Vec<Warning>,
) -> Result<String, RenderError> {
    let first_note = notes.len();
    notes.extend(fidelity::service_warnings(
        ctx.stack,
        name,
        Backend::Kubernetes,
    ));
    let mut docs = Vec::new();
    let env = environment(ctx, name, service);
    if let Some(config_map) = &env.config_map {
        docs.push(yaml(config_map)?);
    }
    let (pod, storage) = pod_template(ctx, name, service, &env, notes);
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
    // The autoscaler owns the count: a `replicas` in the manifest resets it on every apply,
    // so it is written only when the module asks for a starting count, and then said.
    let fixed_replicas = match (&service.kubernetes.autoscaling, service.kubernetes.replicas) {
        (None, _) => Some(replicas),
        (Some(_), None) => None,
        (Some(_), Some(_)) => {
            notes.push(note(
                format!("services.{name}.kubernetes.replicas"),
                format!("replicas: {replicas} beside the autoscaler resets its count to {replicas} on every `kubectl apply`; leave `kubernetes.replicas` out to let it own the count"),
            ));
            Some(replicas)
        }
    };
    // A claim one node at a time can mount: a rolling update's new pod would wait for the
    // old one's volume forever (Multi-Attach), so the old pod goes first.
    let strategy = mounts_single_node_claim(ctx, &pod).then(|| DeploymentStrategy {
        type_: Some("Recreate".to_string()),
        ..DeploymentStrategy::default()
    });
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
            metadata: ctx.meta(&job_name(&k8s, &pod)?, name),
            spec: Some(JobSpec {
                backoff_limit: Some(4),
                template: pod,
                ..JobSpec::default()
            }),
            ..Job::default()
        })?);
        "Job"
    } else if reads_the_node(service) {
        docs.push(yaml(&DaemonSet {
            metadata: ctx.meta(&k8s, name),
            spec: Some(DaemonSetSpec {
                selector,
                template: pod,
                ..DaemonSetSpec::default()
            }),
            ..DaemonSet::default()
        })?);
        "DaemonSet"
    } else if stateful {
        docs.push(yaml(&StatefulSet {
            metadata: ctx.meta(&k8s, name),
            spec: Some(StatefulSetSpec {
                replicas: fixed_replicas,
                selector,
                service_name: Some(headless_name(name)),
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
                replicas: fixed_replicas,
                selector,
                strategy,
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
    if kind == "StatefulSet" || (!is_job && service.metrics.is_some()) {
        docs.push(yaml(&headless_service(ctx, name, service))?);
    }
    if let Some(autoscaling) = &service.kubernetes.autoscaling {
        docs.push(yaml(&autoscaler(ctx, name, kind, autoscaling))?);
    }
    if let Some(ingress) = &service.kubernetes.ingress {
        if ingress.class.is_none() {
            notes.push(note(
                format!("services.{name}.kubernetes.ingress.class"),
                "no IngressClass is named, so the cluster's default class serves this Ingress; on a cluster without one (an IngressClass annotated ingressclass.kubernetes.io/is-default-class) no controller serves it and the host never answers: set `class` to the controller's (\"nginx\", \"traefik\"…)".to_string(),
            ));
        }
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
    Ok(format!(
        "{}{}",
        notes_comment(&notes[first_note..]),
        documents(&docs)
    ))
}

/// The notes of one manifest, as the comment at its top.
fn notes_comment(notes: &[Warning]) -> String {
    notes
        .iter()
        .map(|note| {
            format!(
                "# Not carried by Kubernetes: {}: {}\n",
                note.diagnostic.field, note.diagnostic.message
            )
        })
        .collect()
}

/// A host agent (it mounts a host path: a node's metrics, a node's logs) runs on every
/// node, as it runs on the one Docker host: a Deployment would watch one random node. So
/// does a service that says so (`global`; validation keeps autoscaling away from it).
fn reads_the_node(service: &Service) -> bool {
    service.global
        || (service.kubernetes.autoscaling.is_none()
            && service.volumes.iter().any(|mount| mount.host_path))
}

/// A name Kubernetes accepts (DNS-1123): lower case, '-' instead of '_' and '/', no dots.
/// Validation keeps the names it is given within [`crate::model::validate::MAX_NAME`] and apart from each other.
fn k8s_name(name: &str) -> String {
    kubernetes_name(name)
}

/// A name or label value made of several parts, within Kubernetes' 63 characters: cut,
/// with a short hash of the whole so two long names stay apart.
fn fitted(name: String) -> String {
    const LIMIT: usize = 63;
    if name.len() <= LIMIT {
        return name;
    }
    let hash = fnv1a(name.as_bytes());
    let kept = name[..LIMIT - 9].trim_end_matches('-');
    format!("{kept}-{:08x}", hash & 0xffff_ffff)
}

/// A Job's pod template cannot change once created (`kubectl apply` refuses it), so the
/// name carries a digest of the template: a changed Job is a new one, which runs once.
fn job_name(service: &str, template: &PodTemplateSpec) -> Result<String, RenderError> {
    let digest = fnv1a(yaml(template)?.as_bytes()) & 0xffff_ffff;
    let base = &service[..service.len().min(63 - 9)];
    Ok(format!("{}-{digest:08x}", base.trim_end_matches('-')))
}

/// FNV-1a: stable across machines and Rust versions, unlike the std hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn yaml<T: Serialize>(value: &T) -> Result<String, RenderError> {
    to_yaml("kubernetes manifest", value)
}

/// Several YAML documents in one file.
fn documents(docs: &[String]) -> String {
    docs.join("---\n")
}
