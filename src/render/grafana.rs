//! Renders Grafana's provisioning for a stack that runs Grafana: the datasources
//! (Prometheus, the default, and Loki, whichever the stack has) and, with Prometheus and
//! the profile's `metrics` on, the dashboards of `grafana::dashboards` with the provider
//! that loads them. Pure.

mod dashboard;
mod dashboards;

use std::path::PathBuf;

use serde::Serialize;

use super::yaml::to_yaml;
use super::{Artifact, RenderError, header, service_port};
use crate::model::{MountKind, Stack};

pub const DIR: &str = "grafana/provisioning";
/// The dashboards' folder inside the provisioning folder.
const DASHBOARDS: &str = "dashboards/berth";
/// Where Grafana reads provisioning when the Grafana service mounts it elsewhere than
/// through `./grafana/provisioning` (its `GF_PATHS_PROVISIONING` default).
const DEFAULT_PROVISIONING: &str = "/etc/grafana/provisioning";

/// The provisioning files of `stack`, when there is something to show.
///
/// # Errors
/// Only if the YAML serializer fails.
pub fn grafana(stack: &Stack) -> Result<Vec<Artifact>, RenderError> {
    files(stack, stack.profile.systemd)
}

/// The provisioning files the Kubernetes manifests carry: the same, without the backups
/// dashboard, since no timer runs backups there.
///
/// # Errors
/// Only if the YAML serializer fails.
pub fn for_kubernetes(stack: &Stack) -> Result<Vec<Artifact>, RenderError> {
    files(stack, false)
}

fn files(stack: &Stack, backups_run: bool) -> Result<Vec<Artifact>, RenderError> {
    let Some(grafana) = &stack.monitoring.grafana else {
        return Ok(Vec::new());
    };
    let mut datasources = Vec::new();
    if let Some(prometheus) = &stack.monitoring.prometheus {
        datasources.push(Datasource::new(
            "Prometheus",
            "prometheus",
            dashboard::PROMETHEUS_UID,
            format!(
                "http://{prometheus}:{}",
                service_port(stack, prometheus, 9090)
            ),
            true,
        ));
    }
    if let Some(loki) = &stack.monitoring.loki {
        datasources.push(Datasource::new(
            "Loki",
            "loki",
            "loki",
            format!("http://{loki}:{}", service_port(stack, loki, 3100)),
            false,
        ));
    }
    if datasources.is_empty() {
        return Ok(Vec::new());
    }
    let file = |path: String, body: String| Artifact {
        path: PathBuf::from(DIR).join(path),
        contents: body,
    };
    let datasources = to_yaml(
        "datasources.yml",
        &Provisioning {
            api_version: 1,
            datasources,
        },
    )?;
    let mut files = vec![file(
        "datasources/datasources.yml".to_string(),
        format!("{}{datasources}", header(stack)),
    )];
    // The profile's `metrics` switch turns the exporters on, and so what the dashboards show.
    if stack.profile.metrics && stack.monitoring.prometheus.is_some() {
        let providers = to_yaml("dashboards.yml", &providers(stack, grafana))?;
        files.push(file(
            "dashboards/dashboards.yml".to_string(),
            format!("{}{providers}", header(stack)),
        ));
        // JSON has no comments: the header is the dashboards' description and tags.
        for board in dashboards::dashboards(stack, backups_run) {
            files.push(file(
                format!("{DASHBOARDS}/{}", board.file_name()),
                board.to_json(),
            ));
        }
    }
    Ok(files)
}

/// The dashboard provider: berth's folder, read-only in Grafana (a change made in the UI
/// would be lost at the next build).
fn providers(stack: &Stack, grafana: &str) -> Providers {
    Providers {
        api_version: 1,
        providers: vec![Provider {
            name: "berth".to_string(),
            folder: stack.name.clone(),
            kind: "file",
            disable_deletion: true,
            allow_ui_updates: false,
            options: ProviderOptions {
                path: format!("{}/{DASHBOARDS}", provisioning_target(stack, grafana)),
            },
        }],
    }
}

/// Where the Grafana service sees `./grafana/provisioning`.
fn provisioning_target(stack: &Stack, grafana: &str) -> String {
    stack
        .services
        .get(grafana)
        .and_then(|service| {
            service.volumes.iter().find(|mount| {
                mount.kind == MountKind::Bind
                    && mount.source.as_ref().is_some_and(|source| {
                        source
                            .written()
                            .trim_start_matches("./")
                            .trim_end_matches('/')
                            == DIR
                    })
            })
        })
        .map_or_else(
            || DEFAULT_PROVISIONING.to_string(),
            |mount| mount.target.trim_end_matches('/').to_string(),
        )
}

#[derive(Serialize)]
struct Provisioning {
    #[serde(rename = "apiVersion")]
    api_version: u32,
    datasources: Vec<Datasource>,
}

#[derive(Serialize)]
struct Datasource {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    /// What the dashboards' panels name it by.
    uid: String,
    access: String,
    url: String,
    #[serde(rename = "isDefault")]
    is_default: bool,
    editable: bool,
}

impl Datasource {
    fn new(name: &str, kind: &str, uid: &str, url: String, is_default: bool) -> Self {
        Datasource {
            name: name.to_string(),
            kind: kind.to_string(),
            uid: uid.to_string(),
            access: "proxy".to_string(),
            url,
            is_default,
            editable: false,
        }
    }
}

#[derive(Serialize)]
struct Providers {
    #[serde(rename = "apiVersion")]
    api_version: u32,
    providers: Vec<Provider>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Provider {
    name: String,
    folder: String,
    #[serde(rename = "type")]
    kind: &'static str,
    disable_deletion: bool,
    allow_ui_updates: bool,
    options: ProviderOptions,
}

#[derive(Serialize)]
struct ProviderOptions {
    path: String,
}
