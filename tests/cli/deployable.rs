//! Rules that keep whole classes of on-call defects out of every bundled stack × profile
//! (issue #20's blockers, issue #12's "no literal `${`"), checked on a fresh build rather
//! than on golden/: a module or renderer change that breaks one fails here, whatever
//! golden/ says. The build is the bundled project plus a `podman` profile (prod-lite with
//! Quadlet units on), so the Quadlet units and the podman variant of the backups are
//! checked too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Berth, Output, podman_profile};

const STACKS: [&str; 5] = ["aigym", "ape", "freshpoc", "melvin", "rag-engine"];
const PROFILES: [&str; 4] = ["dev", "staging", "prod-lite", "podman"];

/// The bundled project plus a `podman` profile: prod-lite with Quadlet units on (as
/// `quadlet::podman` makes it).
fn podman() -> Berth {
    Berth::bundled().file("profiles/podman.ncl", &podman_profile())
}

/// Every bundled stack built for every profile (the bundled ones and `podman`).
fn build() -> (Output, tempfile::TempDir) {
    let (out, dir) = podman().args(["build"]).run();
    out.code(0);
    (out, dir)
}

fn folder(out: &Output, stack: &str, profile: &str) -> PathBuf {
    out.root.join(format!("out/{stack}/{profile}"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The files of `dir` whose name ends with `suffix`, sorted.
fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect();
    found.sort();
    found
}

/// The documents of a multi-document manifest, parsed (as `kubernetes::documents`).
fn documents(text: &str) -> Vec<serde_json::Value> {
    text.split("\n---\n")
        .map(|doc| serde_saphyr::from_str(doc).expect("parse manifest document"))
        .collect()
}

/// Every document of every manifest in `k8s`, with the file it came from.
fn manifests(k8s: &Path) -> Vec<(PathBuf, serde_json::Value)> {
    files(k8s, ".yaml")
        .into_iter()
        .flat_map(|path| {
            documents(&read(&path))
                .into_iter()
                .map(move |doc| (path.clone(), doc))
        })
        .collect()
}

/// The pod spec of a workload document, and the JSON pointer it sits at; `None` for
/// documents that run no pod.
fn pod_spec(doc: &serde_json::Value) -> Option<(&'static str, &serde_json::Value)> {
    let pointer = match doc["kind"].as_str()? {
        "Pod" => "/spec",
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => "/spec/template/spec",
        "CronJob" => "/spec/jobTemplate/spec/template/spec",
        _ => return None,
    };
    let spec = doc.pointer(pointer);
    assert!(
        spec.is_some(),
        "{} {} has no pod spec at {pointer}",
        doc["kind"],
        doc["metadata"]["name"]
    );
    spec.map(|spec| (pointer, spec))
}

/// The containers of a pod spec (init containers too), with the key of their list.
fn containers(pod: &serde_json::Value) -> Vec<(&'static str, usize, &serde_json::Value)> {
    let mut found = Vec::new();
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for (index, container) in pod[list].as_array().into_iter().flatten().enumerate() {
            found.push((list, index, container));
        }
    }
    found
}

/// The variables a build declares, read from its `.env.template`: one `NAME=` line per
/// variable, commented out (`# NAME=default`) when it has a default.
fn variables(dir: &Path) -> BTreeSet<String> {
    let names: BTreeSet<String> = read(&dir.join(".env.template"))
        .lines()
        .filter_map(|line| {
            let line = line.strip_prefix("# ").unwrap_or(line);
            let (name, _) = line.split_once('=')?;
            let is_name = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            is_name.then(|| name.to_string())
        })
        .collect();
    assert!(!names.is_empty(), "{}: no variable", dir.display());
    names
}

/// Each compose service's own environment keys, from the build's compose.yaml.
fn own_environment(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let compose: serde_json::Value =
        serde_saphyr::from_str(&read(&dir.join("compose.yaml"))).expect("parse compose.yaml");
    let services = compose["services"].as_object().expect("services");
    services
        .iter()
        .map(|(name, service)| {
            let keys = match &service["environment"] {
                serde_json::Value::Object(map) => map.keys().cloned().collect(),
                serde_json::Value::Array(list) => list
                    .iter()
                    .map(|entry| {
                        let entry = entry.as_str().expect("KEY=VALUE");
                        entry
                            .split_once('=')
                            .map_or(entry, |(key, _)| key)
                            .to_string()
                    })
                    .collect(),
                _ => BTreeSet::new(),
            };
            (name.clone(), keys)
        })
        .collect()
}

/// Issue #20, blocker 1: a variable that only feeds interpolation becomes no container
/// variable of its own name (Neo4j's entrypoint turns every `NEO4J_*` into a setting and
/// refuses unknown ones). A container's variables are its `env` entries and the keys of
/// the ConfigMaps and Secrets its `envFrom` reads.
#[test]
fn kubernetes_containers_get_no_interpolation_only_variable() {
    let (out, _dir) = build();
    let mut found = Vec::new();
    let mut n_containers = 0;
    for stack in STACKS {
        for profile in PROFILES {
            let dir = folder(&out, stack, profile);
            let variables = variables(&dir);
            let own = own_environment(&dir);
            let docs = manifests(&dir.join("k8s"));
            let config_maps: BTreeMap<String, BTreeSet<String>> = docs
                .iter()
                .filter(|(_, doc)| doc["kind"] == "ConfigMap")
                .map(|(_, doc)| {
                    let name = doc["metadata"]["name"].as_str().expect("name").to_string();
                    let keys = doc["data"]
                        .as_object()
                        .map(|data| data.keys().cloned().collect())
                        .unwrap_or_default();
                    (name, keys)
                })
                .collect();
            for (path, doc) in &docs {
                let Some((_, pod)) = pod_spec(doc) else {
                    continue;
                };
                let service = doc["metadata"]["labels"]["app.kubernetes.io/name"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{}: workload without its service", path.display()));
                let own = own
                    .get(service)
                    .unwrap_or_else(|| panic!("{}: no compose service {service}", path.display()));
                for (list, index, container) in containers(pod) {
                    n_containers += 1;
                    let place = format!(
                        "{}: {} {} {list}[{index}] ({})",
                        path.display(),
                        doc["kind"].as_str().unwrap_or_default(),
                        doc["metadata"]["name"].as_str().unwrap_or_default(),
                        container["name"].as_str().unwrap_or_default()
                    );
                    let mut names: Vec<(String, String)> = Vec::new();
                    for env in container["env"].as_array().into_iter().flatten() {
                        let name = env["name"].as_str().expect("env name");
                        names.push((name.to_string(), "env".to_string()));
                    }
                    for source in container["envFrom"].as_array().into_iter().flatten() {
                        if let Some(name) = source["configMapRef"]["name"].as_str() {
                            let keys = config_maps.get(name).unwrap_or_else(|| {
                                panic!(
                                    "{place}: envFrom reads ConfigMap {name}, which is not in k8s/"
                                )
                            });
                            let from = format!("envFrom ConfigMap {name}");
                            names.extend(keys.iter().map(|key| (key.clone(), from.clone())));
                        } else {
                            // A whole Secret as variables: the generated Secret holds every
                            // secret of the stack, each named after its variable.
                            found.push(format!("{place}: envFrom {source}"));
                        }
                    }
                    for (name, from) in names {
                        if variables.contains(&name) && !own.contains(&name) {
                            found.push(format!(
                                "{place}: {from} `{name}` is a stack variable that service {service}'s environment does not set"
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(n_containers > 100, "only {n_containers} containers seen");
    assert!(
        found.is_empty(),
        "interpolation-only variables reach Kubernetes containers:\n{}",
        found.join("\n")
    );
}

/// Issue #20, blocker 1: Kubernetes injects `<SERVICE>_PORT`, `<SERVICE>_SERVICE_HOST`…
/// into pods unless told not to, and images read such prefixes as configuration.
#[test]
fn every_pod_disables_service_links() {
    let (out, _dir) = build();
    let mut found = Vec::new();
    let mut n_pods = 0;
    for stack in STACKS {
        for profile in PROFILES {
            for (path, doc) in manifests(&folder(&out, stack, profile).join("k8s")) {
                let Some((pointer, pod)) = pod_spec(&doc) else {
                    continue;
                };
                n_pods += 1;
                if pod["enableServiceLinks"] != false {
                    found.push(format!(
                        "{}: {} {}: {pointer}/enableServiceLinks is {}",
                        path.display(),
                        doc["kind"].as_str().unwrap_or_default(),
                        doc["metadata"]["name"].as_str().unwrap_or_default(),
                        pod["enableServiceLinks"]
                    ));
                }
            }
        }
    }
    assert!(n_pods > 100, "only {n_pods} pod specs seen");
    assert!(
        found.is_empty(),
        "pods with service links:\n{}",
        found.join("\n")
    );
}

/// Issue #20, blockers 4 and 6: a claim is mounted root-owned, so a pod that runs as a
/// non-root user and writes to a claim must have an fsGroup (from `volume_owner`, or from
/// the numeric `user` it runs as). Pods whose user only the image knows are not judged.
#[test]
fn every_non_root_pod_writing_a_claim_has_an_fs_group() {
    let (out, _dir) = build();
    let (mut judged, mut found) = (0, Vec::new());
    for stack in STACKS {
        for profile in PROFILES {
            for (path, doc) in manifests(&folder(&out, stack, profile).join("k8s")) {
                let Some((_, pod)) = pod_spec(&doc) else {
                    continue;
                };
                let mut claims: BTreeSet<&str> = pod["volumes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|volume| volume.get("persistentVolumeClaim").is_some())
                    .filter_map(|volume| volume["name"].as_str())
                    .collect();
                let templates = doc["spec"]["volumeClaimTemplates"].as_array();
                claims.extend(
                    templates
                        .into_iter()
                        .flatten()
                        .filter_map(|claim| claim["metadata"]["name"].as_str()),
                );
                for (_, _, container) in containers(pod) {
                    let user = container["securityContext"]["runAsUser"]
                        .as_i64()
                        .or(pod["securityContext"]["runAsUser"].as_i64());
                    let writes_a_claim = container["volumeMounts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|mount| {
                            mount["readOnly"] != true
                                && mount["name"].as_str().is_some_and(|n| claims.contains(n))
                        });
                    if !writes_a_claim || user.is_none_or(|uid| uid == 0) {
                        continue;
                    }
                    judged += 1;
                    if pod["securityContext"]["fsGroup"].as_i64().is_none() {
                        found.push(format!(
                            "{}: {} {} runs as {} and writes a claim without fsGroup",
                            path.display(),
                            doc["kind"].as_str().unwrap_or_default(),
                            doc["metadata"]["name"].as_str().unwrap_or_default(),
                            user.unwrap_or_default()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        judged >= 3,
        "only {judged} non-root containers writing a claim seen"
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// Issue #20, blocker 8: applying one profile to a cluster running another must not
/// rewrite its objects, so each profile of a stack has a namespace of its own, and every
/// object sits in it.
#[test]
fn every_profile_of_a_stack_has_its_own_namespace() {
    let (out, _dir) = build();
    let mut found = Vec::new();
    for stack in STACKS {
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for profile in PROFILES {
            let k8s = folder(&out, stack, profile).join("k8s");
            let kustomization: serde_json::Value =
                serde_saphyr::from_str(&read(&k8s.join("kustomization.yaml")))
                    .expect("parse kustomization");
            let Some(namespace) = kustomization["namespace"].as_str() else {
                found.push(format!(
                    "{}: no namespace",
                    k8s.join("kustomization.yaml").display()
                ));
                continue;
            };
            if let Some(other) = seen.insert(namespace.to_string(), profile) {
                found.push(format!(
                    "{stack}: profiles {other} and {profile} share namespace {namespace} ({})",
                    k8s.join("kustomization.yaml").display()
                ));
            }
            for (path, doc) in manifests(&k8s) {
                let kind = doc["kind"].as_str().unwrap_or_default();
                let name = doc["metadata"]["name"].as_str().unwrap_or_default();
                let placed = if kind == "Namespace" {
                    &doc["metadata"]["name"]
                } else {
                    &doc["metadata"]["namespace"]
                };
                if kind != "Kustomization" && !placed.is_null() && placed != namespace {
                    found.push(format!(
                        "{}: {kind} {name} is in {placed}, the kustomization in {namespace}",
                        path.display()
                    ));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "profiles share a namespace:\n{}",
        found.join("\n")
    );
}

/// Every string in `value`, with its JSON pointer below `at`.
fn strings(value: &serde_json::Value, at: &str, found: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::String(text) => found.push((at.to_string(), text.clone())),
        serde_json::Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                strings(item, &format!("{at}/{index}"), found);
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                let key = key.replace('~', "~0").replace('/', "~1");
                strings(item, &format!("{at}/{key}"), found);
            }
        }
        _ => {}
    }
}

/// Whether `argv` runs a shell on a script (`sh -c SCRIPT…`): the script is the one word
/// a shell expands `${…}` in (words after it are its positional parameters, never expanded).
fn is_shell(argv: &[&serde_json::Value]) -> bool {
    let shells = ["sh", "bash", "/bin/sh", "/bin/bash", "/usr/bin/bash"];
    argv.len() >= 3
        && argv[0].as_str().is_some_and(|word| shells.contains(&word))
        && argv[1] == "-c"
}

/// The pointers of the strings in a pod that a shell expands: the script of a container
/// whose command (and args) is `sh -c SCRIPT`, and of such an exec probe or hook.
fn shell_scripts(pod_at: &str, pod: &serde_json::Value) -> BTreeSet<String> {
    let mut scripts = BTreeSet::new();
    for (list, index, container) in containers(pod) {
        let at = format!("{pod_at}/{list}/{index}");
        let command: Vec<&serde_json::Value> = container["command"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        let args: Vec<&serde_json::Value> =
            container["args"].as_array().into_iter().flatten().collect();
        let argv: Vec<&serde_json::Value> = command.iter().chain(&args).copied().collect();
        if is_shell(&argv) {
            scripts.insert(if command.len() > 2 {
                format!("{at}/command/2")
            } else {
                format!("{at}/args/{}", 2 - command.len())
            });
        }
        for probe in [
            "livenessProbe",
            "readinessProbe",
            "startupProbe",
            "lifecycle/postStart",
            "lifecycle/preStop",
        ] {
            let exec = container.pointer(&format!("/{probe}/exec/command"));
            let argv: Vec<&serde_json::Value> = exec
                .and_then(|c| c.as_array())
                .into_iter()
                .flatten()
                .collect();
            if is_shell(&argv) {
                scripts.insert(format!("{at}/{probe}/exec/command/2"));
            }
        }
    }
    scripts
}

/// Issue #12: Kubernetes expands `$(VAR)` in command, args and env only, and `${VAR}`
/// nowhere; podman and systemd expand neither in a unit's keys. A `${` in a generated
/// Kubernetes manifest or Quadlet file is a literal the workload sees, except where a
/// shell the target runs expands it: a `sh -c` script in a container or exec probe; an
/// `Exec=`/`ExecStartPre=` line of a unit; `berth-env` (a bash script) and the
/// `<stack>-<service>.env.tmpl` it renders for the unit that runs it.
#[test]
fn no_unexpanded_interpolation_in_kubernetes_or_quadlet_files() {
    let (out, _dir) = build();
    let mut found = Vec::new();
    let mut n_files = 0;
    for stack in STACKS {
        for profile in PROFILES {
            let dir = folder(&out, stack, profile);
            for (path, doc) in manifests(&dir.join("k8s")) {
                let allowed = pod_spec(&doc)
                    .map(|(at, pod)| shell_scripts(at, pod))
                    .unwrap_or_default();
                let mut texts = Vec::new();
                strings(&doc, "", &mut texts);
                for (at, text) in texts {
                    if text.contains("${") && !allowed.contains(&at) {
                        found.push(format!(
                            "{}: {} {}: {at} = {text:?}",
                            path.display(),
                            doc["kind"].as_str().unwrap_or_default(),
                            doc["metadata"]["name"].as_str().unwrap_or_default()
                        ));
                    }
                }
            }
            for path in files(&dir.join("k8s"), "") {
                n_files += 1;
                let name = path.file_name().expect("name").to_string_lossy();
                // Kustomize reads secrets.env and the kustomization as data, no shell.
                if !name.ends_with(".yaml") && read(&path).contains("${") {
                    found.push(format!("{}: holds `${{`", path.display()));
                }
            }
            let quadlet = dir.join("quadlet");
            if !quadlet.exists() {
                continue;
            }
            for path in files(&quadlet, "") {
                n_files += 1;
                let name = path
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned();
                let text = read(&path);
                if name == "berth-env" {
                    continue;
                }
                if let Some(service) = name
                    .strip_suffix(".env.tmpl")
                    .and_then(|unit| unit.strip_prefix(&format!("{stack}-")))
                {
                    // A template: the unit's ExecStartPre renders it with berth-env.
                    let unit = read(&quadlet.join(format!("{stack}-{service}.container")));
                    let renders = unit.lines().any(|line| {
                        line.starts_with("ExecStartPre=")
                            && line.contains(&format!("/quadlet/berth-env {stack} {service} "))
                    });
                    if !renders {
                        found.push(format!(
                            "{}: no ExecStartPre= of {stack}-{service}.container renders it with berth-env",
                            path.display()
                        ));
                    }
                    continue;
                }
                for (number, line) in text.lines().enumerate() {
                    let expanded = line.starts_with("Exec=") || line.starts_with("ExecStartPre=");
                    if line.contains("${") && !expanded {
                        found.push(format!("{}:{}: {line}", path.display(), number + 1));
                    }
                }
            }
        }
    }
    assert!(n_files > 300, "only {n_files} files seen");
    assert!(
        found.is_empty(),
        "unexpanded `${{` in Kubernetes or Quadlet files:\n{}",
        found.join("\n")
    );
}

/// The systemd folders of the build that hold backup units.
fn backup_folders(out: &Output) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for stack in STACKS {
        for profile in PROFILES {
            let systemd = folder(out, stack, profile).join("systemd");
            if systemd.join("berth-backup").exists() {
                found.push(systemd);
            }
        }
    }
    // Every stack declares backups, and staging, prod-lite and podman have systemd units.
    assert_eq!(found.len(), STACKS.len() * 3, "{found:?}");
    found
}

/// The value of `key=` in a unit file, its first occurrence.
fn unit_value<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines()
        .find_map(|line| line.strip_prefix(&format!("{key}=")))
}

/// Issue #20, blocker 2, and the backup script's form: every berth-backup parses and
/// passes shellcheck (podman's variant too), and an offline dump runs without the image's
/// entrypoint (which may print on stdout, in front of the dump).
#[test]
fn backup_scripts_parse_and_run_offline_dumps_without_the_entrypoint() {
    let (out, _dir) = build();
    let mut found = Vec::new();
    for systemd in backup_folders(&out) {
        let script = systemd.join("berth-backup");
        let bash = Command::new("bash")
            .arg("-n")
            .arg(&script)
            .output()
            .expect("run bash -n");
        if !bash.status.success() {
            found.push(format!(
                "{}: bash -n: {}",
                script.display(),
                String::from_utf8_lossy(&bash.stderr)
            ));
        }
        let shellcheck = Command::new("shellcheck")
            .args(["--shell=bash", "--severity=info"])
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("shellcheck: {e}: run scripts/install-validators"));
        if !shellcheck.status.success() {
            found.push(format!(
                "{}: shellcheck:\n{}",
                script.display(),
                String::from_utf8_lossy(&shellcheck.stdout)
            ));
        }
        // The one-off containers of offline dumps, wherever the script starts them.
        let text = read(&script);
        let runs: Vec<&str> = text
            .lines()
            .filter(|line| !line.trim_start().starts_with('#') && line.contains(" run "))
            .collect();
        for line in &runs {
            if !line.contains("--entrypoint sh ") {
                found.push(format!(
                    "{}: offline dump through the image's entrypoint: {}",
                    script.display(),
                    line.trim()
                ));
            }
        }
        for unit in files(&systemd, ".service") {
            let text = read(&unit);
            if !text.contains("\nEnvironment=\"BERTH_BACKUP_MODE=offline\"\n") {
                continue;
            }
            let service = text
                .lines()
                .find_map(|line| line.strip_prefix("Environment=\"BERTH_SERVICE="))
                .and_then(|rest| rest.strip_suffix('"'))
                .expect("BERTH_SERVICE");
            // podman's script runs one `podman run` per offline service, compose's one
            // `compose run` for all.
            let dumps = runs.iter().any(|line| {
                line.contains("docker compose")
                    || line.contains("\"${compose[@]}\"")
                    || line.trim_start().starts_with(&format!("{service})"))
            });
            if !dumps {
                found.push(format!(
                    "{}: offline backup of {service}, which {} does not dump",
                    unit.display(),
                    script.display()
                ));
            }
        }
    }
    assert!(found.is_empty(), "backup scripts:\n{}", found.join("\n\n"));
}

/// A timer starts the unit its `Unit=` names (else the `.service` of its own name): every
/// timer's unit must exist beside it and run berth-backup, and every backup unit must
/// have a timer, or it never runs.
#[test]
fn every_timer_has_its_service() {
    let (out, _dir) = build();
    let mut found = Vec::new();
    let mut n_timers = 0;
    for systemd in backup_folders(&out) {
        let mut started = BTreeSet::new();
        for timer in files(&systemd, ".timer") {
            n_timers += 1;
            let name = timer
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let text = read(&timer);
            let default = name.replace(".timer", ".service");
            let unit = unit_value(&text, "Unit").unwrap_or(&default).to_string();
            match std::fs::read_to_string(systemd.join(&unit)) {
                Err(_) => found.push(format!(
                    "{}: starts {unit}, which is not beside it",
                    timer.display()
                )),
                Ok(service) => {
                    if !service.contains("/systemd/berth-backup\n") {
                        found.push(format!("{}: {unit} runs no berth-backup", timer.display()));
                    }
                }
            }
            started.insert(unit);
        }
        for unit in files(&systemd, ".service") {
            let name = unit
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            if read(&unit).contains("/systemd/berth-backup\n") && !started.contains(&name) {
                found.push(format!("{}: a backup unit no timer starts", unit.display()));
            }
        }
    }
    assert!(n_timers >= 15, "only {n_timers} timers seen");
    assert!(found.is_empty(), "timers and units:\n{}", found.join("\n"));
}

/// The shell-script finder itself: only the script word of `sh -c` counts, in a
/// container's command and args or an exec probe.
#[test]
fn shell_scripts_are_the_word_after_dash_c() {
    let pod = serde_json::json!({
        "initContainers": [{ "command": ["sh", "-c", "until nc -z db 5432; do sleep 1; done"] }],
        "containers": [
            { "command": ["sh"], "args": ["-c", "exec app --url ${URL}", "${NOT_EXPANDED}"] },
            { "command": ["app", "-c", "${LITERAL}"] },
            { "readinessProbe": { "exec": { "command": ["bash", "-c", "test ${X}"] } } },
        ],
    });
    let scripts: Vec<String> = shell_scripts("/spec", &pod).into_iter().collect();
    assert_eq!(
        scripts,
        [
            "/spec/containers/0/args/1",
            "/spec/containers/2/readinessProbe/exec/command/2",
            "/spec/initContainers/0/command/2",
        ]
    );
}
