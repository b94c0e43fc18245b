//! berth: typed Nickel stack modules in, deployment artifacts out.
//!
//! The pipeline, one module per stage:
//! - [`project`]: find stacks (`modules/stacks/*.ncl`) and profiles (`profiles/*.ncl`) under a root,
//!   falling back to the [`library`] embedded in berth for schemas, service modules and profiles;
//! - [`eval`]: evaluate a stack merged with a profile through embedded Nickel → JSON + positions;
//! - [`model`]: deserialize into typed [`model::Stack`], then [`model::validate`] what contracts cannot see;
//! - [`render`]: pure functions from the model to artifacts, one file per target;
//! - [`output`]: write artifacts atomically, compare them with `golden/`;
//! - [`cache`]: keep each stack × profile result under a digest of everything it read;
//! - [`compile`]: drive the stages for stacks × profiles in parallel;
//! - [`apply`]: converge a Docker engine to a compiled stack (plan, apply, rollback, down);
//! - [`cli`]: the thin command line over all of it.
//!
//! Errors of every stage are [`Error`], located in the user's files; [`error`] holds the
//! located types and sits at the bottom of the import graph.

pub mod apply;
pub mod cache;
pub mod cli;
pub mod compile;
pub mod doc;
pub mod env_file;
pub mod error;
pub mod eval;
pub mod explain;
pub mod import;
pub mod init;
pub mod library;
pub mod model;
pub mod output;
pub mod project;
pub mod render;

/// Everything that makes berth stop with exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Load(#[from] error::LoadError),
    #[error(transparent)]
    Eval(#[from] error::EvalError),
    #[error(transparent)]
    Model(#[from] error::ModelError),
    #[error(transparent)]
    Render(#[from] render::RenderError),
    #[error(transparent)]
    Strict(#[from] error::StrictError),
    #[error(transparent)]
    Output(#[from] error::OutputError),
    #[error(transparent)]
    Apply(#[from] apply::ApplyError),
    #[error(transparent)]
    Import(#[from] import::ImportFailure),
    #[error(transparent)]
    Init(#[from] init::InitError),
    #[error(transparent)]
    Explain(#[from] explain::ExplainError),
}

impl Error {
    /// 2 for bad input or a failure to read or write; 1 for a result the input was fine
    /// for: a deploy that failed and was rolled back, an import that would lose keys.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Import(import::ImportFailure::Lossy { .. })
            | Error::Apply(apply::ApplyError::Failed { .. }) => 1,
            // As a shell reports a command ended by SIGINT.
            Error::Apply(apply::ApplyError::Interrupted { .. }) => 130,
            _ => 2,
        }
    }
}
