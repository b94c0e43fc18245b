use std::path::PathBuf;

use clap::Args;

use super::{Outcome, Selection, jobs};
use crate::compile::{compile_all, tree};
use crate::error::Error;
use crate::output;
use crate::project::Project;

/// Build artifacts into the output folder: out/<stack>/<profile>/compose.yaml, .env.template.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  berth build\n  berth build --stack ape --profile prod-lite --out /tmp/out\n  berth build --stack aigym --no-profile"
)]
pub struct Build {
    #[command(flatten)]
    selection: Selection,
    /// Output folder: new, empty, or one berth wrote (it lists its files in .berth-output).
    #[arg(long, default_value = "out", value_name = "DIR")]
    out: PathBuf,
}

impl Build {
    pub fn run(self, project: &Project) -> Result<Outcome, Error> {
        let (stacks, profiles) = self.selection.resolve(project)?;
        let builds = compile_all(project, &stacks, &profiles, jobs())?;
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
