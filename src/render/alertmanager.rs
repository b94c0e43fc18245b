//! Renders `alertmanager/alertmanager.yml` for a stack whose profile turns alerting on.
//! Pure. One route, one receiver: the profile's webhook, or none (alerts then show in
//! Alertmanager's UI only, and the file says how to add a receiver).

use std::path::PathBuf;

use serde::Serialize;

use super::yaml::to_yaml;
use super::{Artifact, RenderError, header};
use crate::model::Stack;

pub const DIR: &str = "alertmanager";

/// `alertmanager.yml`, when the stack runs an Alertmanager.
///
/// # Errors
/// Only if the YAML serializer fails.
pub fn alertmanager(stack: &Stack) -> Result<Vec<Artifact>, RenderError> {
    if stack.monitoring.alertmanager.is_none() {
        return Ok(Vec::new());
    }
    let receiver = Receiver {
        name: "ops".to_string(),
        webhook_configs: stack
            .profile
            .alert_webhook
            .iter()
            .map(|url| Webhook {
                url: url.clone(),
                send_resolved: true,
            })
            .collect(),
    };
    let config = Config {
        route: Route {
            receiver: receiver.name.clone(),
            group_by: vec!["alertname".to_string(), "service".to_string()],
            group_wait: "30s".to_string(),
            group_interval: "5m".to_string(),
            repeat_interval: "4h".to_string(),
        },
        receivers: vec![receiver],
    };
    let note = if stack.profile.alert_webhook.is_some() {
        ""
    } else {
        "# No receiver is configured (set `alert_webhook` in the profile): alerts show in\n# Alertmanager's UI only.\n"
    };
    let body = to_yaml("alertmanager.yml", &config)?;
    Ok(vec![Artifact {
        path: PathBuf::from(DIR).join("alertmanager.yml"),
        contents: format!("{}{note}{body}", header(stack)),
    }])
}

#[derive(Serialize)]
struct Config {
    route: Route,
    receivers: Vec<Receiver>,
}

#[derive(Serialize)]
struct Route {
    receiver: String,
    group_by: Vec<String>,
    group_wait: String,
    group_interval: String,
    repeat_interval: String,
}

#[derive(Serialize)]
struct Receiver {
    name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    webhook_configs: Vec<Webhook>,
}

#[derive(Serialize)]
struct Webhook {
    url: String,
    send_resolved: bool,
}
