use clap::Args;

use super::Outcome;
use crate::compile::compile_one;
use crate::error::Error;
use crate::eval::EVAL_STACK_SIZE;
use crate::project::{ProfileRef, Project};

/// List stacks, profiles, and the services of each stack (as built with no profile).
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  berth list")]
pub struct List {}

impl List {
    pub fn run(self, project: &Project) -> Result<Outcome, Error> {
        let profiles = project.profiles()?;
        let names: Vec<&str> = profiles.iter().map(ProfileRef::name).collect();
        println!("profiles: {}", names.join(", "));
        println!("stacks:");
        for stack in project.stacks()? {
            let model = std::thread::scope(|scope| {
                std::thread::Builder::new()
                    .stack_size(EVAL_STACK_SIZE)
                    .spawn_scoped(scope, || {
                        compile_one(project, &stack, &ProfileRef::None).map(|(model, _)| model)
                    })
                    .map(|handle| handle.join())
            });
            match model {
                Ok(Ok(model)) => {
                    let model = model?;
                    let description = model.description.as_deref().unwrap_or("");
                    println!("  {}  {description}", model.name);
                    for (name, service) in &model.services {
                        let what = service
                            .image
                            .as_deref()
                            .map_or_else(|| "(built locally)".to_string(), str::to_string);
                        println!("    {name:<20} {what}");
                    }
                }
                _ => println!("  {}  (could not be evaluated)", stack.name),
            }
        }
        Ok(Outcome::Done)
    }
}
