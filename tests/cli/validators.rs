//! Every artifact goes through the real tool that consumes it. The validators are
//! required: a missing one fails the test with the command that installs it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Berth, REPO, n_passed, validate_artifacts};

const INSTALL_HINT: &str = "run scripts/install-validators (scripts/test does it for you)";

pub fn validators_home() -> PathBuf {
    std::env::var_os("ARTIFACT_VALIDATORS_HOME")
        .map_or_else(|| PathBuf::from("/opt/artifact-validators"), PathBuf::from)
}

/// docker compose v2 (not Debian's compose v1, which rejects the current spec).
pub fn compose() -> PathBuf {
    let path = validators_home().join("bin/docker-compose");
    assert!(
        path.exists(),
        "compose v2 not found at {}: {INSTALL_HINT}",
        path.display()
    );
    let version = Command::new(&path)
        .args(["version", "--short"])
        .output()
        .expect("run docker compose");
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.starts_with('2'),
        "{} is compose {version}, need v2: {INSTALL_HINT}",
        path.display()
    );
    path
}

/// `docker compose config -q` on one built folder; returns (success, stderr).
fn compose_config(dir: &Path, env_file: Option<&Path>) -> (bool, String) {
    let mut command = Command::new(compose());
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir)
        .env("DOCKER_CONFIG", dir);
    command
        .arg("--project-directory")
        .arg(dir)
        .arg("-f")
        .arg(dir.join("compose.yaml"));
    if let Some(env_file) = env_file {
        command.arg("--env-file").arg(env_file);
    }
    let output = command
        .args(["config", "-q"])
        .output()
        .expect("run docker compose config");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A filled-in .env from a .env.template: every listed variable set to a placeholder.
fn fill_env_template(template: &str) -> String {
    template
        .lines()
        .filter_map(|line| {
            let line = line.strip_prefix("# ").unwrap_or(line);
            let (name, _) = line.split_once('=')?;
            let is_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            is_name.then(|| format!("{name}=1\n"))
        })
        .collect()
}

fn built_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = walkdir::WalkDir::new(root.join("out"))
        .into_iter()
        .map(|e| e.expect("walk").into_path())
        .filter(|p| p.join("compose.yaml").is_file())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn compose_accepts_every_stack_and_profile_with_a_filled_env() {
    let (out, _dir) = Berth::bundled().args(["build"]).run();
    out.code(0);
    let dirs = built_dirs(&out.root);
    assert_eq!(dirs.len(), 15);
    for dir in dirs {
        let template = std::fs::read_to_string(dir.join(".env.template")).expect("read template");
        let env_file = dir.join(".env.test");
        std::fs::write(&env_file, fill_env_template(&template)).expect("write env");
        let (ok, stderr) = compose_config(&dir, Some(&env_file));
        assert!(ok, "docker compose rejected {}:\n{stderr}", dir.display());
    }
}

#[test]
fn dev_runs_with_no_env_file_and_other_profiles_demand_their_secrets() {
    let (out, _dir) = Berth::bundled().args(["build"]).run();
    out.code(0);
    for dir in built_dirs(&out.root) {
        let (ok, stderr) = compose_config(&dir, None);
        if dir.ends_with("dev") {
            assert!(ok, "dev must need no .env: {}:\n{stderr}", dir.display());
        } else {
            assert!(!ok, "{} started without its secrets", dir.display());
            assert!(
                stderr.contains("is a secret: set it in .env"),
                "{}: {stderr}",
                dir.display()
            );
        }
    }
}

/// The project's copy of the shared validators over a whole build: compose, env files,
/// systemd units (systemd-analyze), Prometheus config and rules (promtool), Alertmanager
/// (amtool). Every recognised file must pass, and every kind must have been checked.
#[test]
fn validate_artifacts_passes_on_the_whole_build() {
    compose();
    let (out, _dir) = Berth::bundled().args(["build"]).run();
    out.code(0);
    let stdout = validate_artifacts(&out.root.join("out"));
    assert_eq!(
        n_passed(&stdout, "kustomize"),
        15,
        "kubectl kustomize must build every stack x profile:\n{stdout}"
    );
    for kind in [
        "compose",
        "env",
        "systemd",
        "prometheus",
        "prometheus-rules",
        "alertmanager",
        "k8s",
        "kustomize",
    ] {
        assert!(
            n_passed(&stdout, kind) > 0,
            "no {kind} file was validated:\n{stdout}"
        );
    }
    // What it cannot classify is checked by the tests below.
    for line in stdout.lines().filter(|line| line.starts_with("skip")) {
        assert!(
            line.ends_with("/systemd/berth-backup")
                || line.ends_with("/datasources/datasources.yml")
                // dashboards::dashboards_are_well_formed_and_their_queries_parse.
                || line.ends_with("/dashboards/dashboards.yml")
                || (line.contains("/dashboards/berth/") && line.ends_with(".json"))
                // A service's own files (files::, e.g. Promtail's and Loki's configs, read
                // as YAML). The nginx module's needs its upstreams' names and the
                // operator's certificate for nginx -t:
                // runtime::the_generated_proxy_configuration_serves_through_its_routes
                // runs it in nginx, with both, and proxies through it.
                || line.contains("/files/")
                // berth's own list of what it wrote (out_folder.rs checks it).
                || line.ends_with("/out/.berth-output"),
            "unchecked artifact: {line}"
        );
    }
}

/// The backup script every backup unit runs passes shellcheck and bash's own parser.
#[test]
fn backup_scripts_pass_shellcheck() {
    let (out, _dir) = Berth::bundled()
        .args(["build", "--profile", "prod-lite"])
        .run();
    out.code(0);
    let scripts: Vec<PathBuf> = walkdir::WalkDir::new(out.root.join("out"))
        .into_iter()
        .map(|e| e.expect("walk").into_path())
        .filter(|p| p.ends_with("systemd/berth-backup"))
        .collect();
    assert_eq!(scripts.len(), 5, "every bundled stack declares backups");
    for script in scripts {
        let bash = Command::new("bash")
            .arg("-n")
            .arg(&script)
            .output()
            .expect("run bash -n");
        assert!(
            bash.status.success(),
            "{}: {}",
            script.display(),
            String::from_utf8_lossy(&bash.stderr)
        );
        let shellcheck = Command::new("shellcheck")
            .args(["--shell=bash", "--severity=info"])
            .arg(&script)
            .output();
        let shellcheck = shellcheck.unwrap_or_else(|e| panic!("shellcheck: {e}: {INSTALL_HINT}"));
        assert!(
            shellcheck.status.success(),
            "{}:\n{}",
            script.display(),
            String::from_utf8_lossy(&shellcheck.stdout)
        );
    }
}

/// Grafana's provisioning has no offline validator: check its shape against Grafana's format.
#[test]
fn grafana_datasources_point_at_the_stack() {
    let (out, _dir) = Berth::bundled()
        .args(["build", "--stack", "freshpoc", "--profile", "prod-lite"])
        .run();
    out.code(0);
    let path = out
        .root
        .join("out/freshpoc/prod-lite/grafana/provisioning/datasources/datasources.yml");
    let text = std::fs::read_to_string(path).expect("read datasources");
    let file: serde_json::Value = serde_saphyr::from_str(&text).expect("parse datasources");
    assert_eq!(file["apiVersion"], 1);
    let sources = file["datasources"].as_array().expect("datasources list");
    let find = |kind: &str| {
        sources
            .iter()
            .find(|s| s["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} datasource"))
    };
    assert_eq!(find("prometheus")["url"], "http://prometheus:9090");
    assert_eq!(find("prometheus")["isDefault"], true);
    assert_eq!(find("loki")["url"], "http://loki:3100");
}

/// Values a YAML 1.1 reader would misread come out quoted: a golden test, and a check by
/// PyYAML (a YAML 1.1 reader) that each one reads back as the string it was.
#[test]
fn yaml_1_1_ambiguous_scalars_are_quoted() {
    let fixture = Path::new(REPO).join("tests/fixtures/yaml11");
    let stack = std::fs::read_to_string(fixture.join("yaml11.ncl")).expect("read fixture");
    let (out, _dir) = Berth::schemas_only()
        .file("modules/stacks/yaml11.ncl", &stack)
        .args(["build", "--stack", "yaml11", "--no-profile"])
        .run();
    out.code(0);
    let compose_path = out.root.join("out/yaml11/none/compose.yaml");
    let compose = std::fs::read_to_string(&compose_path).expect("read compose");
    let expected = std::fs::read_to_string(fixture.join("compose.yaml")).expect("read golden");
    assert_eq!(
        compose, expected,
        "tests/fixtures/yaml11/compose.yaml is the golden file; copy the new output there if the change is intended"
    );
    let python = validators_home().join("venv/bin/python");
    assert!(
        python.exists(),
        "PyYAML's venv not found at {}: {INSTALL_HINT}",
        python.display()
    );
    let script = "import json, sys, yaml\n\
                  env = yaml.safe_load(open(sys.argv[1]))['services']['app']['environment']\n\
                  want = json.loads(sys.argv[2])\n\
                  bad = {k: repr(env.get(k)) for k in want if env.get(k) != want[k]}\n\
                  print(bad); sys.exit(1 if bad or len(env) != len(want) else 0)\n";
    let source = std::fs::read_to_string(fixture.join("yaml11.ncl")).expect("read fixture");
    let want: serde_json::Map<String, serde_json::Value> = source
        .lines()
        .filter_map(|line| line.trim().strip_suffix("\",")?.split_once(" = \""))
        .filter(|(key, _)| key.starts_with('V'))
        .map(|(key, value)| {
            (
                key.to_string(),
                serde_json::Value::String(value.to_string()),
            )
        })
        .collect();
    assert_eq!(want.len(), 17, "fixture parse");
    let output = Command::new(python)
        .args(["-c", script])
        .arg(&compose_path)
        .arg(serde_json::Value::Object(want).to_string())
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "PyYAML misread: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A secret mounted as a file: compose reads its content from the environment (.env), so
/// the compose file names the variable and never holds the value.
#[test]
fn file_secrets_come_from_the_environment() {
    let stack = "fun profile => {\n  services.db = {\n    image = \"postgres:16-alpine\",\n    \
                 environment.POSTGRES_PASSWORD_FILE = \"/run/secrets/db_password\",\n    secrets = [\"DB_PASSWORD\"],\n  },\n  \
                 variables.DB_PASSWORD = { description = \"Database password.\", secret = true, dev_value = \"dev-only-db\" },\n}\n";
    let (out, _dir) = Berth::schemas_only()
        .file("modules/stacks/files.ncl", stack)
        .args(["build", "--stack", "files"])
        .run();
    out.code(0);
    let dir = out.root.join("out/files/prod-lite");
    let compose = std::fs::read_to_string(dir.join("compose.yaml")).expect("read");
    assert!(
        compose.contains("\nsecrets:\n  db_password:\n    environment: DB_PASSWORD\n"),
        "{compose}"
    );
    assert!(
        compose.contains("    secrets:\n      - db_password\n"),
        "{compose}"
    );
    assert!(!compose.contains("dev-only-db"), "{compose}");
    let env_file = dir.join(".env.test");
    std::fs::write(&env_file, "DB_PASSWORD=s3cret\n").expect("write env");
    let (ok, stderr) = compose_config(&dir, Some(&env_file));
    assert!(ok, "docker compose rejected a file secret:\n{stderr}");
}
