use clap::Args;

use super::Outcome;
use crate::compile::{compile_one, on_eval_thread};
use crate::error::Error;
use crate::model::Stack;
use crate::project::{ProfileRef, Project, StackRef};

/// List stacks, profiles, and the services of each stack (as built with no profile).
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  berth list")]
pub struct List {}

impl List {
    /// Lists every stack; a stack that does not evaluate is listed with its error's first
    /// line, and the command then fails with that error (exit 2).
    pub fn run(self, project: &Project) -> Result<Outcome, Error> {
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
        let what = service.image.as_deref().unwrap_or("(built locally)");
        say!("    {name:<20} {what}");
    }
}
