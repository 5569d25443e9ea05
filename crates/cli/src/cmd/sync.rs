//! `exo-writeback sync [--full]`: one cycle — initial when there is no watermark, else delta;
//! `--full` forces a full reconcile.
//!
//! Exit status: 0 when every object was written, in sync or skipped; 1 when some object
//! failed, the cycle was held by the change threshold or stopped by a signal; 2 when no cycle
//! could run (configuration, connection, a held job, another cycle runner).

use std::process::ExitCode;

use exo_writeback_core::provisioning::CycleStatus;
use exo_writeback_engine::{CycleMode, CycleReport};
use serde_json::json;

use exo_writeback_agent::compose;
use exo_writeback_agent::lock::{CycleRunnerLock, StateLock};
use exo_writeback_agent::scheduler::{interrupt_stale_cycles, purge_old_logs};
use exo_writeback_agent::signals::stop_on_signals;

use crate::cmd::ConfigArg;
use crate::logging::init_logging;
use crate::out::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Run a full reconcile (every mailbox; corrects on-premises drift).
    #[arg(long)]
    pub full: bool,
    /// Print the cycle report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn report_json(r: &CycleReport) -> serde_json::Value {
    json!({
        "cycle": r.cycle.0,
        "kind": r.kind.as_str(),
        "status": status_text(&r.status),
        "counts": r.counts,
        "removing": r.removing,
        "failure_causes": r.failure_causes,
        "watermark": r.watermark.as_ref().map(|w| w.changed_since.to_string()),
        "unreadable_attributes": r.unreadable_attributes.iter().map(|u| json!({
            "attribute": u.attribute,
            "message": u.message,
        })).collect::<Vec<_>>(),
    })
}

pub fn status_text(s: &CycleStatus) -> String {
    match s {
        CycleStatus::Running => "Running".into(),
        CycleStatus::Completed => "Completed".into(),
        CycleStatus::ThresholdExceeded => "ThresholdExceeded".into(),
        CycleStatus::Quarantined { reason } => format!("Quarantined: {reason}"),
        CycleStatus::Failed { reason } => format!("Failed: {reason}"),
        CycleStatus::Interrupted => "Interrupted".into(),
    }
}

pub fn print_report(r: &CycleReport) {
    let c = &r.counts;
    outln!(
        "cycle {} ({}): {} — imported {}, in scope {}, written {}, unchanged {}, skipped {}, failed {}",
        r.cycle,
        r.kind.as_str(),
        status_text(&r.status),
        c.imported,
        c.in_scope,
        c.written,
        c.unchanged,
        c.skipped,
        c.failed
    );
    if !r.failure_causes.is_empty() {
        outln!(
            "failures: {} — see `exo-writeback logs --status failure --cycle {}`",
            r.failure_causes
                .iter()
                .map(|(code, n)| format!("{code} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            r.cycle
        );
    }
    if r.status == CycleStatus::ThresholdExceeded {
        outln!(
            "held: {} objects would lose values; nothing was written. Review with `exo-writeback preview`, apply with `exo-writeback approve {}`.",
            r.removing,
            r.cycle
        );
    }
    if let Some(w) = &r.watermark {
        outln!("watermark: {}", w.changed_since);
    }
    for u in &r.unreadable_attributes {
        outln!("not planned: {}", u.message);
    }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = compose::load_config(&args.config.config)?;
    let dir = &config.sync.state_dir;
    let _runner = CycleRunnerLock::acquire(dir)?;
    let lock = StateLock::acquire(dir, "exo-writeback sync").await?;
    let mut engine = compose::cycle_engine(&config, &lock).await?;
    interrupt_stale_cycles(&mut engine, jiff::Timestamp::now())?;
    if !args.json {
        crate::output::attach_progress(&mut engine);
    }
    engine.set_cancel_flag(stop_on_signals());
    let mode = if args.full {
        CycleMode::Full
    } else {
        CycleMode::Auto
    };
    let report = engine.run_cycle(mode).await?;
    purge_old_logs(
        &mut engine.store,
        config.sync.log_retention_days,
        jiff::Timestamp::now(),
    );
    drop(lock);
    if args.json {
        outln!("{}", report_json(&report));
    } else {
        print_report(&report);
    }
    Ok(match report.status {
        CycleStatus::Completed if report.counts.failed == 0 => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}
