//! A boxed store is a store: the agent picks its backend (SQLite or PostgreSQL) from the
//! configuration at run time and hands the engine a `Box<dyn Store>`.

use exo_writeback_core::provisioning::{
    CycleCounts, CycleId, CycleKind, CycleRecord, CycleStatus, EscrowEntry, JobState, Join,
    JournalRecord, LogEntryId, ObjectOutcome, ObjectRef, Pause, Pin, PinCount,
    ProvisioningLogEntry, RestartScope, StagedCycle, StagedPlan, Watermark,
};
use jiff::Timestamp;
use uuid::Uuid;

use crate::{
    CycleStore, EscrowStore, JobStore, JoinStore, JournalStore, LogQuery, LogRecorder, LogStore,
    OutcomeStore, PauseStore, PinStore, PurgeReport, RestartReport, RestartStore, Result,
    SchemaCacheStore, SchemaSnapshot, StagingStore, Store, WriteIntent,
};

impl<T: JobStore + ?Sized> JobStore for Box<T> {
    fn job_state(&self) -> Result<JobState> {
        (**self).job_state()
    }
    fn set_job_state(&mut self, state: &JobState) -> Result<()> {
        (**self).set_job_state(state)
    }
    fn watermark(&self) -> Result<Option<Watermark>> {
        (**self).watermark()
    }
    fn set_watermark(&mut self, watermark: &Watermark) -> Result<()> {
        (**self).set_watermark(watermark)
    }
}

impl<T: CycleStore + ?Sized> CycleStore for Box<T> {
    fn begin_cycle(&mut self, kind: CycleKind, started_at: Timestamp) -> Result<CycleId> {
        (**self).begin_cycle(kind, started_at)
    }
    fn finish_cycle(
        &mut self,
        cycle: CycleId,
        finished_at: Timestamp,
        counts: &CycleCounts,
        status: &CycleStatus,
    ) -> Result<()> {
        (**self).finish_cycle(cycle, finished_at, counts, status)
    }
    fn cycle(&self, cycle: CycleId) -> Result<Option<CycleRecord>> {
        (**self).cycle(cycle)
    }
    fn recent_cycles(&self, limit: usize) -> Result<Vec<CycleRecord>> {
        (**self).recent_cycles(limit)
    }
    fn last_cycle_of(&self, kinds: &[CycleKind], completed: bool) -> Result<Option<CycleRecord>> {
        (**self).last_cycle_of(kinds, completed)
    }
    fn interrupt_running_cycles(&mut self, at: Timestamp) -> Result<u64> {
        (**self).interrupt_running_cycles(at)
    }
}

impl<T: OutcomeStore + ?Sized> OutcomeStore for Box<T> {
    fn record_outcome(&mut self, outcome: &ObjectOutcome) -> Result<()> {
        (**self).record_outcome(outcome)
    }
    fn record_outcomes(&mut self, outcomes: &[ObjectOutcome]) -> Result<()> {
        (**self).record_outcomes(outcomes)
    }
    fn record_outcomes_then_watermark(
        &mut self,
        outcomes: &[ObjectOutcome],
        watermark: Option<&Watermark>,
    ) -> Result<()> {
        (**self).record_outcomes_then_watermark(outcomes, watermark)
    }
    fn record_intents(&mut self, intents: &[WriteIntent]) -> Result<()> {
        (**self).record_intents(intents)
    }
    fn record_outcomes_clearing_intents(
        &mut self,
        outcomes: &[ObjectOutcome],
        intents: &[Uuid],
    ) -> Result<()> {
        (**self).record_outcomes_clearing_intents(outcomes, intents)
    }
    fn intents(&self) -> Result<Vec<WriteIntent>> {
        (**self).intents()
    }
    fn delete_intents(&mut self, ids: &[Uuid]) -> Result<u64> {
        (**self).delete_intents(ids)
    }
    fn log_recorder(&self) -> Result<Option<Box<dyn LogRecorder>>> {
        (**self).log_recorder()
    }
}

impl<T: JoinStore + ?Sized> JoinStore for Box<T> {
    fn join(&self, cloud_id: &str) -> Result<Option<Join>> {
        (**self).join(cloud_id)
    }
    fn joins(&self, after: Option<&str>, limit: usize) -> Result<Vec<Join>> {
        (**self).joins(after, limit)
    }
    fn remove_join(&mut self, cloud_id: &str) -> Result<bool> {
        (**self).remove_join(cloud_id)
    }
}

impl<T: EscrowStore + ?Sized> EscrowStore for Box<T> {
    fn escrow_due(&self, now: Timestamp, limit: usize) -> Result<Vec<EscrowEntry>> {
        (**self).escrow_due(now, limit)
    }
    fn escrow(&self) -> Result<Vec<EscrowEntry>> {
        (**self).escrow()
    }
    fn escrow_entry(&self, cloud_id: &str) -> Result<Option<EscrowEntry>> {
        (**self).escrow_entry(cloud_id)
    }
    fn escrow_count(&self) -> Result<u64> {
        (**self).escrow_count()
    }
    fn clear_escrow(&mut self, cloud_id: &str) -> Result<bool> {
        (**self).clear_escrow(cloud_id)
    }
    fn clear_all_escrow(&mut self) -> Result<u64> {
        (**self).clear_all_escrow()
    }
}

impl<T: StagingStore + ?Sized> StagingStore for Box<T> {
    fn stage_changes(
        &mut self,
        cycle: CycleId,
        staged_at: Timestamp,
        plans: &[StagedPlan],
    ) -> Result<()> {
        (**self).stage_changes(cycle, staged_at, plans)
    }
    fn staged_changes(&self, cycle: CycleId) -> Result<Option<StagedCycle>> {
        (**self).staged_changes(cycle)
    }
    fn staged_plans(&self, cycle: CycleId, from: usize, limit: usize) -> Result<Vec<StagedPlan>> {
        (**self).staged_plans(cycle, from, limit)
    }
    fn staged_count(&self, cycle: CycleId) -> Result<u64> {
        (**self).staged_count(cycle)
    }
    fn pending_staged_cycles(&self) -> Result<Vec<CycleId>> {
        (**self).pending_staged_cycles()
    }
    fn mark_staged_approved(&mut self, cycle: CycleId, by: CycleId, at: Timestamp) -> Result<()> {
        (**self).mark_staged_approved(cycle, by, at)
    }
    fn mark_staged_rejected(
        &mut self,
        cycle: CycleId,
        logged_in: CycleId,
        at: Timestamp,
        by: &str,
        reason: Option<&str>,
    ) -> Result<()> {
        (**self).mark_staged_rejected(cycle, logged_in, at, by, reason)
    }
}

impl<T: LogStore + ?Sized> LogStore for Box<T> {
    fn query_logs(&self, query: &LogQuery) -> Result<Vec<ProvisioningLogEntry>> {
        (**self).query_logs(query)
    }
    fn log_entry(&self, id: LogEntryId) -> Result<Option<ProvisioningLogEntry>> {
        (**self).log_entry(id)
    }
    fn purge_older_than(&mut self, cutoff: Timestamp) -> Result<PurgeReport> {
        (**self).purge_older_than(cutoff)
    }
}

impl<T: JournalStore + ?Sized> JournalStore for Box<T> {
    fn journal_for_cycle(&self, cycle: CycleId) -> Result<Vec<JournalRecord>> {
        (**self).journal_for_cycle(cycle)
    }
    fn journal_for_object(&self, object: &ObjectRef) -> Result<Vec<JournalRecord>> {
        (**self).journal_for_object(object)
    }
}

impl<T: PinStore + ?Sized> PinStore for Box<T> {
    fn pins_of(&self, object_guid: &Uuid) -> Result<Vec<Pin>> {
        (**self).pins_of(object_guid)
    }
    fn pins(&self, limit: usize) -> Result<Vec<Pin>> {
        (**self).pins(limit)
    }
    fn pin_count(&self) -> Result<PinCount> {
        (**self).pin_count()
    }
    fn unpin(&mut self, object_guid: Option<&Uuid>) -> Result<PinCount> {
        (**self).unpin(object_guid)
    }
}

impl<T: PauseStore + ?Sized> PauseStore for Box<T> {
    fn pause(&self) -> Result<Option<Pause>> {
        (**self).pause()
    }
    fn set_pause(&mut self, pause: Option<&Pause>) -> Result<Option<Pause>> {
        (**self).set_pause(pause)
    }
}

impl<T: RestartStore + ?Sized> RestartStore for Box<T> {
    fn restart(&mut self, scope: RestartScope, at: Timestamp) -> Result<RestartReport> {
        (**self).restart(scope, at)
    }
}

impl<T: SchemaCacheStore + ?Sized> SchemaCacheStore for Box<T> {
    fn schema_snapshot(&self) -> Result<Option<SchemaSnapshot>> {
        (**self).schema_snapshot()
    }
    fn put_schema_snapshot(&mut self, snapshot: &SchemaSnapshot) -> Result<()> {
        (**self).put_schema_snapshot(snapshot)
    }
}

impl<T: Store + ?Sized> Store for Box<T> {}
