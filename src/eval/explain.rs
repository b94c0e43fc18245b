//! Turns Nickel's reports into berth's: the user's place first, then a cause a user can act
//! on. Nickel's own report follows only when berth has nothing better, or with `-v`.

use std::path::{Path, PathBuf};

use super::typo::{self, Suggestion};
use super::{inputs, scan};
use crate::project::{Project, StackRef};

/// The message `finalize` (schemas/berth.ncl) fails with for a stack that is no record.
const NOT_A_RECORD: &str = "a stack must be a record or a function of the profile";

/// berth's report for a failed evaluation; `report` is Nickel's, with relative paths.
pub fn report(project: &Project, stack: &StackRef, report: String) -> String {
    let own = unreadable_import(project, &report)
        .or_else(|| misspelt_field(project, stack, &report))
        .or_else(|| not_a_record(&report))
        .or_else(|| unterminated_string(project, &report));
    match own {
        Some(own) if tracing::enabled!(tracing::Level::INFO) => {
            format!("{own}\n\nNickel's report:\n{report}")
        }
        Some(own) => own,
        None => merge_hint(report),
    }
}

/// berth's report for an import Nickel "could not find": the import's place, and why the
/// file there cannot be read (a folder, a symlink loop, not UTF-8…) or that it is missing.
/// Read from the report's text: the typechecker and the evaluator each wrap the error.
fn unreadable_import(project: &Project, report: &str) -> Option<String> {
    let (_, rest) = report.split_once("import of ")?;
    let (name, rest) = rest.split_once(" failed: could not find import (looked in [")?;
    let (looked_in, rest) = rest.split_once("])")?;
    let dirs: Vec<PathBuf> = looked_in
        .split(", ")
        .map(|dir| project.root().join(dir))
        .collect();
    let place = user_place(rest)
        .map(|place| format!("{place}: "))
        .unwrap_or_default();
    let found = dirs
        .iter()
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.symlink_metadata().is_ok());
    let cause = match found {
        // Readable now: it changed while berth ran; Nickel's report is all there is.
        Some(candidate) => inputs::read_module(project, &candidate).err()?,
        None => {
            let shown: Vec<String> = dirs.iter().map(|dir| shown(project, dir)).collect();
            format!("no such file (looked in {})", shown.join(", "))
        }
    };
    Some(format!("{place}import \"{name}\": {cause}"))
}

/// Nickel's report with memory addresses (`%<closure@0x7f…>`) taken out: they differ
/// from run to run and mean nothing to a user.
pub fn without_addresses(report: &str) -> String {
    let mut out = String::with_capacity(report.len());
    let mut rest = report;
    while let Some(at) = rest.find("@0x") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 3..];
        let n_hex = after.chars().take_while(char::is_ascii_hexdigit).count();
        rest = &after[n_hex..];
    }
    out.push_str(rest);
    out
}

/// The user's line and a suggestion for a misspelt field (Nickel reports it against a
/// generated record).
fn misspelt_field(project: &Project, stack: &StackRef, report: &str) -> Option<String> {
    let typo = typo::find(report, project, &stack.path)?;
    let place = typo
        .location
        .map(|location| format!("{location}: "))
        .unwrap_or_default();
    let hint = match &typo.suggestion {
        Some(Suggestion::Spelling(name)) => format!("did you mean `{name}`?"),
        Some(Suggestion::Elsewhere(path)) => {
            format!(
                "`{}` is not a field here; it belongs at `{path}`",
                typo.field
            )
        }
        None => "the schemas in schemas/ list every field".to_string(),
    };
    // An empty name (`"" = 1`) is shown quoted, or the line would start with `: `.
    let field = if typo.field.is_empty() {
        "\"\""
    } else {
        typo.field.as_str()
    };
    Some(format!("{place}{field}: unknown field\n  hint: {hint}"))
}

/// A stack module that is neither a record nor a function giving one.
fn not_a_record(report: &str) -> Option<String> {
    if !report.contains(NOT_A_RECORD) {
        return None;
    }
    let place = user_place(report)
        .map(|place| format!("{place}: "))
        .unwrap_or_default();
    Some(format!(
        "{place}{NOT_A_RECORD}\n  hint: e.g. `fun profile => {{ services.web.image = \"nginx\" }}`"
    ))
}

/// Nickel reports an unterminated string at the end of the file; berth finds its start.
fn unterminated_string(project: &Project, report: &str) -> Option<String> {
    let from = report.find("unexpected end of file when parsing ")?;
    let file = report[from..]
        .strip_prefix("unexpected end of file when parsing ")?
        .lines()
        .next()?
        .trim();
    let source = std::fs::read_to_string(project.root().join(file)).ok()?;
    let start = scan::scan(&source).unterminated?;
    Some(format!(
        "{file}:{}:{}: unterminated string: it runs to the end of the file\n  hint: close it with `\"` (a string that spans lines is usually a missing quote)",
        start.line, start.column
    ))
}

/// The first place in a report that is in the user's files (not the schemas, the stdlib
/// or berth's generated main file): `modules/stacks/x.ncl:1:1`.
fn user_place(report: &str) -> Option<&str> {
    report
        .lines()
        .filter_map(|line| line.split_once("┌─ ").map(|(_, place)| place.trim()))
        .find(|place| {
            !(place.starts_with('<')
                || place.starts_with("schemas/")
                || place.starts_with("__berth_main__"))
        })
}

/// Adds berth's merge rules to Nickel's report of a merge conflict.
fn merge_hint(report: String) -> String {
    let conflict = report.contains("non mergeable terms")
        || report.contains("Arrays can only be merged if they are equal");
    if !conflict {
        return report;
    }
    format!(
        "{report}\nhint: two values of one field at the same priority must be equal (arrays never concatenate).\n      \
         Mark the value to be replaced `| default` (module or stack base), or the replacing one `| force`;\n      \
         see \"Merge rules\" in README.md."
    )
}

fn shown(project: &Project, dir: &Path) -> String {
    let relative = project.relative(dir);
    if relative.as_os_str().is_empty() {
        ".".to_string()
    } else {
        relative.display().to_string()
    }
}
