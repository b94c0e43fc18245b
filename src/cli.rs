//! The command line: parses arguments, sets up logging, runs one subcommand, and maps its
//! outcome to the exit code (0 done, 1 drift, 2 error). Subcommands render nothing
//! themselves; they call the library.

/// `println!` for command output that ignores a closed stdout (`berth list | head -1`):
/// the reader has what it wanted, so berth carries on to its usual exit code instead of
/// panicking, as `println!` does on a broken pipe.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// [`say!`] without the newline.
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

mod apply;
mod bless;
mod build;
mod check;
mod completions;
mod deploy;
mod doc;
mod down;
mod evaluate;
mod explain;
mod generations;
mod import;
mod init;
mod library;
mod list;
mod plan;
mod rollback;
mod secrets;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::Error;
use crate::project::{ProfileRef, Project, StackRef};

/// berth compiles typed Nickel stack modules into every artifact ops needs.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    /// Project folder: modules/stacks/, and optionally schemas/, modules/services/ and
    /// profiles/ of its own, which win over berth's library.
    #[arg(long, global = true, default_value = ".", value_name = "DIR")]
    root: PathBuf,
    /// More output (-v: progress, -vv: debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "Examples:
  berth build                          every stack × every profile into ./out
  berth build --stack ape --profile prod-lite
  berth check                          compare a fresh build with golden/ (exit 1 on drift)
  berth bless                          accept the fresh build as golden/
  berth list                           stacks, profiles and services
  berth plan --stack ape --profile dev what apply would change on the Docker engine
  berth apply --stack ape --profile dev --yes
  berth rollback --stack ape --profile dev
  berth import docker-compose.yml --name shop
  berth init shop                      start a project in ./shop
  berth list --modules                 which modules come from berth's library
  berth explain --stack ape --profile prod-lite services.api.replicas
                                       why a field has its value";

#[derive(Debug, Subcommand)]
enum Command {
    /// Build artifacts into the output folder.
    Build(build::Build),
    /// Compare a fresh build with golden/; exit 1 on drift.
    Check(check::Check),
    /// Replace golden/ with a fresh build, on purpose.
    Bless(bless::Bless),
    /// List stacks, profiles, and the services of each stack.
    List(list::List),
    /// Show a field's final value and every definition that took part, with its priority.
    Explain(explain::Explain),
    /// Generate the options reference from the contracts' doc strings.
    Doc(doc::Doc),
    /// Show what apply would change on the Docker engine; exit 1 if anything.
    Plan(plan::Plan),
    /// Converge the Docker engine to a stack, health-gated, with rollback on failure.
    Apply(apply::Apply),
    /// List the recorded generations of a stack.
    Generations(generations::Generations),
    /// Return the host to an earlier generation.
    Rollback(rollback::Rollback),
    /// Manage a profile's encrypted secrets (secrets/<profile>.env.age).
    Secrets(secrets::Secrets),
    /// Remove what apply created for a stack (volumes are kept).
    Down(down::Down),
    /// Turn a Compose file into a stack module; list what cannot be kept.
    Import(import::Import),
    /// Start a project: an example stack using berth's library, berth.toml, .gitignore.
    Init(init::Init),
    /// The library embedded in berth: export it, or print its import path for editors.
    Library(library::Library),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::Completions),
    /// Print berth's man page.
    Man(completions::Man),
    /// Evaluate one stack for the berth process that runs this (see `eval::child`).
    #[command(name = "__evaluate", hide = true)]
    Evaluate(evaluate::Evaluate),
}

/// Which stacks and profiles a command works on.
#[derive(Debug, Clone, Args)]
struct Selection {
    /// Only this stack (repeatable). Default: every stack in modules/stacks/.
    #[arg(long = "stack", value_name = "NAME")]
    stacks: Vec<String>,
    /// Only this profile (repeatable). Default: every profile in profiles/.
    #[arg(long = "profile", value_name = "NAME", conflicts_with = "no_profile")]
    profiles: Vec<String>,
    /// Build with no profile overlay at all (into <stack>/none/).
    #[arg(long)]
    no_profile: bool,
}

impl Selection {
    fn is_everything(&self) -> bool {
        self.stacks.is_empty() && self.profiles.is_empty() && !self.no_profile
    }

    fn resolve(&self, project: &Project) -> Result<(Vec<StackRef>, Vec<ProfileRef>), Error> {
        let stacks = project.select_stacks(&self.stacks)?;
        let profiles = if self.no_profile {
            vec![ProfileRef::None]
        } else {
            project.select_profiles(&self.profiles)?
        };
        project.require_something(&stacks, &profiles)?;
        Ok((stacks, profiles))
    }
}

/// Whether and where results are reused (see `cache`).
#[derive(Debug, Clone, Args)]
struct CacheArgs {
    /// Build cache folder. Default: $BERTH_CACHE_DIR, else $XDG_CACHE_HOME/berth, else
    /// ~/.cache/berth.
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    cache_dir: Option<PathBuf>,
    /// Evaluate every stack: reuse no cached result and store none.
    #[arg(long)]
    no_cache: bool,
    /// The most the build cache keeps (units b, k, m, g), least recently used entries
    /// removed first. Default: $BERTH_CACHE_MAX_SIZE, else 256M.
    #[arg(long, value_name = "SIZE", conflicts_with = "no_cache", value_parser = parse_size)]
    cache_max_size: Option<u64>,
}

/// The variable that sets the cache's size cap when `--cache-max-size` does not.
const CACHE_MAX_SIZE_VAR: &str = "BERTH_CACHE_MAX_SIZE";

fn parse_size(written: &str) -> Result<u64, String> {
    crate::model::units::ByteSize::try_from(written.to_string()).map(|size| size.bytes())
}

impl CacheArgs {
    fn open(&self, project: &Project) -> Result<Option<crate::cache::Cache>, Error> {
        if self.no_cache {
            return Ok(None);
        }
        let max_bytes = match self.cache_max_size {
            Some(bytes) => bytes,
            None => match std::env::var(CACHE_MAX_SIZE_VAR) {
                Ok(written) if !written.is_empty() => {
                    parse_size(&written).map_err(|message| crate::error::LoadError::Setting {
                        name: CACHE_MAX_SIZE_VAR,
                        message,
                    })?
                }
                _ => crate::cache::DEFAULT_MAX_BYTES,
            },
        };
        let dir = self
            .cache_dir
            .clone()
            .unwrap_or_else(crate::cache::Cache::default_dir);
        Ok(Some(crate::cache::Cache::open(&dir, project, max_bytes)))
    }
}

/// What a command ended with, short of an error.
pub enum Outcome {
    Done,
    /// Exit 1: golden drift (`check`), or changes pending (`plan`).
    Drift,
}

/// Runs berth with these arguments and returns the process exit code.
pub fn run(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help and version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    init_logging(cli.verbose, cli.quiet);
    match execute(cli) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Drift) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

fn execute(cli: Cli) -> Result<Outcome, Error> {
    // These read only the state folder and the engine, not the modules.
    match cli.command {
        Command::Generations(command) => return command.run(),
        Command::Rollback(command) => return command.run(&cli.root, cli.quiet),
        Command::Down(command) => return command.run(),
        // Writes into modules/stacks/ by default, but needs no project to read.
        Command::Import(command) => return command.run(&cli.root),
        // These make a project, or need none.
        Command::Init(command) => return command.run(&cli.root),
        Command::Secrets(command) => return command.run(&cli.root),
        Command::Library(command) => return command.run(&cli.root),
        Command::Completions(command) => return command.run(),
        Command::Man(command) => return command.run(),
        // Evaluates in this process: it is the child the others evaluate in.
        Command::Evaluate(command) => return command.run(&cli.root),
        _ => {}
    }
    // A stack that exhausts the evaluator's stack then ends a child, not this command.
    match std::env::current_exe() {
        Ok(executable) => crate::eval::evaluate_in_children(executable),
        Err(e) => tracing::debug!("evaluating in this process (no path to berth: {e})"),
    }
    let project = Project::open(&cli.root)?;
    match cli.command {
        Command::Build(command) => command.run(&project),
        Command::Check(command) => command.run(&project),
        Command::Bless(command) => command.run(&project),
        Command::List(command) => command.run(&project),
        Command::Explain(command) => command.run(&project),
        Command::Doc(command) => command.run(&project),
        Command::Plan(command) => command.run(&project),
        Command::Apply(command) => command.run(&project, cli.quiet),
        Command::Generations(_)
        | Command::Rollback(_)
        | Command::Down(_)
        | Command::Import(_)
        | Command::Init(_)
        | Command::Secrets(_)
        | Command::Library(_)
        | Command::Completions(_)
        | Command::Man(_)
        | Command::Evaluate(_) => Ok(Outcome::Done),
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => tracing::Level::ERROR,
        (false, 0) => tracing::Level::WARN,
        (false, 1) => tracing::Level::INFO,
        (false, _) => tracing::Level::DEBUG,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .with_target(false)
        .try_init();
}

/// Threads for building: one per core.
fn jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
