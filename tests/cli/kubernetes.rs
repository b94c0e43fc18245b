//! The Kubernetes backend: the seed's figures, secrets without values, what is not kept.

use crate::support::Berth;

/// The documents of a multi-document manifest, parsed.
fn documents(text: &str) -> Vec<serde_json::Value> {
    text.split("\n---\n")
        .map(|doc| serde_saphyr::from_str(doc).expect("parse manifest document"))
        .collect()
}

fn find<'a>(docs: &'a [serde_json::Value], kind: &str) -> &'a serde_json::Value {
    docs.iter()
        .find(|doc| doc["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in manifest"))
}

#[test]
fn ape_prod_lite_carries_the_seed_figures() {
    let (out, _dir) = Berth::bundled()
        .args(["build", "--stack", "ape", "--profile", "prod-lite"])
        .run();
    out.code(0);
    let k8s = out.root.join("out/ape/prod-lite/k8s");
    let read = |file: &str| {
        std::fs::read_to_string(k8s.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
    };
    let namespace = documents(&read("namespace.yaml"));
    assert_eq!(
        find(&namespace, "Namespace")["metadata"]["name"],
        "ape-2026"
    );
    let api = documents(&read("api.yaml"));
    let deployment = find(&api, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 3);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["resources"]["requests"]["memory"], "1Gi");
    assert_eq!(container["resources"]["requests"]["cpu"], "500m");
    assert_eq!(container["resources"]["limits"]["memory"], "2Gi");
    assert_eq!(container["resources"]["limits"]["cpu"], "1000m");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/health");
    assert_eq!(find(&api, "Service")["spec"]["type"], "ClusterIP");
    assert_eq!(
        find(&api, "PersistentVolumeClaim")["spec"]["resources"]["requests"]["storage"],
        "10Gi"
    );
    let hpa = &find(&api, "HorizontalPodAutoscaler")["spec"];
    assert_eq!(
        (hpa["minReplicas"].clone(), hpa["maxReplicas"].clone()),
        (2.into(), 10.into())
    );
    assert_eq!(
        hpa["metrics"][0]["resource"]["target"]["averageUtilization"],
        70
    );
    assert_eq!(
        hpa["metrics"][1]["resource"]["target"]["averageUtilization"],
        80
    );
    let up = &hpa["behavior"]["scaleUp"];
    assert_eq!(
        up["policies"][0],
        serde_json::json!({ "type": "Percent", "value": 100, "periodSeconds": 30 })
    );
    assert_eq!(
        up["policies"][1],
        serde_json::json!({ "type": "Pods", "value": 2, "periodSeconds": 30 })
    );
    assert_eq!(up["selectPolicy"], "Min");
    assert_eq!(
        hpa["behavior"]["scaleDown"]["policies"][0],
        serde_json::json!({ "type": "Percent", "value": 50, "periodSeconds": 60 })
    );
    let ingress = find(&api, "Ingress");
    assert_eq!(
        ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"],
        "letsencrypt-prod"
    );
    assert_eq!(ingress["spec"]["tls"][0]["hosts"][0], "api.ape.example.com");
    assert_eq!(find(&api, "PodDisruptionBudget")["spec"]["minAvailable"], 1);
    // Health-gated start: the API waits for the databases' Services.
    let waits: Vec<&str> = deployment["spec"]["template"]["spec"]["initContainers"]
        .as_array()
        .expect("init containers")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        waits,
        ["wait-for-neo4j", "wait-for-redis", "wait-for-timescaledb"]
    );
    // The database with a backup is a StatefulSet with its own claim.
    let timescale = documents(&read("timescaledb.yaml"));
    assert_eq!(
        find(&timescale, "StatefulSet")["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
        "timescaledb-data"
    );
}

#[test]
fn secrets_reach_pods_from_the_generated_secret_only() {
    let (out, _dir) = Berth::bundled()
        .args(["build", "--profile", "prod-lite"])
        .run();
    out.code(0);
    for stack in ["aigym", "ape", "freshpoc", "melvin", "rag-engine"] {
        let k8s = out.root.join(format!("out/{stack}/prod-lite/k8s"));
        let secrets = std::fs::read_to_string(k8s.join("secrets.env")).expect("secrets.env");
        for line in secrets.lines().filter(|line| !line.starts_with('#')) {
            assert!(
                line.ends_with('='),
                "{stack}: secrets.env carries a value: {line}"
            );
        }
        let kustomization =
            std::fs::read_to_string(k8s.join("kustomization.yaml")).expect("kustomization");
        assert!(
            kustomization.contains(&format!(
                "- name: {stack}-secrets\n    envs:\n      - secrets.env"
            )),
            "{kustomization}"
        );
    }
}

#[test]
fn bind_mounts_are_translated_or_named() {
    let (out, _dir) = Berth::bundled().args(["build", "--stack", "aigym"]).run();
    out.code(0);
    let read =
        |path: &str| std::fs::read_to_string(out.root.join("out/aigym").join(path)).expect("read");
    // A developer's source folder cannot follow the pod: said at the top of the manifest.
    assert!(read("dev/k8s/api.yaml").starts_with("# Generated by berth"));
    assert!(read("dev/k8s/api.yaml").contains(
        "# Not carried by Kubernetes: services.api.volumes[0]: bind mount ./src/app -> /app/app is not mounted"
    ));
    // ... and at build time, with the user's line.
    assert!(
        out.stderr.contains(
            "warning: k8s: modules/stacks/aigym.ncl:95:21: services.api.volumes[0]: bind mount ./src/app"
        ),
        "{}",
        out.stderr
    );
    // Generated configuration travels as a ConfigMap; host agents opt in to hostPath.
    let prometheus = read("prod-lite/k8s/prometheus.yaml");
    assert!(
        prometheus.contains("name: prometheus-prometheus")
            && prometheus.contains("prometheus.yml: "),
        "{prometheus}"
    );
    assert!(read("prod-lite/k8s/node-exporter.yaml").contains("hostPath:"));
}
