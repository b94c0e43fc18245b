//! How a service is reached and scaled: its ClusterIP Service, autoscaler and Ingress.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget,
    ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{Service as KService, ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress as KIngress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pod::{port_name, seconds};
use super::{Context, k8s_name};
use crate::model::{Autoscaling, Ingress, ScalePolicy, Service};

pub(super) fn service_object(ctx: &Context, name: &str, service: &Service) -> KService {
    KService {
        metadata: ctx.meta(&k8s_name(name), name),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_string()),
            selector: Some(ctx.selector(name)),
            ports: Some(
                service
                    .ports
                    .iter()
                    .map(|port| ServicePort {
                        name: Some(port_name(port)),
                        port: i32::from(port.container_port()),
                        target_port: Some(IntOrString::Int(i32::from(port.container_port()))),
                        protocol: Some(port.protocol.as_str().to_uppercase()),
                        app_protocol: port.app_protocol.clone(),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        ..KService::default()
    }
}

/// The headless Service of a StatefulSet (stable pod DNS names) or of a service Prometheus
/// scrapes (one A record per pod, as Docker's DNS gives per container); the ClusterIP
/// Service stays the one clients reach. Unready pods are listed too: Prometheus must see a
/// failing replica to report it `up 0`, and a StatefulSet's peers must find each other
/// before they are ready.
pub(super) fn headless_service(ctx: &Context, name: &str, service: &Service) -> KService {
    let mut headless = service_object(ctx, name, service);
    headless.metadata.name = Some(headless_name(name));
    if let Some(spec) = headless.spec.as_mut() {
        spec.type_ = None;
        spec.cluster_ip = Some("None".to_string());
        spec.publish_not_ready_addresses = Some(true);
        if let Some(metrics) = &service.metrics {
            let ports = spec.ports.get_or_insert_with(Vec::new);
            if !ports
                .iter()
                .any(|port| port.port == i32::from(metrics.port))
            {
                ports.push(ServicePort {
                    name: Some("metrics".to_string()),
                    port: i32::from(metrics.port),
                    target_port: Some(IntOrString::Int(i32::from(metrics.port))),
                    protocol: Some("TCP".to_string()),
                    ..ServicePort::default()
                });
            }
        }
    }
    headless
}

/// `<service>-headless`: the Service Prometheus discovers a service's pods through.
pub fn headless_name(name: &str) -> String {
    format!("{}-headless", k8s_name(name))
}

pub(super) fn autoscaler(
    ctx: &Context,
    name: &str,
    kind: &str,
    autoscaling: &Autoscaling,
) -> HorizontalPodAutoscaler {
    let Autoscaling {
        min,
        max,
        cpu_percent,
        memory_percent,
        scale_up,
        scale_down,
    } = autoscaling;
    let metric = |resource: &str, percent: u32| MetricSpec {
        type_: "Resource".to_string(),
        resource: Some(ResourceMetricSource {
            name: resource.to_string(),
            target: MetricTarget {
                type_: "Utilization".to_string(),
                average_utilization: Some(i32::try_from(percent).unwrap_or(i32::MAX)),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    };
    let mut metrics = Vec::new();
    metrics.extend(cpu_percent.map(|p| metric("cpu", p)));
    metrics.extend(memory_percent.map(|p| metric("memory", p)));
    let behavior =
        (scale_up.is_some() || scale_down.is_some()).then(|| HorizontalPodAutoscalerBehavior {
            scale_up: scale_up.as_ref().map(scaling_rules),
            scale_down: scale_down.as_ref().map(scaling_rules),
        });
    HorizontalPodAutoscaler {
        metadata: ctx.meta(&k8s_name(name), name),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_string()),
                kind: kind.to_string(),
                name: k8s_name(name),
            },
            min_replicas: Some(i32::try_from(*min).unwrap_or(i32::MAX)),
            max_replicas: i32::try_from(*max).unwrap_or(i32::MAX),
            metrics: (!metrics.is_empty()).then_some(metrics),
            behavior,
        }),
        ..HorizontalPodAutoscaler::default()
    }
}

/// Percent and pod policies per period; with both, the stricter one (`Min`) applies.
pub(super) fn scaling_rules(policy: &ScalePolicy) -> HPAScalingRules {
    let ScalePolicy {
        percent,
        pods,
        period,
    } = policy;
    let period_seconds = seconds(period);
    let mut policies = Vec::new();
    if let Some(percent) = percent {
        policies.push(HPAScalingPolicy {
            type_: "Percent".to_string(),
            value: i32::try_from(*percent).unwrap_or(i32::MAX),
            period_seconds,
        });
    }
    if let Some(pods) = pods {
        policies.push(HPAScalingPolicy {
            type_: "Pods".to_string(),
            value: i32::try_from(*pods).unwrap_or(i32::MAX),
            period_seconds,
        });
    }
    let both = policies.len() > 1;
    HPAScalingRules {
        policies: Some(policies),
        select_policy: both.then(|| "Min".to_string()),
        ..HPAScalingRules::default()
    }
}

pub(super) fn ingress_object(
    ctx: &Context,
    name: &str,
    service: &Service,
    ingress: &Ingress,
) -> KIngress {
    let Ingress {
        host,
        path,
        port,
        tls,
        issuer,
        class,
    } = ingress;
    let port = port
        .or_else(|| service.ports.first().map(|p| p.container_port()))
        .unwrap_or(80);
    let mut meta = ctx.meta(&k8s_name(name), name);
    if *tls {
        meta.annotations = Some(BTreeMap::from([(
            "cert-manager.io/cluster-issuer".to_string(),
            issuer.clone(),
        )]));
    }
    KIngress {
        metadata: meta,
        spec: Some(IngressSpec {
            ingress_class_name: class.clone(),
            rules: Some(vec![IngressRule {
                host: Some(host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some(path.clone()),
                        path_type: "Prefix".to_string(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: k8s_name(name),
                                port: Some(ServiceBackendPort {
                                    number: Some(i32::from(port)),
                                    ..ServiceBackendPort::default()
                                }),
                            }),
                            ..IngressBackend::default()
                        },
                    }],
                }),
            }]),
            tls: tls.then(|| {
                vec![IngressTLS {
                    hosts: Some(vec![host.clone()]),
                    secret_name: Some(format!("{}-tls", k8s_name(name))),
                }]
            }),
            ..IngressSpec::default()
        }),
        ..KIngress::default()
    }
}
