//! Secrets never reach an artifact: outside dev they are required interpolations, and a
//! dev-only fallback value appears in no staging or prod-lite file.

use std::path::Path;

use berth::compile::compile_one;
use berth::eval::EVAL_STACK_SIZE;
use berth::project::{ProfileRef, Project};

use crate::support::{Berth, read_tree};

/// (stack, variable, dev value) of every secret of every bundled stack.
fn secrets() -> Vec<(String, String, String)> {
    let project = Project::open(Path::new(crate::support::REPO)).expect("open repo");
    std::thread::Builder::new()
        .stack_size(EVAL_STACK_SIZE)
        .spawn(move || {
            let mut found = Vec::new();
            for stack in project.stacks().expect("stacks") {
                let (model, _) = compile_one(&project, &stack, &ProfileRef::None).expect("compile");
                for (name, variable) in model.variables {
                    if variable.secret {
                        found.push((
                            model.name.clone(),
                            name,
                            variable.dev_value.unwrap_or_default(),
                        ));
                    }
                }
            }
            found
        })
        .expect("spawn")
        .join()
        .expect("join")
}

#[test]
fn no_secret_has_a_value_or_fallback_outside_dev() {
    let secrets = secrets();
    assert!(
        secrets.len() >= 10,
        "expected the bundled stacks to declare secrets, found {secrets:?}"
    );
    let (out, _dir) = Berth::bundled().args(["build"]).run();
    out.code(0);
    for (path, bytes) in read_tree(&out.root.join("out")) {
        let text = String::from_utf8(bytes).expect("utf-8");
        let is_dev = path
            .components()
            .nth(1)
            .is_some_and(|c| c.as_os_str() == "dev");
        for (stack, name, dev_value) in &secrets {
            if !path.starts_with(stack) {
                continue;
            }
            if path.ends_with(".env.template") {
                // Listed, and empty, in every profile.
                assert!(
                    text.contains(&format!("\n{name}=\n")),
                    "{}: secret {name} must be listed empty",
                    path.display()
                );
            } else if !is_dev {
                assert!(
                    !text.contains(&format!("${{{name}:-")),
                    "{}: {name} has a fallback",
                    path.display()
                );
                // Distinctive dev values must not appear at all (short ones like "admin"
                // can legitimately equal a user name).
                if dev_value.len() >= 8 {
                    assert!(
                        !text.contains(dev_value.as_str()),
                        "{}: dev value of {name} leaked",
                        path.display()
                    );
                }
            }
        }
    }
}

#[test]
fn secrets_are_required_interpolations_outside_dev() {
    let (out, _dir) = Berth::bundled()
        .args(["build", "--profile", "prod-lite"])
        .run();
    out.code(0);
    for (stack, name, _) in secrets() {
        let compose =
            std::fs::read_to_string(out.root.join(format!("out/{stack}/prod-lite/compose.yaml")))
                .expect("read");
        if compose.contains(&format!("${{{name}")) {
            assert!(
                compose.contains(&format!("${{{name}:?")),
                "{stack}: {name} is not a required interpolation"
            );
            assert!(
                !compose.contains(&format!("${{{name}:-")),
                "{stack}: {name} has a fallback in prod-lite"
            );
        }
    }
}

#[test]
fn dev_fallbacks_are_marked_in_the_compose_file() {
    let (out, _dir) = Berth::bundled()
        .args(["build", "--stack", "melvin", "--profile", "dev"])
        .run();
    out.code(0);
    let compose =
        std::fs::read_to_string(out.root.join("out/melvin/dev/compose.yaml")).expect("read");
    for line in compose.lines().filter(|line| line.contains(":-dev-only")) {
        assert!(
            line.ends_with("# dev-only fallback for a secret; other profiles require it"),
            "unmarked: {line}"
        );
    }
}
