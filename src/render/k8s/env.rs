//! Environment on Kubernetes: literal values in a ConfigMap, stack variables as `env`
//! entries from the stack's Secret or variables ConfigMap, composed with `$(VAR)`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapKeySelector, EnvVar, EnvVarSource, SecretKeySelector,
};

use super::{Context, from_secret, k8s_name};
use crate::model::{Command, Service, Text};

/// Environment split into what a ConfigMap can carry and what needs `env` entries.
pub(super) struct Environment {
    pub(super) config_map: Option<ConfigMap>,
    /// `env` entries: variable sources first (sorted), then values composed from them.
    pub(super) entries: Vec<EnvVar>,
}

pub(super) fn environment(ctx: &Context, name: &str, service: &Service) -> Environment {
    let mut literal = BTreeMap::new();
    let mut composed = Vec::new();
    let mut sources: BTreeSet<String> = BTreeSet::new();
    for (key, value) in &service.environment {
        let references: Vec<&str> = value.variables().collect();
        match (references.as_slice(), value.sole_variable()) {
            ([], _) => {
                literal.insert(key.clone(), text_of(value));
            }
            (_, Some(variable)) if variable == key => {
                sources.insert(key.clone());
            }
            _ => {
                sources.extend(references.into_iter().map(str::to_string));
                composed.push(EnvVar {
                    name: key.clone(),
                    value: Some(expand(value)),
                    ..EnvVar::default()
                });
            }
        }
    }
    for command in [&service.command, &service.entrypoint]
        .into_iter()
        .flatten()
    {
        let words = match command {
            Command::Shell(line) => vec![line],
            Command::Exec(args) => args.iter().collect(),
        };
        sources.extend(
            words
                .into_iter()
                .flat_map(Text::variables)
                .map(str::to_string),
        );
    }
    let mut entries: Vec<EnvVar> = sources
        .iter()
        .map(|variable| variable_source(ctx, variable))
        .collect();
    entries.extend(composed);
    let config_map = (!literal.is_empty()).then(|| ConfigMap {
        metadata: ctx.meta(&format!("{}-env", k8s_name(name)), name),
        data: Some(literal),
        ..ConfigMap::default()
    });
    Environment {
        config_map,
        entries,
    }
}

pub(super) fn variable_source(ctx: &Context, variable: &str) -> EnvVar {
    let is_secret = ctx.stack.variables.get(variable).is_none_or(from_secret);
    let value_from = if is_secret {
        EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: ctx.secret_name(),
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
        name: variable.to_string(),
        value_from: Some(value_from),
        ..EnvVar::default()
    }
}

/// Literal text, as a ConfigMap value (no expansion happens there).
pub(super) fn text_of(text: &Text) -> String {
    text.render(str::to_string, |name| format!("${{{name}}}"))
}

/// Text for an `env` value or a command word: references become `$(VAR)`, and a literal
/// `$(` is escaped as `$$(` so Kubernetes leaves it alone.
pub(super) fn expand(text: &Text) -> String {
    text.render(
        |literal| literal.replace("$(", "$$("),
        |name| format!("$({name})"),
    )
}

/// Text for a place Kubernetes does not expand: a variable reads the container's own
/// environment through the shell (`${VAR}`), a literal `$` stays itself.
pub(super) fn plain_text(text: &Text) -> String {
    text_of(text)
}
