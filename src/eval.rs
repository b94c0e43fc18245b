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
    eval::value::{NickelValue, ValueContentRef},
    identifier::LocIdent,
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// Evaluates several stack × profile pairs as one Nickel program, so that Nickel prepares
/// its standard library once and parses, typechecks and compiles each shared file (the
/// library, service modules, profiles) once, where separate evaluations repeat all of it
/// for every pair: about 2.6× less work for the bundled stacks. Each value is the one
/// [`evaluate`] gives for its pair (the program is a record with one field per pair, and
/// Nickel evaluates each field on its own).
///
/// `None` when anything failed, from one pair's error to the process running out of
/// stack: the caller then evaluates the pairs one by one, so each error is reported
/// exactly as [`evaluate`] reports it, against its own stack.
pub fn evaluate_together(
    project: &Project,
    targets: &[(&StackRef, &ProfileRef)],
) -> Option<Vec<Evaluated>> {
    let together = match child::executable() {
        Some(executable) => child::evaluate_together(executable, project, targets),
        None => evaluate_in_process(project, targets, true, Drop::Normally, to_evaluated),
    };
    together
        .inspect_err(|e| {
            tracing::debug!(
                "{} stack × profile pairs evaluated together failed, so one by one: {}",
                targets.len(),
                e.report
            );
        })
        .ok()
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
    evaluate_in_process(
        project,
        &[(stack, profile)],
        true,
        Drop::Normally,
        to_evaluated,
    )
    .map(|mut all| all.remove(0))
}

/// Whether an evaluation frees the Nickel program when done. The evaluation process skips
/// it: it exits right after, and freeing a large evaluated program costs time for nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Drop {
    Normally,
    Skip,
}

/// Each evaluated value as plain JSON, with its positions.
fn to_evaluated(
    values: &[&NickelValue],
    positions: Vec<Positions>,
) -> Result<Vec<Evaluated>, String> {
    values
        .iter()
        .zip(positions)
        .map(|(value, positions)| {
            // `to_value` keeps integers as integers (deserializing through
            // serde_json::Value would not).
            let value = serde_json::to_value(value).map_err(|e| e.to_string())?;
            Ok(Evaluated { value, positions })
        })
        .collect()
}

/// Evaluates `targets` (at least one) in this process, as one program, and hands each
/// value with its positions to `finish`. `check_nesting` false when every project
/// module's nesting was checked already (by the parent of an evaluation process).
fn evaluate_in_process<R>(
    project: &Project,
    targets: &[(&StackRef, &ProfileRef)],
    check_nesting: bool,
    drop: Drop,
    finish: impl FnOnce(&[&NickelValue], Vec<Positions>) -> Result<R, String>,
) -> Result<R, EvalError> {
    let Some(&(stack, profile)) = targets.first() else {
        return Err(EvalError {
            stack: String::new(),
            profile: String::new(),
            report: "nothing to evaluate".into(),
        });
    };
    let fail = |report: String| EvalError {
        stack: stack.name.clone(),
        profile: profile.name().to_string(),
        report: explain::without_addresses(&relative_paths(project, &report)),
    };
    for (index, (stack, profile)) in targets.iter().enumerate() {
        inputs::check(project, stack, profile, check_nesting && index == 0).map_err(&fail)?;
    }
    let main_path = main_path(project);
    let source = match targets {
        [(stack, profile)] => main_source(stack, profile),
        _ => main_source_together(targets),
    };
    let mut program: Program<CacheImpl> = ProgramBuilder::new()
        .add_source_string(source, main_path)
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
    let values = match targets {
        [_] => vec![&value],
        _ => (0..targets.len())
            .map(|index| together_field(&value, index))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| fail("the evaluated pairs are not where berth put them".into()))?,
    };
    let files = program.files();
    let positions = values
        .iter()
        .map(|value| Positions::collect(value, program.pos_table(), &files, project))
        .collect();
    let finished = finish(&values, positions).map_err(fail);
    if drop == Drop::Skip {
        std::mem::forget(values);
        std::mem::forget(value);
        std::mem::forget(program);
    }
    finished
}

/// The expression berth evaluates: `finalize` applied to the stack module and the profile.
fn main_source(stack: &StackRef, profile: &ProfileRef) -> String {
    format!(
        "let berth = import \"berth.ncl\" in\nberth.finalize {}\n",
        finalize_arguments(stack, profile)
    )
}

/// Several pairs at once: a record whose field `t<i>` is pair `i`'s [`main_source`].
fn main_source_together(targets: &[(&StackRef, &ProfileRef)]) -> String {
    let mut source = String::from("let berth = import \"berth.ncl\" in\n{\n");
    for (index, (stack, profile)) in targets.iter().enumerate() {
        source.push_str(&format!(
            "  t{index} = berth.finalize {},\n",
            finalize_arguments(stack, profile)
        ));
    }
    source.push_str("}\n");
    source
}

/// The field of pair `index` in the value of [`main_source_together`].
fn together_field(value: &NickelValue, index: usize) -> Option<&NickelValue> {
    let ValueContentRef::Record(record) = value.content_ref() else {
        return None;
    };
    let field = record
        .into_opt()?
        .fields
        .get(&LocIdent::new(format!("t{index}")))?;
    field.value.as_ref()
}

fn finalize_arguments(stack: &StackRef, profile: &ProfileRef) -> String {
    format!(
        "\"{}\" (import \"{}\") {}",
        nickel_string(&stack.name),
        nickel_string(&stack.path.to_string_lossy()),
        profile_expr(profile),
    )
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The bundled project, with this repository standing in for the materialised library.
    fn bundled() -> Project {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        Project::opened(root, root)
    }

    #[test]
    fn pairs_evaluated_together_are_each_what_evaluating_alone_gives() {
        let project = bundled();
        let stacks = project.stacks().expect("stacks");
        let profiles = project.profiles().expect("profiles");
        let targets: Vec<(&StackRef, &ProfileRef)> = stacks
            .iter()
            .flat_map(|stack| profiles.iter().map(move |profile| (stack, profile)))
            .collect();
        assert!(targets.len() >= 15, "the bundled stacks × profiles");
        crate::compile::on_eval_thread(|| {
            let together = evaluate_together(&project, &targets).expect("evaluated together");
            assert_eq!(together.len(), targets.len());
            for ((stack, profile), together) in targets.iter().zip(together) {
                let alone = evaluate_here(&project, stack, profile).expect("evaluated alone");
                let pair = format!("{}/{}", stack.name, profile.name());
                assert_eq!(together.value, alone.value, "{pair}: value");
                assert_eq!(
                    serde_json::to_value(&together.positions).expect("json"),
                    serde_json::to_value(&alone.positions).expect("json"),
                    "{pair}: positions"
                );
            }
            Ok(())
        })
        .expect("eval thread");
    }

    #[test]
    fn one_failing_pair_fails_the_whole_group() {
        let project = bundled();
        let stacks = project.stacks().expect("stacks");
        let missing = StackRef {
            name: "missing".into(),
            path: project.root().join("modules/stacks/missing.ncl"),
        };
        let none = ProfileRef::None;
        crate::compile::on_eval_thread(|| {
            let good = evaluate_together(&project, &[(&stacks[0], &none), (&stacks[1], &none)]);
            assert!(good.is_some());
            let bad = evaluate_together(&project, &[(&stacks[0], &none), (&missing, &none)]);
            assert!(bad.is_none());
            Ok(())
        })
        .expect("eval thread");
    }
}
