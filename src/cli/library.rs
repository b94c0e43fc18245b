use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::Outcome;
use crate::Error;
use crate::error::LoadError;
use crate::{library, project};

/// The library embedded in berth: schemas, service modules, profiles.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  berth library export vendor/berth     the library as files, to read or to vendor
  export NICKEL_IMPORT_PATH=$(berth library path)   so nls and `nickel` resolve imports as berth does")]
pub struct Library {
    #[command(subcommand)]
    command: LibraryCommand,
}

#[derive(Debug, Subcommand)]
enum LibraryCommand {
    /// Write the library into DIR (a new or empty folder).
    Export {
        /// The folder to write.
        dir: PathBuf,
    },
    /// Print the import path berth evaluates --root with (the project's schemas/ and
    /// modules/, then the library's), `:`-separated, for NICKEL_IMPORT_PATH.
    Path,
}

impl Library {
    pub fn run(self, root: &Path) -> Result<Outcome, Error> {
        match self.command {
            LibraryCommand::Export { dir } => {
                let n_files = library::export(&dir)?;
                println!(
                    "wrote {n_files} files of berth {} into {}",
                    library::VERSION,
                    dir.display()
                );
            }
            LibraryCommand::Path => {
                let library = library::materialise().map_err(LoadError::Library)?;
                let root = std::path::absolute(root).map_err(|source| LoadError::Io {
                    path: root.to_path_buf(),
                    source,
                })?;
                let paths = project::import_paths(&root, &library);
                let joined: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                println!("{}", joined.join(":"));
            }
        }
        Ok(Outcome::Done)
    }
}
