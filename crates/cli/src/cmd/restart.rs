//! `exo-writeback restart --scope full|watermark|escrow|quarantine`.

use std::process::ExitCode;

use exo_writeback_core::provisioning::RestartScope;

use exo_writeback_agent::compose;
use exo_writeback_agent::lock::StateLock;

use crate::cmd::ConfigArg;
use crate::logging::init_logging;
use crate::out::outln;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Forget watermark, joins, escrow, quarantine and held changes: the next cycle is initial.
    Full,
    /// Forget the watermark: the next cycle is initial.
    Watermark,
    /// Empty the escrow.
    Escrow,
    /// Leave quarantine now.
    Quarantine,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    #[arg(long, value_enum, default_value = "full")]
    pub scope: Scope,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = compose::load_config(&args.config.config)?;
    let _lock = StateLock::acquire(&config.sync.state_dir, "exo-writeback restart").await?;
    let mut store = compose::open_store(&config)?;
    let scope = match args.scope {
        Scope::Full => RestartScope::Full,
        Scope::Watermark => RestartScope::Watermark,
        Scope::Escrow => RestartScope::Escrow,
        Scope::Quarantine => RestartScope::Quarantine,
    };
    use exo_writeback_store_sqlite::prelude::*;
    let r = store.restart(scope, jiff::Timestamp::now())?;
    outln!(
        "restarted ({:?}): watermark cleared: {}, joins removed: {}, escrow removed: {}, held cycles discarded: {}; job state now {}",
        args.scope,
        r.watermark_cleared,
        r.joins_removed,
        r.escrow_removed,
        r.staged_cycles_discarded,
        r.job_state.name()
    );
    Ok(ExitCode::SUCCESS)
}
