use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use clap::Args;

use super::Outcome;
use crate::Error;
use crate::compile::on_eval_thread;
use crate::eval;
use crate::project::Project;

/// The child side of evaluation (`eval::child`): evaluates the stack × profile pairs
/// listed as JSON on stdin (several as one program) and writes the answer as JSON on
/// stdout. Hidden: berth runs it, users do not.
#[derive(Debug, Args)]
pub struct Evaluate {
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
        let mut request = String::new();
        // An unreadable request is answered as one that does not parse.
        let _ = std::io::stdin().read_to_string(&mut request);
        let checked = self.modules_checked;
        // A parent that went away has no use for the answer.
        let _ = on_eval_thread(|| {
            let mut stdout = std::io::stdout().lock();
            let _ = eval::answer(&project, &request, checked, &mut stdout);
            let _ = stdout.flush();
            Ok(())
        });
        Ok(Outcome::Done)
    }
}
