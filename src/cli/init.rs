use std::path::{Path, PathBuf};

use clap::Args;

use super::Outcome;
use crate::Error;
use crate::init::{self, InitError, Options};
use crate::output::{self, Written};

/// Start a project: an example stack, berth.toml, .gitignore, a README stub.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  berth init shop                  a new folder `shop` with the stack `shop`
  berth init --stack api --ci      here, with a CI workflow running `berth check`

The schemas, service modules and profiles come from berth itself; no copy is written.")]
pub struct Init {
    /// Folder of the new project (created if missing). Default: --root.
    dir: Option<PathBuf>,
    /// Name of the example stack. Default: the folder's name when it is a valid stack
    /// name, else `example`.
    #[arg(long, value_name = "NAME")]
    stack: Option<String>,
    /// Also write .github/workflows/berth.yml, which runs `berth check`.
    #[arg(long)]
    ci: bool,
    /// Write into a folder that is not empty; existing files are still never replaced.
    #[arg(long)]
    force: bool,
}

impl Init {
    pub fn run(self, root: &Path) -> Result<Outcome, Error> {
        let dir = self.dir.clone().unwrap_or_else(|| root.to_path_buf());
        let stack = match &self.stack {
            Some(name) if !init::valid_stack_name(name) => {
                return Err(InitError::BadStackName { name: name.clone() }.into());
            }
            Some(name) => name.clone(),
            None => default_stack_name(&dir),
        };
        if !self.force && !output::is_empty_or_missing(&dir)? {
            return Err(InitError::NotEmpty { dir }.into());
        }
        let options = Options {
            stack: stack.clone(),
            ci: self.ci,
        };
        let files = init::project_files(&options, crate::library::VERSION);
        for (path, written) in output::write_new_files(&dir, &files)? {
            match written {
                Written::Created => println!("created {}", path.display()),
                Written::Kept => println!("kept    {} (exists; not replaced)", path.display()),
            }
        }
        println!(
            "next: cd {} && berth build      (then `berth bless` and commit golden/)",
            dir.display()
        );
        Ok(Outcome::Done)
    }
}

/// The folder's own name when it is a valid stack name, else `example`.
fn default_stack_name(dir: &Path) -> String {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    absolute
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| init::valid_stack_name(name))
        .unwrap_or_else(|| "example".to_string())
}
