//! One module per subcommand: each has `Args` (clap) and `run(args)`: it parses, asks the
//! agent library, and prints.

use std::path::PathBuf;

pub mod approve;
pub mod check;
pub mod cluster;
pub mod expr;
pub mod logs;
pub mod manual;
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

/// The agent running on `config`'s state, if any. A command that writes asks it, so the
/// agent stays the single writer of its state; without one it works on the state directly.
pub fn running_agent(
    config: &exo_writeback_agent::config::Config,
) -> anyhow::Result<Option<exo_writeback_api::client::AgentClient>> {
    let agent = exo_writeback_api::client::find(config)?;
    if let Some(a) = &agent {
        eprintln!("asking the running agent (pid {}, {})", a.pid(), a.url());
    }
    Ok(agent)
}

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
