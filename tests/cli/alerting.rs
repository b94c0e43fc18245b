//! Alerting that reaches someone, and outages that alert: over every bundled stack ×
//! profile, an Alertmanager has a receiver; an exporter's own health gauge (`pg_up`,
//! `redis_up`) has a rule; every service with a healthcheck and a port is probed; and
//! promtool, the real rule engine, fires those rules on a down series. A production
//! profile with alerting and no receiver is refused, naming the file, line and field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Berth, Output};

/// Every stack × profile of the bundled project: folder `out/<stack>/<profile>`.
fn whole_build() -> (Output, tempfile::TempDir) {
    let (out, dir) = Berth::bundled().args(["build"]).run();
    out.code(0);
    (out, dir)
}

fn builds(out: &Output) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for stack in std::fs::read_dir(out.root.join("out")).expect("read out") {
        let stack = stack.expect("entry").path();
        if stack.is_dir() {
            for profile in std::fs::read_dir(&stack).expect("read stack") {
                found.push(profile.expect("entry").path());
            }
        }
    }
    found.sort();
    assert_eq!(found.len(), 15, "five stacks × three profiles: {found:?}");
    found
}

fn yaml(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn rules(build: &Path) -> Vec<Value> {
    let rules = yaml(&build.join("prometheus/alerts.rules.yml")).expect("rules file");
    rules["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|group| group["rules"].as_array().expect("rules").clone())
        .collect()
}

/// The scrape jobs of `prometheus.yml` by name.
fn jobs(prometheus: &Value) -> BTreeMap<String, Value> {
    prometheus["scrape_configs"]
        .as_array()
        .expect("scrape_configs")
        .iter()
        .map(|job| {
            (
                job["job_name"].as_str().expect("job_name").to_string(),
                job.clone(),
            )
        })
        .collect()
}

/// The `service` labels of a blackbox job's targets.
fn probed(job: Option<&Value>) -> Vec<String> {
    let Some(job) = job else {
        return Vec::new();
    };
    job["static_configs"]
        .as_array()
        .expect("static_configs")
        .iter()
        .map(|target| {
            target["labels"]["service"]
                .as_str()
                .expect("service")
                .to_string()
        })
        .collect()
}

#[test]
fn every_alertmanager_posts_somewhere_and_every_production_alerting_build_runs_one() {
    let (out, _dir) = whole_build();
    let mut checked = 0;
    for build in builds(&out) {
        let name = build.display().to_string();
        let Some(prometheus) = yaml(&build.join("prometheus/prometheus.yml")) else {
            continue;
        };
        let alertmanager = yaml(&build.join("alertmanager/alertmanager.yml"));
        // prod-lite is the bundled profile with `production` and `alerting` on.
        if build.ends_with("prod-lite") {
            assert!(
                alertmanager.is_some(),
                "{name}: alerting on, no Alertmanager"
            );
            assert!(
                prometheus["alerting"]["alertmanagers"].is_array(),
                "{name}: Prometheus sends its alerts nowhere"
            );
        }
        let Some(alertmanager) = alertmanager else {
            continue;
        };
        let route = alertmanager["route"]["receiver"].as_str().expect("route");
        let receiver = alertmanager["receivers"]
            .as_array()
            .expect("receivers")
            .iter()
            .find(|r| r["name"] == route)
            .unwrap_or_else(|| panic!("{name}: route to unknown receiver {route}"));
        let webhooks = receiver["webhook_configs"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(!webhooks.is_empty(), "{name}: receiver `{route}` is empty");
        // The file the webhook reads is a secret the Alertmanager container mounts.
        let compose = yaml(&build.join("compose.yaml")).expect("compose");
        let mounted = &compose["services"]["alertmanager"]["secrets"];
        for webhook in &webhooks {
            let file = webhook["url_file"].as_str().expect("url_file");
            let secret = file
                .strip_prefix("/run/secrets/")
                .expect("under /run/secrets");
            assert!(
                mounted
                    .as_array()
                    .is_some_and(|m| m.iter().any(|s| s == secret)),
                "{name}: {file} is not mounted into alertmanager: {mounted}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} Alertmanagers checked");
}

/// Exporters stay `up` when their database is down: a rule reads their own gauge. The
/// test knows the exporters by image, independently of the modules' `up_metric`.
#[test]
fn every_database_exporter_has_a_rule_on_its_own_up_gauge_and_every_healthcheck_is_probed() {
    const GAUGES: [(&str, &str); 2] = [
        ("prometheuscommunity/postgres-exporter", "pg_up"),
        ("oliver006/redis_exporter", "redis_up"),
    ];
    let (out, _dir) = whole_build();
    let mut exporters = 0;
    for build in builds(&out) {
        let name = build.display().to_string();
        let Some(prometheus) = yaml(&build.join("prometheus/prometheus.yml")) else {
            continue;
        };
        let compose = yaml(&build.join("compose.yaml")).expect("compose");
        let services = compose["services"].as_object().expect("services");
        let rules = rules(&build);
        let jobs = jobs(&prometheus);
        for (service, spec) in services {
            let image = spec["image"].as_str().unwrap_or_default();
            let Some((_, gauge)) = GAUGES.iter().find(|(i, _)| image.contains(i)) else {
                continue;
            };
            assert!(
                jobs.contains_key(service),
                "{name}: {service} is not scraped"
            );
            let expr = format!("{gauge}{{job=\"{service}\"}} == 0");
            assert!(
                rules
                    .iter()
                    .any(|r| r["expr"] == expr.as_str() && r["labels"]["severity"] == "critical"),
                "{name}: no critical rule `{expr}`"
            );
            exporters += 1;
        }
        // With a blackbox exporter, every service with a healthcheck and a port is
        // probed: over HTTP where its healthcheck is HTTP, by a TCP connect otherwise.
        if !services.contains_key("blackbox") {
            continue;
        }
        let http = probed(jobs.get("health"));
        let tcp = probed(jobs.get("reachable"));
        for (service, spec) in services {
            let has_port = spec.get("ports").or_else(|| spec.get("expose")).is_some();
            if spec.get("healthcheck").is_none() || !has_port {
                continue;
            }
            let times = http.iter().chain(&tcp).filter(|s| *s == service).count();
            // A service scraped itself (not through an exporter) is watched by `up`.
            if times == 0 && jobs.contains_key(service) {
                continue;
            }
            assert_eq!(
                times, 1,
                "{name}: {service} probed {times} times (http {http:?}, tcp {tcp:?})"
            );
        }
        let alerts: Vec<&str> = rules.iter().filter_map(|r| r["alert"].as_str()).collect();
        if !tcp.is_empty() {
            assert!(alerts.contains(&"ServiceUnreachable"), "{name}: {alerts:?}");
        }
    }
    // ape, freshpoc, rag-engine, aigym, melvin × staging, prod-lite run some.
    assert!(exporters >= 8, "only {exporters} database exporters found");
    // The services the issue names, which only a command checks.
    let freshpoc = out
        .root
        .join("out/freshpoc/prod-lite/prometheus/prometheus.yml");
    let tcp = probed(jobs(&yaml(&freshpoc).expect("freshpoc")).get("reachable"));
    for service in ["kafka", "zookeeper", "minio", "airflow-db"] {
        assert!(
            tcp.iter().any(|s| s == service),
            "freshpoc: {service} not in {tcp:?}"
        );
    }
}

pub fn promtool() -> PathBuf {
    crate::support::validator("promtool")
}

/// Runs `promtool test rules` on `tests` (its unit-test cases) against the build's
/// alerts.rules.yml, from a test file `<name>.test.yml` beside it; fails with its output.
fn promtool_test_rules(
    build: &Path,
    name: &str,
    evaluation_interval: &str,
    tests: &Value,
    stack: &str,
) {
    let test_file = build.join(format!("prometheus/{name}.test.yml"));
    let document = json!({
        "rule_files": ["alerts.rules.yml"],
        "evaluation_interval": evaluation_interval,
        "tests": tests,
    });
    // JSON is YAML: promtool reads it as its test file.
    std::fs::write(&test_file, document.to_string()).expect("write test file");
    let run = Command::new(promtool())
        .args(["test", "rules"])
        .arg(&test_file)
        .current_dir(build.join("prometheus"))
        .output()
        .expect("run promtool");
    assert!(
        run.status.success(),
        "{stack}: promtool test rules:\n{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}

/// The generated rules in the real rule engine: `promtool test rules` with a down series
/// per new rule. Pending (no alert) before `for:` has passed, firing after with the rule's
/// labels and annotations, and silent while the series reads 1.
#[test]
fn promtool_fires_the_outage_rules_on_down_series() {
    let (out, _dir) = Berth::bundled()
        .args(["build", "--profile", "prod-lite"])
        .run();
    out.code(0);
    // (stack, alert, service label, series, its labels as Prometheus scrapes them).
    let cases = [
        (
            "ape",
            "ExporterTargetDown",
            "timescaledb-exporter",
            "pg_up",
            "timescaledb-exporter:9187",
            None,
        ),
        (
            "ape",
            "ExporterTargetDown",
            "redis-exporter",
            "redis_up",
            "redis-exporter:9121",
            None,
        ),
        (
            "freshpoc",
            "ServiceUnreachable",
            "kafka",
            "probe_success",
            "kafka:9092",
            Some("reachable"),
        ),
        (
            "freshpoc",
            "ServiceUnreachable",
            "airflow-db",
            "probe_success",
            "airflow-db:5432",
            Some("reachable"),
        ),
    ];
    for stack in ["ape", "freshpoc"] {
        let build = out.root.join(format!("out/{stack}/prod-lite"));
        let rules = rules(&build);
        let mut tests = Vec::new();
        for (_, alert, service, metric, instance, probe_job) in
            cases.iter().filter(|c| c.0 == stack)
        {
            let rule = rules
                .iter()
                .find(|r| {
                    // An exporter's rule is labelled with the exporter and the service it
                    // watches; the probes' rule applies to every probed service.
                    r["alert"] == *alert
                        && (probe_job.is_some() || r["labels"]["exporter"] == *service)
                })
                .unwrap_or_else(|| panic!("{stack}: no {alert} for {service}"));
            assert_eq!(rule["for"], "2m", "{alert}: {rule}");
            let mut labels = serde_json::Map::new();
            labels.insert("instance".into(), json!(instance));
            match probe_job {
                // The blackbox job labels each target with its service.
                Some(job) => {
                    labels.insert("job".into(), json!(job));
                    labels.insert("service".into(), json!(service));
                }
                None => {
                    labels.insert("job".into(), json!(service));
                }
            }
            let selector: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", v.as_str().expect("label")))
                .collect();
            let series = format!("{metric}{{{}}}", selector.join(","));
            let mut expected = labels.clone();
            for (key, value) in rule["labels"].as_object().expect("rule labels") {
                expected.insert(key.clone(), value.clone());
            }
            // The templates the rules use, expanded as Prometheus does.
            let annotations: serde_json::Map<String, Value> = rule["annotations"]
                .as_object()
                .expect("annotations")
                .iter()
                .map(|(k, v)| {
                    let text = v.as_str().expect("annotation");
                    let text = text
                        .replace("{{ $labels.service }}", service)
                        .replace("{{ $labels.instance }}", instance);
                    (k.clone(), Value::String(text))
                })
                .collect();
            tests.push(json!({
                "interval": "15s",
                // Down from the first sample on, for 5 minutes.
                "input_series": [{ "series": series, "values": "0x20" }],
                "alert_rule_test": [
                    // Pending: down for 1 minute, under `for: 2m`.
                    { "eval_time": "1m", "alertname": alert, "exp_alerts": [] },
                    { "eval_time": "3m", "alertname": alert, "exp_alerts": [
                        { "exp_labels": expected, "exp_annotations": annotations }
                    ] },
                ],
            }));
            // Up: nothing fires.
            tests.push(json!({
                "interval": "15s",
                "input_series": [{ "series": series, "values": "1x20" }],
                "alert_rule_test": [{ "eval_time": "4m", "alertname": alert, "exp_alerts": [] }],
            }));
        }
        promtool_test_rules(&build, "outages", "15s", &json!(tests), stack);
    }
}

/// APE's Neo4j is backed up offline (stopped for the dump): while the backup script's
/// `berth_backup_running` gauge reads 1 its failing probes raise nothing; once it reads 0
/// again (the service should be back), a still failing probe alerts after `for:` as usual.
/// Another service's probes are not held back by Neo4j's backup.
#[test]
fn an_offline_backup_does_not_page_for_the_service_it_stops() {
    let (out, _dir) = Berth::bundled()
        .args(["build", "--stack", "ape", "--profile", "prod-lite"])
        .run();
    out.code(0);
    let build = out.root.join("out/ape/prod-lite");
    let running = |service: &str, values: &str| {
        json!({
            "series": format!(
                "berth_backup_running{{job=\"node-exporter\",instance=\"node-exporter:9100\",stack=\"ape\",service=\"{service}\"}}"
            ),
            "values": values,
        })
    };
    let probe = |job: &str, service: &str| {
        format!("probe_success{{job=\"{job}\",instance=\"{service}:7474\",service=\"{service}\"}}")
    };
    let rules = rules(&build);
    let mut tests = Vec::new();
    for (alert, job) in [
        ("ServiceUnhealthy", "health"),
        ("ServiceUnreachable", "reachable"),
    ] {
        let rule = rules
            .iter()
            .find(|r| r["alert"] == alert)
            .unwrap_or_else(|| panic!("no {alert} rule"));
        let firing = |service: &str| {
            let instance = format!("{service}:7474");
            // The rule's templates, expanded as Prometheus does.
            let annotations: serde_json::Map<String, Value> = rule["annotations"]
                .as_object()
                .expect("annotations")
                .iter()
                .map(|(key, text)| {
                    let text = text.as_str().expect("annotation");
                    let text = text
                        .replace("{{ $labels.service }}", service)
                        .replace("{{ $labels.instance }}", &instance);
                    (key.clone(), Value::String(text))
                })
                .collect();
            json!([{
                "exp_labels": {
                    "alertname": alert, "severity": "critical", "job": job,
                    "instance": instance, "service": service,
                },
                "exp_annotations": annotations,
            }])
        };
        // Neo4j down for 10 minutes: the first 5 under its backup (quiet), then not.
        tests.push(json!({
            "interval": "15s",
            "input_series": [
                { "series": probe(job, "neo4j"), "values": "0x40" },
                running("neo4j", "1x20 0x20"),
            ],
            "alert_rule_test": [
                { "eval_time": "4m", "alertname": alert, "exp_alerts": [] },
                { "eval_time": "6m", "alertname": alert, "exp_alerts": [] },
                { "eval_time": "8m", "alertname": alert, "exp_alerts": firing("neo4j") },
            ],
        }));
        // Neo4j's backup holds back no other service's alert.
        tests.push(json!({
            "interval": "15s",
            "input_series": [
                { "series": probe(job, "api"), "values": "0x20" },
                running("neo4j", "1x20"),
            ],
            "alert_rule_test": [
                { "eval_time": "3m", "alertname": alert, "exp_alerts": firing("api") },
            ],
        }));
    }
    promtool_test_rules(&build, "backup-window", "15s", &json!(tests), "ape");
}

/// Alertmanager is scraped, and a notification it gave up on raises
/// AlertmanagerNotificationsFailing, labelled with the integration, for the hour after;
/// deliveries that succeed raise nothing.
#[test]
fn failing_notifications_raise_their_own_alert() {
    let (out, _dir) = Berth::bundled()
        .args(["build", "--stack", "ape", "--profile", "prod-lite"])
        .run();
    out.code(0);
    let build = out.root.join("out/ape/prod-lite");
    let prometheus = yaml(&build.join("prometheus/prometheus.yml")).expect("prometheus.yml");
    assert!(
        jobs(&prometheus).contains_key("alertmanager"),
        "Alertmanager is not scraped"
    );
    let rule = rules(&build)
        .into_iter()
        .find(|r| r["alert"] == "AlertmanagerNotificationsFailing")
        .expect("a rule on failed notifications");
    let description = rule["annotations"]["description"]
        .as_str()
        .expect("description")
        .replace("{{ $labels.integration }}", "webhook");
    let summary = rule["annotations"]["summary"]
        .as_str()
        .expect("summary")
        .replace("{{ $labels.integration }}", "webhook");
    let failed = "alertmanager_notifications_failed_total{job=\"alertmanager\",instance=\"alertmanager:9093\",integration=\"webhook\"}";
    let firing = json!([{
        "exp_labels": { "alertname": "AlertmanagerNotificationsFailing", "severity": "critical", "integration": "webhook" },
        "exp_annotations": { "description": description, "summary": summary },
    }]);
    let tests = json!([
        // One notification lost at minute 2 (the counter rises once per flush given up):
        // firing from the next evaluation, for the hour it stays in the window, then not.
        {
            "interval": "1m",
            "input_series": [{ "series": failed, "values": "0 0 1 1x90" }],
            "alert_rule_test": [
                { "eval_time": "1m", "alertname": "AlertmanagerNotificationsFailing", "exp_alerts": [] },
                { "eval_time": "3m", "alertname": "AlertmanagerNotificationsFailing", "exp_alerts": firing },
                { "eval_time": "50m", "alertname": "AlertmanagerNotificationsFailing", "exp_alerts": firing },
                { "eval_time": "70m", "alertname": "AlertmanagerNotificationsFailing", "exp_alerts": [] },
            ],
        },
        // Deliveries that all succeed: the counter stays, nothing fires.
        {
            "interval": "1m",
            "input_series": [{ "series": failed, "values": "0x90" }],
            "alert_rule_test": [
                { "eval_time": "60m", "alertname": "AlertmanagerNotificationsFailing", "exp_alerts": [] },
            ],
        },
    ]);
    promtool_test_rules(&build, "notifications", "1m", &tests, "ape");
}

/// A stack of its own with an Alertmanager but no receiver, under the bundled
/// production profile with alerting: refused, pointing at the profile's `alerting` line.
#[test]
fn a_production_profile_with_alerting_and_no_receiver_is_refused() {
    let own_alertmanager = r#"fun profile => {
  services.prometheus = { image = "docker.io/prom/prometheus:v2.55.1" },
  services.alertmanager = { image = "docker.io/prom/alertmanager:v0.27.0" },
  monitoring = { prometheus = "prometheus", alertmanager = "alertmanager" },
}
"#;
    let no_alertmanager = r#"let prometheus = import "services/prometheus.ncl" in
fun profile => prometheus { alertmanager = false }
"#;
    for (stack, problem) in [
        (
            own_alertmanager,
            "Alertmanager `alertmanager` has no receiver",
        ),
        (no_alertmanager, "runs Prometheus without an Alertmanager"),
    ] {
        let (out, _dir) = build_watch_in_prod_lite(Berth::schemas_only(), stack);
        out.code(2)
            .stderr_contains("profiles/prod-lite.ncl:14:")
            .stderr_contains(": profile.alerting: production profile `prod-lite` turns alerting on")
            .stderr_contains(problem)
            .stderr_contains("monitoring.alert_webhook_secret")
            .wrote_nothing();
    }
    // Not production: alerts may stay on screen.
    let (out, _dir) = Berth::schemas_only()
        .file("modules/stacks/watch.ncl", own_alertmanager)
        .file(
            "profiles/lab.ncl",
            "{ name = \"lab\", description = \"Lab.\", production = false, alerting = true, metrics = true }\n",
        )
        .args(["build", "--stack", "watch", "--profile", "lab", "--out", "out"])
        .run();
    out.code(0);
    let config =
        std::fs::read_to_string(out.root.join("out/watch/lab/alertmanager/alertmanager.yml"))
            .expect("alertmanager.yml");
    assert!(config.contains("No receiver is configured"), "{config}");
}

/// `berth build` of `stack` as the stack `watch` of `project`, with the prod-lite profile.
fn build_watch_in_prod_lite(project: Berth, stack: &str) -> (Output, tempfile::TempDir) {
    project
        .file("modules/stacks/watch.ncl", stack)
        .args([
            "build",
            "--stack",
            "watch",
            "--profile",
            "prod-lite",
            "--out",
            "out",
        ])
        .run()
}

/// A webhook secret the Alertmanager does not mount would be a file that is not there.
#[test]
fn a_webhook_secret_must_be_mounted_into_alertmanager() {
    let stack = r#"fun profile => {
  services.prometheus = { image = "docker.io/prom/prometheus:v2.55.1" },
  services.alertmanager = { image = "docker.io/prom/alertmanager:v0.27.0" },
  variables.HOOK = { description = "Webhook URL.", secret = true },
  monitoring = { prometheus = "prometheus", alertmanager = "alertmanager", alert_webhook_secret = "HOOK" },
}
"#;
    let (out, _dir) = build_watch_in_prod_lite(Berth::schemas_only(), stack);
    out.code(2)
        .stderr_contains("modules/stacks/watch.ncl:5:")
        .stderr_contains("monitoring.alert_webhook_secret: Alertmanager `alertmanager` does not mount the secret `HOOK`")
        .wrote_nothing();
    let mounted = stack.replace(
        "alertmanager:v0.27.0\" }",
        "alertmanager:v0.27.0\", secrets = [\"HOOK\"] }",
    );
    let (out, _dir) = build_watch_in_prod_lite(Berth::schemas_only(), &mounted);
    out.code(0);
    let config = std::fs::read_to_string(
        out.root
            .join("out/watch/prod-lite/alertmanager/alertmanager.yml"),
    )
    .expect("alertmanager.yml");
    assert!(config.contains("url_file: /run/secrets/hook"), "{config}");
}

/// `receiver = "slack"`: the secret's URL gets Alertmanager's Slack integration (Slack
/// refuses its webhook JSON), which `amtool check-config` accepts, with a text that lists
/// the alerts; the secret's description in .env.template says it is Slack's URL.
#[test]
fn a_slack_receiver_gets_slack_messages_from_the_secret_url() {
    let stack = r#"let prometheus = import "services/prometheus.ncl" in
fun profile =>
  prometheus { alertmanager = true, receiver = "slack" }
  & { name = "watch" }
"#;
    let (out, _dir) = build_watch_in_prod_lite(Berth::bundled(), stack);
    out.code(0);
    let built = out.root.join("out/watch/prod-lite");
    let file = built.join("alertmanager/alertmanager.yml");
    let config = yaml(&file).expect("alertmanager.yml");
    let ops = &config["receivers"][0];
    assert!(ops.get("webhook_configs").is_none(), "{ops:?}");
    assert_eq!(
        ops["slack_configs"][0]["api_url_file"].as_str(),
        Some("/run/secrets/alertmanager_webhook_url"),
        "{ops:?}"
    );
    let text = ops["slack_configs"][0]["text"].as_str().expect("a text");
    assert!(text.contains(".Annotations.summary"), "{text}");
    let checked = std::process::Command::new(crate::support::validator("amtool"))
        .args(["check-config"])
        .arg(&file)
        .output()
        .expect("run amtool");
    assert!(
        checked.status.success(),
        "amtool refused it:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let template = std::fs::read_to_string(built.join(".env.template")).expect(".env.template");
    assert!(
        template.contains("Slack incoming webhook URL Alertmanager posts every alert to"),
        "{template}"
    );
}
