use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;

use super::Outcome;
use crate::Error;
use crate::compile::on_eval_thread;
use crate::eval;
use crate::project::{ProfileRef, Project, StackRef};

/// The child side of evaluation (`eval::child`): evaluates one stack with one profile and
/// writes the answer as JSON on stdout. Hidden: berth runs it, users do not.
#[derive(Debug, Args)]
pub struct Evaluate {
    #[arg(long)]
    stack: String,
    #[arg(long, value_name = "FILE")]
    stack_path: PathBuf,
    #[arg(long, requires = "profile_path")]
    profile: Option<String>,
    #[arg(long, value_name = "FILE", requires = "profile")]
    profile_path: Option<PathBuf>,
    /// The library folder the parent materialised (the child then neither checks
    /// berth.toml nor the library again).
    #[arg(long, value_name = "DIR")]
    library: Option<PathBuf>,
    /// The parent checked the nesting of every project module already.
    #[arg(long)]
    modules_checked: bool,
}

impl Evaluate {
    pub fn run(self, root: &Path) -> Result<Outcome, Error> {
        let project = match &self.library {
            Some(library) => Project::opened(root, library),
            None => Project::open(root)?,
        };
        let stack = StackRef {
            name: self.stack,
            path: self.stack_path,
        };
        let profile = match (self.profile, self.profile_path) {
            (Some(name), Some(path)) => ProfileRef::File { name, path },
            _ => ProfileRef::None,
        };
        let checked = self.modules_checked;
        let answer = on_eval_thread(|| Ok(eval::answer(&project, &stack, &profile, checked)))?;
        // A parent that went away has no use for the answer.
        let _ = std::io::stdout().write_all(answer.as_bytes());
        Ok(Outcome::Done)
    }
}
