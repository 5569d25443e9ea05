//! Why an engine operation could not run.

use exo_writeback_core::provisioning::{CycleId, Pause};
use exo_writeback_store::StoreError;
use jiff::Timestamp;

use crate::ports::{DirectoryError, SourceError};

/// Why an engine operation could not run (per-object problems are outcomes, not errors).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading Exchange Online failed: {0}")]
    Source(SourceError),
    #[error("Active Directory: {0}")]
    Directory(DirectoryError),
    #[error(
        "cycle {cycle} is held by the change threshold: review it with `exo-writeback preview`, then run `exo-writeback approve {cycle}` (or `exo-writeback restart --scope full` to drop it)"
    )]
    Held { cycle: CycleId },
    #[error(
        "the job was paused by {} at {}{}: no cycle runs until `exo-writeback resume`",
        .0.by,
        .0.since,
        .0.reason.as_deref().map(|r| format!(" (\"{r}\")")).unwrap_or_default()
    )]
    Paused(Pause),
    #[error("cycle {cycle} has no changes waiting for approve or reject{why}")]
    NotHeld { cycle: CycleId, why: String },
    #[error("a staged plan of cycle {cycle} cannot be read: {problem}")]
    StagedPlan { cycle: CycleId, problem: String },
    /// Approve, undo or provision on demand stopped before writing everything (AD stayed
    /// unreachable, or a stop request). What was written is logged; the rest is not.
    #[error(
        "cycle {cycle} stopped before writing everything: {reason}; what it wrote is logged — run the command again to finish"
    )]
    Stopped { cycle: CycleId, reason: String },
    #[error("nothing to undo: {0}")]
    NothingToUndo(String),
    /// The temporary file for plans beyond `max_plans_in_memory` failed (nothing was written
    /// when it fails before the threshold decision).
    #[error("{0}")]
    Spill(String),
    #[error(
        "the job is in quarantine ({reason}); the next retry is due at {next_retry}. Fix the cause, then wait or run `exo-writeback restart --scope quarantine` to retry now"
    )]
    Quarantined {
        reason: String,
        next_retry: Timestamp,
    },
}
