//! Integration tests of the exo-writeback binary, over one harness (`harness.rs`).

mod check;
mod check_exo;
mod check_identity;
mod check_scope;
mod engine;
mod expr;
mod faults;
mod files;
mod harness;
mod hostile;
mod manners;
mod page_errors;
mod rights;
mod writers;
