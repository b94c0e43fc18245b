use std::path::Path;
use std::time::Duration;

use clap::Args;

use super::Outcome;
use super::deploy::{Place, block_on, parse_duration, progress};
use crate::Error;
use crate::apply;

/// Put the host back on an earlier generation (default: the one before the current),
/// with the exact images it ran, and record that as a new generation. Reads only the
/// state folder (and the secret values, which berth never keeps), so it works while the
/// modules are broken.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  berth rollback --stack rag-engine --profile staging\n  berth rollback --stack rag-engine --profile staging --to 3"
)]
pub struct Rollback {
    #[arg(long, value_name = "NAME")]
    stack: String,
    /// The profile it was applied with (`none` for --no-profile).
    #[arg(long, value_name = "NAME")]
    profile: String,
    /// The generation to return to.
    #[arg(long, value_name = "N")]
    to: Option<u32>,
    /// How long each service may take to become healthy (or complete).
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    timeout: Duration,
    #[command(flatten)]
    place: Place,
}

impl Rollback {
    pub fn run(self, root: &Path, quiet: bool) -> Result<Outcome, Error> {
        let state = self.place.state()?;
        // Secrets are not kept: their values come from where apply reads them.
        let source = apply::SecretSource::open(
            root,
            &self.profile,
            Some(&self.place.env_file),
            self.place.identity.as_deref(),
            true,
        )?;
        let rolled_back = block_on(apply::rollback(
            &state,
            &self.stack,
            &self.profile,
            self.to,
            &source,
            self.timeout,
            progress(quiet),
        ))?;
        say!("rolled back: now generation {}", rolled_back.number);
        for name in &rolled_back.changed_secrets {
            say!(
                "note: secret {name} has changed since that generation; it runs with its current value"
            );
        }
        Ok(Outcome::Done)
    }
}
