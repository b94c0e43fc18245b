use std::path::PathBuf;

use clap::Args;

use super::{Outcome, jobs};
use crate::Error;
use crate::compile::{compile_all, tree};
use crate::output;
use crate::project::Project;

/// Replace golden/ with a fresh build of every stack × every profile, atomically.
/// Read the diff of golden/ before committing it: that diff is the review.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  berth check || (berth bless && git diff golden/)")]
pub struct Bless {
    /// Golden folder, relative to the project root unless absolute.
    #[arg(long, default_value = "golden", value_name = "DIR")]
    golden: PathBuf,
}

impl Bless {
    pub fn run(self, project: &Project) -> Result<Outcome, Error> {
        let (stacks, profiles) = (project.select_stacks(&[])?, project.profiles()?);
        project.require_something(&stacks, &profiles)?;
        let builds = compile_all(project, &stacks, &profiles, jobs())?;
        let files = tree(&builds);
        let golden = project.root().join(&self.golden);
        output::replace_dir(&golden, project.root(), &files)?;
        eprintln!("blessed {} files into {}", files.len(), golden.display());
        Ok(Outcome::Done)
    }
}
