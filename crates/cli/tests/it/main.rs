//! Integration tests of the exo-writeback binary, over one harness (`harness.rs`).

mod admin;
mod check;
mod check_exo;
mod check_identity;
mod check_scope;
mod drift;
mod engine;
mod expr;
mod failover;
mod faults;
mod harness;
mod hostile;
mod manners;
mod page_errors;
mod quarantine;
mod read_rights;
mod recipient_type;
mod rights;
mod spoofing;
mod writers;
