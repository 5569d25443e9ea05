//! Write-ahead intents: a process killed between a modify and the commit of its outcome still
//! gets the change logged, once, as applied.
//!
//! The write phase of a cycle works in chunks of up to `EngineOptions::batch` objects:
//! the chunk's intents are committed in one transaction (`OutcomeStore::record_intents`), then
//! its modifies are sent, then its outcomes are committed together with the deletion of its
//! intents (`OutcomeStore::record_outcomes_clearing_intents`); `approve` and `undo` (in chunks) and provision
//! on demand (one object) do the same. An intent still stored when a cycle (or
//! `approve`, `undo`, provision on demand) starts was left by a process that stopped in between.
//! [`reconcile`] reads each such object by objectGUID:
//!
//! - every attribute of the planned modify holds exactly the planned values → the intent's log
//!   entry and journal are recorded (under the cycle that applied the change, so `undo` of that
//!   cycle restores it), the export step saying "applied by cycle N, which stopped before logging
//!   it; logged by cycle M";
//! - otherwise (the modify was never sent or failed, or the object changed since) → nothing is
//!   logged as applied (an info line says why) and the intent is deleted;
//! - the object is gone → the intent is deleted.
//!
//! A directory error while reading keeps the intent for the next cycle and never stops the
//! cycle: a connection error stops the reconciliation (every remaining intent is kept; the cycle
//! then meets the same error and fails on its own account), an error of one object keeps only
//! that intent. An intent that could not be read for longer than the log retention
//! ([`DEFAULT_RETENTION`]) is dropped with a warning, so nothing piles up forever.

use exo_writeback_core::provisioning::{CycleId, JoinUpdate};
use exo_writeback_store::{DEFAULT_RETENTION, JoinStore, OutcomeStore, StoreError, WriteIntent};
use jiff::Timestamp;
use uuid::Uuid;

use crate::ports::Directory;

/// What a reconciliation did with the leftover intents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Changes found applied and logged now.
    pub logged: u64,
    /// Intents whose change is not (or no longer) in AD: dropped, nothing logged.
    pub not_applied: u64,
    /// Intents whose object no longer exists: dropped.
    pub gone: u64,
    /// Intents kept for the next cycle (the directory could not be read).
    pub kept: u64,
    /// Intents that could not be checked for longer than the log retention: dropped.
    pub expired: u64,
}

/// Whether the values an attribute holds are exactly the planned ones (core's rule, shared
/// with approve and the pins of undo and reject).
pub(crate) use exo_writeback_core::schema::same_values as holds;

/// Logs or drops the intents left by a process that stopped mid-chunk (see the module docs).
/// `by` is the cycle doing it, named in the log entries (`None`: `undo`, before its cycle).
/// Store errors are returned (nothing of this reconciliation is then stored; the intents
/// stay); directory errors are not.
pub(crate) async fn reconcile<D: Directory, St: OutcomeStore + JoinStore>(
    directory: &D,
    store: &mut St,
    by: Option<CycleId>,
) -> Result<Reconciled, StoreError> {
    let intents = store.intents()?;
    let mut report = Reconciled::default();
    if intents.is_empty() {
        return Ok(report);
    }
    let schema = match directory.schema().await {
        Ok(schema) => schema,
        Err(e) => {
            tracing::warn!(error = %e, "cannot check the writes of an interrupted cycle now (no schema); kept for the next cycle");
            report.kept = intents.len() as u64;
            return Ok(report);
        }
    };
    let now = Timestamp::now();
    let mut outcomes = Vec::new();
    let mut done: Vec<Uuid> = Vec::new();
    let total = intents.len() as u64;
    for intent in intents {
        let attrs: Vec<String> = intent.planned().map(|(a, _)| a.to_string()).collect();
        match directory.read_by_guid(&intent.object_guid, &attrs).await {
            Err(e) => {
                let stale = now.duration_since(intent.log.time) > DEFAULT_RETENTION;
                if stale {
                    tracing::warn!(cycle = %intent.cycle, dn = %intent.dn, error = %e, "a write intent older than the log retention still cannot be checked; dropped (the change, if it was applied, stays unlogged)");
                    report.expired += 1;
                    done.push(intent.id);
                    continue;
                }
                report.kept += 1;
                if e.is_unreachable() {
                    tracing::warn!(error = %e, "cannot check the writes of an interrupted cycle now (directory unreachable); kept for the next cycle");
                    report.kept =
                        total - report.logged - report.not_applied - report.gone - report.expired;
                    break;
                }
                tracing::warn!(cycle = %intent.cycle, dn = %intent.dn, error = %e, "cannot check a write of an interrupted cycle now; kept for the next cycle");
            }
            Ok(None) => {
                tracing::info!(cycle = %intent.cycle, dn = %intent.dn, object_guid = %intent.object_guid, "an interrupted cycle's write intent names an object that no longer exists; dropped");
                report.gone += 1;
                done.push(intent.id);
            }
            Ok(Some(obj)) => {
                let applied = intent.planned().all(|(attr, planned)| {
                    let syntax = schema.get(attr).map(|a| &a.syntax);
                    holds(syntax, obj.attributes.get(attr), planned)
                });
                done.push(intent.id);
                if !applied {
                    tracing::info!(cycle = %intent.cycle, dn = %intent.dn, "cycle {} stopped before logging a planned write that AD does not hold (not sent, or changed since): nothing logged as applied", intent.cycle);
                    report.not_applied += 1;
                    continue;
                }
                outcomes.push(late_outcome(store, intent, by, now)?);
                report.logged += 1;
            }
        }
    }
    store.record_outcomes_clearing_intents(&outcomes, &done)?;
    if report.logged > 0 {
        tracing::info!(
            logged = report.logged,
            "logged the changes that interrupted cycles applied without logging them"
        );
    }
    Ok(report)
}

/// The outcome of an intent found applied, marked so an administrator can tell.
fn late_outcome<St: JoinStore>(
    store: &St,
    intent: WriteIntent,
    by: Option<CycleId>,
    now: Timestamp,
) -> Result<exo_writeback_core::provisioning::ObjectOutcome, StoreError> {
    let applied_by = intent.cycle;
    let mut outcome = intent.into_outcome();
    let logged = match by {
        Some(c) => format!("logged by cycle {c}"),
        None => format!("logged at {now}"),
    };
    let export = &mut outcome.log.steps.export;
    export.details = format!(
        "{}; applied by cycle {applied_by}, which stopped before logging it; {logged}",
        export.details
    );
    // A join another cycle has set since (to another object) wins over the stale one.
    if let JoinUpdate::Set(join) = &outcome.join
        && let Some(current) = store.join(&join.cloud_id)?
        && current.object_guid != join.object_guid
    {
        outcome.join = JoinUpdate::Keep;
    }
    Ok(outcome)
}
