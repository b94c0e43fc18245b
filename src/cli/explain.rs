//! `berth explain`: where a field of a built stack got its value, layer by layer.

use clap::{Args, ValueEnum};

use super::{CacheArgs, Outcome};
use crate::Error;
use crate::cache::Cache;
use crate::compile::on_eval_thread;
use crate::explain::{self, Context, ExplainError, Explanation, FieldPath};
use crate::model::Stack;
use crate::project::{ProfileRef, Project, StackRef};
use crate::{eval, render};

/// Show the final value of a field and every definition that took part in it.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  berth explain --stack ape --profile prod-lite services.api.replicas
  berth explain --stack ape --profile prod-lite services.api.restart services.api.logging
  berth explain --stack ape --profile dev services.api.environment.LOG_LEVEL --format json
  berth explain --stack ape --profile dev --all          every field of the built stack")]
pub struct Explain {
    /// The stack (a file in modules/stacks/).
    #[arg(long, value_name = "NAME")]
    stack: String,
    /// The profile (a file in profiles/).
    #[arg(long, value_name = "NAME", required_unless_present = "no_profile")]
    profile: Option<String>,
    /// Explain the stack built with no profile overlay.
    #[arg(long, conflicts_with = "profile")]
    no_profile: bool,
    /// Field paths: `services.api.replicas`, `services.api.ports[0]`, `services.api`.
    #[arg(value_name = "FIELD_PATH", required_unless_present = "all")]
    paths: Vec<String>,
    /// Every leaf field of the built stack (arrays count as leaves).
    #[arg(long, conflicts_with = "paths")]
    all: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    #[command(flatten)]
    cache: CacheArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

impl Explain {
    /// Evaluates the stack as `build` does (a broken stack fails the same way), then its
    /// layers apart, and explains each path. A cached build of the same inputs stands in
    /// for the first evaluation (it succeeded), as it does for `build`.
    pub fn run(self, project: &Project) -> Result<Outcome, Error> {
        let paths = self
            .paths
            .iter()
            .map(|path| FieldPath::parse(path).map_err(ExplainError::BadPath))
            .collect::<Result<Vec<_>, _>>()?;
        let stack = project
            .select_stacks(std::slice::from_ref(&self.stack))?
            .remove(0);
        let profile = match &self.profile {
            Some(name) => project
                .select_profiles(std::slice::from_ref(name))?
                .remove(0),
            None => ProfileRef::None,
        };
        let all = self.all;
        let cache = self.cache.open(project)?;
        let explanations = on_eval_thread(|| {
            let (layers, env_template) =
                match cached_env_template(project, &stack, &profile, cache.as_ref()) {
                    // A build of the same inputs succeeded: the stack evaluates, and
                    // `finalize` is evaluated with the layers, in one program.
                    Some(env_template) => {
                        (eval::layers(project, &stack, &profile, None)?, env_template)
                    }
                    None => {
                        let evaluated = eval::evaluate(project, &stack, &profile)?;
                        let model = Stack::from_evaluated(&evaluated)?;
                        let env_template = render::env::env_template(&model).contents;
                        let layers =
                            eval::layers(project, &stack, &profile, Some(&evaluated.value))?;
                        (layers, env_template)
                    }
                };
            let paths = if all {
                explain::leaf_paths(&layers)
            } else {
                paths
            };
            // The schema is read only for a field the built stack lacks (its documented
            // default, or the field meant): it costs as much as the layers.
            let schema = if paths.iter().all(|path| explain::is_set(&layers, path)) {
                Vec::new()
            } else {
                eval::schema_records(project)?
            };
            let ctx = Context {
                stack: &stack.name,
                profile: profile.name(),
                schema: &schema,
                env_template: Some(&env_template),
            };
            let paths = if all {
                explain::leaf_paths(&layers)
            } else {
                paths
            };
            if paths.is_empty() {
                return Err(ExplainError::NoPath.into());
            }
            paths
                .iter()
                .map(|path| {
                    explain::explain(&layers, path, &ctx).map_err(|unknown| {
                        Error::from(ExplainError::Unknown {
                            stack: stack.name.clone(),
                            profile: profile.name().to_string(),
                            unknown,
                        })
                    })
                })
                .collect::<Result<Vec<Explanation>, Error>>()
        })?;
        self.print(&explanations);
        Ok(Outcome::Done)
    }

    fn print(&self, explanations: &[Explanation]) {
        match self.format {
            Format::Json => {
                let json = if explanations.len() == 1 && !self.all {
                    serde_json::to_string_pretty(&explanations[0])
                } else {
                    serde_json::to_string_pretty(explanations)
                };
                say!("{}", json.unwrap_or_default());
            }
            Format::Text => {
                let texts: Vec<String> = explanations.iter().map(explain::text).collect();
                say_raw!("{}", texts.join("\n"));
            }
        }
    }
}

/// The `.env.template` of a cached build of the same stack × profile and inputs (see
/// `cache`), when there is one.
fn cached_env_template(
    project: &Project,
    stack: &StackRef,
    profile: &ProfileRef,
    cache: Option<&Cache>,
) -> Option<String> {
    let crate::cache::Lookup::Hit(entry) = cache?.lookup(project, stack, profile) else {
        return None;
    };
    tracing::debug!(
        "{}/{}: a cached build stands in for evaluating the stack apart",
        stack.name,
        profile.name()
    );
    entry
        .artifacts
        .into_iter()
        .find(|artifact| artifact.path == std::path::Path::new(render::env::FILE_NAME))
        .map(|artifact| artifact.contents)
}
