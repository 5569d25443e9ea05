//! One module per subcommand: each has `Args` (clap) and `run(args)`.

pub mod check;
pub mod expr;
