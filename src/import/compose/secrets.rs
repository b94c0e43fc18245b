//! Compose's secrets: a top-level secret read from a `file` (or an `environment` variable)
//! becomes a secret variable of the stack (`file = …` for the first), declared once a
//! service mounts it, and a service's `secrets` mount it under the file name Compose gives
//! it. What berth cannot say (`uid`, `gid`, `mode`, a target outside /run/secrets, an
//! `external` secret) is a loss.

use std::collections::BTreeSet;

use super::{Translator, summary};
use crate::import::interpolation;
use crate::import::nickel::{Expr, Field};
use crate::import::yaml::{Node, Value};

/// A top-level secret of the Compose file, as berth will declare it.
#[derive(Debug, Clone)]
pub struct ComposeSecret {
    /// The berth variable that holds it.
    pub variable: String,
    pub source: SecretSource,
    /// Line of its key, for the variable's description.
    pub line: u64,
    /// Whether a service mounts it: only those are declared (Compose leaves out the others).
    pub mounted: bool,
}

/// Where a top-level secret's value comes from, in the forms berth keeps.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// The `file:` as written; fixed to a path (its interpolations frozen, and said) when a
    /// service first mounts it.
    FileNode(Node),
    File(String),
    /// A `file:` berth could not fix to a path (said once, where it is written).
    Unusable,
    /// `environment: NAME`: berth's own kind of secret, the variable NAME.
    Environment,
}

impl Translator<'_> {
    /// The top-level `secrets`, read before the services that mount them. `interpolated`:
    /// every variable the file reads as `${NAME}`, which a secret's variable must not be.
    pub fn top_level_secrets(&mut self, node: &Node, interpolated: &BTreeSet<String>) {
        let Some(entries) = node.entries() else {
            self.lose(
                node.line,
                "secrets",
                format!("expected a mapping of secrets, found {}", node.kind()),
            );
            return;
        };
        for (key, value) in entries {
            let at = format!("secrets.{}", key.name);
            let mut source = None;
            for (option, option_value) in value.entries().unwrap_or_default() {
                let option_at = format!("{at}.{}", option.name);
                match option.name.as_str() {
                    "file" => source = Some((SecretSource::FileNode(option_value.clone()), None)),
                    "environment" => match self.fixed(option_value, &option_at) {
                        Some(name) if interpolated.contains(&name) => self.lose(
                            option.line,
                            option_at,
                            format!("the file also reads ${{{name}}} as text, which a berth secret mounted as a file cannot be too"),
                        ),
                        Some(name) if is_variable_name(&name) => {
                            source = Some((SecretSource::Environment, Some(name)));
                        }
                        Some(name) => self.lose(
                            option.line,
                            option_at,
                            format!("`{name}` is no variable name berth can declare"),
                        ),
                        None => {}
                    },
                    other => self.lose(
                        option.line,
                        option_at,
                        format!(
                            "secret `{other}: {}` has no berth field (berth reads a secret from a file or the environment)",
                            summary(option_value)
                        ),
                    ),
                }
            }
            let Some((source, variable)) = source else {
                continue;
            };
            let variable =
                variable.unwrap_or_else(|| self.secret_variable_name(&key.name, interpolated));
            self.secrets.insert(
                key.name.clone(),
                ComposeSecret {
                    variable,
                    source,
                    line: key.line,
                    mounted: false,
                },
            );
        }
    }

    /// A service's `secrets`, short (`- name`) or long (`source`, `target`) syntax: each
    /// mounts its top-level secret's variable at /run/secrets/<target>, the secret's name
    /// when no target is given (as Compose does).
    pub(super) fn service_secrets(&mut self, node: &Node, path: &str) -> Vec<Expr> {
        let mut mounts = Vec::new();
        for (i, item) in self.list(node, path).iter().enumerate() {
            let at = format!("{path}[{i}]");
            let (source, target) = match item.entries() {
                None => (self.fixed(item, &at), None),
                Some(entries) => self.long_secret(entries, &at),
            };
            let Some(source) = source else {
                continue;
            };
            let Some(file_name) = self.mounted_file_name(item.line, &at, &source, target) else {
                continue;
            };
            let Some(variable) = self.mount_secret(item.line, &at, &source) else {
                continue;
            };
            mounts.push(if file_name == variable.to_ascii_lowercase() {
                Expr::Str(variable)
            } else {
                Expr::Record(vec![
                    Field::new("variable", Expr::Str(variable)),
                    Field::new("target", Expr::Str(file_name)),
                ])
            });
        }
        mounts
    }

    /// The secret variables services mount, as the module declares them.
    pub fn secret_variables(&self) -> Vec<(String, Vec<Field>)> {
        self.secrets
            .iter()
            .filter(|(_, secret)| secret.mounted)
            .filter_map(|(key, secret)| {
                let (description, file) = match &secret.source {
                    SecretSource::File(path) => (
                        format!(
                            "Compose's secret `{key}` (line {}), read from a file.",
                            secret.line
                        ),
                        Some(path.clone()),
                    ),
                    SecretSource::Environment => (
                        format!(
                            "Compose's secret `{key}` (line {}), read from the environment.",
                            secret.line
                        ),
                        None,
                    ),
                    // Fixed when first mounted: a secret still in these forms is not.
                    SecretSource::FileNode(_) | SecretSource::Unusable => return None,
                };
                let mut fields = vec![
                    Field::new("description", Expr::Str(description)),
                    Field::new("secret", Expr::Bool(true)),
                ];
                if let Some(file) = file {
                    fields.push(Field::new("file", Expr::Str(file)));
                }
                Some((secret.variable.clone(), fields))
            })
            .collect()
    }

    /// The top-level secrets no service mounts, for the notes: left out, as Compose does.
    pub fn unmounted_secrets(&self) -> Vec<String> {
        self.secrets
            .iter()
            .filter(|(_, secret)| {
                !secret.mounted && !matches!(secret.source, SecretSource::Unusable)
            })
            .map(|(key, secret)| {
                format!(
                    "line {}: secrets.{key} is mounted by no service and left out (Compose leaves it out too)",
                    secret.line
                )
            })
            .collect()
    }

    fn long_secret(
        &mut self,
        entries: &[(crate::import::yaml::Key, Node)],
        at: &str,
    ) -> (Option<String>, Option<String>) {
        let (mut source, mut target) = (None, None);
        for (option, value) in entries {
            let option_at = format!("{at}.{}", option.name);
            match option.name.as_str() {
                "source" => source = self.fixed(value, &option_at),
                "target" => target = self.fixed(value, &option_at),
                "uid" | "gid" | "mode" => self.lose(
                    option.line,
                    option_at,
                    format!(
                        "secret `{}: {}` has no berth field: berth mounts secrets read-only for everyone (0444), as Compose does by default",
                        option.name,
                        summary(value)
                    ),
                ),
                other => self.lose(
                    option.line,
                    option_at,
                    format!("secret `{other}: {}` has no berth field", summary(value)),
                ),
            }
        }
        (source, target)
    }

    /// The file name under /run/secrets a mount's target means, where berth can mount it.
    fn mounted_file_name(
        &mut self,
        line: u64,
        at: &str,
        source: &str,
        target: Option<String>,
    ) -> Option<String> {
        let target = target.unwrap_or_else(|| source.to_string());
        let file_name = match target.strip_prefix("/run/secrets/") {
            Some(name) => name.to_string(),
            None if !target.starts_with('/') => target.clone(),
            None => {
                self.lose(
                    line,
                    at,
                    format!("secret `{source}` at {target}: berth mounts secrets under /run/secrets only"),
                );
                return None;
            }
        };
        if is_file_name(&file_name) {
            Some(file_name)
        } else {
            self.lose(
                line,
                at,
                format!("secret `{source}` as /run/secrets/{file_name}: berth takes a plain file name there (letters, digits, '.', '-', '_')"),
            );
            None
        }
    }

    /// The variable of top-level secret `source`, fixing its file's path on first use.
    fn mount_secret(&mut self, line: u64, at: &str, source: &str) -> Option<String> {
        let Some(secret) = self.secrets.get(source).cloned() else {
            self.lose(
                line,
                at,
                format!("secret `{source}` is not a `file` or `environment` secret of this file's top-level `secrets`"),
            );
            return None;
        };
        let source_now = match secret.source {
            SecretSource::FileNode(node) => self
                .fixed(&node, &format!("secrets.{source}.file"))
                .map_or(SecretSource::Unusable, SecretSource::File),
            other => other,
        };
        let usable = !matches!(source_now, SecretSource::Unusable);
        if let Some(secret) = self.secrets.get_mut(source) {
            secret.source = source_now;
            secret.mounted |= usable;
        }
        if !usable {
            self.lose(
                line,
                at,
                format!("secret `{source}` has no file berth can read (see secrets.{source}.file)"),
            );
            return None;
        }
        Some(secret.variable)
    }

    /// A berth variable name for Compose's secret `key` (`db-password` → `DB_PASSWORD`),
    /// clear of the variables the file interpolates and of the other secrets'.
    fn secret_variable_name(&self, key: &str, interpolated: &BTreeSet<String>) -> String {
        let mut base: String = key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        if !base.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            base.insert(0, '_');
        }
        let taken = |name: &str| {
            interpolated.contains(name) || self.secrets.values().any(|s| s.variable == name)
        };
        let mut name = base.clone();
        let mut n = 1;
        while taken(&name) {
            name = match n {
                1 => format!("{base}_SECRET"),
                _ => format!("{base}_SECRET_{n}"),
            };
            n += 1;
        }
        name
    }
}

/// Every variable the document reads as `${NAME}` in any value.
pub fn interpolated_names(node: &Node, names: &mut BTreeSet<String>) {
    match &node.value {
        Value::Str(text) => {
            if let Ok(translated) = interpolation::translate(text) {
                names.extend(translated.uses.into_iter().map(|found| found.name));
            }
        }
        Value::Seq(items) => items
            .iter()
            .for_each(|item| interpolated_names(item, names)),
        Value::Map(entries) => entries
            .iter()
            .for_each(|(_, value)| interpolated_names(value, names)),
        _ => {}
    }
}

fn is_variable_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What `SecretMount`'s contract takes as a target (schemas/contracts.ncl).
fn is_file_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}
