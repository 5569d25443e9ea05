//! `exo-writeback restart --scope full|watermark|escrow|quarantine`: forget part of the state.
//! The scope is required: a restart without one used to forget everything.

use std::process::ExitCode;

use exo_writeback_core::provisioning::RestartScope;

use exo_writeback_agent::compose;
use exo_writeback_agent::state::WriteLock;

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

impl Scope {
    fn scope(self) -> RestartScope {
        match self {
            Scope::Full => RestartScope::Full,
            Scope::Watermark => RestartScope::Watermark,
            Scope::Escrow => RestartScope::Escrow,
            Scope::Quarantine => RestartScope::Quarantine,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    /// What to forget (required).
    #[arg(long, value_enum)]
    pub scope: Option<Scope>,
}

/// The error of a restart without `--scope`: the scopes, each with what it forgets.
fn scopes_needed() -> anyhow::Error {
    let list = RestartScope::ALL
        .iter()
        .map(|s| format!("  --scope {:<11} {}", s.as_str(), s.describe()))
        .collect::<Vec<_>>()
        .join("\n");
    anyhow::anyhow!("restart needs --scope, one of:\n{list}\nnothing was changed")
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = compose::load_config(&args.config.config)?;
    let scope = args.scope.ok_or_else(scopes_needed)?.scope();
    let r = if let Some(agent) = crate::cmd::running_agent(&config)? {
        agent.restart(scope.into()).await?
    } else {
        let holder = format!("exo-writeback restart --scope {}", scope.as_str());
        let lock = WriteLock::acquire(&config, &holder).await?;
        let mut store = lock.store()?;
        use exo_writeback_store_sqlite::prelude::*;
        store.restart(scope, jiff::Timestamp::now())?
    };
    outln!(
        "restarted (scope {}): watermark cleared: {}, joins removed: {}, escrow removed: {}, held cycles discarded: {}; job state now {}",
        scope.as_str(),
        if r.watermark_cleared { "yes" } else { "no" },
        r.joins_removed,
        r.escrow_removed,
        r.staged_cycles_discarded,
        r.job_state.name()
    );
    Ok(ExitCode::SUCCESS)
}
