//! `exo-writeback status [--json]`: job state, the last cycle and its counts, the watermark,
//! escrow size, security events of the recent cycles and the next run.

use std::process::ExitCode;

use exo_writeback_core::provisioning::JobState;
use exo_writeback_store_sqlite::prelude::*;
use serde_json::json;

use exo_writeback_agent::compose;

use crate::cmd::ConfigArg;
use crate::logging::init_logging;
use crate::out::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print the status (job state, last cycle, watermark, escrow, opted-in targets) as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = compose::load_config(&args.config.config)?;
    let store = compose::open_store(&config)?;
    let state = store.job_state()?;
    let cycles = store.recent_cycles(20)?;
    let last = cycles.first();
    let watermark = store.watermark()?;
    let escrow = store.escrow_count()?;
    let pending = store.pending_staged_cycles()?;
    let extra_targets = config.writeback_plan()?.extra_targets;
    // Security events (SpoofedMatchKey) of the recent cycles, and the latest cycle with one.
    let security_count: u64 = cycles.iter().map(|c| c.counts.security_events).sum();
    let security_latest = cycles
        .iter()
        .find(|c| c.counts.security_events > 0)
        .map(|c| c.id);
    let next_run = match (&state, last.and_then(|c| c.finished_at)) {
        (JobState::ThresholdExceeded { cycle }, _) => {
            format!("held until `exo-writeback approve {cycle}`")
        }
        (JobState::Paused, _) => "paused".into(),
        (JobState::Quarantine { next_retry, .. }, _) => next_retry.to_string(),
        (_, Some(finished)) => finished
            .checked_add(config.sync.interval)
            .map(|t| format!("{t} (with `exo-writeback run`)"))
            .unwrap_or_default(),
        (_, None) => "at the next `exo-writeback sync` or `run` (initial cycle)".into(),
    };
    let state_text = match &state {
        JobState::ThresholdExceeded { cycle } => format!("ThresholdExceeded (cycle {cycle})"),
        JobState::Quarantine { reason, .. } => format!("Quarantine: {reason}"),
        s => s.name().to_string(),
    };
    if args.json {
        let v = json!({
            "job_state": state.name(),
            "held_cycle": match &state { JobState::ThresholdExceeded { cycle } => Some(cycle.0), _ => None },
            "last_cycle": last.map(|c| json!({
                "cycle": c.id.0,
                "kind": c.kind.as_str(),
                "status": crate::cmd::sync::status_text(&c.status),
                "started_at": c.started_at.to_string(),
                "finished_at": c.finished_at.map(|t| t.to_string()),
                "counts": c.counts,
            })),
            "watermark": watermark.as_ref().map(|w| w.changed_since.to_string()),
            "escrow": escrow,
            "pending_approval": pending.iter().map(|c| c.0).collect::<Vec<_>>(),
            "next_run": next_run,
            "extra_targets": extra_targets,
            "security_events": {
                "count": security_count,
                "cycles": cycles.len(),
                "latest_cycle": security_latest.map(|c| c.0),
                "code": "SpoofedMatchKey",
            },
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    outln!("job state:  {state_text}");
    match last {
        Some(c) => {
            let n = &c.counts;
            outln!(
                "last cycle: {} ({}) {} — started {}",
                c.id,
                c.kind.as_str(),
                crate::cmd::sync::status_text(&c.status),
                c.started_at
            );
            outln!(
                "            imported {}, in scope {}, written {}, unchanged {}, skipped {}, failed {}{}",
                n.imported,
                n.in_scope,
                n.written,
                n.unchanged,
                n.skipped,
                n.failed,
                match n.security_events {
                    0 => String::new(),
                    k => format!(", security events {k}"),
                }
            );
        }
        None => outln!("last cycle: none"),
    }
    outln!(
        "watermark:  {}",
        watermark
            .map(|w| w.changed_since.to_string())
            .unwrap_or_else(|| "none (the next cycle is initial)".into())
    );
    outln!("escrow:     {escrow} object(s) waiting for retry");
    if let Some(latest) = security_latest {
        outln!(
            "security:   {security_count} security event(s) (SpoofedMatchKey: a user-writable match \
             key pointing at another mailbox's object) in the last {} cycles, latest in cycle \
             {latest}: `exo-writeback logs --cycle {} --status warning`",
            cycles.len(),
            latest.0
        );
    }
    outln!("next run:   {next_run}");
    if let Some(line) = crate::cmd::check::extra_targets_line(&extra_targets) {
        outln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
