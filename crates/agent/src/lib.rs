//! The exo-writeback agent as a library: its configuration file, and (in the following
//! modules) what a daemon, the CLI and tests compose alike.

pub mod ad;
pub mod compose;
pub mod config;
pub mod exo;
