//! The layers `finalize` merges, evaluated apart, each as a tree that keeps what the merge
//! decides by (every field's priority) and where each value was written: what
//! `berth explain` reads. Nothing Nickel-typed leaves; the reading is `crate::explain`'s.

use std::collections::BTreeMap;

use nickel_lang_core::{
    error::report::{ColorOpt, report_as_str},
    eval::cache::CacheImpl,
    eval::value::{NickelValue, ValueContentRef},
    files::Files,
    position::{PosTable, TermPos},
    program::{Program, ProgramBuilder},
    term::MergePriority,
};
use serde::Serialize;

use super::pieces::{self, PIECES_FILE, Remap};
use super::{explain, nickel_string, positions::user_location, profile_expr, relative_paths};
use crate::error::{EvalError, Location};
use crate::project::{ProfileRef, Project, StackRef};

/// One stack × profile, apart and together.
#[derive(Debug, Clone, Serialize)]
pub struct Layers {
    /// `module profile` without `overrides`: service modules and the stack itself.
    pub stack: Node,
    /// The stack's `overrides."<profile>"` (an empty record when it has none).
    pub overrides: Node,
    /// The profile's `service_defaults`, merged into every service.
    pub service_defaults: Node,
    /// The profile without `service_defaults`, after the `Profile` contract (whose
    /// `| default` values it then holds): the stack's `profile`.
    pub settings: Node,
    /// The stack's file name, its `name` unless it sets one.
    pub stem: String,
    /// What `finalize` gives: the merge of all of the above, checked against `Stack`
    /// (the value [`super::evaluate`] returned; places are the layers').
    pub merged: Node,
    /// The operands of the stack file's own top-level `&`, each split as `stack` and
    /// `overrides` are, in the file's order; empty when the file has no such chain (or an
    /// operand does not evaluate on its own, when `stack` is all there is to show).
    pub pieces: Vec<Piece>,
}

/// One operand of the stack file's top-level `&` (`postgres {…}`, `{ services.api = … }`),
/// evaluated on its own.
#[derive(Debug, Clone, Serialize)]
pub struct Piece {
    /// What it adds to the stack layer.
    pub stack: Node,
    /// What it adds to `overrides."<profile>"`.
    pub overrides: Node,
}

/// A field's value in one layer, with its merge priority and place.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub priority: Priority,
    /// Where the value was written (the field's name when the value has no place).
    pub location: Option<Location>,
    /// Where the field's name was written (`image | default = p.image` in a service
    /// module, whose value a stack passed as a parameter).
    pub field_location: Option<Location>,
    pub value: NodeValue,
}

/// A record is walked into; anything else (arrays too: they never merge) is a value.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeValue {
    Record(BTreeMap<String, Node>),
    Value(serde_json::Value),
}

/// A field's merge priority, as written: `| default`, none, `| priority N`, `| force`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Default,
    Plain,
    Number(f64),
    Force,
}

impl Priority {
    /// Nickel's order: default < plain = `priority 0` < higher numbers < force.
    pub fn rank(&self) -> (u8, f64) {
        match self {
            Priority::Default => (0, 0.0),
            Priority::Plain => (1, 0.0),
            Priority::Number(n) => (1, *n),
            Priority::Force => (2, 0.0),
        }
    }
}

/// Evaluates the layers of `stack` with `profile` (`layers` in `schemas/berth.ncl`,
/// which `finalize` merges), in this process. `merged` is [`super::evaluate`]'s value,
/// or `None` to evaluate `finalize` in the same program (sharing its parsed imports).
/// Call it after [`super::evaluate`] succeeded for the same pair, or when a cached build
/// of the same inputs did: that reports a broken stack the way `build` does and keeps a
/// value nested too deep out of this process. Must run on a thread with
/// [`super::EVAL_STACK_SIZE`] of stack.
///
/// # Errors
/// Nickel's report, should the layers not evaluate.
pub fn layers(
    project: &Project,
    stack: &StackRef,
    profile: &ProfileRef,
    merged: Option<&serde_json::Value>,
) -> Result<Layers, EvalError> {
    // The operands evaluate beside the layers (the same files twice over): on a second
    // core when there is one, which is most of what `explain` of one path waits for.
    std::thread::scope(|scope| {
        let pieces = std::thread::Builder::new()
            .stack_size(super::EVAL_STACK_SIZE)
            .spawn_scoped(scope, || stack_pieces(project, stack, profile));
        let mut layers = layers_apart(project, stack, profile, merged)?;
        layers.pieces = match pieces {
            // A panic in Nickel shows the stack layer whole, as with no operands.
            Ok(handle) => handle.join().unwrap_or_default(),
            Err(_) => stack_pieces(project, stack, profile),
        };
        Ok(layers)
    })
}

/// [`layers`] without the stack file's operands.
fn layers_apart(
    project: &Project,
    stack: &StackRef,
    profile: &ProfileRef,
    merged: Option<&serde_json::Value>,
) -> Result<Layers, EvalError> {
    let fail = |report: String| EvalError {
        stack: stack.name.clone(),
        profile: profile.name().to_string(),
        report: explain::without_addresses(&relative_paths(project, &report)),
    };
    let main_path = project.root().join("__berth_main__.ncl");
    let mut program: Program<CacheImpl> = ProgramBuilder::new()
        .add_source_string(layers_source(stack, profile, merged.is_none()), main_path)
        .add_import_paths(project.import_paths())
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let value = program
        .eval_full_for_export()
        .map_err(|e| fail(report_as_str(&mut program.files(), e, ColorOpt::Never)))?;
    let files = program.files();
    let reader = Reader {
        table: program.pos_table(),
        files: &files,
        project,
        remap: None,
    };
    let finalized = match merged {
        Some(merged) => merged.clone(),
        None => {
            let merged = field(&value, MERGED).ok_or_else(|| fail(format!("no `{MERGED}`")))?;
            serde_json::to_value(merged).map_err(|e| fail(e.to_string()))?
        }
    };
    let top = reader.node(&value, MergePriority::Neutral, None);
    let mut layers = match top.value {
        NodeValue::Record(layers) => layers,
        NodeValue::Value(_) => BTreeMap::new(),
    };
    let mut take = |name: &str| {
        layers.remove(name).ok_or_else(|| {
            fail(format!(
                "berth.ncl's `layers` gave no `{name}` (a project's own schemas/berth.ncl must keep it)"
            ))
        })
    };
    let stem = match take("name")?.value {
        NodeValue::Value(serde_json::Value::String(stem)) => stem,
        _ => stack.name.clone(),
    };
    Ok(Layers {
        stack: take("stack")?,
        overrides: take("overrides")?,
        service_defaults: take("service_defaults")?,
        settings: take("settings")?,
        stem,
        merged: Node::from_json(&finalized),
        pieces: Vec::new(),
    })
}

/// The stack file's top-level operands, each evaluated on its own (see [`pieces`]). An
/// operand may not stand alone (it reads a field another one defines): then there are
/// none, and `explain` shows the stack layer whole, as Nickel merged it.
fn stack_pieces(project: &Project, stack: &StackRef, profile: &ProfileRef) -> Vec<Piece> {
    let Ok(original) = std::fs::read_to_string(&stack.path) else {
        return Vec::new();
    };
    let shown_as = project.relative(&stack.path).to_path_buf();
    let Some(generated) = pieces::generate(stack, profile, original, shown_as) else {
        return Vec::new();
    };
    let built = ProgramBuilder::new()
        .add_source_string(generated.source, generated.path)
        .add_import_paths(project.import_paths())
        .build();
    let Ok(mut program): Result<Program<CacheImpl>, _> = built else {
        return Vec::new();
    };
    let value = match program.eval_full_for_export() {
        Ok(value) => value,
        Err(error) => {
            let report = report_as_str(&mut program.files(), error, ColorOpt::Never);
            tracing::debug!("the stack's operands do not evaluate apart:\n{report}");
            return Vec::new();
        }
    };
    let files = program.files();
    let reader = Reader {
        table: program.pos_table(),
        files: &files,
        project,
        remap: Some(&generated.remap),
    };
    let NodeValue::Record(operands) = reader.node(&value, MergePriority::Neutral, None).value
    else {
        return Vec::new();
    };
    pieces::in_order(operands)
        .into_iter()
        .filter_map(|operand| match operand.value {
            NodeValue::Record(mut parts) => Some(Piece {
                stack: parts.remove("stack")?,
                overrides: parts.remove("overrides")?,
            }),
            NodeValue::Value(_) => None,
        })
        .collect()
}

impl Node {
    /// A value without places or priorities (a record is walked into).
    pub fn from_json(value: &serde_json::Value) -> Node {
        let value = match value {
            serde_json::Value::Object(fields) => NodeValue::Record(
                fields
                    .iter()
                    .map(|(key, child)| (key.clone(), Node::from_json(child)))
                    .collect(),
            ),
            other => NodeValue::Value(other.clone()),
        };
        Node {
            priority: Priority::Plain,
            location: None,
            field_location: None,
            value,
        }
    }
}

/// The field of the layers' record that holds `finalize`'s value, when asked for.
const MERGED: &str = "__berth_merged";

/// `berth.layers …` for the stack and profile; with `finalize`, also what it gives (in
/// [`MERGED`]).
fn layers_source(stack: &StackRef, profile: &ProfileRef, finalize: bool) -> String {
    let stem = nickel_string(&stack.name);
    let call =
        |function: &str| format!("berth.{function} \"{stem}\" __berth_module __berth_profile");
    let merged = if finalize {
        format!(" & {{ {MERGED} = {} }}", call("finalize"))
    } else {
        String::new()
    };
    format!(
        "let berth = import \"berth.ncl\" in\nlet __berth_module = import \"{}\" in\nlet __berth_profile = {} in\n{}{merged}\n",
        nickel_string(&stack.path.to_string_lossy()),
        profile_expr(profile),
        call("layers"),
    )
}

/// The value of `name` in a record value.
fn field<'a>(value: &'a NickelValue, name: &str) -> Option<&'a NickelValue> {
    let ValueContentRef::Record(record) = value.content_ref() else {
        return None;
    };
    record
        .into_opt()?
        .fields
        .iter()
        .find(|(ident, _)| ident.label() == name)
        .and_then(|(_, field)| field.value.as_ref())
}

struct Reader<'a> {
    table: &'a PosTable,
    files: &'a Files,
    project: &'a Project,
    /// How places in the generated expression of [`stack_pieces`] map to the stack file.
    remap: Option<&'a Remap>,
}

impl Reader<'_> {
    fn location(&self, pos: TermPos) -> Option<Location> {
        if let (Some(remap), Some(span)) = (self.remap, pos.into_opt()) {
            let name = std::path::Path::new(self.files.name(span.src_id));
            if name.file_name().is_some_and(|name| name == PIECES_FILE) {
                return remap.location(span.start.0 as usize);
            }
        }
        user_location(self.files, self.project, pos)
    }

    fn node(
        &self,
        value: &NickelValue,
        priority: MergePriority,
        field_place: Option<Location>,
    ) -> Node {
        let location = self
            .location(value.pos(self.table))
            .or_else(|| field_place.clone());
        let value = match value.content_ref() {
            ValueContentRef::Record(record) => {
                let mut fields = BTreeMap::new();
                for (ident, field) in record.into_opt().iter().flat_map(|r| &r.fields) {
                    let Some(child) = &field.value else { continue };
                    let place = self.location(ident.pos);
                    let node = self.node(child, field.metadata.priority().clone(), place);
                    fields.insert(ident.label().to_string(), node);
                }
                NodeValue::Record(fields)
            }
            // Export-validated already by `evaluate`; a value that does not convert is shown
            // as null rather than failing the explanation of every other field.
            _ => NodeValue::Value(serde_json::to_value(value).unwrap_or_default()),
        };
        Node {
            priority: priority_of(&priority),
            location,
            field_location: field_place,
            value,
        }
    }
}

fn priority_of(priority: &MergePriority) -> Priority {
    match priority {
        MergePriority::Bottom => Priority::Default,
        MergePriority::Neutral => Priority::Plain,
        MergePriority::Top => Priority::Force,
        MergePriority::Numeral(n) => Priority::Number(n.to_string().parse().unwrap_or(0.0)),
    }
}
