//! No abort and no panic on any input: nesting past what the evaluator's stack holds is
//! refused before evaluation, with its place; a value a recursive function builds too deep
//! for any stack ends the child process berth evaluates in, and is reported against the
//! stack file; a closed stdout ends the command quietly.

use std::io::Read;
use std::process::Stdio;

use crate::support::Berth;

/// A stack whose `labels` nest `depth` records deep (`{ a = { a = … } }`), or arrays. The
/// two records around `labels` count: the limit is passed at the 255th level of `labels`.
fn nested(depth: usize, open: &str, close: &str) -> String {
    format!(
        "fun profile => {{\n  services.web = {{\n    image = \"x\",\n    labels = {}1{},\n  }},\n}}\n",
        open.repeat(depth),
        close.repeat(depth)
    )
}

#[test]
fn records_and_arrays_nested_20000_deep_are_refused_with_their_place() {
    for (open, close, column) in [("{ a = ", "}", 1538), ("[", "]", 268)] {
        let (out, _dir) = Berth::schemas_only()
            .file("modules/stacks/deep.ncl", &nested(20_000, open, close))
            .args([
                "build",
                "--stack",
                "deep",
                "--profile",
                "dev",
                "--out",
                "out",
            ])
            .run();
        out.code(2)
            .stderr_contains(&format!(
                "modules/stacks/deep.ncl:4:{column}: nested more than 256 levels deep"
            ))
            .wrote_nothing();
    }
}

#[test]
fn a_deep_service_module_is_refused_too() {
    let (out, _dir) = Berth::schemas_only()
        .file("modules/services/deep.ncl", &format!("{}1{}", "[".repeat(5000), "]".repeat(5000)))
        .file(
            "modules/stacks/web.ncl",
            "let deep = import \"services/deep.ncl\" in\nfun profile => { services.web.image = \"x\" }\n",
        )
        .args(["build", "--stack", "web", "--profile", "dev", "--out", "out"])
        .run();
    out.code(2)
        .stderr_contains("modules/services/deep.ncl:1:257: nested more than 256 levels deep")
        .wrote_nothing();
}

/// Nesting within the limit still evaluates (fully: `std.serialize` forces every level).
#[test]
fn nesting_within_the_limit_builds() {
    let source = format!(
        "let deep = {}1{} in\nfun profile => {{ services.web = {{ image = \"x\", environment.DEEP = std.serialize 'Json deep }} }}\n",
        "{ a = ".repeat(250),
        "}".repeat(250)
    );
    let (out, _dir) = Berth::schemas_only()
        .file("modules/stacks/deep.ncl", &source)
        .args([
            "build",
            "--stack",
            "deep",
            "--profile",
            "dev",
            "--out",
            "out",
        ])
        .run();
    out.code(0);
}

/// A stack whose `F_N` in `used` is a record nested `depth` deep, built by recursion.
fn recursive(depth: usize, used: &str) -> String {
    format!(
        "let rec f = fun n => if n == 0 then \"x\" else {{ a = f (n - 1) }} in\nfun profile => {{ services.app = {{ image = \"busybox:1\", {} }} }}\n",
        used.replace("F_N", &format!("(f {depth})"))
    )
}

/// Nothing in the file nests deep, so only evaluation finds out: it exhausts Nickel's
/// stack (evaluating, and dropping the value, both recurse), in the child berth evaluates in.
#[test]
fn a_value_built_deep_by_recursion_is_an_error_naming_the_stack_file() {
    for used in [
        "environment = { DEEP = std.serialize 'Json F_N }",
        // No serializer: the field the model reads forces every level.
        "image = std.deep_seq F_N \"busybox:1\"",
    ] {
        let (out, _dir) = Berth::schemas_only()
            .file("modules/stacks/deep.ncl", &recursive(200_000, used))
            .args(["build", "--stack", "deep", "--no-profile", "--out", "out"])
            .run();
        out.code(2)
            .stderr_contains(
                "modules/stacks/deep.ncl: the evaluator ran out of stack: a value is nested too deep",
            )
            .wrote_nothing();
    }
}

/// In a full build the stacks are evaluated together, in one process: the one whose
/// value exhausts the stack is still the one named.
#[test]
fn a_stack_built_deep_among_others_is_the_one_named() {
    let (out, _dir) = Berth::schemas_only()
        .file(
            "modules/stacks/a.ncl",
            "fun profile => { services.web.image = \"x\" }\n",
        )
        .file(
            "modules/stacks/deep.ncl",
            &recursive(200_000, "environment = { DEEP = std.serialize 'Json F_N }"),
        )
        .file(
            "modules/stacks/z.ncl",
            "fun profile => { services.web.image = \"x\" }\n",
        )
        .args(["build", "--out", "out"])
        .run();
    out.code(2)
        .stderr_contains(
            "modules/stacks/deep.ncl: the evaluator ran out of stack: a value is nested too deep",
        )
        .wrote_nothing();
}

/// A deep value the child could evaluate (a schema of the project's own lets one through)
/// is refused as it comes back, before berth's own code recurses through it.
#[test]
fn a_deep_value_that_reaches_the_model_is_refused() {
    let schema =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/service.ncl"))
            .expect("schemas/service.ncl");
    let loose = schema.replace("labels | { _ | String }", "labels | Dyn");
    assert_ne!(loose, schema, "the labels contract moved");
    let (out, _dir) = Berth::schemas_only()
        .file("schemas/service.ncl", &loose)
        .file("modules/stacks/deep.ncl", &recursive(5_000, "labels = F_N"))
        .args(["build", "--stack", "deep", "--no-profile", "--out", "out"])
        .run();
    out.code(2)
        .stderr_contains(
            "modules/stacks/deep.ncl: a value of the stack is nested more than a hundred levels deep",
        )
        .wrote_nothing();
}

/// `berth list | head -1`: the reader goes away after one line; berth must not panic.
#[test]
fn a_closed_stdout_ends_quietly() {
    let project = Berth::bundled();
    let mut child = crate::support::berth_command()
        .arg("list")
        .current_dir(project.root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berth");
    let mut first = [0u8; 8];
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut first)
        .expect("first bytes");
    // The pipe's reading end is dropped here, as `head` closes it after a line.
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    let status = child.wait().expect("wait");
    assert_eq!(&first, b"profiles");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        matches!(status.code(), Some(0)),
        "exit {status:?}, stderr:\n{stderr}"
    );
}
