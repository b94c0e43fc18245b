//! Renders systemd units for the host that runs the stack: with Docker Compose, the stack
//! as a service; for every declared backup a oneshot service with its timer. Pure.
//! Only profiles with `systemd` on get units; a stack without backups gets no timers.
//! A profile with `quadlet` on runs the stack under podman: its Quadlet units are the
//! stack (a compose unit beside them would start it twice), and the backups dump through
//! `podman` and the Quadlet units, not `docker compose`.

use std::path::PathBuf;

use super::install::{self, Engine};
use super::quadlet::{self, Reference};
use super::unit::{UnitFile, environment, exec_line};
use super::{Artifact, header, header_text};
use crate::model::{Backup, Stack};

/// Folder of the units in the build output, and on the host (inside the install folder).
pub const DIR: &str = "systemd";
const BACKUP_SCRIPT: &str = "berth-backup";
const DOCKER: &str = "/usr/bin/docker";

/// The units of `stack`; none when its profile does not ask for systemd.
pub fn systemd(stack: &Stack) -> Vec<Artifact> {
    if !stack.profile.systemd {
        return Vec::new();
    }
    let mut artifacts = Vec::new();
    if !stack.profile.quadlet {
        artifacts.push(stack_service(stack));
    }
    let backups: Vec<(&String, &Backup)> = stack
        .services
        .iter()
        .filter_map(|(name, service)| service.backup.as_ref().map(|backup| (name, backup)))
        .collect();
    for (service, backup) in &backups {
        artifacts.push(backup_service(stack, service, backup));
        artifacts.push(backup_timer(stack, service, backup));
    }
    if !backups.is_empty() {
        artifacts.push(Artifact {
            path: path(BACKUP_SCRIPT),
            contents: backup_script(stack),
        });
    }
    artifacts
}

fn path(file: &str) -> PathBuf {
    PathBuf::from(DIR).join(file)
}

/// `docker compose` with the project pinned, so the unit acts on this stack whatever the
/// folder is called.
fn compose_args<'a>(stack: &'a Stack, tail: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        DOCKER,
        "compose",
        "--project-name",
        stack.name.as_str(),
        "--file",
        "compose.yaml",
    ];
    args.extend_from_slice(tail);
    args
}

fn stack_service(stack: &Stack) -> Artifact {
    let install_dir = stack.install_dir();
    let description = stack.description.as_deref().unwrap_or(&stack.name);
    let up = compose_args(stack, &["up", "--detach", "--wait", "--remove-orphans"]);
    let unit = UnitFile::default()
        .section("Unit")
        .entry(
            "Description",
            format!(
                "{description} (berth stack {}, profile {})",
                stack.name, stack.profile.name
            ),
        )
        .entry("Requires", "docker.service")
        .entry("Wants", "network-online.target")
        .entry("After", "docker.service network-online.target")
        // At most 5 failed starts in 30 minutes, then systemd stops trying and says so.
        .entry("StartLimitIntervalSec", "30min")
        .entry("StartLimitBurst", "5")
        .section("Service")
        // `up --wait` returns once every service is running or healthy, so the unit is
        // "active" exactly when the stack is; containers are then kept up by their restart
        // policy, and a failed start is retried by systemd with a back-off (`Restart=` on
        // a oneshot unit needs systemd 244: the header says so).
        .entry("Type", "oneshot")
        .entry("RemainAfterExit", "yes")
        // Compose reads the project's .env itself, by its own rules (quotes, inline
        // comments, `$`). No `EnvironmentFile=`: systemd would read the same file by other
        // rules, keeping `# comments` in values and not expanding, and compose lets the
        // process environment win over .env, so the unit would start the stack with other
        // values than a `docker compose` run by hand in the same folder.
        .entry("WorkingDirectory", install_dir.clone())
        .entry(
            "ExecStartPre",
            exec_line(&compose_args(stack, &["config", "--quiet"])),
        )
        .entry("ExecStart", exec_line(&up))
        .entry("ExecReload", exec_line(&up))
        .entry("ExecStop", exec_line(&compose_args(stack, &["down"])))
        .entry("TimeoutStartSec", "15min")
        .entry("TimeoutStopSec", "5min")
        .entry("Restart", "on-failure")
        .entry("RestartSec", "30s")
        .section("Install")
        .entry("WantedBy", "multi-user.target");
    let comment = format!(
        "{}Needs systemd 244 or later (Debian 11, Ubuntu 20.04, RHEL 9): older releases refuse\n`Restart=` on a oneshot unit.\nInstall: copy this build to {install_dir}, fill in {install_dir}/.env from .env.template,\nthen: cp systemd/*.service systemd/*.timer /etc/systemd/system/ && systemctl daemon-reload\n      systemctl enable --now {}.service{}",
        header_text(stack),
        stack.name,
        install::notes(stack, Engine::Compose),
    );
    Artifact {
        path: path(&format!("{}.service", stack.name)),
        contents: unit.render(&comment),
    }
}

fn backup_unit_name(stack: &Stack, service: &str) -> String {
    format!("{}-backup-{service}", stack.name)
}

fn backup_service(stack: &Stack, service: &str, backup: &Backup) -> Artifact {
    let Backup {
        command,
        restore,
        schedule: _,
        keep,
        extension,
        offline,
    } = backup;
    let install_dir = stack.install_dir();
    let backup_dir = stack.backup_dir();
    let unit = UnitFile::default().section("Unit").entry(
        "Description",
        format!("Backup of {service} (berth stack {})", stack.name),
    );
    let unit = if stack.profile.quadlet {
        // The dump needs the service's container, which its Quadlet unit runs.
        unit.entry(
            "After",
            format!("{}.service", quadlet::unit_name(stack, service)),
        )
    } else {
        unit.entry("Requires", "docker.service")
            .entry("After", format!("docker.service {}.service", stack.name))
    };
    let unit = unit
        .section("Service")
        .entry("Type", "oneshot")
        .entry("WorkingDirectory", install_dir.clone())
        .entry("Environment", environment("BERTH_STACK", &stack.name))
        .entry("Environment", environment("BERTH_SERVICE", service))
        .entry("Environment", environment("BERTH_BACKUP_DIR", &backup_dir))
        .entry(
            "Environment",
            environment("BERTH_BACKUP_KEEP", &keep.to_string()),
        )
        .entry(
            "Environment",
            environment("BERTH_BACKUP_EXTENSION", extension),
        )
        .entry(
            "Environment",
            environment(
                "BERTH_BACKUP_MODE",
                if *offline { "offline" } else { "online" },
            ),
        )
        .entry("Environment", environment("BERTH_BACKUP_COMMAND", command))
        .entry(
            "ExecStart",
            exec_line(&["/bin/bash", &format!("{install_dir}/{DIR}/{BACKUP_SCRIPT}")]),
        )
        // A backup must not starve the services it copies.
        .entry("Nice", "10")
        .entry("IOSchedulingClass", "idle");
    let restore_hint = match restore {
        Some(restore) => restore_instructions(stack, service, restore, *offline),
        None => "No restore command is declared for this service.".to_string(),
    };
    let comment = format!(
        "{}Dumps {service} into {backup_dir}, keeping the newest {keep}; started by {}.timer.\n{restore_hint}",
        header_text(stack),
        backup_unit_name(stack, service)
    );
    Artifact {
        path: path(&format!("{}.service", backup_unit_name(stack, service))),
        contents: unit.render(&comment),
    }
}

/// How an operator puts the newest archive back, as a comment in the backup unit.
fn restore_instructions(stack: &Stack, service: &str, restore: &str, offline: bool) -> String {
    let compose = format!(
        "docker compose --project-name {} --file {}",
        stack.name,
        shell_words::quote(&format!("{}/compose.yaml", stack.install_dir()))
    );
    let newest = format!(
        "gunzip -c \"$(ls -1 {}/{service}-[0-9]*.gz | tail -n 1)\"",
        shell_words::quote(&stack.backup_dir())
    );
    // One shell word whatever the command holds, as the operator pastes it.
    let restore = if restore.contains('\'') {
        shell_words::quote(restore).into_owned()
    } else {
        format!("'{restore}'")
    };
    if stack.profile.quadlet {
        let unit = quadlet::unit_name(stack, service);
        return if offline {
            let one_off = podman_one_off(stack, service).join(" ");
            format!(
                "Restore (newest archive; the service is stopped meanwhile):\n  systemctl stop {unit}.service\n  {newest} \\\n    | {one_off} -c {restore}\n  systemctl start {unit}.service"
            )
        } else {
            format!(
                "Restore (newest archive):\n  {newest} \\\n    | podman exec -i {unit} sh -c {restore}"
            )
        };
    }
    if offline {
        format!(
            "Restore (newest archive; the service is stopped meanwhile):\n  {compose} stop {service}\n  {newest} \\\n    | {compose} run --rm --no-deps -T --entrypoint sh {service} -c {restore}\n  {compose} start {service}"
        )
    } else {
        format!(
            "Restore (newest archive):\n  {newest} \\\n    | {compose} exec -T {service} sh -c {restore}"
        )
    }
}

/// `podman run` of a one-off container of `service` on its volumes, through `sh` without
/// the image's entrypoint, as shell words; the caller appends `-c <command>`.
fn podman_one_off(stack: &Stack, service: &str) -> Vec<String> {
    let mut words: Vec<String> = ["podman", "run", "--rm", "-i", "--entrypoint", "sh"]
        .map(String::from)
        .to_vec();
    if let Some(definition) = stack.services.get(service) {
        for mount in &definition.volumes {
            if let Some(spec) = quadlet::mount_spec(stack, mount, Reference::Engine) {
                words.push(format!("--volume={}", shell_words::quote(&spec)));
            }
        }
        words.push(shell_words::quote(&quadlet::image(stack, service, definition)).into_owned());
    }
    words
}

fn backup_timer(stack: &Stack, service: &str, backup: &Backup) -> Artifact {
    let name = backup_unit_name(stack, service);
    let unit = UnitFile::default()
        .section("Unit")
        .entry(
            "Description",
            format!(
                "Schedule of the backup of {service} (berth stack {})",
                stack.name
            ),
        )
        .section("Timer")
        .entry("OnCalendar", backup.schedule.clone())
        // Catch up on a run missed while the host was off, and spread the load a little.
        .entry("Persistent", "true")
        .entry("RandomizedDelaySec", "30min")
        .entry("Unit", format!("{name}.service"))
        .section("Install")
        .entry("WantedBy", "timers.target");
    Artifact {
        path: path(&format!("{name}.timer")),
        contents: unit.render(header_text(stack).trim_end()),
    }
}

/// The script every backup unit runs; what to dump and how comes from the unit's
/// environment, which comes from the service module's `backup` declaration.
fn backup_script(stack: &Stack) -> String {
    let mut out = String::from("#!/bin/bash\n");
    out.push_str(&header(stack));
    out.push_str(BACKUP_SCRIPT_HEAD);
    if stack.profile.quadlet {
        out.push_str(&podman_runtime(stack));
    } else {
        out.push_str(COMPOSE_RUNTIME);
    }
    out.push_str(BACKUP_SCRIPT_BODY);
    out
}

/// The runtime functions of the script on a podman host: the Quadlet unit stops and
/// starts the service; an offline dump runs a one-off container on the volumes the unit
/// mounts (written out per service, since Quadlet containers are removed when stopped).
fn podman_runtime(stack: &Stack) -> String {
    let mut offline = String::new();
    for (name, service) in &stack.services {
        if service.backup.as_ref().is_some_and(|backup| backup.offline) {
            offline.push_str(&format!(
                "    {}) {} -c \"$BERTH_BACKUP_COMMAND\" ;;\n",
                shell_words::quote(name),
                podman_one_off(stack, name).join(" ")
            ));
        }
    }
    format!(
        r#"# The stack runs under podman: each service is the Quadlet unit <stack>-<service>.
unit="$BERTH_STACK-$BERTH_SERVICE"
stop_service() {{ systemctl stop "$unit.service"; }}
start_service() {{ systemctl start "$unit.service"; }}
dump_online() {{ podman exec "$unit" sh -c "$BERTH_BACKUP_COMMAND"; }}
dump_offline() {{
  case "$BERTH_SERVICE" in
{offline}    *) echo "berth-backup: no offline dump is declared for $BERTH_SERVICE" >&2; return 1 ;;
  esac
}}
"#
    )
}

const COMPOSE_RUNTIME: &str = r##"compose=(docker compose --project-name "$BERTH_STACK" --file compose.yaml)
stop_service() { "${compose[@]}" stop "$BERTH_SERVICE"; }
start_service() { "${compose[@]}" start "$BERTH_SERVICE"; }
dump_online() { "${compose[@]}" exec -T "$BERTH_SERVICE" sh -c "$BERTH_BACKUP_COMMAND"; }
# Without the image's entrypoint, as `exec` runs: an entrypoint may print on stdout
# (Neo4j's announces plugin installs), which would land at the front of the dump.
dump_offline() {
  "${compose[@]}" run --rm --no-deps -T --entrypoint sh "$BERTH_SERVICE" -c "$BERTH_BACKUP_COMMAND"
}
"##;

const BACKUP_SCRIPT_HEAD: &str = r##"# Runs one backup described by the BERTH_* variables of the unit that starts it: dumps the
# service, compresses the dump, keeps the newest N archives, and records the time of
# success for node exporter's textfile collector (when present), which the
# `BackupTooOld` alert reads.
set -euo pipefail
umask 077

: "${BERTH_STACK:?}" "${BERTH_SERVICE:?}" "${BERTH_BACKUP_DIR:?}" "${BERTH_BACKUP_KEEP:?}"
: "${BERTH_BACKUP_EXTENSION:?}" "${BERTH_BACKUP_MODE:?}" "${BERTH_BACKUP_COMMAND:?}"

"##;

const BACKUP_SCRIPT_BODY: &str = r##"stamp="$(date -u +%Y%m%dT%H%M%SZ)"
archive="$BERTH_BACKUP_DIR/$BERTH_SERVICE-$stamp.$BERTH_BACKUP_EXTENSION.gz"
mkdir -p "$BERTH_BACKUP_DIR"

textfile_dir=/var/lib/node_exporter/textfile_collector

# berth_backup_running is 1 while an offline dump holds the service stopped: the health
# and reachability alerts leave that service alone meanwhile (`unless on(service)`), so a
# nightly backup does not page. Readable by node exporter, which runs as nobody.
backup_running() {
  [ -d "$textfile_dir" ] || return 0
  local metric="$textfile_dir/berth-backup-running-$BERTH_STACK-$BERTH_SERVICE.prom"
  {
    echo "# HELP berth_backup_running Whether an offline backup holds the service stopped."
    echo "# TYPE berth_backup_running gauge"
    echo "berth_backup_running{stack=\"$BERTH_STACK\",service=\"$BERTH_SERVICE\"} $1"
  } >"$metric.tmp"
  chmod 0644 "$metric.tmp"
  mv "$metric.tmp" "$metric"
}

cleanup() {
  rm -f "$archive.partial"
  if [ "$BERTH_BACKUP_MODE" = offline ]; then
    start_service
    backup_running 0
  fi
}
trap cleanup EXIT

if [ "$BERTH_BACKUP_MODE" = offline ]; then
  # The dump needs the service stopped: run it in a one-off container on the same volumes.
  backup_running 1
  stop_service
  dump_offline | gzip >"$archive.partial"
else
  dump_online | gzip >"$archive.partial"
fi
mv "$archive.partial" "$archive"

# Keep the newest archives only. Names carry a UTC time stamp, so name order is age order.
find "$BERTH_BACKUP_DIR" -maxdepth 1 -name "$BERTH_SERVICE-[0-9]*.gz" | sort -r \
  | tail -n +"$((BERTH_BACKUP_KEEP + 1))" | xargs -r rm -f --

if [ -d "$textfile_dir" ]; then
  metric="$textfile_dir/berth-backup-$BERTH_STACK-$BERTH_SERVICE.prom"
  {
    echo "# HELP berth_backup_last_success_timestamp_seconds Time of the last successful backup."
    echo "# TYPE berth_backup_last_success_timestamp_seconds gauge"
    echo "berth_backup_last_success_timestamp_seconds{stack=\"$BERTH_STACK\",service=\"$BERTH_SERVICE\"} $(date +%s)"
  } >"$metric.tmp"
  # Readable by node exporter, which runs as nobody (the archives stay 0600 under umask 077).
  chmod 0644 "$metric.tmp"
  mv "$metric.tmp" "$metric"
fi
echo "backup of $BERTH_SERVICE written to $archive"
"##;
