//! podman Quadlet units (profile switch `quadlet`): accepted by the Quadlet checks and
//! systemd-analyze, health-gated ordering kept, and the environment script run for real.

use std::process::Command;

use crate::support::{
    Berth, compose_config, copy_dir, n_passed, podman_profile, quadlet_dryrun, validate_artifacts,
    validator,
};

/// The bundled project plus a `podman` profile: prod-lite with Quadlet units on.
fn podman() -> Berth {
    Berth::bundled().file("profiles/podman.ncl", &podman_profile())
}

#[test]
fn quadlet_units_pass_the_checks_for_every_stack() {
    let (out, _dir) = podman().args(["build", "--profile", "podman"]).run();
    out.code(0);
    let stdout = validate_artifacts(&out.root.join("out"));
    let n_quadlet = n_passed(&stdout, "quadlet");
    assert!(
        n_quadlet >= 5 * 8,
        "expected every stack's units to be checked, saw {n_quadlet}:\n{stdout}"
    );
    for stack in ["aigym", "ape", "freshpoc", "melvin", "rag-engine"] {
        let script = out
            .root
            .join(format!("out/{stack}/podman/quadlet/berth-env"));
        let shellcheck = Command::new("shellcheck")
            .args(["--shell=bash", "--severity=info"])
            .arg(&script)
            .output()
            .expect("run shellcheck");
        assert!(
            shellcheck.status.success(),
            "{}",
            String::from_utf8_lossy(&shellcheck.stdout)
        );
    }
    // Bundled profiles leave Quadlet off.
    let (plain, _dir) = Berth::bundled()
        .args(["build", "--stack", "ape", "--profile", "prod-lite"])
        .run();
    plain.code(0);
    assert!(!plain.root.join("out/ape/prod-lite/quadlet").exists());
}

/// podman's own Quadlet generator (`quadlet -dryrun`, trixie's 5.4) turns every unit of
/// every bundled stack into its systemd service, with no warning (a short image name, which
/// podman resolves through the host's registries.conf, is one) and no unit skipped.
#[test]
fn podmans_generator_turns_every_unit_into_a_service() {
    // Beside the bundled stacks, mounts they do not use: an anonymous volume.
    let mounts = r#"fun profile => {
  name = "mounts",
  services.db = {
    image = "docker.io/library/postgres:16",
    volumes = [
      { type = "volume", target = "/var/lib/postgresql/data" },
      { type = "volume", target = "/seed", read_only = true },
    ],
  },
}
"#;
    let (out, _dir) = podman()
        .file("modules/stacks/mounts.ncl", mounts)
        .args(["build", "--profile", "podman"])
        .run();
    out.code(0);
    for stack in ["aigym", "ape", "freshpoc", "melvin", "rag-engine", "mounts"] {
        let dir = out.root.join(format!("out/{stack}/podman/quadlet"));
        let run = Command::new(validator("quadlet"))
            .arg("-dryrun")
            .env("QUADLET_UNIT_DIRS", &dir)
            .output()
            .expect("run quadlet");
        let stdout = String::from_utf8_lossy(&run.stdout);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{stack}: quadlet failed:\n{stderr}");
        let complaints: Vec<&str> = stderr
            .lines()
            .filter(|line| !line.contains("Loading source unit file"))
            .collect();
        assert!(complaints.is_empty(), "{stack}: {complaints:#?}");
        let mut units = 0;
        for entry in std::fs::read_dir(&dir).expect("read the quadlet folder") {
            let file = entry.expect("entry").file_name();
            let file = file.to_string_lossy();
            let service = match file.rsplit_once('.') {
                Some((name, "container")) => format!("{name}.service"),
                Some((name, "volume")) => format!("{name}-volume.service"),
                Some((name, "network")) => format!("{name}-network.service"),
                _ => continue,
            };
            units += 1;
            let generated = stdout
                .split(&format!("---{service}---\n"))
                .nth(1)
                .unwrap_or_else(|| panic!("{stack}: no {service} for {file}:\n{stdout}"));
            let generated = generated.split("\n---").next().unwrap_or_default();
            assert!(
                generated.contains("\nExecStart=/usr/bin/podman "),
                "{stack}: {service}:\n{generated}"
            );
        }
        assert!(units >= 2, "{stack}: only {units} units");
    }
}

#[test]
fn health_gated_ordering_survives() {
    let (out, _dir) = podman()
        .args(["build", "--stack", "ape", "--profile", "podman"])
        .run();
    out.code(0);
    let read = |unit: &str| {
        std::fs::read_to_string(out.root.join("out/ape/podman/quadlet").join(unit))
            .expect("read unit")
    };
    assert!(
        read("ape-timescaledb.container").contains("\nNotify=healthy\n"),
        "a dependency awaited healthy notifies when healthy"
    );
    let api = read("ape-api.container");
    for dependency in ["neo4j", "redis", "timescaledb"] {
        assert!(
            api.contains(&format!(
                "Requires=ape-{dependency}.service\nAfter=ape-{dependency}.service\n"
            )),
            "{api}"
        );
    }
    assert!(
        api.contains("Exec=uvicorn ape.main:app --host 0.0.0.0 --port 8000 --workers 4\n"),
        "{api}"
    );
    assert!(api.contains("PublishPort=8000:8000\n"), "{api}");
    // Databases stay on the host's loopback, as in the compose file.
    assert!(read("ape-timescaledb.container").contains("PublishPort=127.0.0.1:5433:5432\n"));
}

/// berth-env renders a service's environment from the host's .env, like compose would.
#[test]
fn berth_env_renders_the_environment_from_the_hosts_env() {
    let (out, _dir) = podman()
        .args(["build", "--stack", "ape", "--profile", "podman"])
        .run();
    out.code(0);
    let install = tempfile::tempdir().expect("install dir");
    copy_dir(&out.root.join("out/ape/podman"), install.path());
    let runtime = tempfile::tempdir().expect("runtime dir");
    let run = |env: &str| {
        std::fs::write(install.path().join(".env"), env).expect("write .env");
        Command::new("bash")
            .arg(install.path().join("quadlet/berth-env"))
            .args(["ape", "api"])
            .arg(install.path())
            .env("BERTH_RUNTIME_DIR", runtime.path())
            .output()
            .expect("run berth-env")
    };
    let secrets = "POSTGRES_PASSWORD=\"s3cr et\"\nNEO4J_PASSWORD=n\nAPI_KEYS=k\nSECRET_KEY=s\nCLAUDE_API_KEY=c\nDEEPSEEK_API_KEY=d\n";
    let output = run(&format!("# filled in by ops\n{secrets}LOG_LEVEL=error\n"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rendered =
        std::fs::read_to_string(runtime.path().join("ape/api.env")).expect("rendered env");
    assert!(
        rendered.contains("DATABASE_URL=postgresql://postgres:s3cr et@timescaledb:5432/ape\n"),
        "{rendered}"
    );
    assert!(
        rendered.contains("LOG_LEVEL=error\n"),
        "a value from .env wins: {rendered}"
    );
    assert!(
        rendered.contains("API_WORKERS=4\n"),
        "an unset variable takes its default: {rendered}"
    );
    assert!(
        rendered.contains("NEO4J_URI=bolt://neo4j:7687\n"),
        "{rendered}"
    );
    // A missing secret stops the unit, naming the secret.
    let output = run(&secrets.replace("API_KEYS=k\n", ""));
    assert!(!output.status.success(), "started without API_KEYS");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("API_KEYS is a secret"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Volumes and networks keep one engine name in every backend (`model::engine_name`): the
/// name Compose itself resolves is the one Quadlet creates or refers to, and an external
/// volume or network is referred to by name, never created by a unit.
#[test]
fn volumes_and_networks_have_the_names_compose_gives_them() {
    let podman = podman_profile();
    let (out, _dir) = Berth::schemas_only()
        .file("profiles/podman.ncl", &podman)
        .file(
            "modules/stacks/names.ncl",
            r#"fun profile => {
  volumes = {
    data = {},
    kept = { name = "kept-by-name" },
    shared = { external = true },
  },
  networks = {
    back = {},
    edge = { external = true },
  },
  services.app = {
    image = "docker.io/library/busybox:1",
    command = ["sleep", "infinity"],
    volumes = [
      { type = "volume", source = "data", target = "/data" },
      { type = "volume", source = "kept", target = "/kept" },
      { type = "volume", source = "shared", target = "/shared" },
    ],
    networks = ["back", "edge"],
  },
}
"#,
        )
        .args(["build", "--stack", "names", "--profile", "podman"])
        .run();
    out.code(0);
    let dir = out.root.join("out/names/podman");
    let config = Command::new("docker")
        .args(["compose", "-f"])
        .arg(dir.join("compose.yaml"))
        .args(["config", "--format", "json", "--no-interpolate"])
        .output()
        .expect("run docker compose config");
    assert!(
        config.status.success(),
        "{}",
        String::from_utf8_lossy(&config.stderr)
    );
    let config: serde_json::Value = serde_json::from_slice(&config.stdout).expect("json");
    let read = |unit: &str| {
        std::fs::read_to_string(dir.join("quadlet").join(unit))
            .unwrap_or_else(|e| panic!("{unit}: {e}"))
    };
    for (key, unit) in [("data", "names-data.volume"), ("kept", "names-kept.volume")] {
        let name = config["volumes"][key]["name"]
            .as_str()
            .expect("volume name");
        assert!(
            read(unit).contains(&format!("\nVolumeName={name}\n")),
            "{unit} should create {name}"
        );
    }
    let network = config["networks"]["back"]["name"].as_str().expect("name");
    assert!(read("names-back.network").contains(&format!("\nNetworkName={network}\n")));
    assert!(!dir.join("quadlet/names-shared.volume").exists());
    assert!(!dir.join("quadlet/names-edge.network").exists());
    let container = read("names-app.container");
    let shared = config["volumes"]["shared"]["name"].as_str().expect("name");
    let edge = config["networks"]["edge"]["name"].as_str().expect("name");
    assert!(
        container.contains(&format!("\nVolume={shared}:/shared\n")),
        "{container}"
    );
    assert!(
        container.contains(&format!("\nNetwork={edge}\n")),
        "{container}"
    );
    assert!(
        container.contains("\nVolume=names-data.volume:/data\n"),
        "{container}"
    );
}

/// A podman host runs the stack from its Quadlet units only: no compose unit beside them
/// (it would start the stack twice), and backups that need no Docker. The generated
/// `berth-backup` is run for real against stand-ins for `podman` and `systemctl` that log
/// their arguments: an offline dump stops the service's unit, runs a one-off container of
/// its image on its volumes, archives what it printed, and starts the unit again.
#[test]
fn podman_hosts_get_no_compose_unit_and_backups_through_podman() {
    let (out, _dir) = podman()
        .args(["build", "--stack", "rag-engine", "--profile", "podman"])
        .run();
    out.code(0);
    let systemd = out.root.join("out/rag-engine/podman/systemd");
    assert!(!systemd.join("rag-engine.service").exists());
    let unit = std::fs::read_to_string(systemd.join("rag-engine-backup-neo4j.service"))
        .expect("read backup unit");
    assert!(
        !unit.contains("docker.service") && !unit.contains("docker compose"),
        "{unit}"
    );
    assert!(
        unit.contains("\nAfter=rag-engine-neo4j.service\n"),
        "{unit}"
    );
    // The Quadlet unit the backup stops and starts is the one berth writes.
    assert!(
        out.root
            .join("out/rag-engine/podman/quadlet/rag-engine-neo4j.container")
            .exists()
    );

    let bin = out.root.join("fake-bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let log = out.root.join("calls.log");
    for tool in ["podman", "systemctl"] {
        let script = format!(
            "#!/bin/sh\necho \"{tool} $*\" >>'{}'\n[ {tool} = podman ] && echo dump-bytes\nexit 0\n",
            log.display()
        );
        let path = bin.join(tool);
        std::fs::write(&path, script).expect("write stand-in");
        let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        std::fs::set_permissions(&path, executable).expect("chmod");
    }
    let backups = out.root.join("backups");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = Command::new("bash")
        .arg(systemd.join("berth-backup"))
        .env("PATH", path)
        .env("BERTH_STACK", "rag-engine")
        .env("BERTH_SERVICE", "neo4j")
        .env("BERTH_BACKUP_DIR", &backups)
        .env("BERTH_BACKUP_KEEP", "7")
        .env("BERTH_BACKUP_EXTENSION", "neo4j.dump")
        .env("BERTH_BACKUP_MODE", "offline")
        .env(
            "BERTH_BACKUP_COMMAND",
            "neo4j-admin database dump neo4j --to-stdout",
        )
        .output()
        .expect("run berth-backup");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let calls = std::fs::read_to_string(&log).expect("read log");
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[0], "systemctl stop rag-engine-neo4j.service");
    assert!(
        calls[1].starts_with(
            "podman run --rm -i --entrypoint sh --volume=rag-engine_neo4j_data:/data "
        ) && calls[1].ends_with(" -c neo4j-admin database dump neo4j --to-stdout"),
        "{}",
        calls[1]
    );
    assert_eq!(calls[2], "systemctl start rag-engine-neo4j.service");
    let archives: Vec<_> = std::fs::read_dir(&backups)
        .expect("read backups")
        .map(|entry| entry.expect("entry").path())
        .collect();
    assert_eq!(archives.len(), 1, "{archives:?}");
    let dump = Command::new("gunzip")
        .arg("-c")
        .arg(&archives[0])
        .output()
        .expect("gunzip");
    assert_eq!(String::from_utf8_lossy(&dump.stdout), "dump-bytes\n");
}

/// The profile names the podman release its hosts run, and the units hold only keys that
/// release knows (Quadlet skips a whole unit for one unknown key): newer keys become
/// `PodmanArgs=` options, and what has no such option is refused with its place.
#[test]
fn units_fit_the_podman_release_the_profile_names() {
    let profile = |version: &str| {
        format!(
            "{{ name = \"podman\", description = \"A podman host.\", quadlet = true{version} }}\n"
        )
    };
    let stack = |depends: &str| {
        format!(
            r#"fun profile => {{
  services.db = {{
    image = "docker.io/library/busybox:1",
    command = ["sleep", "infinity"],
    healthcheck.test = ["true"],
    stop_signal = "SIGINT",
    extra_hosts = {{ "gateway" = "10.0.0.1" }},
  }},
  services.app = {{
    image = "docker.io/library/busybox:1",
    command = ["sleep", "infinity"],
    depends_on.db = "{depends}",
  }},
}}
"#
        )
    };
    let build = |version: &str, depends: &str| {
        Berth::schemas_only()
            .file("profiles/podman.ncl", &profile(version))
            .file("modules/stacks/pod.ncl", &stack(depends))
            .args(["build", "--stack", "pod", "--profile", "podman"])
            .run()
    };

    let (out, _dir) = build(", podman_version = \"4.9\"", "started");
    out.code(0);
    let unit = std::fs::read_to_string(out.root.join("out/pod/podman/quadlet/pod-db.container"))
        .expect("read unit");
    assert!(unit.contains("# For podman 4.9 or later"), "{unit}");
    for line in [
        "PodmanArgs=--network-alias=db",
        "PodmanArgs=--stop-signal=SIGINT",
        "PodmanArgs=--add-host=gateway:10.0.0.1",
    ] {
        assert!(unit.contains(&format!("\n{line}\n")), "{line} in:\n{unit}");
    }
    for key in ["NetworkAlias=", "StopSignal=", "AddHost=", "Notify="] {
        assert!(!unit.contains(&format!("\n{key}")), "{key} in:\n{unit}");
    }

    let (newer, _dir) = build(", podman_version = \"5.3\"", "healthy");
    newer.code(0);
    let unit = std::fs::read_to_string(newer.root.join("out/pod/podman/quadlet/pod-db.container"))
        .expect("read unit");
    for line in [
        "NetworkAlias=db",
        "StopSignal=SIGINT",
        "AddHost=gateway:10.0.0.1",
        "Notify=healthy",
    ] {
        assert!(unit.contains(&format!("\n{line}\n")), "{line} in:\n{unit}");
    }

    let (gated, _dir) = build(", podman_version = \"4.9\"", "healthy");
    gated
        .code(2)
        .stderr_contains("modules/stacks/pod.ncl:12:")
        .stderr_contains("services.app.depends_on.db: waiting for db to be healthy needs Notify=healthy (podman 5.0)")
        .wrote_nothing();
    let (unsaid, _dir) = build("", "started");
    unsaid
        .code(2)
        .stderr_contains("profiles/podman.ncl:1:")
        .stderr_contains("profile.quadlet: profile `podman` turns Quadlet on but does not say which podman release")
        .wrote_nothing();
    let (old, _dir) = build(", podman_version = \"4.6\"", "started");
    old.code(2)
        .stderr_contains(
            "profile.podman_version: berth writes Quadlet units for podman 4.7 or later",
        )
        .wrote_nothing();
}

/// File secrets reach a Quadlet container as Compose mounts them, at /run/secrets/<name>:
/// berth-env writes each from the host's .env onto /run before the start (0444 files, so
/// an image's own user reads them; a missing one stops the unit), and the unit mounts the
/// folder. Alertmanager reads its receiver URL so in prod-lite.
#[test]
fn file_secrets_are_written_by_berth_env_and_mounted_at_run_secrets() {
    let (out, _dir) = podman()
        .args(["build", "--stack", "ape", "--profile", "podman"])
        .run();
    out.code(0);
    let built = out.root.join("out/ape/podman");
    let unit = std::fs::read_to_string(built.join("quadlet/ape-alertmanager.container"))
        .expect("alertmanager unit");
    assert!(
        unit.contains("Volume=/run/berth/ape/alertmanager.secrets:/run/secrets:ro,Z\n"),
        "{unit}"
    );
    let pre = unit
        .lines()
        .find(|line| line.starts_with("ExecStartPre="))
        .expect("ExecStartPre");
    assert!(
        pre.ends_with(" ape alertmanager /opt/ape ALERTMANAGER_WEBHOOK_URL"),
        "{pre}"
    );
    let install = tempfile::tempdir().expect("install dir");
    copy_dir(&built, install.path());
    let runtime = tempfile::tempdir().expect("runtime dir");
    let run = |env: &str| {
        std::fs::write(install.path().join(".env"), env).expect("write .env");
        Command::new("bash")
            .arg(install.path().join("quadlet/berth-env"))
            .args(["ape", "alertmanager"])
            .arg(install.path())
            .arg("ALERTMANAGER_WEBHOOK_URL")
            .env("BERTH_RUNTIME_DIR", runtime.path())
            .output()
            .expect("run berth-env")
    };
    let output = run("ALERTMANAGER_WEBHOOK_URL=\"https://hooks.example/a b#c\"\n");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = runtime.path().join("ape/alertmanager.secrets");
    let file = dir.join("alertmanager_webhook_url");
    assert_eq!(
        std::fs::read_to_string(&file).expect("secret file"),
        "https://hooks.example/a b#c"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
    };
    assert_eq!(mode(&file), 0o444);
    assert_eq!(mode(&dir), 0o755);
    assert_eq!(mode(&runtime.path().join("ape")), 0o700);
    // Without the value the unit does not start, and the old file is not left behind.
    let output = run("OTHER=1\n");
    assert!(!output.status.success(), "started without its secret");
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("the secret ALERTMANAGER_WEBHOOK_URL is not set"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!dir.exists(), "the previous value was left on the host");
}

/// berth-env reads the host's .env as docker compose does (the same file runs the compose
/// stack): `export `, spaces around `=`, inline comments, both quotes, escapes, and values
/// reading the lines above. Checked against compose's own reading of the generated compose
/// file, value by value.
#[test]
fn berth_env_reads_the_env_file_as_compose_does() {
    let names = ["A", "B", "C", "D", "E", "F", "G", "H", "I"];
    let variables: String = names
        .iter()
        .map(|name| format!("    {name} = {{ description = \"{name}.\", default = \"unset\" }},\n"))
        .collect();
    let environment: String = names
        .iter()
        .map(|name| format!("      V_{name} = \"${{{name}}}\",\n"))
        .collect();
    let stack = format!(
        "fun profile => {{\n  variables = {{\n{variables}  }},\n  services.web = {{\n    image = \"docker.io/library/busybox:1\",\n    environment = {{\n{environment}    }},\n  }},\n}}\n"
    );
    let (out, _dir) = podman()
        .file("modules/stacks/envs.ncl", &stack)
        .args(["build", "--stack", "envs", "--profile", "podman"])
        .run();
    out.code(0);
    let built = out.root.join("out/envs/podman");
    let env = concat!(
        "# a comment\n",
        "export A=plain\n",
        "B = two words # an inline comment\n",
        "C='single $quoted # kept'\n",
        "D=\"double \\\"quoted\\\" \\\\ and # kept\"\n",
        "E=has#hash\n",
        "  F=  \n",
        "G=\"tab\\there\"\n",
        "H=${A}-and-${B}\n",
        "I=\"${C}!\"\n",
    );
    std::fs::write(built.join(".env"), env).expect("write .env");
    let runtime = tempfile::tempdir().expect("runtime dir");
    let output = Command::new("bash")
        .arg(built.join("quadlet/berth-env"))
        .args(["envs", "web"])
        .arg(&built)
        .env("BERTH_RUNTIME_DIR", runtime.path())
        .output()
        .expect("run berth-env");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rendered = std::fs::read_to_string(runtime.path().join("envs/web.env")).expect("env");
    let ours: std::collections::BTreeMap<&str, &str> = rendered
        .lines()
        .filter_map(|line| line.split_once('='))
        .collect();
    let compose = Command::new(crate::validators::compose())
        .arg("--env-file")
        .arg(built.join(".env"))
        .arg("-f")
        .arg(built.join("compose.yaml"))
        .args(["config", "--format", "json"])
        .output()
        .expect("run docker compose config");
    assert!(
        compose.status.success(),
        "{}",
        String::from_utf8_lossy(&compose.stderr)
    );
    let config: serde_json::Value = serde_json::from_slice(&compose.stdout).expect("json");
    let theirs = &config["services"]["web"]["environment"];
    for name in names {
        let key = format!("V_{name}");
        // `config` writes a literal `$` as `$$`, for its output to be read again.
        let compose_value = theirs[&key].as_str().map(|value| value.replace("$$", "$"));
        assert_eq!(
            Some(ours.get(key.as_str()).copied().unwrap_or("<missing>")),
            compose_value.as_deref(),
            "{key}: berth-env and compose read .env differently\n{rendered}"
        );
    }
    assert_eq!(ours["V_H"], "plain-and-two words");
    // A value podman's one-line environment file cannot carry is refused, with its line.
    std::fs::write(built.join(".env"), "A=\"two\\nlines\"\n").expect("write .env");
    let output = Command::new("bash")
        .arg(built.join("quadlet/berth-env"))
        .args(["envs", "web"])
        .arg(&built)
        .env("BERTH_RUNTIME_DIR", runtime.path())
        .output()
        .expect("run berth-env");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(".env:1: A holds a line break"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Subnets, IPv6 and a fixed address mean the same in the compose file (as `docker compose
/// config` reads it) and in the Quadlet units (as podman's generator turns them into
/// `podman network create` and `podman run` arguments), on the default network and on one
/// of the stack's own.
#[test]
fn subnets_and_fixed_addresses_reach_compose_and_podman_alike() {
    let podman = podman_profile();
    let (out, _dir) = Berth::schemas_only()
        .file("profiles/podman.ncl", &podman)
        .file(
            "modules/stacks/addressed.ncl",
            r#"fun profile => {
  networks = {
    default = { subnets = [{ subnet = "10.91.0.0/24" }] },
    back = {
      enable_ipv6 = true,
      subnets = [
        { subnet = "10.92.0.0/24", ip_range = "10.92.0.128/25" },
        { subnet = "fd00:92::/64", gateway = "fd00:92::1" },
      ],
    },
  },
  services.app = {
    image = "docker.io/library/busybox:1",
    command = ["sleep", "infinity"],
    networks = ["back"],
    network_addresses.back = { ipv4 = "10.92.0.10", ipv6 = "fd00:92::10" },
  },
  services.edge = {
    image = "docker.io/library/busybox:1",
    command = ["sleep", "infinity"],
    network_addresses.default.ipv4 = "10.91.0.20",
  },
}
"#,
        )
        .args(["build", "--stack", "addressed", "--profile", "podman"])
        .run();
    out.code(0);
    let dir = out.root.join("out/addressed/podman");
    let config = compose_config(&dir, "", &[]);
    assert_eq!(
        config["networks"]["back"]["ipam"]["config"],
        serde_json::json!([
            { "subnet": "10.92.0.0/24", "ip_range": "10.92.0.128/25" },
            { "subnet": "fd00:92::/64", "gateway": "fd00:92::1" },
        ])
    );
    assert_eq!(config["networks"]["back"]["enable_ipv6"], true);
    assert_eq!(
        config["networks"]["default"]["ipam"]["config"][0]["subnet"],
        "10.91.0.0/24"
    );
    let app = &config["services"]["app"]["networks"]["back"];
    assert_eq!(app["ipv4_address"], "10.92.0.10");
    assert_eq!(app["ipv6_address"], "fd00:92::10");
    assert_eq!(
        config["services"]["edge"]["networks"]["default"]["ipv4_address"],
        "10.91.0.20"
    );

    let units = dir.join("quadlet");
    let generated = quadlet_dryrun(&units);
    let exec_start = |service: &str| -> String {
        let unit = generated
            .split(&format!("---{service}---\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("no {service}:\n{generated}"));
        unit.lines()
            .find(|line| line.starts_with("ExecStart="))
            .unwrap_or_else(|| panic!("{service} has no ExecStart"))
            .to_string()
    };
    // podman pairs the i-th gateway and range with the i-th subnet: the subnet with a
    // gateway comes first, the one with a range after it, and the range has no position.
    let back = exec_start("addressed-back-network.service");
    for argument in [
        "--ipv6",
        "--subnet fd00:92::/64 --gateway fd00:92::1 --subnet 10.92.0.0/24 addressed_back",
    ] {
        assert!(back.contains(argument), "{argument}: {back}");
    }
    let note = std::fs::read_to_string(units.join("addressed-back.network")).expect("unit");
    assert!(
        note.contains("# warning: podman cannot take the ip_range 10.92.0.128/25 of 10.92.0.0/24"),
        "{note}"
    );
    assert!(exec_start("addressed-network.service").contains("--subnet 10.91.0.0/24"));
    let app = exec_start("addressed-app.service");
    assert!(
        app.contains("--network addressed_back:ip=10.92.0.10,ip6=fd00:92::10"),
        "{app}"
    );
    let edge = exec_start("addressed-edge.service");
    assert!(
        edge.contains("--network addressed_default:ip=10.91.0.20"),
        "{edge}"
    );
}

/// `published = "random"`: a free host port the engine picks, in Compose (a `ports` entry
/// without `published`, as `docker compose config` reads it) and in podman (`--publish`
/// without a host port, from podman's generator), with and without a host address; a
/// service with replicas may use it (each replica gets its own port).
#[test]
fn random_host_ports_reach_compose_and_podman_alike() {
    let podman = podman_profile();
    let (out, _dir) = Berth::schemas_only()
        .file("profiles/podman.ncl", &podman)
        .file(
            "modules/stacks/anyport.ncl",
            r#"fun profile => {
  services.app = {
    image = "docker.io/library/busybox:1",
    command = ["sleep", "infinity"],
    replicas = 2,
    ports = [
      { target = 8080, published = "random" },
      { target = 8081, published = "random", host_ip = "127.0.0.1", protocol = "udp" },
    ],
  },
}
"#,
        )
        .args(["build", "--stack", "anyport", "--profile", "podman"])
        .run();
    out.code(0);
    let dir = out.root.join("out/anyport/podman");
    let config = compose_config(&dir, "", &[]);
    assert_eq!(
        config["services"]["app"]["ports"],
        serde_json::json!([
            { "mode": "ingress", "target": 8080, "protocol": "tcp" },
            { "mode": "ingress", "host_ip": "127.0.0.1", "target": 8081, "protocol": "udp" },
        ])
    );
    let unit = std::fs::read_to_string(dir.join("quadlet/anyport-app.container")).expect("unit");
    assert!(unit.contains("\nPublishPort=8080\n"), "{unit}");
    assert!(
        unit.contains("\nPublishPort=127.0.0.1::8081/udp\n"),
        "{unit}"
    );
    let generated = quadlet_dryrun(&dir.join("quadlet"));
    assert!(
        generated.contains("--publish 8080 --publish 127.0.0.1::8081/udp"),
        "{generated}"
    );
}

/// A Quadlet build writes no compose unit, whose header held the install text: the
/// Quadlet README carries it instead, with the same host paths, certificates, images and
/// secret files, how to install the units, and that they are rootful podman's.
#[test]
fn a_podman_build_ships_its_install_text() {
    let stack = r#"fun profile => {
  name = "hosted",
  variables.API_KEY = {
    description = "The web service's API key.",
    secret = true,
    file = "./secrets/api.key",
  },
  services.web = {
    build = { context = "./web" },
    secrets = ["API_KEY"],
    volumes = [
      { type = "bind", source = "/srv/media", target = "/media" },
      { type = "bind", source = "./certs", target = "/etc/certs", read_only = true, tls_certificate = true },
    ],
  },
}
"#;
    let (out, _dir) = Berth::schemas_only()
        .file("profiles/podman.ncl", &podman_profile())
        .file("modules/stacks/hosted.ncl", stack)
        .args(["build", "--stack", "hosted"])
        .args(["--profile", "podman", "--profile", "prod-lite"])
        .run();
    out.code(0);
    let built = out.root.join("out/hosted/podman");
    assert!(!built.join("systemd/hosted.service").exists());
    let readme = std::fs::read_to_string(built.join("quadlet/README")).expect("README");
    for said in [
        "/srv/media (web)",
        "for ROOTFUL podman 5.2 or later",
        "They are not rootless units",
        "/run/berth/hosted",
        "1. Copy this build to /opt/hosted, and fill in /opt/hosted/.env from .env.template",
        "2. cp /opt/hosted/quadlet/*.container /opt/hosted/quadlet/*.network /etc/containers/systemd/\n",
        "3. systemctl daemon-reload\n",
        "4. systemctl start hosted-web.service\n",
        "Images: localhost/hosted-web:latest are built on this host from ./web",
    ] {
        assert!(readme.contains(said), "{said}:\n{readme}");
    }
    // The compose unit's install notes, but for its images' (named and built otherwise).
    let compose_unit =
        std::fs::read_to_string(out.root.join("out/hosted/prod-lite/systemd/hosted.service"))
            .expect("compose unit");
    let notes: Vec<&str> = compose_unit
        .lines()
        .skip_while(|line| !line.starts_with("#       systemctl enable --now"))
        .skip(1)
        .take_while(|line| line.starts_with("# "))
        .map(|line| line.trim_start_matches("# "))
        .collect();
    let notes = notes.join("\n");
    let mut n_notes = 0;
    for note in split_notes(&notes) {
        if note.starts_with("Images:") {
            continue;
        }
        n_notes += 1;
        assert!(readme.contains(&note), "{note}\nnot in:\n{readme}");
    }
    assert_eq!(n_notes, 3, "TLS, host paths and secret file in:\n{notes}");
    let unit = std::fs::read_to_string(built.join("quadlet/hosted-web.container")).expect("unit");
    assert!(
        unit.contains("# For rootful podman (/etc/containers/systemd/): README in this folder says how to install.\n"),
        "{unit}"
    );
    // podman's generator reads unit files only.
    let generated = quadlet_dryrun(&built.join("quadlet"));
    assert!(
        generated.contains("---hosted-web.service---"),
        "{generated}"
    );
}

/// The install notes of a unit's header, each with its indented continuation lines.
fn split_notes(text: &str) -> Vec<String> {
    let mut notes: Vec<String> = Vec::new();
    for line in text.lines() {
        match notes.last_mut() {
            Some(note) if line.starts_with(' ') => {
                note.push('\n');
                note.push_str(line);
            }
            _ => notes.push(line.to_string()),
        }
    }
    notes
}

/// Services that wait on each other in every way: api on db healthy and on the migrate job
/// completed, worker on api started.
const WAITING: &str = r#"fun profile => {
  name = "waits",
  services.db = {
    image = "docker.io/library/postgres:16",
    healthcheck = { test = ["CMD", "pg_isready"] },
  },
  services.migrate = {
    image = "docker.io/library/postgres:16",
    command = ["true"],
    depends_on.db = "healthy",
    restart | force = "no",
  },
  services.api = {
    image = "docker.io/library/nginx:1",
    depends_on = { db = "healthy", migrate = "completed" },
  },
  services.worker = {
    image = "docker.io/library/busybox:1.36",
    command = ["sleep", "100000"],
    depends_on.api = "started",
  },
}
"#;

/// A dependency that misses its health gate at boot fails its dependents' start jobs, and
/// systemd never retries those: so each dependency's unit queues its dependents' start
/// once it is ready (after `READY=1`, which `Notify=healthy` sends once healthy; after a
/// job's success), keeping `Requires=`/`After=` and the health gate. A finished job stays
/// active, so being started again does not run it again. podman's generator keeps all of
/// it, and systemd-analyze accepts it.
#[test]
fn a_dependency_starts_its_dependents_once_ready() {
    let (out, _dir) = Berth::schemas_only()
        .file("profiles/podman.ncl", &podman_profile())
        .file("modules/stacks/waits.ncl", WAITING)
        .args(["build", "--stack", "waits", "--profile", "podman"])
        .run();
    out.code(0);
    let units = out.root.join("out/waits/podman/quadlet");
    let read = |unit: &str| std::fs::read_to_string(units.join(unit)).expect("read unit");
    let start = |service: &str| {
        format!("\nExecStartPost=-/usr/bin/systemctl --no-block start waits-{service}.service\n")
    };
    let db = read("waits-db.container");
    assert!(db.contains("\nNotify=healthy\n"), "{db}");
    for dependent in ["api", "migrate"] {
        assert!(db.contains(&start(dependent)), "{db}");
    }
    assert!(
        db.contains("# Once healthy, ExecStartPost= starts the units that depend on it (waits-api, waits-migrate): one whose start failed because this unit was not ready in time at boot starts when this unit comes up later."),
        "{db}"
    );
    let migrate = read("waits-migrate.container");
    assert!(
        migrate.contains("\nType=oneshot\nRemainAfterExit=yes\n"),
        "{migrate}"
    );
    assert!(migrate.contains(&start("api")), "{migrate}");
    let api = read("waits-api.container");
    for dependency in ["db", "migrate"] {
        assert!(
            api.contains(&format!(
                "\nRequires=waits-{dependency}.service\nAfter=waits-{dependency}.service\n"
            )),
            "{api}"
        );
    }
    assert!(api.contains(&start("worker")), "{api}");
    assert!(
        api.contains("# Once its container runs, ExecStartPost= starts"),
        "{api}"
    );
    let worker = read("waits-worker.container");
    assert!(!worker.contains("ExecStartPost="), "{worker}");

    let generated = quadlet_dryrun(&units);
    let service = |name: &str| -> String {
        let unit = generated
            .split(&format!("---waits-{name}.service---\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("no waits-{name}.service:\n{generated}"));
        unit.split("\n---").next().unwrap_or_default().to_string()
    };
    let db = service("db");
    assert!(db.contains("\nType=notify\n"), "{db}");
    assert!(db.contains("--sdnotify=healthy"), "{db}");
    for dependent in ["api", "migrate"] {
        assert!(db.contains(&start(dependent)), "{db}");
    }
    // The job runs in the foreground (no `-d`): its unit is done when the job is.
    let migrate = service("migrate");
    assert!(
        migrate.contains("\nType=oneshot\nRemainAfterExit=yes\n"),
        "{migrate}"
    );
    assert!(migrate.contains(&start("api")), "{migrate}");
    let run = migrate
        .lines()
        .find(|line| line.starts_with("ExecStart="))
        .expect("ExecStart");
    assert!(!run.contains(" -d "), "{run}");
    validate_artifacts(&units);
}

/// An environment value reading a secret goes through `EnvironmentFile=`, so podman shows it
/// in `podman inspect` (as Docker does under Compose): the unit says so and points to
/// `secrets = [...]`, which keeps a value out; a file secret gets no such line.
#[test]
fn a_secret_in_the_environment_is_said_to_show_in_podman_inspect() {
    let stack = r#"fun profile => {
  name = "leaks",
  variables.DB_PASSWORD = { description = "Database password.", secret = true },
  variables.API_KEY = { description = "API key.", secret = true },
  variables.LOG_LEVEL = { description = "Log level.", default = "info" },
  services.db = {
    image = "docker.io/library/postgres:16",
    environment = {
      POSTGRES_PASSWORD = "${DB_PASSWORD}",
      LOG = "${LOG_LEVEL}",
    },
  },
  services.api = {
    image = "docker.io/library/nginx:1",
    environment.LOG = "${LOG_LEVEL}",
    secrets = ["API_KEY"],
  },
}
"#;
    let (out, _dir) = Berth::schemas_only()
        .file("profiles/podman.ncl", &podman_profile())
        .file("modules/stacks/leaks.ncl", stack)
        .args(["build", "--stack", "leaks", "--profile", "podman"])
        .run();
    out.code(0);
    let units = out.root.join("out/leaks/podman/quadlet");
    let db = std::fs::read_to_string(units.join("leaks-db.container")).expect("unit");
    assert!(
        db.contains("# Secret DB_PASSWORD reaches the environment (EnvironmentFile=): `podman inspect` shows its value,"),
        "{db}"
    );
    assert!(
        db.contains("Mount it with `secrets = [...]` instead"),
        "{db}"
    );
    assert!(!db.contains("Secret LOG_LEVEL"), "{db}");
    let api = std::fs::read_to_string(units.join("leaks-api.container")).expect("unit");
    assert!(!api.contains("reaches the environment"), "{api}");
}

/// A bind's SELinux relabelling (`selinux = "z"`/`"Z"`) is Compose's `bind.selinux`; in a
/// Quadlet unit it is the `z`/`Z` option of `Volume=`, beside `ro`, which podman's own
/// generator passes on as `-v SOURCE:TARGET:ro,z`. A volume has no such option.
#[test]
fn a_relabelled_bind_keeps_its_selinux_option() {
    let (out, _dir) = Berth::schemas_only()
        .file("profiles/podman.ncl", &podman_profile())
        .file(
            "modules/stacks/labelled.ncl",
            r#"fun profile => {
  volumes.data = {},
  services.app = {
    image = "docker.io/library/busybox:1",
    command = ["sleep", "infinity"],
    volumes = [
      { type = "bind", source = "/srv/shared", target = "/shared", read_only = true, selinux = "z" },
      { type = "bind", source = "/srv/own", target = "/own", selinux = "Z" },
      { type = "volume", source = "data", target = "/data" },
    ],
  },
}
"#,
        )
        .args(["build", "--stack", "labelled", "--profile", "podman"])
        .run();
    out.code(0);
    let dir = out.root.join("out/labelled/podman/quadlet");
    let unit = std::fs::read_to_string(dir.join("labelled-app.container")).expect("unit");
    let volumes: Vec<&str> = unit
        .lines()
        .filter_map(|line| line.strip_prefix("Volume="))
        .collect();
    assert_eq!(
        volumes,
        [
            "/srv/shared:/shared:ro,z",
            "/srv/own:/own:Z",
            "labelled-data.volume:/data"
        ],
        "{unit}"
    );
    let generated = quadlet_dryrun(&dir);
    assert!(
        generated.contains("-v /srv/shared:/shared:ro,z")
            && generated.contains("-v /srv/own:/own:Z"),
        "{generated}"
    );
}
