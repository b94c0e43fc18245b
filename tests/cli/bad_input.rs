//! Bad input: a clear message naming file, line and field; exit 2; nothing written.
//! Stack cases are fixtures in tests/fixtures/bad/<case>.ncl; each one's header lists
//! the lines berth must print (`# expect-stderr: ...`).

use std::path::Path;

use crate::support::{Berth, REPO};

/// Builds fixture `case` as a stack of the bundled project and checks the header's promises.
fn check_case(case: &str) {
    let fixture = Path::new(REPO)
        .join("tests/fixtures/bad")
        .join(format!("{case}.ncl"));
    let source = std::fs::read_to_string(&fixture).expect("read fixture");
    let expected: Vec<&str> = source
        .lines()
        .filter_map(|line| line.strip_prefix("# expect-stderr: "))
        .collect();
    assert!(
        !expected.is_empty(),
        "{case}: fixture states no expectation"
    );
    // `# profile: NAME` picks the profile to build with (dev when absent).
    let profile = source
        .lines()
        .find_map(|line| line.strip_prefix("# profile: "))
        .unwrap_or("dev");
    let (out, _dir) = Berth::schemas_only()
        .file(&format!("modules/stacks/{case}.ncl"), &source)
        .args([
            "build",
            "--stack",
            case,
            "--profile",
            profile,
            "--out",
            "out",
        ])
        .run();
    out.code(2).wrote_nothing();
    for line in expected {
        out.stderr_contains(line);
    }
    assert!(
        !out.stderr.contains("panicked"),
        "{case}: berth panicked:\n{}",
        out.stderr
    );
}

macro_rules! bad_cases {
    ($($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                check_case(stringify!($case));
            }
        )*

        /// A fixture that is not listed here would silently never run.
        #[test]
        fn every_fixture_has_a_test() {
            let listed = [$(stringify!($case)),*];
            let dir = Path::new(REPO).join("tests/fixtures/bad");
            for entry in std::fs::read_dir(dir).expect("read fixtures") {
                let path = entry.expect("entry").path();
                let stem = path.file_stem().and_then(|s| s.to_str()).expect("name").to_string();
                assert!(listed.contains(&stem.as_str()), "fixture {stem}.ncl has no test in bad_cases!");
            }
        }
    };
}

bad_cases!(
    external_cache,
    slack_receiver_without_secret,
    alert_receiver_misspelt,
    alternative_with_default,
    alternative_with_dollar,
    published_port_misspelt,
    port_target_variable_not_a_port,
    host_environment_also_set,
    host_environment_not_a_name,
    address_outside_subnet,
    address_not_an_ip,
    subnet_prefix_too_long,
    gateway_outside_subnet,
    subnets_overlap,
    address_on_unjoined_network,
    address_shared,
    ipv6_subnet_without_ipv6,
    global_not_a_bool,
    global_with_replicas,
    typed_variable_without_default,
    typed_variable_undeclared,
    typed_variable_secret,
    typed_variable_default_not_a_duration,
    healthcheck_interval_wrong_type,
    dns_not_a_list,
    dns_search_not_a_list,
    dns_opt_not_a_list,
    tty_not_a_bool,
    stdin_open_not_a_bool,
    pid_not_host,
    security_opt_not_a_list,
    gpus_count_zero,
    syntax_error,
    misspelt_field,
    misspelt_multiline_field,
    wrong_type,
    bad_port_number,
    unknown_dependency,
    unknown_volume,
    unknown_network,
    dependency_cycle,
    host_port_clash,
    healthy_without_healthcheck,
    undeclared_variable,
    secret_with_default,
    secret_file_not_secret,
    replicas_share_port,
    merge_conflict,
    no_image,
    bad_reference_syntax,
    several_problems,
    completed_dependency_restarts,
    autoscaling_bounds,
    newline_in_description,
    newline_in_stack_description,
    newline_in_variable_default,
    environment_key_with_equals,
    names_collide_on_kubernetes,
    name_too_long,
    name_starts_with_digit,
    network_mode_unknown_service,
    ingress_port_not_served,
    healthcheck_cmd_shell_words,
    stack_not_a_record,
    unterminated_string,
    replicas_out_of_range,
    misplaced_field,
    empty_field_name,
    dependency_restart_not_a_bool,
    dependency_record_misspelt,
    placement_unknown_attribute,
    sidecar_of_unknown_service,
    sidecar_with_replicas,
    sidecar_waits_for_its_host,
    sidecar_waits_through_another,
    sidecar_name_not_a_host_name,
    file_on_plain_variable,
    file_secret_with_dev_value,
    file_secret_read_as_text,
    secret_target_taken,
    secret_target_twice,
    secret_target_not_a_file_name,
);

#[test]
fn unknown_stack_lists_the_known_ones() {
    let (out, _dir) = Berth::bundled()
        .args(["build", "--stack", "apee", "--out", "out"])
        .run();
    out.code(2)
        .stderr_contains("unknown stack `apee`")
        .stderr_contains("aigym, ape, freshpoc, melvin, rag-engine");
    assert!(
        !out.root.join("out").exists(),
        "wrote output for an unknown stack"
    );
}

#[test]
fn unknown_profile_lists_the_known_ones() {
    let (out, _dir) = Berth::bundled()
        .args(["build", "--profile", "prod", "--out", "out"])
        .run();
    out.code(2)
        .stderr_contains("unknown profile `prod`")
        .stderr_contains("dev, prod-lite, staging");
    assert!(
        !out.root.join("out").exists(),
        "wrote output for an unknown profile"
    );
}

#[test]
fn not_a_project() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = crate::support::berth_command()
        .args(["--root", &dir.path().to_string_lossy(), "build"])
        .output()
        .expect("run berth");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not a berth project: no `modules/stacks` folder"),
        "{stderr}"
    );
}

#[test]
fn usage_error_exits_2() {
    let (out, _dir) = Berth::bundled().args(["build", "--no-such-flag"]).run();
    out.code(2).stderr_contains("--no-such-flag");
}

/// A failing build must leave the previous output exactly as it was.
#[test]
fn failed_build_keeps_previous_output() {
    let project = Berth::schemas_only().file(
        "modules/stacks/web.ncl",
        "fun profile => { services.web.image = \"nginx:1.27-alpine\" }\n",
    );
    let root = project.root().to_path_buf();
    let (first, dir) = project.args(["build", "--out", "out"]).run();
    first.code(0);
    let before = crate::support::read_tree(&root.join("out"));
    assert!(!before.is_empty());
    std::fs::write(
        root.join("modules/stacks/web.ncl"),
        "fun profile => { services.web.imgae = \"x\" }\n",
    )
    .expect("break module");
    let (second, _dir) = Berth::reuse(dir).args(["build", "--out", "out"]).run();
    second.code(2);
    assert_eq!(
        crate::support::read_tree(&root.join("out")),
        before,
        "a failed build changed out/"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&root)
        .expect("read root")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".berth-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "staging folders left behind: {leftovers:?}"
    );
}

/// `list` still lists the stacks that build, marks the broken one, and exits 2.
#[test]
fn list_marks_a_broken_stack_and_fails() {
    let (out, _dir) = Berth::bundled()
        .file(
            "modules/stacks/broken.ncl",
            "fun profile => { services.x.imgae = \"y\" }\n",
        )
        .args(["list"])
        .run();
    out.code(2)
        .stdout_contains("  broken  (does not build: ")
        .stdout_contains("  melvin  ")
        .stderr_contains("broken.ncl:1:29: imgae: unknown field");
}

/// Builds stack `x` of `project`; the project stays alive in the returned folder.
fn build_x(project: Berth) -> (crate::support::Output, tempfile::TempDir) {
    project
        .args(["build", "--stack", "x", "--profile", "dev", "--out", "out"])
        .run()
}

/// An unreadable stack or module is reported with its real cause, at the user's file, never
/// as "could not find import" of berth's generated main file.
#[test]
fn unreadable_modules_name_the_real_cause() {
    let importer =
        "let m = import \"services/m.ncl\" in\nfun profile => { services.web.image = \"x\" }\n";
    let not_utf8 = Berth::schemas_only();
    std::fs::write(
        not_utf8.root().join("modules/stacks/x.ncl"),
        b"fun profile => { services.web.image = \"caf\xff\" }\n".as_slice(),
    )
    .expect("write");
    let folder = Berth::schemas_only();
    std::fs::create_dir_all(folder.root().join("modules/stacks/x.ncl")).expect("mkdir");
    let looped = Berth::schemas_only();
    std::os::unix::fs::symlink("x.ncl", looped.root().join("modules/stacks/x.ncl")).expect("ln");
    let imported_folder = Berth::schemas_only().file("modules/stacks/x.ncl", importer);
    std::fs::create_dir_all(imported_folder.root().join("modules/services/m.ncl")).expect("mkdir");
    let imported_not_utf8 = Berth::schemas_only().file("modules/stacks/x.ncl", importer);
    std::fs::write(
        imported_not_utf8.root().join("modules/services/m.ncl"),
        b"{ a = \"\xc3\" }".as_slice(),
    )
    .expect("write");
    let missing = Berth::schemas_only().file("modules/stacks/x.ncl", importer);
    for (project, expected) in [
        (
            not_utf8,
            "modules/stacks/x.ncl:1:43: not UTF-8 text (byte 0xff)",
        ),
        (folder, "modules/stacks/x.ncl: is a folder, not a file"),
        (looped, "modules/stacks/x.ncl: a symlink loop"),
        (
            imported_folder,
            "modules/stacks/x.ncl:1:9: import \"services/m.ncl\": modules/services/m.ncl: is a folder, not a file",
        ),
        (
            imported_not_utf8,
            "modules/stacks/x.ncl:1:9: import \"services/m.ncl\": modules/services/m.ncl:1:8: not UTF-8 text (byte 0xc3)",
        ),
        (
            missing,
            "modules/stacks/x.ncl:1:9: import \"services/m.ncl\": no such file (looked in modules/stacks, schemas, modules, berth:schemas, berth:modules)",
        ),
    ] {
        let (out, _dir) = build_x(project);
        out.code(2).stderr_contains(expected).wrote_nothing();
        assert!(
            !out.stderr.contains("could not find import"),
            "{}",
            out.stderr
        );
        assert!(!out.stderr.contains("__berth_main__"), "{}", out.stderr);
    }
}

/// berth's own line replaces Nickel's dump of the record (with its memory addresses and its
/// advice to append `, ..` to a contract); `-v` still shows Nickel's report, addresses
/// removed; and the same input gives the same bytes on every run.
#[test]
fn an_unknown_field_is_one_line_and_the_same_every_run() {
    let stack =
        "fun profile => { services.web = { image = \"x\", cpus = 1, restart = \"always\" } }\n";
    let run = |verbose: bool| {
        let mut args = vec!["build", "--stack", "x", "--profile", "dev", "--out", "out"];
        if verbose {
            args.insert(0, "-v");
        }
        let (out, _dir) = Berth::schemas_only()
            .file("modules/stacks/x.ncl", stack)
            .args(args)
            .run();
        out
    };
    let quiet = run(false);
    quiet
        .code(2)
        .stderr_contains("modules/stacks/x.ncl:1:48: cpus: unknown field");
    for noise in ["Append `, ..`", "%<closure", "0x7f", "┌─"] {
        assert!(
            !quiet.stderr.contains(noise),
            "{noise:?} in:\n{}",
            quiet.stderr
        );
    }
    let verbose = run(true);
    verbose
        .code(2)
        .stderr_contains("Nickel's report:")
        .stderr_contains("extra field `cpus`");
    assert!(!verbose.stderr.contains("@0x"), "{}", verbose.stderr);
    assert_eq!(
        run(true).stderr,
        verbose.stderr,
        "two runs gave different messages"
    );
    assert_eq!(
        run(false).stderr,
        quiet.stderr,
        "two runs gave different messages"
    );
}

/// A stack file whose name is no stack name is refused, with the name to use.
#[test]
fn a_stack_file_name_with_a_space_is_refused() {
    let (out, _dir) = Berth::schemas_only()
        .file(
            "modules/stacks/my stack.ncl",
            "fun profile => { services.web.image = \"x\" }\n",
        )
        .args(["build", "--out", "out"])
        .run();
    out.code(2)
        .stderr_contains("modules/stacks/my stack.ncl: `my stack` cannot be a stack name")
        .stderr_contains("rename the file, e.g. to my-stack.ncl")
        .wrote_nothing();
}
