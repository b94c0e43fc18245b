//! podman Quadlet units (profile switch `quadlet`): accepted by the Quadlet checks and
//! systemd-analyze, health-gated ordering kept, and the environment script run for real.

use std::path::Path;
use std::process::Command;

use crate::support::{Berth, REPO, copy_dir, n_passed, validate_artifacts};

/// The bundled project plus a `podman` profile: prod-lite with Quadlet units on.
fn podman() -> Berth {
    let prod_lite = std::fs::read_to_string(Path::new(REPO).join("profiles/prod-lite.ncl"))
        .expect("read prod-lite");
    let podman = prod_lite
        .replace("name = \"prod-lite\",", "name = \"podman\",")
        .replace("  systemd = true,", "  systemd = true,\n  quadlet = true,");
    Berth::bundled().file("profiles/podman.ncl", &podman)
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
