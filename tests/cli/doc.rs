//! `berth doc`: the committed reference is current, every schema field is documented
//! with its default, and the HTML page's search box filters as a person types into it
//! in a real headless chromium.

use std::path::Path;
use std::process::Command;

use crate::support::{Berth, REPO, run_in};

/// `berth doc --out <temp>` on this repository: the folder holding both files.
fn generate() -> tempfile::TempDir {
    let out = tempfile::Builder::new()
        .prefix("berth-doc-")
        .tempdir()
        .expect("temp dir");
    let args = vec![
        "doc".to_string(),
        "--out".to_string(),
        out.path().display().to_string(),
    ];
    run_in(Path::new(REPO), &args).code(0);
    out
}

#[test]
fn the_committed_reference_is_current() {
    let out = generate();
    for file in ["options.md", "options.html"] {
        let fresh = std::fs::read_to_string(out.path().join(file)).expect("generated");
        let committed =
            std::fs::read_to_string(Path::new(REPO).join("docs").join(file)).unwrap_or_default();
        assert!(
            fresh == committed,
            "docs/{file} is stale: run `cargo run -- doc --out docs` and commit it"
        );
    }
}

#[test]
fn the_reference_lists_every_record_and_module() {
    let out = generate();
    let markdown = std::fs::read_to_string(out.path().join("options.md")).expect("md");
    for heading in [
        "## Stack",
        "## Service",
        "## Volume",
        "## Network",
        "## Variable",
        "## Profile",
        "## Port",
        "## services/postgres.ncl",
        "## services/redis.ncl",
    ] {
        assert!(markdown.contains(&format!("{heading}\n")), "no {heading}");
    }
    // A service field says which backends use it (from render::fidelity).
    let replicas = markdown
        .lines()
        .find(|line| line.starts_with("| `services.<name>.replicas`"))
        .expect("replicas row");
    assert!(
        replicas.contains("compose") && replicas.contains("k8s"),
        "{replicas}"
    );
    assert!(replicas.contains("| 1 |"), "default 1: {replicas}");
    let host_port = markdown
        .lines()
        .find(|line| line.starts_with("| `postgres { host_port }`"))
        .expect("postgres host_port row");
    assert!(host_port.contains("Publish 5432"), "{host_port}");
}

#[test]
fn every_schema_field_is_documented_with_its_default() {
    let (out, _dir) = Berth::bundled().args(["doc"]).run();
    out.code(0);
    assert!(
        !out.stderr.contains("no doc string"),
        "undocumented fields:\n{}",
        out.stderr
    );
    // The library modules' parameters too: what each does and, where optional, what
    // leaving it out means.
    assert!(
        !out.stderr.contains("a parameter without a doc string"),
        "undocumented module parameters:\n{}",
        out.stderr
    );
}

#[test]
fn an_undocumented_field_is_named() {
    let service =
        std::fs::read_to_string(Path::new(REPO).join("schemas/service.ncl")).expect("service.ncl");
    let needle = "hostname | String | doc \"Host name inside the container. Default: the container ID (the engine's choice).\"";
    assert!(
        service.contains(needle),
        "service.ncl changed: update this test"
    );
    let stripped = service.replace(needle, "hostname | String");
    let (out, _dir) = Berth::bundled()
        .file("schemas/service.ncl", &stripped)
        .args(["doc"])
        .run();
    out.code(0)
        .stderr_contains("Service.hostname: no doc string");
}

/// Loads the generated page in chromium, types into the search box key by key through
/// the DevTools protocol, and counts the rows left visible.
#[test]
fn the_search_box_filters_as_you_type_in_a_real_browser() {
    let out = generate();
    let page = out.path().join("options.html");
    let screenshot = out.path().join("options-search.png");
    let run = Command::new("python3")
        .arg(Path::new(REPO).join("tests/browser.py"))
        .arg(&page)
        .arg("healthcheck interval")
        .arg(&screenshot)
        .output()
        .expect("python3 runs");
    assert!(
        run.status.success(),
        "browser.py failed (is chromium installed? scripts/install-validators):\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON");
    let before = seen["before"].as_u64().expect("before");
    let after = seen["after"].as_u64().expect("after");
    assert!(before > 200, "every option visible at first: {seen}");
    assert!((1..10).contains(&after), "typing filtered the rows: {seen}");
    assert_eq!(seen["value"], "healthcheck interval", "{seen}");
    assert_eq!(
        seen["count"],
        format!("{after} of {before} options"),
        "{seen}"
    );
    assert!(
        seen["first"]
            .as_str()
            .is_some_and(|p| p.contains("healthcheck")),
        "{seen}"
    );
    let png = std::fs::read(&screenshot).expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
}
