//! `placement` on Kubernetes: Swarm's node constraints as a required node affinity on the
//! well-known node labels, and the control plane's taint tolerated where a service is
//! placed on the managers. Pure.

use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Toleration,
};

use crate::model::{NodeAttribute, Placement};

/// The node label Kubernetes gives the control plane (Swarm's managers).
const CONTROL_PLANE: &str = "node-role.kubernetes.io/control-plane";

/// `placement` as a required node affinity on the well-known node labels: one term, so
/// every constraint must hold, as in Swarm.
pub fn node_affinity(placement: &[Placement]) -> Option<Affinity> {
    if placement.is_empty() {
        return None;
    }
    let expressions = placement
        .iter()
        .map(|constraint| {
            let (key, value) = match &constraint.attribute {
                NodeAttribute::Role => {
                    // Managers are the control plane: the label exists there, with no value.
                    let manager = constraint.value == "manager";
                    let exists = manager == constraint.equal;
                    return NodeSelectorRequirement {
                        key: CONTROL_PLANE.to_string(),
                        operator: if exists { "Exists" } else { "DoesNotExist" }.to_string(),
                        values: None,
                    };
                }
                NodeAttribute::Label(label) => (label.clone(), constraint.value.clone()),
                // Swarm compares case-insensitively; these values are lower case on nodes.
                NodeAttribute::Hostname => (
                    "kubernetes.io/hostname".to_string(),
                    constraint.value.to_ascii_lowercase(),
                ),
                NodeAttribute::Os => (
                    "kubernetes.io/os".to_string(),
                    constraint.value.to_ascii_lowercase(),
                ),
                NodeAttribute::Arch => {
                    ("kubernetes.io/arch".to_string(), go_arch(&constraint.value))
                }
            };
            NodeSelectorRequirement {
                key,
                operator: if constraint.equal { "In" } else { "NotIn" }.to_string(),
                values: Some(vec![value]),
            }
        })
        .collect();
    Some(Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(expressions),
                    match_fields: None,
                }],
            }),
            ..NodeAffinity::default()
        }),
        ..Affinity::default()
    })
}

/// Swarm reports the kernel's architecture names (`uname -m`), Kubernetes Go's.
fn go_arch(swarm: &str) -> String {
    match swarm {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "armv7l" => "arm",
        "i686" | "i386" => "386",
        other => other,
    }
    .to_string()
}

/// A pod placed on the control plane tolerates its taint, or it would never schedule.
pub fn control_plane_toleration(placement: &[Placement]) -> Option<Vec<Toleration>> {
    let on_control_plane = placement.iter().any(|constraint| {
        constraint.attribute == NodeAttribute::Role
            && (constraint.value == "manager") == constraint.equal
    });
    on_control_plane.then(|| {
        vec![Toleration {
            key: Some(CONTROL_PLANE.to_string()),
            operator: Some("Exists".to_string()),
            effect: Some("NoSchedule".to_string()),
            ..Toleration::default()
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(constraints: &[&str]) -> (Vec<String>, bool) {
        let placement: Vec<Placement> = constraints
            .iter()
            .map(|text| Placement::checked(text).expect("a constraint"))
            .collect();
        let affinity = node_affinity(&placement).expect("an affinity");
        let terms = affinity
            .node_affinity
            .and_then(|a| a.required_during_scheduling_ignored_during_execution)
            .expect("required")
            .node_selector_terms;
        assert_eq!(
            terms.len(),
            1,
            "every constraint in one term: all must hold"
        );
        let expressions = terms[0]
            .match_expressions
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|e| {
                format!(
                    "{} {} {:?}",
                    e.key,
                    e.operator,
                    e.values.unwrap_or_default()
                )
            })
            .collect();
        (expressions, control_plane_toleration(&placement).is_some())
    }

    #[test]
    fn swarm_constraints_become_node_affinity_on_the_well_known_labels() {
        assert_eq!(
            placed(&[
                "node.labels.zone == eu-1",
                "node.hostname != db-2",
                "node.platform.arch == x86_64",
                "node.platform.os == linux",
            ]),
            (
                vec![
                    r#"zone In ["eu-1"]"#.to_string(),
                    r#"kubernetes.io/hostname NotIn ["db-2"]"#.to_string(),
                    r#"kubernetes.io/arch In ["amd64"]"#.to_string(),
                    r#"kubernetes.io/os In ["linux"]"#.to_string(),
                ],
                false
            )
        );
    }

    #[test]
    fn managers_are_the_control_plane_and_its_taint_is_tolerated() {
        let exists = r#"node-role.kubernetes.io/control-plane Exists []"#.to_string();
        let absent = r#"node-role.kubernetes.io/control-plane DoesNotExist []"#.to_string();
        assert_eq!(
            placed(&["node.role == manager"]),
            (vec![exists.clone()], true)
        );
        assert_eq!(placed(&["node.role != worker"]), (vec![exists], true));
        assert_eq!(
            placed(&["node.role == worker"]),
            (vec![absent.clone()], false)
        );
        assert_eq!(placed(&["node.role != manager"]), (vec![absent], false));
        assert!(node_affinity(&[]).is_none());
    }

    #[test]
    fn constraints_berth_cannot_place_by_are_refused() {
        for text in [
            "node.id == 2ivku8v2gvtg4",
            "engine.labels.operatingsystem == ubuntu",
            "node.role == leader",
            "node.labels.zone == eu 1",
            "node.labels.zone",
            "node.labels.a/b/c == x",
            "node.labels.zone- == x",
            "node.labels.Example.com/zone == x",
        ] {
            assert!(Placement::checked(text).is_err(), "{text}");
        }
        for text in [
            "node.labels.topology.kubernetes.io/zone == eu-1",
            "node.labels.my_label == x",
        ] {
            assert!(Placement::checked(text).is_ok(), "{text}");
        }
    }

    /// Swarm matches host names and operating systems whatever their case; nodes carry
    /// them in lower case.
    #[test]
    fn host_names_and_systems_are_matched_in_lower_case() {
        assert_eq!(
            placed(&["node.hostname == DB-1", "node.platform.os == Linux"]).0,
            [
                r#"kubernetes.io/hostname In ["db-1"]"#,
                r#"kubernetes.io/os In ["linux"]"#
            ]
        );
    }
}
