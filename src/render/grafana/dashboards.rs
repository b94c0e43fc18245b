//! The dashboards berth provisions in Grafana, from what the stack has: an overview (scrape
//! targets, exporters' own health, blackbox probes, restarts, firing alerts), one per
//! exporter (`monitoring.exporters`: PostgreSQL, Redis), the host (node exporter) and the
//! age of the backups. Pure. Every query reads series the generated `prometheus.yml`
//! scrapes: jobs are service names, probes carry a `service` label.

use super::dashboard::{Dashboard, Kind, PanelSpec};
use crate::model::{ExporterKind, Service, Stack};
use crate::render::prometheus::{BACKUP_MAX_AGE_SECONDS, HEALTH_JOB, REACHABLE_JOB, tcp_target};

/// The dashboards of `stack`; `backups_run`: the host runs the backup timers, whose metric
/// the backups dashboard reads.
pub fn dashboards(stack: &Stack, backups_run: bool) -> Vec<Dashboard> {
    let mut dashboards = vec![overview(stack)];
    for (service, kind) in &stack.monitoring.exporters {
        dashboards.push(match kind {
            ExporterKind::Postgres => postgres(stack, service),
            ExporterKind::Redis => redis(stack, service),
        });
    }
    if let Some(node_exporter) = &stack.monitoring.node_exporter {
        dashboards.push(host(stack, node_exporter));
        if backups_run && stack.services.values().any(|s| s.backup.is_some()) {
            dashboards.push(backups(stack));
        }
    }
    dashboards
}

fn overview(stack: &Stack) -> Dashboard {
    let mut board = Dashboard::new(
        &stack.name,
        "overview",
        "overview",
        "Is every service up and healthy: Prometheus's scrapes, what the exporters watch, the blackbox probes of the healthchecks, restarts and firing alerts.",
    );
    board.add(
        24,
        5,
        PanelSpec::new(
            Kind::Stat,
            "Scrape targets",
            "`up` of every job Prometheus scrapes (a service with `metrics`, the exporters, Prometheus itself): down when a scrape fails.",
        )
        .query("up", "{{job}} {{instance}}")
        .up_down(),
    );
    let watched: Vec<(&String, &String)> = stack
        .services
        .iter()
        .filter_map(|(name, service)| Some((name, service.metrics.as_ref()?.up_metric.as_ref()?)))
        .collect();
    if !watched.is_empty() {
        let panel = watched.iter().fold(
            PanelSpec::new(
                Kind::Stat,
                "What the exporters watch",
                "Each exporter's own gauge of the service it exports (`pg_up`, `redis_up`): an exporter answers its scrapes while its database is down.",
            ),
            |panel, (name, metric)| panel.query(&format!("{metric}{{job=\"{name}\"}}"), name),
        );
        board.add(24, 4, panel.up_down());
    }
    if stack.monitoring.blackbox.is_some() {
        probes(stack, &mut board);
    }
    board.add(
        12,
        8,
        PanelSpec::new(
            Kind::TimeSeries,
            "Restarts (last hour)",
            "Changes of `process_start_time_seconds` over the last hour: each is a restart of a process that exports it (exporters, Prometheus, applications using a Prometheus client library).",
        )
        .query("changes(process_start_time_seconds[1h])", "{{job}} {{instance}}"),
    );
    board.add(
        12,
        8,
        PanelSpec::new(
            Kind::TimeSeries,
            "Scrape target flaps (last hour)",
            "How often each target went down or came back in the last hour.",
        )
        .query("changes(up[1h])", "{{job}} {{instance}}"),
    );
    board.add(
        24,
        8,
        PanelSpec::new(
            Kind::Table,
            "Firing alerts",
            "The alerts of the generated rules that fire now, with their labels.",
        )
        .query("ALERTS{alertstate=\"firing\"}", ""),
    );
    board
}

/// The blackbox exporter's answers: HTTP healthchecks, TCP connects, and their latency.
fn probes(stack: &Stack, board: &mut Dashboard) {
    board.add(
        12,
        5,
        PanelSpec::new(
            Kind::Stat,
            "Health checks",
            "The blackbox exporter's probe of each service's HTTP healthcheck, as the `health` job sees it.",
        )
        .query(
            &format!("probe_success{{job=\"{HEALTH_JOB}\"}}"),
            "{{service}}",
        )
        .up_down(),
    );
    let tcp = |(name, service): (&String, &Service)| tcp_target(name, service).is_some();
    if stack.services.iter().any(tcp) {
        board.add(
            12,
            5,
            PanelSpec::new(
                Kind::Stat,
                "Accepting connections",
                "A TCP connect to the first port of each service whose healthcheck is a command (databases, brokers without an exporter).",
            )
            .query(
                &format!("probe_success{{job=\"{REACHABLE_JOB}\"}}"),
                "{{service}}",
            )
            .up_down(),
        );
    }
    board.add(
        24,
        8,
        PanelSpec::new(
            Kind::TimeSeries,
            "Health check latency",
            "How long each probe took, from the blackbox exporter.",
        )
        .query(
            &format!("probe_duration_seconds{{job=~\"{HEALTH_JOB}|{REACHABLE_JOB}\"}}"),
            "{{service}}",
        )
        .unit("s"),
    );
}

fn postgres(stack: &Stack, exporter: &str) -> Dashboard {
    let job = format!("job=\"{exporter}\"");
    let mut board = Dashboard::new(
        &stack.name,
        exporter,
        &format!("PostgreSQL ({exporter})"),
        &format!(
            "PostgreSQL (or TimescaleDB) as its exporter `{exporter}` sees it: connections, throughput, cache, size, locks."
        ),
    );
    board.add(
        6,
        4,
        stat("PostgreSQL", &format!("pg_up{{{job}}}"), "PostgreSQL").up_down(),
    );
    board.add(
        6,
        4,
        stat(
            "Uptime",
            &format!("time() - pg_postmaster_start_time_seconds{{{job}}}"),
            "uptime",
        )
        .unit("s"),
    );
    board.add(
        6,
        4,
        stat(
            "Connections used",
            &format!(
                "sum(pg_stat_activity_count{{{job}}}) / max(pg_settings_max_connections{{{job}}})"
            ),
            "of max_connections",
        )
        .unit("percentunit")
        .range(1.0)
        .warn_at(0.75, 0.9),
    );
    board.add(
        6,
        4,
        stat(
            "Deadlocks (last hour)",
            &format!("sum(increase(pg_stat_database_deadlocks{{{job}}}[1h]))"),
            "deadlocks",
        )
        .warn_at(1.0, 10.0),
    );
    board.add(
        12,
        8,
        series(
            "Connections by state",
            &format!("sum by (state) (pg_stat_activity_count{{{job}}})"),
            "{{state}}",
        ),
    );
    board.add(
        12,
        8,
        series(
            "Transactions per second",
            &format!("sum by (datname) (rate(pg_stat_database_xact_commit{{{job}}}[5m]))"),
            "{{datname}} commits",
        )
        .query(
            &format!("sum by (datname) (rate(pg_stat_database_xact_rollback{{{job}}}[5m]))"),
            "{{datname}} rollbacks",
        )
        .unit("ops"),
    );
    let rate =
        |counter: &str| format!("sum by (datname) (rate(pg_stat_database_{counter}{{{job}}}[5m]))");
    board.add(
        12,
        8,
        series(
            "Cache hit ratio",
            &format!(
                "{} / ({} + {})",
                rate("blks_hit"),
                rate("blks_hit"),
                rate("blks_read")
            ),
            "{{datname}}",
        )
        .unit("percentunit")
        .range(1.0),
    );
    let rows = ["fetched", "inserted", "updated", "deleted"].iter().fold(
        series_panel(
            "Rows read and written",
            "Rows fetched, inserted, updated and deleted per second, all databases.",
        ),
        |panel, what| {
            panel.query(
                &format!("sum(rate(pg_stat_database_tup_{what}{{{job}}}[5m]))"),
                what,
            )
        },
    );
    board.add(12, 8, rows.unit("ops"));
    board.add(
        12,
        8,
        series(
            "Database size",
            &format!("pg_database_size_bytes{{{job}}}"),
            "{{datname}}",
        )
        .unit("bytes"),
    );
    board.add(
        12,
        8,
        series(
            "Locks by mode",
            &format!("sum by (mode) (pg_locks_count{{{job}}})"),
            "{{mode}}",
        ),
    );
    board
}

fn redis(stack: &Stack, exporter: &str) -> Dashboard {
    let job = format!("job=\"{exporter}\"");
    let mut board = Dashboard::new(
        &stack.name,
        exporter,
        &format!("Redis ({exporter})"),
        &format!(
            "Redis as its exporter `{exporter}` sees it: clients, memory, commands, hit ratio, evictions."
        ),
    );
    board.add(
        6,
        4,
        stat("Redis", &format!("redis_up{{{job}}}"), "Redis").up_down(),
    );
    board.add(
        6,
        4,
        stat(
            "Uptime",
            &format!("redis_uptime_in_seconds{{{job}}}"),
            "uptime",
        )
        .unit("s"),
    );
    board.add(
        6,
        4,
        stat(
            "Connected clients",
            &format!("redis_connected_clients{{{job}}}"),
            "clients",
        ),
    );
    board.add(
        6,
        4,
        stat(
            "Memory used of maxmemory",
            &format!("redis_memory_used_bytes{{{job}}} / (redis_memory_max_bytes{{{job}}} > 0)"),
            "used",
        )
        .unit("percentunit")
        .range(1.0)
        .warn_at(0.8, 0.95),
    );
    board.add(
        12,
        8,
        series(
            "Memory",
            &format!("redis_memory_used_bytes{{{job}}}"),
            "used",
        )
        .query(&format!("redis_memory_max_bytes{{{job}}} > 0"), "maxmemory")
        .unit("bytes"),
    );
    board.add(
        12,
        8,
        series(
            "Commands per second",
            &format!("rate(redis_commands_processed_total{{{job}}}[5m])"),
            "commands",
        )
        .unit("ops"),
    );
    let keyspace = |what: &str| format!("rate(redis_keyspace_{what}_total{{{job}}}[5m])");
    board.add(
        12,
        8,
        series(
            "Cache hit ratio",
            &format!(
                "{} / ({} + {})",
                keyspace("hits"),
                keyspace("hits"),
                keyspace("misses")
            ),
            "hits",
        )
        .unit("percentunit")
        .range(1.0),
    );
    board.add(
        12,
        8,
        series(
            "Evicted and expired keys",
            &format!("rate(redis_evicted_keys_total{{{job}}}[5m])"),
            "evicted",
        )
        .query(
            &format!("rate(redis_expired_keys_total{{{job}}}[5m])"),
            "expired",
        )
        .unit("ops"),
    );
    board.add(
        12,
        8,
        series(
            "Keys by database",
            &format!("sum by (db) (redis_db_keys{{{job}}})"),
            "{{db}}",
        ),
    );
    board.add(
        12,
        8,
        series(
            "Network",
            &format!("rate(redis_net_input_bytes_total{{{job}}}[5m])"),
            "in",
        )
        .query(
            &format!("rate(redis_net_output_bytes_total{{{job}}}[5m])"),
            "out",
        )
        .unit("Bps"),
    );
    board
}

fn host(stack: &Stack, node_exporter: &str) -> Dashboard {
    let job = format!("job=\"{node_exporter}\"");
    // The filesystems the disk alerts watch (prometheus.rs's host rules).
    let filesystems = format!("{job},fstype!~\"tmpfs|overlay|squashfs\"");
    let mut board = Dashboard::new(
        &stack.name,
        "host",
        "host",
        &format!(
            "The host as node exporter (`{node_exporter}`) sees it: CPU, load, memory, disks, network."
        ),
    );
    board.add(
        6,
        4,
        stat(
            "Uptime",
            &format!("time() - node_boot_time_seconds{{{job}}}"),
            "{{instance}}",
        )
        .unit("s"),
    );
    board.add(
        6,
        4,
        stat(
            "CPU busy",
            &format!(
                "1 - avg by (instance) (rate(node_cpu_seconds_total{{{job},mode=\"idle\"}}[5m]))"
            ),
            "{{instance}}",
        )
        .unit("percentunit")
        .range(1.0)
        .warn_at(0.8, 0.95),
    );
    board.add(
        6,
        4,
        stat(
            "Memory available",
            &format!(
                "node_memory_MemAvailable_bytes{{{job}}} / node_memory_MemTotal_bytes{{{job}}}"
            ),
            "{{instance}}",
        )
        .unit("percentunit")
        .range(1.0),
    );
    board.add(
        6,
        4,
        stat(
            "Fullest filesystem",
            &format!("max(1 - node_filesystem_avail_bytes{{{filesystems}}} / node_filesystem_size_bytes{{{filesystems}}})"),
            "used",
        )
        .unit("percentunit")
        .range(1.0)
        .warn_at(0.9, 0.97),
    );
    board.add(
        12,
        8,
        series(
            "CPU by mode",
            &format!("sum by (mode) (rate(node_cpu_seconds_total{{{job},mode!=\"idle\"}}[5m]))"),
            "{{mode}}",
        )
        .unit("short"),
    );
    let load = ["1", "5", "15"].iter().fold(
        series_panel("Load average", "The 1, 5 and 15 minute load averages."),
        |panel, minutes| {
            panel.query(
                &format!("node_load{minutes}{{{job}}}"),
                &format!("{minutes} min"),
            )
        },
    );
    board.add(12, 8, load);
    board.add(
        12,
        8,
        series(
            "Memory",
            &format!(
                "node_memory_MemTotal_bytes{{{job}}} - node_memory_MemAvailable_bytes{{{job}}}"
            ),
            "used",
        )
        .query(
            &format!("node_memory_MemAvailable_bytes{{{job}}}"),
            "available",
        )
        .unit("bytes"),
    );
    board.add(
        12,
        8,
        series(
            "Filesystem used",
            &format!("1 - node_filesystem_avail_bytes{{{filesystems}}} / node_filesystem_size_bytes{{{filesystems}}}"),
            "{{mountpoint}}",
        )
        .unit("percentunit")
        .range(1.0)
        .warn_at(0.9, 0.97),
    );
    board.add(
        12,
        8,
        series(
            "Disk I/O",
            &format!("sum by (device) (rate(node_disk_read_bytes_total{{{job}}}[5m]))"),
            "{{device}} read",
        )
        .query(
            &format!("sum by (device) (rate(node_disk_written_bytes_total{{{job}}}[5m]))"),
            "{{device}} written",
        )
        .unit("Bps"),
    );
    board.add(
        12,
        8,
        series(
            "Network",
            &format!("sum by (device) (rate(node_network_receive_bytes_total{{{job},device!=\"lo\"}}[5m]))"),
            "{{device}} in",
        )
        .query(
            &format!("sum by (device) (rate(node_network_transmit_bytes_total{{{job},device!=\"lo\"}}[5m]))"),
            "{{device}} out",
        )
        .unit("Bps"),
    );
    board
}

/// The backup units write `berth_backup_last_success_timestamp_seconds` through node
/// exporter's textfile collector (systemd.rs's `berth-backup`).
fn backups(stack: &Stack) -> Dashboard {
    let series_name = format!(
        "berth_backup_last_success_timestamp_seconds{{stack=\"{}\"}}",
        stack.name
    );
    let age = format!("time() - {series_name}");
    let mut board = Dashboard::new(
        &stack.name,
        "backups",
        "backups",
        "When each declared backup last succeeded on this host; the BackupTooOld alert fires past 26 hours.",
    );
    let max_age = f64::from(BACKUP_MAX_AGE_SECONDS);
    board.add(
        12,
        6,
        stat("Age of the last successful backup", &age, "{{service}}")
            .unit("s")
            .warn_at(max_age * 0.9, max_age),
    );
    board.add(
        12,
        6,
        stat(
            "Last successful backup",
            &format!("{series_name} * 1000"),
            "{{service}}",
        )
        .unit("dateTimeAsIso"),
    );
    board.add(
        24,
        8,
        series("Backup age", &age, "{{service}}")
            .unit("s")
            .warn_at(max_age * 0.9, max_age),
    );
    board
}

fn stat(title: &str, expr: &str, legend: &str) -> PanelSpec {
    PanelSpec::new(Kind::Stat, title, "").query(expr, legend)
}

fn series(title: &str, expr: &str, legend: &str) -> PanelSpec {
    PanelSpec::new(Kind::TimeSeries, title, "").query(expr, legend)
}

fn series_panel(title: &str, description: &str) -> PanelSpec {
    PanelSpec::new(Kind::TimeSeries, title, description)
}
