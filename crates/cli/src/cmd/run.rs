//! `exo-writeback run`: the agent — an initial cycle (when needed), then a delta cycle every
//! `sync.interval`, and a full reconcile every `sync.reconcile_interval` — with its HTTP
//! service beside it (`[api]`: the JSON API, `/metrics`, the console). Stops cleanly on
//! SIGTERM or Ctrl-C (the current object is finished; the watermark never passes unfinished
//! work); SIGHUP reloads a configuration checked whole. The service is the `api` crate's
//! daemon; this prints what it does.

use std::process::ExitCode;

use exo_writeback_agent::scheduler::Turn;

use crate::cmd::ConfigArg;
use crate::logging::init_logging;
use crate::out::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    exo_writeback_api::daemon::run(&args.config.config, print_turn, |engine| {
        crate::output::attach_progress(engine)
    })
    .await?;
    outln!("stopped");
    Ok(ExitCode::SUCCESS)
}

fn print_turn(turn: Turn<'_>) {
    match turn {
        Turn::Cycle(report) => crate::cmd::sync::print_report(report),
        Turn::Held(cycle) => {
            tracing::warn!(%cycle, "the job is held by the change threshold; waiting for `exo-writeback approve {cycle}` or `exo-writeback reject {cycle}`");
        }
        Turn::Paused(pause) => {
            tracing::warn!(
                by = %pause.by,
                since = %pause.since,
                reason = pause.reason.as_deref().unwrap_or(""),
                "the job is paused: no cycle runs until `exo-writeback resume`"
            );
        }
        Turn::Quarantined { reason, next_retry } => {
            tracing::warn!(reason, %next_retry, "the job is in quarantine; waiting for the next retry");
        }
        Turn::Failed(e) => {
            tracing::error!(error = %e, "cycle failed; retrying at the next interval");
        }
    }
}
