//! The Kubernetes backend: the seed's figures, secrets without values, what is not kept.

use crate::support::{Berth, compose_config, run_berth_env};

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

/// Every container (init containers too) of every manifest document in `k8s`.
/// The keys of Secret `secret` that pod volumes mount as files.
fn secret_volume_keys(k8s: &std::path::Path, secret: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for entry in std::fs::read_dir(k8s).expect("read k8s") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        for doc in documents(&std::fs::read_to_string(&path).expect("manifest")) {
            let volumes = doc["spec"]["template"]["spec"]["volumes"]
                .as_array()
                .cloned();
            for volume in volumes.into_iter().flatten() {
                if volume["secret"]["secretName"] == secret {
                    for item in volume["secret"]["items"].as_array().into_iter().flatten() {
                        keys.push(item["key"].as_str().expect("key").to_string());
                    }
                }
            }
        }
    }
    keys
}

fn containers(k8s: &std::path::Path) -> Vec<(String, serde_json::Value)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(k8s).expect("read k8s") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("manifest");
        for doc in documents(&text) {
            let spec = &doc["spec"]["template"]["spec"];
            let pod = if spec.is_null() {
                &doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
            } else {
                spec
            };
            for list in ["initContainers", "containers"] {
                for container in pod[list].as_array().into_iter().flatten() {
                    let name = format!(
                        "{}:{}:{}",
                        path.display(),
                        doc["kind"].as_str().unwrap_or("?"),
                        container["name"]
                    );
                    found.push((name, container.clone()));
                }
            }
        }
    }
    found
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
        let mut names = std::collections::BTreeSet::new();
        for line in secrets.lines().filter(|line| !line.starts_with('#')) {
            let name = line
                .strip_suffix('=')
                .unwrap_or_else(|| panic!("{stack}: secrets.env carries a value: {line}"));
            names.insert(name.to_string());
        }
        assert!(!names.is_empty(), "{stack}: secrets.env lists no secret");
        let kustomization =
            std::fs::read_to_string(k8s.join("kustomization.yaml")).expect("kustomization");
        assert!(
            kustomization.contains(&format!(
                "- name: {stack}-secrets\n    envs:\n      - secrets.env"
            )),
            "{kustomization}"
        );
        // Every secret a pod reads comes from that Secret (a Job's from its unhashed copy),
        // by a key it holds, and every secret listed is read by some pod.
        let mut read = std::collections::BTreeSet::new();
        for (container, spec) in containers(&k8s) {
            let secret = if container.contains("Job:") {
                format!("{stack}-job-secrets")
            } else {
                format!("{stack}-secrets")
            };
            for env in spec["env"].as_array().into_iter().flatten() {
                let name = env["name"].as_str().expect("env name");
                if let Some(reference) = env["valueFrom"].get("secretKeyRef") {
                    assert_eq!(reference["name"], secret, "{container}");
                    let key = reference["key"].as_str().expect("key");
                    assert!(names.contains(key), "{container}: {key} not in secrets.env");
                    read.insert(key.to_string());
                } else if names.contains(name) {
                    panic!("{container}: secret {name} is not read from the Secret: {env}");
                }
            }
        }
        // File secrets (`/run/secrets/<name>`) are read through a volume of the Secret.
        read.extend(secret_volume_keys(&k8s, &format!("{stack}-secrets")));
        read.extend(secret_volume_keys(&k8s, &format!("{stack}-job-secrets")));
        assert_eq!(read, names, "{stack}: secrets listed but read by no pod");
    }
}

/// A value that reads a variable uses `$(VAR)`, which Kubernetes expands only from the
/// entries listed before it in the same container.
#[test]
fn variables_in_values_are_expanded_from_earlier_entries() {
    let (out, _dir) = Berth::bundled()
        .args(["build", "--profile", "prod-lite"])
        .run();
    out.code(0);
    let mut n_expansions = 0;
    for stack in ["aigym", "ape", "freshpoc", "melvin", "rag-engine"] {
        let k8s = out.root.join(format!("out/{stack}/prod-lite/k8s"));
        for (container, spec) in containers(&k8s) {
            let mut defined = std::collections::BTreeSet::new();
            for env in spec["env"].as_array().into_iter().flatten() {
                let value = env["value"].as_str().unwrap_or_default();
                assert!(
                    !value.contains("${"),
                    "{container}: compose syntax in {env}"
                );
                for (at, _) in value.match_indices("$(") {
                    let name = &value[at + 2..at + 2 + value[at..].find(')').expect(")") - 2];
                    assert!(
                        defined.contains(name),
                        "{container}: $({name}) before {name} is defined: {env}"
                    );
                    n_expansions += 1;
                }
                defined.insert(env["name"].as_str().expect("name").to_string());
            }
        }
    }
    assert!(
        n_expansions >= 3,
        "only {n_expansions} $(VAR) expansions seen"
    );
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
        out.stderr.lines().any(
            |line| line.starts_with("warning: k8s: modules/stacks/aigym.ncl:")
                && line.contains(": services.api.volumes[0]: bind mount ./src/app")
                // Only dev mounts the source folder, and the line says which profile.
                && line.ends_with("(stack `aigym`, profile dev)")
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

/// A small stack's manifests: literal values in the service's ConfigMap, values that read
/// variables as `$(VAR)` after the entries they read, secrets from the Secret, a one-shot
/// job others wait on as a Job, and `run_as_non_root` as the pod's security context.
#[test]
fn environment_secrets_jobs_and_non_root_pods_translate() {
    let (out, _dir) = Berth::schemas_only()
        .file(
            "modules/stacks/kube.ncl",
            r#"fun profile => {
  variables = {
    TOKEN = { description = "A secret.", secret = true },
    REGION = { description = "A plain variable.", default = "eu" },
  },
  services = {
    migrate = { image = "busybox:1", command = ["true"], restart = "no" },
    web = {
      image = "busybox:1",
      environment = {
        LITERAL = "plain",
        URL = "https://${REGION}.example.com/?t=${TOKEN}",
        API_TOKEN = "${TOKEN}",
      },
      healthcheck.test = ["wget", "-q", "-O", "/dev/null", "http://localhost/${REGION}/a\"b"],
      depends_on.migrate = "completed",
      kubernetes.run_as_non_root = true,
    },
  },
}
"#,
        )
        .args(["build", "--stack", "kube", "--no-profile"])
        .run();
    out.code(0);
    let k8s = out.root.join("out/kube/none/k8s");
    let read = |file: &str| {
        std::fs::read_to_string(k8s.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
    };
    let web = documents(&read("web.yaml"));
    let config = web
        .iter()
        .find(|doc| doc["kind"] == "ConfigMap" && doc["metadata"]["name"] == "web-env")
        .unwrap_or_else(|| panic!("no web-env ConfigMap: {web:?}"));
    assert_eq!(config["data"], serde_json::json!({ "LITERAL": "plain" }));
    let pod = &find(&web, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{pod}");
    let container = &pod["containers"][0];
    assert_eq!(container["envFrom"][0]["configMapRef"]["name"], "web-env");
    let env = container["env"].as_array().expect("env");
    let position = |name: &str| {
        env.iter()
            .position(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {env:?}"))
    };
    // A stack variable is no container variable of its own name (an image may read its
    // prefix as configuration): a key that is the variable holds it, else a helper does.
    assert_eq!(
        env[position("API_TOKEN")]["valueFrom"]["secretKeyRef"],
        serde_json::json!({ "name": "kube-secrets", "key": "TOKEN" })
    );
    assert_eq!(
        env[position("BERTH_VAR_REGION")]["valueFrom"]["configMapKeyRef"],
        serde_json::json!({ "name": "kube-variables", "key": "REGION" })
    );
    assert!(
        !env.iter()
            .any(|e| e["name"] == "TOKEN" || e["name"] == "REGION")
    );
    assert_eq!(
        env[position("URL")]["value"],
        "https://$(BERTH_VAR_REGION).example.com/?t=$(API_TOKEN)"
    );
    assert!(
        position("BERTH_VAR_REGION") < position("URL") && position("API_TOKEN") < position("URL")
    );
    // Kubernetes expands nothing in a probe: one that reads a variable runs through sh.
    assert_eq!(
        container["readinessProbe"]["exec"]["command"],
        serde_json::json!([
            "sh",
            "-c",
            r#""wget" "-q" "-O" "/dev/null" "http://localhost/${BERTH_VAR_REGION}/a\"b""#
        ])
    );
    assert_eq!(pod["enableServiceLinks"], false);
    // The one-shot job is a Job; Kubernetes cannot wait for it, and the manifest says so.
    let migrate = documents(&read("migrate.yaml"));
    let job = find(&migrate, "Job");
    assert_eq!(
        job["spec"]["template"]["spec"]["restartPolicy"],
        "OnFailure"
    );
    assert!(
        !migrate.iter().any(|doc| doc["kind"] == "Deployment"),
        "{migrate:?}"
    );
    assert!(pod.get("initContainers").is_none(), "{pod}");
    assert!(
        read("web.yaml").contains(
            "# Not carried by Kubernetes: services.web.depends_on.migrate: web waits for job migrate to complete under Compose; on Kubernetes the Job runs alongside"
        ),
        "{}",
        read("web.yaml")
    );
    assert_eq!(
        read("secrets.env")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>(),
        ["TOKEN="]
    );
}

/// Docker never restarts an unhealthy container; Kubernetes restarts one failing its
/// liveness probe. Readiness keeps the healthcheck's meaning, liveness waits three times as
/// long, and a start period becomes a startup probe rather than a fixed initial delay.
#[test]
fn a_healthcheck_becomes_startup_readiness_and_a_patient_liveness_probe() {
    let (out, _dir) = Berth::schemas_only()
        .file(
            "modules/stacks/probes.ncl",
            r#"fun profile => {
  services = {
    db = {
      image = "busybox:1",
      healthcheck = { test = ["true"], interval = "5s", retries = 4, start_period = "21s" },
    },
    web = { image = "busybox:1", healthcheck = { test = ["true"], interval = "10s", retries = 2 } },
    store = {
      image = "busybox:1",
      volumes = [{ source = "data", target = "/data" }, { source = "scratch", target = "/tmp/scratch" }],
      healthcheck = { test = ["true"], interval = "10s", retries = 3, start_period = "30s" },
    },
    scratcher = {
      image = "busybox:1",
      volumes = [{ source = "scratch", target = "/tmp/scratch" }],
      healthcheck = { test = ["true"], interval = "10s", retries = 3 },
    },
  },
  volumes = { data = {}, scratch = { cache = true } },
}
"#,
        )
        .args(["build", "--stack", "probes", "--no-profile"])
        .run();
    out.code(0);
    let k8s = out.root.join("out/probes/none/k8s");
    let container = |service: &str| {
        let text = std::fs::read_to_string(k8s.join(format!("{service}.yaml"))).expect("read");
        find(&documents(&text), "Deployment")["spec"]["template"]["spec"]["containers"][0].clone()
    };
    let db = container("db");
    assert_eq!(db["readinessProbe"]["failureThreshold"], 4, "{db}");
    assert_eq!(db["livenessProbe"]["failureThreshold"], 12, "{db}");
    assert!(db["livenessProbe"]["initialDelaySeconds"].is_null(), "{db}");
    // 21 s is five periods of 5 s, then the healthcheck's own four retries.
    assert_eq!(db["startupProbe"]["failureThreshold"], 9, "{db}");
    assert_eq!(db["startupProbe"]["periodSeconds"], 5, "{db}");
    assert_eq!(db["startupProbe"]["exec"]["command"][0], "true", "{db}");
    let web = container("web");
    assert!(web["startupProbe"].is_null(), "{web}");
    assert_eq!(web["readinessProbe"]["failureThreshold"], 2, "{web}");
    assert_eq!(web["livenessProbe"]["failureThreshold"], 6, "{web}");
    // Data on a claim: ten minutes to recover it, whatever its start period says (sixty
    // periods of 10 s, then the three retries); a cache is empty at every start.
    let store = container("store");
    assert_eq!(store["startupProbe"]["failureThreshold"], 63, "{store}");
    assert_eq!(store["livenessProbe"]["failureThreshold"], 9, "{store}");
    let scratcher = container("scratcher");
    assert!(scratcher["startupProbe"].is_null(), "{scratcher}");
}

/// A ClusterIP name reaches one random pod per scrape, and a node agent run as a
/// Deployment watches one random node: on Kubernetes, host agents are DaemonSets and
/// Prometheus discovers every pod of a scraped service through its headless Service,
/// unready pods included so that a failing replica reads `up 0`.
#[test]
fn prometheus_scrapes_every_pod_and_host_agents_run_on_every_node() {
    let (out, _dir) = Berth::bundled()
        .args(["build", "--stack", "freshpoc", "--profile", "prod-lite"])
        .run();
    out.code(0);
    let k8s = out.root.join("out/freshpoc/prod-lite/k8s");
    let read = |file: &str| documents(&std::fs::read_to_string(k8s.join(file)).expect(file));
    let node = read("node-exporter.yaml");
    assert!(node.iter().all(|doc| doc["kind"] != "Deployment"));
    assert!(find(&node, "DaemonSet")["spec"]["replicas"].is_null());
    let prometheus = read("prometheus.yaml");
    let config = prometheus
        .iter()
        .find(|doc| doc["kind"] == "ConfigMap" && doc["data"]["prometheus.yml"].is_string())
        .expect("prometheus ConfigMap");
    let config: serde_json::Value =
        serde_saphyr::from_str(config["data"]["prometheus.yml"].as_str().expect("text"))
            .expect("prometheus.yml");
    let jobs = config["scrape_configs"].as_array().expect("jobs");
    let mut n_checked = 0;
    for job in jobs {
        let name = job["job_name"].as_str().expect("job_name");
        if ["prometheus", "health", "reachable"].contains(&name) {
            continue;
        }
        assert!(
            job["static_configs"].is_null(),
            "{name} scrapes a ClusterIP: {job}"
        );
        let headless = job["dns_sd_configs"][0]["names"][0]
            .as_str()
            .expect("names");
        assert_eq!(headless, format!("{name}-headless"));
        let service = read(&format!("{name}.yaml"))
            .into_iter()
            .find(|doc| doc["kind"] == "Service" && doc["metadata"]["name"] == headless)
            .unwrap_or_else(|| panic!("no Service {headless}"));
        assert_eq!(service["spec"]["clusterIP"], "None");
        assert_eq!(service["spec"]["publishNotReadyAddresses"], true);
        let port = &job["dns_sd_configs"][0]["port"];
        assert!(
            service["spec"]["ports"]
                .as_array()
                .expect("ports")
                .iter()
                .any(|p| &p["port"] == port),
            "{headless} lacks the metrics port {port}"
        );
        n_checked += 1;
    }
    assert!(n_checked >= 9, "only {n_checked} scrape jobs checked");
}

/// dns, tty, stdin_open, pid and security_opt in every backend's files, each accepted by
/// its real checker (Compose, the Quadlet checks, kubernetes-validate, kustomize): the pod
/// gets what a securityContext can say, and the manifest names what it cannot.
#[test]
fn runtime_options_reach_every_backend() {
    let (out, _dir) = Berth::schemas_only()
        .file("profiles/podman.ncl", &crate::support::podman_profile())
        .file(
            "modules/stacks/opts.ncl",
            r#"fun profile => {
  services.agent = {
    image = "busybox:1",
    command = ["sleep", "1000"],
    dns = ["10.0.0.2"],
    dns_search = ["example.internal"],
    dns_opt = ["ndots:2", "rotate"],
    tty = true,
    stdin_open = true,
    pid = "host",
    security_opt = ["no-new-privileges:true", "seccomp=unconfined", "apparmor=unconfined", "label=type:spc_t", "label=disable"],
  },
}
"#,
        )
        .args(["build", "--stack", "opts", "--profile", "podman"])
        .run();
    out.code(0)
        .stderr_contains("warning: k8s: modules/stacks/opts.ncl:5:11: services.agent.dns: pods resolve through the cluster DNS")
        .stderr_contains("services.agent.security_opt[4]: `label=disable` has no securityContext field");
    let built = out.root.join("out/opts/podman");
    crate::support::validate_artifacts(&built);
    let manifest = std::fs::read_to_string(built.join("k8s/agent.yaml")).expect("manifest");
    let docs = documents(&manifest);
    let pod = &find(&docs, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true, "{pod}");
    assert_eq!(
        pod["dnsConfig"],
        serde_json::json!({
            "searches": ["example.internal"],
            "options": [{ "name": "ndots", "value": "2" }, { "name": "rotate" }],
        })
    );
    let container = &pod["containers"][0];
    assert_eq!(container["tty"], true);
    assert_eq!(container["stdin"], true);
    assert_eq!(
        container["securityContext"],
        serde_json::json!({
            "allowPrivilegeEscalation": false,
            "seccompProfile": { "type": "Unconfined" },
            "appArmorProfile": { "type": "Unconfined" },
            "seLinuxOptions": { "type": "spc_t" },
        })
    );
    assert!(
        manifest.contains("# Not carried by Kubernetes: services.agent.dns:"),
        "{manifest}"
    );
    let unit = std::fs::read_to_string(built.join("quadlet/opts-agent.container")).expect("unit");
    for line in [
        "DNS=10.0.0.2",
        "DNSSearch=example.internal",
        "DNSOption=ndots:2",
        "PodmanArgs=--tty --interactive --pid=host --security-opt=no-new-privileges:true --security-opt=seccomp=unconfined --security-opt=apparmor=unconfined --security-opt=label=type:spc_t --security-opt=label=disable",
    ] {
        assert!(unit.lines().any(|l| l == line), "no {line:?} in:\n{unit}");
    }
}

/// `placement`: Compose's `deploy.placement` word for word, Kubernetes' required node
/// affinity (managers as the control plane, its taint tolerated), each accepted by its
/// checker; Quadlet and apply have one host, so nothing changes there and nothing is said.
#[test]
fn placement_reaches_compose_and_kubernetes() {
    let (out, _dir) = Berth::schemas_only()
        .file("profiles/podman.ncl", &crate::support::podman_profile())
        .file(
            "modules/stacks/placed.ncl",
            r#"fun profile => {
  services.agent = {
    image = "busybox:1",
    command = ["sleep", "1000"],
    placement = ["node.role == manager", "node.labels.zone != eu-2", "node.platform.arch == aarch64"],
  },
}
"#,
        )
        .args(["build", "--stack", "placed", "--profile", "podman"])
        .run();
    out.code(0);
    assert!(!out.stderr.contains("placement"), "{}", out.stderr);
    let built = out.root.join("out/placed/podman");
    crate::support::validate_artifacts(&built);
    let compose = std::fs::read_to_string(built.join("compose.yaml")).expect("compose");
    let compose: serde_json::Value = serde_saphyr::from_str(&compose).expect("yaml");
    assert_eq!(
        compose["services"]["agent"]["deploy"]["placement"],
        serde_json::json!({ "constraints": ["node.role == manager", "node.labels.zone != eu-2", "node.platform.arch == aarch64"] })
    );
    let manifest = std::fs::read_to_string(built.join("k8s/agent.yaml")).expect("manifest");
    let docs = documents(&manifest);
    let pod = &find(&docs, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(
        pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"],
        serde_json::json!({ "nodeSelectorTerms": [{ "matchExpressions": [
            { "key": "node-role.kubernetes.io/control-plane", "operator": "Exists" },
            { "key": "zone", "operator": "NotIn", "values": ["eu-2"] },
            { "key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"] },
        ] }] })
    );
    assert_eq!(
        pod["tolerations"],
        serde_json::json!([{ "key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule" }])
    );
}

/// `kubernetes.sidecar_of`: the side-car is a native side-car of each host pod (an init
/// container kept running, gated by its healthcheck as a startup probe), reachable by its
/// name on 127.0.0.1 there; volumes only the two use are emptyDirs of the pod, one a third
/// service mounts stays a claim; the host does not wait for it over the network, and its
/// Service selects the host's pods. Accepted by kubernetes-validate and kustomize.
#[test]
fn a_sidecar_runs_in_each_pod_of_its_host() {
    let (out, _dir) = Berth::schemas_only()
        .file(
            "modules/stacks/cars.ncl",
            r#"fun profile => {
  services.worker = {
    image = "busybox:1",
    command = ["sleep", "1000"],
    replicas = 3,
    volumes = [{ source = "scratch", target = "/scratch" }, { source = "shared", target = "/shared" }],
    depends_on.runner = "healthy",
  },
  services.runner = {
    image = "docker:27-dind",
    privileged = true,
    ports = [{ target = 2376 }],
    volumes = [{ source = "scratch", target = "/scratch" }, { source = "cache", target = "/var/lib/docker" }],
    healthcheck = { test = ["docker", "info"], start_period = "20s" },
    depends_on.db = "started",
    kubernetes.sidecar_of = "worker",
  },
  services.db = { image = "postgres:16", ports = [{ target = 5432 }] },
  services.reader = { image = "busybox:1", command = ["sleep", "1000"], volumes = [{ source = "shared", target = "/shared", read_only = true }] },
  volumes = { cache.size = "30G", scratch = {}, shared = {} },
}
"#,
        )
        .args(["build", "--stack", "cars", "--profile", "prod-lite"])
        .run();
    out.code(0);
    let built = out.root.join("out/cars/prod-lite");
    crate::support::validate_artifacts(&built);
    let docs = documents(&std::fs::read_to_string(built.join("k8s/worker.yaml")).expect("worker"));
    let pod = &find(&docs, "Deployment")["spec"]["template"]["spec"];
    let init = pod["initContainers"].as_array().expect("init containers");
    let names: Vec<&str> = init.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(
        names,
        ["wait-for-db", "runner"],
        "the side-car after its own waits"
    );
    let runner = &init[1];
    assert_eq!(runner["restartPolicy"], "Always");
    assert_eq!(runner["securityContext"]["privileged"], true);
    assert!(runner["startupProbe"]["exec"].is_object(), "{runner}");
    assert!(
        !init.iter().any(|c| c["name"] == "wait-for-runner"),
        "the host waits for its own side-car over the network: {init:?}"
    );
    assert_eq!(
        pod["hostAliases"],
        serde_json::json!([{ "ip": "127.0.0.1", "hostnames": ["runner"] }])
    );
    let volume = |name: &str| {
        pod["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no volume {name}: {pod}"))
    };
    // The size a volume declares (1G when it says none) bounds its emptyDir too.
    assert_eq!(
        volume("scratch")["emptyDir"],
        serde_json::json!({ "sizeLimit": "1Gi" })
    );
    assert_eq!(
        volume("cache")["emptyDir"],
        serde_json::json!({ "sizeLimit": "30Gi" })
    );
    assert_eq!(
        volume("shared")["persistentVolumeClaim"]["claimName"],
        "shared"
    );
    assert_eq!(
        pod["volumes"].as_array().map(Vec::len),
        Some(3),
        "each volume once: {pod}"
    );
    let runner = std::fs::read_to_string(built.join("k8s/runner.yaml")).expect("runner");
    let runner_docs = documents(&runner);
    assert!(
        runner_docs
            .iter()
            .all(|doc| doc["kind"] != "Deployment" && doc["kind"] != "PersistentVolumeClaim"),
        "{runner}"
    );
    assert_eq!(
        find(&runner_docs, "Service")["spec"]["selector"]["app.kubernetes.io/name"],
        "worker"
    );
    let claims: Vec<String> = std::fs::read_dir(built.join("k8s"))
        .expect("k8s")
        .flat_map(|entry| {
            let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
            documents(&text)
                .into_iter()
                .filter(|doc| doc["kind"] == "PersistentVolumeClaim")
                .map(|doc| {
                    doc["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        claims,
        ["shared"],
        "only the volume a third service mounts is a claim"
    );
}

/// A side-car beside a host that has its own secrets, a 127.0.0.1 host alias, a non-root
/// user and the same dependency: one `run-secrets` each (under the side-car's name for
/// its own), one alias entry for the loopback address, one wait for the shared dependency,
/// and the side-car may run as root. A host with a claim per pod (a backup) keeps it: the
/// side-car mounts the same claim, and no emptyDir stands in for it.
#[test]
fn a_sidecar_keeps_apart_what_it_does_not_share_with_its_host() {
    let (out, _dir) = Berth::schemas_only()
        .file(
            "modules/stacks/pair.ncl",
            r#"fun profile => {
  services.app = {
    image = "busybox:1",
    command = ["sleep", "1000"],
    user = "1000:1000",
    kubernetes.run_as_non_root = true,
    secrets = ["APP_TOKEN"],
    extra_hosts = { "metrics.local" = "127.0.0.1" },
    depends_on = { db = "started", helper = "started" },
  },
  services.helper = {
    image = "busybox:1",
    command = ["sleep", "1000"],
    secrets = ["HELPER_TOKEN"],
    depends_on.db = "started",
    kubernetes.sidecar_of = "app",
  },
  services.db = {
    image = "postgres:16",
    ports = [{ target = 5432 }],
    volumes = [{ source = "pgdata", target = "/var/lib/postgresql/data" }],
    backup = { command = "pg_dumpall -U postgres" },
  },
  services.db-agent = {
    image = "busybox:1",
    command = ["sleep", "1000"],
    volumes = [{ source = "pgdata", target = "/data", read_only = true }],
    kubernetes.sidecar_of = "db",
  },
  volumes.pgdata = {},
  variables.APP_TOKEN = { description = "token", secret = true },
  variables.HELPER_TOKEN = { description = "token", secret = true },
}
"#,
        )
        .args(["build", "--stack", "pair", "--profile", "prod-lite"])
        .run();
    out.code(0)
        .stderr_contains("side-car helper runs as the user of app's pod");
    let built = out.root.join("out/pair/prod-lite");
    crate::support::validate_artifacts(&built);
    let docs = documents(&std::fs::read_to_string(built.join("k8s/app.yaml")).expect("app"));
    let pod = &find(&docs, "Deployment")["spec"]["template"]["spec"];
    let names = |key: &str| -> Vec<String> {
        pod[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| item["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(names("initContainers"), ["wait-for-db", "helper"]);
    let volumes = names("volumes");
    let unique: std::collections::BTreeSet<&String> = volumes.iter().collect();
    assert_eq!(
        unique.len(),
        volumes.len(),
        "duplicate volume names: {volumes:?}"
    );
    assert!(
        volumes.contains(&"helper-run-secrets".to_string()),
        "{volumes:?}"
    );
    assert_eq!(
        pod["hostAliases"],
        serde_json::json!([{ "ip": "127.0.0.1", "hostnames": ["metrics.local", "helper"] }])
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["initContainers"][1]["securityContext"]["runAsNonRoot"],
        false
    );

    let docs = documents(&std::fs::read_to_string(built.join("k8s/db.yaml")).expect("db"));
    let set = find(&docs, "StatefulSet");
    let templates: Vec<&str> = set["spec"]["volumeClaimTemplates"]
        .as_array()
        .expect("claim templates")
        .iter()
        .filter_map(|claim| claim["metadata"]["name"].as_str())
        .collect();
    assert_eq!(templates, ["pgdata"]);
    let pod = &set["spec"]["template"]["spec"];
    assert!(
        pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|volume| volume["name"] != "pgdata"),
        "the claim template is the pod's pgdata: {pod}"
    );
    let agent_mount = &pod["initContainers"][0]["volumeMounts"][0];
    assert_eq!(agent_mount["name"], "pgdata");
    assert_eq!(agent_mount["readOnly"], true);
}

/// A GPU reservation: Compose's device request, podman's CDI devices, Kubernetes'
/// nvidia.com/gpu limit, each accepted by its checker; what a backend cannot ask for is named.
#[test]
fn gpu_reservations_reach_every_backend() {
    let (out, _dir) = Berth::schemas_only()
        .file("profiles/podman.ncl", &crate::support::podman_profile())
        .file(
            "modules/stacks/gpu.ncl",
            r#"let ollama = import "services/ollama.ncl" in
fun profile => ollama { gpus = true } & {
  services.all = { image = "busybox:1", command = ["sleep", "1000"], gpus = {} },
  services.picked = { image = "busybox:1", command = ["sleep", "1000"], gpus.device_ids = ["1", "GPU-3a"] },
}
"#,
        )
        .args(["build", "--stack", "gpu", "--profile", "podman"])
        .run();
    out.code(0)
        .stderr_contains("services.all.gpus.count: Kubernetes requests a number of GPUs")
        .stderr_contains("services.picked.gpus.device_ids: the device plugin picks the GPUs");
    assert!(
        !out.stderr.contains("services.ollama.gpus"),
        "a count of 1 is carried everywhere:\n{}",
        out.stderr
    );
    let built = out.root.join("out/gpu/podman");
    crate::support::validate_artifacts(&built);
    let compose = std::fs::read_to_string(built.join("compose.yaml")).expect("compose");
    let compose: serde_json::Value = serde_saphyr::from_str(&compose).expect("yaml");
    assert_eq!(
        compose["services"]["ollama"]["deploy"]["resources"]["reservations"]["devices"],
        serde_json::json!([{ "driver": "nvidia", "count": 1, "capabilities": ["gpu"] }])
    );
    assert_eq!(
        compose["services"]["picked"]["deploy"]["resources"]["reservations"]["devices"],
        serde_json::json!([{ "driver": "nvidia", "device_ids": ["1", "GPU-3a"], "capabilities": ["gpu"] }])
    );
    let limits = |service: &str| {
        let docs = documents(
            &std::fs::read_to_string(built.join(format!("k8s/{service}.yaml"))).expect("manifest"),
        );
        docs.iter()
            .find(|doc| doc["kind"] == "Deployment" || doc["kind"] == "StatefulSet")
            .expect("workload")["spec"]["template"]["spec"]["containers"][0]["resources"]
            .clone()
    };
    assert_eq!(limits("ollama")["limits"]["nvidia.com/gpu"], "1");
    assert_eq!(limits("picked")["limits"]["nvidia.com/gpu"], "2");
    assert!(limits("all").get("limits").is_none());
    let unit = |service: &str| {
        std::fs::read_to_string(built.join(format!("quadlet/gpu-{service}.container")))
            .expect("unit")
    };
    assert!(unit("ollama").contains("\nAddDevice=nvidia.com/gpu=0\n"));
    assert!(unit("all").contains("\nAddDevice=nvidia.com/gpu=all\n"));
    assert!(
        unit("picked").contains("\nAddDevice=nvidia.com/gpu=1\nAddDevice=nvidia.com/gpu=GPU-3a\n")
    );
}

/// The documents `kubectl kustomize` renders from the folder `k8s`.
fn kustomized(k8s: &std::path::Path) -> Vec<serde_json::Value> {
    let output = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(k8s)
        .output()
        .expect("run kubectl kustomize (scripts/install-validators installs kubectl)");
    assert!(
        output.status.success(),
        "kubectl kustomize {}: {}",
        k8s.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    documents(&String::from_utf8(output.stdout).expect("UTF-8 manifests"))
}

fn named<'a>(docs: &'a [serde_json::Value], kind: &str, prefix: &str) -> &'a serde_json::Value {
    docs.iter()
        .find(|doc| {
            doc["kind"] == kind
                && doc["metadata"]["name"]
                    .as_str()
                    .is_some_and(|name| name.starts_with(prefix))
        })
        .unwrap_or_else(|| panic!("no {kind} {prefix}* in the kustomized output"))
}

/// A Job's pod template is immutable: `kubectl apply` refuses a Job whose template changed.
/// Rotating a secret (new values in secrets.env) must roll the Deployments (their Secret's
/// hashed name changes) and leave every Job exactly as it was; a Job whose spec changes
/// gets a new name, so it is a new Job instead of a refused update.
#[test]
fn a_rotated_secret_rolls_deployments_and_leaves_jobs_applicable() {
    let (out, _dir) = Berth::bundled()
        .args(["build", "--stack", "freshpoc", "--profile", "prod-lite"])
        .run();
    out.code(0);
    let k8s = out.root.join("out/freshpoc/prod-lite/k8s");
    let template = std::fs::read_to_string(k8s.join("secrets.env")).expect("secrets.env");
    let fill = |value: &str| {
        let filled: String = template
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| format!("{line}{value}\n"))
            .collect();
        std::fs::write(k8s.join("secrets.env"), filled).expect("fill secrets.env");
        kustomized(&k8s)
    };
    let before = fill("first-value");
    let after = fill("rotated-value");

    let job_before = named(&before, "Job", "airflow-init-");
    let job_after = named(&after, "Job", "airflow-init-");
    assert_eq!(job_before, job_after, "a rotation changed the Job");
    let reads = |doc: &serde_json::Value| -> std::collections::BTreeSet<String> {
        doc["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|env| env["valueFrom"]["secretKeyRef"]["name"].as_str())
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        reads(job_after),
        std::collections::BTreeSet::from(["freshpoc-job-secrets".to_string()])
    );
    // The Secret a Job reads exists under that very name, holding the rotated values.
    let job_secret = named(&after, "Secret", "freshpoc-job-secrets");
    assert_eq!(job_secret["metadata"]["name"], "freshpoc-job-secrets");

    let airflow = |docs: &[serde_json::Value]| reads(named(docs, "Deployment", "airflow"));
    let (hashed_before, hashed_after) = (airflow(&before), airflow(&after));
    assert_eq!(hashed_before.len(), 1, "{hashed_before:?}");
    assert!(
        hashed_before
            .iter()
            .all(|name| name.starts_with("freshpoc-secrets-")),
        "{hashed_before:?}"
    );
    assert_ne!(
        hashed_before, hashed_after,
        "a rotation did not roll airflow"
    );

    // A changed Job spec (here a newer image) is a Job of another name.
    let module = std::fs::read_to_string(
        std::path::Path::new(crate::support::REPO).join("modules/services/airflow.ncl"),
    )
    .expect("airflow module");
    assert!(
        module.contains("apache/airflow:2.10.2-"),
        "the module's image moved"
    );
    let (changed, _dir) = Berth::bundled()
        .file(
            "modules/services/airflow.ncl",
            &module.replace("apache/airflow:2.10.2-", "apache/airflow:2.10.3-"),
        )
        .args(["build", "--stack", "freshpoc", "--profile", "prod-lite"])
        .run();
    changed.code(0);
    let job = |root: &std::path::Path| {
        let text =
            std::fs::read_to_string(root.join("out/freshpoc/prod-lite/k8s/airflow-init.yaml"))
                .expect("airflow-init.yaml");
        find(&documents(&text), "Job")["metadata"]["name"].clone()
    };
    assert_ne!(job(&out.root), job(&changed.root));
}

/// `host_environment`: the container gets a name from the deploy environment only when
/// that sets it. Compose (`docker compose config` with and without it in .env), podman's
/// berth-env (run for real), and Kubernetes (optional keys of the variables ConfigMap or the
/// Secret, accepted by kustomize and kubernetes-validate) mean the same; .env.template and
/// secrets.env say where to set it.
#[test]
fn variables_passed_from_the_host_reach_each_backend_only_when_set() {
    let (out, _dir) = Berth::schemas_only()
        .file("profiles/podman.ncl", &crate::support::podman_profile())
        .file(
            "modules/stacks/passing.ncl",
            r#"fun profile => {
  variables.POLL_MS = { description = "Poll interval.", default = "300000" },
  services.app = {
    image = "busybox:1",
    command = ["sh", "-c", "sleep ${POLL_MS}"],
    environment.FIXED = "1",
    host_environment = ["POLL_MS", "TRACE_TOKEN"],
  },
}
"#,
        )
        .args(["build", "--stack", "passing", "--profile", "podman"])
        .run();
    out.code(0);
    let built = out.root.join("out/passing/podman");
    crate::support::validate_artifacts(&built);

    let compose_environment = |env: &str| {
        let config = compose_config(&built, env, &["POLL_MS", "TRACE_TOKEN"]);
        config["services"]["app"]["environment"].clone()
    };
    assert_eq!(
        compose_environment(""),
        serde_json::json!({ "FIXED": "1", "POLL_MS": null, "TRACE_TOKEN": null })
    );
    assert_eq!(
        compose_environment("TRACE_TOKEN=t0k\n"),
        serde_json::json!({ "FIXED": "1", "POLL_MS": null, "TRACE_TOKEN": "t0k" })
    );

    let runtime = tempfile::tempdir().expect("runtime dir");
    let berth_env = |env: &str| run_berth_env(&built, "passing", "app", env, runtime.path());
    assert_eq!(berth_env(""), "FIXED=1\n");
    assert_eq!(
        berth_env("TRACE_TOKEN=t0k\nPOLL_MS=5\n"),
        "FIXED=1\nPOLL_MS=5\nTRACE_TOKEN=t0k\n"
    );
    let unit = std::fs::read_to_string(built.join("quadlet/passing-app.container")).expect("unit");
    assert!(
        unit.contains("\nEnvironmentFile=/run/berth/passing/app.env\n"),
        "{unit}"
    );

    let docs = kustomized(&built.join("k8s"));
    let container = &named(&docs, "Deployment", "app")["spec"]["template"]["spec"]["containers"][0];
    let env = container["env"].as_array().expect("env entries");
    let entry = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {env:?}"))
            .clone()
    };
    assert_eq!(
        entry("POLL_MS")["valueFrom"]["configMapKeyRef"]["optional"],
        true,
        "{env:?}"
    );
    let token = entry("TRACE_TOKEN");
    assert_eq!(
        token["valueFrom"]["secretKeyRef"]["optional"], true,
        "{token}"
    );
    assert_eq!(token["valueFrom"]["secretKeyRef"]["key"], "TRACE_TOKEN");
    let secrets_env = std::fs::read_to_string(built.join("k8s/secrets.env")).expect("secrets.env");
    assert!(
        secrets_env.contains("\n# TRACE_TOKEN=    (app)\n"),
        "{secrets_env}"
    );
    let template = std::fs::read_to_string(built.join(".env.template")).expect("template");
    assert!(
        template.contains("# Passed to: app.\n# TRACE_TOKEN=\n"),
        "{template}"
    );
    assert!(
        template.contains("# Read by: app.\n# POLL_MS=300000"),
        "{template}"
    );
}

/// `${NAME:+text}`: the text when NAME is set and not empty, else nothing. Compose reads it
/// from .env (docker compose config, with and without), podman's berth-env too (run for
/// real), apply from the host (see apply.rs); Kubernetes has no conditional, so the
/// manifest leaves the text out (NAME's default is empty) and the build says so.
#[test]
fn an_alternative_value_follows_its_variable_where_the_backend_can_read_it() {
    let (out, _dir) = Berth::schemas_only()
        .file("profiles/podman.ncl", &crate::support::podman_profile())
        .file(
            "modules/stacks/alt.ncl",
            r#"fun profile => {
  variables.DEBUG = { description = "Any value turns debugging on.", default = "" },
  services.app = {
    image = "busybox:1",
    command = ["sleep", "1000"],
    environment.FLAGS = "-v${DEBUG:+ --debug}",
  },
}
"#,
        )
        .args(["build", "--stack", "alt", "--profile", "podman"])
        .run();
    out.code(0).stderr_contains(
        "warning: k8s: modules/stacks/alt.ncl:6:25: services.app.environment.FLAGS: `-v${DEBUG:+ --debug}`: Kubernetes has no conditional value",
    );
    let built = out.root.join("out/alt/podman");
    crate::support::validate_artifacts(&built);
    let compose_flags = |env: &str| {
        compose_config(&built, env, &["DEBUG"])["services"]["app"]["environment"]["FLAGS"].clone()
    };
    assert_eq!(compose_flags(""), "-v");
    assert_eq!(compose_flags("DEBUG=\n"), "-v");
    assert_eq!(compose_flags("DEBUG=yes\n"), "-v --debug");

    let runtime = tempfile::tempdir().expect("runtime dir");
    let berth_env = |env: &str| run_berth_env(&built, "alt", "app", env, runtime.path());
    assert_eq!(berth_env(""), "FLAGS=-v\n");
    assert_eq!(berth_env("DEBUG=yes\n"), "FLAGS=-v --debug\n");

    let docs = kustomized(&built.join("k8s"));
    let container = &named(&docs, "Deployment", "app")["spec"]["template"]["spec"]["containers"][0];
    let flags = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == "FLAGS")
        .cloned()
        .unwrap_or_else(|| panic!("no FLAGS in {container}"));
    assert_eq!(flags["value"], "-v", "{flags}");
}

/// `cache = true`: on Kubernetes every pod of every service that mounts the volume has its
/// own emptyDir bounded by `size` (no claim, so no ReadWriteMany, no Recreate), said once;
/// Compose keeps the one named volume both services share; a volume that is no cache stays
/// a claim. kubernetes-validate and kustomize accept it (validate_artifacts).
#[test]
fn a_cache_volume_is_each_pods_own_on_kubernetes_and_shared_under_compose() {
    let (out, _dir) = Berth::schemas_only()
        .file(
            "modules/stacks/cached.ncl",
            r#"fun profile => {
  services.api = {
    image = "busybox:1",
    command = ["sleep", "1000"],
    replicas = 2,
    volumes = [{ source = "downloads", target = "/cache" }, { source = "uploads", target = "/uploads" }],
  },
  services.worker = {
    image = "busybox:1",
    command = ["sleep", "1000"],
    volumes = [{ source = "downloads", target = "/cache" }],
  },
  volumes.downloads = { size = "3G", cache = true },
  volumes.uploads = { size = "5G" },
}
"#,
        )
        .args(["build", "--stack", "cached", "--profile", "prod-lite"])
        .run();
    out.code(0);
    let built = out.root.join("out/cached/prod-lite");
    crate::support::validate_artifacts(&built);
    for service in ["api", "worker"] {
        let text =
            std::fs::read_to_string(built.join(format!("k8s/{service}.yaml"))).expect("manifest");
        let docs = documents(&text);
        let pod = &find(&docs, "Deployment")["spec"]["template"]["spec"];
        let cache = pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|volume| volume["name"] == "downloads")
            .unwrap_or_else(|| panic!("{service} has no downloads volume: {pod}"));
        assert_eq!(cache["emptyDir"]["sizeLimit"], "3Gi", "{service}: {cache}");
        assert!(cache.get("persistentVolumeClaim").is_none(), "{cache}");
        assert!(
            docs.iter().all(|doc| doc["kind"] != "PersistentVolumeClaim"
                || doc["metadata"]["name"] != "downloads"),
            "{service} still claims downloads"
        );
        assert_eq!(
            text.matches("volume downloads is a cache").count(),
            usize::from(service == "api"),
            "{service}: said once, with the first service that mounts it:\n{text}"
        );
    }
    // The volume that is no cache is still a claim (one node's, so api's update recreates).
    let api = std::fs::read_to_string(built.join("k8s/api.yaml")).expect("api");
    let docs = documents(&api);
    assert_eq!(
        find(&docs, "PersistentVolumeClaim")["metadata"]["name"],
        "uploads"
    );
    let compose = crate::support::compose_config(&built, "", &[]);
    for service in ["api", "worker"] {
        let source = &compose["services"][service]["volumes"][0]["source"];
        assert_eq!(source, "downloads", "{service}: {source}");
    }
    assert!(compose["volumes"]["downloads"].is_object(), "{compose:#}");
}

/// Kubernetes has no relabelling of a hostPath: a host agent's bind that asks for one is
/// mounted, and the manifest says the node's path must be labelled by hand.
#[test]
fn a_relabelled_host_path_is_said_to_need_its_label_on_the_node() {
    let (out, _dir) = Berth::schemas_only()
        .file(
            "modules/stacks/agent.ncl",
            r#"fun profile => {
  services.agent = {
    image = "busybox:1",
    command = ["sleep", "1000"],
    volumes = [{ type = "bind", source = "/var/log", target = "/host/log", read_only = true, host_path = true, selinux = "z" }],
  },
}
"#,
        )
        .args(["build", "--stack", "agent", "--no-profile"])
        .run();
    out.code(0);
    let text =
        std::fs::read_to_string(out.root.join("out/agent/none/k8s/agent.yaml")).expect("manifest");
    assert!(
        text.contains("services.agent.volumes[0].selinux: Kubernetes does not relabel a hostPath"),
        "{text}"
    );
    let docs = documents(&text);
    let pod = &find(&docs, "DaemonSet")["spec"]["template"]["spec"];
    assert_eq!(pod["volumes"][0]["hostPath"]["path"], "/var/log", "{pod}");
}
