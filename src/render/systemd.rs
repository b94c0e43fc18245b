//! Renders systemd units for a host that runs the stack with Docker Compose: the stack as
//! a service, and for every declared backup a oneshot service with its timer. Pure.
//! Only profiles with `systemd` on get units; a stack without backups gets no timers.

use std::path::PathBuf;

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
    let mut artifacts = vec![stack_service(stack)];
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
        // policy, and a failed start is retried by systemd with a back-off.
        .entry("Type", "oneshot")
        .entry("RemainAfterExit", "yes")
        .entry("WorkingDirectory", install_dir.clone())
        .entry("EnvironmentFile", format!("{install_dir}/.env"))
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
        "{}Install: copy this build to {install_dir}, fill in {install_dir}/.env from .env.template,\nthen: cp systemd/*.service systemd/*.timer /etc/systemd/system/ && systemctl daemon-reload\n      systemctl enable --now {}.service",
        header_text(stack),
        stack.name
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
    let unit = UnitFile::default()
        .section("Unit")
        .entry(
            "Description",
            format!("Backup of {service} (berth stack {})", stack.name),
        )
        .entry("Requires", "docker.service")
        .entry("After", format!("docker.service {}.service", stack.name))
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
    out.push_str(BACKUP_SCRIPT_BODY);
    out
}

const BACKUP_SCRIPT_BODY: &str = r##"# Runs one backup described by the BERTH_* variables of the unit that starts it: dumps the
# service through `docker compose`, compresses the dump, keeps the newest N archives, and
# records the time of success for node exporter's textfile collector (when present), which
# the `BackupTooOld` alert reads.
set -euo pipefail
umask 077

: "${BERTH_STACK:?}" "${BERTH_SERVICE:?}" "${BERTH_BACKUP_DIR:?}" "${BERTH_BACKUP_KEEP:?}"
: "${BERTH_BACKUP_EXTENSION:?}" "${BERTH_BACKUP_MODE:?}" "${BERTH_BACKUP_COMMAND:?}"

compose=(docker compose --project-name "$BERTH_STACK" --file compose.yaml)
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
archive="$BERTH_BACKUP_DIR/$BERTH_SERVICE-$stamp.$BERTH_BACKUP_EXTENSION.gz"
mkdir -p "$BERTH_BACKUP_DIR"

cleanup() {
  rm -f "$archive.partial"
  if [ "$BERTH_BACKUP_MODE" = offline ]; then
    "${compose[@]}" start "$BERTH_SERVICE"
  fi
}
trap cleanup EXIT

if [ "$BERTH_BACKUP_MODE" = offline ]; then
  # The dump needs the service stopped: run it in a one-off container on the same volumes.
  "${compose[@]}" stop "$BERTH_SERVICE"
  # Without the image's entrypoint, as `exec` runs: an entrypoint may print on stdout
  # (Neo4j's announces plugin installs), which would land at the front of the dump.
  "${compose[@]}" run --rm --no-deps -T --entrypoint sh "$BERTH_SERVICE" -c "$BERTH_BACKUP_COMMAND" | gzip >"$archive.partial"
else
  "${compose[@]}" exec -T "$BERTH_SERVICE" sh -c "$BERTH_BACKUP_COMMAND" | gzip >"$archive.partial"
fi
mv "$archive.partial" "$archive"

# Keep the newest archives only. Names carry a UTC time stamp, so name order is age order.
find "$BERTH_BACKUP_DIR" -maxdepth 1 -name "$BERTH_SERVICE-[0-9]*.gz" | sort -r \
  | tail -n +"$((BERTH_BACKUP_KEEP + 1))" | xargs -r rm -f --

textfile_dir=/var/lib/node_exporter/textfile_collector
if [ -d "$textfile_dir" ]; then
  metric="$textfile_dir/berth-backup-$BERTH_STACK-$BERTH_SERVICE.prom"
  {
    echo "# HELP berth_backup_last_success_timestamp_seconds Time of the last successful backup."
    echo "# TYPE berth_backup_last_success_timestamp_seconds gauge"
    echo "berth_backup_last_success_timestamp_seconds{stack=\"$BERTH_STACK\",service=\"$BERTH_SERVICE\"} $(date +%s)"
  } >"$metric.tmp"
  mv "$metric.tmp" "$metric"
fi
echo "backup of $BERTH_SERVICE written to $archive"
"##;
