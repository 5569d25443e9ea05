//! `exo-writeback run`: the agent — an initial cycle (when needed), then a delta cycle every
//! `sync.interval`, and a full reconcile every `sync.reconcile_interval`. Stops cleanly on
//! SIGTERM or Ctrl-C (the current object is finished; the watermark never passes unfinished
//! work). The loop is the agent library's (`scheduler`); this prints what it does.

use std::process::ExitCode;
use std::sync::Arc;

use exo_writeback_agent::compose;
use exo_writeback_agent::lock::CycleRunnerLock;
use exo_writeback_agent::scheduler::{Schedule, Scheduler, SystemClock, Turn};
use exo_writeback_agent::signals::stop_on_signals;
use exo_writeback_agent::state::State;

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
    let config = compose::load_config(&args.config.config)?;
    let stop = stop_on_signals();
    let _runner = CycleRunnerLock::acquire_as(&config.sync.state_dir, "exo-writeback run")?;
    let state = Arc::new(State::open(&config, "exo-writeback run")?);
    // On a shared state a standby waits here until it leads. The agent keeps trying while the
    // job is quarantined (cannot bind, DC unreachable): it waits for each next retry.
    let Some(mut engine) = compose::start_agent(&config, &state, &SystemClock, &stop).await? else {
        state.step_down().await;
        outln!("stopped");
        return Ok(ExitCode::SUCCESS);
    };
    engine.set_cancel_flag(stop.clone());
    crate::output::attach_progress(&mut engine);
    let scheduler = Scheduler {
        clock: SystemClock,
        schedule: Schedule::of(&config.sync),
        state: state.clone(),
        stop,
    };
    let ran = scheduler
        .run(&mut engine, |turn| match turn {
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
        })
        .await;
    state.step_down().await;
    ran?;
    outln!("stopped");
    Ok(ExitCode::SUCCESS)
}
