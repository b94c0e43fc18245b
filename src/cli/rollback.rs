use std::time::Duration;

use clap::Args;

use super::Outcome;
use super::deploy::{Place, block_on, parse_duration, progress};
use crate::Error;
use crate::apply;

/// Put the host back on an earlier generation (default: the one before the current),
/// with the exact images it ran, and record that as a new generation. Reads only the
/// state folder, so it works while the modules are broken.
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
    pub fn run(self, quiet: bool) -> Result<Outcome, Error> {
        let state = self.place.state();
        let number = block_on(apply::rollback(
            &state,
            &self.stack,
            &self.profile,
            self.to,
            self.timeout,
            progress(quiet),
        ))?;
        say!("rolled back: now generation {number}");
        Ok(Outcome::Done)
    }
}
