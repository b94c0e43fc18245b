//! ARCHITECTURE.md's invariants, checked on the source text so the document stays true:
//! what a module may name is a property of its files, not of what the compiler happens
//! to accept today. Each failure names the file, the line and the invariant it breaks.

use std::path::Path;

use crate::support::REPO;

/// A file of `src/`: its path relative to the repository (`src/render/k8s.rs`) and text.
struct Source {
    path: String,
    text: String,
}

/// Every `.rs` file under `src/`, sorted by path.
fn sources() -> Vec<Source> {
    let root = Path::new(REPO);
    let mut found: Vec<Source> = walkdir::WalkDir::new(root.join("src"))
        .sort_by_file_name()
        .into_iter()
        .map(|entry| entry.expect("walk src"))
        .filter(|entry| entry.file_type().is_file())
        .filter(|entry| entry.path().extension().is_some_and(|e| e == "rs"))
        .map(|entry| Source {
            path: entry
                .path()
                .strip_prefix(root)
                .expect("under the repository")
                .to_string_lossy()
                .replace('\\', "/"),
            text: std::fs::read_to_string(entry.path()).expect("read source"),
        })
        .collect();
    found.sort_by(|a, b| a.path.cmp(&b.path));
    assert!(found.len() > 20, "src/ looks empty: {} files", found.len());
    found
}

/// Whether `path` is the module `module` or one of its submodules: `src/render.rs` and
/// `src/render/…` for `render` (a module is its file and its folder, as in ARCHITECTURE.md).
fn within(path: &str, module: &str) -> bool {
    path == format!("src/{module}.rs") || path.starts_with(&format!("src/{module}/"))
}

/// The lines of `text` that are code, numbered from 1: comments (`//`, `///`, `//!`) are
/// prose and may name anything.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line))
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
}

/// Whether `line` uses `name` as a path (`name::…`, `use name;`) and not as a part of a
/// longer identifier (`my_tokio::`) or a field (`.fs::`).
fn names_crate(line: &str, name: &str) -> bool {
    let used_as_path = line.match_indices(&format!("{name}::")).any(|(at, _)| {
        !line[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    });
    used_as_path || line.trim_start().starts_with(&format!("use {name};"))
}

/// Every (file, line, text) of code that names crate or module `name` outside the modules
/// in `allowed`.
fn uses_outside(name: &str, allowed: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for source in sources() {
        if allowed.iter().any(|module| within(&source.path, module)) {
            continue;
        }
        for (number, line) in code_lines(&source.text) {
            if names_crate(line, name) {
                found.push(format!("{}:{number}: {}", source.path, line.trim()));
            }
        }
    }
    found
}

#[track_caller]
fn assert_none(found: &[String], invariant: &str) {
    assert!(
        found.is_empty(),
        "ARCHITECTURE.md invariant broken: {invariant}\n{}",
        found.join("\n")
    );
}

/// `error` sits at the bottom of the module graph: it names no other berth module, so
/// no import circle can run through it.
#[test]
fn error_names_no_other_berth_module() {
    let source = sources()
        .into_iter()
        .find(|source| source.path == "src/error.rs")
        .expect("src/error.rs");
    let found: Vec<String> = code_lines(&source.text)
        .filter(|(_, line)| {
            names_crate(line, "crate") || names_crate(line, "super") || names_crate(line, "berth")
        })
        .map(|(number, line)| format!("{}:{number}: {}", source.path, line.trim()))
        .collect();
    assert_none(
        &found,
        "`error` imports nothing above it (no `crate::`, `super::` or `berth::` path in src/error.rs)",
    );
}

/// Only `eval` imports `nickel_lang_core`: nothing Nickel-typed leaves it.
#[test]
fn only_eval_imports_nickel() {
    assert_none(
        &uses_outside("nickel_lang_core", &["eval"]),
        "only `eval` (src/eval.rs, src/eval/) imports `nickel_lang_core`",
    );
}

/// Renderers and the model are pure: no file system (only `output` writes files).
#[test]
fn renderers_and_the_model_touch_no_files() {
    let mut found = Vec::new();
    for source in sources() {
        if !within(&source.path, "render") && !within(&source.path, "model") {
            continue;
        }
        // Inside `use std::{…};`, which may span lines: `fs` names the module.
        let mut in_std_group = false;
        for (number, line) in code_lines(&source.text) {
            in_std_group |= line.trim_start().starts_with("use std::{");
            let names_fs = line
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .any(|word| word == "fs");
            if line.contains("std::fs") || names_crate(line, "fs") || (in_std_group && names_fs) {
                found.push(format!("{}:{number}: {}", source.path, line.trim()));
            }
            in_std_group &= !line.contains("};");
        }
    }
    assert_none(
        &found,
        "renderers and the model are pure: no `std::fs` / `fs::` in src/render*, src/model*",
    );
}

/// Arguments are the CLI's business: `clap` only under `cli`.
#[test]
fn only_cli_uses_clap() {
    let mut found = uses_outside("clap", &["cli"]);
    found.extend(uses_outside("clap_complete", &["cli"]));
    found.extend(uses_outside("clap_mangen", &["cli"]));
    assert_none(
        &found,
        "`clap` is used only by `cli` (src/cli.rs, src/cli/)",
    );
}

/// Only the engine side is async and talks to Docker: `bollard` and `tokio` only under
/// `apply` and `cli` (which starts the runtime).
#[test]
fn only_apply_and_cli_use_the_engine_crates() {
    let mut found = uses_outside("bollard", &["apply", "cli"]);
    found.extend(uses_outside("tokio", &["apply", "cli"]));
    assert_none(
        &found,
        "`bollard` and `tokio` are used only by `apply` and `cli` (src/apply*, src/cli*)",
    );
}

/// A destructuring `let Name {` (or `let model::Name {`) found in `text`: the line it
/// starts on and the pattern up to its closing brace, when an `=` follows that brace.
fn destructurings(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    for (at, _) in text.match_indices("let ") {
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
            continue;
        }
        let rest = &text[at + 4..];
        let path_len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let path = &rest[..path_len];
        let last = path.rsplit("::").next().unwrap_or_default();
        if !last.starts_with(|c: char| c.is_ascii_uppercase()) {
            continue;
        }
        let after = rest[path_len..].trim_start();
        if !after.starts_with('{') {
            continue;
        }
        let open = at + 4 + path_len + (rest[path_len..].len() - after.len());
        let mut depth = 0usize;
        let mut close = None;
        for (offset, c) in text[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(open + offset);
                        break;
                    }
                }
                _ => {}
            }
        }
        let close = close.expect("a destructuring's braces close");
        let tail = text[close + 1..].trim_start();
        if tail.starts_with('=') && !tail.starts_with("==") {
            let line = text[..at].matches('\n').count() + 1;
            found.push((line, text[at..=close].to_string()));
        }
    }
    found
}

/// Whether a struct pattern (or one nested in it) ends with the rest pattern `..`.
fn has_rest(pattern: &str) -> bool {
    pattern
        .match_indices("..")
        .any(|(at, _)| pattern[at + 2..].trim_start().starts_with('}'))
}

/// Renderers (and the validator) destructure model structs without `..`, so a new field
/// stops the build at every place that must decide what to do with it.
#[test]
fn renderers_destructure_without_rest_patterns() {
    let mut found = Vec::new();
    let mut n_patterns = 0;
    for source in sources() {
        if !within(&source.path, "render") && source.path != "src/model/validate.rs" {
            continue;
        }
        for (line, pattern) in destructurings(&source.text) {
            n_patterns += 1;
            if has_rest(&pattern) {
                let head = pattern.lines().next().unwrap_or_default().trim();
                found.push(format!("{}:{line}: `{head}` … ends with `..`", source.path));
            }
        }
    }
    // The test must see the destructurings it guards (compose's `let Service {` at least).
    assert!(n_patterns >= 10, "only {n_patterns} destructurings found");
    assert_none(
        &found,
        "renderers destructure model structs without `..` (src/render*, src/model/validate.rs)",
    );
}

/// The pattern finder itself, on the shapes it must tell apart.
#[test]
fn destructuring_finder_tells_patterns_from_expressions() {
    let text = "fn f() {\n    let Service {\n        image,\n        ..\n    } = service;\n    let Port { target, protocol } = port;\n    let x = Build { context };\n    let model::Backup { command, .. } = backup;\n    if a == Mount { b } {}\n}\n";
    let found = destructurings(text);
    let lines: Vec<usize> = found.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, [2, 6, 8], "{found:?}");
    let rests: Vec<bool> = found.iter().map(|(_, p)| has_rest(p)).collect();
    assert_eq!(rests, [true, false, true]);
    assert!(names_crate("use tokio::sync;", "tokio"));
    assert!(!names_crate("let my_tokio::x;", "tokio"));
    assert!(names_crate("    std::fs::write(p, b)?;", "fs"));
}

/// Tests never use the user's build cache: every start of the berth binary goes through
/// `support` (`run_in_env`, `berth_command`), which points `BERTH_CACHE_DIR` below cargo's
/// temporary folder, or sets `BERTH_CACHE_DIR` itself on the same command.
#[test]
fn tests_start_berth_with_their_own_cache() {
    let root = Path::new(REPO).join("tests/cli");
    let mut problems = Vec::new();
    for entry in walkdir::WalkDir::new(&root).sort_by_file_name() {
        let entry = entry.expect("walk tests");
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".rs") || name == "support.rs" {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).expect("read test");
        let lines: Vec<&str> = text.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            if !line.contains("CARGO_BIN_EXE_berth") || line.trim_start().starts_with("//") {
                continue;
            }
            // The statement that starts it: this line and the few after.
            let statement = lines[index..lines.len().min(index + 6)].join("\n");
            if !statement.contains("BERTH_CACHE_DIR") && !statement.contains("cache_dir()") {
                problems.push(format!("tests/cli/{name}:{}: {}", index + 1, line.trim()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "berth started without a test cache (use support::berth_command):\n{}",
        problems.join("\n")
    );
}
