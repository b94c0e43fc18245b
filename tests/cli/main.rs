//! berth's integration tests: the real binary on real project trees, its artifacts
//! checked by the real compose implementation.
#![allow(
    clippy::panic,
    reason = "a test and its helpers report failure by panicking"
)]

mod support;

mod apply;
mod backends;
mod bad_input;
mod build;
mod check;
mod fidelity;
mod hostile;
mod import;
mod kubernetes;
mod library;
mod quadlet;
mod secrets;
mod validators;
