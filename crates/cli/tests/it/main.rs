//! Integration tests of the exo-writeback binary: one module per subcommand.

mod check;
mod check_exo;
mod check_identity;
mod check_scope;
mod engine;
mod expr;
mod faults;
mod hostile;
mod manners;
mod page_errors;
mod rights;
