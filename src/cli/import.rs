use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;

use super::Outcome;
use crate::Error;
use crate::import::ImportFailure;
use crate::import::{self, Options};
use crate::output;
use crate::project::{is_valid_name, normalized_name};

/// Turn a Compose file into a berth stack module.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  berth import docker-compose.yml                      writes modules/stacks/<name>.ncl
  berth import compose.yaml --name shop --env-file .env.example
  berth import compose.yaml --allow-lossy --out /tmp/shop.ncl

Exit codes: 0 written; 1 some keys cannot be expressed (listed; nothing written
without --allow-lossy); 2 the file is missing or is not a Compose file.")]
pub struct Import {
    /// The Compose file.
    file: PathBuf,
    /// Stack name. Default: the file's `name:`, else the file name.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Where to write the module. Default: <root>/modules/stacks/<name>.ncl.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Variable values (KEY=value lines): defaults for variables the Compose file leaves
    /// without one. Default: .env beside the Compose file, when there is one.
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
    /// Write the module even if some keys cannot be expressed; they become comments.
    #[arg(long)]
    allow_lossy: bool,
    /// Replace the output file if it exists.
    #[arg(long)]
    force: bool,
}

impl Import {
    pub fn run(self, root: &Path) -> Result<Outcome, Error> {
        if let Some(name) = self.name.as_deref().filter(|name| !is_valid_name(name)) {
            let suggestion = normalized_name(name.rsplit('/').next().unwrap_or(name));
            return Err(ImportFailure::BadName {
                name: name.to_string(),
                suggestion: if suggestion.is_empty() {
                    "shop".to_string()
                } else {
                    suggestion
                },
            }
            .into());
        }
        let text = read_text(&self.file)?;
        let env_file = self.env_file.clone().or_else(|| {
            let beside = self.file.parent().unwrap_or(Path::new(".")).join(".env");
            beside.is_file().then_some(beside)
        });
        let env = match &env_file {
            Some(path) => read_env_file(path)?,
            None => BTreeMap::new(),
        };
        let file_name = self.file.file_name().map_or_else(
            || self.file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let options = Options {
            name: self.name.clone(),
            fallback_name: default_name(&self.file),
            file: file_name,
            env,
            env_file: env_file.as_ref().map(|p| p.display().to_string()),
        };
        let folder = self.file.parent().unwrap_or(Path::new(".")).to_path_buf();
        let read =
            |name: &str| std::fs::read_to_string(folder.join(name)).map_err(|e| e.to_string());
        let imported =
            import::import(&text, &options, &read).map_err(|error| ImportFailure::Invalid {
                file: self.file.clone(),
                error,
            })?;
        for note in &imported.notes {
            tracing::info!("{}: {note}", self.file.display());
        }
        for loss in &imported.losses {
            eprintln!(
                "{}:{}: {}: {}",
                self.file.display(),
                loss.line,
                loss.key,
                loss.reason
            );
        }
        if !imported.losses.is_empty() && !self.allow_lossy {
            return Err(ImportFailure::Lossy {
                file: self.file.clone(),
                count: imported.losses.len(),
            }
            .into());
        }
        let out = self.out.clone().unwrap_or_else(|| {
            root.join("modules/stacks")
                .join(format!("{}.ncl", imported.stack))
        });
        if out.exists() && !self.force {
            return Err(ImportFailure::Exists { path: out }.into());
        }
        output::replace_file(&out, &imported.module)?;
        say!(
            "imported {} as stack `{}` into {}{}",
            self.file.display(),
            imported.stack,
            out.display(),
            if imported.losses.is_empty() {
                String::new()
            } else {
                format!(" ({} keys kept as comments)", imported.losses.len())
            }
        );
        Ok(Outcome::Done)
    }
}

/// The Compose file's text; a file that is not UTF-8 is reported at its first bad byte.
fn read_text(path: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|source| ImportFailure::Read {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let (line, column, byte) = crate::error::not_utf8_at(&e);
        ImportFailure::Invalid {
            file: path.to_path_buf(),
            error: import::ImportError {
                line: u64::try_from(line).ok(),
                column: u64::try_from(column).ok(),
                key: None,
                message: format!("not UTF-8 text (byte 0x{byte:02x}); Compose files are UTF-8"),
            },
        }
        .into()
    })
}

fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportFailure::Read {
        path: path.to_path_buf(),
        source,
    })?;
    crate::env_file::parse(&text).map_err(|(line, message)| {
        ImportFailure::EnvFile {
            file: path.to_path_buf(),
            message: format!("line {line}: {message}"),
        }
        .into()
    })
}

/// The stack name when neither --name nor the file's `name:` gives one: the file name,
/// or its folder's for the generic names (`shop/compose.yaml` is "shop").
fn default_name(file: &Path) -> String {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let generic = matches!(
        stem.as_str(),
        "compose" | "docker-compose" | "compose.override" | "docker-compose.override" | ""
    );
    if generic {
        std::path::absolute(file)
            .ok()
            .and_then(|p| {
                p.parent()
                    .and_then(|d| d.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or(stem)
    } else {
        stem
    }
}
