//! Renders `.env.template`: every variable the stack reads, grouped, each with what it is,
//! who reads it, its default, and whether it is required or secret. Pure. Secrets are
//! listed empty; a dev-only fallback is named as such and never filled in.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Artifact, header};
use crate::model::validate::service_texts;
use crate::model::{Stack, Variable};

pub const FILE_NAME: &str = ".env.template";

/// `.env.template` for `stack`.
pub fn env_template(stack: &Stack) -> Artifact {
    let readers = readers(stack);
    let mounts = mounts(stack);
    let mut groups: BTreeMap<&str, Vec<(&String, &Variable)>> = BTreeMap::new();
    for (name, variable) in &stack.variables {
        groups
            .entry(variable.group.as_str())
            .or_default()
            .push((name, variable));
    }
    let mut out = header(stack);
    out.push_str("# Copy to .env beside compose.yaml and fill in every line that has no value.\n");
    out.push_str("# Commented lines show defaults; uncomment one to change it.\n");
    let passed = passed_through(stack);
    if groups.is_empty() && passed.is_empty() {
        out.push_str("#\n# This stack reads no variables.\n");
    }
    for (group, variables) in groups {
        out.push('\n');
        out.push_str(&(comment(&format!("== {group} ==")).join("\n") + "\n"));
        for (name, variable) in variables {
            out.push('\n');
            let use_of = Use {
                readers: readers.get(name.as_str()),
                mounts: mounts.get(name.as_str()),
            };
            out.push_str(&entry(stack, name, variable, &use_of));
        }
    }
    if !passed.is_empty() {
        out.push('\n');
        out.push_str("# == Passed through when set ==\n");
        out.push_str("# The containers get these only when this file (or the shell) sets them.\n");
        for (name, services) in passed {
            out.push_str(&format!(
                "\n# Passed to: {}.\n# {name}=\n",
                services.join(", ")
            ));
        }
    }
    Artifact {
        path: PathBuf::from(FILE_NAME),
        contents: out,
    }
}

/// Names services pass from the deploy environment (`host_environment`) that the stack
/// declares no variable for (a declared one is listed with its variable), with the
/// services that pass them.
fn passed_through(stack: &Stack) -> BTreeMap<&str, Vec<&str>> {
    let mut found: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (service, definition) in &stack.services {
        for name in &definition.host_environment {
            if !stack.variables.contains_key(name) {
                found.entry(name).or_default().push(service);
            }
        }
    }
    found
}

/// Who uses a variable: services whose text reads it, services that mount it as a file.
struct Use<'a> {
    readers: Option<&'a Vec<&'a str>>,
    mounts: Option<&'a Vec<String>>,
}

/// The lines of one variable.
fn entry(stack: &Stack, name: &str, variable: &Variable, use_of: &Use) -> String {
    let Variable {
        description,
        group: _,
        default,
        secret,
        dev_value,
        example,
        file,
    } = variable;
    let mut lines: Vec<String> = comment(description);
    if let Some(readers) = use_of.readers {
        lines.push(format!("# Read by: {}.", readers.join(", ")));
    }
    if let Some(mounts) = use_of.mounts {
        lines.push(format!("# Mounted by: {}.", mounts.join(", ")));
    }
    if use_of.readers.is_none() && use_of.mounts.is_none() {
        lines.push("# Read by no service (kept for scripts and operators).".to_string());
    }
    if let Some(example) = example {
        lines.extend(comment(&format!("Example: {example}")));
    }
    match (secret, default) {
        // Not read from .env: a line for it would suggest otherwise.
        (true, _) if file.is_some() => lines.push(format!(
            "# Secret, read from the file {} (relative to the deploy folder), not from here.",
            file.as_deref().unwrap_or_default()
        )),
        (true, _) => {
            lines.push("# Secret, required. Never commit the filled-in file.".to_string());
            if dev_value.is_some() && stack.profile.dev_secrets {
                lines.push(format!(
                    "# Unset, this {} build falls back to a throw-away dev-only value.",
                    stack.profile.name
                ));
            }
            lines.push(format!("{name}="));
        }
        (false, Some(default)) => lines.extend(comment(&format!("{name}={}", quote(default)))),
        (false, None) => {
            lines.push("# Required.".to_string());
            lines.push(format!("{name}="));
        }
    }
    lines.join("\n") + "\n"
}

/// `text` as `#` lines: every line break a reader could see (`\n`, `\r`, U+2028…) starts
/// a new comment line, so no text can end a comment and begin an assignment.
/// Like `str::lines`, a final line break adds no line.
fn comment(text: &str) -> Vec<String> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    if text.is_empty() {
        return Vec::new();
    }
    text.split([
        '\n', '\r', '\u{2028}', '\u{2029}', '\u{85}', '\u{b}', '\u{c}',
    ])
    .map(|line| format!("# {line}"))
    .collect()
}

/// Variable name → the services whose text references it, sorted.
fn readers(stack: &Stack) -> BTreeMap<&str, Vec<&str>> {
    let mut readers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (service_name, service) in &stack.services {
        let texts = service_texts(service_name, service);
        let variables = texts.iter().flat_map(|(_, value)| value.variables());
        // Typed fields that name a variable read it too (`model::param`).
        let passed = service.host_environment.iter().map(String::as_str);
        for variable in variables
            .chain(crate::model::param::service_variables(service))
            .chain(passed)
        {
            if let Some((key, _)) = stack.variables.get_key_value(variable) {
                let list = readers.entry(key.as_str()).or_default();
                if !list.contains(&service_name.as_str()) {
                    list.push(service_name);
                }
            }
        }
    }
    readers
}

/// Secret variable name → `service (/run/secrets/<file>)` for each service that mounts it.
fn mounts(stack: &Stack) -> BTreeMap<&str, Vec<String>> {
    let mut mounts: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (service_name, service) in &stack.services {
        for mount in &service.secrets {
            mounts
                .entry(mount.variable.as_str())
                .or_default()
                .push(format!(
                    "{service_name} (/run/secrets/{})",
                    mount.file_name()
                ));
        }
    }
    mounts
}

/// A value as a dotenv line can hold it: bare when safe, else single-quoted.
fn quote(value: &str) -> String {
    let bare = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@,+=".contains(c));
    if bare {
        value.to_string()
    } else if !value.contains('\'') {
        format!("'{value}'")
    } else {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    }
}
