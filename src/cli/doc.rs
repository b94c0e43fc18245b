//! `berth doc`: the options reference, from the contracts' doc strings.

use std::path::PathBuf;

use clap::Args;

use super::Outcome;
use crate::compile::on_eval_thread;
use crate::project::Project;
use crate::{Error, doc, eval, output};

/// Generate the options reference (Markdown, and an HTML page with a search box).
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  berth doc                  the Markdown reference on standard output
  berth doc --out docs       docs/options.md and docs/options.html")]
pub struct Doc {
    /// Write options.md and options.html into this folder instead of printing Markdown.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

impl Doc {
    /// Reads the schema's record contracts and the library modules' parameters; warns
    /// about a field without a doc string or a stated default.
    pub fn run(self, project: &Project) -> Result<Outcome, Error> {
        let modules_dir = project.library().join("modules/services");
        let (schema, modules) = on_eval_thread(|| {
            Ok((
                eval::schema_records(project)?,
                eval::module_params(project, &modules_dir)?,
            ))
        })?;
        let profile_info = |field: &String| field.starts_with("ProfileInfo.");
        for field in doc::undocumented(&schema)
            .iter()
            .filter(|f| !profile_info(f))
        {
            tracing::warn!("{field}: no doc string, or no `Default:` for an optional field");
        }
        // Parameters with a contract default document it there, an optional one in its
        // sentence. Reported, not refused, so that a project's own modules need not follow
        // suit; the bundled library's are held to it by a test (tests/cli/doc.rs).
        for field in doc::undocumented(&modules) {
            tracing::warn!(
                "{field}: a parameter without a doc string, or no `Default:` for an optional one"
            );
        }
        let options = doc::options(&schema, &modules);
        match self.out {
            None => say_raw!("{}", doc::markdown(&options)),
            Some(dir) => {
                output::replace_file(&dir.join(doc::MARKDOWN_FILE), &doc::markdown(&options))?;
                output::replace_file(&dir.join(doc::HTML_FILE), &doc::html(&options))?;
                tracing::info!("wrote {} options into {}", options.len(), dir.display());
            }
        }
        Ok(Outcome::Done)
    }
}
