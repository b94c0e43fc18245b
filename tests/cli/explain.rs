//! `berth explain` on the bundled stacks: each answer checked against what the files
//! say (the line that defines the value, its layer and priority, and which won), secrets
//! never printed, an unknown path answered with the field meant, and every field of
//! every stack × profile explained without error.

use std::path::Path;

use serde_json::Value;

use crate::support::{REPO, run_in};

/// `berth explain --format json` on the bundled stacks: the explanation of one path.
fn explain(stack: &str, profile: &str, path: &str) -> Value {
    let args: Vec<String> = [
        "explain",
        "--stack",
        stack,
        "--profile",
        profile,
        "--format",
        "json",
        path,
    ]
    .map(String::from)
    .to_vec();
    let out = run_in(Path::new(REPO), &args);
    out.code(0);
    serde_json::from_str(&out.stdout).expect("explain prints JSON")
}

/// The 1-based line of `file` (in this repository) that holds `needle`, and its column.
fn place_of(file: &str, needle: &str) -> (u64, u64) {
    let text = std::fs::read_to_string(Path::new(REPO).join(file)).expect("read");
    let (index, line) = text
        .lines()
        .enumerate()
        .find(|(_, line)| line.contains(needle))
        .unwrap_or_else(|| panic!("{file} has no line with {needle}"));
    let column = line.find(needle).expect("column") + 1;
    (index as u64 + 1, column as u64)
}

/// The definition of `layer`, asserting there is exactly one.
fn definition<'a>(explanation: &'a Value, layer: &str) -> &'a Value {
    let found: Vec<&Value> = explanation["definitions"]
        .as_array()
        .expect("definitions")
        .iter()
        .filter(|d| d["layer"] == layer)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one `{layer}` definition in {explanation:#}"
    );
    found[0]
}

/// Asserts a definition's layer, priority, outcome, and that its value (or field, with
/// `field`) was written on the line of `file` holding `needle`.
#[track_caller]
fn assert_definition(
    explanation: &Value,
    layer: &str,
    priority: &str,
    status: &str,
    (file, needle): (&str, &str),
) {
    let definition = definition(explanation, layer);
    assert_eq!(definition["priority"], priority, "{definition:#}");
    assert_eq!(definition["outcome"]["status"], status, "{definition:#}");
    let (line, _) = place_of(file, needle);
    let location = if definition["field_location"].is_null() {
        &definition["location"]
    } else {
        &definition["field_location"]
    };
    let at_value = &definition["location"];
    let matches = |location: &Value| location["file"] == file && location["line"] == line;
    assert!(
        matches(location) || matches(at_value),
        "{layer} should be at {file}:{line} ({needle}): {definition:#}"
    );
}

#[test]
fn a_profile_policy_at_priority_10_wins() {
    let e = explain("ape", "prod-lite", "services.api.restart");
    assert_eq!(e["value"], "unless-stopped");
    assert_definition(
        &e,
        "profile service_defaults",
        "priority 10",
        "won",
        ("profiles/prod-lite.ncl", "restart | priority 10"),
    );
}

#[test]
fn forced_logging_decides_its_fields_too() {
    let e = explain("ape", "prod-lite", "services.api.logging");
    assert_definition(
        &e,
        "profile service_defaults",
        "force",
        "won",
        ("profiles/prod-lite.ncl", "logging | force"),
    );
    let leaf = explain("ape", "prod-lite", "services.api.logging.options.max-size");
    assert_eq!(leaf["value"], "20m");
    let d = definition(&leaf, "profile service_defaults");
    assert_eq!(d["inside"], "services.api.logging | force", "{d:#}");
}

#[test]
fn a_forced_override_replaces_the_module_ports() {
    let e = explain("ape", "prod-lite", "services.api.ports");
    assert_definition(
        &e,
        "overrides.prod-lite",
        "force",
        "won",
        (
            "modules/stacks/ape.ncl",
            "ports | force = [berth.publish_private \"8000-8001\"",
        ),
    );
    assert_definition(
        &e,
        "service module",
        "plain",
        "lost",
        ("modules/services/app.ncl", "ports"),
    );
    assert_eq!(e["value"][0]["published"], "8000-8001");
}

#[test]
fn a_stack_override_replaces_a_default() {
    let e = explain("ape", "dev", "services.api.volumes");
    assert_definition(
        &e,
        "overrides.dev",
        "plain",
        "won",
        (
            "modules/stacks/ape.ncl",
            "overrides.dev.services.api.volumes",
        ),
    );
    assert_definition(
        &e,
        "stack",
        "default",
        "lost",
        (
            "modules/stacks/ape.ncl",
            "volumes | default = [berth.volume \"vee_workspace\"",
        ),
    );
    assert_eq!(e["value"].as_array().map(Vec::len), Some(2));
}

#[test]
fn a_plain_override_sets_replicas() {
    let e = explain("ape", "prod-lite", "services.api.replicas");
    assert_eq!(e["value"], 2);
    assert_definition(
        &e,
        "overrides.prod-lite",
        "plain",
        "won",
        ("modules/stacks/ape.ncl", "replicas = 2"),
    );
}

#[test]
fn a_module_default_carries_the_stack_parameter() {
    let e = explain("ape", "prod-lite", "services.timescaledb.image");
    assert_eq!(e["value"], "docker.io/timescale/timescaledb:2.17.2-pg16");
    let d = definition(&e, "service module");
    assert_eq!(d["priority"], "default");
    let (line, _) = place_of("modules/services/postgres.ncl", "image | default = p.image");
    assert_eq!(d["field_location"]["file"], "modules/services/postgres.ncl");
    assert_eq!(d["field_location"]["line"], line);
    let (line, _) = place_of("modules/stacks/ape.ncl", "image = \"docker.io/timescale");
    assert_eq!(d["location"]["line"], line, "{d:#}");
}

#[test]
fn a_module_value_nobody_overrides() {
    let e = explain("ape", "dev", "services.timescaledb.healthcheck.interval");
    assert_eq!(e["value"], "5s");
    assert_definition(
        &e,
        "service module",
        "plain",
        "won",
        ("modules/services/postgres.ncl", "interval = \"5s\""),
    );
}

#[test]
fn profile_settings_and_their_contract_defaults() {
    let e = explain("ape", "prod-lite", "profile.log_level");
    assert_eq!(e["value"], "warning");
    assert_definition(
        &e,
        "profile",
        "plain",
        "won",
        ("profiles/prod-lite.ncl", "log_level = \"warning\""),
    );
    let e = explain("ape", "prod-lite", "profile.quadlet");
    assert_eq!(e["value"], false);
    assert_definition(
        &e,
        "schema default (Profile contract)",
        "default",
        "won",
        ("schemas/profile.ncl", "quadlet | Bool"),
    );
}

#[test]
fn the_stack_name_defaults_to_its_file() {
    let e = explain("ape", "dev", "name");
    assert_eq!(e["value"], "ape");
    let d = definition(&e, "berth (the stack's file name)");
    assert_eq!(d["priority"], "default");
    assert_eq!(d["outcome"]["status"], "won");
}

#[test]
fn a_field_no_layer_sets_shows_the_default_berth_applies() {
    let e = explain("ape", "dev", "services.api.replicas");
    assert!(e["value"].is_null(), "{e:#}");
    assert_eq!(e["schema_default"]["field"], "Service.replicas");
    assert_eq!(e["schema_default"]["default"], "1");
}

#[test]
fn the_dev_profile_forces_resources_away() {
    let e = explain("ape", "dev", "services.timescaledb.resources");
    assert_eq!(e["value"], serde_json::json!({}));
    assert_definition(
        &e,
        "profile service_defaults",
        "force",
        "won",
        ("profiles/dev.ncl", "resources | force = {}"),
    );
}

#[test]
fn a_variable_shows_its_default_and_env_template_line() {
    let e = explain("ape", "prod-lite", "services.api.environment.LOG_LEVEL");
    assert_eq!(e["value"], "${LOG_LEVEL}");
    let variable = &e["variables"][0];
    assert_eq!(variable["name"], "LOG_LEVEL");
    assert_eq!(variable["default"], "warning");
    let template =
        std::fs::read_to_string(Path::new(REPO).join("golden/ape/prod-lite/.env.template"))
            .expect("golden .env.template");
    let line = variable["env_template_line"].as_u64().expect("a line") as usize;
    let text = template.lines().nth(line - 1).expect("line exists");
    assert!(text.contains("LOG_LEVEL="), "line {line}: {text}");
}

#[test]
fn secrets_are_never_printed() {
    let e = explain("ape", "dev", "variables.SECRET_KEY");
    assert_eq!(e["value"]["dev_value"], "<secret>");
    let args: Vec<String> = [
        "explain",
        "--stack",
        "ape",
        "--profile",
        "dev",
        "variables.SECRET_KEY",
    ]
    .map(String::from)
    .to_vec();
    let out = run_in(Path::new(REPO), &args);
    out.code(0).stdout_contains("<secret>");
    assert!(
        !out.stdout.contains("dev-only-secret-key"),
        "{}",
        out.stdout
    );
}

#[test]
fn an_unknown_path_names_the_field_meant() {
    let args: Vec<String> = [
        "explain",
        "--stack",
        "ape",
        "--profile",
        "dev",
        "services.api.imagee",
    ]
    .map(String::from)
    .to_vec();
    run_in(Path::new(REPO), &args)
        .code(2)
        .stderr_contains("no field `services.api.imagee`")
        .stderr_contains("did you mean `services.api.image`?");
}

#[test]
fn a_whole_service_is_explained_as_a_record() {
    let e = explain("ape", "prod-lite", "services.api");
    assert_eq!(e["value"]["replicas"], 2);
    assert_eq!(e["value"]["restart"], "unless-stopped");
    let layers: Vec<&str> = e["definitions"]
        .as_array()
        .expect("definitions")
        .iter()
        .map(|d| d["layer"].as_str().unwrap_or_default())
        .collect();
    for layer in ["overrides.prod-lite", "profile service_defaults"] {
        assert!(layers.contains(&layer), "{layers:?}");
    }
}

/// Every leaf of every bundled stack × profile explains, and no secret shows.
#[test]
fn every_field_of_every_bundled_stack_explains() {
    let stacks = ["aigym", "ape", "freshpoc", "melvin", "rag-engine"];
    for stack in stacks {
        for profile in ["dev", "staging", "prod-lite"] {
            let args: Vec<String> = [
                "explain",
                "--stack",
                stack,
                "--profile",
                profile,
                "--all",
                "--format",
                "json",
            ]
            .map(String::from)
            .to_vec();
            let out = run_in(Path::new(REPO), &args);
            out.code(0);
            let all: Vec<Value> = serde_json::from_str(&out.stdout).expect("JSON");
            assert!(all.len() > 50, "{stack}/{profile}: {} fields", all.len());
            for e in &all {
                assert!(!e["value"].is_null(), "{stack}/{profile}: {e:#}");
                let n_won = e["definitions"]
                    .as_array()
                    .expect("definitions")
                    .iter()
                    .filter(|d| d["outcome"]["status"] != "lost")
                    .count();
                assert!(n_won >= 1, "{stack}/{profile}: nothing won: {e:#}");
            }
            assert!(
                !out.stdout.contains("dev-only-"),
                "{stack}/{profile} printed a secret"
            );
        }
    }
}

/// The definitions of `layer` (any number).
fn definitions_of<'a>(explanation: &'a Value, layer: &str) -> Vec<&'a Value> {
    explanation["definitions"]
        .as_array()
        .expect("definitions")
        .iter()
        .filter(|d| d["layer"] == layer)
        .collect()
}

/// Whether `definition` was written (value or field) on the line of `file` holding `needle`.
fn written_at(definition: &Value, (file, needle): (&str, &str)) -> bool {
    let (line, _) = place_of(file, needle);
    ["location", "field_location"]
        .iter()
        .any(|key| definition[key]["file"] == file && definition[key]["line"] == line)
}

/// Inside the stack layer, the `app { … }` operand and the stack's own `{ services.api = … }`
/// both define the service: each is listed with its own place.
#[test]
fn each_operand_of_the_stack_files_merge_is_a_definition() {
    let e = explain("ape", "prod-lite", "services.api");
    let module = definitions_of(&e, "service module");
    assert_eq!(module.len(), 1, "{e:#}");
    assert!(
        written_at(
            module[0],
            ("modules/services/app.ncl", "services.\"%{p.name}\" = {")
        ),
        "{e:#}"
    );
    let stack = definitions_of(&e, "stack");
    assert_eq!(stack.len(), 1, "{e:#}");
    assert!(
        written_at(stack[0], ("modules/stacks/ape.ncl", "services.api = {")),
        "{e:#}"
    );
    for d in module.iter().chain(&stack) {
        assert_eq!(d["priority"], "plain", "{d:#}");
        assert_eq!(d["outcome"]["status"], "merged", "{d:#}");
    }
    // Two service modules of the same stack file define one record: both are listed.
    let e = explain("ape", "prod-lite", "monitoring.exporters");
    let modules = definitions_of(&e, "service module");
    assert_eq!(modules.len(), 2, "{e:#}");
    assert!(written_at(
        modules[0],
        ("modules/services/postgres.ncl", "monitoring.exporters =")
    ));
    assert!(written_at(
        modules[1],
        ("modules/services/redis.ncl", "monitoring.exporters =")
    ));
    assert_eq!(e["value"]["timescaledb-exporter"], "postgres", "{e:#}");
    assert_eq!(e["value"]["redis-exporter"], "redis", "{e:#}");
}

/// In a project of a user's own, outside this repository (`berth init`), a stack file
/// whose operands set one field at two priorities: both are listed with their line,
/// column and priority, and the plain one wins over the `| default` one.
#[test]
fn operands_at_two_priorities_in_a_user_project() {
    let dir = tempfile::Builder::new()
        .prefix("berth-explain-")
        .tempdir()
        .expect("temp dir");
    assert!(!dir.path().starts_with(REPO), "outside the repository");
    let cache = tempfile::tempdir().expect("cache dir");
    let berth = |cwd: &Path, args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(args)
            .current_dir(cwd)
            .env("BERTH_CACHE_DIR", cache.path())
            .env_remove("RUST_LOG")
            .output()
            .expect("run berth");
        assert!(
            output.status.success(),
            "berth {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    berth(dir.path(), &["init", "shop"]);
    let project = dir.path().join("shop");
    let stack_file = project.join("modules/stacks/shop.ncl");
    let stack = std::fs::read_to_string(&stack_file).expect("stack");
    // Two more operands, after the example's own record: one field at two priorities.
    let stack = format!(
        "{}\n  & {{ services.web.stop_grace_period | default = \"10s\" }}\n  & {{ services.web.stop_grace_period = \"30s\" }}\n",
        stack.trim_end()
    );
    std::fs::write(&stack_file, &stack).expect("write stack");
    let json = berth(
        &project,
        &[
            "explain",
            "--stack",
            "shop",
            "--profile",
            "dev",
            "--format",
            "json",
            "services.web.stop_grace_period",
        ],
    );
    let e: Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(e["value"], "30s", "{e:#}");
    let stack_defs = definitions_of(&e, "stack");
    assert_eq!(stack_defs.len(), 2, "{e:#}");
    // Places are of the values (the strings), found here by their own text.
    let line_col = |needle: &str| {
        let (index, line) = stack
            .lines()
            .enumerate()
            .find(|(_, line)| line.contains(needle))
            .expect("needle");
        (
            index as u64 + 1,
            line.find(needle).expect("column") as u64 + 1,
        )
    };
    for (definition, (needle, priority, status)) in stack_defs
        .iter()
        .zip([("\"10s\"", "default", "lost"), ("\"30s\"", "plain", "won")])
    {
        let (line, column) = line_col(needle);
        assert_eq!(definition["priority"], priority, "{e:#}");
        assert_eq!(definition["outcome"]["status"], status, "{e:#}");
        assert_eq!(definition["location"]["file"], "modules/stacks/shop.ncl");
        assert_eq!(definition["location"]["line"], line, "{e:#}");
        assert_eq!(definition["location"]["column"], column, "{e:#}");
    }
    assert!(
        e["why"]
            .as_str()
            .is_some_and(|why| why.contains("over stack (default)")),
        "{e:#}"
    );
}

/// After a build of the same inputs, explain takes the cached build's word that the stack
/// evaluates and evaluates `finalize` with the layers: the answer is the same.
#[test]
fn a_cached_build_stands_in_for_the_first_evaluation() {
    let cache = tempfile::tempdir().expect("cache dir");
    let out = tempfile::tempdir().expect("out dir");
    let cache_dir = cache.path().display().to_string();
    let strings = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let explain_args = |cache: &[&str]| {
        let mut args = strings(&["-vv", "explain", "--stack", "ape", "--profile", "prod-lite"]);
        args.extend(strings(cache));
        args.extend(strings(&[
            "--format",
            "json",
            "services.api",
            "name",
            "monitoring.exporters",
        ]));
        args
    };
    let uncached = run_in(Path::new(REPO), &explain_args(&["--no-cache"]));
    uncached.code(0);
    run_in(
        Path::new(REPO),
        &strings(&[
            "build",
            "--cache-dir",
            &cache_dir,
            "--stack",
            "ape",
            "--profile",
            "prod-lite",
            "--out",
            &out.path().join("out").display().to_string(),
        ]),
    )
    .code(0);
    let cached = run_in(Path::new(REPO), &explain_args(&["--cache-dir", &cache_dir]));
    cached
        .code(0)
        .stderr_contains("a cached build stands in for evaluating the stack apart");
    assert!(
        !uncached.stderr.contains("a cached build stands in"),
        "{}",
        uncached.stderr
    );
    assert_eq!(cached.stdout, uncached.stdout);
}
