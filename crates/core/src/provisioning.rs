//! The provisioning-log model: cycles, job state, provisioning log entries (PRODUCT.md §9),
//! the journal of previous values (for undo), escrow with its back-off schedule (§7), the
//! watermark (§8) and the outcome of one object that the store records atomically.
//!
//! Pure data and pure functions: time is always passed in, nothing here does I/O. The store
//! crate persists these types; the engine produces them.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::directory::AttrValue;

mod cloud_ids;
mod escrow;
mod log;
mod pin;
mod watermark;

pub use cloud_ids::{CloudIdMap, CloudIdSet};
pub use escrow::{
    Backoff, ESCROW_BACKOFF_CAP, EscrowEntry, EscrowFailure, escrow_backoff, escrow_next_retry,
    quarantine_backoff,
};
pub use log::{
    Action, LogEntryId, LogStatus, ModifiedProperty, ProvisioningLogEntry, Reason, SourceIdentity,
    Step, StepStatus, Steps, TargetIdentity, attr_values_serde,
};
pub(crate) use pin::without_attributes;
pub use pin::{Pin, PinCheck, PinCount, PinKey, PinOrigin, PinUpdate, check_pins};
pub use watermark::{DEFAULT_WATERMARK_OVERLAP, MAX_EDGE, Watermark, WatermarkTracker};

// ---------------------------------------------------------------------------------------------
// Cycles and job state
// ---------------------------------------------------------------------------------------------

/// The number of a cycle, assigned by the store (`Store::begin_cycle`), increasing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CycleId(pub i64);

impl fmt::Display for CycleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a cycle ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CycleKind {
    /// Every in-scope mailbox; runs when there is no watermark.
    Initial,
    /// Mailboxes changed since the watermark.
    Delta,
    /// Every in-scope mailbox again, re-asserting cloud values over on-premises drift.
    FullReconcile,
    /// `exo-writeback provision <identity>`.
    OnDemand,
    /// `exo-writeback undo`.
    Undo,
    /// `exo-writeback approve <cycle>`: applies the changes a held cycle staged.
    Approve,
    /// `exo-writeback reject <cycle>`: refuses the changes a held cycle staged.
    Reject,
}

impl CycleKind {
    pub const ALL: [CycleKind; 7] = [
        CycleKind::Initial,
        CycleKind::Delta,
        CycleKind::FullReconcile,
        CycleKind::OnDemand,
        CycleKind::Undo,
        CycleKind::Approve,
        CycleKind::Reject,
    ];

    /// The stable name used in storage and output.
    pub fn as_str(self) -> &'static str {
        match self {
            CycleKind::Initial => "Initial",
            CycleKind::Delta => "Delta",
            CycleKind::FullReconcile => "FullReconcile",
            CycleKind::OnDemand => "OnDemand",
            CycleKind::Undo => "Undo",
            CycleKind::Approve => "Approve",
            CycleKind::Reject => "Reject",
        }
    }

    /// The kind named `name` (as written by [`CycleKind::as_str`]).
    pub fn from_name(name: &str) -> Option<CycleKind> {
        CycleKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether the agent's schedule runs cycles of this kind (`sync`, `run`), as opposed to
    /// a command run by hand on some objects (provision, approve, reject, undo).
    pub fn is_scheduled(self) -> bool {
        matches!(
            self,
            CycleKind::Initial | CycleKind::Delta | CycleKind::FullReconcile
        )
    }
}

/// What a cycle did, counted per object. The counts add up:
///
/// - `imported = in_scope + skipped`, and
/// - `in_scope = written + unchanged + held + pinned + drift_reported + failed + pending`.
///
/// For approve, reject and undo, `imported` and `in_scope` are the objects taken up (the held
/// or journaled ones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleCounts {
    /// Mailboxes read from Exchange Online (with those retried from escrow).
    pub imported: u64,
    /// Of those, read again only because of the overlap window: unchanged in Exchange Online
    /// since the watermark the delta started from (already processed).
    #[serde(default)]
    pub reread: u64,
    /// Of those, read again because they wait in escrow for a retry.
    #[serde(default)]
    pub retried: u64,
    /// Of those, in scope (matched to an AD object in the container scope).
    pub in_scope: u64,
    /// Objects written to AD.
    pub written: u64,
    /// Objects already in sync (action `Other`).
    pub unchanged: u64,
    /// Objects whose changes the change threshold holds for `approve` or `reject`.
    #[serde(default)]
    pub held: u64,
    /// Objects left as they are because every change planned for them is pinned (undone or
    /// rejected, and unchanged in Exchange Online since).
    #[serde(default)]
    pub pinned: u64,
    /// Objects left as they are because every change planned for them would have overwritten
    /// an on-premises edit of an attribute the agent wrote, and their profile reports drift
    /// (`DriftDetected`, `drift = "report"`).
    #[serde(default)]
    pub drift_reported: u64,
    /// Objects planned but not written because the cycle stopped early (the next cycle
    /// writes them).
    #[serde(default)]
    pub pending: u64,
    /// Mailboxes not in scope: not in the scope of a profile or scoping filter
    /// (`NotInScope`), no AD object (`TargetNotFound`), or outside the container scope
    /// (`OutsideContainerScope`).
    pub skipped: u64,
    /// Objects that failed (and went to escrow).
    pub failed: u64,
    /// Security events (`SpoofedMatchKey`: a match key held by an object the mailbox's
    /// immutable anchor does not designate), whatever became of the object.
    #[serde(default)]
    pub security_events: u64,
    /// Objects on which an on-premises edit of an attribute the agent wrote was found (drift,
    /// reported or corrected), whatever became of the object.
    #[serde(default)]
    pub drift_detected: u64,
    /// Of those, objects written with the cloud values restored over the edits
    /// (`DriftCorrected`).
    #[serde(default)]
    pub drift_corrected: u64,
}

impl CycleCounts {
    /// Mailboxes read because they changed (not re-read in the overlap, not escrow retries).
    pub fn changed(&self) -> u64 {
        self.imported
            .saturating_sub(self.reread)
            .saturating_sub(self.retried)
    }
}

/// How a cycle ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CycleStatus {
    /// Started and not finished (yet, or the process stopped in the middle).
    Running,
    /// Ran to its end (individual objects may have failed; see the counts).
    Completed,
    /// Held by the change threshold: nothing written, changes staged for approval.
    ThresholdExceeded,
    /// Most objects failed for one cause; the job went to quarantine.
    Quarantined { reason: String },
    /// Stopped by an error before its end.
    Failed { reason: String },
    /// Found `Running` when the agent started again: the process stopped mid-cycle.
    Interrupted,
    /// An initial or full cycle read mailboxes but none was in scope: the scope (scoping
    /// filters, container scope, search bases) most likely matches nothing. Nothing was written
    /// and the watermark did not move.
    NothingInScope { reason: String },
}

/// One cycle as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleRecord {
    pub id: CycleId,
    pub kind: CycleKind,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub counts: CycleCounts,
    pub status: CycleStatus,
}

/// The state of the writeback job (PRODUCT.md §8).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum JobState {
    /// No cycle has run yet (or state was restarted in full).
    #[default]
    NotRun,
    /// Cycles run. (A pause is kept beside the state, [`Pause`]: `status` shows `Paused`
    /// over whichever state the job is in, and `resume` returns to it.)
    Active,
    /// `cycle` would have removed values on more objects than the threshold allows; its
    /// changes are staged until `exo-writeback approve <cycle>`.
    ThresholdExceeded { cycle: CycleId },
    /// Most objects failed for one cause; retries slow down until a good cycle.
    Quarantine {
        reason: String,
        since: Timestamp,
        next_retry: Timestamp,
    },
}

impl JobState {
    /// The state's name as PRODUCT.md §8 lists it.
    pub fn name(&self) -> &'static str {
        match self {
            JobState::NotRun => "NotRun",
            JobState::Active => "Active",
            JobState::ThresholdExceeded { .. } => "ThresholdExceeded",
            JobState::Quarantine { .. } => "Quarantine",
        }
    }
}

/// An administrator paused the job (`exo-writeback pause`): no cycle runs until `resume`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// Who paused it.
    pub by: String,
    pub since: Timestamp,
    /// The reason given with `pause --reason`.
    pub reason: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Journal (undo)
// ---------------------------------------------------------------------------------------------

/// The values one attribute of one object had before a cycle wrote it, and what it wrote.
/// `exo-writeback undo` restores `previous`. Values are exact (`AttrValue::Bytes` stays bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalRecord {
    pub cycle: CycleId,
    /// When the change was written.
    pub time: Timestamp,
    pub object_guid: Uuid,
    pub dn: String,
    pub attribute: String,
    #[serde(with = "attr_values_serde")]
    pub previous: Vec<AttrValue>,
    #[serde(with = "attr_values_serde")]
    pub new: Vec<AttrValue>,
}

/// An AD object named by GUID or DN (journal look-ups for undo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectRef {
    Guid(Uuid),
    /// Compared case-insensitively.
    Dn(String),
}

// ---------------------------------------------------------------------------------------------
// Joins
// ---------------------------------------------------------------------------------------------

/// A mailbox joined to its AD object (PRODUCT.md §5): re-validated when written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    /// The mailbox's ExternalDirectoryObjectId.
    pub cloud_id: String,
    pub object_guid: Uuid,
    pub dn: String,
    /// When the join was last confirmed.
    pub updated_at: Timestamp,
}

// ---------------------------------------------------------------------------------------------
// Staged changes (threshold)
// ---------------------------------------------------------------------------------------------

/// One object's plan held back by the change threshold. `plan` is opaque to the store; the
/// engine defines its content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagedPlan {
    pub cloud_id: String,
    pub object_guid: Option<Uuid>,
    pub dn: String,
    pub plan: serde_json::Value,
}

/// What became of a held cycle's staged changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StagedDecision {
    /// Waiting for `exo-writeback approve`.
    Pending,
    /// Approved at `at`; applied by cycle `by`.
    Approved { at: Timestamp, by: CycleId },
    /// Dropped (e.g. by `restart --scope full`) at `at`.
    Discarded { at: Timestamp },
    /// Rejected by `by` at `at` (`exo-writeback reject`), logged in cycle `cycle`; the
    /// objects' changes are pinned until their Exchange Online values change.
    Rejected {
        at: Timestamp,
        cycle: CycleId,
        by: String,
        reason: Option<String>,
    },
}

impl StagedDecision {
    /// The decision in plain words, e.g. `approved at … (applied by cycle 9)`.
    pub fn describe(&self) -> String {
        match self {
            StagedDecision::Pending => "waiting for approve or reject".into(),
            StagedDecision::Approved { at, by } => {
                format!("approved at {at} (applied by cycle {by})")
            }
            StagedDecision::Discarded { at } => format!("discarded by a restart at {at}"),
            StagedDecision::Rejected {
                at,
                cycle,
                by,
                reason,
            } => format!(
                "rejected by {by} at {at} (cycle {cycle}){}",
                reason
                    .as_deref()
                    .map(|r| format!(": \"{r}\""))
                    .unwrap_or_default()
            ),
        }
    }
}

/// The staged changes of one held cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagedCycle {
    pub cycle: CycleId,
    pub staged_at: Timestamp,
    pub decision: StagedDecision,
    pub plans: Vec<StagedPlan>,
}

// ---------------------------------------------------------------------------------------------
// The outcome of one object
// ---------------------------------------------------------------------------------------------

/// What to do with the object's join.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum JoinUpdate {
    /// Leave it as it is.
    #[default]
    Keep,
    /// Insert or replace the join.
    Set(Join),
    /// The join is no longer valid (e.g. the AD object is gone).
    Remove { cloud_id: String },
}

/// What to do with the object's escrow entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum EscrowUpdate {
    /// Leave it as it is (e.g. a skipped object that was never in escrow).
    #[default]
    Keep,
    /// The object failed at `failed_at`: add it to escrow or count one more attempt.
    Failed {
        failure: EscrowFailure,
        failed_at: Timestamp,
    },
    /// The object succeeded (or left scope): take it out of escrow.
    Clear { cloud_id: String },
}

/// Everything the store records for one object of one cycle, in one transaction: the log entry,
/// the journal of what was written, the join, the escrow change and the pins set or released.
/// After the store returns, all of it is durable; if it returns an error, none of it was
/// stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectOutcome {
    pub log: ProvisioningLogEntry,
    pub journal: Vec<JournalRecord>,
    pub join: JoinUpdate,
    pub escrow: EscrowUpdate,
    pub pins: PinUpdate,
}

// ---------------------------------------------------------------------------------------------
// Restart
// ---------------------------------------------------------------------------------------------

/// `exo-writeback restart --scope …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestartScope {
    /// Forget the watermark, joins, escrow, quarantine and pending staged changes: the next
    /// cycle is an initial one. Logs, journal and cycle history are kept, and so are pins and
    /// a pause (administrators' decisions: `unpin` and `resume` release them).
    Full,
    /// Forget the watermark only: the next cycle is an initial one.
    Watermark,
    /// Empty the escrow: failed objects are no longer retried on their own.
    Escrow,
    /// Leave quarantine now.
    Quarantine,
}

impl RestartScope {
    pub const ALL: [RestartScope; 4] = [
        RestartScope::Full,
        RestartScope::Watermark,
        RestartScope::Escrow,
        RestartScope::Quarantine,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RestartScope::Full => "full",
            RestartScope::Watermark => "watermark",
            RestartScope::Escrow => "escrow",
            RestartScope::Quarantine => "quarantine",
        }
    }

    /// What a restart of this scope forgets, in an administrator's words.
    pub fn describe(self) -> &'static str {
        match self {
            RestartScope::Full => {
                "forget the watermark, joins, escrow, quarantine and held changes: the next \
                 cycle is an initial one (logs, journal, pins and a pause are kept)"
            }
            RestartScope::Watermark => "forget the watermark: the next cycle is an initial one",
            RestartScope::Escrow => "empty the escrow: failed objects are no longer retried",
            RestartScope::Quarantine => "leave quarantine now: the next cycle runs at once",
        }
    }

    pub fn from_name(name: &str) -> Option<RestartScope> {
        match name.to_ascii_lowercase().as_str() {
            "full" => Some(RestartScope::Full),
            "watermark" => Some(RestartScope::Watermark),
            "escrow" => Some(RestartScope::Escrow),
            "quarantine" => Some(RestartScope::Quarantine),
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "provisioning/tests.rs"]
mod tests;
