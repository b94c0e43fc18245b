//! Environment on Kubernetes: literal values in a ConfigMap, stack variables as `env`
//! entries from the stack's Secret or variables ConfigMap, composed with `$(VAR)`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapKeySelector, EnvVar, EnvVarSource, SecretKeySelector,
};

use super::{Context, from_secret, k8s_name};
use crate::model::text::{self, Piece};
use crate::model::{Command, Service};

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
        let pieces = text::parse(value).unwrap_or_else(|_| vec![Piece::Text(value.clone())]);
        let references: Vec<&String> = pieces
            .iter()
            .filter_map(|p| if let Piece::Var(v) = p { Some(v) } else { None })
            .collect();
        match (references.as_slice(), pieces.len()) {
            ([], _) => {
                literal.insert(key.clone(), text_of(&pieces));
            }
            ([variable], 1) if *variable == key => {
                sources.insert(key.clone());
            }
            _ => {
                sources.extend(references.into_iter().cloned());
                composed.push(EnvVar {
                    name: key.clone(),
                    value: Some(expand(&pieces)),
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
            Command::Shell(line) => vec![line.as_str()],
            Command::Exec(args) => args.iter().map(String::as_str).collect(),
        };
        sources.extend(words.into_iter().flat_map(text::references));
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
pub(super) fn text_of(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|piece| match piece {
            Piece::Text(t) => t.clone(),
            Piece::Var(v) => format!("${{{v}}}"),
        })
        .collect()
}

/// Text for an `env` value or a command word: references become `$(VAR)`, and a literal
/// `$(` is escaped as `$$(` so Kubernetes leaves it alone.
pub(super) fn expand(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|piece| match piece {
            Piece::Text(t) => t.replace("$(", "$$("),
            Piece::Var(v) => format!("$({v})"),
        })
        .collect()
}

pub(super) fn expand_text(value: &str) -> String {
    expand(&text::parse(value).unwrap_or_else(|_| vec![Piece::Text(value.to_string())]))
}

/// Text for a place Kubernetes does not expand: a variable reads the container's own
/// environment through the shell (`${VAR}`), a literal `$` stays itself.
pub(super) fn plain_text(value: &str) -> String {
    text_of(&text::parse(value).unwrap_or_else(|_| vec![Piece::Text(value.to_string())]))
}
