use clap::Args;

use super::Outcome;
use super::deploy::{Deployment, block_on};
use crate::Error;
use crate::apply::{self, plan::Options};
use crate::project::Project;

/// Show what `apply` would change on the engine, changing nothing. Exit 0 when nothing
/// would change, 1 when something would, 2 on error.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  berth plan --stack rag-engine --profile staging\n  berth plan --stack ape --profile prod-lite --host ssh://deploy@prod-1.example.com\n  berth plan --stack melvin --profile dev --no-cache      # evaluate afresh, ignore the build cache"
)]
pub struct Plan {
    #[command(flatten)]
    deployment: Deployment,
    /// Keep containers of services no longer in the modules (as apply --no-prune would).
    #[arg(long)]
    no_prune: bool,
    /// Also list the stack's volumes no service uses any more for removal.
    #[arg(long)]
    prune_volumes: bool,
    /// Rebuild images that have a build section even when the engine has them (by
    /// default, as with `docker compose up`, only missing images are built).
    #[arg(long)]
    build: bool,
}

impl Plan {
    pub fn run(self, project: &Project) -> Result<Outcome, Error> {
        let target = self.deployment.target(project)?;
        let options = Options {
            prune: !self.no_prune,
            prune_volumes: self.prune_volumes,
            build: self.build,
            backup: true,
        };
        let planned = block_on(apply::plan(&target, options))?;
        say!(
            "plan for stack `{}` with profile `{}`:",
            self.deployment.stack,
            self.deployment.profile_name()
        );
        for note in &planned.notes {
            say!("  note: {note}");
        }
        say!("{}", planned.plan);
        Ok(if planned.plan.is_noop() {
            Outcome::Done
        } else {
            Outcome::Drift
        })
    }
}
