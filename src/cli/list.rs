use clap::Args;

use super::Outcome;
use crate::Error;
use crate::compile::{compile_one, on_eval_thread};
use crate::model::Stack;
use crate::project::{ModuleEntry, Origin, ProfileRef, Project, StackRef};

/// List stacks, profiles, and the services of each stack (as built with no profile).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  berth list\n  berth list --modules")]
pub struct List {
    /// Instead: every importable module and profile, and whether it comes from berth's
    /// library or from this project (which wins over the library).
    #[arg(long)]
    modules: bool,
}

impl List {
    /// Lists every stack; a stack that does not evaluate is listed with its error's first
    /// line, and the command then fails with that error (exit 2).
    pub fn run(self, project: &Project) -> Result<Outcome, Error> {
        if self.modules {
            println!("modules (import name, from):");
            print_entries(project, &project.modules()?);
            println!("profiles:");
            print_entries(project, &project.profile_entries()?);
            return Ok(Outcome::Done);
        }
        let profiles = project.profiles()?;
        let names: Vec<&str> = profiles.iter().map(ProfileRef::name).collect();
        say!("profiles: {}", names.join(", "));
        say!("stacks:");
        let mut first_error = None;
        for stack in project.stacks()? {
            match model_without_profile(project, &stack) {
                Ok(model) => print_stack(&model),
                Err(error) => {
                    let first_line = error
                        .to_string()
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    say!("  {}  (does not build: {first_line})", stack.name);
                    first_error.get_or_insert(error);
                }
            }
        }
        first_error.map_or(Ok(Outcome::Done), Err)
    }
}

/// The stack as built with no profile.
fn model_without_profile(project: &Project, stack: &StackRef) -> Result<Stack, Error> {
    on_eval_thread(|| compile_one(project, stack, &ProfileRef::None).map(|(model, _)| model))
}

fn print_stack(model: &Stack) {
    let description = model.description.as_deref().unwrap_or("");
    say!("  {}  {description}", model.name);
    for (name, service) in &model.services {
        let what = service
            .image
            .as_ref()
            .map_or_else(|| "(built locally)".to_string(), ToString::to_string);
        say!("    {name:<20} {what}");
    }
}

/// One line per module or profile: its name and where it comes from.
fn print_entries(project: &Project, entries: &[ModuleEntry]) {
    for ModuleEntry { name, origin, path } in entries {
        let from = match origin {
            Origin::Library => "berth".to_string(),
            Origin::Project => format!("project {}", project.relative(path).display()),
            Origin::ProjectShadowingLibrary => {
                format!(
                    "project {} (replaces berth's)",
                    project.relative(path).display()
                )
            }
        };
        println!("  {name:<29} {from}");
    }
}
