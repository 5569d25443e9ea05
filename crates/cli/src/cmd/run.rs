//! `exo-writeback run`: the agent — an initial cycle (when needed), then a delta cycle every
//! `sync.interval`, and a full reconcile every `sync.reconcile_interval`. Stops cleanly on
//! SIGTERM or Ctrl-C (the current object is finished; the watermark never passes unfinished
//! work).

use std::process::ExitCode;
use std::sync::atomic::Ordering;

use exo_writeback_engine::{CycleMode, EngineError};

use crate::adapters::{self, ConfigArg};
use crate::config::init_logging;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = adapters::load_config(&args.config.config)?;
    let (mut engine, _cycle_lock) = adapters::agent_engine(&config).await?;
    adapters::attach_progress(&mut engine);
    adapters::cancel_on_signals(&engine);
    let cancel = engine.cancel_flag();
    let interval = std::time::Duration::try_from(config.sync.interval)?;
    let reconcile = config.sync.reconcile_interval;
    let mut last_full: Option<jiff::Timestamp> = None;
    loop {
        let now = jiff::Timestamp::now();
        let full_due = last_full.is_some_and(|t| now.duration_since(t) >= reconcile);
        let mode = if full_due {
            CycleMode::Full
        } else {
            CycleMode::Auto
        };
        match engine.run_cycle(mode).await {
            Ok(report) => {
                if last_full.is_none() || full_due {
                    last_full = Some(now);
                }
                crate::cmd::sync::print_report(&report);
            }
            Err(EngineError::Held { cycle }) => {
                tracing::warn!(%cycle, "the job is held by the change threshold; waiting for `exo-writeback approve {cycle}`");
            }
            Err(e) => tracing::error!(error = %e, "cycle failed; retrying at the next interval"),
        }
        adapters::purge_old_logs(&mut engine.store, config.sync.log_retention_days);
        // Sleep until the next cycle, waking early to stop.
        let deadline = tokio::time::Instant::now() + interval;
        while tokio::time::Instant::now() < deadline {
            if cancel.load(Ordering::SeqCst) {
                println!("stopped");
                return Ok(ExitCode::SUCCESS);
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        if cancel.load(Ordering::SeqCst) {
            println!("stopped");
            return Ok(ExitCode::SUCCESS);
        }
    }
}
