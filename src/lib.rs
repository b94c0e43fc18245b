//! berth: typed Nickel stack modules in, deployment artifacts out.
//!
//! The pipeline, one module per stage:
//! - [`project`]: find stacks (`modules/stacks/*.ncl`) and profiles (`profiles/*.ncl`) under a root,
//!   falling back to the [`library`] embedded in berth for schemas, service modules and profiles;
//! - [`eval`]: evaluate a stack merged with a profile through embedded Nickel → JSON + positions;
//! - [`model`]: deserialize into typed [`model::Stack`], then [`model::validate`] what contracts cannot see;
//! - [`render`]: pure functions from the model to artifacts, one file per target;
//! - [`output`]: write artifacts atomically, compare them with `golden/`;
//! - [`compile`]: drive the stages for stacks × profiles in parallel;
//! - [`apply`]: converge a Docker engine to a compiled stack (plan, apply, rollback, down);
//! - [`cli`]: the thin command line over all of it.
//!
//! Errors of every stage are [`error::Error`], located in the user's files.

pub mod apply;
pub mod cli;
pub mod compile;
pub mod env_file;
pub mod error;
pub mod eval;
pub mod import;
pub mod init;
pub mod library;
pub mod model;
pub mod output;
pub mod project;
pub mod render;

pub use error::Error;
