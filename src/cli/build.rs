use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{CacheArgs, Outcome, Selection, jobs};
use crate::Error;
use crate::compile::{Built, compile_all_cached, tree};
use crate::output;
use crate::project::Project;

/// Build artifacts into the output folder: out/<stack>/<profile>/compose.yaml, .env.template.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  berth build\n  berth build --stack ape --profile prod-lite --out /tmp/out\n  berth build --stack aigym --no-profile\n  berth build --strict --format json"
)]
pub struct Build {
    #[command(flatten)]
    selection: Selection,
    #[command(flatten)]
    cache: CacheArgs,
    /// Output folder: new, empty, or one berth wrote (it lists its files in .berth-output).
    #[arg(long, default_value = "out", value_name = "DIR")]
    out: PathBuf,
    /// Fields a backend cannot carry are errors (exit 2, nothing written), not warnings.
    #[arg(long)]
    strict: bool,
    /// How warnings are printed on stderr: `text` lines, or one JSON document for CI.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

impl Build {
    pub fn run(self, project: &Project) -> Result<Outcome, Error> {
        let (stacks, profiles) = self.selection.resolve(project)?;
        let cache = self.cache.open(project)?;
        let builds = compile_all_cached(project, &stacks, &profiles, jobs(), cache.as_ref())?;
        if self.strict {
            for built in &builds {
                built.refuse_warnings()?;
            }
        }
        print_warnings(&builds, self.format);
        let files = tree(&builds);
        if self.selection.is_everything() {
            output::replace_dir(&self.out, project.root(), &files)?;
        } else {
            let dirs: Vec<PathBuf> = builds.iter().map(|built| built.dir()).collect();
            output::replace_subdirs(&self.out, project.root(), &dirs, &files)?;
        }
        tracing::info!(
            "wrote {} files for {} builds into {}",
            files.len(),
            builds.len(),
            self.out.display()
        );
        Ok(Outcome::Done)
    }
}

/// Every warning once: the same field of one stack is reported once whichever profiles
/// repeat it, naming those profiles, in (stack, profile, backend, field) order, so runs
/// print the same bytes.
fn print_warnings(builds: &[Built], format: Format) {
    let mut seen = std::collections::BTreeSet::new();
    let mut lines = Vec::new();
    let mut profiles: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
    for built in builds {
        for warning in &built.warnings {
            let line = format!("{} (stack `{}`", warning, built.stack);
            profiles
                .entry(line.clone())
                .or_default()
                .push(&built.profile);
            if seen.insert(line.clone()) {
                lines.push((built, warning, line));
            }
        }
    }
    match format {
        Format::Text => {
            for (_, _, line) in &lines {
                let named = &profiles[line];
                let noun = if named.len() == 1 {
                    "profile"
                } else {
                    "profiles"
                };
                eprintln!("{line}, {noun} {})", named.join(", "));
            }
        }
        Format::Json => {
            let warnings: Vec<serde_json::Value> = lines
                .iter()
                .map(|(built, warning, _)| {
                    let location = warning.diagnostic.location.as_ref();
                    serde_json::json!({
                        "stack": built.stack,
                        "profile": built.profile,
                        "backend": warning.backend.name(),
                        "field": warning.diagnostic.field,
                        "message": warning.diagnostic.message,
                        "file": location.map(|l| l.file.display().to_string()),
                        "line": location.map(|l| l.line),
                        "column": location.map(|l| l.column),
                    })
                })
                .collect();
            eprintln!("{}", serde_json::json!({ "warnings": warnings }));
        }
    }
}
