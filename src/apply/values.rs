//! The values of a stack's variables on the host being converged: the process
//! environment, then the env file, then the profile's encrypted secrets file, then (dev
//! profiles only) a secret's dev value, then the declared default. The same order compose
//! reads `.env` in, so `apply` and `docker compose up` on the generated file see the same
//! values. A secret expands to a placeholder (see [`super::secrets`]): its value reaches
//! the engine and nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::ApplyError;
use super::secrets::placeholder;
use serde::de::DeserializeOwned;

use crate::model::{Param, Stack, Text};

/// Every declared variable of a stack with the value it has on this host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values {
    values: BTreeMap<String, String>,
    secret: BTreeSet<String>,
}

impl Values {
    /// Resolves every variable `stack` declares.
    ///
    /// # Errors
    /// An unreadable env file, or the variables that have no value at all (every one of
    /// them, so the user fixes the file once).
    pub fn resolve(
        stack: &Stack,
        env_file: Option<&Path>,
        vault: &BTreeMap<String, String>,
        process: impl Fn(&str) -> Option<String>,
    ) -> Result<Values, ApplyError> {
        let file = match env_file {
            Some(path) if path.exists() => read_env_file(path)?,
            _ => BTreeMap::new(),
        };
        let mut values = BTreeMap::new();
        let mut missing = Vec::new();
        for (name, variable) in &stack.variables {
            // Its value is its file's, read for the services that mount it (apply's pre-flight).
            if stack.secret_file(name).is_some() {
                continue;
            }
            let dev_value = variable
                .dev_value
                .clone()
                .filter(|_| variable.secret && stack.profile.dev_secrets);
            let value = process(name)
                .or_else(|| file.get(name).cloned())
                .or_else(|| vault.get(name).cloned())
                .or(dev_value)
                .or_else(|| variable.default.clone().filter(|_| !variable.secret));
            match value {
                Some(value) => {
                    values.insert(name.clone(), value);
                }
                None => missing.push(name.clone()),
            }
        }
        let secret = stack
            .variables
            .iter()
            .filter(|(_, v)| v.secret)
            .map(|(name, _)| name.clone())
            .collect();
        if missing.is_empty() {
            Ok(Values { values, secret })
        } else {
            Err(ApplyError::MissingVariables {
                env_file: env_file.map(Path::to_path_buf),
                names: missing,
            })
        }
    }

    /// `text` with every `${NAME}` replaced by its value, or by a placeholder for a secret
    /// (validation has checked that each reference is declared; one that is not stays as
    /// written).
    pub fn expand(&self, text: &Text) -> String {
        text.render(
            str::to_string,
            |name| {
                if self.secret.contains(name) {
                    return placeholder(name);
                }
                self.values
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| format!("${{{name}}}"))
            },
            // Validation keeps secrets out of `${NAME:+text}`: the value decides here.
            |name, alternative| {
                let set = self.values.get(name).is_some_and(|v| !v.is_empty());
                if set {
                    alternative.to_string()
                } else {
                    String::new()
                }
            },
        )
    }

    /// A typed field's value on this host: its variable's value here, as docker compose
    /// reads `.env`, or the field's value when it names no variable (or this host gives
    /// the variable none).
    ///
    /// # Errors
    /// The variable's value here is no value of the field (apply's pre-flight lists these).
    pub fn param<T: Clone + DeserializeOwned>(&self, param: &Param<T>) -> Result<T, String> {
        let Some(name) = param.variable() else {
            return Ok(param.value().clone());
        };
        match self.values.get(name) {
            Some(text) => param
                .read(text)
                .map_err(|reason| format!("${{{name}}} is {text:?} here: {reason}")),
            None => Ok(param.value().clone()),
        }
    }

    /// Values as given; the names in `secret` expand to placeholders.
    pub fn new(values: BTreeMap<String, String>, secret: BTreeSet<String>) -> Values {
        Values { values, secret }
    }

    /// Only secrets, `name` → value: what a recorded generation needs to run again.
    pub fn of_secrets(values: BTreeMap<String, String>) -> Values {
        Values {
            secret: values.keys().cloned().collect(),
            values,
        }
    }

    /// Adds a value that is a secret (an env file's, see [`super::secrets::env_file_secret`]).
    pub fn add_secret(&mut self, name: String, value: String) {
        self.secret.insert(name.clone());
        self.values.insert(name, value);
    }

    /// A secret's value, for the engine only.
    pub fn secret(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .filter(|_| self.secret.contains(name))
            .map(String::as_str)
    }

    /// The values that are no secret: what a generation may record.
    pub fn public(&self) -> BTreeMap<String, String> {
        self.values
            .iter()
            .filter(|(name, _)| !self.secret.contains(*name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }
}

/// Read the way Compose reads `.env` (`OS=Oracle Linux` is one value, quotes as in a shell).
fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>, ApplyError> {
    let fail = |message: String| ApplyError::EnvFile {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    crate::env_file::parse(&text).map_err(|(line, message)| fail(format!("line {line}: {message}")))
}
