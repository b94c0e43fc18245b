//! Evaluation in a child process: the berth command runs itself (`berth __evaluate`) for
//! each stack and profile and reads the answer as JSON on a pipe. Nickel recurses without
//! a guard (to evaluate, and to drop, a value built deep by a recursive function), and
//! running out of stack aborts the process that does it; here that is the child, and the
//! parent reports it against the stack file.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::{EvalError, Evaluated, evaluate_in_process};
use crate::project::{ProfileRef, Project, StackRef};

/// What the child writes on its stdout: the evaluated stack, or berth's report of why not.
type Answer = Result<Evaluated, String>;

/// The executable [`super::evaluate`] runs, once the berth command has set it.
static EXECUTABLE: OnceLock<PathBuf> = OnceLock::new();

/// Makes every later evaluation run in a child process of `executable` (the berth binary
/// itself). Only the berth command calls this: a library user (tests, benches) has no
/// binary of berth's to run and evaluates in its own process.
pub fn evaluate_in_children(executable: PathBuf) {
    let _ = EXECUTABLE.set(executable);
}

/// The child's side: evaluates in this process and returns the answer as JSON. Must run
/// on a thread with [`super::EVAL_STACK_SIZE`] of stack (writing the JSON recurses too).
/// `modules_checked`: the parent checked the nesting of every project module already.
pub fn answer(
    project: &Project,
    stack: &StackRef,
    profile: &ProfileRef,
    modules_checked: bool,
) -> String {
    let answer: Answer =
        evaluate_in_process(project, stack, profile, !modules_checked).map_err(|e| e.report);
    serde_json::to_string(&answer).unwrap_or_else(|e| {
        let answer: Answer = Err(format!(
            "the evaluated stack cannot be written as JSON: {e}"
        ));
        serde_json::to_string(&answer).unwrap_or_default()
    })
}

pub(super) fn executable() -> Option<&'static Path> {
    EXECUTABLE.get().map(PathBuf::as_path)
}

/// The parent's side: runs `executable __evaluate` and reads its answer.
pub(super) fn evaluate(
    executable: &Path,
    project: &Project,
    stack: &StackRef,
    profile: &ProfileRef,
) -> Result<Evaluated, EvalError> {
    let fail = |report: String| EvalError {
        stack: stack.name.clone(),
        profile: profile.name().to_string(),
        report,
    };
    let stack_file = project.relative(&stack.path);
    let mut command = Command::new(executable);
    command.arg("--root").arg(project.root());
    // The child logs, and explains Nickel's reports, as this process would (`-v` shows
    // Nickel's own report always).
    if tracing::enabled!(tracing::Level::DEBUG) {
        command.arg("-vv");
    } else if tracing::enabled!(tracing::Level::INFO) {
        command.arg("-v");
    } else if !tracing::enabled!(tracing::Level::WARN) {
        command.arg("--quiet");
    }
    command
        .arg("__evaluate")
        .arg("--library")
        .arg(project.library());
    if super::modules_nest_shallowly(project) {
        command.arg("--modules-checked");
    }
    command
        .arg("--stack")
        .arg(&stack.name)
        .arg("--stack-path")
        .arg(&stack.path);
    if let ProfileRef::File { name, path } = profile {
        command
            .arg("--profile")
            .arg(name)
            .arg("--profile-path")
            .arg(path);
    }
    // The child allocates on its one evaluation thread; glibc gives a thread its own
    // arena, grown an mprotect call at a time (some 14,000 for the bundled build), where
    // the main arena grows with a few brk calls.
    command.env("MALLOC_ARENA_MAX", "1");
    let output = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| fail(format!("could not start the evaluation process: {e}")))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(fail(if stderr.contains("has overflowed its stack") {
            format!(
                "{}: the evaluator ran out of stack: a value is nested too deep\n  hint: {HINT}",
                stack_file.display()
            )
        } else {
            format!(
                "{}: the evaluation process failed ({}): {}",
                stack_file.display(),
                output.status,
                stderr.trim()
            )
        }));
    }
    // Whatever the child logged (warnings, `-vv` debug lines) is the user's to see.
    eprint!("{stderr}");
    // serde_json refuses JSON nested past 128 levels, so a deep value the child did
    // evaluate stops here, before anything of berth's recurses through it.
    match serde_json::from_slice::<Answer>(&output.stdout) {
        Ok(answer) => answer.map_err(fail),
        Err(e) if e.to_string().starts_with("recursion limit exceeded") => Err(fail(format!(
            "{}: a value of the stack is nested more than a hundred levels deep\n  hint: {HINT}",
            stack_file.display()
        ))),
        Err(e) => Err(fail(format!(
            "{}: could not read the evaluation's answer: {e}",
            stack_file.display()
        ))),
    }
}

/// What makes a value that deep, since the file itself nests too little for
/// `eval::inputs` to have refused it.
const HINT: &str = "stacks nest about ten levels; look for a recursive function that adds a record or array per call";
