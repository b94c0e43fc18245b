//! Renders Grafana's datasource provisioning for a stack that runs Grafana: Prometheus
//! (the default) and Loki, whichever the stack has. Pure.

use std::path::PathBuf;

use serde::Serialize;

use super::yaml::to_yaml;
use super::{Artifact, RenderError, header, service_port};
use crate::model::Stack;

pub const DIR: &str = "grafana/provisioning";

/// `grafana/provisioning/datasources/datasources.yml`, when there is something to show.
///
/// # Errors
/// Only if the YAML serializer fails.
pub fn grafana(stack: &Stack) -> Result<Vec<Artifact>, RenderError> {
    if stack.monitoring.grafana.is_none() {
        return Ok(Vec::new());
    }
    let mut datasources = Vec::new();
    if let Some(prometheus) = &stack.monitoring.prometheus {
        datasources.push(Datasource::new(
            "Prometheus",
            "prometheus",
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
            format!("http://{loki}:{}", service_port(stack, loki, 3100)),
            false,
        ));
    }
    if datasources.is_empty() {
        return Ok(Vec::new());
    }
    let body = to_yaml(
        "datasources.yml",
        &Provisioning {
            api_version: 1,
            datasources,
        },
    )?;
    Ok(vec![Artifact {
        path: PathBuf::from(DIR).join("datasources/datasources.yml"),
        contents: format!("{}{body}", header(stack)),
    }])
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
    access: String,
    url: String,
    #[serde(rename = "isDefault")]
    is_default: bool,
    editable: bool,
}

impl Datasource {
    fn new(name: &str, kind: &str, url: String, is_default: bool) -> Self {
        Datasource {
            name: name.to_string(),
            kind: kind.to_string(),
            access: "proxy".to_string(),
            url,
            is_default,
            editable: false,
        }
    }
}
