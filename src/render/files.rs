//! Writes the files services mount whose text comes from the model (`files`, resolved by
//! `model::files`) at `files/<service>/<path in the container>`, where the service's
//! read-only bind mount finds them. Pure; the text as the module or template gave it.

use std::path::PathBuf;

use super::Artifact;
use crate::model::{Stack, files};

pub use files::DIR;

/// One artifact per generated file of every service.
pub fn files(stack: &Stack) -> Vec<Artifact> {
    stack
        .services
        .iter()
        .flat_map(|(name, service)| {
            service.files.iter().map(move |(target, file)| Artifact {
                path: PathBuf::from(files::output_path(name, target)),
                // Resolved before rendering; an unresolved file (a library user who skipped
                // `model::files::resolve`) is written empty rather than guessed.
                contents: file.content.clone().unwrap_or_default(),
            })
        })
        .collect()
}
