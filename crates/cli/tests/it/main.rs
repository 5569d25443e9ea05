//! Integration tests of the exo-writeback binary: one module per subcommand.

mod check;
mod expr;
