//! Typed fields that may name a stack variable instead of a value (`interval =
//! "${HC_INTERVAL}"`, `restart = "${RESTART}"`), so an operator changes them in `.env`
//! as Compose files allow. Such a variable must be declared with a default, and that
//! default must be a valid value of the field: backends that do not read `.env` at
//! deploy time (Quadlet, Kubernetes, apply) use it, Compose writes `${NAME:-default}`.
//!
//! [`bind`] runs on the evaluated JSON before the model is deserialized: it checks each
//! such reference against `variables` (one diagnostic per problem, at the field) and
//! replaces it by `{ variable, default }`, which [`Param`] then reads and types. A
//! [`Param`] therefore always holds a value; no backend resolves anything.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::Diagnostic;
use crate::model::text::{REFERENCE_ERROR, Text};
use crate::model::{Healthcheck, Service};

/// The fields of a service that may hold a variable, as paths below the service; `[]`
/// stands for every item of a list.
pub const SERVICE_PARAMS: &[&[&str]] = &[
    &["healthcheck", "interval"],
    &["healthcheck", "timeout"],
    &["healthcheck", "start_period"],
    &["healthcheck", "retries"],
    &["restart"],
    &["ports", "[]", "target"],
];

/// The variables a service's typed fields name (see [`SERVICE_PARAMS`]), in that order.
pub fn service_variables(service: &Service) -> Vec<&str> {
    let mut names = vec![service.restart.as_ref().and_then(Param::variable)];
    names.extend(service.ports.iter().map(|port| port.target.variable()));
    if let Some(healthcheck) = &service.healthcheck {
        let Healthcheck {
            test: _,
            interval,
            timeout,
            retries,
            start_period,
        } = healthcheck;
        names.extend([
            interval.variable(),
            timeout.variable(),
            start_period.as_ref().and_then(Param::variable),
            retries.variable(),
        ]);
    }
    names.into_iter().flatten().collect()
}

/// A typed value, written as itself or as a stack variable holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param<T> {
    value: T,
    variable: Option<String>,
}

impl<T> Param<T> {
    /// A value written as itself.
    pub fn fixed(value: T) -> Param<T> {
        Param {
            value,
            variable: None,
        }
    }

    /// The value, or the variable's declared default: what a backend that does not read
    /// `.env` uses.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// The variable the field names, if it names one.
    pub fn variable(&self) -> Option<&str> {
        self.variable.as_deref()
    }

    /// The field's value where its variable is `text` (a host's `.env`, read by apply).
    ///
    /// # Errors
    /// `text` is no value of the field.
    pub fn read(&self, text: &str) -> Result<T, String>
    where
        T: DeserializeOwned,
    {
        typed(&serde_json::Value::String(text.to_string()))
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Param<T> {
    /// The value itself, or the `{ variable, default }` record [`bind`] made of a reference.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = serde_json::Value::deserialize(deserializer)?;
        let bound = match &raw {
            serde_json::Value::Object(record) => record
                .get(VARIABLE)
                .and_then(serde_json::Value::as_str)
                .zip(record.get(DEFAULT)),
            _ => None,
        };
        let Some((name, default)) = bound else {
            return serde_json::from_value(raw)
                .map(Param::fixed)
                .map_err(serde::de::Error::custom);
        };
        let value = typed::<T>(default).map_err(|reason| {
            serde::de::Error::custom(format!(
                "{REFERENCE_ERROR}the default {default} of `${{{name}}}` is no value of this field: {reason}"
            ))
        })?;
        Ok(Param {
            value,
            variable: Some(name.to_string()),
        })
    }
}

const VARIABLE: &str = "variable";
const DEFAULT: &str = "default";

/// Replaces every `${NAME}` in a typed field of `stack` (the evaluated JSON) by the
/// variable and its declared default; returns a diagnostic for each reference to a
/// variable that is undeclared, secret or has no default (the field is then left as it
/// was, and the caller stops).
pub fn bind(stack: &mut serde_json::Value) -> Vec<Diagnostic> {
    let variables = stack.get("variables").cloned().unwrap_or_default();
    let mut found = Vec::new();
    let Some(services) = stack
        .get_mut("services")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return found;
    };
    for (service_name, service) in services.iter_mut() {
        for path in SERVICE_PARAMS {
            for (at, slot) in fields_mut(service, path, String::new()) {
                let Some(name) = reference(slot) else {
                    continue;
                };
                let field = format!("services.{service_name}{at}");
                match declared_default(&variables, &name) {
                    Ok(default) => {
                        *slot = serde_json::json!({ VARIABLE: name, DEFAULT: default });
                    }
                    Err(diagnostic) => found.push(diagnostic(field)),
                }
            }
        }
    }
    found
}

/// The variable a field's text consists of (`"${NAME}"`), if that is what it is.
fn reference(slot: &serde_json::Value) -> Option<String> {
    let text = Text::parse(slot.as_str()?).ok()?;
    text.sole_variable().map(str::to_string)
}

/// Each value at `path` below `value` (every item where the path says `[]`), with its
/// field path as diagnostics write it (`.ports[0].target`).
fn fields_mut<'a>(
    value: &'a mut serde_json::Value,
    path: &[&str],
    at: String,
) -> Vec<(String, &'a mut serde_json::Value)> {
    let Some((first, rest)) = path.split_first() else {
        return vec![(at, value)];
    };
    if *first == "[]" {
        let Some(items) = value.as_array_mut() else {
            return Vec::new();
        };
        return items
            .iter_mut()
            .enumerate()
            .flat_map(|(index, item)| fields_mut(item, rest, format!("{at}[{index}]")))
            .collect();
    }
    match value.get_mut(*first) {
        Some(inner) => fields_mut(inner, rest, format!("{at}.{first}")),
        None => Vec::new(),
    }
}

type Problem = Box<dyn FnOnce(String) -> Diagnostic>;

/// The default `variables.<name>` declares, or the diagnostic to give at the field.
fn declared_default(
    variables: &serde_json::Value,
    name: &str,
) -> Result<serde_json::Value, Problem> {
    let name = name.to_string();
    let Some(variable) = variables.get(&name) else {
        return Err(Box::new(move |field| {
            Diagnostic::new(field, format!("reads `${{{name}}}`, which the stack does not declare"))
                .with_hint(format!(
                    "declare it with a default: variables.{name} = {{ description = \"…\", default = \"…\" }}"
                ))
        }));
    };
    if variable.get("secret") == Some(&serde_json::Value::Bool(true)) {
        return Err(Box::new(move |field| {
            Diagnostic::new(
                field,
                format!("reads `${{{name}}}`, a secret; a typed field cannot hold a secret"),
            )
        }));
    }
    match variable.get(DEFAULT) {
        Some(default) if !default.is_null() => Ok(default.clone()),
        _ => Err(Box::new(move |field| {
            Diagnostic::new(
                field,
                format!("reads `${{{name}}}`, which has no default; a typed field needs one"),
            )
            .with_hint(format!(
                "Quadlet, Kubernetes and apply do not read .env and use the default: set variables.{name}.default"
            ))
        })),
    }
}

/// A variable's default as a value of the field: as written, or, for a number written
/// as text (variables hold text), as that number.
fn typed<T: DeserializeOwned>(default: &serde_json::Value) -> Result<T, String> {
    match serde_json::from_value(default.clone()) {
        Ok(value) => Ok(value),
        // A number written as text says why it is no value as a number would (70000 is
        // past a port's range), not that it is text.
        Err(first) => match default
            .as_str()
            .and_then(|text| text.trim().parse::<serde_json::Number>().ok())
        {
            Some(number) => {
                serde_json::from_value(serde_json::Value::Number(number)).map_err(|e| e.to_string())
            }
            None => Err(first.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Duration;

    fn check(stack: serde_json::Value, expect: &[&str]) -> serde_json::Value {
        let mut stack = stack;
        let found: Vec<String> = bind(&mut stack)
            .iter()
            .map(|d| format!("{}: {}", d.field, d.message))
            .collect();
        assert_eq!(found, expect);
        stack
    }

    #[test]
    fn a_declared_default_types_the_field() {
        let stack = check(
            serde_json::json!({
                "variables": { "HC": { "default": "30s" }, "TRIES": { "default": "3" } },
                "services": { "api": { "healthcheck": { "interval": "${HC}", "retries": "${TRIES}" } } },
            }),
            &[],
        );
        let health = &stack["services"]["api"]["healthcheck"];
        let interval: Param<Duration> = serde_json::from_value(health["interval"].clone()).unwrap();
        assert_eq!(
            (interval.value().as_str(), interval.variable()),
            ("30s", Some("HC"))
        );
        let retries: Param<u32> = serde_json::from_value(health["retries"].clone()).unwrap();
        assert_eq!(*retries.value(), 3);
        let fixed: Param<u32> = serde_json::from_value(serde_json::json!(4)).unwrap();
        assert_eq!((fixed.value(), fixed.variable()), (&4, None));
    }

    #[test]
    fn undeclared_secret_and_defaultless_variables_are_refused() {
        check(
            serde_json::json!({
                "variables": { "S": { "secret": true }, "N": {} },
                "services": { "api": {
                    "restart": "${S}",
                    "healthcheck": { "interval": "${N}", "timeout": "${GONE}", "start_period": "1s" },
                } },
            }),
            &[
                "services.api.healthcheck.interval: reads `${N}`, which has no default; a typed field needs one",
                "services.api.healthcheck.timeout: reads `${GONE}`, which the stack does not declare",
                "services.api.restart: reads `${S}`, a secret; a typed field cannot hold a secret",
            ],
        );
    }

    #[test]
    fn a_default_of_the_wrong_kind_is_refused() {
        let bound = serde_json::json!({ VARIABLE: "HC", DEFAULT: "soon" });
        let err = serde_json::from_value::<Param<Duration>>(bound).unwrap_err();
        assert!(
            err.to_string().contains("the default \"soon\" of `${HC}`"),
            "{err}"
        );
    }
}
