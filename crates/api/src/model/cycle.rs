//! Cycles and what an operation that runs one reports.

use std::collections::BTreeMap;

use exo_writeback_core::provisioning::{CycleCounts, CycleRecord, CycleStatus};
use exo_writeback_engine::CycleReport;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Objects of a cycle, counted (they add up: every imported mailbox is written, unchanged,
/// held, pinned, pending, skipped or failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Mailboxes read from Exchange Online.
    pub imported: u64,
    /// Of those, read again inside the watermark's overlap.
    pub reread: u64,
    /// Of those, retried from escrow.
    pub retried: u64,
    pub in_scope: u64,
    pub written: u64,
    pub unchanged: u64,
    /// Held by the change threshold.
    pub held: u64,
    /// Left alone: an undo or reject pinned their attributes.
    pub pinned: u64,
    /// Not written because writing stopped (AD unreachable, a stop request).
    pub pending: u64,
    pub skipped: u64,
    pub failed: u64,
    /// Objects refused for a security reason (e.g. a spoofed match key).
    pub security_events: u64,
    /// Left as they are: every change would have overwritten an on-premises edit of an
    /// attribute the agent wrote, and the profile reports drift (`drift = "report"`).
    pub drift_reported: u64,
    /// Objects on which an on-premises edit of an attribute the agent wrote was found.
    pub drift_detected: u64,
    /// Of those, objects written with the cloud values restored over the edits.
    pub drift_corrected: u64,
}

impl From<&CycleCounts> for Counts {
    fn from(c: &CycleCounts) -> Counts {
        Counts {
            imported: c.imported,
            reread: c.reread,
            retried: c.retried,
            in_scope: c.in_scope,
            written: c.written,
            unchanged: c.unchanged,
            held: c.held,
            pinned: c.pinned,
            pending: c.pending,
            skipped: c.skipped,
            failed: c.failed,
            security_events: c.security_events,
            drift_reported: c.drift_reported,
            drift_detected: c.drift_detected,
            drift_corrected: c.drift_corrected,
        }
    }
}

impl From<&Counts> for CycleCounts {
    fn from(c: &Counts) -> CycleCounts {
        CycleCounts {
            imported: c.imported,
            reread: c.reread,
            retried: c.retried,
            in_scope: c.in_scope,
            written: c.written,
            unchanged: c.unchanged,
            held: c.held,
            pinned: c.pinned,
            pending: c.pending,
            skipped: c.skipped,
            failed: c.failed,
            security_events: c.security_events,
            drift_reported: c.drift_reported,
            drift_detected: c.drift_detected,
            drift_corrected: c.drift_corrected,
        }
    }
}

/// A cycle's status name and, when it failed or was quarantined, why.
pub fn status_parts(s: &CycleStatus) -> (&'static str, Option<String>) {
    match s {
        CycleStatus::Running => ("Running", None),
        CycleStatus::Completed => ("Completed", None),
        CycleStatus::ThresholdExceeded => ("ThresholdExceeded", None),
        CycleStatus::Quarantined { reason } => ("Quarantined", Some(reason.clone())),
        CycleStatus::Failed { reason } => ("Failed", Some(reason.clone())),
        CycleStatus::Interrupted => ("Interrupted", None),
        CycleStatus::NothingInScope { reason } => ("NothingInScope", Some(reason.clone())),
    }
}

/// One cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cycle {
    pub id: i64,
    /// `Initial`, `Delta`, `FullReconcile`, `OnDemand`, `Undo`, `Approve` …
    pub kind: String,
    /// `Running`, `Completed`, `ThresholdExceeded`, `Quarantined`, `Failed`, `Interrupted`,
    /// `NothingInScope`.
    pub status: String,
    /// Why it failed or was quarantined.
    pub reason: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_in_milliseconds: Option<i64>,
    pub counts: Counts,
}

impl From<&CycleRecord> for Cycle {
    fn from(c: &CycleRecord) -> Cycle {
        let (status, reason) = status_parts(&c.status);
        Cycle {
            id: c.id.0,
            kind: c.kind.as_str().to_string(),
            status: status.to_string(),
            reason,
            started_at: c.started_at.to_string(),
            finished_at: c.finished_at.map(|t| t.to_string()),
            duration_in_milliseconds: c
                .finished_at
                .map(|f| f.duration_since(c.started_at).as_millis() as i64),
            counts: (&c.counts).into(),
        }
    }
}

/// What a cycle an operation ran (approve, undo) did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CycleResult {
    pub cycle: i64,
    pub kind: String,
    pub status: String,
    pub reason: Option<String>,
    pub counts: Counts,
    /// Objects whose plans remove values (the change threshold's count).
    pub removing: u64,
    /// Failed objects by outcome code.
    pub failure_causes: BTreeMap<String, u64>,
    /// Skipped mailboxes by outcome code (they add up to `counts.skipped`).
    pub skipped_causes: BTreeMap<String, u64>,
    /// Pins the cycle set (undo, reject).
    pub pins_set: PinCountView,
    /// Pins the cycle released.
    pub pins_released: u64,
    /// Attributes the directory account may not read: not planned by this cycle.
    pub unreadable_attributes: Vec<UnreadableAttributeView>,
    /// The watermark stored at the end, if the cycle moved it.
    pub watermark: Option<String>,
    /// How far each delta re-reads before the watermark, in seconds.
    pub watermark_overlap_seconds: Option<i64>,
}

/// Pinned attributes and their objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PinCountView {
    pub attributes: u64,
    pub objects: u64,
}

/// An attribute the directory account may not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UnreadableAttributeView {
    pub attribute: String,
    /// Which account, on which objects, why, and the command that grants the right.
    pub message: String,
}

fn by_code(m: &BTreeMap<exo_writeback_core::outcome::OutcomeCode, u64>) -> BTreeMap<String, u64> {
    m.iter().map(|(code, n)| (code.to_string(), *n)).collect()
}

impl From<&CycleReport> for CycleResult {
    fn from(r: &CycleReport) -> CycleResult {
        let (status, reason) = status_parts(&r.status);
        CycleResult {
            cycle: r.cycle.0,
            kind: r.kind.as_str().to_string(),
            status: status.to_string(),
            reason,
            counts: (&r.counts).into(),
            removing: r.removing,
            failure_causes: by_code(&r.failure_causes),
            skipped_causes: by_code(&r.skipped_causes),
            pins_set: PinCountView {
                attributes: r.pins_set.attributes,
                objects: r.pins_set.objects,
            },
            pins_released: r.pins_released,
            unreadable_attributes: r
                .unreadable_attributes
                .iter()
                .map(|u| UnreadableAttributeView {
                    attribute: u.attribute.clone(),
                    message: u.message.clone(),
                })
                .collect(),
            watermark: r.watermark.as_ref().map(|w| w.changed_since.to_string()),
            watermark_overlap_seconds: r.watermark.as_ref().map(|w| w.overlap.as_secs()),
        }
    }
}

/// The latest cycles, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CycleList {
    pub value: Vec<Cycle>,
}
