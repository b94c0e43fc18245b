//! The provisioned Grafana dashboards: which ones a stack gets, their JSON checked against
//! the shape Grafana loads (panel ids, grid, datasource uids the provisioned datasources
//! have, targets), and every query through promtool, Prometheus's own PromQL parser.
//! Grafana's schema has no offline validator we can install from apt or PyPI, so the
//! structure is checked here, field by field.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::Berth;

const GRID_WIDTH: u64 = 24;

/// Every dashboard of every bundled stack × profile is well-formed, reads a provisioned
/// datasource, and its PromQL parses.
#[test]
fn dashboards_are_well_formed_and_their_queries_parse() {
    let (out, dir) = Berth::bundled().args(["build"]).run();
    out.code(0);
    let folders = provisioning_folders(&out.root.join("out"));
    assert!(folders.len() >= 6, "too few Grafana folders: {folders:?}");
    let mut exprs = BTreeSet::new();
    let mut n_dashboards = 0;
    for folder in &folders {
        let uids = datasource_uids(folder);
        for (path, dashboard) in dashboards(folder) {
            exprs.extend(check_dashboard(&path, &dashboard, &uids));
            n_dashboards += 1;
        }
    }
    assert!(n_dashboards >= 20, "only {n_dashboards} dashboards");
    promtool_parses(dir.path(), &exprs);
}

/// What each dashboard set follows from: exporters, node exporter, backups on a host with
/// timers, and the profile's `metrics`.
#[test]
fn dashboards_follow_the_stack() {
    let (out, _dir) = Berth::bundled().args(["build", "--stack", "ape"]).run();
    out.code(0);
    let names = |profile: &str| -> Vec<String> {
        let folder = out.root.join(format!(
            "out/ape/{profile}/grafana/provisioning/dashboards/berth"
        ));
        let Ok(entries) = std::fs::read_dir(folder) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names("prod-lite"),
        [
            "ape-backups.json",
            "ape-host.json",
            "ape-overview.json",
            "ape-redis-exporter.json",
            "ape-timescaledb-exporter.json",
        ]
    );
    // dev runs no exporters (`metrics` off): Grafana gets its datasources only.
    assert!(names("dev").is_empty(), "{:?}", names("dev"));
    // Kubernetes runs no backup timers: no dashboard of their age.
    let manifest = std::fs::read_to_string(out.root.join("out/ape/prod-lite/k8s/grafana.yaml"))
        .expect("read grafana manifest");
    assert!(
        manifest.contains("dashboards_berth_ape-host.json"),
        "{manifest}"
    );
    assert!(!manifest.contains("ape-backups.json"), "{manifest}");
    // The provider reads the folder where the Grafana module mounts the provisioning.
    let provider = std::fs::read_to_string(
        out.root
            .join("out/ape/prod-lite/grafana/provisioning/dashboards/dashboards.yml"),
    )
    .expect("read provider");
    assert!(
        provider.contains("path: /etc/grafana/provisioning/dashboards/berth"),
        "{provider}"
    );
}

/// A stack whose exporter names no service is refused with the field's place.
#[test]
fn an_exporter_of_no_service_is_refused() {
    let stack = r#"
let berth = import "berth.ncl" in
fun profile => {
  name = "lonely",
  services.web = { image = "nginx" },
  monitoring.exporters."db-exporter" = "postgres",
}
"#;
    let (out, _dir) = Berth::schemas_only()
        .file("modules/stacks/lonely.ncl", stack)
        .args(["build", "--stack", "lonely", "--no-profile"])
        .run();
    out.code(2)
        .stderr_contains("monitoring.exporters.db-exporter")
        .stderr_contains("unknown service `db-exporter`")
        .wrote_nothing();
}

fn provisioning_folders(out: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(out)
        .into_iter()
        .map(|e| e.expect("walk").into_path())
        .filter(|p| p.ends_with("grafana/provisioning/dashboards/dashboards.yml"))
        .map(|p| {
            p.parent()
                .and_then(Path::parent)
                .expect("folder")
                .to_path_buf()
        })
        .collect()
}

fn datasource_uids(folder: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(folder.join("datasources/datasources.yml"))
        .expect("read datasources");
    let file: Value = serde_saphyr::from_str(&text).expect("parse datasources");
    file["datasources"]
        .as_array()
        .expect("datasources")
        .iter()
        .map(|s| {
            s["uid"]
                .as_str()
                .expect("every datasource has a uid")
                .to_string()
        })
        .collect()
}

fn dashboards(folder: &Path) -> BTreeMap<PathBuf, Value> {
    let provider =
        std::fs::read_to_string(folder.join("dashboards/dashboards.yml")).expect("read provider");
    let provider: Value = serde_saphyr::from_str(&provider).expect("parse provider");
    assert_eq!(provider["apiVersion"], 1);
    let providers = provider["providers"].as_array().expect("providers");
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0]["type"], "file");
    let path = providers[0]["options"]["path"].as_str().expect("path");
    // The grafana module mounts ./grafana/provisioning on /etc/grafana/provisioning.
    let inside = path
        .strip_prefix("/etc/grafana/provisioning/")
        .unwrap_or_else(|| panic!("{path} is not under the mounted provisioning"));
    let entries = std::fs::read_dir(folder.join(inside)).expect("dashboards folder");
    let dashboards: BTreeMap<PathBuf, Value> = entries
        .map(|e| e.expect("entry").path())
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read dashboard");
            assert!(
                text.ends_with("}\n"),
                "{}: one final line feed",
                p.display()
            );
            let value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, value)
        })
        .collect();
    let uids: BTreeSet<&str> = dashboards
        .values()
        .map(|d| d["uid"].as_str().expect("uid"))
        .collect();
    assert_eq!(
        uids.len(),
        dashboards.len(),
        "{}: uids collide",
        folder.display()
    );
    dashboards
}

/// Checks one dashboard's structure; returns its queries.
fn check_dashboard(path: &Path, dashboard: &Value, datasources: &BTreeSet<String>) -> Vec<String> {
    let at = path.display();
    let uid = dashboard["uid"].as_str().expect("uid");
    assert!(
        !uid.is_empty() && uid.len() <= 40,
        "{at}: Grafana takes uids of 1 to 40 characters"
    );
    assert_eq!(
        path.file_name().and_then(|n| n.to_str()),
        Some(format!("{uid}.json").as_str())
    );
    assert!(
        dashboard["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{at}: title"
    );
    assert!(
        dashboard["schemaVersion"].as_u64().is_some(),
        "{at}: schemaVersion"
    );
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(!panels.is_empty(), "{at}: no panels");
    let mut ids = BTreeSet::new();
    let mut cells = BTreeSet::new();
    let mut exprs = Vec::new();
    for panel in panels {
        let id = panel["id"].as_u64().expect("panel id");
        assert!(ids.insert(id), "{at}: panel id {id} repeats");
        let title = panel["title"].as_str().expect("panel title");
        assert!(
            ["stat", "timeseries", "table"].contains(&panel["type"].as_str().expect("type")),
            "{at}: {title}: unknown panel type"
        );
        let grid = &panel["gridPos"];
        let [h, w, x, y] = ["h", "w", "x", "y"].map(|k| {
            grid[k]
                .as_u64()
                .unwrap_or_else(|| panic!("{at}: {title}: gridPos.{k}"))
        });
        assert!(
            h > 0 && w > 0 && x + w <= GRID_WIDTH,
            "{at}: {title}: gridPos {grid}"
        );
        // No two panels cover one grid cell.
        for row in y..y + h {
            for column in x..x + w {
                assert!(
                    cells.insert((row, column)),
                    "{at}: {title} overlaps a panel"
                );
            }
        }
        let uid_of = |value: &Value| value["uid"].as_str().expect("datasource uid").to_string();
        assert!(
            datasources.contains(&uid_of(&panel["datasource"])),
            "{at}: {title}: datasource {} is not provisioned ({datasources:?})",
            panel["datasource"]
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{at}: {title}: no query");
        let mut ref_ids = BTreeSet::new();
        for target in targets {
            assert!(
                ref_ids.insert(target["refId"].as_str().expect("refId")),
                "{at}: {title}: refId repeats"
            );
            assert!(
                datasources.contains(&uid_of(&target["datasource"])),
                "{at}: {title}: target datasource"
            );
            let expr = target["expr"].as_str().expect("expr");
            assert!(!expr.trim().is_empty(), "{at}: {title}: empty query");
            exprs.push(expr.to_string());
        }
    }
    exprs
}

/// Every query as a recording rule: `promtool check rules` parses each with Prometheus's
/// own PromQL parser.
fn promtool_parses(dir: &Path, exprs: &BTreeSet<String>) {
    let rules: Vec<Value> = exprs
        .iter()
        .enumerate()
        .map(|(n, expr)| serde_json::json!({ "record": format!("dashboard_query_{n}"), "expr": expr }))
        .collect();
    let file = serde_json::json!({ "groups": [{ "name": "dashboards", "rules": rules }] });
    let path = dir.join("dashboard-queries.rules.json");
    // JSON is YAML: promtool reads it as a rules file.
    std::fs::write(&path, file.to_string()).expect("write rules");
    let run = Command::new(crate::alerting::promtool())
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .expect("run promtool");
    assert!(
        run.status.success(),
        "promtool check rules on the dashboards' queries:\n{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        String::from_utf8_lossy(&run.stdout).contains(&format!("{} rules found", exprs.len())),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
}
