//! Integration tests of the exo-writeback binary, over one harness (`harness.rs`).

mod check;
mod check_exo;
mod engine;
mod expr;
mod faults;
mod harness;
mod hostile;
mod rights;
mod writers;
