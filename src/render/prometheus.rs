//! Renders `prometheus/prometheus.yml` and `prometheus/alerts.rules.yml` for a stack that
//! has a Prometheus service. Pure. Every service that declares `metrics` is a scrape job;
//! with a blackbox exporter every HTTP healthcheck is probed, and every service whose
//! healthcheck is a command gets a TCP connect to its first port (Kafka, ZooKeeper, a
//! database without an exporter would otherwise fail unseen); rules follow from what the
//! stack has (targets, exporters' own health gauges, probes, host metrics, backups).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::yaml::to_yaml;
use super::{Artifact, RenderError, header, service_port};
use crate::model::{HealthTest, Service, Stack};

pub const DIR: &str = "prometheus";
const RULES_FILE: &str = "alerts.rules.yml";
/// A backup is late when its last success is older than this: a nightly run plus slack.
pub(super) const BACKUP_MAX_AGE_SECONDS: u32 = 26 * 3600;

/// The Prometheus files of `stack`; none when it runs no Prometheus.
///
/// # Errors
/// Only if the YAML serializer fails.
pub fn prometheus(stack: &Stack) -> Result<Vec<Artifact>, RenderError> {
    files(stack, stack.profile.systemd, Platform::Host)
}

/// The Prometheus files the Kubernetes manifests carry: the same, without the backup
/// rules, since no timer runs backups there (they would fire forever), and scraping every
/// pod through its service's headless Service: the ClusterIP name would reach one random
/// pod per scrape, and a node exporter on one random node.
///
/// # Errors
/// Only if the YAML serializer fails.
pub fn for_kubernetes(stack: &Stack) -> Result<Vec<Artifact>, RenderError> {
    files(stack, false, Platform::Kubernetes)
}

/// Where Prometheus runs, which decides how it finds every replica of a service.
#[derive(Clone, Copy, PartialEq)]
enum Platform {
    /// Docker's DNS answers a service name with one A record per container.
    Host,
    /// The headless Service `<service>-headless` answers with one A record per pod,
    /// unready ones included (`publishNotReadyAddresses`), so a failing pod reads `up 0`.
    Kubernetes,
}

/// `backups_run`: the host runs the backup timers, whose metric the backup rules read.
fn files(
    stack: &Stack,
    backups_run: bool,
    platform: Platform,
) -> Result<Vec<Artifact>, RenderError> {
    let Some(prometheus) = &stack.monitoring.prometheus else {
        return Ok(Vec::new());
    };
    let config = Config {
        global: Global {
            scrape_interval: stack.profile.scrape_interval.to_string(),
            evaluation_interval: stack.profile.evaluation_interval.to_string(),
            external_labels: BTreeMap::from([
                ("environment".to_string(), stack.profile.name.clone()),
                ("stack".to_string(), stack.name.clone()),
            ]),
        },
        rule_files: vec![RULES_FILE.to_string()],
        alerting: stack
            .monitoring
            .alertmanager
            .as_ref()
            .map(|alertmanager| Alerting {
                alertmanagers: vec![Targets {
                    static_configs: vec![StaticConfig::new(address(stack, alertmanager, 9093))],
                }],
            }),
        scrape_configs: scrape_configs(stack, prometheus, platform),
    };
    let rules = Rules {
        groups: rule_groups(stack, backups_run),
    };
    let file = |name: &str, body: String| Artifact {
        path: PathBuf::from(DIR).join(name),
        contents: format!("{}{body}", header(stack)),
    };
    Ok(vec![
        file("prometheus.yml", to_yaml("prometheus.yml", &config)?),
        file(RULES_FILE, to_yaml(RULES_FILE, &rules)?),
    ])
}

// -- Prometheus's own types ----------------------------------------------------------------

#[derive(Serialize)]
struct Config {
    global: Global,
    rule_files: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alerting: Option<Alerting>,
    scrape_configs: Vec<ScrapeConfig>,
}

#[derive(Serialize)]
struct Global {
    scrape_interval: String,
    evaluation_interval: String,
    external_labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Alerting {
    alertmanagers: Vec<Targets>,
}

#[derive(Serialize)]
struct Targets {
    static_configs: Vec<StaticConfig>,
}

#[derive(Serialize)]
struct StaticConfig {
    targets: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
}

impl StaticConfig {
    fn new(target: String) -> Self {
        StaticConfig {
            targets: vec![target],
            labels: BTreeMap::new(),
        }
    }
}

#[derive(Serialize)]
struct ScrapeConfig {
    job_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scrape_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_path: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    params: BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    static_configs: Vec<StaticConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dns_sd_configs: Vec<DnsSdConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    relabel_configs: Vec<RelabelConfig>,
}

impl ScrapeConfig {
    fn new(job_name: &str) -> Self {
        ScrapeConfig {
            job_name: job_name.to_string(),
            scrape_interval: None,
            metrics_path: None,
            params: BTreeMap::new(),
            static_configs: Vec::new(),
            dns_sd_configs: Vec::new(),
            relabel_configs: Vec::new(),
        }
    }
}

/// Every replica of a scaled service: Docker's DNS answers the service name with one
/// A record per container.
#[derive(Serialize)]
struct DnsSdConfig {
    names: Vec<String>,
    #[serde(rename = "type")]
    kind: &'static str,
    port: u16,
}

#[derive(Serialize)]
struct RelabelConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    source_labels: Vec<String>,
    target_label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    replacement: Option<String>,
}

#[derive(Serialize)]
struct Rules {
    groups: Vec<RuleGroup>,
}

#[derive(Serialize)]
struct RuleGroup {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Serialize)]
struct Rule {
    alert: String,
    expr: String,
    #[serde(rename = "for")]
    wait: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

// -- model -> Prometheus -------------------------------------------------------------------

fn scrape_configs(stack: &Stack, prometheus: &str, platform: Platform) -> Vec<ScrapeConfig> {
    let mut self_job = ScrapeConfig::new("prometheus");
    self_job.static_configs.push(StaticConfig::new(format!(
        "localhost:{}",
        service_port(stack, prometheus, 9090)
    )));
    let mut jobs = vec![self_job];
    for (name, service) in &stack.services {
        let Some(metrics) = &service.metrics else {
            continue;
        };
        let mut job = ScrapeConfig::new(name);
        job.scrape_interval = metrics.interval.as_ref().map(ToString::to_string);
        job.metrics_path = (metrics.path != "/metrics").then(|| metrics.path.clone());
        if platform == Platform::Kubernetes {
            job.dns_sd_configs.push(DnsSdConfig {
                names: vec![super::k8s::headless_name(name)],
                kind: "A",
                port: metrics.port,
            });
        } else if service.replicas > 1 {
            job.dns_sd_configs.push(DnsSdConfig {
                names: vec![name.clone()],
                kind: "A",
                port: metrics.port,
            });
        } else {
            job.static_configs
                .push(StaticConfig::new(format!("{name}:{}", metrics.port)));
        }
        jobs.push(job);
    }
    if let Some(blackbox) = &stack.monitoring.blackbox {
        jobs.push(probes(stack, blackbox, HEALTH_JOB, "http_2xx", http_target));
        let reachable = probes(stack, blackbox, REACHABLE_JOB, "tcp_connect", tcp_target);
        if !reachable.static_configs.is_empty() {
            jobs.push(reachable);
        }
    }
    jobs
}

/// The blackbox job probing HTTP healthchecks.
pub(super) const HEALTH_JOB: &str = "health";
/// The blackbox job connecting to services whose healthcheck is a command.
pub(super) const REACHABLE_JOB: &str = "reachable";

/// `http://service:port/path` of an HTTP healthcheck.
fn http_target(name: &str, service: &Service) -> Option<String> {
    match &service.healthcheck.as_ref()?.test {
        HealthTest::Http { http } => Some(format!("http://{name}:{}{}", http.port, http.path)),
        HealthTest::Shell(_) | HealthTest::Exec(_) => None,
    }
}

/// `service:port` of the first TCP port of a service whose healthcheck is a command: the
/// blackbox exporter cannot run the command, but a refused connection is an outage too.
/// A service that serves its own metrics (Qdrant) is probed by its scrape already: `up`.
pub(super) fn tcp_target(name: &str, service: &Service) -> Option<String> {
    if service.metrics.is_some() {
        return None;
    }
    match &service.healthcheck.as_ref()?.test {
        HealthTest::Shell(_) | HealthTest::Exec(_) => {}
        HealthTest::Http { .. } => return None,
    }
    let port = service
        .ports
        .iter()
        .find(|port| port.protocol == crate::model::Protocol::Tcp)?;
    Some(format!("{name}:{}", port.container_port()))
}

/// One blackbox probe with `module` per service that `target` gives an address, labelled
/// with its service.
fn probes(
    stack: &Stack,
    blackbox: &str,
    job_name: &str,
    module: &str,
    target: fn(&str, &Service) -> Option<String>,
) -> ScrapeConfig {
    let mut job = ScrapeConfig::new(job_name);
    job.metrics_path = Some("/probe".to_string());
    job.params
        .insert("module".to_string(), vec![module.to_string()]);
    for (name, service) in &stack.services {
        if let Some(address) = target(name, service) {
            let mut target = StaticConfig::new(address);
            target.labels.insert("service".to_string(), name.clone());
            job.static_configs.push(target);
        }
    }
    let relabel = |source: &str, target: &str, replacement: Option<String>| RelabelConfig {
        source_labels: if source.is_empty() {
            Vec::new()
        } else {
            vec![source.to_string()]
        },
        target_label: target.to_string(),
        replacement,
    };
    job.relabel_configs = vec![
        relabel("__address__", "__param_target", None),
        relabel("__param_target", "instance", None),
        relabel("", "__address__", Some(address(stack, blackbox, 9115))),
    ];
    job
}

fn rule_groups(stack: &Stack, backups_run: bool) -> Vec<RuleGroup> {
    let mut availability = vec![rule(
        "TargetDown",
        "up == 0",
        "2m",
        "critical",
        "{{ $labels.job }} ({{ $labels.instance }}) is down",
        "Prometheus has not been able to scrape {{ $labels.job }} at {{ $labels.instance }} for 2 minutes.",
    )];
    availability.extend(exporter_rules(stack));
    // An offline backup stops its service on purpose: while the backup script's gauge says
    // so, that service's probes do not alert (systemd.rs writes it through node exporter).
    let offline_backups = backups_run
        && stack
            .services
            .values()
            .any(|s| s.backup.as_ref().is_some_and(|backup| backup.offline));
    let unless_backing_up = if offline_backups {
        " unless on(service) berth_backup_running == 1"
    } else {
        ""
    };
    if stack.monitoring.blackbox.is_some() {
        availability.push(rule(
            "ServiceUnhealthy",
            &format!("probe_success{{job=\"{HEALTH_JOB}\"}} == 0{unless_backing_up}"),
            "2m",
            "critical",
            "{{ $labels.service }} fails its health check",
            "The health endpoint {{ $labels.instance }} of {{ $labels.service }} has not answered with success for 2 minutes.",
        ));
        if stack
            .services
            .iter()
            .any(|(name, s)| tcp_target(name, s).is_some())
        {
            availability.push(rule(
                UNREACHABLE_ALERT,
                &format!("probe_success{{job=\"{REACHABLE_JOB}\"}} == 0{unless_backing_up}"),
                "2m",
                "critical",
                "{{ $labels.service }} refuses connections",
                "{{ $labels.service }} has not accepted a TCP connection on {{ $labels.instance }} for 2 minutes.",
            ));
        }
    }
    if let Some(alertmanager) = &stack.monitoring.alertmanager
        && stack
            .services
            .get(alertmanager)
            .is_some_and(|service| service.metrics.is_some())
    {
        availability.push(notifications_failing(alertmanager));
    }
    let mut groups = vec![RuleGroup {
        name: format!("{}-availability", stack.name),
        rules: availability,
    }];
    if stack.monitoring.node_exporter.is_some() {
        groups.push(RuleGroup {
            name: format!("{}-host", stack.name),
            rules: host_rules(),
        });
        let backups = backup_rules(stack);
        if backups_run && !backups.is_empty() {
            groups.push(RuleGroup {
                name: format!("{}-backups", stack.name),
                rules: backups,
            });
        }
    }
    groups
}

/// An exporter answers its scrapes (`up` is 1) while what it watches is down: its own
/// gauge (`pg_up`, `redis_up`) says so. One rule per exporter, labelled with the service it
/// watches (`metrics.watches`; else the exporter), as the probes of that service are: the
/// label Alertmanager's inhibition matches on (see `render::alertmanager`).
fn exporter_rules(stack: &Stack) -> Vec<Rule> {
    stack
        .services
        .iter()
        .filter_map(|(name, service)| {
            let metrics = service.metrics.as_ref()?;
            let metric = metrics.up_metric.as_ref()?;
            let (summary, description) = match &metrics.watches {
                Some(watched) => (
                    format!("{name} cannot reach {watched}"),
                    format!("{name} answers its scrapes but its `{metric}` has been 0 for 2 minutes: {watched} is down or refuses it."),
                ),
                None => (
                    format!("{name} cannot reach the service it exports"),
                    format!("{name} answers its scrapes but its `{metric}` has been 0 for 2 minutes: the service it watches is down or refuses it."),
                ),
            };
            let mut down = rule(
                EXPORTER_ALERT,
                &format!("{metric}{{job=\"{name}\"}} == 0"),
                "2m",
                "critical",
                &summary,
                &description,
            );
            let service = metrics.watches.as_ref().unwrap_or(name);
            down.labels.insert("service".to_string(), service.clone());
            down.labels.insert("exporter".to_string(), name.clone());
            Some(down)
        })
        .collect()
}

/// Alertmanager failing to deliver: a receiver that refuses notifications (a wrong or
/// revoked webhook, an expired token) is otherwise silence, the worst failure of alerting.
/// The counter rises once per notification lost after Alertmanager's own retries, and only
/// as often as a group is flushed (every `group_interval`, or `repeat_interval` for a group
/// that does not change), so any rise within the hour is the signal: a rate over a short
/// window would fall back to 0 between flushes and never last a `for:`. The alert goes
/// through the same receiver, so it may not arrive either: it is there for the Prometheus
/// and Alertmanager pages, and for a second receiver if one is configured.
fn notifications_failing(alertmanager: &str) -> Rule {
    rule(
        "AlertmanagerNotificationsFailing",
        &format!(
            "sum by (integration) (increase(alertmanager_notifications_failed_total{{job=\"{alertmanager}\"}}[1h])) > 0"
        ),
        "0m",
        "critical",
        "Alertmanager could not deliver notifications through {{ $labels.integration }}",
        "Alertmanager gave up on at least one notification through its {{ $labels.integration }} receiver in the last hour: those alerts reached nobody. Check the receiver's URL (the ALERTMANAGER_WEBHOOK_URL secret) and Alertmanager's log.",
    )
}

/// The alert of an exporter whose database is down, and of a service refusing connections.
pub(super) const EXPORTER_ALERT: &str = "ExporterTargetDown";
pub(super) const UNREACHABLE_ALERT: &str = "ServiceUnreachable";

/// Whether some exporter watches a service the blackbox exporter also probes over TCP:
/// one outage raises both alerts, and Alertmanager should page once.
pub(super) fn probed_and_exported(stack: &Stack) -> bool {
    stack.monitoring.blackbox.is_some()
        && stack.services.values().any(|service| {
            let watched = service.metrics.as_ref().and_then(|m| m.watches.as_ref());
            watched
                .and_then(|watched| Some((watched, stack.services.get(watched)?)))
                .is_some_and(|(watched, target)| tcp_target(watched, target).is_some())
        })
}

fn host_rules() -> Vec<Rule> {
    let filesystems = "fstype!~\"tmpfs|overlay|squashfs\"";
    vec![
        rule(
            "HostMemoryPressure",
            "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes < 0.10",
            "5m",
            "warning",
            "Less than 10 % of memory available on {{ $labels.instance }}",
            "Available memory has stayed under 10 % for 5 minutes; the OOM killer is near.",
        ),
        rule(
            "HostDiskAlmostFull",
            &format!(
                "node_filesystem_avail_bytes{{{filesystems}}} / node_filesystem_size_bytes{{{filesystems}}} < 0.10"
            ),
            "10m",
            "warning",
            "{{ $labels.mountpoint }} on {{ $labels.instance }} is over 90 % full",
            "Less than 10 % of {{ $labels.mountpoint }} has been free for 10 minutes.",
        ),
        rule(
            "HostDiskFull",
            &format!(
                "node_filesystem_avail_bytes{{{filesystems}}} / node_filesystem_size_bytes{{{filesystems}}} < 0.03"
            ),
            "5m",
            "critical",
            "{{ $labels.mountpoint }} on {{ $labels.instance }} is full",
            "Less than 3 % of {{ $labels.mountpoint }} is free; databases on it will fail to write.",
        ),
    ]
}

/// Backups run from systemd timers and report through node exporter's textfile collector.
fn backup_rules(stack: &Stack) -> Vec<Rule> {
    stack
        .services
        .iter()
        .filter(|(_, service)| service.backup.is_some())
        .flat_map(|(name, _)| {
            let series = format!("berth_backup_last_success_timestamp_seconds{{stack=\"{}\",service=\"{name}\"}}", stack.name);
            let unit = format!("{}-backup-{name}", stack.name);
            let mut too_old = rule(
                "BackupTooOld",
                &format!("(time() - {series}) > {BACKUP_MAX_AGE_SECONDS}"),
                "30m",
                "warning",
                &format!("No successful backup of {name} in 26 hours"),
                &format!("The last successful backup of {name} is over 26 hours old; check `journalctl -u {unit}`."),
            );
            // A fresh host has no backup yet: give the first nightly run its chance.
            let mut never = rule(
                "BackupNeverSucceeded",
                &format!("absent({series})"),
                "26h",
                "warning",
                &format!("{name} has never been backed up on this host"),
                &format!("No backup of {name} has succeeded since monitoring started 26 hours ago; check `systemctl list-timers {unit}.timer` and `journalctl -u {unit}`."),
            );
            for rule in [&mut too_old, &mut never] {
                rule.labels.insert("service".to_string(), name.clone());
            }
            [too_old, never]
        })
        .collect()
}

fn rule(
    alert: &str,
    expr: &str,
    wait: &str,
    severity: &str,
    summary: &str,
    description: &str,
) -> Rule {
    Rule {
        alert: alert.to_string(),
        expr: expr.to_string(),
        wait: wait.to_string(),
        labels: BTreeMap::from([("severity".to_string(), severity.to_string())]),
        annotations: BTreeMap::from([
            ("description".to_string(), description.to_string()),
            ("summary".to_string(), summary.to_string()),
        ]),
    }
}

/// `service:port` of a monitoring service on the stack network.
fn address(stack: &Stack, service: &str, fallback_port: u16) -> String {
    format!("{service}:{}", service_port(stack, service, fallback_port))
}
