//! Durable state of the writeback agent: job state, watermark, cycle history, provisioning
//! logs, the journal (for undo), joins, escrow and changes staged by the change threshold.
//!
//! The engine talks to the [`Store`] trait; a backend implements it. The embedded SQLite backend
//! (`SqliteStore`: one file, `state.db` in the configured `state_dir`, WAL mode,
//! `synchronous=FULL`) lives in `exo-writeback-store-sqlite`, so this crate, and the engine
//! above it, link no database.
//!
//! # How the engine uses it
//!
//! ```text
//! store.interrupt_running_cycles(now)?;                 // once, at agent start
//! let cycle = store.begin_cycle(CycleKind::Delta, now)?;
//! let mut tracker = WatermarkTracker::new(previous.changed_since);
//! for batch in changed_mailboxes.chunks(500) {
//!     for m in batch { tracker.seen(&m.id, m.when_changed); }
//!     let outcomes: Vec<ObjectOutcome> = batch.iter().map(plan_and_write).collect();
//!     for m in batch { tracker.durable(&m.id); }
//!     // outcomes and watermark in one transaction: durable together, or neither
//!     if store.record_outcomes_then_watermark(&outcomes, Some(&tracker.watermark(cycle, overlap))).is_err() {
//!         for m in batch { tracker.seen(&m.id, m.when_changed); }   // not durable after all
//!         /* retry one by one with record_outcome, or stop the cycle */
//!     }
//! }
//! store.finish_cycle(cycle, now, &counts, &CycleStatus::Completed)?;
//! ```
//!
//! Per-object use (`record_outcome`, then `set_watermark`) is equally safe, only slower: every
//! commit waits for the disk (`synchronous=FULL`).
//!
//! Writes to AD go through write-ahead intents ([`WriteIntent`]) so a process killed between a
//! modify and the commit of its outcome loses no audit record:
//!
//! ```text
//! store.record_intents(&intents_of(chunk))?;              // one transaction per chunk
//! for object in chunk { directory.modify(object) }        // one LDAP modify per object
//! store.record_outcomes_clearing_intents(&outcomes, &intent_ids)?;   // one transaction
//! // at the start of the next cycle: store.intents()? — leftovers of a killed process
//! ```
//!
//! The API is blocking (SQLite): from async code call it on a dedicated thread or with
//! `tokio::task::spawn_blocking`. One writer per state file; readers in other processes
//! (`exo-writeback status`, `logs`) work while the agent runs.
//!
//! Architecture invariant: the store knows nothing of LDAP or Exchange Online; it persists the
//! core's `provisioning` types and never interprets staged plans (opaque JSON).

mod error;

pub use error::{Result, StoreError};

use exo_writeback_core::directory::AttrValue;
use exo_writeback_core::provisioning::{
    CycleCounts, CycleId, CycleKind, CycleRecord, CycleStatus, EscrowEntry, EscrowUpdate, JobState,
    Join, JoinUpdate, JournalRecord, LogStatus, ObjectOutcome, ObjectRef, ProvisioningLogEntry,
    RestartScope, StagedCycle, StagedPlan, Watermark,
};
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

/// How long provisioning logs and journal records are kept by default.
pub const DEFAULT_RETENTION: SignedDuration = SignedDuration::from_hours(30 * 24);

/// Filters for [`Store::query_logs`]. All filters are AND-ed; `None` means "any".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// Any of these statuses (empty: any status).
    pub statuses: Vec<LogStatus>,
    /// Matches the source ExternalDirectoryObjectId (with or without `User_`), the primary
    /// SMTP address, the target DN or the target objectGUID; case-insensitive, exact.
    pub identity: Option<String>,
    pub cycle: Option<CycleId>,
    /// Entries at or after this instant.
    pub since: Option<Timestamp>,
    /// At most this many entries (newest first).
    pub limit: usize,
}

impl Default for LogQuery {
    fn default() -> Self {
        LogQuery {
            statuses: Vec::new(),
            identity: None,
            cycle: None,
            since: None,
            limit: 100,
        }
    }
}

/// What a retention purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub log_entries: u64,
    pub journal_records: u64,
}

/// What a restart changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestartReport {
    pub watermark_cleared: bool,
    pub joins_removed: u64,
    pub escrow_removed: u64,
    pub staged_cycles_discarded: u64,
    /// The job state after the restart.
    pub job_state: JobState,
}

/// A modify the engine is about to send, recorded before it is sent (write-ahead), with the
/// outcome the engine records if it succeeds.
///
/// The engine records the intents of a batch in one transaction before the batch's first
/// modify, and deletes them in the transaction that records the batch's outcomes
/// ([`Store::record_outcomes_clearing_intents`]). An intent still stored when a cycle starts was
/// left by a process that stopped (kill -9, power loss) between a modify and the commit of its
/// outcome: the next cycle reads the object and, if it holds the planned values, records
/// [`WriteIntent::log`] and [`WriteIntent::journal`] — the change is logged once, as applied,
/// and `undo` can restore it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WriteIntent {
    /// Unique per intent (the id of [`WriteIntent::log`]).
    pub id: Uuid,
    /// The cycle that planned (and possibly sent) the modify.
    pub cycle: CycleId,
    /// The mailbox (ExternalDirectoryObjectId, or the engine's fallback id).
    pub cloud_id: String,
    pub object_guid: Uuid,
    pub dn: String,
    /// The log entry the cycle records when the modify succeeds.
    pub log: ProvisioningLogEntry,
    /// The journal recorded with it: per attribute of the modify, the values before
    /// (`previous`, what `undo` restores) and after (`new`: what the attribute holds once the
    /// modify is applied — the planned modify, see [`WriteIntent::planned`]).
    pub journal: Vec<JournalRecord>,
    /// The join recorded with it, if the cycle sets one.
    pub join: Option<Join>,
}

impl WriteIntent {
    /// The intent of a successful outcome: `None` when the outcome has no journal (nothing is
    /// written) or no target objectGUID.
    pub fn from_success(cloud_id: &str, outcome: &ObjectOutcome) -> Option<WriteIntent> {
        let object_guid = outcome.log.target.object_guid?;
        if outcome.journal.is_empty() {
            return None;
        }
        Some(WriteIntent {
            id: outcome.log.id.0,
            cycle: outcome.log.cycle,
            cloud_id: cloud_id.to_string(),
            object_guid,
            dn: outcome.log.target.dn.clone().unwrap_or_default(),
            log: outcome.log.clone(),
            journal: outcome.journal.clone(),
            join: match &outcome.join {
                JoinUpdate::Set(j) => Some(j.clone()),
                _ => None,
            },
        })
    }

    /// The planned modify: attribute → the values it holds once the modify is applied.
    pub fn planned(&self) -> impl Iterator<Item = (&str, &[AttrValue])> {
        self.journal
            .iter()
            .map(|j| (j.attribute.as_str(), j.new.as_slice()))
    }

    /// The outcome the normal path would have recorded: the log entry, its journal and join;
    /// the escrow is left as it is (a later cycle may have escrowed the object since).
    pub fn into_outcome(self) -> ObjectOutcome {
        ObjectOutcome {
            log: self.log,
            journal: self.journal,
            join: self.join.map_or(JoinUpdate::Keep, JoinUpdate::Set),
            escrow: EscrowUpdate::Keep,
        }
    }
}

/// The durable state of the agent. Writes take `&mut self`; each write is one transaction.
///
/// Every method returns [`StoreError`] with the database path and what to do.
pub trait Store: Send {
    // --- job state and watermark -------------------------------------------------------------

    /// The job state (`NotRun` on a fresh store).
    fn job_state(&self) -> Result<JobState>;
    fn set_job_state(&mut self, state: &JobState) -> Result<()>;
    /// The watermark, or `None` when the next cycle must be an initial one.
    fn watermark(&self) -> Result<Option<Watermark>>;
    /// Stores the watermark. Call only after the outcomes it covers are recorded.
    fn set_watermark(&mut self, watermark: &Watermark) -> Result<()>;

    // --- cycles ------------------------------------------------------------------------------

    /// Starts a cycle (status `Running`) and returns its id (increasing).
    fn begin_cycle(&mut self, kind: CycleKind, started_at: Timestamp) -> Result<CycleId>;
    /// Ends a cycle with its counts and status. Error if the cycle does not exist.
    fn finish_cycle(
        &mut self,
        cycle: CycleId,
        finished_at: Timestamp,
        counts: &CycleCounts,
        status: &CycleStatus,
    ) -> Result<()>;
    fn cycle(&self, cycle: CycleId) -> Result<Option<CycleRecord>>;
    /// The latest cycles, newest first.
    fn recent_cycles(&self, limit: usize) -> Result<Vec<CycleRecord>>;
    /// Marks cycles still `Running` as `Interrupted` (call once at agent start, before the
    /// first new cycle). Returns how many there were.
    fn interrupt_running_cycles(&mut self, at: Timestamp) -> Result<u64>;

    // --- outcomes ----------------------------------------------------------------------------

    /// Stores one object's outcome — log entry, journal, join and escrow change — in one
    /// transaction with `synchronous=FULL`: when this returns `Ok`, all of it is on disk; when
    /// it returns an error, none of it is stored.
    fn record_outcome(&mut self, outcome: &ObjectOutcome) -> Result<()> {
        self.record_outcomes(std::slice::from_ref(outcome))
    }
    /// Like [`Store::record_outcome`] for many objects in one transaction (all or nothing):
    /// much faster per object. On error, the engine may retry the objects one by one to find
    /// the bad one.
    fn record_outcomes(&mut self, outcomes: &[ObjectOutcome]) -> Result<()>;
    /// Like [`Store::record_outcomes`], and in the same transaction, after the outcomes, stores
    /// the watermark: one commit (one fsync) per batch instead of two. The watermark may cover
    /// these outcomes and earlier durable ones, nothing else (compute it with a
    /// [`WatermarkTracker`] after marking this batch durable). On error nothing is stored,
    /// neither outcomes nor watermark: the engine must not keep that tracker state.
    ///
    /// [`WatermarkTracker`]: exo_writeback_core::provisioning::WatermarkTracker
    fn record_outcomes_then_watermark(
        &mut self,
        outcomes: &[ObjectOutcome],
        watermark: Option<&Watermark>,
    ) -> Result<()>;

    // --- write-ahead intents -----------------------------------------------------------------

    /// Stores the intents of a batch in one transaction (all or nothing). Call before sending
    /// the first modify of the batch.
    fn record_intents(&mut self, intents: &[WriteIntent]) -> Result<()>;
    /// Like [`Store::record_outcomes`], and in the same transaction deletes the intents with
    /// these ids (the batch's: those whose outcome is among `outcomes`, and those whose modify
    /// was not sent). Unknown ids are ignored. On error nothing is stored or deleted.
    fn record_outcomes_clearing_intents(
        &mut self,
        outcomes: &[ObjectOutcome],
        intents: &[Uuid],
    ) -> Result<()>;
    /// The intents still stored (left by a process that stopped mid-batch), oldest first.
    fn intents(&self) -> Result<Vec<WriteIntent>>;
    /// Deletes intents by id; returns how many there were.
    fn delete_intents(&mut self, ids: &[Uuid]) -> Result<u64>;

    // --- joins -------------------------------------------------------------------------------

    fn join(&self, cloud_id: &str) -> Result<Option<Join>>;
    /// Joins ordered by cloud id, the first `limit` after `after` (keyset paging for large
    /// tenants).
    fn joins(&self, after: Option<&str>, limit: usize) -> Result<Vec<Join>>;
    /// Removes a join; `false` if there was none.
    fn remove_join(&mut self, cloud_id: &str) -> Result<bool>;

    // --- escrow ------------------------------------------------------------------------------

    /// Escrow entries due at `now` (`next_retry <= now`), earliest first, at most `limit`.
    fn escrow_due(&self, now: Timestamp, limit: usize) -> Result<Vec<EscrowEntry>>;
    /// Every escrow entry, earliest retry first.
    fn escrow(&self) -> Result<Vec<EscrowEntry>>;
    fn escrow_entry(&self, cloud_id: &str) -> Result<Option<EscrowEntry>>;
    fn escrow_count(&self) -> Result<u64>;
    /// Removes one entry; `false` if there was none.
    fn clear_escrow(&mut self, cloud_id: &str) -> Result<bool>;
    /// Empties the escrow (`restart --scope escrow`); returns how many entries there were.
    fn clear_all_escrow(&mut self) -> Result<u64>;

    // --- staged changes (change threshold) ---------------------------------------------------

    /// Stores plans a held cycle would have written (decision `Pending`). May be called several
    /// times for one cycle to stage in chunks (bounded memory); plans keep the order they were
    /// staged in. Error if the cycle does not exist, or its changes were already approved or
    /// discarded. Each call is one transaction.
    fn stage_changes(
        &mut self,
        cycle: CycleId,
        staged_at: Timestamp,
        plans: &[StagedPlan],
    ) -> Result<()>;
    /// The staged changes of a cycle, with its decision, in the order they were staged (all
    /// plans in memory: for large cycles use [`Store::staged_plans`]).
    fn staged_changes(&self, cycle: CycleId) -> Result<Option<StagedCycle>>;
    /// At most `limit` staged plans of a cycle, skipping the first `from`, in staging order.
    fn staged_plans(&self, cycle: CycleId, from: usize, limit: usize) -> Result<Vec<StagedPlan>>;
    /// How many plans a cycle has staged.
    fn staged_count(&self, cycle: CycleId) -> Result<u64>;
    /// The held cycles whose changes still wait for approval, oldest first (plans omitted:
    /// read them with [`Store::staged_changes`]).
    fn pending_staged_cycles(&self) -> Result<Vec<CycleId>>;
    /// Marks a held cycle's changes approved and applied by cycle `by`. Error if the cycle has
    /// no staged changes or they were already approved or discarded.
    fn mark_staged_approved(&mut self, cycle: CycleId, by: CycleId, at: Timestamp) -> Result<()>;

    // --- provisioning logs -------------------------------------------------------------------

    /// Log entries matching the query, newest first.
    fn query_logs(&self, query: &LogQuery) -> Result<Vec<ProvisioningLogEntry>>;
    /// Removes log entries and journal records older than `cutoff` (retention; see
    /// [`DEFAULT_RETENTION`]).
    fn purge_older_than(&mut self, cutoff: Timestamp) -> Result<PurgeReport>;

    // --- journal -----------------------------------------------------------------------------

    /// The journal records of one cycle, newest first (the order in which undo restores them).
    fn journal_for_cycle(&self, cycle: CycleId) -> Result<Vec<JournalRecord>>;
    /// The journal records of one object, newest first.
    fn journal_for_object(&self, object: &ObjectRef) -> Result<Vec<JournalRecord>>;

    // --- restart -----------------------------------------------------------------------------

    /// `exo-writeback restart --scope …` on the stored state, in one transaction:
    /// - `Full`: clears watermark, joins, escrow, quarantine; discards pending staged changes;
    ///   job state `NotRun`. Logs, journal and cycle history stay.
    /// - `Watermark`: clears the watermark (next cycle is initial); job state unchanged.
    /// - `Escrow`: empties the escrow.
    /// - `Quarantine`: a `Quarantine` job state becomes `Active` (or `NotRun` when there is no
    ///   watermark); other states are unchanged.
    fn restart(&mut self, scope: RestartScope, at: Timestamp) -> Result<RestartReport>;
}
