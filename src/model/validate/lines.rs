//! Text that reaches line-based formats (unit files, env files, `#` comments, scripts)
//! holds no line break and no other control character. Those formats have no escape
//! for a line break in most places (a systemd `Description=`, a `.env` comment), so such
//! text is refused here, where it can be located, instead of each writer guessing.
//! Tabs are allowed. Line feeds are allowed where every writer has a way to carry them:
//! a variable's `description` (the env-file writer comments each line), and commands —
//! `command`, `entrypoint`, `healthcheck.test`, `backup.command`, `backup.restore` —
//! which Compose files often write as multi-line scripts: YAML and Kubernetes hold them,
//! the unit writer quotes them with systemd's C escapes (`\n`), and a restore command is
//! a comment, one `#` line per line; a service's `files.<path>.content` is only ever its
//! own file. Environment values may span lines too (Compose
//! files carry properties files so), except in a profile that writes Quadlet units:
//! podman reads a container's environment file one line per variable.

use serde_json::Value;

use crate::error::Diagnostic;

/// Every string and record key of the evaluated stack that holds a character no
/// line-based format can carry, with its field path.
pub fn control_characters(value: &Value) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    let quadlet = value["profile"]["quadlet"] == Value::Bool(true);
    walk(value, quadlet, &mut String::new(), &mut found);
    found
}

fn walk(value: &Value, quadlet: bool, path: &mut String, found: &mut Vec<Diagnostic>) {
    match value {
        Value::String(text) => check(path, text, quadlet, found),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                walk(item, quadlet, path, found);
                path.truncate(len);
            }
        }
        Value::Object(fields) => {
            for (key, item) in fields {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                if let Some(bad) = key.chars().find(|c| forbidden(*c, false)) {
                    found.push(refusal(path, "name", bad));
                } else {
                    walk(item, quadlet, path, found);
                }
                path.truncate(len);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn check(path: &str, text: &str, quadlet: bool, found: &mut Vec<Diagnostic>) {
    let environment = is_environment_value(path);
    let multi_line = is_variable_description(path)
        || is_command(path)
        || is_file_content(path)
        || environment && !quadlet;
    if let Some(bad) = text.chars().find(|c| forbidden(*c, multi_line)) {
        let mut diagnostic = refusal(path, "text", bad);
        if environment && bad == '\n' {
            diagnostic = diagnostic.with_hint("this profile writes Quadlet units, and podman reads an environment file one line per variable: mount the text as a file, or leave `quadlet` off");
        }
        found.push(diagnostic);
    }
}

/// `services.<name>.environment.<KEY>`.
fn is_environment_value(path: &str) -> bool {
    path.strip_prefix("services.")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(_, field)| field.starts_with("environment."))
}

/// `variables.<NAME>.description`: written as `#` lines, one per line of text.
fn is_variable_description(path: &str) -> bool {
    path.strip_prefix("variables.")
        .and_then(|rest| rest.strip_suffix(".description"))
        .is_some_and(|name| !name.contains('.'))
}

/// `services.<name>.files.<path>.content`: written only into its own file.
fn is_file_content(path: &str) -> bool {
    path.strip_prefix("services.")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(_, field)| field.starts_with("files.") && field.ends_with(".content"))
}

/// `services.<name>.command…`, `entrypoint…`, `healthcheck.test…`, `backup.command`,
/// `backup.restore`.
fn is_command(path: &str) -> bool {
    let Some((_, field)) = path
        .strip_prefix("services.")
        .and_then(|rest| rest.split_once('.'))
    else {
        return false;
    };
    ["command", "entrypoint", "healthcheck.test"]
        .iter()
        .any(|command| field == *command || field.starts_with(&format!("{command}[")))
        || field == "backup.command"
        || field == "backup.restore"
}

/// Control characters (C0, DEL, C1) and the Unicode line and paragraph separators; tab
/// is fine everywhere, a line feed only where the writer comments each line.
fn forbidden(c: char, multi_line: bool) -> bool {
    match c {
        '\t' => false,
        '\n' => !multi_line,
        '\u{2028}' | '\u{2029}' => true,
        _ => c.is_control(),
    }
}

fn refusal(path: &str, what: &str, bad: char) -> Diagnostic {
    let (message, hint) = match bad {
        '\n' | '\r' | '\u{2028}' | '\u{2029}' | '\u{85}' => (
            format!(
                "this {what} contains a line break ({}); it is written into line-based files (systemd units, env files, comments) where it would start a new line",
                describe(bad)
            ),
            "write it on one line: join shell commands with `;` or `&&`, put longer text in a file the service mounts",
        ),
        _ => (
            format!(
                "this {what} contains the control character {}, which no line-based format berth writes can carry",
                describe(bad)
            ),
            "remove it; write a tab as a tab, anything else as plain text",
        ),
    };
    Diagnostic::new(path, message).with_hint(hint)
}

fn describe(c: char) -> String {
    let name = match c {
        '\n' => " (line feed, \\n)",
        '\r' => " (carriage return, \\r)",
        '\0' => " (NUL)",
        '\u{1b}' => " (escape)",
        _ => "",
    };
    format!("U+{:04X}{name}", u32::from(c))
}

#[cfg(test)]
mod tests {
    use super::control_characters;

    fn fields(value: serde_json::Value) -> Vec<String> {
        control_characters(&value)
            .into_iter()
            .map(|d| d.field)
            .collect()
    }

    #[test]
    fn finds_line_breaks_in_values_and_keys_with_their_path() {
        let value = serde_json::json!({
            "description": "one\ntwo",
            "services": { "api": { "environment": { "A\rB": "x", "C": "ok\tfine" },
                                   "command": ["sh", "-c", "a\u{0}b"],
                                   "entrypoint": ["sh", "-c", "multi\nline"],
                                   "labels": { "x": "no\nbreak" } } },
            "variables": { "X": { "description": "line one\nline two", "default": "a\u{2028}b" } },
        });
        assert_eq!(
            fields(value),
            [
                "description",
                "services.api.environment.A\rB",
                "services.api.command[2]",
                "services.api.labels.x",
                "variables.X.default",
            ]
        );
    }

    #[test]
    fn multi_line_environment_values_only_without_quadlet() {
        let stack = |quadlet: bool| {
            serde_json::json!({
                "profile": { "quadlet": quadlet },
                "services": { "flink": { "environment": { "FLINK_PROPERTIES": "a: 1\nb: 2" } } },
            })
        };
        assert_eq!(fields(stack(false)), Vec::<String>::new());
        assert_eq!(
            fields(stack(true)),
            ["services.flink.environment.FLINK_PROPERTIES"]
        );
    }
}
