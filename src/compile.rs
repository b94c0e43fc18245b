//! Drives the pipeline for a set of stacks × profiles: evaluate, build the model, render.
//! Targets run in parallel, each on its own thread with a stack deep enough for Nickel;
//! results come back in (stack, profile) order whatever the scheduling.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::Error;
use crate::cache::{Cache, Entry, Lookup};
use crate::error::{Diagnostic, ModelError, StrictError};
use crate::eval::{self, EVAL_STACK_SIZE};
use crate::model::{Stack, files};
use crate::project::{ProfileRef, Project, StackRef};
use crate::render::fidelity::Warning;
use crate::render::{self, Artifact};

/// The artifacts of one stack built with one profile.
#[derive(Debug, Clone)]
pub struct Built {
    pub stack: String,
    pub profile: String,
    pub artifacts: Vec<Artifact>,
    /// Fields a backend could not carry, located in the user's files.
    pub warnings: Vec<Warning>,
}

impl Built {
    /// The folder these artifacts live in, relative to the output root.
    pub fn dir(&self) -> PathBuf {
        PathBuf::from(&self.stack).join(&self.profile)
    }
}

impl Built {
    /// An error listing every warning, for strict builds (`--strict`, or a profile with
    /// `strict = true`): a strict build writes nothing a backend could not carry.
    ///
    /// # Errors
    /// When there is any warning.
    pub fn refuse_warnings(&self) -> Result<(), StrictError> {
        if self.warnings.is_empty() {
            return Ok(());
        }
        Err(StrictError {
            stack: self.stack.clone(),
            profile: self.profile.clone(),
            problems: self
                .warnings
                .iter()
                .map(|warning| {
                    (
                        warning.backend.name().to_string(),
                        warning.diagnostic.clone(),
                    )
                })
                .collect(),
        })
    }
}

/// Every generated file of `builds`, keyed by its path below the output root.
pub fn tree(builds: &[Built]) -> BTreeMap<PathBuf, String> {
    builds
        .iter()
        .flat_map(|built| {
            built
                .artifacts
                .iter()
                .map(|artifact| (built.dir().join(&artifact.path), artifact.contents.clone()))
        })
        .collect()
}

/// Evaluates and renders `stack` with `profile`. Needs [`EVAL_STACK_SIZE`] of stack.
///
/// # Errors
/// Evaluation, model and render errors, located in the user's files.
pub fn compile_one(
    project: &Project,
    stack: &StackRef,
    profile: &ProfileRef,
) -> Result<(Stack, Built), Error> {
    compile_reading(project, stack, profile).map(|(model, built, _)| (model, built))
}

/// [`compile_one`], reusing the evaluation `cache` keeps for the same inputs (and keeping
/// this one's): what `plan` and `apply` build their model from.
///
/// # Errors
/// As [`compile_one`].
pub fn compile_one_cached(
    project: &Project,
    stack: &StackRef,
    profile: &ProfileRef,
    cache: Option<&Cache>,
) -> Result<(Stack, Built), Error> {
    let Some(cache) = cache else {
        return compile_one(project, stack, profile);
    };
    let evaluated = cache.evaluated(project, stack, profile, || {
        eval::evaluate(project, stack, profile)
    })?;
    let (model, built, _) = compile_evaluated(project, stack, profile, &evaluated)?;
    cache.prune();
    Ok((model, built))
}

/// [`compile_one`], with the files the render read outside the Nickel closure (the
/// templates of `files`: project-relative path → the text used), which a cache key covers.
fn compile_reading(
    project: &Project,
    stack: &StackRef,
    profile: &ProfileRef,
) -> Result<(Stack, Built, BTreeMap<String, String>), Error> {
    let started = std::time::Instant::now();
    let evaluated = eval::evaluate(project, stack, profile)?;
    tracing::debug!(
        "{}/{}: evaluated in {:.0?}",
        stack.name,
        profile.name(),
        started.elapsed()
    );
    compile_evaluated(project, stack, profile, &evaluated)
}

/// The rest of [`compile_reading`] once `evaluated` is known.
fn compile_evaluated(
    project: &Project,
    stack: &StackRef,
    profile: &ProfileRef,
    evaluated: &eval::Evaluated,
) -> Result<(Stack, Built, BTreeMap<String, String>), Error> {
    let started = std::time::Instant::now();
    let mut model = Stack::from_evaluated(evaluated)?;
    let read = resolve_files(project, &mut model, &evaluated.positions)?;
    let rendered = render::all(&model)?;
    let warnings: Vec<Warning> = rendered
        .warnings
        .into_iter()
        .map(|mut warning| {
            warning.diagnostic.location = evaluated.positions.locate(&warning.diagnostic.field);
            warning
        })
        .collect();
    let built = Built {
        stack: stack.name.clone(),
        profile: profile.name().to_string(),
        artifacts: rendered.artifacts,
        warnings,
    };
    if model.profile.strict {
        built.refuse_warnings()?;
    }
    tracing::debug!(
        "{}/{}: checked and rendered in {:.0?}",
        built.stack,
        built.profile,
        started.elapsed()
    );
    Ok((model, built, read))
}

/// [`compile_one`], or the result kept in `cache` for the same inputs: the same
/// artifacts and warnings, and a strict profile still refuses them.
///
/// # Errors
/// As [`compile_one`].
pub fn compile_cached(
    project: &Project,
    stack: &StackRef,
    profile: &ProfileRef,
    cache: Option<&Cache>,
) -> Result<Built, Error> {
    let lookup = look_up(project, stack, profile, cache);
    finish(project, (stack, profile), lookup, None, cache)
}

fn look_up(
    project: &Project,
    stack: &StackRef,
    profile: &ProfileRef,
    cache: Option<&Cache>,
) -> Lookup {
    cache.map_or(Lookup::Uncacheable, |cache| {
        cache.lookup(project, stack, profile)
    })
}

/// The build of one pair from what the cache said of it: the cached result, or a build
/// from `evaluated` (evaluating now when `None`), stored when the cache can keep it.
fn finish(
    project: &Project,
    (stack, profile): (&StackRef, &ProfileRef),
    lookup: Lookup,
    evaluated: Option<eval::Evaluated>,
    cache: Option<&Cache>,
) -> Result<Built, Error> {
    let key = match lookup {
        Lookup::Hit(entry) => {
            let built = Built {
                stack: stack.name.clone(),
                profile: profile.name().to_string(),
                artifacts: entry.artifacts,
                warnings: entry.warnings,
            };
            if entry.strict {
                built.refuse_warnings()?;
            }
            tracing::debug!("{}/{}: reused from the cache", built.stack, built.profile);
            return Ok(built);
        }
        Lookup::Miss(key) => Some(key),
        Lookup::Uncacheable => None,
    };
    let (model, built, read) = match evaluated {
        Some(evaluated) => compile_evaluated(project, stack, profile, &evaluated)?,
        None => compile_reading(project, stack, profile)?,
    };
    if let (Some(cache), Some(key)) = (cache, key) {
        let entry = Entry {
            artifacts: built.artifacts.clone(),
            warnings: built.warnings.clone(),
            strict: model.profile.strict,
        };
        cache.store(&key, &read, entry);
    }
    Ok(built)
}

/// Reads the templates the stack's `files` name and renders every file into the model
/// (`model::files`): a missing template or a template error is the user's, located at
/// the field or at the template's line. Returns the templates read, path → text.
fn resolve_files(
    project: &Project,
    model: &mut Stack,
    positions: &eval::Positions,
) -> Result<BTreeMap<String, String>, ModelError> {
    let mut sources = BTreeMap::new();
    let mut problems = Vec::new();
    for (field, path) in files::templates(model) {
        match project.read_template(&path) {
            Ok(text) => {
                sources.insert(path, text);
            }
            Err(message) => problems.push(Diagnostic::new(field, message)),
        }
    }
    if problems.is_empty() {
        problems = files::resolve(model, &sources);
    }
    if problems.is_empty() {
        return Ok(sources);
    }
    for problem in &mut problems {
        if problem.location.is_none() {
            problem.location = positions.locate(&problem.field);
        }
    }
    Err(ModelError {
        stack: model.name.clone(),
        profile: model.profile.name.clone(),
        diagnostics: problems,
    })
}

/// Compiles every stack with every profile, on up to `jobs` threads.
///
/// # Errors
/// The first failure in (stack, profile) order, so the same input always reports the same error.
pub fn compile_all(
    project: &Project,
    stacks: &[StackRef],
    profiles: &[ProfileRef],
    jobs: usize,
) -> Result<Vec<Built>, Error> {
    compile_all_cached(project, stacks, profiles, jobs, None)
}

/// [`compile_all`], reusing and filling `cache` (see [`compile_cached`]), which is pruned
/// afterwards when this build stored something.
///
/// # Errors
/// As [`compile_all`].
pub fn compile_all_cached(
    project: &Project,
    stacks: &[StackRef],
    profiles: &[ProfileRef],
    jobs: usize,
    cache: Option<&Cache>,
) -> Result<Vec<Built>, Error> {
    let built = compile_targets(project, stacks, profiles, jobs, cache);
    if let Some(cache) = cache {
        cache.prune();
    }
    built
}

/// Builds every pair in three steps: ask the cache about each; evaluate what it lacks
/// together, one program per group (see [`eval::evaluate_together`] and [`groups`]), a
/// group per worker thread; then check and render each pair on the thread that evaluated
/// it. A group that fails is evaluated again pair by pair, so each error is the one a
/// lone build reports.
fn compile_targets(
    project: &Project,
    stacks: &[StackRef],
    profiles: &[ProfileRef],
    jobs: usize,
    cache: Option<&Cache>,
) -> Result<Vec<Built>, Error> {
    let targets: Vec<(&StackRef, &ProfileRef)> = stacks
        .iter()
        .flat_map(|stack| profiles.iter().map(move |profile| (stack, profile)))
        .collect();
    let lookups = in_parallel(
        jobs,
        targets.iter().copied().enumerate().collect(),
        |(_, (stack, profile))| look_up(project, stack, profile, cache),
    );
    let pending: Vec<usize> = (0..targets.len())
        .filter(|&index| !matches!(lookups[index], Lookup::Hit(_)))
        .collect();
    let mut lookups: Vec<Option<Lookup>> = lookups.into_iter().map(Some).collect();
    let mut take = |index: usize| (index, lookups[index].take().unwrap_or(Lookup::Uncacheable));
    // A hit is a group of its own (nothing to evaluate); the rest are grouped to evaluate.
    let mut work: Vec<Vec<(usize, Lookup)>> = (0..targets.len())
        .filter(|index| pending.binary_search(index).is_err())
        .map(|index| vec![take(index)])
        .collect();
    work.extend(
        groups(&targets, &pending, jobs)
            .into_iter()
            .map(|group| group.into_iter().map(&mut take).collect()),
    );
    let built = in_parallel(jobs, work, |group| {
        let members: Vec<(&StackRef, &ProfileRef)> =
            group.iter().map(|(index, _)| targets[*index]).collect();
        let started = std::time::Instant::now();
        let evaluated = match members.len() {
            0 | 1 => None,
            _ => eval::evaluate_together(project, &members),
        };
        if evaluated.is_some() {
            tracing::debug!(
                "{} pairs evaluated together in {:.0?}",
                members.len(),
                started.elapsed()
            );
        }
        let mut evaluated = evaluated.map(Vec::into_iter);
        group
            .into_iter()
            .map(|(index, lookup)| {
                let one = evaluated.as_mut().and_then(Iterator::next);
                (index, finish(project, targets[index], lookup, one, cache))
            })
            .collect::<Vec<_>>()
    });
    let mut built: Vec<(usize, Result<Built, Error>)> = built.into_iter().flatten().collect();
    built.sort_by_key(|(index, _)| *index);
    built.into_iter().map(|(_, result)| result).collect()
}

/// The pairs at `pending` (in (stack, profile) order) split into at most `jobs` runs of
/// neighbours to evaluate together, of about equal weight, since a group's time is
/// roughly its evaluation's: a pair weighs its stack file's size. Runs of neighbours keep
/// a stack's pairs together (they share its file and modules) except where a cut must
/// fall, and when only one stack changed its pairs still spread over every thread.
fn groups(targets: &[(&StackRef, &ProfileRef)], pending: &[usize], jobs: usize) -> Vec<Vec<usize>> {
    let mut sizes = BTreeMap::new();
    let weights: Vec<u64> = pending
        .iter()
        .map(|&index| {
            let path = &targets[index].0.path;
            *sizes
                .entry(path)
                .or_insert_with(|| std::fs::metadata(path).map_or(1, |m| m.len().max(1)))
        })
        .collect();
    let n = jobs.clamp(1, pending.len().max(1)) as u64;
    let total: u64 = weights.iter().sum();
    let mut groups = vec![Vec::new()];
    let (mut sum, mut cuts) = (0, 1);
    for (&index, &weight) in pending.iter().zip(&weights) {
        // Cut before a pair whose middle lies past the next boundary.
        if cuts < n && sum + weight / 2 > total * cuts / n {
            groups.push(Vec::new());
            cuts += 1;
        }
        if let Some(group) = groups.last_mut() {
            group.push(index);
        }
        sum += weight;
    }
    groups.retain(|group| !group.is_empty());
    groups
}

/// `work` applied to each item on up to `jobs` threads with [`EVAL_STACK_SIZE`] of stack
/// (items taken in order, as threads free up), results in the items' order.
fn in_parallel<T: Send, R: Send>(
    jobs: usize,
    items: Vec<T>,
    work: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let count = items.len();
    let queue = Mutex::new(items.into_iter().enumerate());
    let results: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(count));
    let n_workers = jobs.clamp(1, count.max(1));
    std::thread::scope(|scope| {
        let worker = || {
            while let Some((index, item)) = next(&queue) {
                let result = work(item);
                lock(&results).push((index, result));
            }
        };
        let mut started = 0;
        for _ in 0..n_workers {
            let spawned = std::thread::Builder::new()
                .stack_size(EVAL_STACK_SIZE)
                .spawn_scoped(scope, worker);
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::warn!("could not start a build thread: {e}"),
            }
        }
        if started == 0 {
            // No thread at all: this one works through the queue. The berth command
            // evaluates in child processes, so its own stack size does not matter.
            worker();
        }
    });
    let mut results = results
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).collect()
}

/// Runs `work` on a thread with [`EVAL_STACK_SIZE`] of stack, as evaluation needs.
///
/// # Errors
/// `work`'s own error, or an error when no such thread could be started.
pub fn on_eval_thread<T: Send>(work: impl FnOnce() -> Result<T, Error> + Send) -> Result<T, Error> {
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .stack_size(EVAL_STACK_SIZE)
            .spawn_scoped(scope, work);
        match handle.map(|handle| handle.join()) {
            Ok(Ok(result)) => result,
            _ => Err(crate::error::EvalError {
                stack: String::new(),
                profile: String::new(),
                report: "could not run an evaluation thread".to_string(),
            }
            .into()),
        }
    })
}

fn next<I: Iterator>(queue: &Mutex<I>) -> Option<I::Item> {
    lock(queue).next()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
