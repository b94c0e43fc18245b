//! Recovers the user's line for a misspelt field. Nickel reports a closed-contract
//! violation ("extra field `imgae`") against the merged record, which has no source
//! position; this finds where the user wrote the field and which schema field they meant.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::Location;
use crate::model::validate::closest;
use crate::project::Project;

/// A misspelt field found in the user's files.
pub struct Typo {
    pub field: String,
    pub location: Option<Location>,
    pub suggestion: Option<Suggestion>,
}

/// What the user probably meant.
pub enum Suggestion {
    /// A field of this record spelt alike.
    Spelling(String),
    /// The field exists, deeper in a service or stack: its full path (`resources.limits.cpus`).
    Elsewhere(String),
}

/// The misspelt field named by a Nickel report, if the report is about one.
pub fn find(report: &str, project: &Project, first_file: &Path) -> Option<Typo> {
    let field = between(report, "extra field `", "`")?.to_string();
    let schemas = schema_records(project);
    let suggestion = match path_to(&schemas, &field) {
        Some(path) => Some(Suggestion::Elsewhere(path)),
        // Every name starts with the empty one: no suggestion means anything.
        None if field.is_empty() => None,
        None => {
            let known: Vec<&str> = schemas
                .values()
                .flatten()
                .map(|(name, _)| name.as_str())
                .collect();
            closest(&field, &known).map(|name| Suggestion::Spelling(name.to_string()))
        }
    };
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
    // An empty name (`"" = 1`) matches everywhere, and the search below would never end.
    if field.is_empty() {
        return None;
    }
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

/// The record contracts of the schemas (`Service`, `ResourceSet`…), each with its fields and
/// the contract each field names first (`resources | Resources` gives `Resources`).
/// Fields are `name | Contract ...` on one line, or `name` alone with its `| ...`
/// annotations on the following lines; contracts are the capitalised `Name = {` lines.
/// The project's schemas and the library's are read: a project may have either or both.
fn schema_records(project: &Project) -> BTreeMap<String, Vec<(String, String)>> {
    let mut records: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
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
        let mut owner = String::new();
        for (index, line) in lines.iter().enumerate() {
            let name: String = line
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() {
                continue;
            }
            let rest = line[name.len()..].trim_start();
            if name.starts_with(|c: char| c.is_ascii_uppercase()) {
                if rest.starts_with('=') {
                    owner.clone_from(&name);
                }
                continue;
            }
            let annotation = if rest.starts_with('|') {
                Some(rest)
            } else if rest.is_empty() {
                lines
                    .get(index + 1)
                    .copied()
                    .filter(|next| next.starts_with('|'))
            } else {
                None
            };
            if let Some(annotation) = annotation {
                let fields = records.entry(owner.clone()).or_default();
                if !fields.iter().any(|(known, _)| *known == name) {
                    fields.push((name, first_contract(annotation)));
                }
            }
        }
    }
    records
}

/// `Resources` from `| Resources | doc …`, `Service` from `| { _ | s.Service }`.
fn first_contract(annotation: &str) -> String {
    let first = annotation
        .trim_start_matches('|')
        .split('|')
        .next()
        .unwrap_or("");
    let first = annotation
        .strip_prefix("| { _ |")
        .map_or(first, |inner| inner.split('}').next().unwrap_or(""));
    let token = first.trim().rsplit(['.', ' ']).next().unwrap_or("");
    token.trim().to_string()
}

/// The full path of `field` from a service (or else the stack), when it is a field of a
/// record nested in one: `cpus` is `resources.limits.cpus`. `None` when it is a field of
/// the service or stack itself, or of no record at all.
fn path_to(records: &BTreeMap<String, Vec<(String, String)>>, field: &str) -> Option<String> {
    for root in ["Service", "Stack"] {
        // Breadth-first, so the shortest path wins; `seen` keeps recursive contracts finite.
        let mut queue = std::collections::VecDeque::from([(root.to_string(), String::new())]);
        let mut seen = std::collections::BTreeSet::new();
        while let Some((record, prefix)) = queue.pop_front() {
            if !seen.insert(record.clone()) {
                continue;
            }
            let Some(fields) = records.get(&record) else {
                continue;
            };
            for (name, contract) in fields {
                let path = format!("{prefix}{name}");
                if name == field {
                    return (record != root).then_some(path);
                }
                queue.push_back((contract.clone(), format!("{path}.")));
            }
        }
    }
    None
}
