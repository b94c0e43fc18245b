//! `berth import`: an existing Compose file becomes a berth stack module.

pub mod yaml;
pub mod interpolation;
pub mod nickel;
