//! One module per subcommand: each has `Args` (clap) and `run(args)`.

pub mod approve;
pub mod check;
pub mod check_identity;
pub mod check_scope;
pub mod expr;
pub mod logs;
pub mod preview;
pub mod profiles;
pub mod provision;
pub mod restart;
pub mod run;
pub mod status;
pub mod sync;
pub mod undo;
