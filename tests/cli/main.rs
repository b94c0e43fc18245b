//! berth's integration tests: the real binary on real project trees, its artifacts
//! checked by the real compose implementation.

mod support;

mod bad_input;
mod build;
mod check;
mod secrets;
mod validators;
