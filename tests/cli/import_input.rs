//! `berth import` on names and values berth must refuse: a `--name` that is no stack name,
//! service, volume and network names that cannot become berth names or collide, ports past 65535, a file that is not
//! UTF-8, a document past the size budget. Exit 2, nothing written; what is accepted builds.

use crate::support::{Berth, run_in};

fn stacks_written(root: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("modules/stacks"))
        .expect("stacks folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_name_that_is_no_stack_name_is_refused() {
    for name in ["../../x", "My Shop", "-x", "a/b", ""] {
        let (out, dir) = Berth::schemas_only()
            .file("in.yml", "services: {web: {image: nginx}}\n")
            .args(["import", "in.yml", &format!("--name={name}")])
            .run();
        out.code(2)
            .stderr_contains(&format!("--name {name:?}: not a stack name"))
            .stderr_contains("nothing was written");
        assert!(
            stacks_written(dir.path()).is_empty(),
            "{name:?} wrote a module"
        );
        let escaped = dir.path().parent().expect("parent").join("x.ncl");
        assert!(!escaped.exists(), "{name:?} wrote outside the project");
    }
}

/// Two Compose keys under one berth name would merge into one record in the module (two
/// volumes becoming one), and two the model refuses would make a module that never
/// builds: both are refused at the second key's line, as service names are.
#[test]
fn volumes_networks_and_services_that_collide_are_refused_at_the_second() {
    let web = "services:\n  web:\n    image: nginx\n";
    let cases = [
        (
            format!("{web}volumes:\n  a_b: {{}}\n  a-b: {{}}\n"),
            "in.yml:6: volumes.a-b: `a_b` and `a-b` would both be `a-b` on Kubernetes",
        ),
        (
            format!("{web}volumes:\n  A: {{}}\n  a: {{}}\n"),
            "in.yml:6: volumes.a: `A` and `a` would both be the volume `a` in berth",
        ),
        (
            format!("{web}networks:\n  n.x: {{}}\n  n-x: {{}}\n"),
            "in.yml:6: networks.n-x: `n.x` and `n-x` would both be the network `n-x` in berth",
        ),
        (
            format!("{web}volumes:\n  \"--\": {{}}\n"),
            "in.yml:5: volumes.--: berth cannot hold this volume name",
        ),
        (
            "services:\n  a_b:\n    image: x\n  a-b:\n    image: y\n".to_string(),
            "in.yml:4: services.a-b: `a_b` and `a-b` would both be `a-b` on Kubernetes",
        ),
    ];
    for (text, expected) in cases {
        let (out, dir) = Berth::schemas_only()
            .file("in.yml", &text)
            .args(["import", "in.yml", "--name", "shop"])
            .run();
        out.code(2).stderr_contains(expected);
        assert!(
            stacks_written(dir.path()).is_empty(),
            "{text:?} wrote a module"
        );
    }
    // Networks are no Kubernetes objects and keep distinct engine names: both are kept.
    let (out, dir) = Berth::schemas_only()
        .file(
            "in.yml",
            &format!("{web}networks:\n  a_b: {{}}\n  a-b: {{}}\n"),
        )
        .args(["import", "in.yml", "--name", "shop"])
        .run();
    out.code(0);
    let args = ["build", "--no-profile", "--out", "out"].map(String::from);
    run_in(dir.path(), &args).code(0);
    let compose = std::fs::read_to_string(dir.path().join("out/shop/none/compose.yaml"))
        .expect("compose written");
    assert!(
        compose.contains("  a_b:") && compose.contains("  a-b:"),
        "{compose}"
    );
}

#[test]
fn service_names_berth_cannot_hold_are_refused_and_renamed_ones_build() {
    let cases = [
        (
            "services:\n  \"--\":\n    image: x\n",
            "in.yml:2: services.--: berth cannot hold this service name",
        ),
        (
            "services:\n  a.b:\n    image: x\n  a-b:\n    image: y\n",
            "in.yml:4: services.a-b: `a.b` and `a-b` would both be the service `a-b` in berth",
        ),
    ];
    for (text, expected) in cases {
        let (out, dir) = Berth::schemas_only()
            .file("in.yml", text)
            .args(["import", "in.yml", "--name", "shop"])
            .run();
        out.code(2).stderr_contains(expected);
        assert!(
            stacks_written(dir.path()).is_empty(),
            "{text:?} wrote a module"
        );
    }
    // Names that normalise cleanly are renamed, and the module written builds.
    let text = "services:\n  Web.Front:\n    image: nginx\n    depends_on: [_db]\n  _db:\n    image: postgres\n";
    let (out, dir) = Berth::schemas_only()
        .file("in.yml", text)
        .args(["import", "in.yml", "--name", "shop"])
        .run();
    out.code(0);
    let build = run_in(
        dir.path(),
        &[
            "build".to_string(),
            "--no-profile".to_string(),
            "--out".to_string(),
            "out".to_string(),
        ],
    );
    build.code(0);
    let compose = std::fs::read_to_string(dir.path().join("out/shop/none/compose.yaml"))
        .expect("compose written");
    assert!(
        compose.contains("  web-front:") && compose.contains("  db:"),
        "{compose}"
    );
}

#[test]
fn a_name_from_the_file_that_cannot_be_a_stack_name_asks_for_name() {
    let (out, dir) = Berth::schemas_only()
        .file("in.yml", "name: \"--\"\nservices: {web: {image: nginx}}\n")
        .args(["import", "in.yml"])
        .run();
    out.code(2).stderr_contains("pass --name NAME");
    assert!(stacks_written(dir.path()).is_empty());
}

#[test]
fn a_port_past_65535_is_bad_input_not_a_loss() {
    for (ports, expected) in [
        (
            "[\"99999:80\"]",
            "in.yml:5: services.web.ports[0]: \"99999:80\": port 99999 is out of range (1-65535)",
        ),
        ("[\"8080:70000\"]", "port 70000 is out of range"),
        (
            "[{target: 80, published: 99999}]",
            "in.yml:5: services.web.ports[0]: port 99999 is out of range",
        ),
    ] {
        let text = format!(
            "services:\n  web:\n    image: nginx\n    ports:\n    - {}\n",
            &ports[1..ports.len() - 1]
        );
        let (out, dir) = Berth::schemas_only()
            .file("in.yml", &text)
            .args(["import", "in.yml", "--name", "shop"])
            .run();
        out.code(2).stderr_contains(expected);
        assert!(
            stacks_written(dir.path()).is_empty(),
            "{ports} wrote a module"
        );
    }
}

#[test]
fn a_file_that_is_not_utf8_is_reported_at_its_line() {
    let project = Berth::schemas_only();
    std::fs::write(
        project.root().join("in.yml"),
        b"services:\n  web:\n    image: \"caf\xe9\"\n".as_slice(),
    )
    .expect("write");
    let (out, dir) = project.args(["import", "in.yml", "--name", "shop"]).run();
    out.code(2)
        .stderr_contains("in.yml:3:16: not UTF-8 text (byte 0xe9)");
    assert!(stacks_written(dir.path()).is_empty());
}

#[test]
fn a_document_past_the_budget_gets_a_sentence() {
    let items = vec!["1"; 300_000].join(",");
    let text = format!("services:\n  web:\n    image: nginx\n    labels: [{items}]\n");
    let (out, dir) = Berth::schemas_only()
        .file("in.yml", &text)
        .args(["import", "in.yml", "--name", "shop"])
        .run();
    out.code(2)
        .stderr_contains("the file is too large to import")
        .stderr_contains("YAML nodes");
    assert!(!out.stderr.contains("Nodes {"), "{}", out.stderr);
    assert!(stacks_written(dir.path()).is_empty());
}
