use clap::Args;

use super::Outcome;
use super::deploy::Place;
use crate::Error;

/// List the recorded generations of a stack and profile, oldest first; the last one is
/// what the host runs.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  berth generations --stack rag-engine --profile staging")]
pub struct Generations {
    #[arg(long, value_name = "NAME")]
    stack: String,
    /// The profile it was applied with (`none` for --no-profile).
    #[arg(long, value_name = "NAME")]
    profile: String,
    #[command(flatten)]
    place: Place,
}

impl Generations {
    pub fn run(self) -> Result<Outcome, Error> {
        let state = self.place.state()?;
        super::deploy::block_on(crate::apply::fetch_state(&state, &self.stack))?;
        let generations = state.generations(&self.stack, &self.profile)?;
        let backups = state.backups(&self.stack, &self.profile)?;
        if generations.is_empty() {
            say!(
                "no generations of stack `{}` with profile `{}`",
                self.stack,
                self.profile
            );
        }
        let last = generations.last().map(|g| g.number);
        for generation in &generations {
            let marker = if Some(generation.number) == last {
                "  (current)"
            } else {
                ""
            };
            say!(
                "{:>4}  {}  {}  model {}  {} services{marker}",
                generation.number,
                utc(generation.created),
                generation.source,
                &generation.model_hash[..12.min(generation.model_hash.len())],
                generation.desired.services.len(),
            );
            for taken in backups.iter().filter(|b| b.generation == generation.number) {
                say!(
                    "      backup of {}: {}",
                    taken.service,
                    taken.path.display()
                );
                if let Some(restore) = &taken.restore {
                    say!("        restore: {restore}");
                }
            }
        }
        Ok(Outcome::Done)
    }
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of a Unix time, by the days-to-civil algorithm.
fn utc(seconds: u64) -> String {
    let days = i64::try_from(seconds / 86_400).unwrap_or(0);
    let rest = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn unix_times_read_as_utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00");
        assert_eq!(super::utc(1_795_000_000), "2026-11-18 11:06:40");
    }
}
