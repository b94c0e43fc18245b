//! `berth build` on the bundled stacks: layout, determinism, text hygiene, --no-profile, list.

use crate::support::{Berth, read_tree};

const STACKS: [&str; 5] = ["aigym", "ape", "freshpoc", "melvin", "rag-engine"];
const PROFILES: [&str; 3] = ["dev", "prod-lite", "staging"];

#[test]
fn builds_every_stack_with_every_profile() {
    let (out, _dir) = Berth::bundled().args(["build"]).run();
    out.code(0);
    let tree = read_tree(&out.root.join("out"));
    for stack in STACKS {
        for profile in PROFILES {
            for file in ["compose.yaml", ".env.template"] {
                let path = std::path::Path::new(stack).join(profile).join(file);
                assert!(tree.contains_key(&path), "missing {}", path.display());
            }
        }
    }
    // Backends write only what a stack and profile call for: no empty files.
    let has = |prefix: &str| tree.keys().any(|path| path.starts_with(prefix));
    for stack in STACKS {
        assert!(
            !has(&format!("{stack}/dev/systemd")),
            "{stack}: dev has no systemd units"
        );
        assert!(
            has(&format!("{stack}/prod-lite/systemd/{stack}.service")),
            "{stack}: prod-lite runs under systemd"
        );
        // prod-lite turns metrics and alerting on, and every bundled stack follows it.
        assert!(
            has(&format!("{stack}/prod-lite/prometheus")),
            "{stack}: prometheus files"
        );
        assert!(
            has(&format!("{stack}/prod-lite/alertmanager")),
            "{stack}: alertmanager in prod-lite"
        );
        assert!(
            !has(&format!("{stack}/staging/alertmanager")),
            "{stack}: staging does not alert"
        );
    }
    for (path, contents) in &tree {
        assert!(!contents.is_empty(), "{} is empty", path.display());
    }
}

#[test]
fn output_is_byte_identical_across_runs_and_clean_text() {
    let (first, _a) = Berth::bundled().args(["build"]).run();
    let (second, _b) = Berth::bundled().args(["build", "-q"]).run();
    first.code(0);
    second.code(0);
    let first = read_tree(&first.root.join("out"));
    let second = read_tree(&second.root.join("out"));
    assert_eq!(first, second, "two builds of the same input differ");
    for (path, bytes) in &first {
        let text = std::str::from_utf8(bytes)
            .unwrap_or_else(|_| panic!("{} is not UTF-8", path.display()));
        assert!(
            !text.contains('\r'),
            "{} has CR line endings",
            path.display()
        );
        assert!(
            text.ends_with('\n') && !text.ends_with("\n\n"),
            "{} must end with exactly one newline",
            path.display()
        );
        assert!(
            !text.lines().any(|line| line.ends_with(' ')),
            "{} has trailing spaces",
            path.display()
        );
    }
}

#[test]
fn compose_files_follow_the_current_spec() {
    let (out, _dir) = Berth::bundled()
        .args(["build", "--stack", "ape", "--profile", "prod-lite"])
        .run();
    out.code(0);
    let compose =
        std::fs::read_to_string(out.root.join("out/ape/prod-lite/compose.yaml")).expect("read");
    let compose = parse(&compose);
    assert!(compose.get("version").is_none(), "obsolete `version:` key");
    assert_eq!(compose["name"], "ape", "project name");
}

/// A compose file, parsed.
fn parse(text: &str) -> serde_json::Value {
    serde_saphyr::from_str(text).expect("parse compose")
}

/// The services of a parsed compose file.
fn services(compose: &serde_json::Value) -> &serde_json::Map<String, serde_json::Value> {
    compose["services"].as_object().expect("services")
}

#[test]
fn partial_build_replaces_only_its_folders() {
    let (first, dir) = Berth::bundled().args(["build"]).run();
    first.code(0);
    let marker = first.root.join("out/melvin/dev/compose.yaml");
    std::fs::write(&marker, "stale\n").expect("write marker");
    let (second, _dir) = Berth::reuse(dir)
        .args(["build", "--stack", "ape", "--profile", "dev"])
        .run();
    second.code(0);
    assert_eq!(
        std::fs::read_to_string(&marker).expect("read"),
        "stale\n",
        "a partial build touched another stack"
    );
}

#[test]
fn no_profile_builds_the_bare_stack() {
    let (out, _dir) = Berth::bundled()
        .args(["build", "--stack", "rag-engine", "--no-profile"])
        .run();
    out.code(0);
    let compose =
        std::fs::read_to_string(out.root.join("out/rag-engine/none/compose.yaml")).expect("read");
    assert!(compose.contains("with profile `none`"));
    // No profile, so no restart policy and no log rotation were merged in.
    let parsed = parse(&compose);
    assert!(services(&parsed).len() >= 3, "{compose}");
    for (name, service) in services(&parsed) {
        assert!(service.get("restart").is_none(), "{name}: {service}");
        assert!(service.get("logging").is_none(), "{name}: {service}");
    }
}

#[test]
fn profiles_apply_their_policies() {
    let (out, _dir) = Berth::bundled().args(["build", "--stack", "melvin"]).run();
    out.code(0);
    let read = |profile: &str| {
        std::fs::read_to_string(out.root.join(format!("out/melvin/{profile}/compose.yaml")))
            .expect("read")
    };
    let (dev, prod) = (parse(&read("dev")), parse(&read("prod-lite")));
    // Six services, Ollama's model pull, and in prod-lite the monitoring with the jobs that
    // give Prometheus and Alertmanager their volumes.
    let jobs = ["ollama-pull", "prometheus-chown", "alertmanager-chown"];
    assert_eq!(services(&prod).len(), 13, "melvin's services");
    assert_eq!(services(&dev).len(), 7, "melvin's services");
    for (name, service) in services(&dev) {
        assert_eq!(service["restart"], "no", "dev: {name}");
        assert!(
            service["deploy"].get("resources").is_none(),
            "dev forces resource caps off: {name}"
        );
    }
    for (name, service) in services(&prod) {
        if jobs.contains(&name.as_str()) {
            assert_eq!(service["restart"], "no", "prod-lite: one-shot {name}");
            continue;
        }
        assert_eq!(service["restart"], "unless-stopped", "prod-lite: {name}");
        assert_eq!(
            service["logging"]["options"]["max-size"], "20m",
            "prod-lite rotates the logs of {name}"
        );
    }
    assert_eq!(
        prod["services"]["ollama"]["deploy"]["resources"]["limits"]["memory"], "8G",
        "ollama's prod-lite cap"
    );
    // Melvin's Postgres on host port 8004: for operators' tools on the server only, outside dev.
    let port = |compose: &serde_json::Value| compose["services"]["postgres"]["ports"][0].clone();
    assert_eq!(port(&prod)["target"], 5432);
    assert_eq!(port(&prod)["published"], "8004");
    assert_eq!(port(&prod)["host_ip"], "127.0.0.1");
    assert_eq!(port(&dev)["published"], "8004");
    assert!(
        port(&dev).get("host_ip").is_none(),
        "dev keeps it on every interface: {}",
        port(&dev)
    );
}

#[test]
fn list_shows_stacks_profiles_and_services() {
    let (out, _dir) = Berth::bundled().args(["list"]).run();
    out.code(0)
        .stdout_contains("profiles: dev, prod-lite, staging\nstacks:\n");
    // Each stack line (two spaces) is followed by its services (four spaces).
    let mut services_of = std::collections::BTreeMap::<&str, Vec<&str>>::new();
    let mut stack = "";
    for line in out.stdout.lines() {
        if let Some(rest) = line.strip_prefix("    ") {
            services_of
                .entry(stack)
                .or_default()
                .extend(rest.split_whitespace().next());
        } else if let Some(rest) = line.strip_prefix("  ") {
            stack = rest.split_whitespace().next().expect("stack name");
        }
    }
    assert_eq!(services_of.keys().copied().collect::<Vec<_>>(), STACKS);
    assert!(
        services_of["freshpoc"].contains(&"query-api"),
        "{services_of:?}"
    );
    assert!(
        !services_of["ape"].contains(&"query-api"),
        "{services_of:?}"
    );
    assert!(services_of["melvin"].contains(&"ollama"), "{services_of:?}");
}

#[test]
fn help_has_examples() {
    let (out, _dir) = Berth::bundled().args(["build", "--help"]).run();
    out.code(0)
        .stdout_contains("berth build --stack ape --profile prod-lite");
}

/// A port without a host port must not be published at all: in compose's long syntax a
/// `target` alone would bind a random host port.
#[test]
fn every_published_port_names_its_host_port() {
    let (out, _dir) = Berth::bundled().args(["build"]).run();
    out.code(0);
    let mut n_ports = 0;
    for (path, bytes) in read_tree(&out.root.join("out")) {
        if !path.ends_with("compose.yaml") {
            continue;
        }
        let compose: serde_json::Value =
            serde_saphyr::from_str(std::str::from_utf8(&bytes).expect("utf-8"))
                .expect("parse compose");
        for (name, service) in compose["services"].as_object().expect("services") {
            for port in service["ports"].as_array().into_iter().flatten() {
                n_ports += 1;
                assert!(
                    port.get("published").is_some(),
                    "{}: {name} publishes {port} on a random host port",
                    path.display()
                );
            }
        }
    }
    assert!(
        n_ports > 50,
        "expected the bundled stacks to publish ports, saw {n_ports}"
    );
}

#[test]
fn a_full_build_removes_stale_files_from_the_output_folder() {
    // Stale: what berth wrote before and no longer makes (a user's own file in out/ is
    // refused instead, never deleted: out_folder.rs).
    let (first, dir) = Berth::bundled().args(["build"]).run();
    first.code(0);
    let before = read_tree(&first.root.join("out"));
    std::fs::remove_file(first.root.join("modules/stacks/melvin.ncl")).expect("drop a stack");
    let (second, _dir) = Berth::reuse(dir).args(["build"]).run();
    second.code(0);
    let after = read_tree(&second.root.join("out"));
    assert!(
        !second.root.join("out/melvin").exists(),
        "a removed stack's files survived a full build"
    );
    let n_melvin = before.keys().filter(|p| p.starts_with("melvin")).count();
    assert!(n_melvin > 0);
    assert_eq!(after.len() + n_melvin, before.len());
    // Every other file is as it was; the marker (berth's list of its files) shrank.
    assert!(
        after
            .iter()
            .filter(|(path, _)| !path.ends_with(".berth-output"))
            .all(|(path, bytes)| before.get(path) == Some(bytes))
    );
}

/// `.env.template` lists every variable under its group with its description, the
/// services that read it, and its default (commented) or its required / secret mark.
#[test]
fn env_template_documents_every_variable() {
    let stack = r#"fun profile => {
  variables = {
    PORT = { description = "Port the app listens on.", group = "Web", default = 8080 },
    API_URL = { description = "Where the worker sends results.", group = "Web" },
    TOKEN = { description = "Signs requests.", group = "Security", secret = true, dev_value = "dev-t" },
    UNUSED = { description = "For operators.", default = "x" },
  },
  services = {
    web = { image = "busybox:1", environment = { PORT = "${PORT}", TOKEN = "${TOKEN}" } },
    worker = { image = "busybox:1", command = ["run", "--port=${PORT}", "${API_URL}"] },
  },
}
"#;
    let (bare, dir) = Berth::schemas_only()
        .file("modules/stacks/envs.ncl", stack)
        .args(["build", "--stack", "envs", "--no-profile"])
        .run();
    bare.code(0);
    let (out, _dir) = Berth::reuse(dir)
        .args(["build", "--stack", "envs", "--profile", "dev"])
        .run();
    out.code(0);
    let template = |profile: &str| {
        std::fs::read_to_string(out.root.join(format!("out/envs/{profile}/.env.template")))
            .expect("template")
    };
    // The block of lines (between blank lines) that sets `name`.
    let block = |text: &str, name: &str| -> Vec<String> {
        text.split("\n\n")
            .find(|block| {
                block.lines().any(|l| {
                    l.starts_with(&format!("{name}=")) || l.starts_with(&format!("# {name}="))
                })
            })
            .unwrap_or_else(|| panic!("{name} is not listed:\n{text}"))
            .lines()
            .map(str::to_string)
            .collect()
    };
    let none = template("none");
    assert_eq!(
        block(&none, "PORT"),
        [
            "# Port the app listens on.",
            "# Read by: web, worker.",
            "# PORT=8080"
        ]
    );
    assert_eq!(
        block(&none, "API_URL"),
        [
            "# Where the worker sends results.",
            "# Read by: worker.",
            "# Required.",
            "API_URL="
        ]
    );
    assert_eq!(
        block(&none, "TOKEN"),
        [
            "# Signs requests.",
            "# Read by: web.",
            "# Secret, required. Never commit the filled-in file.",
            "TOKEN="
        ]
    );
    assert_eq!(
        block(&none, "UNUSED")[1],
        "# Read by no service (kept for scripts and operators)."
    );
    assert!(!none.contains("dev-t"), "{none}");
    // Groups are headings, in order; variables without a group are under General.
    let headings: Vec<&str> = none.lines().filter(|l| l.starts_with("# == ")).collect();
    assert_eq!(
        headings,
        ["# == General ==", "# == Security ==", "# == Web =="]
    );
    let dev = template("dev");
    assert!(
        block(&dev, "TOKEN").contains(
            &"# Unset, this dev build falls back to a throw-away dev-only value.".to_string()
        ),
        "{dev}"
    );
    assert!(
        !dev.contains("dev-t"),
        "the template shows the dev value itself:\n{dev}"
    );
}

/// Every row of the README's merge-rule table, on one stack built with dev and prod-lite.
#[test]
fn merge_rules_resolve_as_the_readme_table_says() {
    let stack = r#"let base = { image = "busybox:1", command | default = ["a", "b"], replicas | default = 1 } in
fun profile => {
  services = {
    plain = base & { command = ["c"] },
    policy = base & { restart = "always", logging = { driver = "local", options = { mode = "non-blocking" } } },
    forced = base & { restart | force = "no" },
    scaled = base,
  },
  overrides.prod-lite.services.scaled.replicas = 2,
}
"#;
    let (out, _dir) = Berth::schemas_only()
        .file("modules/stacks/merge.ncl", stack)
        .args(["build", "--stack", "merge"])
        .run();
    out.code(0);
    let compose = |profile: &str| {
        parse(
            &std::fs::read_to_string(out.root.join(format!("out/merge/{profile}/compose.yaml")))
                .expect("read"),
        )
    };
    let (dev, prod) = (compose("dev"), compose("prod-lite"));
    let service = |doc: &serde_json::Value, name: &str| doc["services"][name].clone();
    // A plain value beats a `| default`; arrays are replaced, never concatenated.
    assert_eq!(service(&prod, "plain")["command"], serde_json::json!(["c"]));
    assert_eq!(
        service(&prod, "scaled")["command"],
        serde_json::json!(["a", "b"])
    );
    // A profile's `| default` (dev's restart "no") is refined by any stack value.
    assert_eq!(service(&dev, "policy")["restart"], "always");
    assert_eq!(service(&dev, "plain")["restart"], "no");
    // A profile's `| priority 10` beats a plain stack value…
    assert_eq!(service(&prod, "policy")["restart"], "unless-stopped");
    // …and a stack's `| force` beats the profile's priority.
    assert_eq!(service(&prod, "forced")["restart"], "no");
    // A stack override for one profile replaces a `| default` base value, there only.
    assert_eq!(service(&prod, "scaled")["deploy"]["replicas"], 2);
    assert!(service(&dev, "scaled")["deploy"].get("replicas").is_none());
    // A profile's `| force` beats everything; on a record it replaces the whole record.
    assert_eq!(
        service(&prod, "policy")["logging"],
        serde_json::json!({ "driver": "json-file", "options": { "max-size": "20m", "max-file": "5" } })
    );
}

/// A full build evaluates several stacks as one Nickel program; one broken stack among
/// them is still reported exactly as when it is built alone, and nothing is written.
#[test]
fn a_broken_stack_among_others_is_reported_as_when_built_alone() {
    let good = "fun profile => { services.web = { image = \"nginx:1\" } }\n";
    let broken = "fun profile => {\n  services.web = {\n    image = \"nginx:1\",\n    enviroment = {},\n  },\n}\n";
    let project = || {
        Berth::schemas_only()
            .file("modules/stacks/a.ncl", good)
            .file("modules/stacks/b.ncl", broken)
            .file("modules/stacks/c.ncl", good)
    };
    let (alone, _dir) = project()
        .args(["build", "--stack", "b", "--profile", "dev", "--out", "out"])
        .run();
    alone.code(2).wrote_nothing();
    let (all, _dir) = project().args(["build", "--out", "out"]).run();
    all.code(2)
        .stderr_contains("modules/stacks/b.ncl:4:5")
        .stderr_contains(alone.stderr.trim())
        .wrote_nothing();
}
