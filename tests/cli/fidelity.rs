//! One model, one meaning: every field of the schema's `Service`, set on a probe stack, is
//! either rendered by each backend (its output changes, and no warning) or reported (a
//! warning naming the field), or means nothing there (output unchanged, no warning) —
//! exactly as `render::fidelity::SERVICE_FIELDS` says. A schema field without a row or a
//! sample here fails the test, so a new field must be decided in every backend.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use berth::apply::secrets::host_secret;
use berth::apply::spec::{Places, desired};
use berth::apply::values::Values;
use berth::compile::{compile_one, on_eval_thread};
use berth::model::Stack;
use berth::project::Project;
use berth::render::fidelity::{Backend, SERVICE_FIELDS, Support, service_warnings};

/// The probe service without the field under test; each sample replaces or adds one field.
const BASE: &[(&str, &str)] = &[
    ("image", r#""busybox:1.36""#),
    ("ports", "[{ target = 8080 }]"),
];

/// A value for every service field, different from the base (and from the default).
const SAMPLES: &[(&str, &str)] = &[
    ("description", r#""Probe application""#),
    ("container_name", r#""probe-app""#),
    ("hostname", r#""app-host""#),
    ("platform", r#""linux/amd64""#),
    ("pull_policy", r#""always""#),
    ("compose_profiles", r#"["extra"]"#),
    ("image", r#""busybox:1.37""#),
    ("build", r#"{ context = "./app" }"#),
    ("command", r#"["sleep", "1000"]"#),
    ("entrypoint", r#"["/bin/sh", "-c"]"#),
    ("working_dir", r#""/srv""#),
    ("user", r#""1000:1000""#),
    ("volume_owner", r#""1001:0""#),
    ("env_file", r#"[{ path = "./app.env" }]"#),
    ("environment", r#"{ GREETING = "hello" }"#),
    ("host_environment", r#"["TRACE_TOKEN"]"#),
    ("ports", "[{ target = 9090, published = 9090 }]"),
    ("volumes", r#"[{ source = "data", target = "/data" }]"#),
    (
        "files",
        r#"{ "/etc/probe.conf" = { content = "probe = 1\n" } }"#,
    ),
    (
        "secrets",
        r#"["DB_PASSWORD", { variable = "DB_PASSWORD", target = "DB_PASSWORD" }]"#,
    ),
    ("networks", r#"["back"]"#),
    ("network_aliases", r#"{ back = ["app-alias"] }"#),
    (
        "network_addresses",
        r#"{ back = { ipv4 = "172.30.0.10" } }"#,
    ),
    ("network_mode", r#""service:db""#),
    ("depends_on", r#"{ db = "healthy" }"#),
    (
        "healthcheck",
        r#"{ test = ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"] }"#,
    ),
    ("restart", r#""always""#),
    ("replicas", "2"),
    ("global", "true"),
    ("placement", r#"["node.labels.zone == eu-1"]"#),
    (
        "resources",
        r#"{ limits = { cpus = 0.5, memory = "256M" } }"#,
    ),
    ("labels", r#"{ "com.example.team" = "core" }"#),
    (
        "logging",
        r#"{ driver = "json-file", options = { max-size = "10m" } }"#,
    ),
    ("ulimits", "{ nofile = { soft = 1024, hard = 2048 } }"),
    ("extra_hosts", r#"{ "host.internal" = "10.0.0.1" }"#),
    ("stop_grace_period", r#""30s""#),
    ("stop_signal", r#""SIGINT""#),
    ("attach", "false"),
    ("sysctls", r#"{ "net.core.somaxconn" = 1024 }"#),
    ("devices", r#"["/dev/fuse:/dev/fuse"]"#),
    ("init", "true"),
    ("read_only", "true"),
    ("privileged", "true"),
    ("cap_add", r#"["NET_ADMIN"]"#),
    ("cap_drop", r#"["ALL"]"#),
    ("shm_size", r#""64M""#),
    ("tmpfs", r#"["/tmp"]"#),
    ("dns", r#"["10.0.0.2"]"#),
    ("dns_search", r#"["example.internal"]"#),
    ("dns_opt", r#"["ndots:2"]"#),
    ("tty", "true"),
    ("stdin_open", "true"),
    ("pid", r#""host""#),
    ("security_opt", r#"["no-new-privileges:true"]"#),
    ("gpus", "{ count = 1 }"),
    ("backup", r#"{ command = "tar -c /data" }"#),
    ("metrics", "{ port = 9100 }"),
    ("kubernetes", "{ replicas = 3 }"),
];

/// Fields that mean something only beside another: their variant and its base both set
/// the companion, so the comparison shows what the field itself changes.
const COMPANIONS: &[(&str, &str, &str)] = &[
    (
        "volume_owner",
        "volumes",
        r#"[{ source = "data", target = "/data" }]"#,
    ),
    ("network_aliases", "networks", r#"["back"]"#),
    ("network_addresses", "networks", r#"["back"]"#),
];

const PROFILE: &str = r#"{ name = "probe", description = "Every backend on.", quadlet = true, podman_version = "5.3" }"#;

#[test]
fn every_schema_field_has_a_row_and_a_sample() {
    let schema = schema_service_fields();
    let rows: Vec<&str> = SERVICE_FIELDS.iter().map(|row| row.field).collect();
    let samples: Vec<&str> = SAMPLES.iter().map(|(field, _)| *field).collect();
    assert_eq!(
        rows, schema,
        "render::fidelity::SERVICE_FIELDS vs schemas/service.ncl"
    );
    assert_eq!(samples, schema, "SAMPLES here vs schemas/service.ncl");
}

#[test]
fn each_backend_renders_or_reports_each_field() {
    let dir = probe_project();
    let project = Project::open(dir.path()).expect("project");
    let outputs = on_eval_thread(|| {
        let profile = project.select_profiles(&["probe".to_string()])?.remove(0);
        let mut outputs = BTreeMap::new();
        for stack in project.stacks()? {
            let (model, built) = compile_one(&project, &stack, &profile)?;
            outputs.insert(stack.name.clone(), Output::of(&model, &built.artifacts));
        }
        Ok(outputs)
    })
    .expect("every probe stack builds");
    let mut wrong = Vec::new();
    for row in SERVICE_FIELDS {
        let variant = &outputs[&stack_name(row.field)];
        let base = outputs
            .get(&base_name(row.field))
            .unwrap_or(&outputs["base"]);
        for backend in Backend::ALL {
            let changed = variant.by_backend[&backend] != base.by_backend[&backend];
            let reported = variant.warned(backend, row.field);
            let ok = match row.get(backend) {
                Support::Rendered => changed && !reported,
                Support::Reported(_) => reported,
                Support::NotApplicable(_) => !changed && !reported,
            };
            if !ok {
                wrong.push(format!(
                    "{} × {}: table says {:?}, output changed: {changed}, warned: {reported}",
                    row.field,
                    backend.name(),
                    row.get(backend)
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "fidelity table is wrong:\n{}",
        wrong.join("\n")
    );
}

/// What each backend made of the probe service, and what it warned about.
struct Output {
    by_backend: BTreeMap<Backend, String>,
    warnings: BTreeSet<(Backend, String)>,
}

impl Output {
    fn of(stack: &Stack, artifacts: &[berth::render::Artifact]) -> Output {
        let under = |prefix: &str| -> String {
            artifacts
                .iter()
                .filter(|a| a.path.starts_with(prefix))
                .map(|a| format!("== {}\n{}", a.path.display(), a.contents))
                .collect()
        };
        let mut by_backend = BTreeMap::new();
        by_backend.insert(Backend::Compose, under("compose.yaml"));
        by_backend.insert(Backend::Quadlet, under("quadlet"));
        by_backend.insert(Backend::Kubernetes, under("k8s"));
        by_backend.insert(Backend::Apply, apply_spec(stack));
        let warnings = Backend::ALL
            .into_iter()
            .flat_map(|backend| service_warnings(stack, "app", backend))
            .map(|warning| (warning.backend, warning.diagnostic.field))
            .collect();
        Output {
            by_backend,
            warnings,
        }
    }

    fn warned(&self, backend: Backend, field: &str) -> bool {
        let path = format!("services.app.{field}");
        self.warnings.iter().any(|(b, warned)| {
            *b == backend
                && (warned == &path
                    || warned.starts_with(&format!("{path}."))
                    || warned.starts_with(&format!("{path}[")))
        })
    }
}

/// The engine's view of the probe service, as apply would create it.
fn apply_spec(stack: &Stack) -> String {
    let mut values = Values::new(
        stack
            .variables
            .keys()
            .map(|name| (name.clone(), "value".to_string()))
            .collect(),
        Default::default(),
    );
    // The deploy environment sets every name a service passes from it.
    for name in stack.services.values().flat_map(|s| &s.host_environment) {
        values.add_secret(host_secret(name), "value".to_string());
    }
    apply_spec_with(stack, &values)
}

/// The same, with these values of the variables on the host.
fn apply_spec_with(stack: &Stack, values: &Values) -> String {
    let values = values.clone();
    let bind = |path: &str| PathBuf::from("/state/files").join(path);
    let digest = |name: &str| format!("digest-of-{name}");
    let env_file = |_: &str| BTreeMap::from([("FROM_FILE".to_string(), "1".to_string())]);
    let places = Places {
        build_root: Path::new("/project"),
        bind: &bind,
        digest: &digest,
        env_file: &env_file,
    };
    let desired = desired(stack, &values, &places);
    serde_json::to_string_pretty(&desired.services["app"]).expect("spec as JSON")
}

fn base_name(field: &str) -> String {
    format!("base-{}", field.replace('_', "-"))
}

fn stack_name(field: &str) -> String {
    format!("set-{}", field.replace('_', "-"))
}

/// A project with the bundled schemas, a `probe` profile with every backend on, a `base`
/// stack, and one stack per sample setting that field on service `app`. Every stack is
/// named `probe`, so outputs differ only by what the field does.
fn probe_project() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("berth-fidelity-")
        .tempdir()
        .expect("temp dir");
    let root = repo_root();
    copy_dir(&root.join("schemas"), &dir.path().join("schemas"));
    std::fs::create_dir_all(dir.path().join("modules/stacks")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("profiles")).expect("mkdir");
    std::fs::write(dir.path().join("profiles/probe.ncl"), PROFILE).expect("profile");
    let write = |name: &str, fields: &BTreeMap<&str, &str>| {
        std::fs::write(
            dir.path().join(format!("modules/stacks/{name}.ncl")),
            probe_stack(fields),
        )
        .expect("stack");
    };
    let base: BTreeMap<&str, &str> = BASE.iter().copied().collect();
    write("base", &base);
    for (field, value) in SAMPLES {
        let mut fields = base.clone();
        if let Some((_, companion, companion_value)) = COMPANIONS.iter().find(|c| c.0 == *field) {
            fields.insert(companion, companion_value);
            write(&base_name(field), &fields);
        }
        fields.insert(field, value);
        write(&stack_name(field), &fields);
    }
    dir
}

fn probe_stack(fields: &BTreeMap<&str, &str>) -> String {
    probe_stack_with(fields, "")
}

/// The probe stack with `extra` (top-level fields) added.
fn probe_stack_with(fields: &BTreeMap<&str, &str>, extra: &str) -> String {
    let app: String = fields
        .iter()
        .map(|(field, value)| format!("    {field} = {value},\n"))
        .collect();
    format!(
        r#"fun profile => {{
  name = "probe",
  services.app = {{
{app}  }},
  services.db = {{
    image = "postgres:16",
    ports = [{{ target = 5432 }}],
    healthcheck = {{ test = ["pg_isready"] }},
  }},
  volumes.data = {{ description = "Probe data." }},
  networks.back = {{ description = "Probe network.", subnets = [{{ subnet = "172.30.0.0/24" }}] }},
  variables.DB_PASSWORD = {{ description = "Probe secret.", secret = true }},
{extra}}}
"#
    )
}

/// The field names of `Service = { … }` in schemas/service.ncl, in order.
fn schema_service_fields() -> Vec<&'static str> {
    let text = std::fs::read_to_string(repo_root().join("schemas/service.ncl")).expect("schema");
    let text: &'static str = Box::leak(text.into_boxed_str());
    let body = &text[text.find("  Service = {").expect("Service contract")..];
    body.lines()
        .skip(1)
        .take_while(|line| !line.starts_with("  },"))
        .filter_map(|line| {
            let rest = line.strip_prefix("    ")?;
            let name: &str = rest.split([' ', '\t']).next()?;
            (!name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
                .then_some(name)
        })
        .collect()
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk");
        let target = to.join(entry.path().strip_prefix(from).expect("prefix"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn the_published_matrix_is_current() {
    let published =
        std::fs::read_to_string(repo_root().join("docs/fidelity.md")).unwrap_or_default();
    assert!(
        published == berth::render::fidelity::matrix_markdown(),
        "docs/fidelity.md is stale: run scripts/fidelity and commit it"
    );
}

/// Typed fields holding a variable: Compose writes `${NAME:-default}` (docker compose reads
/// .env at deploy time); Quadlet, Kubernetes and apply write the declared default, so
/// their output is the one the default written as a value gives — as
/// `fidelity::TYPED_VARIABLE` says. Both stacks declare the variables, so only their use differs.
#[test]
fn typed_fields_holding_variables_follow_the_table() {
    let variables = r#"  variables = {
    HC_INTERVAL = { description = "i", default = "30s" },
    HC_TIMEOUT = { description = "t", default = "3s" },
    HC_START = { description = "s", default = "20s" },
    HC_RETRIES = { description = "r", default = "4" },
    RESTART = { description = "p", default = "on-failure" },
    APP_PORT = { description = "c", default = "8080" },
  },
"#;
    let with = |interval, timeout, start, retries, restart, port| {
        let healthcheck = format!(
            r#"{{ test = ["true"], interval = {interval}, timeout = {timeout}, start_period = {start}, retries = {retries} }}"#
        );
        let mut fields: BTreeMap<&str, &str> = BASE.iter().copied().collect();
        let healthcheck: &'static str = Box::leak(healthcheck.into_boxed_str());
        fields.insert("healthcheck", healthcheck);
        fields.insert("restart", restart);
        let ports = format!(
            "[{{ target = {port}, published = 9090 }}, {{ target = {port}, protocol = \"udp\" }}]"
        );
        fields.insert("ports", Box::leak(ports.into_boxed_str()));
        probe_stack_with(&fields, variables)
    };
    let dir = probe_project();
    let stacks = dir.path().join("modules/stacks");
    std::fs::write(
        stacks.join("typed-values.ncl"),
        with(
            r#""30s""#,
            r#""3s""#,
            r#""20s""#,
            "4",
            r#""on-failure""#,
            "8080",
        ),
    )
    .expect("stack");
    std::fs::write(
        stacks.join("typed-variables.ncl"),
        with(
            r#""${HC_INTERVAL}""#,
            r#""${HC_TIMEOUT}""#,
            r#""${HC_START}""#,
            r#""${HC_RETRIES}""#,
            r#""${RESTART}""#,
            r#""${APP_PORT}""#,
        ),
    )
    .expect("stack");
    let project = Project::open(dir.path()).expect("project");
    let outputs = on_eval_thread(|| {
        let profile = project.select_profiles(&["probe".to_string()])?.remove(0);
        let mut outputs = BTreeMap::new();
        for stack in project.stacks()? {
            if stack.name.starts_with("typed-") {
                let (model, built) = compile_one(&project, &stack, &profile)?;
                let output = Output::of(&model, &built.artifacts);
                outputs.insert(stack.name.clone(), (output, built.artifacts));
            }
        }
        Ok(outputs)
    })
    .expect("both stacks build");
    let (values, variables) = (&outputs["typed-values"].0, &outputs["typed-variables"].0);
    compose_accepts(dir.path(), &outputs["typed-variables"].1);
    // .env.template lists the service as a reader of each variable its typed fields name.
    let template = outputs["typed-variables"]
        .1
        .iter()
        .find(|a| a.path == Path::new(".env.template"))
        .expect(".env.template");
    assert_eq!(
        template.contents.matches("# Read by: app.").count(),
        6,
        "{}",
        template.contents
    );
    for backend in [Backend::Quadlet, Backend::Kubernetes] {
        assert_eq!(
            values.by_backend[&backend],
            variables.by_backend[&backend],
            "{}: a typed variable should render as its default",
            backend.name()
        );
    }
    let compose = &variables.by_backend[&Backend::Compose];
    for reference in [
        "interval: ${HC_INTERVAL:-30s}",
        "timeout: ${HC_TIMEOUT:-3s}",
        "start_period: ${HC_START:-20s}",
        "retries: ${HC_RETRIES:-4}",
        "restart: ${RESTART:-on-failure}",
        "target: ${APP_PORT:-8080}",
        "- ${APP_PORT:-8080}/udp",
    ] {
        assert!(
            compose.contains(reference),
            "compose lacks `{reference}`:\n{compose}"
        );
    }
    assert!(values.warnings.is_empty() && variables.warnings.is_empty());
    // Apply reads the host's values as docker compose does: the defaults give the spec the
    // values give, and a host's own value wins.
    let (literal, variable) = on_eval_thread(|| {
        let profile = project.select_profiles(&["probe".to_string()])?.remove(0);
        let mut models = BTreeMap::new();
        for stack in project.stacks()? {
            if stack.name.starts_with("typed-") {
                models.insert(
                    stack.name.clone(),
                    compile_one(&project, &stack, &profile)?.0,
                );
            }
        }
        Ok((
            models["typed-values"].clone(),
            models["typed-variables"].clone(),
        ))
    })
    .expect("both stacks build");
    let host = |pairs: &[(&str, &str)]| {
        Values::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            Default::default(),
        )
    };
    let defaults = host(&[
        ("HC_INTERVAL", "30s"),
        ("HC_TIMEOUT", "3s"),
        ("HC_START", "20s"),
        ("HC_RETRIES", "4"),
        ("RESTART", "on-failure"),
        ("APP_PORT", "8080"),
    ]);
    assert_eq!(
        apply_spec_with(&literal, &defaults),
        apply_spec_with(&variable, &defaults)
    );
    let own = host(&[
        ("HC_INTERVAL", "45s"),
        ("HC_RETRIES", "9"),
        ("RESTART", "always"),
        ("APP_PORT", "7070"),
    ]);
    let spec = apply_spec_with(&variable, &own);
    for expected in [
        r#""target": 7070"#,
        r#""interval_ns": 45000000000"#,
        r#""retries": 9"#,
        r#""restart": "always""#,
        r#""timeout_ns": 3000000000"#,
    ] {
        assert!(
            spec.contains(expected),
            "apply spec lacks {expected}:\n{spec}"
        );
    }
    let wrong = host(&[
        ("HC_INTERVAL", "soon"),
        ("RESTART", "sometimes"),
        ("APP_PORT", "70000"),
    ]);
    assert_eq!(
        berth::apply::spec::typed_value_problems(&variable, &wrong),
        [
            "app: restart: ${RESTART} is \"sometimes\" here: unknown variant `sometimes`, expected one of `no`, `always`, `on-failure`, `unless-stopped`",
            "app: ports[0].target: ${APP_PORT} is \"70000\" here: invalid value: integer `70000`, expected u16",
            "app: ports[1].target: ${APP_PORT} is \"70000\" here: invalid value: integer `70000`, expected u16",
            "app: healthcheck.interval: ${HC_INTERVAL} is \"soon\" here: \"soon\": expected a duration such as \"10s\", \"1m30s\" or \"500ms\"",
        ]
    );
}

/// docker compose reads the compose.yaml among `artifacts` without complaint.
fn compose_accepts(dir: &Path, artifacts: &[berth::render::Artifact]) {
    let file = dir.join("compose.yaml");
    let text = artifacts
        .iter()
        .find(|a| a.path == Path::new("compose.yaml"))
        .expect("compose.yaml");
    std::fs::write(&file, &text.contents).expect("write");
    let checked = std::process::Command::new("docker")
        .args(["compose", "-f", &file.display().to_string(), "config", "-q"])
        .env("DB_PASSWORD", "x")
        .output()
        .expect("docker compose");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
}

/// A volume without a source is anonymous: Compose mounts a fresh volume (and docker
/// compose accepts the file), Quadlet asks podman for one, apply asks the engine for one,
/// and Kubernetes mounts an emptyDir and says that its data lasts as long as the pod.
#[test]
fn an_anonymous_volume_in_every_backend() {
    let dir = probe_project();
    let mut fields: BTreeMap<&str, &str> = BASE.iter().copied().collect();
    fields.insert(
        "volumes",
        r#"[{ target = "/cache" }, { target = "/seed", read_only = true }]"#,
    );
    std::fs::write(
        dir.path().join("modules/stacks/anonymous.ncl"),
        probe_stack(&fields),
    )
    .expect("stack");
    let project = Project::open(dir.path()).expect("project");
    let (model, built) = on_eval_thread(|| {
        let profile = project.select_profiles(&["probe".to_string()])?.remove(0);
        let stack = project
            .stacks()?
            .into_iter()
            .find(|stack| stack.name == "anonymous")
            .expect("the stack");
        compile_one(&project, &stack, &profile)
    })
    .expect("builds");
    let output = Output::of(&model, &built.artifacts);
    let compose = &output.by_backend[&Backend::Compose];
    assert!(
        compose.contains("- type: volume\n        target: /cache\n"),
        "{compose}"
    );
    compose_accepts(dir.path(), &built.artifacts);
    let quadlet = &output.by_backend[&Backend::Quadlet];
    // `Volume=PATH` (podman's `-v PATH`): podman's Quadlet generator crashes on a
    // `Mount=type=volume` without a source (quadlet::podmans_generator_… runs it).
    assert!(quadlet.contains("Volume=/cache\n"), "{quadlet}");
    assert!(quadlet.contains("Volume=/seed\n"), "{quadlet}");
    assert!(
        quadlet.contains("the anonymous volume /seed is mounted read-write"),
        "{quadlet}"
    );
    let k8s = &output.by_backend[&Backend::Kubernetes];
    assert!(k8s.contains("emptyDir: {}"), "{k8s}");
    assert!(
        k8s.contains("# Not carried by Kubernetes: services.app.volumes[0]: anonymous volume /cache is an emptyDir"),
        "{k8s}"
    );
    let warned: Vec<String> = built.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warned.len(), 2, "{warned:?}");
    assert!(
        warned.iter().all(|w| w.starts_with("warning: k8s: ")),
        "{warned:?}"
    );
    let apply: String = output.by_backend[&Backend::Apply]
        .split_whitespace()
        .collect();
    assert!(
        apply.contains(r#"{"kind":"volume","source":null,"target":"/cache","read_only":false}"#),
        "{apply}"
    );
}
