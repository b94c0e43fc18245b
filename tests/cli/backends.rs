//! The systemd and Prometheus backends carry the seeds' figures.

use crate::support::Berth;

fn build(stack: &str) -> (crate::support::Output, tempfile::TempDir) {
    let (out, dir) = Berth::bundled().args(["build", "--stack", stack]).run();
    out.code(0);
    (out, dir)
}

fn read(out: &crate::support::Output, path: &str) -> String {
    std::fs::read_to_string(out.root.join("out").join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn ape_prometheus_scrapes_what_the_seed_lists() {
    let (out, _dir) = build("ape");
    let config: serde_json::Value =
        serde_saphyr::from_str(&read(&out, "ape/prod-lite/prometheus/prometheus.yml"))
            .expect("parse");
    assert_eq!(config["global"]["scrape_interval"], "15s");
    assert_eq!(config["global"]["evaluation_interval"], "15s");
    assert_eq!(config["global"]["external_labels"]["stack"], "ape");
    assert_eq!(
        config["global"]["external_labels"]["environment"],
        "prod-lite"
    );
    let jobs: Vec<&str> = config["scrape_configs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["job_name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        jobs,
        [
            "prometheus",
            // Its own receiver failures are alerted on (AlertmanagerNotificationsFailing).
            "alertmanager",
            "api",
            "node-exporter",
            "redis-exporter",
            "timescaledb-exporter",
            "health",
            // TCP connects to Redis and TimescaleDB, whose healthchecks are commands.
            "reachable"
        ]
    );
    assert_eq!(
        config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0],
        "alertmanager:9093"
    );
    // 30-day retention, on Prometheus's command line.
    assert!(read(&out, "ape/prod-lite/compose.yaml").contains("--storage.tsdb.retention.time=30d"));
    // Exporters run only where metrics are on.
    assert!(!read(&out, "ape/dev/compose.yaml").contains("redis_exporter"));
    assert!(read(&out, "ape/staging/compose.yaml").contains("oliver006/redis_exporter"));
}

#[test]
fn alert_rules_follow_from_the_stack() {
    let (out, _dir) = build("ape");
    let rules = read(&out, "ape/prod-lite/prometheus/alerts.rules.yml");
    let rules: serde_json::Value = serde_saphyr::from_str(&rules).expect("parse rules");
    let all: Vec<&serde_json::Value> = rules["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|group| group["rules"].as_array().expect("rules"))
        .collect();
    let alerts: std::collections::BTreeSet<&str> = all
        .iter()
        .filter_map(|rule| rule["alert"].as_str())
        .collect();
    for alert in [
        "TargetDown",
        "ServiceUnhealthy",
        "HostMemoryPressure",
        "HostDiskAlmostFull",
        "BackupTooOld",
        "BackupNeverSucceeded",
    ] {
        assert!(alerts.contains(alert), "missing {alert}: {alerts:?}");
    }
    // One pair of backup rules per service with a backup, each on that service's metric.
    for alert in ["BackupTooOld", "BackupNeverSucceeded"] {
        let services: Vec<&str> = all
            .iter()
            .filter(|rule| rule["alert"] == alert)
            .map(|rule| {
                let service = rule["labels"]["service"].as_str().expect("service label");
                let metric = format!(
                    "berth_backup_last_success_timestamp_seconds{{stack=\"ape\",service=\"{service}\"}}"
                );
                let expr = rule["expr"].as_str().expect("expr");
                assert!(expr.contains(&metric), "{alert} of {service}: {expr}");
                service
            })
            .collect();
        assert_eq!(services, ["neo4j", "timescaledb"], "{alert}");
    }
    // dev runs no exporters and no backups: only what it can observe.
    let dev = read(&out, "ape/dev/prometheus/alerts.rules.yml");
    assert!(
        dev.contains("TargetDown") && !dev.contains("Backup") && !dev.contains("Host"),
        "{dev}"
    );
}

#[test]
fn melvin_dumps_postgres_and_mongodb_nightly_keeping_seven() {
    let (out, _dir) = build("melvin");
    for service in ["postgres", "mongodb"] {
        let unit = read(
            &out,
            &format!("melvin/prod-lite/systemd/melvin-backup-{service}.service"),
        );
        assert!(
            unit.contains("Environment=\"BERTH_BACKUP_DIR=/var/backups/melvin\""),
            "{unit}"
        );
        assert!(
            unit.contains("Environment=\"BERTH_BACKUP_KEEP=7\""),
            "{unit}"
        );
        assert!(unit.contains("Type=oneshot"), "{unit}");
        let timer = read(
            &out,
            &format!("melvin/prod-lite/systemd/melvin-backup-{service}.timer"),
        );
        for line in [
            "OnCalendar=daily",
            "Persistent=true",
            "RandomizedDelaySec=30min",
            &format!("Unit=melvin-backup-{service}.service"),
        ] {
            assert!(
                timer.contains(line),
                "{service} timer lacks {line}:\n{timer}"
            );
        }
    }
    // The backups write a metric; prod-lite runs the Prometheus that alerts on it.
    let rules = std::fs::read_to_string(
        out.root
            .join("out/melvin/prod-lite/prometheus/alerts.rules.yml"),
    )
    .expect("melvin prod-lite has alert rules");
    assert!(
        rules.contains("BackupTooOld") && rules.contains("BackupNeverSucceeded"),
        "{rules}"
    );
}

#[test]
fn stack_unit_runs_compose_from_the_install_folder() {
    let (out, _dir) = build("rag-engine");
    let unit = read(&out, "rag-engine/prod-lite/systemd/rag-engine.service");
    for line in [
        "Requires=docker.service",
        "After=docker.service network-online.target",
        "WorkingDirectory=/opt/rag-engine",
        "ExecStart=/usr/bin/docker compose --project-name rag-engine --file compose.yaml up --detach --wait --remove-orphans",
        "ExecStop=/usr/bin/docker compose --project-name rag-engine --file compose.yaml down",
        "Restart=on-failure",
        "WantedBy=multi-user.target",
    ] {
        assert!(unit.contains(line), "unit lacks {line}:\n{unit}");
    }
    // Compose reads .env by its own rules; systemd reading it too would hand compose other
    // values (inline comments kept, no `$` expansion) that win over the file.
    assert!(!unit.contains("EnvironmentFile="), "{unit}");
    // Neo4j community cannot dump a live database: its backup runs offline.
    let neo4j = read(
        &out,
        "rag-engine/prod-lite/systemd/rag-engine-backup-neo4j.service",
    );
    assert!(neo4j.contains("BERTH_BACKUP_MODE=offline"), "{neo4j}");
}

/// A profile's `registry` names built images the same way in every backend, so what CI
/// pushes is what Compose, Quadlet and Kubernetes pull; the install text says so.
#[test]
fn built_images_come_from_the_profiles_registry_everywhere() {
    let prod_lite = std::fs::read_to_string(
        std::path::Path::new(crate::support::REPO).join("profiles/prod-lite.ncl"),
    )
    .expect("read prod-lite");
    let profile = |name: &str, extra: &str| {
        prod_lite
            .replace("name = \"prod-lite\",", &format!("name = \"{name}\","))
            .replace(
                "  systemd = true,",
                &format!("  systemd = true,\n  registry = \"ghcr.io/acme/\",\n  image_tag = \"v1.2.3\",{extra}"),
            )
    };
    let (out, _dir) = Berth::bundled()
        .file("profiles/pushed.ncl", &profile("pushed", ""))
        .file(
            "profiles/podman.ncl",
            &profile("podman", "\n  quadlet = true,\n  podman_version = \"5.2\","),
        )
        .args([
            "build",
            "--stack",
            "rag-engine",
            "--profile",
            "pushed",
            "--profile",
            "podman",
        ])
        .run();
    out.code(0);
    let image = "ghcr.io/acme/rag-engine-api:v1.2.3";
    let dir = out.root.join("out/rag-engine/pushed");
    let read = |path: &str| std::fs::read_to_string(dir.join(path)).expect(path);
    let compose: serde_json::Value =
        serde_saphyr::from_str(&read("compose.yaml")).expect("compose yaml");
    assert_eq!(compose["services"]["api"]["image"], image);
    assert!(compose["services"]["api"].get("build").is_some());
    let k8s = read("k8s/api.yaml");
    assert!(k8s.contains(&format!("image: {image}\n")), "{k8s}");
    assert!(!k8s.contains("imagePullPolicy: IfNotPresent"), "{k8s}");
    assert!(!k8s.contains("services.api.build"), "{k8s}");
    assert!(!out.stderr.contains("services.api.build"), "{}", out.stderr);
    let unit = std::fs::read_to_string(
        out.root
            .join("out/rag-engine/podman/quadlet/rag-engine-api.container"),
    )
    .expect("Quadlet unit");
    assert!(unit.contains(&format!("\nImage={image}\n")), "{unit}");
    assert!(!unit.contains("Built locally"), "{unit}");
    let install = read("systemd/rag-engine.service");
    assert!(
        install.contains(&format!("# Images: CI builds and pushes {image}")),
        "{install}"
    );
    // Without a registry, the manifest says the cluster cannot build.
    let (local, _dir) = Berth::bundled()
        .args(["build", "--stack", "rag-engine", "--profile", "prod-lite"])
        .run();
    local.code(0);
    assert!(
        local
            .stderr
            .contains("services.api.build: Kubernetes pulls images: set the profile's `registry`")
    );
}
