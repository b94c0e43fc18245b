//! Renders `alertmanager/alertmanager.yml` for a stack whose profile turns alerting on.
//! Pure. One route, one receiver posting to every URL configured: the file of the stack's
//! webhook secret (`url_file`, Alertmanager ≥ 0.26, read at each notification so a rotated
//! secret needs no reload) and the profile's `alert_webhook`. The secret's URL gets the
//! payload of what listens there (`monitoring.alert_receiver`): Alertmanager's webhook JSON,
//! or its Slack integration for a Slack incoming webhook, which refuses the former. With
//! neither URL, alerts show in Alertmanager's UI only and the file says so;
//! `model::validate` refuses that for production profiles.

use std::path::PathBuf;

use serde::Serialize;

use super::yaml::to_yaml;
use super::{Artifact, RenderError, header, prometheus};
use crate::model::{AlertReceiver, SecretMount, Stack};

pub const DIR: &str = "alertmanager";

/// `alertmanager.yml`, when the stack runs an Alertmanager.
///
/// # Errors
/// Only if the YAML serializer fails.
pub fn alertmanager(stack: &Stack) -> Result<Vec<Artifact>, RenderError> {
    if stack.monitoring.alertmanager.is_none() {
        return Ok(Vec::new());
    }
    let secret_file = (stack.monitoring.alert_webhook_secret.as_ref())
        .map(|secret| format!("/run/secrets/{}", mounted_file_name(stack, secret)));
    let (webhook_file, slack_file) = match stack.monitoring.alert_receiver {
        AlertReceiver::Webhook => (secret_file, None),
        AlertReceiver::Slack => (None, secret_file),
    };
    let from_profile =
        (stack.profile.alert_webhook.iter()).map(|url| Webhook::new(Target::Url(url.clone())));
    let receiver = Receiver {
        name: "ops".to_string(),
        webhook_configs: (webhook_file.into_iter())
            .map(|file| Webhook::new(Target::UrlFile(file)))
            .chain(from_profile)
            .collect(),
        slack_configs: slack_file.into_iter().map(Slack::new).collect(),
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
        inhibit_rules: inhibitions(stack),
    };
    let ops = &config.receivers[0];
    let note = if ops.webhook_configs.is_empty() && ops.slack_configs.is_empty() {
        "# No receiver is configured (set `alert_webhook` in the profile, or\n# `monitoring.alert_webhook_secret`): alerts show in Alertmanager's UI only.\n"
    } else {
        ""
    };
    let body = to_yaml("alertmanager.yml", &config)?;
    Ok(vec![Artifact {
        path: PathBuf::from(DIR).join("alertmanager.yml"),
        contents: format!("{}{note}{body}", header(stack)),
    }])
}

/// A database that is down fails its TCP probe and its exporter's gauge at once: the probe
/// alert (the direct symptom) holds back the exporter's for the same service, so one outage
/// pages once; a database that answers but refuses its exporter still raises the latter.
fn inhibitions(stack: &Stack) -> Vec<Inhibition> {
    if !prometheus::probed_and_exported(stack) {
        return Vec::new();
    }
    vec![Inhibition {
        source_matchers: vec![format!("alertname=\"{}\"", prometheus::UNREACHABLE_ALERT)],
        target_matchers: vec![format!("alertname=\"{}\"", prometheus::EXPORTER_ALERT)],
        equal: vec!["service".to_string()],
    }]
}

#[derive(Serialize)]
struct Config {
    route: Route,
    receivers: Vec<Receiver>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    inhibit_rules: Vec<Inhibition>,
}

#[derive(Serialize)]
struct Inhibition {
    source_matchers: Vec<String>,
    target_matchers: Vec<String>,
    equal: Vec<String>,
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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    slack_configs: Vec<Slack>,
}

/// Alertmanager's Slack integration (`api_url_file`, Alertmanager ≥ 0.22). The title is
/// Alertmanager's own (`[FIRING:1] ServiceUnreachable (postgres …)`); its default text is
/// empty, so the message lists each alert's summary and description, which say what is
/// down and since when.
#[derive(Serialize)]
struct Slack {
    api_url_file: String,
    send_resolved: bool,
    text: String,
}

impl Slack {
    fn new(api_url_file: String) -> Self {
        Slack {
            api_url_file,
            send_resolved: true,
            text: "{{ range .Alerts }}{{ .Annotations.summary }}: {{ .Annotations.description }}\n{{ end }}"
                .to_string(),
        }
    }
}

#[derive(Serialize)]
struct Webhook {
    #[serde(flatten)]
    target: Target,
    send_resolved: bool,
}

impl Webhook {
    fn new(target: Target) -> Self {
        Webhook {
            target,
            send_resolved: true,
        }
    }
}

/// Where a webhook posts: exactly one of `url` and `url_file` (Alertmanager refuses both).
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Target {
    Url(String),
    UrlFile(String),
}

/// The file name under /run/secrets the Alertmanager service mounts `secret` as (validation
/// makes sure it mounts it).
fn mounted_file_name(stack: &Stack, secret: &str) -> String {
    stack
        .monitoring
        .alertmanager
        .as_ref()
        .and_then(|name| stack.services.get(name))
        .and_then(|service| service.secrets.iter().find(|m| m.variable == secret))
        .map_or_else(|| Stack::secret_file_name(secret), SecretMount::file_name)
}
