//! `berth check` and `berth bless` against golden trees.

use std::path::Path;

use crate::support::{Berth, REPO, copy_dir, read_tree};

/// The bundled project with the committed golden/ beside it.
fn with_golden() -> Berth {
    let berth = Berth::bundled();
    copy_dir(
        &Path::new(REPO).join("golden"),
        &berth.root().join("golden"),
    );
    berth
}

/// The blessed files of a golden folder; its `.berth-output` marker is no artifact.
fn n_blessed(golden: &Path) -> usize {
    read_tree(golden)
        .into_keys()
        .filter(|path| path != Path::new(".berth-output"))
        .count()
}

#[test]
fn committed_golden_is_up_to_date() {
    let (out, _dir) = with_golden().args(["check"]).run();
    let n_golden = n_blessed(&out.root.join("golden"));
    out.code(0).stdout_contains(&format!(
        "check: clean: 0 changed, 0 missing from golden, 0 extra in golden, {n_golden} unchanged"
    ));
}

#[test]
fn a_changed_module_is_drift_with_a_diff_naming_the_file() {
    let berth = with_golden();
    let redis = berth.root().join("modules/services/redis.ncl");
    let source = std::fs::read_to_string(&redis).expect("read redis module");
    std::fs::write(
        &redis,
        source.replace("redis:7.4-alpine", "redis:7.4.1-alpine"),
    )
    .expect("edit module");
    let (out, _dir) = berth.args(["check"]).run();
    out.code(1)
        .stdout_contains("--- golden/ape/prod-lite/compose.yaml")
        .stdout_contains("+++ build/ape/prod-lite/compose.yaml")
        .stdout_contains("-    image: redis:7.4-alpine")
        .stdout_contains("+    image: redis:7.4.1-alpine")
        .stdout_contains("check: DRIFT: ")
        .stdout_contains("--- golden/ape/prod-lite/k8s/redis.yaml")
        .stdout_contains("hint: if the change is intended, run `berth bless`");
}

#[test]
fn missing_and_extra_golden_files_are_drift() {
    let berth = with_golden();
    std::fs::remove_file(berth.root().join("golden/melvin/dev/.env.template")).expect("remove");
    std::fs::write(berth.root().join("golden/melvin/dev/old.yaml"), "x\n").expect("write extra");
    let (out, _dir) = berth.args(["check"]).run();
    out.code(1)
        .stdout_contains("missing from golden: melvin/dev/.env.template")
        .stdout_contains("extra in golden: melvin/dev/old.yaml");
}

#[test]
fn json_report_for_ci() {
    let berth = with_golden();
    std::fs::remove_file(berth.root().join("golden/ape/dev/compose.yaml")).expect("remove");
    let (out, _dir) = berth.args(["check", "--format", "json"]).run();
    out.code(1);
    let report: serde_json::Value =
        serde_json::from_str(&out.stdout).expect("check --format json prints JSON");
    assert_eq!(report["clean"], false);
    assert_eq!(
        report["missing"],
        serde_json::json!(["ape/dev/compose.yaml"])
    );
    let n_golden = n_blessed(&out.root.join("golden"));
    assert_eq!(report["unchanged"], n_golden);
}

#[test]
fn partial_check_compares_only_what_it_built() {
    let berth = with_golden();
    std::fs::remove_file(berth.root().join("golden/melvin/dev/compose.yaml")).expect("remove");
    let (out, _dir) = berth.args(["check", "--stack", "ape"]).run();
    out.code(0)
        .stdout_contains("check: clean: 0 changed, 0 missing from golden, 0 extra in golden");
}

#[test]
fn bless_then_check_is_clean() {
    let berth = with_golden();
    let neo4j = berth.root().join("modules/services/neo4j.ncl");
    let source = std::fs::read_to_string(&neo4j).expect("read");
    std::fs::write(
        &neo4j,
        source.replace("start_period = \"60s\"", "start_period = \"90s\""),
    )
    .expect("edit");
    let (bless, dir) = berth.args(["bless"]).run();
    bless.code(0).stderr_contains("blessed ");
    let golden = std::fs::read_to_string(bless.root.join("golden/ape/dev/compose.yaml"))
        .expect("read golden");
    assert!(golden.contains("start_period: 90s"));
    let (check, _dir) = Berth::reuse(dir).args(["check"]).run();
    check.code(0);
}

/// `bless --golden DIR` writes a fresh build there, deleting files no build makes; `check
/// --golden DIR` compares with it.
#[test]
fn bless_and_check_use_the_golden_folder_given_and_bless_deletes_extra_files() {
    let berth = with_golden();
    let other = berth.root().join("elsewhere");
    let (blessed, dir) = berth.args(["bless", "--golden", "elsewhere"]).run();
    blessed.code(0);
    assert_eq!(
        read_tree(&other),
        read_tree(&Path::new(REPO).join("golden")),
        "bless --golden did not write exactly a fresh build"
    );
    // The default golden/ was not touched by it.
    assert_eq!(
        read_tree(&blessed.root.join("golden")),
        read_tree(&Path::new(REPO).join("golden"))
    );
    std::fs::write(other.join("ape/dev/compose.yaml"), "changed\n").expect("edit");
    let (checked, dir) = Berth::reuse(dir)
        .args(["check", "--golden", "elsewhere"])
        .run();
    checked
        .code(1)
        .stdout_contains("--- elsewhere/ape/dev/compose.yaml");
    let (clean, dir) = Berth::reuse(dir).args(["check"]).run();
    clean.code(0);
    // bless deletes what it wrote before and a fresh build no longer makes.
    std::fs::remove_file(clean.root.join("modules/stacks/melvin.ncl")).expect("drop a stack");
    let (reblessed, _dir) = Berth::reuse(dir)
        .args(["bless", "--golden", "elsewhere"])
        .run();
    reblessed.code(0);
    assert!(
        !other.join("melvin").exists(),
        "bless kept a removed stack's files"
    );
    assert!(other.join("ape/dev/compose.yaml").exists());
}
