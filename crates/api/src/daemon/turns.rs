//! What the daemon does with each turn of the loop besides printing it: metrics, webhooks,
//! and the status line systemd shows.

use std::sync::Arc;
use std::time::Duration;

use exo_writeback_agent::config::EventKind;
use exo_writeback_agent::scheduler::Turn;
use exo_writeback_core::provisioning::CycleStatus;
use exo_writeback_store_sqlite::Store;
use jiff::SignedDuration;

use crate::state::AppState;
use crate::webhook::Event;

fn held(state: &AppState, cycle: i64, objects: Option<u64>) {
    let mut e = Event::new(
        EventKind::Held,
        "warning",
        format!(
            "cycle {cycle} is held by the change threshold and waits for approval: review its changes (console: Held cycles, or `exo-writeback preview`), then approve it"
        ),
    )
    .detail("cycle", cycle)
    .keyed(format!("held:{cycle}"), SignedDuration::from_hours(4));
    if let Some(n) = objects {
        e = e.detail("objects removing values", n);
    }
    state.notifier.send(e);
}

fn quarantine(state: &AppState, reason: &str, next_retry: Option<String>) {
    let mut e = Event::new(
        EventKind::Quarantine,
        "critical",
        format!("the job is in quarantine: {reason}. Fix the cause; cycles retry on their own, or run `exo-writeback restart --scope quarantine`"),
    )
    .detail("reason", reason)
    .keyed("quarantine", SignedDuration::from_hours(1));
    if let Some(t) = next_retry {
        e = e.detail("next retry", t);
    }
    state.notifier.send(e);
}

/// Reacts to one turn; `reads` gives a cycle's duration.
pub fn react(state: &Arc<AppState>, reads: Option<&dyn Store>, turn: &Turn<'_>) {
    match turn {
        Turn::Cycle(report) => {
            let took = reads
                .and_then(|s| s.cycle(report.cycle).ok().flatten())
                .and_then(|c| {
                    let end = c.finished_at?;
                    Duration::try_from(end.duration_since(c.started_at)).ok()
                })
                .unwrap_or_default();
            state.metrics.cycle(report, took);
            match &report.status {
                CycleStatus::ThresholdExceeded => {
                    held(state, report.cycle.0, Some(report.removing));
                }
                CycleStatus::Quarantined { reason } => quarantine(state, reason, None),
                _ => {}
            }
            let c = &report.counts;
            super::systemd::status(&format!(
                "last cycle {} ({}): {} — written {}, failed {}",
                report.cycle,
                report.kind.as_str(),
                crate::model::cycle::status_parts(&report.status).0,
                c.written,
                c.failed
            ));
        }
        Turn::Held(cycle) => {
            held(state, cycle.0, None);
            super::systemd::status(&format!("held: cycle {cycle} waits for approval"));
        }
        Turn::Paused(p) => {
            super::systemd::status(&format!("paused by {} since {}", p.by, p.since));
        }
        Turn::Quarantined { reason, next_retry } => {
            quarantine(state, reason, Some(next_retry.to_string()));
            super::systemd::status(&format!("quarantine until {next_retry}: {reason}"));
        }
        Turn::Failed(e) => {
            // The failed cycle, when it got as far as being recorded.
            let kind = reads
                .and_then(|s| s.recent_cycles(1).ok())
                .and_then(|c| c.into_iter().next())
                .filter(|c| matches!(c.status, CycleStatus::Failed { .. }))
                .map_or("unknown", |c| c.kind.as_str());
            state.metrics.cycle_result(kind, "failed");
            super::systemd::status(&format!("the last cycle failed: {e}"));
        }
    }
}
