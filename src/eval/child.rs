//! Evaluation in a child process: the berth command runs itself (`berth __evaluate`) for
//! each stack and profile and reads the answer as JSON on a pipe. Nickel recurses without
//! a guard (to evaluate, and to drop, a value built deep by a recursive function), and
//! running out of stack aborts the process that does it; here that is the child, and the
//! parent reports it against the stack file.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use nickel_lang_core::eval::value::NickelValue;

use super::{Drop, EvalError, Evaluated, Positions, evaluate_in_process};
use crate::project::{ProfileRef, Project, StackRef};

/// What the parent writes on the child's stdin: the stack × profile pairs to evaluate, as
/// one program when there are several (see [`super::evaluate_together`]).
type Request = Vec<(StackRef, ProfileRef)>;

/// What the child writes on its stdout: each pair evaluated, or berth's report of why not.
type Answer = Result<Vec<Evaluated>, String>;

/// [`Answer`] as the child writes it: Nickel's values serialised straight to JSON, with no
/// `serde_json::Value` copy of them in between (a 1000-service stack's copy is tens of
/// megabytes).
#[derive(serde::Serialize)]
enum AnswerRef<'a> {
    Ok(Vec<EvaluatedRef<'a>>),
}

#[derive(serde::Serialize)]
struct EvaluatedRef<'a> {
    value: &'a NickelValue,
    positions: &'a Positions,
}

/// The executable [`super::evaluate`] runs, once the berth command has set it.
static EXECUTABLE: OnceLock<PathBuf> = OnceLock::new();

/// Makes every later evaluation run in a child process of `executable` (the berth binary
/// itself). Only the berth command calls this: a library user (tests, benches) has no
/// binary of berth's to run and evaluates in its own process.
pub fn evaluate_in_children(executable: PathBuf) {
    let _ = EXECUTABLE.set(executable);
}

/// The child's side: reads the `Request` in `request`, evaluates it in this process and
/// writes the `Answer` as JSON to `out`. Must run on a thread with
/// [`super::EVAL_STACK_SIZE`] of stack (writing the JSON recurses too).
/// `modules_checked`: the parent checked the nesting of every project module already.
///
/// # Errors
/// Only when `out` cannot be written (the parent went away).
pub fn answer(
    project: &Project,
    request: &str,
    modules_checked: bool,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let json = match serde_json::from_str::<Request>(request) {
        Ok(targets) => {
            let targets: Vec<(&StackRef, &ProfileRef)> =
                targets.iter().map(|(s, p)| (s, p)).collect();
            evaluate_in_process(
                project,
                &targets,
                !modules_checked,
                Drop::Skip,
                |values, positions| {
                    let answer = AnswerRef::Ok(
                        values
                            .iter()
                            .zip(&positions)
                            .map(|(value, positions)| EvaluatedRef { value, positions })
                            .collect(),
                    );
                    serde_json::to_vec(&answer)
                        .map_err(|e| format!("the evaluated stack cannot be written as JSON: {e}"))
                },
            )
            .map_err(|e| e.report)
        }
        Err(e) => Err(format!("berth's request could not be read: {e}")),
    };
    match json {
        Ok(json) => out.write_all(&json),
        Err(report) => {
            let answer: Answer = Err(report);
            out.write_all(
                serde_json::to_string(&answer)
                    .unwrap_or_default()
                    .as_bytes(),
            )
        }
    }
}

pub(super) fn executable() -> Option<&'static Path> {
    EXECUTABLE.get().map(PathBuf::as_path)
}

/// The parent's side of [`super::evaluate`]: runs `executable __evaluate` for one pair.
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
    let stack_file = project.relative(&stack.path).display().to_string();
    let (evaluated, stderr) = run(executable, project, &[(stack, profile)], &stack_file)?;
    // Whatever the child logged (warnings, `-vv` debug lines) is the user's to see.
    eprint!("{stderr}");
    evaluated.map_err(fail).map(|mut all| all.remove(0))
}

/// The parent's side of [`super::evaluate_together`].
pub(super) fn evaluate_together(
    executable: &Path,
    project: &Project,
    targets: &[(&StackRef, &ProfileRef)],
) -> Result<Vec<Evaluated>, EvalError> {
    let fail = |report: String| EvalError {
        stack: String::new(),
        profile: String::new(),
        report,
    };
    let (evaluated, stderr) = run(executable, project, targets, "evaluating together")?;
    let evaluated = evaluated.map_err(fail)?;
    if evaluated.len() != targets.len() {
        return Err(fail(
            "the evaluation process answered for other pairs".into(),
        ));
    }
    // Only now: a failed attempt is repeated pair by pair, which says it all again.
    eprint!("{stderr}");
    Ok(evaluated)
}

/// Runs `executable __evaluate` on `targets` and reads its answer (and its stderr, for the
/// caller to show); `name` is what a crash is reported against.
fn run(
    executable: &Path,
    project: &Project,
    targets: &[(&StackRef, &ProfileRef)],
    name: &str,
) -> Result<(Result<Vec<Evaluated>, String>, String), EvalError> {
    let (stack, profile) = targets.first().copied().unzip();
    let fail = |report: String| EvalError {
        stack: stack.map(|s| s.name.clone()).unwrap_or_default(),
        profile: profile.map(|p| p.name().to_string()).unwrap_or_default(),
        report,
    };
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
    // mimalloc asks the kernel for transparent huge pages, each zeroed whole on first
    // touch; an evaluation that allocates and frees as much as Nickel's spent a quarter of
    // its time zeroing them, and a 1000-service stack peaked 23 MB higher (180 against
    // 157 MB).
    command.env("MIMALLOC_ALLOW_THP", "0");
    let request = serde_json::to_vec(targets).map_err(|e| fail(e.to_string()))?;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("could not start the evaluation process: {e}")))?;
    // The child reads the whole request before it writes anything: no deadlock.
    let sent = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(&request));
    let output = child
        .wait_with_output()
        .map_err(|e| fail(format!("the evaluation process failed: {e}")))?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        return Err(fail(if stderr.contains("has overflowed its stack") {
            format!(
                "{name}: the evaluator ran out of stack: a value is nested too deep\n  hint: {HINT}"
            )
        } else {
            format!(
                "{name}: the evaluation process failed ({}): {}",
                output.status,
                stderr.trim()
            )
        }));
    }
    if let Some(Err(e)) = sent {
        return Err(fail(format!(
            "{name}: the evaluation process did not take its request: {e}"
        )));
    }
    // serde_json refuses JSON nested past 128 levels, so a deep value the child did
    // evaluate stops here, before anything of berth's recurses through it.
    match serde_json::from_slice::<Answer>(&output.stdout) {
        Ok(answer) => Ok((answer, stderr)),
        Err(e) if e.to_string().starts_with("recursion limit exceeded") => Err(fail(format!(
            "{name}: a value of the stack is nested more than a hundred levels deep\n  hint: {HINT}"
        ))),
        Err(e) => Err(fail(format!(
            "{name}: could not read the evaluation's answer: {e}"
        ))),
    }
}

/// What makes a value that deep, since the file itself nests too little for
/// `eval::inputs` to have refused it.
const HINT: &str = "stacks nest about ten levels; look for a recursive function that adds a record or array per call";
