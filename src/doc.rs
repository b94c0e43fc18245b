//! The options reference (`berth doc`): every field of the schema's record contracts and
//! of each service module's parameters, as Markdown and as one static HTML page with a
//! search box. Pure: it formats what `eval::schema_records` and `eval::module_params`
//! read from the contracts' `| doc` strings; same input, same bytes.

mod html;

use std::collections::BTreeSet;

pub use html::html;

use crate::eval::{SchemaField, SchemaRecord};
use crate::explain::Segment;
use crate::render::fidelity::{self, Backend, Support};

/// File names `berth doc` writes.
pub const MARKDOWN_FILE: &str = "options.md";
pub const HTML_FILE: &str = "options.html";

/// Where each record contract sits in a built stack. `<name>` stands for any key, `[]`
/// for any element. A record not listed is documented under its own name.
pub const RECORD_PATHS: &[(&str, &str)] = &[
    ("Stack", ""),
    ("Service", "services.<name>"),
    ("Port", "services.<name>.ports[]"),
    ("Mount", "services.<name>.volumes[]"),
    ("Build", "services.<name>.build"),
    ("HttpProbe", "services.<name>.healthcheck.test.http"),
    ("Healthcheck", "services.<name>.healthcheck"),
    ("ResourceSet", "services.<name>.resources.limits"),
    ("ResourceSet", "services.<name>.resources.reservations"),
    ("Resources", "services.<name>.resources"),
    ("Logging", "services.<name>.logging"),
    ("EnvFile", "services.<name>.env_file[]"),
    ("Backup", "services.<name>.backup"),
    ("Metrics", "services.<name>.metrics"),
    (
        "ScalePolicy",
        "services.<name>.kubernetes.autoscaling.scale_up",
    ),
    (
        "ScalePolicy",
        "services.<name>.kubernetes.autoscaling.scale_down",
    ),
    ("Autoscaling", "services.<name>.kubernetes.autoscaling"),
    ("Ingress", "services.<name>.kubernetes.ingress"),
    ("Kubernetes", "services.<name>.kubernetes"),
    ("Volume", "volumes.<name>"),
    ("Network", "networks.<name>"),
    ("Variable", "variables.<name>"),
    ("Monitoring", "monitoring"),
    ("ProfileInfo", "profile"),
    ("Profile", "<profile file>"),
];

/// One documented option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Option_ {
    /// Where it is written: `services.<name>.replicas`, `postgres { host_port }`.
    pub path: String,
    /// The record contract or module it belongs to.
    pub record: String,
    pub contract: String,
    /// `required`, or the default (as the contract sets it or its doc states it).
    pub default: String,
    pub description: String,
    pub example: String,
    /// Which backends use it (service fields, from `render::fidelity`).
    pub backends: String,
}

/// The record contract found at `parent` (the path of the record holding a field).
pub fn record_at(parent: &[Segment]) -> Option<&'static str> {
    RECORD_PATHS
        .iter()
        .find(|(_, pattern)| matches_pattern(pattern, parent))
        .map(|(record, _)| *record)
}

fn matches_pattern(pattern: &str, path: &[Segment]) -> bool {
    if pattern.starts_with('<') && !pattern.starts_with("<name>") {
        return false;
    }
    let mut steps: Vec<&str> = Vec::new();
    for part in pattern.split('.').filter(|part| !part.is_empty()) {
        match part.strip_suffix("[]") {
            Some(key) => steps.extend([key, "[]"]),
            None => steps.push(part),
        }
    }
    steps.len() == path.len()
        && steps.iter().zip(path).all(|(step, segment)| match segment {
            Segment::Index(_) => *step == "[]",
            Segment::Key(key) => *step == "<name>" || step == key,
        })
}

/// The default a doc string states: the text after `Default:` up to the end of its
/// sentence (a period followed by a space or the end).
pub fn documented_default(doc: &str) -> Option<String> {
    let start = doc.find("Default:")? + "Default:".len();
    let rest = doc[start..].trim_start();
    let end = sentence_end(rest);
    Some(rest[..end].trim().to_string())
}

fn sentence_end(text: &str) -> usize {
    let mut in_quote = false;
    let mut in_code = false;
    for (at, c) in text.char_indices() {
        match c {
            '"' => in_quote = !in_quote,
            '`' => in_code = !in_code,
            '.' if !in_quote && !in_code => {
                let next = text[at + 1..].chars().next();
                if next.is_none_or(char::is_whitespace) {
                    return at;
                }
            }
            _ => {}
        }
    }
    text.len()
}

/// The fields that lack a doc string, or a stated default where they are optional and
/// the contract sets none: `Record.field` each.
pub fn undocumented(records: &[SchemaRecord]) -> Vec<String> {
    let mut out = Vec::new();
    for record in records {
        for field in &record.fields {
            let doc = field.doc.as_deref().unwrap_or("").trim();
            let needs_default = field.optional && field.default.is_none();
            if doc.is_empty() || (needs_default && documented_default(doc).is_none()) {
                out.push(format!("{}.{}", record.name, field.name));
            }
        }
    }
    out
}

/// Every option, schema records first (in `RECORD_PATHS` order), then the modules'.
pub fn options(schema: &[SchemaRecord], modules: &[SchemaRecord]) -> Vec<Option_> {
    let mut out = Vec::new();
    // ProfileInfo is Profile without `service_defaults`: documented once, as Profile.
    let mut ordered: Vec<&SchemaRecord> = Vec::new();
    for (name, _) in RECORD_PATHS {
        let record = schema
            .iter()
            .find(|r| r.name == *name && r.name != "ProfileInfo");
        if let Some(record) = record.filter(|r| !ordered.iter().any(|seen| seen.name == r.name)) {
            ordered.push(record);
        }
    }
    let listed: BTreeSet<&str> = RECORD_PATHS.iter().map(|(name, _)| *name).collect();
    ordered.extend(schema.iter().filter(|r| !listed.contains(r.name.as_str())));
    for record in ordered {
        let prefixes: Vec<&str> = RECORD_PATHS
            .iter()
            .filter(|(name, _)| *name == record.name)
            .map(|(_, prefix)| *prefix)
            .collect();
        let prefix = prefixes.first().copied().unwrap_or(record.name.as_str());
        for field in &record.fields {
            out.push(option(record, field, &field_path(prefix, &field.name)));
        }
    }
    for module in modules {
        let short = module
            .name
            .trim_start_matches("services/")
            .trim_end_matches(".ncl");
        for field in &module.fields {
            out.push(option(
                module,
                field,
                &format!("{short} {{ {} }}", field.name),
            ));
        }
    }
    out
}

fn field_path(prefix: &str, field: &str) -> String {
    match prefix {
        "" => field.to_string(),
        "<profile file>" => field.to_string(),
        _ => format!("{prefix}.{field}"),
    }
}

fn option(record: &SchemaRecord, field: &SchemaField, path: &str) -> Option_ {
    let doc = field.doc.as_deref().unwrap_or("").trim().to_string();
    // The doc's own words first: a default computed from other parameters
    // (`"%{name}_data"`) is better said than shown evaluated.
    let default = match (&field.default, documented_default(&doc), field.optional) {
        (_, Some(text), _) => text,
        (Some(value), None, _) => format!("`{value}`"),
        (None, None, true) => "none".to_string(),
        (None, None, false) => "required".to_string(),
    };
    let example = example(&doc)
        .or_else(|| {
            field
                .default
                .as_ref()
                .map(|value| format!("{} = {value}", field.name))
        })
        .unwrap_or_else(|| "—".to_string());
    Option_ {
        path: path.to_string(),
        record: record.name.clone(),
        contract: field.contract.clone(),
        default,
        description: doc,
        example,
        backends: backends(record, field),
    }
}

/// The doc string's own example: what follows `e.g.` to the end of its clause.
fn example(doc: &str) -> Option<String> {
    let start = doc.find("e.g.")? + "e.g.".len();
    let rest = doc[start..].trim_start();
    let end = sentence_end(rest).min(clause_end(rest));
    let text = rest[..end].trim().trim_end_matches([',', ')', ';']);
    (!text.is_empty()).then(|| text.to_string())
}

fn clause_end(text: &str) -> usize {
    let mut depth = 0i32;
    let mut in_quote = false;
    for (at, c) in text.char_indices() {
        match c {
            '"' => in_quote = !in_quote,
            '{' | '[' | '(' if !in_quote => depth += 1,
            '}' | ']' if !in_quote => depth -= 1,
            ')' if !in_quote => {
                if depth == 0 {
                    return at;
                }
                depth -= 1;
            }
            ';' if !in_quote && depth == 0 => return at,
            _ => {}
        }
    }
    text.len()
}

fn backends(record: &SchemaRecord, field: &SchemaField) -> String {
    if record.name != "Service" {
        return "—".to_string();
    }
    let Some(row) = fidelity::service_field(&field.name) else {
        return "—".to_string();
    };
    Backend::ALL
        .iter()
        .filter_map(|backend| match row.get(*backend) {
            Support::Rendered => Some(backend.name().to_string()),
            Support::Reported(_) => Some(format!("{} (reported)", backend.name())),
            Support::NotApplicable(_) => None,
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The reference as Markdown (docs/options.md).
pub fn markdown(options: &[Option_]) -> String {
    let mut out = String::from(
        "# berth options reference\n\n\
         Generated by `berth doc` from the contracts' `| doc` strings (schemas/*.ncl) and the\n\
         library's service modules; do not edit. Paths are as a built stack holds them\n\
         (`<name>`: any key, `[]`: any element); a profile file's own fields are listed under\n\
         Profile, a service module's parameters as `module { parameter }`. \"Backends\" is\n\
         from the fidelity table (docs/fidelity.md): where a service field is rendered, or\n\
         reported as not carried. `berth explain` shows where a built stack's value came from.\n",
    );
    let mut record = "";
    for option in options {
        if option.record != record {
            record = &option.record;
            out.push_str(&format!("\n## {record}\n\n"));
            out.push_str("| path | contract | default | description | example | backends |\n");
            out.push_str("|---|---|---|---|---|---|\n");
        }
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            option.path,
            cell(&code(&option.contract)),
            cell(&option.default),
            cell(&option.description),
            cell(&option.example),
            cell(&option.backends),
        ));
    }
    out
}

fn code(text: &str) -> String {
    if text.is_empty() {
        "—".to_string()
    } else {
        format!("`{text}`")
    }
}

/// A table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}
