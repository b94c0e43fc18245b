//! A secret read from a file (`variables.X.file`) with a multi-line value, the reason people
//! use file secrets: mounted with its exact bytes by each backend's real tool — docker
//! compose, podman's Quadlet generator and berth-env, kubectl kustomize. (Apply: the
//! apply module's `file_secrets_are_read_at_apply_and_never_kept`.)

use std::path::Path;
use std::process::Command;

use crate::support::{Berth, copy_dir, podman_profile, quadlet_dryrun, validate_artifacts};
use crate::validators::compose;

/// A key as people keep them: several lines, a trailing line feed, and what shells,
/// systemd and Compose would each read as syntax (`$`, `%`, quotes, a tab).
const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQ$IBADANBgkqhkiG9w0B%AQEFAASC 'q' \"dq\"\n\tindented line\n-----END PRIVATE KEY-----\n";

/// One service mounting the key (at its lower-case name) and an environment secret under
/// the exact name a Compose file gave it.
const STACK: &str = r#"fun profile => {
  name = "keys",
  variables.TLS_KEY = {
    description = "The service's private key.",
    secret = true,
    file = "./secrets/tls.key",
  },
  variables.MYSQL_USER = { description = "Database user.", secret = true },
  services.api = {
    image = "docker.io/library/busybox:1.36",
    command = ["sleep", "100000"],
    environment.TLS_KEY_FILE = "/run/secrets/tls_key",
    secrets = ["TLS_KEY", { variable = "MYSQL_USER", target = "MYSQL_USER" }],
  },
}
"#;

fn project() -> Berth {
    Berth::schemas_only()
        .file("modules/stacks/keys.ncl", STACK)
        .file("profiles/podman.ncl", &podman_profile())
}

/// Compose reads the file as a `file` secret (relative to the project directory, as bind
/// sources are) and mounts both secrets where the images look.
#[test]
fn compose_mounts_the_file_as_a_file_secret() {
    let (out, _dir) = project()
        .args(["build", "--stack", "keys", "--profile", "prod-lite"])
        .run();
    out.code(0);
    let built = out.root.join("out/keys/prod-lite");
    let config = Command::new(compose())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &built)
        .env("DOCKER_CONFIG", &built)
        .env("MYSQL_USER", "zabbix")
        .arg("--project-directory")
        .arg(&out.root)
        .arg("-f")
        .arg(built.join("compose.yaml"))
        .args(["config", "--format", "json"])
        .output()
        .expect("run docker compose config");
    assert!(
        config.status.success(),
        "{}",
        String::from_utf8_lossy(&config.stderr)
    );
    let config: serde_json::Value = serde_json::from_slice(&config.stdout).expect("JSON");
    assert_eq!(
        config["secrets"]["tls_key"]["file"],
        out.root.join("secrets/tls.key").display().to_string()
    );
    assert_eq!(config["secrets"]["MYSQL_USER"]["environment"], "MYSQL_USER");
    let targets: Vec<&str> = config["services"]["api"]["secrets"]
        .as_array()
        .expect("secrets")
        .iter()
        .map(|s| s["target"].as_str().expect("target"))
        .collect();
    assert_eq!(targets, ["/run/secrets/tls_key", "/run/secrets/MYSQL_USER"]);
    // The operator is told where the file goes, and .env does not ask for it.
    let unit = std::fs::read_to_string(built.join("systemd/keys.service")).expect("unit");
    assert!(
        unit.contains("# Secret: put TLS_KEY in /opt/keys/secrets/tls.key (read by api;"),
        "{unit}"
    );
    let template = std::fs::read_to_string(built.join(".env.template")).expect("template");
    assert!(!template.contains("TLS_KEY="), "{template}");
    assert!(
        template.contains("# Secret, read from the file ./secrets/tls.key"),
        "{template}"
    );
}

/// Quadlet: podman's generator takes the unit, and the unit's own berth-env command copies
/// the file's bytes into the service's secrets folder (0444, beside the environment
/// secret under its Compose name); without the file the unit does not start and no
/// previous copy stays behind.
#[test]
fn berth_env_copies_the_file_and_stops_without_it() {
    let (out, _dir) = project()
        .args(["build", "--stack", "keys", "--profile", "podman"])
        .run();
    out.code(0);
    let built = out.root.join("out/keys/podman");
    let generated = quadlet_dryrun(&built.join("quadlet"));
    assert!(generated.contains("---keys-api.service---"), "{generated}");
    let unit = std::fs::read_to_string(built.join("quadlet/keys-api.container")).expect("unit");
    assert!(
        unit.contains("Volume=/run/berth/keys/api.secrets:/run/secrets:ro,Z\n"),
        "{unit}"
    );
    let pre = unit
        .lines()
        .find_map(|line| line.strip_prefix("ExecStartPre="))
        .expect("ExecStartPre");
    assert!(
        pre.ends_with(
            " keys api /opt/keys tls_key=file:/opt/keys/secrets/tls.key MYSQL_USER=MYSQL_USER"
        ),
        "{pre}"
    );
    // The unit's own arguments, with the install folder where this test installed it.
    let install = tempfile::tempdir().expect("install dir");
    copy_dir(&built, install.path());
    let install_dir = install.path().display().to_string();
    let args: Vec<String> = pre
        .split(' ')
        .skip(1)
        .map(|word| word.replace("/opt/keys", &install_dir))
        .collect();
    std::fs::write(install.path().join(".env"), "MYSQL_USER=zabbix\n").expect(".env");
    let runtime = tempfile::tempdir().expect("runtime dir");
    let run = || {
        Command::new("bash")
            .args(&args)
            .env("BERTH_RUNTIME_DIR", runtime.path())
            .output()
            .expect("run berth-env")
    };
    // Without the file: a clear message, and the unit stops.
    let output = run();
    assert!(!output.status.success(), "started without its secret file");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "berth-env: api: the secret file {install_dir}/secrets/tls.key (mounted as /run/secrets/tls_key) is missing or unreadable"
        )),
        "{stderr}"
    );
    std::fs::create_dir_all(install.path().join("secrets")).expect("mkdir");
    std::fs::write(install.path().join("secrets/tls.key"), KEY).expect("key");
    let output = run();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = runtime.path().join("keys/api.secrets");
    assert_eq!(
        std::fs::read(dir.join("tls_key")).expect("key copy"),
        KEY.as_bytes()
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("MYSQL_USER")).expect("user"),
        "zabbix"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| std::fs::metadata(path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&dir.join("tls_key")), 0o444);
    // The file gone again: the old copy is removed with the refusal.
    std::fs::remove_file(install.path().join("secrets/tls.key")).expect("rm");
    assert!(!run().status.success());
    assert!(!dir.exists(), "the previous copy was left on the host");
}

/// Kubernetes: the stack's Secret gets the key from `secrets/tls_key` beside
/// kustomization.yaml (secrets.env and the kustomization say so), byte for byte, and the
/// pod mounts both keys at the paths the other backends use.
#[test]
fn kustomize_reads_the_file_into_the_secret_with_its_line_breaks() {
    let (out, _dir) = project()
        .args(["build", "--stack", "keys", "--profile", "prod-lite"])
        .run();
    out.code(0);
    let k8s = out.root.join("out/keys/prod-lite/k8s");
    let secrets_env = std::fs::read_to_string(k8s.join("secrets.env")).expect("secrets.env");
    assert!(
        secrets_env.contains(
            "#   secrets/tls_key: TLS_KEY (the file ./secrets/tls.key of a compose host)\n"
        ),
        "{secrets_env}"
    );
    assert!(!secrets_env.contains("TLS_KEY="), "{secrets_env}");
    let kustomization =
        std::fs::read_to_string(k8s.join("kustomization.yaml")).expect("kustomization");
    assert!(
        kustomization.contains("put the secret files it lists in secrets/")
            && kustomization.contains("    files:\n      - TLS_KEY=secrets/tls_key\n"),
        "{kustomization}"
    );
    // What the operator does: the file in place, the other secret filled in.
    std::fs::create_dir_all(k8s.join("secrets")).expect("mkdir");
    std::fs::write(k8s.join("secrets/tls_key"), KEY).expect("key");
    std::fs::write(
        k8s.join("secrets.env"),
        secrets_env.replace("MYSQL_USER=\n", "MYSQL_USER=zabbix\n"),
    )
    .expect("secrets.env");
    validate_artifacts(&k8s);
    let rendered = Command::new("kubectl")
        .arg("kustomize")
        .arg(&k8s)
        .output()
        .expect("run kubectl kustomize");
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let docs: Vec<serde_json::Value> = String::from_utf8(rendered.stdout)
        .expect("UTF-8")
        .split("\n---\n")
        .map(|doc| serde_saphyr::from_str(doc).expect("manifest"))
        .collect();
    let secret = docs
        .iter()
        .find(|doc| doc["kind"] == "Secret")
        .expect("the Secret");
    let decoded = |key: &str| base64(secret["data"][key].as_str().expect("key in the Secret"));
    assert_eq!(decoded("TLS_KEY"), KEY.as_bytes());
    assert_eq!(decoded("MYSQL_USER"), b"zabbix");
    let deployment = docs
        .iter()
        .find(|doc| doc["kind"] == "Deployment")
        .expect("the Deployment");
    let items = &deployment["spec"]["template"]["spec"]["volumes"][0]["secret"]["items"];
    assert_eq!(
        items,
        &serde_json::json!([
            { "key": "TLS_KEY", "path": "tls_key" },
            { "key": "MYSQL_USER", "path": "MYSQL_USER" },
        ])
    );
}

/// Standard base64 (padded), as a Secret's `data` holds it: kustomize folds long values
/// over lines, which the API server's decoder skips.
fn base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sextets: Vec<u32> = text
        .bytes()
        .filter(|b| !b"\r\n".contains(b))
        .take_while(|b| *b != b'=')
        .map(|b| ALPHABET.iter().position(|a| *a == b).expect("base64 digit") as u32)
        .collect();
    let mut bytes = Vec::new();
    for chunk in sextets.chunks(4) {
        let bits = chunk.iter().fold(0u32, |acc, s| (acc << 6) | s) << (6 * (4 - chunk.len()));
        bytes.extend(&bits.to_be_bytes()[1..chunk.len()]);
    }
    bytes
}
