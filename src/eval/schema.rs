//! The contracts' own description of themselves: every record contract of the schemas and
//! every service module's `Params`, field by field with its `| doc`, contract, default and
//! whether it is optional. Read by `berth doc` (the options reference) and by `berth
//! explain` (the default berth applies to a field no layer sets).

use std::path::{Path, PathBuf};

use nickel_lang_core::{
    error::report::{ColorOpt, report_as_str},
    eval::cache::CacheImpl,
    eval::value::{NickelValue, ValueContentRef},
    program::{Program, ProgramBuilder},
    term::MergePriority,
};
use serde::Serialize;

use super::{explain, nickel_string, relative_paths};
use crate::error::EvalError;
use crate::project::Project;

/// The schema files whose record contracts are documented, in reading order.
pub const SCHEMA_FILES: [&str; 3] = ["stack.ncl", "service.ncl", "profile.ncl"];

/// A record contract (`Service`) or a module's parameters.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaRecord {
    /// `Service`, or the module's import name (`services/postgres.ncl`).
    pub name: String,
    /// The file, as berth names it in messages (`berth:schemas/service.ncl`).
    pub file: PathBuf,
    pub fields: Vec<SchemaField>,
}

/// One field of a record contract.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaField {
    pub name: String,
    pub doc: Option<String>,
    /// The contracts, as written (`Array Port`, `c.OneOf ["tcp", "udp"]`).
    pub contract: String,
    /// `| optional`: may be left out.
    pub optional: bool,
    /// The value of a `| default = …` in the contract itself (profiles' settings and
    /// modules' parameters have them; the stack's fields document theirs instead).
    pub default: Option<serde_json::Value>,
}

/// Every record contract of [`SCHEMA_FILES`], as the project resolves them (its own
/// `schemas/` first, then the library's).
///
/// # Errors
/// A schema file that does not evaluate.
pub fn schema_records(project: &Project) -> Result<Vec<SchemaRecord>, EvalError> {
    let mut records = Vec::new();
    for file in SCHEMA_FILES {
        let path = find_schema(project, file);
        let source = format!("import \"{}\"\n", nickel_string(&path.to_string_lossy()));
        let value = evaluate(project, &source, file)?;
        for (name, value) in record_fields(&value) {
            if let Some(fields) = value.as_ref().and_then(contract_fields) {
                records.push(SchemaRecord {
                    name,
                    file: project.relative(&path),
                    fields,
                });
            }
        }
    }
    Ok(records)
}

/// The `Params` of every service module in `dir`, sorted by file name. A module declares
/// them as `let Params = {…} in` before its body, `fun params => …`, as the library's do:
/// the text before that line, ending in `Params`, evaluates to them.
///
/// # Errors
/// A module that cannot be read, or whose `Params` do not evaluate to a record.
pub fn module_params(project: &Project, dir: &Path) -> Result<Vec<SchemaRecord>, EvalError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| failure("modules", e.to_string()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "ncl"))
        .collect();
    paths.sort();
    let mut records = Vec::new();
    for path in paths {
        let name = format!(
            "services/{}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        let text = std::fs::read_to_string(&path).map_err(|e| failure(&name, e.to_string()))?;
        let Some(body) = text.find("\nfun params =>") else {
            return Err(failure(&name, "no `fun params =>` line".to_string()));
        };
        let source = format!("{}\nParams\n", &text[..body]);
        // Beside the module, so that its relative imports resolve as its own do.
        let value = evaluate_at(project, &source, &path.with_extension("params.ncl"), &name)?;
        let fields = contract_fields(&value)
            .ok_or_else(|| failure(&name, "`Params` is not a record".to_string()))?;
        records.push(SchemaRecord {
            name,
            file: project.relative(&path),
            fields,
        });
    }
    Ok(records)
}

fn find_schema(project: &Project, file: &str) -> PathBuf {
    project
        .schema_dirs()
        .into_iter()
        .map(|dir| dir.join(file))
        .find(|path| path.is_file())
        .unwrap_or_else(|| project.library().join("schemas").join(file))
}

fn evaluate(project: &Project, source: &str, what: &str) -> Result<NickelValue, EvalError> {
    evaluate_at(
        project,
        source,
        &project.root().join("__berth_schema__.ncl"),
        what,
    )
}

/// The record spine of `source`: fields keep their metadata, and optional fields without
/// a value are kept (a full evaluation for export would drop them).
fn evaluate_at(
    project: &Project,
    source: &str,
    path: &Path,
    what: &str,
) -> Result<NickelValue, EvalError> {
    let mut program: Program<CacheImpl> = ProgramBuilder::new()
        .add_source_string(source.to_string(), path.to_path_buf())
        .add_import_paths(project.import_paths())
        .build()
        .map_err(|e| failure(what, e.to_string()))?;
    program.eval_record_spine().map_err(|e| {
        let report = report_as_str(&mut program.files(), e, ColorOpt::Never);
        failure(
            what,
            explain::without_addresses(&relative_paths(project, &report)),
        )
    })
}

fn failure(what: &str, report: String) -> EvalError {
    EvalError {
        stack: what.to_string(),
        profile: String::new(),
        report,
    }
}

fn record_fields(value: &NickelValue) -> Vec<(String, Option<NickelValue>)> {
    let ValueContentRef::Record(record) = value.content_ref() else {
        return Vec::new();
    };
    record
        .into_opt()
        .iter()
        .flat_map(|record| &record.fields)
        .map(|(ident, field)| (ident.label().to_string(), field.value.clone()))
        .collect()
}

/// The fields of a record contract, in the order written; `None` for anything else
/// (a custom contract such as `HealthTest` is a function).
fn contract_fields(value: &NickelValue) -> Option<Vec<SchemaField>> {
    let ValueContentRef::Record(record) = value.content_ref() else {
        return None;
    };
    let Some(record) = record.into_opt() else {
        return Some(Vec::new());
    };
    let mut fields: Vec<(u32, SchemaField)> = record
        .fields
        .iter()
        .map(|(ident, field)| {
            let metadata = &field.metadata;
            let contract = metadata
                .iter_annots()
                .map(|annotation| annotation.typ.to_string())
                .collect::<Vec<_>>()
                .join(" | ");
            let default = match metadata.priority() {
                MergePriority::Bottom => field
                    .value
                    .as_ref()
                    .and_then(|value| serde_json::to_value(value).ok()),
                _ => None,
            };
            let order = ident.pos.into_opt().map_or(u32::MAX, |span| span.start.0);
            let schema_field = SchemaField {
                name: ident.label().to_string(),
                doc: metadata.doc().map(str::to_string),
                contract,
                optional: metadata.opt(),
                default,
            };
            (order, schema_field)
        })
        .collect();
    fields.sort_by_key(|(order, _)| *order);
    Some(fields.into_iter().map(|(_, field)| field).collect())
}
