//! Environment on Kubernetes: literal values in a ConfigMap, stack variables as `env`
//! entries from the stack's Secret or variables ConfigMap, composed with `$(VAR)`.
//!
//! A stack variable is interpolation input, not container environment (under Compose it
//! never reaches the container unless a key says so). Kubernetes composes `$(VAR)` only
//! from earlier `env` entries, so a variable that a composed value, a command or a probe
//! reads is carried by the entry that already holds it (`KEY = "${VAR}"`), else by a
//! helper entry `BERTH_VAR_<VAR>`: a name no image reads as configuration. Neo4j, for one,
//! turns every `NEO4J_*` variable into a setting and refuses unknown ones.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapKeySelector, EnvVar, EnvVarSource, SecretKeySelector,
};

use super::{Context, from_secret, k8s_name};
use crate::model::{Command, HealthTest, Service, Text};

/// Prefix of the entries that carry a variable no key of the service holds.
pub(super) const HELPER_PREFIX: &str = "BERTH_VAR_";

/// Environment split into what a ConfigMap can carry and what needs `env` entries.
pub(super) struct Environment {
    pub(super) config_map: Option<ConfigMap>,
    /// `env` entries: those read from the Secret or variables ConfigMap first (sorted),
    /// then values composed from them.
    pub(super) entries: Vec<EnvVar>,
    /// The `env` entry that holds each stack variable the container reads.
    holders: BTreeMap<String, String>,
    /// The variables whose declared default is not empty: a `${NAME:+text}` is decided
    /// by it when the manifests are built (Kubernetes composes no conditional).
    set_by_default: BTreeSet<String>,
}

impl Environment {
    /// Text for an `env` value or a command word: references become `$(ENTRY)`, and a
    /// literal `$(` is escaped as `$$(` so Kubernetes leaves it alone.
    pub(super) fn expand(&self, text: &Text) -> String {
        text.render(
            |literal| literal.replace("$(", "$$("),
            |name| format!("$({})", self.holder(name)),
            |name, alternative| self.alternative(name, alternative).replace("$(", "$$("),
        )
    }

    /// `${NAME:+text}` as decided by NAME's declared default.
    fn alternative(&self, name: &str, alternative: &str) -> String {
        if self.set_by_default.contains(name) {
            alternative.to_string()
        } else {
            String::new()
        }
    }

    /// Text for a place Kubernetes does not expand but a shell in the container does (an
    /// exec probe): a variable reads the entry that holds it (`${ENTRY}`).
    pub(super) fn shell(&self, text: &Text) -> String {
        text.render(
            str::to_string,
            |name| format!("${{{}}}", self.holder(name)),
            |name, alternative| self.alternative(name, alternative),
        )
    }

    /// One double-quoted shell word: literal text escaped, a variable as `${ENTRY}`.
    pub(super) fn shell_word(&self, text: &Text) -> String {
        let escape = |literal: &str| -> String {
            literal
                .chars()
                .flat_map(|c| match c {
                    '\\' | '"' | '$' | '`' => vec!['\\', c],
                    c => vec![c],
                })
                .collect()
        };
        let quoted = text.render(
            escape,
            |name| format!("${{{}}}", self.holder(name)),
            |name, alternative| escape(&self.alternative(name, alternative)),
        );
        format!("\"{quoted}\"")
    }

    fn holder<'a>(&'a self, variable: &'a str) -> &'a str {
        self.holders.get(variable).map_or(variable, String::as_str)
    }
}

pub(super) fn environment(ctx: &Context, name: &str, service: &Service) -> Environment {
    let mut literal = BTreeMap::new();
    let mut composed = Vec::new();
    let mut held: Vec<(String, String)> = Vec::new();
    let mut read: BTreeSet<String> = BTreeSet::new();
    for (key, value) in &service.environment {
        match (value.variables().next(), value.sole_variable()) {
            (None, _) => {
                literal.insert(key.clone(), text_of(value));
            }
            (_, Some(variable)) => held.push((key.clone(), variable.to_string())),
            _ => {
                read.extend(value.variables().map(str::to_string));
                composed.push((key.clone(), value));
            }
        }
    }
    read.extend(command_variables(service));
    let mut holders: BTreeMap<String, String> = BTreeMap::new();
    for (key, variable) in &held {
        holders
            .entry(variable.clone())
            .or_insert_with(|| key.clone());
    }
    let mut sources: Vec<EnvVar> = held
        .iter()
        .map(|(key, variable)| variable_source(ctx, name, variable, key))
        .collect();
    for variable in read {
        holders.entry(variable).or_insert_with_key(|variable| {
            let helper = format!("{HELPER_PREFIX}{variable}");
            sources.push(variable_source(ctx, name, variable, &helper));
            helper
        });
    }
    sources.extend(
        service
            .host_environment
            .iter()
            .map(|variable| passed_source(ctx, name, variable)),
    );
    sources.sort_by(|a, b| a.name.cmp(&b.name));
    let mut environment = Environment {
        config_map: (!literal.is_empty()).then(|| ConfigMap {
            metadata: ctx.meta(&format!("{}-env", k8s_name(name)), name),
            data: Some(literal),
            ..ConfigMap::default()
        }),
        entries: Vec::new(),
        holders,
        set_by_default: ctx
            .stack
            .variables
            .iter()
            .filter(|(_, v)| !v.secret && v.default.as_deref().is_some_and(|d| !d.is_empty()))
            .map(|(name, _)| name.clone())
            .collect(),
    };
    let composed: Vec<EnvVar> = composed
        .into_iter()
        .map(|(key, value)| EnvVar {
            name: key,
            value: Some(environment.expand(value)),
            ..EnvVar::default()
        })
        .collect();
    environment.entries = sources.into_iter().chain(composed).collect();
    environment
}

/// The stack variables that the service's command, entrypoint and healthcheck read.
fn command_variables(service: &Service) -> impl Iterator<Item = String> + '_ {
    let commands = [&service.command, &service.entrypoint]
        .into_iter()
        .flatten()
        .flat_map(|command| match command {
            Command::Shell(line) => vec![line],
            Command::Exec(args) => args.iter().collect(),
        });
    let probe = service
        .healthcheck
        .iter()
        .flat_map(|healthcheck| match &healthcheck.test {
            HealthTest::Shell(line) => vec![line],
            HealthTest::Exec(args) => args.iter().collect(),
            HealthTest::Http { .. } => Vec::new(),
        });
    commands
        .chain(probe)
        .flat_map(Text::variables)
        .map(str::to_string)
}

/// The `env` entry `name` of `service`, read from where the stack keeps `variable`.
pub(super) fn variable_source(ctx: &Context, service: &str, variable: &str, name: &str) -> EnvVar {
    let is_secret = ctx.stack.variables.get(variable).is_none_or(from_secret);
    let value_from = if is_secret {
        EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: ctx.secret_name_for(service),
                key: variable.to_string(),
                ..SecretKeySelector::default()
            }),
            ..EnvVarSource::default()
        }
    } else {
        EnvVarSource {
            config_map_key_ref: Some(ConfigMapKeySelector {
                name: ctx.variables_name(),
                key: variable.to_string(),
                ..ConfigMapKeySelector::default()
            }),
            ..EnvVarSource::default()
        }
    };
    EnvVar {
        name: name.to_string(),
        value_from: Some(value_from),
        ..EnvVar::default()
    }
}

/// The `env` entry of a variable passed from the deploy environment (`host_environment`):
/// on Kubernetes that is the stack's variables ConfigMap (a declared default counts as
/// set) or its Secret, read as an optional key so that an unset one leaves it unset.
fn passed_source(ctx: &Context, service: &str, variable: &str) -> EnvVar {
    let mut entry = variable_source(ctx, service, variable, variable);
    if let Some(source) = entry.value_from.as_mut() {
        if let Some(selector) = source.config_map_key_ref.as_mut() {
            selector.optional = Some(true);
        }
        if let Some(selector) = source.secret_key_ref.as_mut() {
            selector.optional = Some(true);
        }
    }
    entry
}

/// The variables passed from the deploy environment that the stack's Secret would carry
/// (no declared non-secret default puts them in the variables ConfigMap), with the
/// services that read them.
pub(super) fn passed_through_secret<'a>(ctx: &Context<'a>) -> BTreeMap<&'a str, Vec<&'a str>> {
    let mut found: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (service, definition) in &ctx.stack.services {
        for variable in &definition.host_environment {
            let in_secret = ctx
                .stack
                .variables
                .get(variable)
                .is_none_or(super::from_secret);
            if in_secret {
                found.entry(variable).or_default().push(service);
            }
        }
    }
    found
}

/// Literal text, as a ConfigMap value (no expansion happens there).
pub(super) fn text_of(text: &Text) -> String {
    text.render(
        str::to_string,
        |name| format!("${{{name}}}"),
        |name, alternative| format!("${{{name}:+{alternative}}}"),
    )
}
