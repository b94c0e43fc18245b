//! `berth import` on real Compose files (tests/corpus/compose, see its SOURCES.md): every
//! file is imported, built with `--no-profile`, and the regenerated compose.yaml is
//! compared with the original, both normalised by the real Compose v2 (`config --format
//! json`, same project folder, same environment). What remains must be exactly the
//! differences listed for that file below, each with the reason it exists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{Berth, REPO, copy_dir, run_in};
use crate::validators::compose;

/// The normalisations applied to both sides before comparing (intentional, documented):
/// - `x-` extension fields are dropped where Compose allows them (top level, services,
///   volume/network/secret/config definitions; they configure nothing); an `x-` label or
///   variable is kept and compared.
/// - null, `{}` and `[]` equal an absent key (`entrypoint: null`, `volume: {}`, `ipam: {}`),
///   except a service's network membership (`networks: {back: null}`), which is compared.
/// - healthcheck `interval`/`timeout`/`retries` absent equal Docker's 30s/30s/3, which
///   berth writes out (its own defaults differ).
/// - `deploy.mode: replicated`, `deploy.replicas: 1` and `scale: 1` are the defaults;
///   `scale: N` equals `deploy.replicas: N`.
/// - a ulimit `N` equals `{soft: N, hard: N}`; `logging` without a driver equals
///   `json-file` (berth's model default, and Docker's); network `driver: bridge` equals none.
/// - names berth cannot hold (upper case, dots) are compared as the README says berth
///   writes them (lower case, anything else than `a-z0-9_-` as `-`; services, volumes,
///   networks and references to them); two names that become one fail the test. A renamed
///   service must carry its old name as an alias on each of its networks; that alias is
///   then dropped. `networks: {default}` alone equals no `networks`.
/// - a service's `configs` entry for a top-level `file` config equals a read-only bind
///   mount of that file at its target: what Compose makes of it outside Swarm (and what
///   berth imports it as); the top-level `file` configs then go.
///
/// `renamed` is `None` for the original, and for berth's side the services the original
/// named otherwise (see [`renamed_services`]). Returns what the normalisation itself
/// found wrong (a missing old-name alias).
/// `ipam.driver: default` names the engine's own IPAM driver, which berth's networks use
/// without saying so: the same network.
fn default_ipam_driver(doc: &mut Value) {
    let Some(networks) = doc.get_mut("networks").and_then(Value::as_object_mut) else {
        return;
    };
    for network in networks.values_mut() {
        let Some(ipam) = network.get_mut("ipam").and_then(Value::as_object_mut) else {
            continue;
        };
        if ipam.get("driver").and_then(Value::as_str) == Some("default") {
            ipam.remove("driver");
        }
        if ipam.is_empty()
            && let Some(network) = network.as_object_mut()
        {
            network.remove("ipam");
        }
    }
}

fn normalise(doc: &mut Value, renamed: Option<&BTreeMap<String, String>>) -> Vec<String> {
    let original = renamed.is_none();
    let mut found = Vec::new();
    drop_extensions(doc);
    if original {
        file_configs_as_binds(doc);
    }
    mark_memberships(doc);
    default_ipam_driver(doc);
    drop_empty(doc);
    let Some(services) = doc.get_mut("services").and_then(Value::as_object_mut) else {
        return found;
    };
    if original {
        rename_keys(services);
    }
    for (name, service) in services.iter_mut() {
        let Some(service) = service.as_object_mut() else {
            continue;
        };
        if original {
            rename_references(service);
        } else if let Some(old) = renamed.and_then(|renamed| renamed.get(name)) {
            found.extend(drop_old_name_alias(name, old, service));
        }
        if let Some(health) = service
            .get_mut("healthcheck")
            .and_then(Value::as_object_mut)
        {
            for (key, default) in [
                ("interval", "30s".into()),
                ("timeout", "30s".into()),
                ("retries", 3.into()),
            ] {
                health.entry(key).or_insert(default);
            }
        }
        // berth tags a build with the name Compose gives it unasked (`<project>-<service>`,
        // tag latest), so that every backend runs the same image: not a difference.
        if !original
            && service.contains_key("build")
            && service
                .get("image")
                .and_then(Value::as_str)
                .is_some_and(|image| image.ends_with(&format!("-{name}:latest")))
        {
            service.remove("image");
        }
        if let Some(scale) = service.remove("scale")
            && scale != 1
        {
            service.insert("deploy".into(), serde_json::json!({ "replicas": scale }));
        }
        if let Some(deploy) = service.get_mut("deploy").and_then(Value::as_object_mut) {
            if deploy.get("mode").and_then(Value::as_str) == Some("replicated") {
                deploy.remove("mode");
            }
            if deploy.get("replicas") == Some(&Value::from(1)) {
                deploy.remove("replicas");
            }
            if deploy.is_empty() {
                service.remove("deploy");
            }
        }
        if let Some(limits) = service.get_mut("ulimits").and_then(Value::as_object_mut) {
            for limit in limits.values_mut() {
                if limit.is_number() {
                    *limit = serde_json::json!({ "soft": limit.clone(), "hard": limit.clone() });
                }
            }
        }
        if let Some(logging) = service.get_mut("logging").and_then(Value::as_object_mut) {
            logging.entry("driver").or_insert("json-file".into());
        }
        if let Some(networks) = service.get_mut("networks").and_then(Value::as_object_mut) {
            for network in networks.values_mut() {
                if network.as_object().is_some_and(serde_json::Map::is_empty) {
                    *network = MEMBER.into();
                }
            }
        }
        if service.get("networks") == Some(&serde_json::json!({ "default": MEMBER })) {
            service.remove("networks");
        }
    }
    if original {
        for section in ["volumes", "networks"] {
            if let Some(map) = doc.get_mut(section).and_then(Value::as_object_mut) {
                rename_keys(map);
            }
        }
    }
    if let Some(networks) = doc.get_mut("networks").and_then(Value::as_object_mut) {
        for network in networks.values_mut() {
            if network.get("driver").and_then(Value::as_str) == Some("bridge")
                && let Some(network) = network.as_object_mut()
            {
                network.remove("driver");
            }
        }
    }
    found
}

/// Turns each service's `configs` entry of a top-level `file` config into the read-only
/// bind mount Compose makes of it outside Swarm, appended to its `volumes`.
fn file_configs_as_binds(doc: &mut Value) {
    let files: BTreeMap<String, Value> = doc
        .get("configs")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(name, config)| Some((name.clone(), config.get("file")?.clone())))
        .collect();
    for service in doc
        .get_mut("services")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|services| services.values_mut())
        .filter_map(Value::as_object_mut)
    {
        let Some(Value::Array(configs)) = service.remove("configs") else {
            continue;
        };
        let mut kept = Vec::new();
        for config in configs {
            let source = config
                .get("source")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match files.get(source) {
                Some(file) => {
                    let target = config
                        .get("target")
                        .cloned()
                        .unwrap_or_else(|| format!("/{source}").into());
                    let bind = serde_json::json!({
                        "type": "bind", "source": file, "target": target, "read_only": true,
                    });
                    match service.get_mut("volumes").and_then(Value::as_array_mut) {
                        Some(volumes) => volumes.push(bind),
                        None => {
                            service.insert("volumes".into(), Value::Array(vec![bind]));
                        }
                    }
                }
                None => kept.push(config),
            }
        }
        if !kept.is_empty() {
            service.insert("configs".into(), Value::Array(kept));
        }
    }
    if let Some(configs) = doc.get_mut("configs").and_then(Value::as_object_mut) {
        configs.retain(|_, config| config.get("file").is_none());
    }
}

/// What a plain network membership (`back: null` or `back: {}`) becomes, so that
/// dropping empty values does not erase it.
const MEMBER: &str = "(member)";

/// Drops `x-` keys at the levels where Compose reads them as extensions.
fn drop_extensions(doc: &mut Value) {
    let drop = |value: &mut Value| {
        if let Some(map) = value.as_object_mut() {
            map.retain(|key, _| !key.starts_with("x-"));
        }
    };
    drop(doc);
    for section in ["services", "volumes", "networks", "secrets", "configs"] {
        for definition in doc
            .get_mut(section)
            .and_then(Value::as_object_mut)
            .into_iter()
            .flat_map(|map| map.values_mut())
        {
            drop(definition);
        }
    }
}

/// Turns each service's plain network memberships into [`MEMBER`].
fn mark_memberships(doc: &mut Value) {
    for service in doc
        .get_mut("services")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|map| map.values_mut())
    {
        for network in service
            .get_mut("networks")
            .and_then(Value::as_object_mut)
            .into_iter()
            .flat_map(|map| map.values_mut())
        {
            if is_empty(network) {
                *network = MEMBER.into();
            }
        }
    }
}

fn drop_empty(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for child in map.values_mut() {
                drop_empty(child);
            }
            map.retain(|_, child| !is_empty(child));
        }
        Value::Array(items) => items.iter_mut().for_each(drop_empty),
        _ => {}
    }
}

/// The name berth gives a Compose name, by the README's rule (written here again, not
/// taken from the importer, so that the test checks the importer's rule).
fn expected_name(name: &str) -> String {
    name.chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '_') => c,
            _ => '-',
        })
        .collect()
}

/// New name → old name of every service the original names in a way berth cannot hold.
fn renamed_services(original: &Value) -> BTreeMap<String, String> {
    original["services"]
        .as_object()
        .into_iter()
        .flat_map(|map| map.keys())
        .filter(|name| expected_name(name) != **name)
        .map(|name| (expected_name(name), name.clone()))
        .collect()
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// Renames the keys of `map` as berth would; two keys that become one fail the test
/// (berth would have to refuse them or keep both).
fn rename_keys(map: &mut serde_json::Map<String, Value>) {
    let entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
    for (key, value) in entries {
        let renamed = expected_name(&key);
        assert!(
            map.insert(renamed.clone(), value).is_none(),
            "two names become `{renamed}` (one is `{key}`)"
        );
    }
}

fn rename_references(service: &mut serde_json::Map<String, Value>) {
    for key in ["depends_on", "networks"] {
        if let Some(map) = service.get_mut(key).and_then(Value::as_object_mut) {
            rename_keys(map);
        }
    }
    if let Some(mode) = service.get("network_mode").and_then(Value::as_str)
        && let Some(other) = mode.strip_prefix("service:")
    {
        let renamed = format!("service:{}", expected_name(other));
        service.insert("network_mode".into(), renamed.into());
    }
    if let Some(mounts) = service.get_mut("volumes").and_then(Value::as_array_mut) {
        for mount in mounts {
            if mount.get("type").and_then(Value::as_str) == Some("volume")
                && let Some(source) = mount.get("source").and_then(Value::as_str)
            {
                let renamed = expected_name(source);
                mount["source"] = renamed.into();
            }
        }
    }
}

/// Removes the alias `old` from each network of renamed service `name`, and says where
/// it is missing.
fn drop_old_name_alias(
    name: &str,
    old: &str,
    service: &mut serde_json::Map<String, Value>,
) -> Vec<String> {
    let mut missing = Vec::new();
    let Some(networks) = service.get_mut("networks").and_then(Value::as_object_mut) else {
        return vec![format!(
            ".services.{name}.networks: none, so `{old}` resolves nowhere"
        )];
    };
    for (network_name, network) in networks.iter_mut() {
        let Some(aliases) = network.get_mut("aliases").and_then(Value::as_array_mut) else {
            missing.push(format!(
                ".services.{name}.networks.{network_name}: no alias `{old}`"
            ));
            continue;
        };
        let before = aliases.len();
        aliases.retain(|alias| alias.as_str() != Some(old));
        if aliases.len() == before {
            missing.push(format!(
                ".services.{name}.networks.{network_name}.aliases: no alias `{old}`"
            ));
        }
        if aliases.is_empty() {
            *network = MEMBER.into();
        }
    }
    missing
}

/// Differences as `path: what`, sorted.
fn differences(original: &Value, berth: &Value, path: &str, found: &mut Vec<String>) {
    match (original, berth) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let at = format!("{path}.{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => differences(x, y, &at, found),
                    (Some(_), None) => found.push(format!("{at}: only in the original")),
                    (None, Some(_)) => found.push(format!("{at}: only in berth's")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (index, (x, y)) in a.iter().zip(b).enumerate() {
                differences(x, y, &format!("{path}[{index}]"), found);
            }
        }
        (a, b) if a != b => found.push(format!("{path}: {a} vs {b}")),
        _ => {}
    }
}

/// What stays different for one file, and why: (pattern over the difference paths, reason).
/// A pattern is a path prefix in which `*` stands for one name, or, when it holds `: `, one
/// whole difference, word for word (so that a list is exempt only from the one change).
type Known = &'static [(&'static str, &'static str)];

struct Case {
    file: &'static str,
    /// Variables the environment must give for the original to make sense, where the
    /// project's own .env (not in the corpus) would give them.
    env: &'static [(&'static str, &'static str)],
    /// Compose profile to enable; `*` (all) unless the file's profiles exclude each other.
    profile: &'static str,
    /// How many `file:line: key: reason` lines the import prints for keys it cannot keep.
    n_lossy: usize,
    known: Known,
}

const CASES: &[Case] = &[
    Case {
        file: "appwrite",
        env: &[],
        profile: "*",
        n_lossy: 21,
        known: &[],
    },
    Case {
        file: "authentik",
        env: &[],
        profile: "*",
        n_lossy: 0,
        known: &[],
    },
    Case {
        file: "cp-all-in-one",
        env: &[],
        profile: "*",
        n_lossy: 0,
        known: &[],
    },
    Case {
        file: "docker-elk",
        env: &[],
        profile: "*",
        n_lossy: 0,
        known: &[],
    },
    Case {
        file: "dockprom",
        env: &[],
        profile: "*",
        n_lossy: 0,
        known: &[],
    },
    Case {
        file: "frappe",
        env: &[],
        profile: "*",
        n_lossy: 7,
        known: &[],
    },
    Case {
        file: "immich",
        env: &[
            ("UPLOAD_LOCATION", "./library"),
            ("DB_DATA_LOCATION", "./postgres"),
        ],
        profile: "*",
        n_lossy: 1,
        known: &[(
            ".services.immich-server.ports: only in the original",
            "`${EXPOSE_PORT-:2283:2283}` makes the whole port spec a variable; berth's ports are typed",
        )],
    },
    Case {
        file: "jitsi",
        env: &[("CONFIG", "./config")],
        profile: "*",
        n_lossy: 0,
        known: &[],
    },
    Case {
        file: "n8n-ai-starter",
        env: &[],
        profile: "cpu",
        n_lossy: 0,
        known: &[],
    },
    // The same file with its NVIDIA profile: the GPU reservation comes back as it was.
    Case {
        file: "n8n-ai-starter",
        env: &[],
        profile: "gpu-nvidia",
        n_lossy: 0,
        known: &[],
    },
    Case {
        file: "netbox",
        env: &[],
        profile: "*",
        n_lossy: 0,
        known: &[],
    },
    Case {
        file: "opencti",
        env: &[],
        profile: "*",
        n_lossy: 0,
        known: &[],
    },
    Case {
        file: "plausible",
        env: &[],
        profile: "*",
        n_lossy: 0,
        known: &[],
    },
    Case {
        file: "redash",
        env: &[],
        profile: "*",
        n_lossy: 0,
        known: &[],
    },
    Case {
        file: "sentry",
        env: &[],
        profile: "*",
        n_lossy: 5,
        known: &[],
    },
    Case {
        file: "swarmprom",
        env: &[],
        profile: "*",
        n_lossy: 0,
        known: &[],
    },
    Case {
        file: "wazuh",
        env: &[],
        profile: "*",
        n_lossy: 0,
        known: &[],
    },
    Case {
        file: "zabbix",
        env: &[],
        profile: "*",
        n_lossy: 15,
        known: &[],
    },
];

fn matches(pattern: &str, difference: &str) -> bool {
    if pattern.contains(": ") {
        return pattern == difference;
    }
    let path = difference.split(": ").next().unwrap_or(difference);
    let pattern: Vec<&str> = pattern.split('.').collect();
    let path: Vec<&str> = path.split('.').collect();
    pattern.len() <= path.len()
        && pattern.iter().zip(&path).enumerate().all(|(i, (p, s))| {
            *p == "*"
                || p == s
                // The last part may stop before an index: `ports` matches `ports[0]`.
                || (i + 1 == pattern.len() && s.strip_prefix(p).is_some_and(|rest| rest.starts_with('[')))
        })
}

fn corpus() -> PathBuf {
    Path::new(REPO).join("tests/corpus/compose")
}

/// The project folder a user would have: the Compose file, the files its project ships
/// (`_support/<name>`), and empty env files where the project expects the user's own.
fn workspace(name: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("berth-corpus-")
        .tempdir()
        .expect("temp dir");
    let support = corpus().join("_support").join(name);
    if support.is_dir() {
        copy_dir(&support, dir.path());
    }
    let file = dir.path().join(format!("{name}.yml"));
    std::fs::copy(corpus().join(format!("{name}.yml")), &file).expect("copy compose file");
    let text = std::fs::read_to_string(&file).expect("read");
    let mut budget = serde_saphyr::Budget::default();
    budget.enforce_alias_anchor_ratio = false;
    let options = serde_saphyr::options! { budget: Some(budget) };
    let doc: Value =
        serde_saphyr::from_str_with_options(&text, options).expect("corpus file parses");
    for service in doc["services"]
        .as_object()
        .into_iter()
        .flat_map(|s| s.values())
    {
        let files = match &service["env_file"] {
            Value::Array(items) => items.clone(),
            Value::Null => Vec::new(),
            other => vec![other.clone()],
        };
        for entry in files {
            let path = entry
                .as_str()
                .or_else(|| entry["path"].as_str())
                .unwrap_or_default();
            let full = dir.path().join(path);
            if !path.contains(['*', '$']) && !full.exists() {
                std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
                std::fs::write(&full, "").expect("empty env file");
            }
        }
    }
    dir
}

fn compose_json(
    file: &Path,
    project_dir: &Path,
    name: &str,
    profile: &str,
    env: &BTreeMap<String, String>,
) -> Result<Value, String> {
    let output = Command::new(compose())
        .arg("-f")
        .arg(file)
        .arg("--project-directory")
        .arg(project_dir)
        .args([
            "-p",
            name,
            "--profile",
            profile,
            "config",
            "--format",
            "json",
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env)
        .output()
        .expect("run docker compose");
    if output.status.success() {
        Ok(serde_json::from_slice(&output.stdout).expect("compose prints JSON"))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Variables the generated .env.template leaves without a value (required ones, and
/// pass-through ones that default to empty) get one placeholder, on both sides. Names
/// passed through from the host (`host_environment`, listed last) get none: unset, Compose
/// leaves them out on both sides.
fn placeholders(template: &str, case: &Case) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = case
        .env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let before_passed = template
        .split("# == Passed through when set ==")
        .next()
        .unwrap_or_default();
    for line in before_passed.lines() {
        let line = line.strip_prefix("# ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let is_name =
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if is_name && (value.is_empty() || value == "''") {
            env.entry(name.to_string())
                .or_insert_with(|| "1234".to_string());
        }
    }
    env
}

struct Report {
    losses: usize,
    differences: Vec<String>,
}

fn round_trip(case: &Case) -> Report {
    let work = workspace(case.file);
    let berth = Berth::schemas_only();
    let root = berth.root().to_path_buf();
    let file = work.path().join(format!("{}.yml", case.file));
    let mut args = vec![
        "import".to_string(),
        file.display().to_string(),
        "--name".into(),
        case.file.into(),
        "--allow-lossy".into(),
    ];
    if work.path().join(".env").exists() {
        args.extend([
            "--env-file".to_string(),
            work.path().join(".env").display().to_string(),
        ]);
    }
    let imported = run_in(&root, &args);
    imported.code(0);
    let losses = imported
        .stderr
        .lines()
        .filter(|l| l.contains(".yml:"))
        .count();
    let built = run_in(
        &root,
        &[
            "build".into(),
            "--stack".into(),
            case.file.into(),
            "--no-profile".into(),
        ],
    );
    built.code(0);
    let out = root.join("out").join(case.file).join("none");
    let template = std::fs::read_to_string(out.join(".env.template")).expect("template");
    let env = placeholders(&template, case);
    let ours = compose_json(
        &out.join("compose.yaml"),
        work.path(),
        case.file,
        case.profile,
        &env,
    )
    .unwrap_or_else(|e| panic!("{}: compose rejects the regenerated file:\n{e}", case.file));
    let original = compose_json(&file, work.path(), case.file, case.profile, &env)
        .unwrap_or_else(|e| panic!("{}: compose rejects the original:\n{e}", case.file));
    let (mut original, mut ours) = (original, ours);
    let renamed = renamed_services(&original);
    normalise(&mut original, None);
    let mut found = normalise(&mut ours, Some(&renamed));
    differences(&original, &ours, "", &mut found);
    Report {
        losses,
        differences: found,
    }
}

#[test]
fn corpus_round_trips_through_import_build_and_compose() {
    let mut failures = Vec::new();
    let mut summary = Vec::new();
    for case in CASES {
        let report = round_trip(case);
        let unexplained: Vec<&String> = report
            .differences
            .iter()
            .filter(|d| !case.known.iter().any(|(pattern, _)| matches(pattern, d)))
            .collect();
        let unused: Vec<&str> = case
            .known
            .iter()
            .filter(|(pattern, _)| !report.differences.iter().any(|d| matches(pattern, d)))
            .map(|(pattern, _)| *pattern)
            .collect();
        if report.losses != case.n_lossy {
            failures.push(format!(
                "{}: {} keys not kept, {} expected",
                case.file, report.losses, case.n_lossy
            ));
        }
        summary.push(format!(
            "{:<16} {:>3} keys not kept, {:>3} differences ({} known kinds)",
            case.file,
            report.losses,
            report.differences.len(),
            case.known.len()
        ));
        if !unexplained.is_empty() {
            failures.push(format!(
                "{}: unexplained differences:\n  {}",
                case.file,
                unexplained
                    .iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join("\n  ")
            ));
        }
        if !unused.is_empty() {
            failures.push(format!(
                "{}: listed differences that no longer occur: {unused:?}",
                case.file
            ));
        }
    }
    eprintln!("{}", summary.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// zulip.yml mounts secrets only its override example defines: Compose rejects it alone,
/// berth imports it, reports the secrets it cannot keep, and its output is valid.
#[test]
fn zulip_alone_is_rejected_by_compose_and_imported_with_its_secrets_reported() {
    let work = workspace("zulip");
    let file = work.path().join("zulip.yml");
    let original = compose_json(&file, work.path(), "zulip", "*", &BTreeMap::new());
    assert!(original.is_err_and(|e| e.contains("undefined secret")));
    let berth = Berth::schemas_only();
    let root = berth.root().to_path_buf();
    let strict = run_in(&root, &["import".into(), file.display().to_string()]);
    strict
        .code(1)
        .stderr_contains("zulip.yml:7: services.database.secrets[0]: secret `zulip__postgres_password` is not a `file` or `environment` secret");
    assert!(!root.join("modules/stacks/zulip.ncl").exists());
    run_in(
        &root,
        &[
            "import".into(),
            file.display().to_string(),
            "--allow-lossy".into(),
        ],
    )
    .code(0);
    run_in(
        &root,
        &[
            "build".into(),
            "--stack".into(),
            "zulip".into(),
            "--no-profile".into(),
        ],
    )
    .code(0);
    let template =
        std::fs::read_to_string(root.join("out/zulip/none/.env.template")).expect("template");
    let case = Case {
        file: "zulip",
        env: &[],
        profile: "*",
        n_lossy: 0,
        known: &[],
    };
    compose_json(
        &root.join("out/zulip/none/compose.yaml"),
        work.path(),
        "zulip",
        "*",
        &placeholders(&template, &case),
    )
    .unwrap_or_else(|e| panic!("compose rejects the regenerated zulip file:\n{e}"));
}

/// A Compose file added to the corpus is compared too: it needs its case.
#[test]
fn every_corpus_file_has_a_case() {
    let mut files: Vec<String> = std::fs::read_dir(corpus())
        .expect("corpus")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter_map(|name| name.strip_suffix(".yml").map(str::to_string))
        .collect();
    files.sort();
    let mut cases: Vec<String> = CASES.iter().map(|case| case.file.to_string()).collect();
    // zulip.yml is not valid alone: its own test above.
    cases.push("zulip".into());
    cases.sort();
    // A file whose Compose profiles exclude each other has a case per profile.
    cases.dedup();
    assert_eq!(files, cases);
}

#[test]
fn patterns_match_paths_and_their_indexes() {
    assert!(matches(
        ".services.*.ports",
        ".services.a.ports[0].app_protocol: only in the original"
    ));
    assert!(matches(".configs", ".configs: only in the original"));
    assert!(!matches(".services.*.ports", ".services.a.portsx: 1 vs 2"));
    assert!(!matches(".services.a.ports", ".services.b.ports: 1 vs 2"));
    assert!(matches(
        ".services.a.ports: 1 vs 2",
        ".services.a.ports: 1 vs 2"
    ));
    assert!(!matches(
        ".services.a.ports: 1 vs 2",
        ".services.a.ports: 1 vs 3"
    ));
}

/// Runs `berth import in.yml` on `text` in a project with no stacks.
fn import_text(text: &str, extra: &[&str]) -> (crate::support::Output, tempfile::TempDir) {
    let mut args = vec!["import", "in.yml"];
    args.extend(extra);
    Berth::schemas_only().file("in.yml", text).args(args).run()
}

fn stacks_written(root: &Path) -> Vec<String> {
    std::fs::read_dir(root.join("modules/stacks"))
        .expect("stacks folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn bad_input_names_file_line_and_key_and_writes_nothing() {
    let cases: &[(&str, &str)] = &[
        (
            "services:\n  web:\n    image: [a\n",
            "in.yml:3:12: unclosed bracket",
        ),
        ("- a\n- b\n", "a Compose file is a mapping with `services`"),
        (
            "services:\n  - web\n",
            "in.yml:2: services: `services` must be a mapping",
        ),
        (
            "services: {web: {image: x}}\nservises: {}\n",
            "in.yml:2: servises: not a top-level Compose key",
        ),
        (
            "services:\n  web:\n    image: x\n    imgae: y\n",
            "in.yml:4: services.web.imgae: `imgae` is not a Compose service key",
        ),
        (
            "services:\n  web:\n    image: x\n  web:\n    image: y\n",
            "in.yml:4:3: duplicate mapping key: web",
        ),
        (
            "services:\n  web: 3\n",
            "in.yml:2: services.web: a service must be a mapping",
        ),
        ("volumes: {}\n", "services: a Compose file needs `services`"),
        (
            "services:\n  web:\n    extends: nothere\n",
            "in.yml:3: extends: no service `nothere` to extend",
        ),
        ("", "a Compose file is a mapping"),
    ];
    for (text, expected) in cases {
        let (out, dir) = import_text(text, &[]);
        out.code(2).stderr_contains(expected);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert!(
            stacks_written(dir.path()).is_empty(),
            "{text:?} wrote a module"
        );
    }
    let (missing, dir) = Berth::schemas_only().args(["import", "nothere.yml"]).run();
    missing.code(2).stderr_contains("nothere.yml: No such file");
    assert!(stacks_written(dir.path()).is_empty());
    let (bad_env, dir) = Berth::schemas_only()
        .file("in.yml", "services: {web: {image: x}}\n")
        .file("bad.env", "A=1\nB='open\n")
        .args(["import", "in.yml", "--env-file", "bad.env"])
        .run();
    bad_env
        .code(2)
        .stderr_contains("bad.env: line 2: unterminated '-quoted value");
    assert!(stacks_written(dir.path()).is_empty());
}

#[test]
fn interpolations_become_declared_variables_and_credentials_stay_out() {
    let compose = "name: Shop\nservices:\n  web:\n    image: \"nginx:${TAG:-1.27}\"\n    ports: [\"${PORT:-8080}:80\"]\n    environment:\n      DB_PASSWORD: ${DB_PASSWORD:?set the database password}\n      GREETING: \"cost $$5 for $USER_NAME\"\n";
    let (out, dir) = Berth::schemas_only()
        .file("in.yml", compose)
        .file("in.env", "DB_PASSWORD=hunter2\nUSER_NAME=ada\n")
        .args(["import", "in.yml", "--env-file", "in.env"])
        .run();
    out.code(0).stdout_contains("as stack `shop`");
    let module =
        std::fs::read_to_string(dir.path().join("modules/stacks/shop.ncl")).expect("module");
    assert!(
        !module.contains("hunter2"),
        "a credential's value reached the module:\n{module}"
    );
    assert!(module.contains("image = \"nginx:${TAG}\""), "{module}");
    assert!(module.contains("published = \"${PORT}\""), "{module}");
    assert!(
        module.contains("GREETING = \"cost $5 for ${USER_NAME}\""),
        "{module}"
    );
    let root = dir.path().to_path_buf();
    run_in(
        &root,
        &[
            "build".into(),
            "--stack".into(),
            "shop".into(),
            "--no-profile".into(),
        ],
    )
    .code(0);
    let compose_out =
        std::fs::read_to_string(root.join("out/shop/none/compose.yaml")).expect("compose");
    assert!(compose_out.contains("nginx:${TAG:-1.27}"), "{compose_out}");
    assert!(compose_out.contains("${PORT:-8080}"), "{compose_out}");
    assert!(
        compose_out.contains("cost $$5 for ${USER_NAME:-ada}"),
        "{compose_out}"
    );
    assert!(compose_out.contains("${DB_PASSWORD:?"), "{compose_out}");
    assert!(!compose_out.contains("hunter2"));
    let template =
        std::fs::read_to_string(root.join("out/shop/none/.env.template")).expect("template");
    assert!(
        template.contains("TAG=1.27") && template.contains("PORT=8080"),
        "{template}"
    );
    assert!(template.contains("set the database password"), "{template}");
}

/// Compose's secrets: file ones (an interpolated path frozen to the env file's value, and
/// said) and environment ones become secret variables, mounted at the same /run/secrets
/// path (short and long syntax, relative and absolute targets); what berth cannot say
/// (`mode`, a target outside /run/secrets, an undefined or external secret) is listed,
/// and a secret nobody mounts is left out as Compose leaves it out. The module builds and
/// compose reads the same secrets from it.
#[test]
fn file_secrets_become_secret_variables_mounted_where_compose_mounts_them() {
    let compose = concat!(
        "services:\n",
        "  db:\n",
        "    image: x\n",
        "    environment: { MYSQL_USER_FILE: /run/secrets/MYSQL_USER }\n",
        "    secrets:\n",
        "      - MYSQL_USER\n",
        "      - source: db_password\n",
        "      - source: server-key.pem\n",
        "        target: /run/secrets/key.pem\n",
        "        mode: 0400\n",
        "      - source: api_token\n",
        "        target: token\n",
        "      - source: db_password\n",
        "        target: /etc/db/password\n",
        "      - nowhere\n",
        "      - outside\n",
        "secrets:\n",
        "  MYSQL_USER: { file: \"${SECRETS_DIR}/mysql_user\" }\n",
        "  db_password: { file: ./secrets/db_password.txt }\n",
        "  server-key.pem: { file: ./secrets/server.key }\n",
        "  api_token: { environment: API_TOKEN }\n",
        "  outside: { external: true }\n",
        "  unused: { file: ./secrets/unused }\n",
    );
    let (out, dir) = Berth::schemas_only()
        .file("in.yml", compose)
        .file("in.env", "SECRETS_DIR=./secrets\n")
        .args([
            "import",
            "in.yml",
            "--env-file",
            "in.env",
            "--name",
            "db",
            "--allow-lossy",
        ])
        .run();
    out.code(0);
    let lost: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("in.yml:"))
        .collect();
    for expected in [
        "in.yml:10: services.db.secrets[2].mode: secret `mode: 400` has no berth field",
        "in.yml:13: services.db.secrets[4]: secret `db_password` at /etc/db/password: berth mounts secrets under /run/secrets only",
        "in.yml:15: services.db.secrets[5]: secret `nowhere` is not a `file` or `environment` secret",
        "in.yml:16: services.db.secrets[6]: secret `outside` is not a `file` or `environment` secret",
        "in.yml:18: secrets.MYSQL_USER.file: \"${SECRETS_DIR}/mysql_user\" is fixed to \"./secrets/mysql_user\"",
        "in.yml:22: secrets.outside.external: secret `external: true` has no berth field",
    ] {
        assert!(
            lost.iter().any(|l| l.contains(expected)),
            "{expected}:\n{lost:#?}"
        );
    }
    assert_eq!(lost.len(), 6, "{lost:#?}");
    let module = std::fs::read_to_string(dir.path().join("modules/stacks/db.ncl")).expect("module");
    for expected in [
        "file = \"./secrets/mysql_user\"",
        "file = \"./secrets/db_password.txt\"",
        "SERVER_KEY_PEM = {",
        "variable = \"MYSQL_USER\",\n          target = \"MYSQL_USER\",",
        "\"DB_PASSWORD\",",
        "variable = \"SERVER_KEY_PEM\",\n          target = \"key.pem\",",
        "variable = \"API_TOKEN\",\n          target = \"token\",",
    ] {
        assert!(module.contains(expected), "{expected}:\n{module}");
    }
    assert!(!module.contains("UNUSED"), "{module}");
    let root = dir.path().to_path_buf();
    run_in(
        &root,
        &[
            "build".into(),
            "--stack".into(),
            "db".into(),
            "--no-profile".into(),
        ],
    )
    .code(0);
    let env = BTreeMap::from([("API_TOKEN".to_string(), "t".to_string())]);
    let ours = compose_json(
        &root.join("out/db/none/compose.yaml"),
        &root,
        "db",
        "*",
        &env,
    )
    .unwrap_or_else(|e| panic!("compose rejects the imported secrets:\n{e}"));
    let secrets: BTreeMap<String, Value> =
        serde_json::from_value(ours["secrets"].clone()).expect("secrets");
    assert_eq!(
        secrets.keys().collect::<Vec<_>>(),
        ["MYSQL_USER", "db_password", "key.pem", "token"]
    );
    assert_eq!(
        secrets["db_password"]["file"],
        root.join("secrets/db_password.txt").display().to_string()
    );
    let targets: Vec<&str> = ours["services"]["db"]["secrets"]
        .as_array()
        .expect("mounts")
        .iter()
        .map(|m| m["target"].as_str().expect("target"))
        .collect();
    assert_eq!(
        targets,
        [
            "/run/secrets/MYSQL_USER",
            "/run/secrets/db_password",
            "/run/secrets/key.pem",
            "/run/secrets/token"
        ]
    );
}

/// A healthcheck timing or restart policy that is one variable stays a variable when its
/// default (else its env-file value) is a value of the field; otherwise it is fixed and listed.
/// An anonymous volume stays anonymous.
#[test]
fn typed_fields_keep_their_variables_and_anonymous_volumes_stay() {
    let compose = "services:\n  web:\n    image: x\n    restart: ${RESTART:-unless-stopped}\n    volumes: [/var/lib/x]\n    healthcheck:\n      test: [CMD, \"true\"]\n      interval: $HC_INTERVAL\n      timeout: ${HC_TIMEOUT:-soon}\n      retries: ${HC_RETRIES:-3}\n";
    let (out, dir) = Berth::schemas_only()
        .file("in.yml", compose)
        .file("in.env", "HC_INTERVAL=45s\n")
        .args([
            "import",
            "in.yml",
            "--env-file",
            "in.env",
            "--name",
            "web",
            "--allow-lossy",
        ])
        .run();
    out.code(0);
    // Only the timeout is lost: "soon" is no duration.
    let lost: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("in.yml:"))
        .collect();
    assert!(!lost.is_empty(), "{}", out.stderr);
    assert!(
        lost.iter()
            .all(|l| l.contains("in.yml:9: services.web.healthcheck.timeout")),
        "{}",
        out.stderr
    );
    let module =
        std::fs::read_to_string(dir.path().join("modules/stacks/web.ncl")).expect("module");
    for expected in [
        "restart = \"${RESTART}\"",
        "interval = \"${HC_INTERVAL}\"",
        "retries = \"${HC_RETRIES}\"",
        "target = \"/var/lib/x\",",
    ] {
        assert!(module.contains(expected), "lacks {expected}:\n{module}");
    }
    let root = dir.path().to_path_buf();
    run_in(
        &root,
        &[
            "build".into(),
            "--stack".into(),
            "web".into(),
            "--no-profile".into(),
        ],
    )
    .code(0);
    let compose_out =
        std::fs::read_to_string(root.join("out/web/none/compose.yaml")).expect("compose");
    for expected in [
        "${RESTART:-unless-stopped}",
        "${HC_INTERVAL:-45s}",
        "${HC_RETRIES:-3}",
        "target: /var/lib/x",
    ] {
        assert!(
            compose_out.contains(expected),
            "lacks {expected}:\n{compose_out}"
        );
    }
}

#[test]
fn lossy_keys_are_listed_and_kept_as_comments_only_when_allowed() {
    let compose = "services:\n  web:\n    image: x\n    ipc: [shareable]\n    deploy:\n      update_config: {parallelism: 2}\n";
    let (refused, dir) = import_text(compose, &[]);
    refused
        .code(1)
        .stderr_contains("in.yml:4: services.web.ipc: `ipc` has no berth field")
        .stderr_contains("in.yml:6: services.web.deploy.update_config:")
        .stderr_contains("nothing was written");
    assert!(stacks_written(dir.path()).is_empty());
    let (allowed, dir) = import_text(compose, &["--allow-lossy", "--name", "web"]);
    allowed.code(0);
    let module =
        std::fs::read_to_string(dir.path().join("modules/stacks/web.ncl")).expect("module");
    assert!(module.contains("#   line 4: services.web.ipc:"), "{module}");
    assert!(
        module.contains("# not imported (ipc): [\"shareable\"]"),
        "{module}"
    );
    let again = run_in(
        dir.path(),
        &[
            "import".into(),
            "in.yml".into(),
            "--allow-lossy".into(),
            "--name".into(),
            "web".into(),
        ],
    );
    again.code(2).stderr_contains("exists already");
}

/// `--out`, `--force`, credential-looking names, `- NAME` pass-through, a renamed service
/// and its old name as an alias, and a variable frozen in a typed field that cannot hold one.
#[test]
fn import_options_names_and_credentials_follow_the_readme() {
    let compose = "services:\n  Web.App:\n    image: nginx\n    stop_signal: ${STOP:-SIGQUIT}\n    environment:\n      - PASSTHRU\n      - API_TOKEN=${API_TOKEN}\n      - SIGNING_KEY=${SIGNING_KEY}\n      - REGION=${REGION}\n  other:\n    image: busybox\n    depends_on: [Web.App]\n";
    let (refused, dir) = Berth::schemas_only()
        .file("in.yml", compose)
        .file(
            "in.env",
            "API_TOKEN=tok-123\nSIGNING_KEY=key-456\nREGION=eu\n",
        )
        .args(["import", "in.yml", "--env-file", "in.env", "--name", "imp"])
        .run();
    refused.code(1).stderr_contains(
        "in.yml:4: services.Web.App.stop_signal: \"${STOP:-SIGQUIT}\" is fixed to \"SIGQUIT\"",
    );
    assert!(stacks_written(dir.path()).is_empty());
    let root = dir.path().to_path_buf();
    let import = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "import",
            "in.yml",
            "--env-file",
            "in.env",
            "--name",
            "imp",
            "--allow-lossy",
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|s| s.to_string()));
        run_in(&root, &args)
    };
    import(&["--out", "elsewhere/imp.ncl"]).code(0);
    assert!(
        root.join("elsewhere/imp.ncl").exists(),
        "--out was not used"
    );
    assert!(
        stacks_written(&root).is_empty(),
        "--out also wrote modules/stacks"
    );
    import(&[]).code(0);
    let module_path = root.join("modules/stacks/imp.ncl");
    let module = std::fs::read_to_string(&module_path).expect("module");
    assert_eq!(
        module,
        std::fs::read_to_string(root.join("elsewhere/imp.ncl")).expect("--out module")
    );
    for value in ["tok-123", "key-456"] {
        assert!(
            !module.contains(value),
            "a credential's value reached the module"
        );
    }
    // An existing module is replaced only with --force.
    std::fs::write(&module_path, "edited\n").expect("edit");
    import(&[]).code(2).stderr_contains("exists already");
    assert_eq!(
        std::fs::read_to_string(&module_path).expect("module"),
        "edited\n"
    );
    import(&["--force"]).code(0);
    assert_eq!(
        std::fs::read_to_string(&module_path).expect("module"),
        module
    );

    run_in(
        &root,
        &[
            "build".into(),
            "--stack".into(),
            "imp".into(),
            "--no-profile".into(),
        ],
    )
    .code(0);
    let out = root.join("out/imp/none");
    let compose: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(out.join("compose.yaml")).expect("compose"),
    )
    .expect("parse");
    let web = &compose["services"]["web-app"];
    assert_eq!(
        web["stop_signal"], "SIGQUIT",
        "the variable is frozen to its value"
    );
    assert_eq!(
        web["networks"]["default"]["aliases"],
        serde_json::json!(["Web.App"])
    );
    assert_eq!(
        compose["services"]["other"]["depends_on"]["web-app"]["condition"],
        "service_started"
    );
    let env = &web["environment"];
    // Passed through from the host, as Compose does: set only where the host sets it.
    assert_eq!(env["PASSTHRU"], Value::Null);
    assert!(
        web["environment"]
            .as_object()
            .is_some_and(|env| env.contains_key("PASSTHRU")),
        "{web}"
    );
    assert_eq!(env["REGION"], "${REGION:-eu}");
    for name in ["API_TOKEN", "SIGNING_KEY"] {
        assert_eq!(
            env[name],
            format!("${{{name}:?{name} is a secret: set it in .env, see .env.template}}")
        );
    }
}

/// The service-level resource keys become `resources` with the same engine meaning, and
/// the runtime keys berth now holds (dns, tty, stdin_open, pid, security_opt) come back
/// as Compose reads them: `docker compose config` of the original and of berth's file agree.
#[test]
fn legacy_resources_and_runtime_keys_round_trip() {
    let compose = "services:\n  web:\n    image: busybox\n    mem_limit: 512m\n    mem_reservation: 128m\n    cpus: 0.5\n    cpu_shares: 512\n    dns: 10.0.0.2\n    dns_search: [example.internal]\n    dns_opt: [\"ndots:2\"]\n    tty: true\n    stdin_open: true\n    pid: host\n    security_opt: [\"no-new-privileges:true\"]\n";
    let (out, dir) = import_text(compose, &["--allow-lossy", "--name", "web"]);
    out.code(0)
        .stderr_contains("in.yml:7: services.web.cpu_shares: `cpu_shares` is a relative weight");
    let lossy = out.stderr.lines().filter(|l| l.contains("in.yml:")).count();
    assert_eq!(lossy, 1, "only cpu_shares is lost:\n{}", out.stderr);
    let root = dir.path().to_path_buf();
    run_in(
        &root,
        &[
            "build".into(),
            "--stack".into(),
            "web".into(),
            "--no-profile".into(),
        ],
    )
    .code(0);
    let env = BTreeMap::new();
    let ours = compose_json(
        &root.join("out/web/none/compose.yaml"),
        &root,
        "web",
        "*",
        &env,
    )
    .expect("compose reads berth's file");
    let original =
        compose_json(&root.join("in.yml"), &root, "web", "*", &env).expect("compose reads it");
    let (ours, original) = (&ours["services"]["web"], &original["services"]["web"]);
    for key in [
        "dns",
        "dns_search",
        "dns_opt",
        "tty",
        "stdin_open",
        "pid",
        "security_opt",
    ] {
        assert_eq!(ours[key], original[key], "{key}");
        assert!(!ours[key].is_null(), "{key} missing");
    }
    let limits = &ours["deploy"]["resources"]["limits"];
    assert_eq!(limits["memory"], original["mem_limit"], "{ours}");
    assert_eq!(limits["cpus"], original["cpus"], "{ours}");
    assert_eq!(
        ours["deploy"]["resources"]["reservations"]["memory"],
        original["mem_reservation"]
    );

    // Compose refuses distinct values in the two spellings, and so does the import.
    let both = "services:\n  web:\n    image: busybox\n    mem_limit: 512m\n    deploy:\n      resources:\n        limits: {memory: 256m}\n";
    let (refused, dir) = import_text(both, &["--allow-lossy"]);
    refused.code(2).stderr_contains(
        "in.yml:4: services.web.mem_limit: differs from deploy.resources.limits.memory",
    );
    assert!(stacks_written(dir.path()).is_empty());
    let (other_pid, _dir) = import_text(
        "services:\n  web:\n    image: busybox\n    pid: \"service:db\"\n",
        &[],
    );
    other_pid.code(1).stderr_contains(
        "in.yml:4: services.web.pid: `pid: service:db`: berth's `pid` holds \"host\" only",
    );
}

/// Compose's two spellings of a GPU reservation become `gpus`; a device that is not a GPU
/// is listed, not kept.
#[test]
fn gpu_reservations_in_either_spelling_become_gpus() {
    let compose = "services:\n  all:\n    image: x\n    gpus: all\n  two:\n    image: x\n    gpus:\n      - driver: nvidia\n        count: 2\n  tpu:\n    image: x\n    deploy:\n      resources:\n        reservations:\n          devices:\n            - driver: tpu\n              capabilities: [tpu]\n";
    let (out, dir) = import_text(compose, &["--allow-lossy", "--name", "gpu"]);
    out.code(0).stderr_contains(
        "in.yml:16: services.tpu.deploy.resources.reservations.devices: only `capabilities: [gpu]` devices",
    );
    let lossy = out.stderr.lines().filter(|l| l.contains("in.yml:")).count();
    assert_eq!(lossy, 1, "{}", out.stderr);
    let root = dir.path().to_path_buf();
    run_in(
        &root,
        &[
            "build".into(),
            "--stack".into(),
            "gpu".into(),
            "--no-profile".into(),
        ],
    )
    .code(0);
    let ours = compose_json(
        &root.join("out/gpu/none/compose.yaml"),
        &root,
        "gpu",
        "*",
        &BTreeMap::new(),
    )
    .expect("compose reads berth's file");
    let devices = |service: &str| {
        ours["services"][service]["deploy"]["resources"]["reservations"]["devices"].clone()
    };
    assert_eq!(
        devices("all"),
        serde_json::json!([{ "driver": "nvidia", "count": -1, "capabilities": ["gpu"] }])
    );
    assert_eq!(
        devices("two"),
        serde_json::json!([{ "driver": "nvidia", "count": 2, "capabilities": ["gpu"] }])
    );
}

/// Compose's `configs`: a `file` config becomes a read-only bind mount at its target (the
/// default target is `/<name>`), a `content` config a generated file with that text; what
/// berth cannot keep (an `environment` config, `uid`/`mode`) is listed with its line.
#[test]
fn configs_become_binds_and_generated_files() {
    let compose = concat!(
        "services:\n",
        "  web:\n",
        "    image: busybox\n",
        "    configs:\n",
        "      - source: site\n",
        "        target: /etc/site.conf\n",
        "      - motd\n",
        "      - source: site\n",
        "        target: /etc/copy.conf\n",
        "        mode: 0440\n",
        "      - token\n",
        // After `configs`, which began the mount list: one `volumes` field still.
        "    volumes: [\"./data:/data\"]\n",
        "configs:\n",
        "  site:\n",
        "    file: ./site.conf\n",
        "  motd:\n",
        "    content: |\n",
        // Compose interpolates a content config: the import freezes it, and says so.
        "      hello \"there\" ${WHO:-you}\n",
        "      second line\n",
        "  token:\n",
        "    environment: TOKEN\n",
    );
    let (out, dir) = import_text(compose, &["--allow-lossy", "--name", "cfg"]);
    out.code(0)
        .stderr_contains("in.yml:10: services.web.configs[2].mode: config `mode: 440` has no berth field")
        .stderr_contains("in.yml:21: configs.token.environment: config `environment: \"TOKEN\"` has no berth field")
        .stderr_contains("configs.motd.content:")
        .stderr_contains("in.yml:11: services.web.configs[3]: config `token` is not a `file` or `content` config");
    let lossy = out.stderr.lines().filter(|l| l.contains("in.yml:")).count();
    assert_eq!(lossy, 4, "{}", out.stderr);
    let root = dir.path().to_path_buf();
    std::fs::write(root.join("site.conf"), "site\n").expect("write site.conf");
    run_in(
        &root,
        &[
            "build".into(),
            "--stack".into(),
            "cfg".into(),
            "--no-profile".into(),
        ],
    )
    .code(0);
    let ours = compose_json(
        &root.join("out/cfg/none/compose.yaml"),
        &root,
        "cfg",
        "*",
        &BTreeMap::new(),
    )
    .expect("compose reads berth's file");
    let volumes = ours["services"]["web"]["volumes"]
        .as_array()
        .expect("volumes")
        .clone();
    let bind_of = |target: &str| {
        volumes
            .iter()
            .find(|volume| volume["target"] == target)
            .unwrap_or_else(|| panic!("no mount at {target}: {volumes:?}"))
            .clone()
    };
    for target in ["/etc/site.conf", "/etc/copy.conf"] {
        let bind = bind_of(target);
        assert_eq!(bind["type"], "bind");
        assert_eq!(bind["read_only"], true);
        assert_eq!(
            bind["source"],
            root.join("site.conf").display().to_string(),
            "{bind}"
        );
    }
    // Generated files sit beside compose.yaml (compose read it from the project folder).
    let motd = bind_of("/motd");
    let source = motd["source"].as_str().expect("source");
    let relative = Path::new(source)
        .strip_prefix(&root)
        .expect("under the project");
    assert_eq!(
        std::fs::read_to_string(root.join("out/cfg/none").join(relative))
            .expect("the generated file"),
        "hello \"there\" you\nsecond line\n"
    );
}

/// Fixed subnets, IPv6 and fixed addresses come back as Compose wrote them; what berth has
/// no field for (an IPAM option, a MAC address) is listed, not kept.
#[test]
fn subnets_and_fixed_addresses_round_trip() {
    let compose = r#"services:
  db:
    image: busybox
    networks:
      back:
        ipv4_address: 172.28.5.10
        ipv6_address: "fd00:28::10"
        mac_address: "02:42:ac:11:65:43"
  web:
    image: busybox
    networks:
      default:
        ipv4_address: 172.29.0.20
networks:
  back:
    enable_ipv6: true
    ipam:
      driver: default
      options:
        foo: bar
      config:
        - subnet: 172.28.0.0/16
          ip_range: 172.28.5.0/24
          gateway: 172.28.5.254
        - subnet: "fd00:28::/64"
  default:
    ipam:
      config:
        - subnet: 172.29.0.0/24
"#;
    let (out, dir) = import_text(compose, &["--allow-lossy", "--name", "net"]);
    out.code(0)
        .stderr_contains("in.yml:8: services.db.networks.back.mac_address: network option `mac_address` has no berth field")
        .stderr_contains("in.yml:19: networks.back.ipam.options: IPAM `options`");
    let lossy = out.stderr.lines().filter(|l| l.contains("in.yml:")).count();
    assert_eq!(lossy, 2, "{}", out.stderr);
    let root = built(&dir, "net");
    let (ours, original) = both_configs(&root, "net", &BTreeMap::new());
    let back = &ours["networks"]["back"];
    assert_eq!(
        back["ipam"]["config"],
        original["networks"]["back"]["ipam"]["config"]
    );
    assert_eq!(back["enable_ipv6"], true);
    assert_eq!(
        ours["networks"]["default"]["ipam"]["config"],
        original["networks"]["default"]["ipam"]["config"]
    );
    let db = &ours["services"]["db"]["networks"]["back"];
    assert_eq!(db["ipv4_address"], "172.28.5.10");
    assert_eq!(db["ipv6_address"], "fd00:28::10");
    assert_eq!(
        ours["services"]["web"]["networks"]["default"]["ipv4_address"],
        "172.29.0.20"
    );
}

/// A port Compose publishes on a free host port (`"9090"`, or `target` alone in the long
/// syntax) stays published that way, not turned internal.
#[test]
fn ports_on_a_random_host_port_stay_published() {
    let compose = "services:\n  web:\n    image: busybox\n    ports:\n      - \"9090\"\n      - target: 8080\n        host_ip: 127.0.0.1\n";
    let (out, dir) = import_text(compose, &["--name", "anyport"]);
    out.code(0);
    let root = built(&dir, "anyport");
    let (ours, original) = both_configs(&root, "anyport", &BTreeMap::new());
    assert_eq!(
        ours["services"]["web"]["ports"],
        original["services"]["web"]["ports"]
    );
    assert!(ours["services"]["web"].get("expose").is_none(), "{ours}");
}

/// `${VAR:+text}` is kept (VAR declared empty by default, as Compose reads it unset); the
/// forms berth has no meaning for (`${VAR+text}`, an alternative reading a variable) are
/// fixed to their value and listed.
#[test]
fn alternative_values_are_kept() {
    let compose = "services:\n  web:\n    image: busybox\n    environment:\n      FLAGS: \"-v${DEBUG:+ --debug}\"\n      OTHER: \"${A+set}\"\n";
    let (out, dir) = import_text(compose, &["--allow-lossy", "--name", "alt"]);
    out.code(0)
        .stderr_contains("in.yml:6: services.web.environment.OTHER: `${A+set}` substitutes a value when A is set, even empty");
    let lossy = out.stderr.lines().filter(|l| l.contains("in.yml:")).count();
    assert_eq!(lossy, 1, "{}", out.stderr);
    let root = built(&dir, "alt");
    for env in [
        BTreeMap::new(),
        BTreeMap::from([("DEBUG".to_string(), "1".to_string())]),
    ] {
        let (ours, original) = both_configs(&root, "alt", &env);
        assert_eq!(
            ours["services"]["web"]["environment"]["FLAGS"],
            original["services"]["web"]["environment"]["FLAGS"],
            "{env:?}"
        );
    }
}

/// The project an `import_text` made, with its stack `name` built (no profile).
fn built(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    let root = dir.path().to_path_buf();
    run_in(
        &root,
        &[
            "build".into(),
            "--stack".into(),
            name.into(),
            "--no-profile".into(),
        ],
    )
    .code(0);
    root
}

/// What Compose makes of berth's file for stack `name` and of the imported `in.yml`, with
/// the same environment: (berth's, the original).
fn both_configs(root: &Path, name: &str, env: &BTreeMap<String, String>) -> (Value, Value) {
    let ours = compose_json(
        &root.join(format!("out/{name}/none/compose.yaml")),
        root,
        name,
        "*",
        env,
    )
    .expect("compose reads berth's file");
    let original =
        compose_json(&root.join("in.yml"), root, name, "*", env).expect("compose reads it");
    (ours, original)
}
