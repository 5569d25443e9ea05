//! `exo-writeback sync [--full]`: one cycle — initial when there is no watermark, else delta;
//! `--full` forces a full reconcile.
//!
//! Exit status: 0 when every object was written, in sync, pinned or skipped; 1 when some
//! object failed, the cycle was held by the change threshold, found nothing in scope or was
//! stopped by a signal; 2 when no cycle could run (configuration, connection, a held or paused
//! job, another cycle runner).

use std::process::ExitCode;

use std::collections::BTreeMap;

use exo_writeback_core::outcome::OutcomeCode;
use exo_writeback_core::provisioning::{CycleCounts, CycleStatus};
use exo_writeback_engine::{CycleMode, CycleReport, describe_pins};
use serde_json::json;

use exo_writeback_agent::compose;
use exo_writeback_agent::lock::CycleRunnerLock;
use exo_writeback_agent::scheduler::{interrupt_stale_cycles, purge_old_logs};
use exo_writeback_agent::signals::stop_on_signals;
use exo_writeback_agent::state::WriteLock;
use exo_writeback_store_sqlite::prelude::*;

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
        "skipped_causes": r.skipped_causes,
        "pins_set": r.pins_set,
        "pins_released": r.pins_released,
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
        CycleStatus::NothingInScope { reason } => format!("NothingInScope: {reason}"),
    }
}

/// `imported 40 (1 changed, 39 re-read in the overlap window); in scope 25: written 1,
/// unchanged 24; skipped 15 (NotInScope 15)` — parts that are zero left out, but for
/// written, unchanged and failed.
pub fn counts_text(c: &CycleCounts, skipped_causes: &BTreeMap<OutcomeCode, u64>) -> String {
    let mut imported = format!("imported {}", c.imported);
    let mut origin = Vec::new();
    if c.reread > 0 || c.retried > 0 {
        origin.push(format!("{} changed", c.changed()));
    }
    if c.reread > 0 {
        origin.push(format!("{} re-read in the overlap window", c.reread));
    }
    if c.retried > 0 {
        origin.push(format!("{} retried from escrow", c.retried));
    }
    if !origin.is_empty() {
        imported.push_str(&format!(" ({})", origin.join(", ")));
    }
    let mut in_scope = vec![
        format!("written {}", c.written),
        format!("unchanged {}", c.unchanged),
    ];
    for (name, n) in [
        ("held", c.held),
        ("pinned", c.pinned),
        ("left as edited on-premises", c.drift_reported),
    ] {
        if n > 0 {
            in_scope.push(format!("{name} {n}"));
        }
    }
    in_scope.push(format!("failed {}", c.failed));
    if c.pending > 0 {
        in_scope.push(format!("pending {}", c.pending));
    }
    let mut skipped = format!("skipped {}", c.skipped);
    if !skipped_causes.is_empty() {
        skipped.push_str(&format!(
            " ({})",
            skipped_causes
                .iter()
                .map(|(code, n)| format!("{code} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let drift = match (c.drift_detected, c.drift_corrected) {
        (0, _) => String::new(),
        (found, 0) => format!("; drift: {found} object(s) edited on-premises (DriftDetected)"),
        (found, corrected) => format!(
            "; drift: {found} object(s) edited on-premises, {corrected} corrected (DriftCorrected)"
        ),
    };
    format!(
        "{imported}; in scope {}: {}; {skipped}{drift}",
        c.in_scope,
        in_scope.join(", ")
    )
}

pub fn print_report(r: &CycleReport) {
    outln!(
        "cycle {} ({}): {} — {}",
        r.cycle,
        r.kind.as_str(),
        status_text(&r.status),
        counts_text(&r.counts, &r.skipped_causes)
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
            "held: {} objects would lose values; nothing was written. Review with `exo-writeback preview`, then write them with `exo-writeback approve {}` or refuse them with `exo-writeback reject {}`.",
            r.removing,
            r.cycle,
            r.cycle
        );
    }
    if r.pins_set.attributes > 0 {
        outln!(
            "{} pinned until their Exchange Online value changes; release with `exo-writeback unpin --object <identity>` (or `--all`)",
            describe_pins(r.pins_set)
        );
    }
    if r.pins_released > 0 {
        outln!(
            "released {} pinned attribute(s): the next cycles write their Exchange Online values again",
            r.pins_released
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
    let _runner = CycleRunnerLock::acquire_as(dir, "exo-writeback sync")?;
    let lock = WriteLock::acquire(&config, "exo-writeback sync").await?;
    // A paused job refuses before anything is connected (there is no --force: a pause is a
    // promise that nothing is written; resume, sync, pause again).
    if let Some(pause) = lock.store()?.pause()? {
        return Err(exo_writeback_engine::EngineError::Paused(pause).into());
    }
    let mut engine = compose::cycle_engine(&config, lock.state(), lock.guard()).await?;
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
