//! `exo-writeback run`: the agent — an initial cycle (when needed), then a delta cycle every
//! `sync.interval`, and a full reconcile every `sync.reconcile_interval`. Stops cleanly on
//! SIGTERM or Ctrl-C (the current object is finished; the watermark never passes unfinished
//! work).

use std::process::ExitCode;
use std::sync::atomic::Ordering;

use exo_writeback_core::provisioning::JobState;
use exo_writeback_engine::{CycleMode, EngineError};
use exo_writeback_store_sqlite::prelude::*;

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
    // The agent keeps trying while the job is quarantined (cannot bind, DC unreachable):
    // it waits for each next retry instead of exiting.
    let (mut engine, _cycle_lock) = loop {
        match adapters::agent_engine(&config).await {
            Ok(x) => break x,
            Err(e) => {
                let store = adapters::open_store(&config)?;
                let JobState::Quarantine { next_retry, .. } = store.job_state()? else {
                    return Err(e);
                };
                drop(store);
                tracing::error!(error = %format!("{e:#}"), %next_retry, "the agent cannot start a cycle; waiting for the quarantine's next retry");
                if sleep_until(next_retry, None).await {
                    println!("stopped");
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    };
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
            Err(EngineError::Quarantined { reason, next_retry }) => {
                tracing::warn!(reason, %next_retry, "the job is in quarantine; waiting for the next retry");
            }
            Err(e) => tracing::error!(error = %e, "cycle failed; retrying at the next interval"),
        }
        adapters::purge_old_logs(&mut engine.store, config.sync.log_retention_days);
        // Sleep until the next cycle (or the quarantine's next retry, when later), waking
        // early to stop.
        let mut wait = interval;
        if let Ok(JobState::Quarantine { next_retry, .. }) = engine.store.job_state() {
            let until = jiff::Timestamp::now().duration_until(next_retry);
            if let Ok(until) = std::time::Duration::try_from(until) {
                wait = wait.max(until);
            }
        }
        let deadline = tokio::time::Instant::now() + wait;
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

/// Sleep until `at`, waking early when `cancel` is set or on SIGTERM/Ctrl-C (before an engine
/// exists). Returns true when asked to stop.
async fn sleep_until(at: jiff::Timestamp, cancel: Option<&std::sync::atomic::AtomicBool>) -> bool {
    let wait = std::time::Duration::try_from(jiff::Timestamp::now().duration_until(at))
        .unwrap_or_default();
    let deadline = tokio::time::Instant::now() + wait;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    while tokio::time::Instant::now() < deadline {
        if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
            return true;
        }
        let step = tokio::time::sleep(std::time::Duration::from_millis(200));
        tokio::select! {
            _ = step => {}
            _ = tokio::signal::ctrl_c() => return true,
            Some(_) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => return true,
        }
    }
    false
}
