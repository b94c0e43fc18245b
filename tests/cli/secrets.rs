//! Secrets never reach an artifact: outside dev they are required interpolations, and a
//! dev-only fallback value appears in no staging or prod-lite file.

use std::path::{Path, PathBuf};

use berth::compile::compile_one;
use berth::eval::EVAL_STACK_SIZE;
use berth::project::{ProfileRef, Project};

use crate::support::{Berth, read_tree};

/// A secret of a bundled stack.
struct Secret {
    stack: String,
    name: String,
    dev_value: Option<String>,
}

/// Every secret of every bundled stack, read from the compiled models (not from the
/// artifacts the tests then inspect).
fn secrets() -> Vec<Secret> {
    secrets_in(Path::new(crate::support::REPO))
}

/// Every secret of every stack of the project at `root`.
fn secrets_in(root: &Path) -> Vec<Secret> {
    let project = Project::open(root).expect("open project");
    std::thread::Builder::new()
        .stack_size(EVAL_STACK_SIZE)
        .spawn(move || {
            let mut found = Vec::new();
            for stack in project.stacks().expect("stacks") {
                let (model, _) = compile_one(&project, &stack, &ProfileRef::None).expect("compile");
                for (name, variable) in model.variables {
                    if variable.secret {
                        found.push(Secret {
                            stack: model.name.clone(),
                            name,
                            dev_value: variable.dev_value.filter(|v| !v.is_empty()),
                        });
                    }
                }
            }
            found
        })
        .expect("spawn")
        .join()
        .expect("join")
}

/// The build of every bundled stack and profile, as (path under out/, text).
fn build_all() -> (Vec<(PathBuf, String)>, tempfile::TempDir) {
    let (out, dir) = Berth::bundled().args(["build"]).run();
    out.code(0);
    let files = read_tree(&out.root.join("out"))
        .into_iter()
        .map(|(path, bytes)| (path, String::from_utf8(bytes).expect("utf-8")))
        .collect();
    (files, dir)
}

/// Each place `text` reads variable `name` (`${NAME…}`, not `${NAMES…}`), up to its `}`.
fn references<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let opening = format!("${{{name}");
    text.match_indices(&opening)
        .filter_map(|(at, _)| {
            let rest = &text[at..];
            let next = rest[opening.len()..].chars().next()?;
            if next.is_ascii_alphanumeric() || next == '_' {
                return None;
            }
            Some(&rest[..=rest.find('}')?])
        })
        .collect()
}

/// Replaces, in the module files below `root`, every secret's dev value by a distinct
/// marker (`dev_value = "…"`, and the last argument of ape's `secret` helper). Returns
/// how many it replaced.
fn mark_dev_values(root: &Path) -> usize {
    let mut n_marked = 0;
    for entry in walkdir::WalkDir::new(root.join("modules")) {
        let entry = entry.expect("walk");
        if !entry.file_type().is_file() {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).expect("read module");
        let mut lines = Vec::new();
        for line in text.lines() {
            let quoted_at = if let Some(at) = line.find("dev_value = \"") {
                Some(at + "dev_value = ".len())
            } else if line.contains(" = secret \"") {
                line.trim_end_matches(',').rfind(" \"").map(|at| at + 1)
            } else {
                None
            };
            match quoted_at {
                Some(at) => {
                    let end = at + 1 + line[at + 1..].find('"').expect("closing quote");
                    n_marked += 1;
                    lines.push(format!(
                        "{}\"Berth-dev-marker-{n_marked}!\"{}",
                        &line[..at],
                        &line[end + 1..]
                    ));
                }
                None => lines.push(line.to_string()),
            }
        }
        std::fs::write(entry.path(), lines.join("\n") + "\n").expect("write module");
    }
    n_marked
}

/// Outside dev, nothing depends on a secret's dev value, whatever its length: with every
/// dev value replaced by a marker, staging and prod-lite are byte for byte the committed
/// golden files, no marker appears in them, and dev does use every marker.
#[test]
fn no_dev_value_of_a_secret_reaches_staging_or_prod_lite() {
    let berth = Berth::bundled();
    let n_marked = mark_dev_values(berth.root());
    let marked = secrets_in(berth.root());
    let with_dev_value: Vec<&Secret> = marked.iter().filter(|s| s.dev_value.is_some()).collect();
    assert!(
        with_dev_value.len() >= 10,
        "expected the bundled stacks to declare secrets with dev values, found {}",
        with_dev_value.len()
    );
    for secret in &with_dev_value {
        let value = secret.dev_value.as_deref().unwrap_or_default();
        assert!(
            value.starts_with("Berth-dev-marker-"),
            "{}: the dev value of {} was not replaced ({value:?}; {n_marked} replaced)",
            secret.stack,
            secret.name
        );
    }
    let (out, _dir) = berth.args(["build"]).run();
    out.code(0);
    let built = read_tree(&out.root.join("out"));
    let golden = read_tree(&Path::new(crate::support::REPO).join("golden"));
    let mut n_compared = 0;
    for (path, bytes) in &built {
        let text = String::from_utf8_lossy(bytes);
        let profile = path.components().nth(1).map(|c| c.as_os_str().to_owned());
        if profile.as_deref() == Some("dev".as_ref()) {
            continue;
        }
        assert!(
            !text.contains("Berth-dev-marker-"),
            "{}: a dev value appears",
            path.display()
        );
        assert_eq!(
            Some(bytes),
            golden.get(path),
            "{}: differs from golden/ once dev values change",
            path.display()
        );
        n_compared += 1;
    }
    assert!(n_compared > 50, "only {n_compared} files compared");
    for secret in &with_dev_value {
        let dev_compose = Path::new(&secret.stack).join("dev/compose.yaml");
        let text = String::from_utf8_lossy(&built[&dev_compose]);
        let value = secret.dev_value.as_deref().unwrap_or_default();
        assert!(
            references(&text, &secret.name)
                .contains(&format!("${{{}:-{value}}}", secret.name).as_str()),
            "{}: {} does not fall back to its dev value",
            dev_compose.display(),
            secret.name
        );
    }
}

#[test]
fn secrets_are_required_interpolations_outside_dev() {
    let (files, _dir) = build_all();
    for secret in secrets() {
        for profile in ["staging", "prod-lite"] {
            let compose = Path::new(&secret.stack).join(profile).join("compose.yaml");
            let (_, text) = files
                .iter()
                .find(|(path, _)| *path == compose)
                .unwrap_or_else(|| panic!("no {}", compose.display()));
            let found = references(text, &secret.name);
            assert!(
                !found.is_empty(),
                "{}: never reads secret {}",
                compose.display(),
                secret.name
            );
            let required = format!(
                "${{{0}:?{0} is a secret: set it in .env, see .env.template}}",
                secret.name
            );
            for reference in found {
                assert_eq!(reference, required, "{}", compose.display());
            }
            // Listed, and empty, in every profile's template.
            let template = Path::new(&secret.stack).join(profile).join(".env.template");
            let (_, text) = files
                .iter()
                .find(|(path, _)| *path == template)
                .unwrap_or_else(|| panic!("no {}", template.display()));
            assert!(
                text.lines().any(|line| line == format!("{}=", secret.name)),
                "{}: secret {} must be listed empty",
                template.display(),
                secret.name
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
