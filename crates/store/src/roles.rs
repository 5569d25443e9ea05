//! The store's roles: one narrow trait each, composed into [`crate::Store`].

use exo_writeback_core::provisioning::{
    CycleCounts, CycleId, CycleKind, CycleRecord, CycleStatus, EscrowEntry, JobState, Join,
    JoinUpdate, JournalRecord, LogEntryId, ObjectOutcome, ObjectRef, Pause, Pin, PinCount,
    ProvisioningLogEntry, RestartScope, StagedCycle, StagedPlan, Watermark,
};
use jiff::Timestamp;
use uuid::Uuid;

use crate::{LogQuery, PurgeReport, RestartReport, Result, SchemaSnapshot, WriteIntent};

/// The job state and the watermark.
pub trait JobStore {
    /// The job state (`NotRun` on a fresh store).
    fn job_state(&self) -> Result<JobState>;
    fn set_job_state(&mut self, state: &JobState) -> Result<()>;
    /// The watermark, or `None` when the next cycle must be an initial one.
    fn watermark(&self) -> Result<Option<Watermark>>;
    /// Stores the watermark. Call only after the outcomes it covers are recorded.
    fn set_watermark(&mut self, watermark: &Watermark) -> Result<()>;
}

/// The cycles: begun, finished, listed.
pub trait CycleStore {
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
    /// The latest cycle of one of these kinds (`completed`: only one that ended `Completed`).
    fn last_cycle_of(&self, kinds: &[CycleKind], completed: bool) -> Result<Option<CycleRecord>>;
    /// Marks cycles still `Running` as `Interrupted` (call once at agent start, before the
    /// first new cycle). Returns how many there were.
    fn interrupt_running_cycles(&mut self, at: Timestamp) -> Result<u64>;
}

/// Objects' outcomes (log entry, journal, join, escrow in one transaction) and the write-ahead
/// intents of the modifies being sent.
pub trait OutcomeStore {
    /// Stores one object's outcome — log entry, journal, join and escrow change — in one
    /// transaction with `synchronous=FULL`: when this returns `Ok`, all of it is on disk; when
    /// it returns an error, none of it is stored.
    fn record_outcome(&mut self, outcome: &ObjectOutcome) -> Result<()> {
        self.record_outcomes(std::slice::from_ref(outcome))
    }
    /// Like [`OutcomeStore::record_outcome`] for many objects in one transaction (all or nothing):
    /// much faster per object. On error, the engine may retry the objects one by one to find
    /// the bad one.
    fn record_outcomes(&mut self, outcomes: &[ObjectOutcome]) -> Result<()>;
    /// Like [`OutcomeStore::record_outcomes`], and in the same transaction, after the outcomes, stores
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

    /// Stores the intents of a batch in one transaction (all or nothing). Call before sending
    /// the first modify of the batch.
    fn record_intents(&mut self, intents: &[WriteIntent]) -> Result<()>;
    /// Like [`OutcomeStore::record_outcomes`], and in the same transaction deletes the intents with
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
    /// A [`LogRecorder`] on a connection of its own, to record outcomes beside this store's
    /// own reads and writes (a full reconcile records the mailboxes its scan finds in sync
    /// while the scan runs); `None` when the backend has none — the outcomes are then
    /// recorded with the others, as before.
    fn log_recorder(&self) -> Result<Option<Box<dyn LogRecorder>>> {
        Ok(None)
    }
}

/// Records outcomes that change no join (an object found in sync: its log entry, and the
/// clearing of an escrow entry it may have had) on a connection of its own, from another
/// thread, while the store's own connection goes on reading and writing.
pub trait LogRecorder: Send {
    /// Stores these outcomes in one transaction, as [`OutcomeStore::record_outcomes`] would:
    /// all of them durable when this returns `Ok`, none when it returns an error. An outcome
    /// that changes a join is refused (nothing stored): the store's own connection keeps the
    /// joins.
    fn record(&mut self, outcomes: &[ObjectOutcome]) -> Result<()>;
    /// No more outcomes: what the store would do with the recorded ones when their cycle
    /// finishes and can do now (SQLite: merge their identity keys) is done.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// What a [`LogRecorder`] checks before it stores anything: every outcome keeps its join.
/// `path` names the state in the error.
pub fn changes_no_join(path: &std::path::Path, outcomes: &[ObjectOutcome]) -> Result<()> {
    match outcomes.iter().find(|o| o.join != JoinUpdate::Keep) {
        None => Ok(()),
        Some(o) => Err(crate::StoreError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "the log recorder was given an outcome that changes a join (log entry {}); \
                 joins are recorded on the store's own connection",
                o.log.id.0
            ),
        }),
    }
}

/// Joins between cloud ids and AD objects.
pub trait JoinStore {
    fn join(&self, cloud_id: &str) -> Result<Option<Join>>;
    /// Joins ordered by cloud id, the first `limit` after `after` (keyset paging for large
    /// tenants).
    fn joins(&self, after: Option<&str>, limit: usize) -> Result<Vec<Join>>;
    /// Removes a join; `false` if there was none.
    fn remove_join(&mut self, cloud_id: &str) -> Result<bool>;
}

/// Escrow: objects that failed, retried with back-off.
pub trait EscrowStore {
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
}

/// Changes staged by the change threshold, waiting for `approve`.
pub trait StagingStore {
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
    /// plans in memory: for large cycles use [`StagingStore::staged_plans`]).
    fn staged_changes(&self, cycle: CycleId) -> Result<Option<StagedCycle>>;
    /// At most `limit` staged plans of a cycle, skipping the first `from`, in staging order.
    fn staged_plans(&self, cycle: CycleId, from: usize, limit: usize) -> Result<Vec<StagedPlan>>;
    /// How many plans a cycle has staged.
    fn staged_count(&self, cycle: CycleId) -> Result<u64>;
    /// The held cycles whose changes still wait for approval, oldest first (plans omitted:
    /// read them with [`StagingStore::staged_changes`]).
    fn pending_staged_cycles(&self) -> Result<Vec<CycleId>>;
    /// Marks a held cycle's changes approved and applied by cycle `by`. Error if the cycle has
    /// no staged changes or they were already approved or discarded.
    fn mark_staged_approved(&mut self, cycle: CycleId, by: CycleId, at: Timestamp) -> Result<()>;
    /// Marks a held cycle's changes rejected by `by` at `at` (logged in cycle `logged_in`),
    /// with the reason given. Error if the cycle has no staged changes or they were already
    /// approved, rejected or discarded.
    fn mark_staged_rejected(
        &mut self,
        cycle: CycleId,
        logged_in: CycleId,
        at: Timestamp,
        by: &str,
        reason: Option<&str>,
    ) -> Result<()>;
}

/// Log queries and the retention purge.
pub trait LogStore {
    /// Log entries matching the query, newest first.
    fn query_logs(&self, query: &LogQuery) -> Result<Vec<ProvisioningLogEntry>>;
    /// One log entry by its id.
    fn log_entry(&self, id: LogEntryId) -> Result<Option<ProvisioningLogEntry>>;
    /// Removes log entries and journal records older than `cutoff` (retention; see
    /// [`crate::DEFAULT_RETENTION`]).
    fn purge_older_than(&mut self, cutoff: Timestamp) -> Result<PurgeReport>;
}

/// The journal of previous values (what `undo` restores).
pub trait JournalStore {
    /// The journal records of one cycle, newest first (the order in which undo restores them).
    fn journal_for_cycle(&self, cycle: CycleId) -> Result<Vec<JournalRecord>>;
    /// The journal records of one object, newest first.
    fn journal_for_object(&self, object: &ObjectRef) -> Result<Vec<JournalRecord>>;
}

/// Pinned attributes (`exo-writeback undo` and `reject`; see `core::provisioning::Pin`). Pins
/// are set and released with an object's outcome ([`ObjectOutcome::pins`], through
/// [`OutcomeStore`]), in its transaction; this role reads them and releases them by hand.
pub trait PinStore {
    /// The pins of one object.
    fn pins_of(&self, object_guid: &Uuid) -> Result<Vec<Pin>>;
    /// Pins ordered by object and attribute, at most `limit`.
    fn pins(&self, limit: usize) -> Result<Vec<Pin>>;
    /// How many attributes on how many objects are pinned.
    fn pin_count(&self) -> Result<PinCount>;
    /// Releases the pins of one object (`None`: every pin), in one transaction; returns what
    /// was released.
    fn unpin(&mut self, object_guid: Option<&Uuid>) -> Result<PinCount>;
}

/// Pausing the job (`exo-writeback pause`, `resume`): kept beside the job state, which a pause
/// does not change.
pub trait PauseStore {
    /// The pause in effect, if any.
    fn pause(&self) -> Result<Option<Pause>>;
    /// Pauses the job (`Some`) or resumes it (`None`); returns the pause there was before.
    fn set_pause(&mut self, pause: Option<&Pause>) -> Result<Option<Pause>>;
}

/// `exo-writeback restart`.
pub trait RestartStore {
    /// `exo-writeback restart --scope …` on the stored state, in one transaction:
    /// - `Full`: clears watermark, joins, escrow, quarantine; discards pending staged changes;
    ///   job state `NotRun`. Logs, journal and cycle history stay.
    /// - `Watermark`: clears the watermark (next cycle is initial); job state unchanged.
    /// - `Escrow`: empties the escrow.
    /// - `Quarantine`: a `Quarantine` job state becomes `Active` (or `NotRun` when there is no
    ///   watermark); other states are unchanged.
    fn restart(&mut self, scope: RestartScope, at: Timestamp) -> Result<RestartReport>;
}

/// The AD schema kept between processes ([`SchemaSnapshot`]): one snapshot, replaced whole.
pub trait SchemaCacheStore {
    /// The snapshot kept, if any. An error when it cannot be decoded (the caller ignores it
    /// and reads the schema from AD).
    fn schema_snapshot(&self) -> Result<Option<SchemaSnapshot>>;
    /// Keeps `snapshot` instead of the one kept before.
    fn put_schema_snapshot(&mut self, snapshot: &SchemaSnapshot) -> Result<()>;
}
