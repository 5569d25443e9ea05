//! The provisioning-log model: cycles, job state, provisioning log entries (PRODUCT.md §9),
//! the journal of previous values (for undo), escrow with its back-off schedule (§7), the
//! watermark (§8) and the outcome of one object that the store records atomically.
//!
//! Pure data and pure functions: time is always passed in, nothing here does I/O. The store
//! crate persists these types; the engine produces them.

use std::collections::BTreeMap;
use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::directory::AttrValue;

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
}

impl CycleKind {
    pub const ALL: [CycleKind; 6] = [
        CycleKind::Initial,
        CycleKind::Delta,
        CycleKind::FullReconcile,
        CycleKind::OnDemand,
        CycleKind::Undo,
        CycleKind::Approve,
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
        }
    }

    /// The kind named `name` (as written by [`CycleKind::as_str`]).
    pub fn from_name(name: &str) -> Option<CycleKind> {
        CycleKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// What a cycle did, counted per object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleCounts {
    /// Mailboxes read from Exchange Online.
    pub imported: u64,
    /// Of those, in scope.
    pub in_scope: u64,
    /// Objects written to AD.
    pub written: u64,
    /// Objects already in sync (action `Other`).
    pub unchanged: u64,
    /// Objects skipped (not in scope, target not found …).
    pub skipped: u64,
    /// Objects that failed (and went to escrow).
    pub failed: u64,
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
    /// Cycles run.
    Active,
    /// An administrator paused the job.
    Paused,
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
            JobState::Paused => "Paused",
            JobState::ThresholdExceeded { .. } => "ThresholdExceeded",
            JobState::Quarantine { .. } => "Quarantine",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Provisioning log entries
// ---------------------------------------------------------------------------------------------

/// The identity of a provisioning log entry, chosen by whoever creates it (a random v4 UUID
/// from the engine). Unique in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LogEntryId(pub Uuid);

impl fmt::Display for LogEntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The Exchange Online side of an entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceIdentity {
    /// ExternalDirectoryObjectId (the Entra ID object id), without any `User_` prefix.
    pub external_directory_object_id: Option<String>,
    pub primary_smtp_address: Option<String>,
}

/// The AD side of an entry; empty when no object was matched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetIdentity {
    pub dn: Option<String>,
    pub object_guid: Option<Uuid>,
}

/// What was done to the object (Microsoft's provisioning-log actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// The object was (or, dry-run, would be) modified.
    Update,
    /// Nothing to do: already in sync.
    Other,
    /// The object was skipped (see the reason).
    Skip,
}

/// The status of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStatus {
    Success,
    Skipped,
    Failure,
    Warning,
}

impl LogStatus {
    pub const ALL: [LogStatus; 4] = [
        LogStatus::Success,
        LogStatus::Skipped,
        LogStatus::Failure,
        LogStatus::Warning,
    ];

    /// The lower-case name used in storage, filters and output.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStatus::Success => "success",
            LogStatus::Skipped => "skipped",
            LogStatus::Failure => "failure",
            LogStatus::Warning => "warning",
        }
    }

    /// The status named `name`, case-insensitively.
    pub fn from_name(name: &str) -> Option<LogStatus> {
        LogStatus::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

/// A skip reason or an error: a stable code (`NotInScope`, `TargetNotFound`,
/// `SchemaConstraint` …), what happened, and what the administrator can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub code: crate::outcome::OutcomeCode,
    pub message: String,
    pub recommended_action: String,
}

/// The outcome of one step (`✓`, `✗`, `–` in provision on demand).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Success,
    Failure,
    /// The step was skipped, or not reached because an earlier step ended the run.
    Skipped,
}

impl StepStatus {
    /// The mark provision on demand prints.
    pub fn mark(self) -> &'static str {
        match self {
            StepStatus::Success => "✓",
            StepStatus::Failure => "✗",
            StepStatus::Skipped => "–",
        }
    }
}

/// One step with its status and human-readable details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub status: StepStatus,
    pub details: String,
}

impl Step {
    /// A step that was not reached.
    pub fn not_reached() -> Step {
        Step {
            status: StepStatus::Skipped,
            details: String::new(),
        }
    }
}

/// The four steps of a provisioning run (PRODUCT.md §9, §10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Steps {
    pub import: Step,
    pub scoping: Step,
    pub matching: Step,
    pub export: Step,
}

/// One modified attribute, old values → new values (exact values: bytes stay bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModifiedProperty {
    pub attribute: String,
    #[serde(with = "attr_values_serde")]
    pub old: Vec<AttrValue>,
    #[serde(with = "attr_values_serde")]
    pub new: Vec<AttrValue>,
}

/// One provisioning log entry: one object in one cycle (or one on-demand run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisioningLogEntry {
    pub id: LogEntryId,
    pub cycle: CycleId,
    /// When the object's processing started.
    pub time: Timestamp,
    pub duration: SignedDuration,
    pub source: SourceIdentity,
    pub target: TargetIdentity,
    pub action: Action,
    pub status: LogStatus,
    /// The skip reason or the error; `None` on plain success.
    pub reason: Option<Reason>,
    pub steps: Steps,
    pub modified: Vec<ModifiedProperty>,
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
// Escrow
// ---------------------------------------------------------------------------------------------

/// A failed object, retried with growing back-off until it succeeds (PRODUCT.md §7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscrowEntry {
    /// The mailbox's ExternalDirectoryObjectId.
    pub cloud_id: String,
    /// The object as known when it failed (for display).
    pub source: SourceIdentity,
    pub target: TargetIdentity,
    /// The last error.
    pub error: Reason,
    /// How many times in a row the object has failed (1 after the first failure).
    pub attempts: u32,
    pub first_failed_at: Timestamp,
    pub last_failed_at: Timestamp,
    /// Not retried before this instant. Equal to `last_failed_at` when the retry is "the next
    /// cycle, whenever it runs".
    pub next_retry: Timestamp,
}

/// When a failed object is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// In the next cycle, whenever that runs.
    NextCycle,
    /// Not before this long after the failure.
    After(SignedDuration),
}

/// The longest wait between two escrow retries.
pub const ESCROW_BACKOFF_CAP: SignedDuration = SignedDuration::from_hours(24);

/// The escrow back-off after `attempts` consecutive failures (PRODUCT.md §7): the next cycle,
/// then 1 min, 5 min, 30 min, 2 h, then doubling (4 h, 8 h, 16 h) capped at 24 h.
/// `attempts` 0 is treated like 1.
pub fn escrow_backoff(attempts: u32) -> Backoff {
    const MIN: i64 = 60;
    match attempts {
        0 | 1 => Backoff::NextCycle,
        2 => Backoff::After(SignedDuration::from_secs(MIN)),
        3 => Backoff::After(SignedDuration::from_secs(5 * MIN)),
        4 => Backoff::After(SignedDuration::from_secs(30 * MIN)),
        5 => Backoff::After(SignedDuration::from_hours(2)),
        n => {
            // 2 h · 2^(n-5), computed in hours and capped before it can overflow.
            let doublings = (n - 5).min(8);
            let hours = 2i64 << doublings;
            Backoff::After(SignedDuration::from_hours(hours).min(ESCROW_BACKOFF_CAP))
        }
    }
}

/// The instant a failed object becomes due again, given its consecutive failures and when it
/// last failed. Saturates at the end of time rather than overflowing.
pub fn escrow_next_retry(attempts: u32, failed_at: Timestamp) -> Timestamp {
    match escrow_backoff(attempts) {
        Backoff::NextCycle => failed_at,
        Backoff::After(d) => failed_at.checked_add(d).unwrap_or(Timestamp::MAX),
    }
}

/// The quarantine retry interval after `failed_cycles` consecutive bad cycles (PRODUCT.md
/// §7): 1 min, 5 min, 15 min, 1 h, then 6 h.
pub fn quarantine_backoff(failed_cycles: u32) -> SignedDuration {
    match failed_cycles {
        0 | 1 => SignedDuration::from_mins(1),
        2 => SignedDuration::from_mins(5),
        3 => SignedDuration::from_mins(15),
        4 => SignedDuration::from_hours(1),
        _ => SignedDuration::from_hours(6),
    }
}

impl EscrowEntry {
    /// The entry after one more failure at `failed_at` with `error`, starting from `previous`
    /// (the object's current escrow entry, if any).
    pub fn after_failure(
        previous: Option<&EscrowEntry>,
        failure: &EscrowFailure,
        failed_at: Timestamp,
    ) -> EscrowEntry {
        let attempts = previous.map_or(0, |p| p.attempts).saturating_add(1);
        EscrowEntry {
            cloud_id: failure.cloud_id.clone(),
            source: failure.source.clone(),
            target: failure.target.clone(),
            error: failure.error.clone(),
            attempts,
            first_failed_at: previous.map_or(failed_at, |p| p.first_failed_at),
            last_failed_at: failed_at,
            next_retry: escrow_next_retry(attempts, failed_at),
        }
    }

    /// Whether the object should be retried at `now`.
    pub fn is_due(&self, now: Timestamp) -> bool {
        self.next_retry <= now
    }
}

/// A failure to put into escrow (the store counts the attempts and computes the retry time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscrowFailure {
    pub cloud_id: String,
    pub source: SourceIdentity,
    pub target: TargetIdentity,
    pub error: Reason,
}

// ---------------------------------------------------------------------------------------------
// Watermark
// ---------------------------------------------------------------------------------------------

/// How far delta cycles have durably processed Exchange Online changes.
///
/// Invariant: every mailbox whose `WhenChangedUTC` is *strictly before* `changed_since` has a
/// durable outcome. Mailboxes changed exactly at `changed_since` may or may not have been
/// processed, so the next delta reads `WhenChangedUTC >= changed_since - overlap` (never `>`),
/// which re-reads the boundary instead of skipping it; re-processing an already-written
/// mailbox plans nothing (action `Other`). `overlap` covers replication delay and clock skew
/// in the service. Build it with [`WatermarkTracker`], which never passes unfinished work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    pub changed_since: Timestamp,
    pub overlap: SignedDuration,
    /// The cycle that set it.
    pub cycle: CycleId,
}

/// The default overlap re-read by each delta cycle.
pub const DEFAULT_WATERMARK_OVERLAP: SignedDuration = SignedDuration::from_mins(2);

impl Watermark {
    /// The lower bound for the next delta query: `WhenChangedUTC >= query_from()`.
    pub fn query_from(&self) -> Timestamp {
        self.changed_since
            .checked_sub(self.overlap)
            .unwrap_or(Timestamp::MIN)
    }
}

/// Tracks the mailboxes of a cycle between "read from Exchange Online" and "outcome durable in
/// the store", and says how far the watermark may safely advance.
///
/// Use: `seen` when a mailbox is read, `durable` after `Store::record_outcome(s)` returned for
/// it, then `Store::set_watermark(&tracker.watermark(..))`.
#[derive(Debug, Clone)]
pub struct WatermarkTracker {
    floor: Timestamp,
    /// The greatest WhenChangedUTC seen.
    high: Option<Timestamp>,
    /// Seen but not yet durable: cloud id → WhenChangedUTC.
    pending: BTreeMap<String, Timestamp>,
    /// Count of pending ids per instant, for the minimum.
    pending_at: BTreeMap<Timestamp, usize>,
}

impl WatermarkTracker {
    /// `floor`: the watermark this cycle started from. For a delta cycle that is the previous
    /// `changed_since`; for an initial or full cycle the instant the cycle began reading
    /// (everything changed before it is in the enumeration).
    pub fn new(floor: Timestamp) -> Self {
        WatermarkTracker {
            floor,
            high: None,
            pending: BTreeMap::new(),
            pending_at: BTreeMap::new(),
        }
    }

    /// A mailbox was read; its outcome is not yet durable. Seeing the same id again keeps the
    /// earlier instant (the safer one).
    pub fn seen(&mut self, cloud_id: &str, when_changed: Timestamp) {
        self.high = Some(self.high.map_or(when_changed, |h| h.max(when_changed)));
        if let Some(existing) = self.pending.get(cloud_id) {
            if *existing <= when_changed {
                return;
            }
            let old = *existing;
            self.unpend_instant(old);
        }
        self.pending.insert(cloud_id.to_owned(), when_changed);
        *self.pending_at.entry(when_changed).or_default() += 1;
    }

    /// The mailbox's outcome is now durable in the store.
    pub fn durable(&mut self, cloud_id: &str) {
        if let Some(t) = self.pending.remove(cloud_id) {
            self.unpend_instant(t);
        }
    }

    fn unpend_instant(&mut self, t: Timestamp) {
        if let Some(n) = self.pending_at.get_mut(&t) {
            *n -= 1;
            if *n == 0 {
                self.pending_at.remove(&t);
            }
        }
    }

    /// How many read mailboxes still wait for a durable outcome.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The furthest safe `changed_since`: the earliest pending instant if any (it is re-read
    /// because the query uses `>=`), else the greatest instant seen; never below the floor.
    pub fn safe_changed_since(&self) -> Timestamp {
        let candidate = match self.pending_at.keys().next() {
            Some(earliest_pending) => *earliest_pending,
            None => self.high.unwrap_or(self.floor),
        };
        candidate.max(self.floor)
    }

    /// The watermark to store now.
    pub fn watermark(&self, cycle: CycleId, overlap: SignedDuration) -> Watermark {
        Watermark {
            changed_since: self.safe_changed_since(),
            overlap,
            cycle,
        }
    }
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
/// the journal of what was written, the join and the escrow change. After the store returns,
/// all of it is durable; if it returns an error, none of it was stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectOutcome {
    pub log: ProvisioningLogEntry,
    pub journal: Vec<JournalRecord>,
    pub join: JoinUpdate,
    pub escrow: EscrowUpdate,
}

// ---------------------------------------------------------------------------------------------
// Restart
// ---------------------------------------------------------------------------------------------

/// `exo-writeback restart --scope …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestartScope {
    /// Forget the watermark, joins, escrow, quarantine and pending staged changes: the next
    /// cycle is an initial one. Logs, journal and cycle history are kept.
    Full,
    /// Forget the watermark only: the next cycle is an initial one.
    Watermark,
    /// Empty the escrow: failed objects are no longer retried on their own.
    Escrow,
    /// Leave quarantine now.
    Quarantine,
}

impl RestartScope {
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

// ---------------------------------------------------------------------------------------------
// Serde for exact attribute values
// ---------------------------------------------------------------------------------------------

/// Serde for `Vec<AttrValue>` that keeps bytes as bytes: text is a JSON string, bytes are
/// `{"base64": "..."}`. Use with `#[serde(with = "attr_values_serde")]`.
pub mod attr_values_serde {
    use super::AttrValue;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Wire {
        Text(String),
        Bytes { base64: String },
    }

    pub fn serialize<S: Serializer>(values: &[AttrValue], s: S) -> Result<S::Ok, S::Error> {
        let wire: Vec<Wire> = values
            .iter()
            .map(|v| match v {
                AttrValue::Text(t) => Wire::Text(t.clone()),
                AttrValue::Bytes(b) => Wire::Bytes {
                    base64: STANDARD.encode(b),
                },
            })
            .collect();
        wire.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<AttrValue>, D::Error> {
        let wire = Vec::<Wire>::deserialize(d)?;
        wire.into_iter()
            .map(|w| match w {
                Wire::Text(t) => Ok(AttrValue::Text(t)),
                Wire::Bytes { base64 } => STANDARD
                    .decode(base64.as_bytes())
                    .map(AttrValue::Bytes)
                    .map_err(|e| serde::de::Error::custom(format!("bad base64 value: {e}"))),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy as _;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    #[test]
    fn escrow_backoff_follows_the_product_schedule() {
        let cases: &[(u32, Option<i64>)] = &[
            (0, None),
            (1, None),
            (2, Some(60)),
            (3, Some(5 * 60)),
            (4, Some(30 * 60)),
            (5, Some(2 * 3600)),
            (6, Some(4 * 3600)),
            (7, Some(8 * 3600)),
            (8, Some(16 * 3600)),
            (9, Some(24 * 3600)),
            (10, Some(24 * 3600)),
            (u32::MAX, Some(24 * 3600)),
        ];
        for (attempts, secs) in cases {
            let want = match secs {
                None => Backoff::NextCycle,
                Some(s) => Backoff::After(SignedDuration::from_secs(*s)),
            };
            assert_eq!(escrow_backoff(*attempts), want, "attempts {attempts}");
        }
    }

    #[test]
    fn escrow_entries_count_attempts_and_keep_the_first_failure() {
        let failure = EscrowFailure {
            cloud_id: "c1".into(),
            source: SourceIdentity::default(),
            target: TargetIdentity::default(),
            error: Reason {
                code: crate::outcome::OutcomeCode::SchemaConstraint,
                message: "m".into(),
                recommended_action: "r".into(),
            },
        };
        let t0 = ts("2026-01-01T00:00:00Z");
        let first = EscrowEntry::after_failure(None, &failure, t0);
        assert_eq!(first.attempts, 1);
        assert_eq!(first.next_retry, t0, "first retry is the next cycle");
        assert!(first.is_due(t0));
        let t1 = ts("2026-01-01T00:01:00Z");
        let second = EscrowEntry::after_failure(Some(&first), &failure, t1);
        assert_eq!(second.attempts, 2);
        assert_eq!(second.first_failed_at, t0);
        assert_eq!(second.next_retry, ts("2026-01-01T00:02:00Z"));
        assert!(!second.is_due(t1));
        assert_eq!(
            escrow_next_retry(u32::MAX, Timestamp::MAX),
            Timestamp::MAX,
            "saturates"
        );
    }

    #[test]
    fn quarantine_backoff_follows_the_product_schedule() {
        let mins: Vec<i64> = (1..=7)
            .map(|n| quarantine_backoff(n).as_secs() / 60)
            .collect();
        assert_eq!(mins, vec![1, 5, 15, 60, 360, 360, 360]);
    }

    #[test]
    fn watermark_stops_at_the_earliest_unfinished_mailbox() {
        let floor = ts("2026-01-01T00:00:00Z");
        let mut t = WatermarkTracker::new(floor);
        assert_eq!(t.safe_changed_since(), floor);
        t.seen("a", ts("2026-01-01T00:00:10Z"));
        t.seen("b", ts("2026-01-01T00:00:05Z"));
        t.seen("c", ts("2026-01-01T00:00:20Z"));
        assert_eq!(t.safe_changed_since(), ts("2026-01-01T00:00:05Z"));
        t.durable("a");
        t.durable("c");
        assert_eq!(
            t.safe_changed_since(),
            ts("2026-01-01T00:00:05Z"),
            "b is not durable: the watermark may not pass it"
        );
        t.durable("b");
        assert_eq!(t.pending(), 0);
        assert_eq!(t.safe_changed_since(), ts("2026-01-01T00:00:20Z"));
        // Two mailboxes at the same instant: one durable is not enough.
        t.seen("d", ts("2026-01-01T00:00:30Z"));
        t.seen("e", ts("2026-01-01T00:00:30Z"));
        t.durable("d");
        assert_eq!(t.safe_changed_since(), ts("2026-01-01T00:00:30Z"));
        t.seen("f", ts("2026-01-01T00:00:25Z"));
        assert_eq!(t.safe_changed_since(), ts("2026-01-01T00:00:25Z"));
        // Instants before the floor never pull the watermark back.
        let mut late = WatermarkTracker::new(floor);
        late.seen("old", ts("2025-12-31T23:59:00Z"));
        assert_eq!(late.safe_changed_since(), floor);
        let wm = t.watermark(CycleId(3), SignedDuration::from_secs(60));
        assert_eq!(
            wm.query_from(),
            ts("2026-01-01T00:00:25Z") - SignedDuration::from_secs(60)
        );
    }

    #[test]
    fn a_mailbox_seen_twice_keeps_the_earlier_instant() {
        let mut t = WatermarkTracker::new(ts("2026-01-01T00:00:00Z"));
        t.seen("a", ts("2026-01-01T00:00:10Z"));
        t.seen("a", ts("2026-01-01T00:00:40Z"));
        t.seen("a", ts("2026-01-01T00:00:05Z"));
        assert_eq!(t.pending(), 1);
        assert_eq!(t.safe_changed_since(), ts("2026-01-01T00:00:05Z"));
        t.durable("a");
        assert_eq!(t.safe_changed_since(), ts("2026-01-01T00:00:40Z"));
    }

    #[test]
    fn log_entries_round_trip_through_json_with_bytes_exact() {
        let entry = ProvisioningLogEntry {
            id: LogEntryId(Uuid::from_u128(7)),
            cycle: CycleId(2),
            time: ts("2026-01-01T00:00:00.123456789Z"),
            duration: SignedDuration::from_millis(12),
            source: SourceIdentity {
                external_directory_object_id: Some("e1".into()),
                primary_smtp_address: Some("a@contoso.com".into()),
            },
            target: TargetIdentity {
                dn: Some("CN=A,DC=x".into()),
                object_guid: Some(Uuid::from_u128(9)),
            },
            action: Action::Update,
            status: LogStatus::Success,
            reason: None,
            steps: Steps {
                import: Step {
                    status: StepStatus::Success,
                    details: "read".into(),
                },
                scoping: Step::not_reached(),
                matching: Step::not_reached(),
                export: Step::not_reached(),
            },
            modified: vec![ModifiedProperty {
                attribute: "msExchSafeSendersHash".into(),
                old: vec![AttrValue::Bytes(vec![0, 255, 10, 13])],
                new: vec![AttrValue::Text("{\"base64\":\"x\"}".into())],
            }],
        };
        let json = serde_json::to_string(&entry).expect("serialize");
        let back: ProvisioningLogEntry = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, entry);
        assert!(json.contains("\"status\":\"success\""), "{json}");
    }

    proptest::proptest! {
        #[test]
        fn attr_values_round_trip_exactly_through_json(
            values in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::collection::vec(proptest::num::u8::ANY, 0..40).prop_map(AttrValue::Bytes),
                    ".{0,20}".prop_map(AttrValue::Text),
                ],
                0..6,
            )
        ) {
            let record = ModifiedProperty { attribute: "a".into(), old: values.clone(), new: vec![] };
            let json = serde_json::to_string(&record).expect("serialize");
            let back: ModifiedProperty = serde_json::from_str(&json).expect("deserialize");
            proptest::prop_assert_eq!(back.old, values);
        }
    }

    #[test]
    fn names_parse_back() {
        for k in CycleKind::ALL {
            assert_eq!(CycleKind::from_name(k.as_str()), Some(k));
        }
        for s in LogStatus::ALL {
            assert_eq!(LogStatus::from_name(&s.as_str().to_uppercase()), Some(s));
        }
        assert_eq!(LogStatus::from_name("ok"), None);
        assert_eq!(
            RestartScope::from_name("Escrow"),
            Some(RestartScope::Escrow)
        );
        assert_eq!(RestartScope::from_name("all"), None);
    }
}
