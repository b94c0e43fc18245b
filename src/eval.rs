//! Evaluates one stack with one profile through the embedded Nickel evaluator and hands
//! back plain JSON plus a map of where each field was written. The only module that
//! imports `nickel_lang_core`; nothing Nickel-typed leaves it (none of it is `Send`).
//! The berth command evaluates in a child process of its own (`child`), so that Nickel
//! running out of stack ends that child, not berth.

mod child;
mod closure;
mod explain;
mod inputs;
mod pieces;
mod positions;
mod query;
mod scan;
mod schema;
mod typo;

use nickel_lang_core::{
    error::report::{ColorOpt, report_as_str},
    eval::cache::CacheImpl,
    program::{Program, ProgramBuilder},
    serialize::{ExportFormat, validate},
};

pub use child::{answer, evaluate_in_children};
pub use closure::{Reads, digest as inputs_digest};
pub use positions::Positions;
pub use query::{Layers, Node, NodeValue, Piece, Priority, layers};
pub use schema::{SCHEMA_FILES, SchemaField, SchemaRecord, module_params, schema_records};

use crate::error::EvalError;
use crate::project::{ProfileRef, Project, StackRef};

/// Stack size of the threads that evaluate. Nickel recurses deeply and does not guard
/// against overflow: it aborts the whole process on a 2 MiB stack (see shared notes).
pub const EVAL_STACK_SIZE: usize = 64 << 20;

/// The result of evaluating a stack: the value, and where its fields came from.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Evaluated {
    pub value: serde_json::Value,
    pub positions: Positions,
}

/// Evaluates `stack` merged with `profile` (see `finalize` in `schemas/berth.ncl`): in a
/// child process after [`evaluate_in_children`], else in this one. Must run on a thread
/// with [`EVAL_STACK_SIZE`] of stack.
///
/// # Errors
/// Nickel's own diagnostic (syntax, contract, merge conflict, missing field) with the
/// project root stripped from file paths; a child that ran out of stack, named by the
/// stack file.
pub fn evaluate(
    project: &Project,
    stack: &StackRef,
    profile: &ProfileRef,
) -> Result<Evaluated, EvalError> {
    match child::executable() {
        Some(executable) => child::evaluate(executable, project, stack, profile),
        None => evaluate_here(project, stack, profile),
    }
}

/// [`evaluate`] in this process. A value nested deep by a recursive function can exhaust
/// any stack in Nickel's evaluator (which recurses when it drops such a value too), and
/// that aborts the process.
///
/// # Errors
/// As [`evaluate`].
pub fn evaluate_here(
    project: &Project,
    stack: &StackRef,
    profile: &ProfileRef,
) -> Result<Evaluated, EvalError> {
    evaluate_in_process(project, stack, profile, true)
}

/// [`evaluate_here`]; `check_nesting` false when every project module's nesting was
/// checked already (by the parent of an evaluation process).
fn evaluate_in_process(
    project: &Project,
    stack: &StackRef,
    profile: &ProfileRef,
    check_nesting: bool,
) -> Result<Evaluated, EvalError> {
    let fail = |report: String| EvalError {
        stack: stack.name.clone(),
        profile: profile.name().to_string(),
        report: explain::without_addresses(&relative_paths(project, &report)),
    };
    inputs::check(project, stack, profile, check_nesting).map_err(&fail)?;
    let main_path = main_path(project);
    let mut program: Program<CacheImpl> = ProgramBuilder::new()
        .add_source_string(main_source(stack, profile), main_path)
        .add_import_paths(project.import_paths())
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let value = program.eval_full_for_export().map_err(|e| {
        let report = report_as_str(&mut program.files(), e, ColorOpt::Never);
        fail(explain::report(
            project,
            stack,
            relative_paths(project, &report),
        ))
    })?;
    validate(ExportFormat::Json, &value).map_err(|e| {
        let e = e.with_pos_table(program.pos_table().clone());
        fail(report_as_str(&mut program.files(), e, ColorOpt::Never))
    })?;
    let positions = Positions::collect(&value, program.pos_table(), &program.files(), project);
    // `to_value` keeps integers as integers (deserializing through serde_json::Value would not).
    let value = serde_json::to_value(&value).map_err(|e| fail(e.to_string()))?;
    Ok(Evaluated { value, positions })
}

/// Whether every module of the project nests shallowly enough to be evaluated, checked
/// once per run: a result reused from the cache must not hide the error a build would
/// report, and evaluation processes need not check again (when not, they check and
/// report it as before).
pub fn modules_nest_shallowly(project: &Project) -> bool {
    static CHECKED: std::sync::OnceLock<(std::path::PathBuf, bool)> = std::sync::OnceLock::new();
    let (root, passed) = CHECKED.get_or_init(|| {
        let passed = inputs::check_nesting(project).is_ok();
        (project.root().to_path_buf(), passed)
    });
    if root == project.root() {
        *passed
    } else {
        inputs::check_nesting(project).is_ok()
    }
}

/// The path of the expression berth evaluates: inside the project, as a string source
/// resolves its imports against its virtual path (a relative name would resolve against
/// the process's working directory).
fn main_path(project: &Project) -> std::path::PathBuf {
    project.root().join("__berth_main__.ncl")
}

/// The expression berth evaluates: `finalize` applied to the stack module and the profile.
fn main_source(stack: &StackRef, profile: &ProfileRef) -> String {
    format!(
        "let berth = import \"berth.ncl\" in\nberth.finalize \"{}\" (import \"{}\") {}\n",
        nickel_string(&stack.name),
        nickel_string(&stack.path.to_string_lossy()),
        profile_expr(profile),
    )
}

/// The profile as a Nickel expression (`berth` bound to the library).
fn profile_expr(profile: &ProfileRef) -> String {
    match profile {
        ProfileRef::File { path, .. } => {
            format!("(import \"{}\")", nickel_string(&path.to_string_lossy()))
        }
        ProfileRef::None => "berth.no_profile".to_string(),
    }
}

/// Escapes text for a Nickel double-quoted string (which interpolates `%{`).
fn nickel_string(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "\\%")
}

/// Nickel prints absolute paths; users think in paths relative to their project, and
/// library files are named `berth:schemas/…` (their cache folder is no place of theirs).
fn relative_paths(project: &Project, report: &str) -> String {
    project.shorten_paths(report)
}
