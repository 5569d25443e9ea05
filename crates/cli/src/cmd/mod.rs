//! One module per subcommand: each has `Args` (clap) and `run(args)`: it parses, asks the
//! agent library, and prints.

use std::path::PathBuf;

pub mod approve;
pub mod check;
pub mod cluster;
pub mod expr;
pub mod logs;
pub mod pause;
pub mod preview;
pub mod profiles;
pub mod provision;
pub mod reject;
pub mod restart;
pub mod resume;
pub mod run;
pub mod state;
pub mod status;
pub mod sync;
pub mod undo;
pub mod unpin;

/// `--config FILE`, shared by every writeback command.
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigArg {
    /// The configuration file.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/etc/exo-writeback/exo-writeback.toml"
    )]
    pub config: PathBuf,
}
