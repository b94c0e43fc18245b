//! berth deletes only what it wrote: `--out` and `bless --golden` refuse, before anything
//! changes, a folder that holds the project, a regular file, a non-empty folder berth did
//! not write (no `.berth-output` marker), and an owned folder holding a file berth did not
//! write. Nothing to build is an error, never an empty output.

use std::path::Path;

use crate::support::{Berth, read_tree, run_in};

const WEB: &str = "fun profile => { services.web.image = \"nginx:1.27-alpine\" }\n";

fn web_project() -> Berth {
    Berth::schemas_only().file("modules/stacks/web.ncl", WEB)
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|arg| (*arg).to_string()).collect()
}

/// Every file of the project, to compare before and after a refused command.
fn snapshot(root: &Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    read_tree(root)
}

#[test]
fn out_that_is_or_holds_the_project_is_refused() {
    let project = web_project();
    let root = project.root().to_path_buf();
    let before = snapshot(&root);
    let (itself, dir) = project.args(["build", "--out", "."]).run();
    itself
        .code(2)
        .stderr_contains(".: the output folder holds the project itself");
    let parent = root
        .parent()
        .expect("parent")
        .to_string_lossy()
        .into_owned();
    let above = run_in(dir.path(), &args(&["build", "--out", &parent]));
    above
        .code(2)
        .stderr_contains("the output folder holds the project itself");
    let dotted = run_in(dir.path(), &args(&["build", "--out", "schemas/.."]));
    dotted.code(2).stderr_contains("holds the project itself");
    let golden_here = run_in(dir.path(), &args(&["bless", "--golden", "."]));
    golden_here
        .code(2)
        .stderr_contains("holds the project itself");
    assert_eq!(
        snapshot(&root),
        before,
        "a refused --out changed the project"
    );
}

#[test]
fn out_that_is_a_regular_file_is_refused() {
    let (out, _dir) = web_project()
        .file("notes.txt", "keep me\n")
        .args(["build", "--out", "notes.txt"])
        .run();
    out.code(2)
        .stderr_contains("notes.txt: exists and is not a folder; nothing was written");
    let kept = std::fs::read_to_string(out.root.join("notes.txt")).expect("file kept");
    assert_eq!(kept, "keep me\n");
}

#[test]
fn a_folder_berth_did_not_write_is_refused() {
    let (out, _dir) = web_project()
        .file("photos/cat.jpg", "meow\n")
        .args(["build", "--out", "photos"])
        .run();
    out.code(2)
        .stderr_contains("photos: a folder berth did not write (it has no `.berth-output`)");
    let files: Vec<_> = read_tree(&out.root.join("photos")).into_keys().collect();
    assert_eq!(files, vec![std::path::PathBuf::from("cat.jpg")]);
    // An empty folder is fine: there is nothing in it to lose.
    std::fs::remove_file(out.root.join("photos/cat.jpg")).expect("empty it");
    let into_empty = run_in(&out.root, &args(&["build", "--out", "photos"]));
    into_empty.code(0);
    assert!(out.root.join("photos/web/dev/compose.yaml").is_file());
    assert!(out.root.join("photos/.berth-output").is_file());
}

#[test]
fn an_unrelated_file_in_an_owned_folder_is_refused_not_deleted() {
    let (first, dir) = web_project().args(["build", "--out", "out"]).run();
    first.code(0);
    let marker = std::fs::read_to_string(first.root.join("out/.berth-output")).expect("marker");
    assert!(
        marker.lines().any(|line| line == "web/dev/compose.yaml"),
        "{marker}"
    );
    std::fs::write(first.root.join("out/web/dev/notes.txt"), "mine\n").expect("add a file");
    std::fs::write(first.root.join("out/TODO"), "mine too\n").expect("add a file");
    let before = read_tree(&first.root.join("out"));
    for build in [
        args(&["build", "--out", "out"]),
        args(&[
            "build",
            "--stack",
            "web",
            "--profile",
            "dev",
            "--out",
            "out",
        ]),
    ] {
        let second = run_in(dir.path(), &build);
        second.code(2);
        assert!(
            second
                .stderr
                .contains("out: holds files berth did not write: TODO, web/dev/notes.txt")
                || second
                    .stderr
                    .contains("out: holds files berth did not write: web/dev/notes.txt"),
            "{}",
            second.stderr
        );
        assert_eq!(
            read_tree(&first.root.join("out")),
            before,
            "{build:?} changed out/"
        );
    }
    // A file outside the folders a filtered build replaces is left alone, and kept.
    std::fs::remove_file(first.root.join("out/web/dev/notes.txt")).expect("remove");
    let filtered = run_in(
        dir.path(),
        &args(&[
            "build",
            "--stack",
            "web",
            "--profile",
            "dev",
            "--out",
            "out",
        ]),
    );
    filtered.code(0);
    assert!(
        first.root.join("out/TODO").is_file(),
        "a filtered build deleted TODO"
    );
}

#[test]
fn files_berth_wrote_before_are_replaced_and_stale_ones_removed() {
    let (first, dir) = web_project().args(["build", "--out", "out"]).run();
    first.code(0);
    std::fs::rename(
        first.root.join("modules/stacks/web.ncl"),
        first.root.join("modules/stacks/shop.ncl"),
    )
    .expect("rename the stack");
    let second = run_in(dir.path(), &args(&["build", "--out", "out"]));
    second.code(0);
    assert!(
        !first.root.join("out/web").exists(),
        "the old stack's files stayed"
    );
    assert!(first.root.join("out/shop/dev/compose.yaml").is_file());
    let marker = std::fs::read_to_string(first.root.join("out/.berth-output")).expect("marker");
    assert!(!marker.contains("web/"), "{marker}");
    // A filtered build adds its files to the marker and keeps the others listed.
    let filtered = run_in(
        dir.path(),
        &args(&["build", "--stack", "shop", "--no-profile", "--out", "out"]),
    );
    filtered.code(0);
    let marker = std::fs::read_to_string(first.root.join("out/.berth-output")).expect("marker");
    assert!(
        marker.lines().any(|line| line == "shop/none/compose.yaml"),
        "{marker}"
    );
    assert!(
        marker.lines().any(|line| line == "shop/dev/compose.yaml"),
        "{marker}"
    );
}

#[test]
fn bless_refuses_a_golden_folder_berth_did_not_write() {
    let (out, _dir) = web_project()
        .file("golden/README", "hand-written\n")
        .args(["bless"])
        .run();
    out.code(2)
        .stderr_contains("golden: a folder berth did not write (it has no `.berth-output`)");
    assert_eq!(
        std::fs::read_to_string(out.root.join("golden/README")).expect("kept"),
        "hand-written\n"
    );
}

#[test]
fn nothing_to_build_is_an_error_and_keeps_the_previous_output() {
    let (first, dir) = web_project().args(["build", "--out", "out"]).run();
    first.code(0);
    let before = read_tree(&first.root.join("out"));
    // An empty profiles/ is not "nothing": the library's profiles apply (see library.rs).
    std::fs::remove_file(first.root.join("modules/stacks/web.ncl")).expect("rm stack");
    let no_stacks = run_in(
        dir.path(),
        &args(&["build", "--no-profile", "--out", "out"]),
    );
    no_stacks
        .code(2)
        .stderr_contains("nothing to build: modules/stacks/ holds no `.ncl` file");
    assert_eq!(
        read_tree(&first.root.join("out")),
        before,
        "out/ was changed"
    );
    assert!(!first.root.join("golden").exists());
}
