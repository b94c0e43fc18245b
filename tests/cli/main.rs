//! berth's integration tests: the real binary on real project trees, its artifacts
//! checked by the real compose implementation.
#![allow(
    clippy::panic,
    reason = "a test and its helpers report failure by panicking"
)]

mod support;

mod alerting;
mod apply;
mod architecture;
mod backends;
mod bad_input;
mod build;
mod cache;
mod check;
mod crashes;
mod dashboards;
mod deployable;
mod doc;
mod explain;
mod fidelity;
mod file_secrets;
mod files;
mod fuzz;
mod hostile;
mod import;
mod import_input;
mod kubernetes;
mod library;
mod out_folder;
mod quadlet;
mod rebuild;
mod remote;
mod runtime;
mod secrets;
mod validators;
