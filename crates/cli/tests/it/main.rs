//! Integration tests of the exo-writeback binary: one module per subcommand.

mod check;
mod check_exo;
mod engine;
mod expr;
mod faults;
mod hostile;
mod rights;
mod writers;
