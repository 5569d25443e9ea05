//! Cycles and what an operation that runs one reports.

use std::collections::BTreeMap;

use exo_writeback_core::provisioning::{CycleCounts, CycleRecord, CycleStatus};
use exo_writeback_engine::CycleReport;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Objects of a cycle, counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub imported: u64,
    pub in_scope: u64,
    pub written: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub failed: u64,
}

impl From<&CycleCounts> for Counts {
    fn from(c: &CycleCounts) -> Counts {
        Counts {
            imported: c.imported,
            in_scope: c.in_scope,
            written: c.written,
            unchanged: c.unchanged,
            skipped: c.skipped,
            failed: c.failed,
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
    }
}

/// One cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cycle {
    pub id: i64,
    /// `Initial`, `Delta`, `FullReconcile`, `OnDemand`, `Undo`, `Approve` …
    pub kind: String,
    /// `Running`, `Completed`, `ThresholdExceeded`, `Quarantined`, `Failed`, `Interrupted`.
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
    /// The watermark stored at the end, if the cycle moved it.
    pub watermark: Option<String>,
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
            failure_causes: r
                .failure_causes
                .iter()
                .map(|(code, n)| (code.to_string(), *n))
                .collect(),
            watermark: r.watermark.as_ref().map(|w| w.changed_since.to_string()),
        }
    }
}

/// The latest cycles, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CycleList {
    pub value: Vec<Cycle>,
}
