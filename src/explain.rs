//! Why a field of a built stack has its value: every layer that defines it (service
//! module, stack, `overrides.<profile>`, profile `service_defaults`, the profile, berth's
//! documented default), each with its place and merge priority, and which one won by
//! Nickel's rules. Pure: it reads the layers `eval::layers` evaluated; secrets never show.

mod path;
mod report;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

pub use path::{FieldPath, Segment};
pub use report::text;

use crate::doc;
use crate::error::Location;
use crate::eval::{Layers, Node, NodeValue, Priority, SchemaRecord};
use crate::model::text::Text;

/// How a secret's value is shown.
pub const SECRET: &str = "<secret>";

/// What `berth explain` says about one field.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub path: String,
    pub stack: String,
    pub profile: String,
    /// The value in the built stack; `None` when no layer sets it.
    pub value: Option<Value>,
    /// Every layer that defines the field, in merge order.
    pub definitions: Vec<Definition>,
    /// The default berth applies when no layer sets the field, as its schema documents it.
    pub schema_default: Option<SchemaDefault>,
    /// Which definition won, and why, in a sentence.
    pub why: String,
    /// The variables the value reads.
    pub variables: Vec<VariableUse>,
}

/// One layer's definition of the field.
#[derive(Debug, Clone, Serialize)]
pub struct Definition {
    pub layer: String,
    /// Where the value was written.
    pub location: Option<Location>,
    /// Where the field was declared, when elsewhere (a service module's field whose
    /// value is the stack's parameter).
    pub field_location: Option<Location>,
    /// `default`, `plain`, `priority N` or `force`.
    pub priority: String,
    /// An enclosing field whose priority is not plain (`logging | force = {…}`): it
    /// decides the merge for everything inside.
    pub inside: Option<String>,
    pub value: Value,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Outcome {
    /// The only definition at the highest priority.
    Won,
    /// One of several at the highest priority: the values merge (records), or are equal.
    Merged,
    /// Another layer's higher priority at `at` replaced it.
    Lost { to: String, at: String },
}

/// A default berth applies (`model.rs`), as the schema's doc string states it.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaDefault {
    /// The schema record and field (`Service.replicas`).
    pub field: String,
    pub default: String,
}

/// A variable the value reads: `${NAME}`.
#[derive(Debug, Clone, Serialize)]
pub struct VariableUse {
    pub name: String,
    pub secret: bool,
    pub default: Option<Value>,
    pub description: Option<String>,
    /// Line of `.env.template` that documents it.
    pub env_template_line: Option<usize>,
}

/// The path is not a field of the built stack, nor one its schema knows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unknown {
    pub path: String,
    /// A field of the same record spelt alike.
    pub suggestion: Option<String>,
}

/// Why `berth explain` explained nothing.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("bad field path {0}")]
    BadPath(String),
    #[error("{stack}/{profile}: no field `{}`{}", unknown.path, hint(unknown))]
    Unknown {
        stack: String,
        profile: String,
        unknown: Unknown,
    },
    #[error("no field path given\nhint: name one (`services.api.replicas`), or use --all")]
    NoPath,
}

fn hint(unknown: &Unknown) -> String {
    match &unknown.suggestion {
        Some(path) => format!("\nhint: did you mean `{path}`?"),
        None => "\nhint: `berth explain --all` lists every field of the built stack".to_string(),
    }
}

/// What `explain` reads besides the layers.
pub struct Context<'a> {
    pub stack: &'a str,
    pub profile: &'a str,
    pub schema: &'a [SchemaRecord],
    /// The stack's `.env.template`, for the line of each variable.
    pub env_template: Option<&'a str>,
}

/// Explains `path` in the stack `layers` were evaluated for.
///
/// # Errors
/// [`Unknown`] when neither the built stack nor the schema has the field.
pub fn explain(layers: &Layers, path: &FieldPath, ctx: &Context) -> Result<Explanation, Unknown> {
    let merged = find(&layers.merged, path.segments());
    let schema_default = match merged {
        Some(_) => None,
        None => documented_default(path, ctx.schema),
    };
    if merged.is_none() && schema_default.is_none() && !is_schema_field(path, ctx.schema) {
        return Err(unknown(layers, path, ctx.schema));
    }
    let secrets = secret_names(&layers.merged);
    let definitions = definitions(layers, path, &secrets);
    let value = merged.map(|node| {
        let value = index_into(
            node_json(node),
            &path.segments()[path.merge_prefix().len()..],
        );
        redact(path.segments(), value, &secrets)
    });
    let variables = value
        .as_ref()
        .map(|value| variables(value, &layers.merged, ctx.env_template))
        .unwrap_or_default();
    let why = report::why(&definitions, schema_default.as_ref(), value.is_some());
    Ok(Explanation {
        path: path.to_string(),
        stack: ctx.stack.to_string(),
        profile: ctx.profile.to_string(),
        value,
        definitions,
        schema_default,
        why,
        variables,
    })
}

/// Whether the built stack holds `path`.
pub fn is_set(layers: &Layers, path: &FieldPath) -> bool {
    find(&layers.merged, path.segments()).is_some()
}

/// Every leaf path of the built stack (arrays count as leaves), for `--all`.
pub fn leaf_paths(layers: &Layers) -> Vec<FieldPath> {
    let mut out = Vec::new();
    collect_leaves(&layers.merged, &mut Vec::new(), &mut out);
    out
}

fn collect_leaves(node: &Node, at: &mut Vec<Segment>, out: &mut Vec<FieldPath>) {
    match &node.value {
        NodeValue::Record(fields) if !fields.is_empty() => {
            for (key, child) in fields {
                at.push(Segment::Key(key.clone()));
                collect_leaves(child, at, out);
                at.pop();
            }
        }
        _ if !at.is_empty() => out.push(FieldPath::new(at.clone())),
        _ => {}
    }
}

/// A layer's view of the stack: its root, and the path prefix its root stands for.
struct Source<'a> {
    name: String,
    root: &'a Node,
    /// Segments of the full path the root stands for (`services.api` for the defaults).
    prefix: usize,
}

fn sources<'a>(layers: &'a Layers, path: &FieldPath) -> Vec<Source<'a>> {
    let keys = path.keys();
    let source = |name: &str, root, prefix| Source {
        name: name.to_string(),
        root,
        prefix,
    };
    match keys.first().map(String::as_str) {
        Some("profile") => vec![source("profile", &layers.settings, 1)],
        Some("services") => {
            let mut sources = stack_and_overrides(layers, path);
            // The defaults go into every service of the merged stack, not into others.
            let in_merged = keys.get(1).is_some_and(|name| {
                find(&layers.merged, &path.segments()[..2]).is_some() && !name.is_empty()
            });
            if in_merged {
                sources.push(source(
                    "profile service_defaults",
                    &layers.service_defaults,
                    2,
                ));
            }
            sources
        }
        _ => stack_and_overrides(layers, path),
    }
}

/// The stack layer and `overrides.<profile>`, each as the pieces of the stack file's
/// top-level `&` that define `path` (one definition per operand), or whole when no piece
/// accounts for the layer's definition (an operand that only merged with another one
/// gives it) or the file has no such chain.
fn stack_and_overrides<'a>(layers: &'a Layers, path: &FieldPath) -> Vec<Source<'a>> {
    let overrides = format!("overrides.{}", profile_name(layers));
    let mut sources = pieces_or_whole(
        "stack",
        &layers.stack,
        layers.pieces.iter().map(|piece| &piece.stack),
        path,
    );
    sources.extend(pieces_or_whole(
        &overrides,
        &layers.overrides,
        layers.pieces.iter().map(|piece| &piece.overrides),
        path,
    ));
    sources
}

fn pieces_or_whole<'a>(
    name: &str,
    whole: &'a Node,
    pieces: impl Iterator<Item = &'a Node>,
    path: &FieldPath,
) -> Vec<Source<'a>> {
    let source = |root| Source {
        name: name.to_string(),
        root,
        prefix: 0,
    };
    let merge_path = path.merge_prefix();
    let pieces: Vec<&Node> = pieces.collect();
    let whole_defines = find(whole, merge_path).is_some();
    let piece_defines = pieces.iter().any(|piece| find(piece, merge_path).is_some());
    if pieces.is_empty() || (whole_defines && !piece_defines) {
        vec![source(whole)]
    } else {
        pieces.into_iter().map(source).collect()
    }
}

fn profile_name(layers: &Layers) -> String {
    match find(&layers.settings, &[Segment::Key("name".to_string())]).map(|node| &node.value) {
        Some(NodeValue::Value(Value::String(name))) => name.clone(),
        _ => "<profile>".to_string(),
    }
}

/// One layer's walk down the path: the priority met at each level it defines.
struct Walk<'a> {
    source: usize,
    chain: Vec<Priority>,
    node: Option<&'a Node>,
}

fn definitions(layers: &Layers, path: &FieldPath, secrets: &[String]) -> Vec<Definition> {
    let merge_path = path.merge_prefix();
    let sources = sources(layers, path);
    let walks: Vec<Walk> = sources
        .iter()
        .enumerate()
        .map(|(index, source)| walk(index, source, merge_path))
        .collect();
    let lost = eliminate(&walks, merge_path.len());
    let mut definitions: Vec<Definition> = Vec::new();
    for walk in &walks {
        let Some(node) = walk.node else { continue };
        let source = &sources[walk.source];
        let outcome = match lost.get(&walk.source) {
            Some((winner, depth)) => Outcome::Lost {
                to: sources[*winner].name.clone(),
                at: FieldPath::new(merge_path[..=*depth].to_vec()).to_string(),
            },
            None => Outcome::Won,
        };
        let value = node_json(node);
        let value = index_into(value, &path.segments()[merge_path.len()..]);
        definitions.push(Definition {
            layer: layer_name(&source.name, node),
            location: node.location.clone(),
            field_location: node
                .field_location
                .clone()
                .filter(|field| node.location.as_ref() != Some(field)),
            priority: priority_text(&node.priority),
            inside: inside(walk, merge_path),
            value: redact(path.segments(), value, secrets),
            outcome,
        });
    }
    let n_won = definitions
        .iter()
        .filter(|d| d.outcome == Outcome::Won)
        .count();
    if n_won > 1 {
        for definition in &mut definitions {
            if definition.outcome == Outcome::Won {
                definition.outcome = Outcome::Merged;
            }
        }
    }
    definitions.extend(stem_default(layers, path));
    definitions
}

fn walk<'a>(index: usize, source: &Source<'a>, merge_path: &[Segment]) -> Walk<'a> {
    // The levels above the layer's root are plain records (`services.api` of the defaults).
    let mut chain = vec![Priority::Plain; source.prefix.min(merge_path.len())];
    let mut node = Some(source.root);
    for segment in merge_path.iter().skip(source.prefix) {
        node = node.and_then(|node| child(node, segment));
        match node {
            Some(found) => chain.push(found.priority.clone()),
            None => break,
        }
    }
    let defines_all = chain.len() == merge_path.len() && node.is_some();
    Walk {
        source: index,
        chain: if defines_all || chain.len() > source.prefix {
            chain
        } else {
            Vec::new()
        },
        node: if defines_all { node } else { None },
    }
}

/// Nickel's merge, level by level: where layers define the same field at different
/// priorities the highest replaces the others whole. Returns each loser's winner and the
/// depth it lost at.
fn eliminate(walks: &[Walk], depth: usize) -> BTreeMap<usize, (usize, usize)> {
    let mut alive: Vec<&Walk> = walks.iter().filter(|walk| !walk.chain.is_empty()).collect();
    let mut lost = BTreeMap::new();
    for level in 0..depth {
        let here: Vec<&Walk> = alive
            .into_iter()
            .filter(|walk| walk.chain.len() > level)
            .collect();
        let Some(best) = here
            .iter()
            .max_by(|a, b| rank_cmp(&a.chain[level], &b.chain[level]))
            .map(|walk| (walk.source, walk.chain[level].rank()))
        else {
            break;
        };
        for walk in &here {
            if walk.chain[level].rank() < best.1 {
                lost.insert(walk.source, (best.0, level));
            }
        }
        alive = here
            .into_iter()
            .filter(|walk| walk.chain[level].rank() == best.1)
            .collect();
    }
    lost
}

fn rank_cmp(a: &Priority, b: &Priority) -> std::cmp::Ordering {
    a.rank()
        .partial_cmp(&b.rank())
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// The enclosing field with a priority of its own, when there is one.
fn inside(walk: &Walk, merge_path: &[Segment]) -> Option<String> {
    let last = walk.chain.len().checked_sub(1)?;
    let level = walk.chain[..last]
        .iter()
        .position(|priority| *priority != Priority::Plain)?;
    Some(format!(
        "{} | {}",
        FieldPath::new(merge_path[..=level].to_vec()),
        priority_text(&walk.chain[level])
    ))
}

/// `name | default = <stack file name>`, which `finalize` adds.
fn stem_default(layers: &Layers, path: &FieldPath) -> Option<Definition> {
    if path.keys() != ["name"] {
        return None;
    }
    let stack_sets_it = find(&layers.stack, path.segments()).is_some()
        || find(&layers.overrides, path.segments()).is_some();
    Some(Definition {
        layer: "berth (the stack's file name)".to_string(),
        location: None,
        field_location: None,
        priority: "default".to_string(),
        inside: None,
        value: Value::String(layers.stem.clone()),
        outcome: if stack_sets_it {
            Outcome::Lost {
                to: "stack".to_string(),
                at: "name".to_string(),
            }
        } else {
            Outcome::Won
        },
    })
}

/// The stack layer holds service modules and the stack's own record, told apart by the
/// file the value was written in; the profile layer holds the `Profile` contract's defaults.
///
/// A module's field is told by where the field was declared (its value may be the
/// stack's parameter); a profile's by where the value was written (the contract declares
/// every field).
fn layer_name(source: &str, node: &Node) -> String {
    let file = |location: Option<&Location>| {
        location
            .map(|location| location.file.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default()
    };
    let declared = file(node.field_location.as_ref().or(node.location.as_ref()));
    let written = file(node.location.as_ref());
    match source {
        "stack" if declared.contains("modules/services/") => "service module".to_string(),
        "profile" if written.contains("schemas/") => {
            "schema default (Profile contract)".to_string()
        }
        _ => source.to_string(),
    }
}

pub fn priority_text(priority: &Priority) -> String {
    match priority {
        Priority::Default => "default".to_string(),
        Priority::Plain => "plain".to_string(),
        Priority::Number(n) => format!("priority {n}"),
        Priority::Force => "force".to_string(),
    }
}

fn child<'a>(node: &'a Node, segment: &Segment) -> Option<&'a Node> {
    match (&node.value, segment) {
        (NodeValue::Record(fields), Segment::Key(key)) => fields.get(key),
        _ => None,
    }
}

/// The node at `segments`; an index into an array finds the array's node when the
/// element exists.
fn find<'a>(root: &'a Node, segments: &[Segment]) -> Option<&'a Node> {
    let mut node = root;
    for (at, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Key(_) => node = child(node, segment)?,
            Segment::Index(_) => {
                let NodeValue::Value(value) = &node.value else {
                    return None;
                };
                let element = index_into(value.clone(), &segments[at..]);
                return (!element.is_null()).then_some(node);
            }
        }
    }
    Some(node)
}

fn index_into(value: Value, rest: &[Segment]) -> Value {
    let mut value = value;
    for segment in rest {
        value = match segment {
            Segment::Index(i) => value.get(*i).cloned().unwrap_or(Value::Null),
            Segment::Key(key) => value.get(key).cloned().unwrap_or(Value::Null),
        };
    }
    value
}

/// The node as plain JSON.
pub fn node_json(node: &Node) -> Value {
    match &node.value {
        NodeValue::Value(value) => value.clone(),
        NodeValue::Record(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, child)| (key.clone(), node_json(child)))
                .collect(),
        ),
    }
}

/// `value` (found at `path`) with every secret replaced by [`SECRET`]: a variable's
/// `dev_value` (only secrets have one), and the `default` of a secret variable.
fn redact(path: &[Segment], value: Value, secrets: &[String]) -> Value {
    let keys: Vec<String> = path
        .iter()
        .filter_map(Segment::key)
        .map(str::to_string)
        .collect();
    redact_at(&mut keys.clone(), value, secrets)
}

fn redact_at(keys: &mut Vec<String>, value: Value, secrets: &[String]) -> Value {
    if let [first, name, field, ..] = keys.as_slice() {
        let is_secret = field == "dev_value" || (field == "default" && secrets.contains(name));
        if first == "variables" && is_secret {
            return Value::String(SECRET.to_string());
        }
    }
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(key, child)| {
                    keys.push(key.clone());
                    let child = redact_at(keys, child, secrets);
                    keys.pop();
                    (key, child)
                })
                .collect(),
        ),
        value => value,
    }
}

/// The variables the stack declares secret.
fn secret_names(merged: &Node) -> Vec<String> {
    let variables = find(merged, &[Segment::Key("variables".to_string())]).map(node_json);
    let Some(Value::Object(variables)) = variables else {
        return Vec::new();
    };
    variables
        .into_iter()
        .filter(|(_, variable)| variable.get("secret") == Some(&Value::Bool(true)))
        .map(|(name, _)| name)
        .collect()
}

/// The variables `value` reads, with what the stack declares of them.
fn variables(value: &Value, merged: &Node, env_template: Option<&str>) -> Vec<VariableUse> {
    let mut names = Vec::new();
    collect_variables(value, &mut names);
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let declared = find(
                merged,
                &[
                    Segment::Key("variables".to_string()),
                    Segment::Key(name.clone()),
                ],
            )
            .map(node_json);
            let field = |key: &str| declared.as_ref().and_then(|d| d.get(key)).cloned();
            let secret = field("secret") == Some(Value::Bool(true));
            VariableUse {
                default: if secret { None } else { field("default") },
                description: field("description").and_then(|d| d.as_str().map(str::to_string)),
                env_template_line: env_template.and_then(|text| env_line(text, &name)),
                name,
                secret,
            }
        })
        .collect()
}

fn collect_variables(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => {
            if let Ok(text) = Text::parse(text) {
                out.extend(text.variables().map(str::to_string));
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_variables(item, out)),
        Value::Object(fields) => fields
            .values()
            .for_each(|item| collect_variables(item, out)),
        _ => {}
    }
}

/// The 1-based line of `.env.template` that sets `name` (commented out when it has a default).
fn env_line(text: &str, name: &str) -> Option<usize> {
    let set = format!("{name}=");
    text.lines()
        .position(|line| line.trim_start_matches(['#', ' ']).starts_with(&set))
        .map(|index| index + 1)
}

/// The default the schema documents for a field no layer sets.
fn documented_default(path: &FieldPath, schema: &[SchemaRecord]) -> Option<SchemaDefault> {
    let (record, field) = schema_field(path, schema)?;
    let default = match (
        &field.default,
        field.doc.as_deref().and_then(doc::documented_default),
    ) {
        (Some(value), _) => value.to_string(),
        (None, Some(text)) => text,
        (None, None) => return None,
    };
    Some(SchemaDefault {
        field: format!("{}.{}", record.name, field.name),
        default,
    })
}

fn is_schema_field(path: &FieldPath, schema: &[SchemaRecord]) -> bool {
    schema_field(path, schema).is_some()
}

fn schema_field<'a>(
    path: &FieldPath,
    schema: &'a [SchemaRecord],
) -> Option<(&'a SchemaRecord, &'a crate::eval::SchemaField)> {
    let (parent, Segment::Key(name)) = path.segments().split_last().map(|(l, p)| (p, l))? else {
        return None;
    };
    let record_name = doc::record_at(parent)?;
    let record = schema.iter().find(|record| record.name == record_name)?;
    let field = record.fields.iter().find(|field| &field.name == name)?;
    Some((record, field))
}

/// The unknown path, with the closest field name of its deepest known record.
fn unknown(layers: &Layers, path: &FieldPath, schema: &[SchemaRecord]) -> Unknown {
    let segments = path.segments();
    let mut known = 0;
    while known < segments.len() && find(&layers.merged, &segments[..=known]).is_some() {
        known += 1;
    }
    let parent = &segments[..known];
    let mut names: Vec<String> = match find(&layers.merged, parent).map(|node| &node.value) {
        Some(NodeValue::Record(fields)) => fields.keys().cloned().collect(),
        _ => Vec::new(),
    };
    if let Some(record) =
        doc::record_at(parent).and_then(|name| schema.iter().find(|r| r.name == name))
    {
        names.extend(record.fields.iter().map(|field| field.name.clone()));
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let suggestion = segments
        .get(known)
        .and_then(Segment::key)
        .and_then(|wrong| {
            crate::model::validate::closest(wrong, &names).map(|name| {
                let mut fixed = parent.to_vec();
                fixed.push(Segment::Key(name.to_string()));
                FieldPath::new(fixed).to_string()
            })
        });
    Unknown {
        path: path.to_string(),
        suggestion,
    }
}
