//! Integration tests of the exo-writeback binary, over one harness (`harness.rs`).

mod admin;
mod check;
mod check_exo;
mod check_identity;
mod check_scope;
mod console;
mod drift;
mod engine;
mod expr;
mod failover;
mod faults;
mod files;
mod harness;
mod hostile;
mod manners;
mod packaging;
mod page_errors;
mod quarantine;
mod read_rights;
mod recipient_type;
mod rights;
mod service;
mod service_config;
mod shutdown;
mod spoofing;
mod writers;
