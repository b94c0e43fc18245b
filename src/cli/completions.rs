use clap::{Args, CommandFactory};

use super::{Cli, Outcome};
use crate::Error;

/// Print a shell completion script, generated from berth's own arguments.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  berth completions bash > ~/.local/share/bash-completion/completions/berth
  berth completions zsh > ~/.zfunc/_berth
  berth completions fish > ~/.config/fish/completions/berth.fish")]
pub struct Completions {
    /// The shell.
    shell: clap_complete::Shell,
}

/// Print berth's man page (roff), generated from its own arguments.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  berth man > ~/.local/share/man/man1/berth.1 && man berth")]
pub struct Man {}

impl Completions {
    pub fn run(self) -> Result<Outcome, Error> {
        let mut command = Cli::command();
        // Into memory first: the generator panics on a failed write (a closed pipe).
        let mut script = Vec::new();
        clap_complete::generate(self.shell, &mut command, "berth", &mut script);
        write_stdout(&script)
    }
}

impl Man {
    pub fn run(self) -> Result<Outcome, Error> {
        let man = clap_mangen::Man::new(Cli::command());
        let mut page = Vec::new();
        man.render(&mut page)
            .map_err(|source| crate::error::LoadError::Io {
                path: "<man page>".into(),
                source,
            })?;
        write_stdout(&page)
    }
}

/// Writes `bytes` to standard output; a failure (a closed pipe) is an error, not a panic.
fn write_stdout(bytes: &[u8]) -> Result<Outcome, Error> {
    std::io::Write::write_all(&mut std::io::stdout(), bytes).map_err(|source| {
        crate::error::LoadError::Io {
            path: "<stdout>".into(),
            source,
        }
    })?;
    Ok(Outcome::Done)
}
