use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{CacheArgs, Outcome, Selection, jobs};
use crate::Error;
use crate::compile::{compile_all_cached, tree};
use crate::output::{self, golden};
use crate::project::Project;

/// Build in memory and compare with golden/: a unified diff per changed file, a line per
/// missing or extra file, a summary. Exit 0 when identical, 1 on drift, 2 on error.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  berth check\n  berth check --stack ape --format json")]
pub struct Check {
    #[command(flatten)]
    selection: Selection,
    #[command(flatten)]
    cache: CacheArgs,
    /// Golden folder, relative to the project root unless absolute.
    #[arg(long, default_value = "golden", value_name = "DIR")]
    golden: PathBuf,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

impl Check {
    pub fn run(self, project: &Project) -> Result<Outcome, Error> {
        let (stacks, profiles) = self.selection.resolve(project)?;
        let cache = self.cache.open(project)?;
        let builds = compile_all_cached(project, &stacks, &profiles, jobs(), cache.as_ref())?;
        let fresh = tree(&builds);
        let golden_dir = project.root().join(&self.golden);
        let mut blessed = output::read_tree(&golden_dir)?;
        // A partial check compares only the folders it built.
        let dirs: Vec<PathBuf> = builds.iter().map(|built| built.dir()).collect();
        if !self.selection.is_everything() {
            blessed.retain(|path, _| dirs.iter().any(|dir| path.starts_with(dir)));
        }
        let drift = golden::compare(&blessed, &fresh, &self.golden);
        match self.format {
            Format::Text => print_text(&drift, &self.golden),
            Format::Json => print_json(&drift),
        }
        Ok(if drift.is_clean() {
            Outcome::Done
        } else {
            Outcome::Drift
        })
    }
}

fn print_text(drift: &golden::Drift, golden_dir: &std::path::Path) {
    for changed in &drift.changed {
        say_raw!("{}", changed.diff);
    }
    for path in &drift.missing {
        say!("missing from {}: {}", golden_dir.display(), path.display());
    }
    for path in &drift.extra {
        say!("extra in {}: {}", golden_dir.display(), path.display());
    }
    let verdict = if drift.is_clean() {
        "check: clean"
    } else {
        "check: DRIFT"
    };
    say!("{verdict}: {}", drift.summary());
    if !drift.is_clean() {
        say!(
            "hint: if the change is intended, run `berth bless` and review `git diff {}`",
            golden_dir.display()
        );
    }
}

fn print_json(drift: &golden::Drift) {
    let report = serde_json::json!({
        "clean": drift.is_clean(),
        "summary": drift.summary(),
        "changed": drift.changed,
        "missing": drift.missing,
        "extra": drift.extra,
        "unchanged": drift.unchanged,
    });
    say!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
}
