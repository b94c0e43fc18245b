use std::io::Write;
use std::time::Duration;

use clap::Args;

use super::Outcome;
use super::deploy::{Deployment, block_on, parse_duration, progress, stdin_is_terminal};
use crate::Error;
use crate::apply::{self, ApplyError, plan::Options};
use crate::project::Project;

/// Converge the Docker engine to a stack: build or check images, create networks and
/// volumes, start containers in dependency order (each when its dependencies are started,
/// healthy or completed), remove what the modules no longer have, and record a
/// generation. A service that fails rolls the host back to the last generation (exit 1).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  berth apply --stack rag-engine --profile staging --yes\n  berth apply --stack ape --profile prod-lite --env-file /etc/ape/.env --timeout 5m\n  berth apply --stack ape --profile prod-lite --host ssh://deploy@prod-1.example.com --yes"
)]
pub struct Apply {
    #[command(flatten)]
    deployment: Deployment,
    /// Apply without asking (required when stdin is not a terminal).
    #[arg(long, short)]
    yes: bool,
    /// How long each service may take to become healthy (or complete).
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    timeout: Duration,
    /// Keep containers of services no longer in the modules.
    #[arg(long)]
    no_prune: bool,
    /// Also remove the stack's volumes no service uses any more (their data is lost).
    #[arg(long)]
    prune_volumes: bool,
    /// Rebuild images that have a build section even when the engine has them (by
    /// default, as with `docker compose up`, only missing images are built).
    #[arg(long)]
    build: bool,
    /// Do not back up services that declare a backup before recreating or removing them.
    #[arg(long)]
    no_backup: bool,
    /// Where those backups go [default: the profile's backup_root, per stack].
    #[arg(long, value_name = "DIR")]
    backup_root: Option<std::path::PathBuf>,
    /// How many backups of each service to keep there (older ones are removed once a
    /// new one is written; at least 1).
    #[arg(long, value_name = "N", default_value_t = crate::apply::backup::DEFAULT_KEEP)]
    keep_backups: usize,
}

impl Apply {
    pub fn run(self, project: &Project, quiet: bool) -> Result<Outcome, Error> {
        if !self.yes && !stdin_is_terminal() {
            return Err(ApplyError::Preflight {
                problems: vec![
                    "apply asks before changing the host; pass --yes when not at a terminal".into(),
                ],
            }
            .into());
        }
        let mut target = self.deployment.target(project)?;
        target.backup_root = self.backup_root.clone();
        target.keep_backups = self.keep_backups;
        let options = Options {
            prune: !self.no_prune,
            prune_volumes: self.prune_volumes,
            build: self.build,
            backup: !self.no_backup,
        };
        let yes = self.yes;
        let confirm = move |plan: &apply::plan::Plan| {
            say!("{plan}");
            yes || ask("apply these changes?")
        };
        let applied = block_on(apply::apply(
            &target,
            options,
            self.timeout,
            confirm,
            progress(quiet),
        ))?;
        for taken in applied.iter().flat_map(|a| &a.backups) {
            say!(
                "backup of {} (generation {}): {}",
                taken.service,
                taken.generation,
                taken.path.display()
            );
            if let Some(restore) = &taken.restore {
                say!("  restore: {restore}");
            }
        }
        match applied {
            None => say!("nothing applied"),
            Some(applied) => match applied.generation {
                Some(number) => say!(
                    "applied: generation {number} of stack `{}` with profile `{}`",
                    self.deployment.stack,
                    self.deployment.profile_name()
                ),
                None => say!("up to date: {}", applied.plan.summary()),
            },
        }
        Ok(Outcome::Done)
    }
}

fn ask(question: &str) -> bool {
    say_raw!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok() && matches!(answer.trim(), "y" | "Y" | "yes")
}
