use clap::Args;

use super::Outcome;
use super::deploy::{Place, block_on};
use crate::Error;
use crate::apply;

/// Stop and remove the containers and networks apply created for a stack and profile.
/// Volumes, and their data, are kept.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  berth down --stack rag-engine --profile staging")]
pub struct Down {
    #[arg(long, value_name = "NAME")]
    stack: String,
    /// Only the containers applied with this profile (`none` for --no-profile).
    /// Default: every profile's.
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    #[command(flatten)]
    place: Place,
}

impl Down {
    pub fn run(self) -> Result<Outcome, Error> {
        let removed = block_on(apply::down(
            &self.place.state()?,
            &self.stack,
            self.profile.as_deref(),
        ))?;
        for line in &removed {
            say!("removed {line}");
        }
        say!("down: {} removed, volumes kept", removed.len());
        Ok(Outcome::Done)
    }
}
