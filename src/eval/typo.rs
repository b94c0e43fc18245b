//! Recovers the user's line for a misspelt field. Nickel reports a closed-contract
//! violation ("extra field `imgae`") against the merged record, which has no source
//! position; this finds where the user wrote the field and which schema field they meant.

use std::path::{Path, PathBuf};

use crate::error::Location;
use crate::model::validate::closest;
use crate::project::Project;

/// A misspelt field found in the user's files.
pub struct Typo {
    pub field: String,
    pub location: Option<Location>,
    pub suggestion: Option<String>,
}

/// The misspelt field named by a Nickel report, if the report is about one.
pub fn find(report: &str, project: &Project, first_file: &Path) -> Option<Typo> {
    let field = between(report, "extra field `", "`")?.to_string();
    let known = schema_fields(project);
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    let suggestion = closest(&field, &known).map(str::to_string);
    let location = search_files(project, first_file)
        .into_iter()
        .find_map(|file| definition_in(&file, &field, project));
    Some(Typo {
        field,
        location,
        suggestion,
    })
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

/// The stack file first, then every module and profile, in a stable order.
fn search_files(project: &Project, first_file: &Path) -> Vec<PathBuf> {
    let mut files = vec![first_file.to_path_buf()];
    for dir in ["modules", "profiles"] {
        let mut found: Vec<PathBuf> = walkdir::WalkDir::new(project.root().join(dir))
            .into_iter()
            .filter_map(Result::ok)
            .map(|entry| entry.into_path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "ncl") && path != first_file)
            .collect();
        found.sort();
        files.extend(found);
    }
    files
}

/// Where `field` is defined in `file`: the name followed by `=`, `|` or `.`.
fn definition_in(file: &Path, field: &str, project: &Project) -> Option<Location> {
    let source = std::fs::read_to_string(file).ok()?;
    for (line_index, line) in source.lines().enumerate() {
        let code = line.split('#').next().unwrap_or("");
        let mut search_from = 0;
        while let Some(offset) = code[search_from..].find(field) {
            let at = search_from + offset;
            let before = code[..at].chars().next_back();
            let after = code[at + field.len()..].trim_start().chars().next();
            let starts_word =
                before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '"'));
            if starts_word && matches!(after, Some('=' | '|' | '.')) {
                return Some(Location {
                    file: project.relative(file).to_path_buf(),
                    line: u32::try_from(line_index + 1).unwrap_or(u32::MAX),
                    column: u32::try_from(code[..at].chars().count() + 1).unwrap_or(u32::MAX),
                });
            }
            search_from = at + field.len();
        }
    }
    None
}

/// Field names declared in the schemas: `name | Contract ...` on one line, or `name`
/// alone with its `| ...` annotations on the following lines.
fn schema_fields(project: &Project) -> Vec<String> {
    let mut fields = Vec::new();
    // The project's schemas and the library's: a project may have either or both.
    let mut paths: Vec<PathBuf> = project
        .schema_dirs()
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|entries| entries.filter_map(Result::ok).map(|e| e.path()))
        .collect();
    paths.sort();
    for path in paths {
        let Ok(source) = std::fs::read_to_string(&path) else {
            continue;
        };
        let lines: Vec<&str> = source.lines().map(str::trim).collect();
        for (index, line) in lines.iter().enumerate() {
            let name: String = line
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() || fields.contains(&name) {
                continue;
            }
            let rest = line[name.len()..].trim_start();
            let annotated_here = rest.starts_with('|');
            let annotated_below = rest.is_empty()
                && lines
                    .get(index + 1)
                    .is_some_and(|next| next.starts_with('|'));
            if annotated_here || annotated_below {
                fields.push(name);
            }
        }
    }
    fields
}
