//! Hostile text cannot change the shape of a line-based artifact. Random strings go into
//! every text field that reaches a systemd unit, a Quadlet unit, an env file or a `#`
//! comment; the stack is either refused with the field named, or every artifact parses
//! back (with faithful readers here, and the real tools on fixed cases below) with exactly
//! the keys, sections and assignment lines of the same stack holding plain text, and the
//! values the writers quoted come back unchanged.
//!
//! 128 cases by default (about a second); a long run:
//! `PROPTEST_CASES=20000 cargo test --release --test cli hostile::`.

use std::collections::BTreeMap;
use std::path::Path;

use berth::model::Stack;
use berth::model::validate;
use berth::render::{self, Artifact};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::{Berth, validate_artifacts};

/// The fields the random strings are written into, by path in the evaluated value.
const FIELDS: [&str; 11] = [
    "description",
    "services.db.description",
    "services.db.environment.GREETING",
    "services.db.labels.note",
    "services.db.backup.command",
    "services.db.backup.restore",
    "services.web.command",
    "services.web.healthcheck.test",
    "variables.PORT.description",
    "variables.PORT.default",
    "variables.PORT.example",
];

/// A stack with systemd, Quadlet and Kubernetes output, `texts` in [`FIELDS`].
fn stack_value(texts: &[String]) -> Value {
    let mut value = json!({
        "name": "hostile",
        "profile": {
            "name": "qa", "description": "qa", "debug": false, "log_level": "info",
            "production": false, "dev_secrets": true, "systemd": true, "quadlet": true, "podman_version": "5.3",
            "metrics": false, "alerting": false, "scrape_interval": "15s",
            "evaluation_interval": "15s", "install_root": "/opt", "backup_root": "/var/backups",
        },
        "services": {
            "db": {
                "image": "postgres:16-alpine",
                "environment": { "PORT": "${PORT}" },
                "volumes": [{ "source": "data", "target": "/data" }],
                "backup": {},
            },
            "web": { "image": "nginx:1.27-alpine", "healthcheck": {}, "depends_on": { "db": "started" } },
        },
        "volumes": { "data": {} },
        "variables": { "PORT": {} },
    });
    for (field, text) in FIELDS.iter().zip(texts) {
        let mut at = &mut value;
        let parts: Vec<&str> = field.split('.').collect();
        for part in &parts[..parts.len() - 1] {
            at = &mut at[*part];
        }
        at[parts[parts.len() - 1]] = Value::String(text.clone());
    }
    value
}

/// Validation's verdict, or every artifact.
fn build(value: &Value) -> Result<Vec<Artifact>, Vec<String>> {
    let stack = model(value)?;
    let mut diagnostics = validate::control_characters(value);
    diagnostics.extend(validate::stack(&stack));
    if !diagnostics.is_empty() {
        return Err(diagnostics.into_iter().map(|d| d.field).collect());
    }
    Ok(render::all(&stack).expect("render").artifacts)
}

/// The model, or the field whose text is a malformed `${` reference (refused when the
/// model is built, before validation).
fn model(value: &Value) -> Result<Stack, Vec<String>> {
    match serde_path_to_error::deserialize::<_, Stack>(value) {
        Ok(stack) => Ok(stack),
        Err(e)
            if e.inner()
                .to_string()
                .starts_with(berth::model::text::REFERENCE_ERROR) =>
        {
            Err(vec![e.path().to_string()])
        }
        Err(e) => panic!("model: {e}"),
    }
}

/// Every artifact, with only the checks that are not about characters: what the writers
/// alone make of text that validation would refuse.
fn build_unchecked(value: &Value) -> Option<Vec<Artifact>> {
    let stack = model(value).ok()?;
    validate::stack(&stack)
        .is_empty()
        .then(|| render::all(&stack).expect("render").artifacts)
}

/// A unit file as systemd's config parser reads it: lines end at `\n` or `\r` (or NUL),
/// `#`/`;` lines are comments, a line whose last backslash escapes nothing continues on
/// the next one. Returns (section, key, value) in order.
fn systemd_entries(text: &str) -> Vec<(String, String, String)> {
    assert!(
        !text.contains(['\r', '\0']),
        "raw CR or NUL in a unit:\n{text}"
    );
    let mut entries = Vec::new();
    let mut section = String::new();
    let mut continued = String::new();
    for line in text.split('\n') {
        let stripped = line.trim();
        if continued.is_empty() && (stripped.starts_with('#') || stripped.starts_with(';')) {
            continue;
        }
        let joined = format!("{continued}{line}");
        let mut escaped = false;
        for c in joined.chars() {
            escaped = !escaped && c == '\\';
        }
        if escaped {
            continued = format!("{} ", &joined[..joined.len() - 1]);
            continue;
        }
        continued.clear();
        let joined = joined.trim();
        if joined.is_empty() {
            continue;
        }
        if let Some(name) = joined.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = joined.split_once('=').expect("key=value");
        entries.push((
            section.clone(),
            key.trim().to_string(),
            value.trim().to_string(),
        ));
    }
    assert!(continued.is_empty(), "unit ends in a continuation:\n{text}");
    entries
}

/// systemd's unquoting of one double-quoted word with C escapes, then `%%` → `%`.
fn unquote(word: &str) -> String {
    let inner = word
        .strip_prefix('"')
        .and_then(|w| w.strip_suffix('"'))
        .expect("a quoted word");
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next().expect("escape") {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'x' => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(char::from(u8::from_str_radix(&hex, 16).expect("hex")));
            }
            other => out.push(other),
        }
    }
    out.replace("%%", "%")
}

/// Assignment keys of an env file, as dotenv readers see them: every line that is not
/// blank or a `#` comment.
fn env_keys(text: &str) -> Vec<String> {
    text.split(['\n', '\r'])
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.split('=').next().unwrap_or_default().to_string())
        .collect()
}

/// What a parser sees of every line-based artifact: unit entries by key (values only
/// where berth wrote no user text), env keys.
fn shape(artifacts: &[Artifact]) -> BTreeMap<String, Vec<String>> {
    let mut shapes = BTreeMap::new();
    for artifact in artifacts {
        let path = artifact.path.to_string_lossy().into_owned();
        let text = &artifact.contents;
        let lines: Vec<String> = if [".service", ".timer", ".container", ".volume", ".network"]
            .iter()
            .any(|ext| path.ends_with(ext))
        {
            systemd_entries(text)
                .into_iter()
                .map(|(section, key, _)| format!("[{section}] {key}"))
                .collect()
        } else if path.ends_with(".env.template")
            || path.ends_with(".env.tmpl")
            || path.ends_with("secrets.env")
        {
            env_keys(text)
        } else if path.ends_with("berth-backup") || path.ends_with("berth-env") {
            // Scripts: only their header carries model text; it must stay comments.
            text.lines()
                .take_while(|l| l.starts_with('#'))
                .map(|_| "#".to_string())
                .collect()
        } else {
            continue;
        };
        shapes.insert(path, lines);
    }
    shapes
}

/// Characters that break line-based formats, and ordinary ones.
fn hostile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => prop::sample::select(vec![
            "\n", "\r", "\r\n", "\"", "'", "$", "$$", "${", "%", "%n", "\\", "\\\n", "\0", "#", ";",
            "=", "[Service]", "\nExecStartPre=/bin/touch /tmp/pwned", "\t", " ", "é", "😀",
            "\u{2028}", "\u{85}", "\u{1b}",
        ])
        .prop_map(str::to_string),
        2 => "[a-z0-9 ]{1,6}",
        1 => any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(piece, 1..5).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(128),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_text_is_refused_or_changes_no_line(
        chosen in prop::collection::vec(prop::option::weighted(0.25, hostile_text()), FIELDS.len())
    ) {
        // A few fields at a time, so that many cases pass validation and reach the writers.
        let plain: Vec<String> = (0..FIELDS.len()).map(|i| format!("plain text {i}")).collect();
        let texts: Vec<String> = chosen
            .into_iter()
            .zip(&plain)
            .map(|(text, plain)| text.unwrap_or_else(|| plain.clone()))
            .collect();
        let baseline = shape(&build(&stack_value(&plain)).expect("plain text builds"));
        let value = stack_value(&texts);
        // The unit and .env.template writers hold on their own; Quadlet's env templates
        // rely on validation (berth-env reads them line by line, with no escapes).
        if let Some(artifacts) = build_unchecked(&value) {
            let mut written = shape(&artifacts);
            let mut expected = baseline.clone();
            written.retain(|path, _| !path.ends_with(".env.tmpl"));
            expected.retain(|path, _| !path.ends_with(".env.tmpl"));
            prop_assert_eq!(written, expected);
        }
        match build(&value) {
            Err(fields) => {
                // Refused: every problem names a field that holds random text.
                for field in fields {
                    prop_assert!(FIELDS.iter().any(|f| field.starts_with(f)), "{field} was not fed");
                }
            }
            Ok(artifacts) => {
                prop_assert_eq!(shape(&artifacts), baseline);
                let command = &texts[4];
                let unit = artifacts.iter().find(|a| a.path.ends_with("hostile-backup-db.service")).expect("backup unit");
                let environment: Vec<String> = systemd_entries(&unit.contents)
                    .into_iter()
                    .filter(|(_, key, _)| key == "Environment")
                    .map(|(_, _, value)| unquote(&value))
                    .collect();
                prop_assert!(environment.contains(&format!("BERTH_BACKUP_COMMAND={command}")), "{environment:?}");
            }
        }
    }
}

/// Text that is valid but as awkward as it gets for every format, through the real binary
/// and the real validators: systemd-analyze, podman's Quadlet keys, docker compose's env
/// reader, kubernetes-validate and kubectl kustomize.
#[test]
fn awkward_valid_text_passes_the_real_validators() {
    // A lone `$` is literal in berth's text (`${` would start a reference).
    let awkward = r#"50% of "it" costs $5 \ 'quoted' ; # not a comment = é 😀 %n [Service]"#;
    // Commands may span lines (Compose files write scripts so): quoted, never a new key.
    let command = format!("{awkward}\"\nExecStartPre=/bin/touch /tmp/pwned");
    let stack = format!(
        r#"fun profile => {{
  description = {awkward:?},
  services.db = {{
    description = {awkward:?},
    image = "postgres:16-alpine",
    environment = {{ GREETING = {awkward:?}, PORT = "${{PORT}}" }},
    labels.note = {awkward:?},
    volumes = [{{ source = "data", target = "/data" }}],
    backup = {{ command = {command:?}, restore = {command:?} }},
  }},
  volumes.data = {{}},
  variables.PORT = {{ description = {awkward:?}, default = {awkward:?}, example = {awkward:?} }},
}}
"#
    );
    let (out, _dir) = Berth::schemas_only()
        .file("profiles/qa.ncl", QA_PROFILE)
        .file("modules/stacks/awkward.ncl", &stack)
        .args([
            "build",
            "--stack",
            "awkward",
            "--profile",
            "qa",
            "--out",
            "out",
        ])
        .run();
    out.code(0);
    let built = out.root.join("out/awkward/qa");
    let report = validate_artifacts(&built);
    for kind in ["systemd", "quadlet", "env", "compose", "kustomize"] {
        assert!(
            report
                .lines()
                .any(|l| l.starts_with(&format!("ok {kind} "))),
            "no {kind} checked:\n{report}"
        );
    }
    let unit =
        std::fs::read_to_string(built.join("systemd/awkward-backup-db.service")).expect("unit");
    let entries = systemd_entries(&unit);
    assert!(
        !entries.iter().any(|(_, key, _)| key == "ExecStartPre"),
        "{unit}"
    );
    let written = entries
        .into_iter()
        .find(|(_, _, value)| value.starts_with("\"BERTH_BACKUP_COMMAND="))
        .map(|(_, _, value)| unquote(&value))
        .expect("command");
    assert_eq!(written, format!("BERTH_BACKUP_COMMAND={command}"));
    bash_parses(&built.join("systemd/berth-backup"));
    bash_parses(&built.join("quadlet/berth-env"));
}

fn bash_parses(script: &Path) {
    let status = std::process::Command::new("bash")
        .arg("-n")
        .arg(script)
        .status()
        .expect("run bash");
    assert!(status.success(), "bash -n {}", script.display());
}

/// A non-production profile that writes every line-based artifact.
const QA_PROFILE: &str = r#"{
  name = "qa",
  description = "Throw-away QA host.",
  production = false,
  dev_secrets = true,
  systemd = true,
  quadlet = true,
  podman_version = "5.2",
  service_defaults = {},
}
"#;

/// A profile is production unless it says otherwise, and a production profile cannot
/// let secrets fall back to dev values.
#[test]
fn dev_secrets_need_a_profile_that_says_it_is_not_production() {
    let stack = r#"fun profile => {
  services.db = { image = "postgres:16-alpine", environment.POSTGRES_PASSWORD = "${DB_PASSWORD}" },
  variables.DB_PASSWORD = { description = "Password.", secret = true, dev_value = "dev-only" },
}
"#;
    let profile = "{\n  name = \"qa\",\n  description = \"QA.\",\n  dev_secrets = true,\n}\n";
    let (out, _dir) = Berth::schemas_only()
        .file("profiles/qa.ncl", profile)
        .file("modules/stacks/shop.ncl", stack)
        .args([
            "build",
            "--stack",
            "shop",
            "--profile",
            "qa",
            "--out",
            "out",
        ])
        .run();
    out.code(2)
        .stderr_contains(
            "profiles/qa.ncl:4:17: profile.dev_secrets: profile `qa` is a production profile",
        )
        .stderr_contains("say `production = false`")
        .wrote_nothing();

    let (out, _dir) = Berth::schemas_only()
        .file(
            "profiles/qa.ncl",
            &profile.replace("dev_secrets", "production = false,\n  dev_secrets"),
        )
        .file("modules/stacks/shop.ncl", stack)
        .args([
            "build",
            "--stack",
            "shop",
            "--profile",
            "qa",
            "--out",
            "out",
        ])
        .run();
    out.code(0);
    let compose =
        std::fs::read_to_string(out.root.join("out/shop/qa/compose.yaml")).expect("compose");
    assert!(compose.contains("${DB_PASSWORD:-dev-only}"), "{compose}");
}

/// `["CMD", …]` and `["CMD-SHELL", line]`, as Compose users write them, mean what they
/// mean in Compose on every backend: the same output as berth's own spelling.
#[test]
fn compose_healthcheck_spelling_means_the_same_everywhere() {
    let stack = |exec: &str, shell: &str| {
        format!(
            r#"fun profile => {{
  services.exec = {{ image = "postgres:16-alpine", healthcheck.test = {exec} }},
  services.shell = {{ image = "postgres:16-alpine", healthcheck.test = {shell} }},
}}
"#
        )
    };
    let build = |source: String| {
        let (out, dir) = Berth::schemas_only()
            .file("profiles/qa.ncl", QA_PROFILE)
            .file("modules/stacks/hc.ncl", &source)
            .args(["build", "--stack", "hc", "--profile", "qa", "--out", "out"])
            .run();
        out.code(0);
        let tree = crate::support::read_tree(&out.root.join("out/hc/qa"));
        drop(dir);
        tree
    };
    let compose_spelling = build(stack(
        r#"["CMD", "pg_isready", "-U", "app"]"#,
        r#"["CMD-SHELL", "pg_isready -U app || exit 1"]"#,
    ));
    let berth_spelling = build(stack(
        r#"["pg_isready", "-U", "app"]"#,
        r#""pg_isready -U app || exit 1""#,
    ));
    assert_eq!(compose_spelling, berth_spelling);
    let compose = String::from_utf8_lossy(&compose_spelling[Path::new("compose.yaml")]);
    assert!(
        compose.contains("test: [CMD, pg_isready, -U, app]\n"),
        "{compose}"
    );
    assert!(
        compose.contains("test: [CMD-SHELL, pg_isready -U app || exit 1]\n"),
        "{compose}"
    );
}

/// Names at and past the limits, with '_' and digits, on a stack called `my_…`: every
/// Kubernetes name and label that comes out is valid (kubernetes-validate strict,
/// kubectl kustomize, and the validators' name and label checks); past the limit the
/// name is refused with its length.
#[test]
fn kubernetes_names_at_the_limits_are_valid_or_refused() {
    let longest = format!("s{}", "_9".repeat(25)) + "x"; // 52 characters
    assert_eq!(longest.len(), 52);
    let volume = format!("v{}", "_0".repeat(25)) + "1";
    let stack = format!(
        r#"fun profile => {{
  services.{longest} = {{
    image = "postgres:16-alpine",
    ports = [{{ target = 5432 }}],
    volumes = [{{ source = "{volume}", target = "/data" }}],
    backup = {{ command = "pg_dump" }},
    kubernetes = {{
      ingress = {{ host = "db.example.com" }},
      autoscaling = {{ min = 1, max = 3, cpu_percent = 80 }},
    }},
  }},
  services.web_2 = {{
    image = "nginx:1.27-alpine",
    ports = [{{ target = 80 }}],
    depends_on.{longest} = "started",
    environment = {{ "spring.profile-name_1" = "x" }},
  }},
  volumes.{volume} = {{}},
}}
"#
    );
    let stack_name = format!("my_stack{}", "_x".repeat(22)); // 52 characters
    // The instance label is `<stack>-<profile>`: 87 characters here, cut to 63 with a hash.
    let profile = "qa-with-a-rather-long-profile-name";
    let (out, _dir) = Berth::schemas_only()
        .file(
            &format!("profiles/{profile}.ncl"),
            &QA_PROFILE.replace("\"qa\"", &format!("{profile:?}")),
        )
        .file(&format!("modules/stacks/{stack_name}.ncl"), &stack)
        .args(["build", "--profile", profile, "--out", "out"])
        .run();
    out.code(0);
    let k8s = out.root.join(format!("out/{stack_name}/{profile}/k8s"));
    let namespace = std::fs::read_to_string(k8s.join("namespace.yaml")).expect("namespace");
    assert!(
        namespace.contains(&format!("name: {}\n", stack_name.replace('_', "-"))),
        "{namespace}"
    );
    let report = validate_artifacts(&k8s);
    assert!(
        report.lines().any(|l| l.starts_with("ok kustomize ")),
        "{report}"
    );

    for length in [53, 63, 64, 70] {
        let name = format!("a{}", "b".repeat(length - 1));
        let (out, _dir) = Berth::schemas_only()
            .file(
                "modules/stacks/long.ncl",
                &format!(
                    "fun profile => {{ services.{name} = {{ image = \"nginx:1.27-alpine\" }} }}\n"
                ),
            )
            .args([
                "build",
                "--stack",
                "long",
                "--profile",
                "dev",
                "--out",
                "out",
            ])
            .run();
        out.code(2)
            .stderr_contains(&format!(
                "modules/stacks/long.ncl:1:27: services.{name}: `{name}` has {length} characters"
            ))
            .wrote_nothing();
    }
}
