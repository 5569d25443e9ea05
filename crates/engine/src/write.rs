//! Writing: one modify per object, in chunks behind write-ahead intents.

use exo_writeback_core::directory::ObjectModify;
use exo_writeback_core::provisioning::{
    CycleCounts, CycleId, EscrowFailure, EscrowUpdate, LogStatus, ObjectOutcome, Reason,
    StepStatus, WatermarkTracker,
};
use exo_writeback_store::WriteIntent;
use exo_writeback_store::prelude::*;
use jiff::Timestamp;
use uuid::Uuid;

use crate::ports::{Directory, DirectoryError, MailboxSource};

use crate::cycle::Work;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::evaluate::Disposition;
use crate::evaluate::Processed;
use crate::record::ldap_failure;
use crate::record::step;

/// How the write of one object went.
#[derive(Debug, Clone)]
pub enum WriteResult {
    /// Nothing to write (skip, failure before writing, in sync).
    NotNeeded,
    Written,
    Failed(DirectoryError),
    /// Dry run: would have been written.
    DryRun,
}

impl<S: MailboxSource, D: Directory, St: Store> Engine<S, D, St> {
    /// Write one processed object (if it has a plan). On a schema-like or connection error
    /// the cached schema is refreshed for the next object.
    pub(crate) async fn write(&self, p: &Processed) -> WriteResult {
        let Disposition::Write { plan, .. } = &p.disposition else {
            return WriteResult::NotNeeded;
        };
        let Some(modify) = &plan.modify else {
            return WriteResult::NotNeeded;
        };
        match self.directory.modify(modify).await {
            Ok(()) => WriteResult::Written,
            Err(e) => {
                if (e.suggests_schema_change() || e.is_unreachable())
                    && let Err(re) = self.directory.refresh_schema().await
                {
                    tracing::warn!(error = %re, "re-reading the AD schema failed");
                }
                WriteResult::Failed(e)
            }
        }
    }

    /// Commits the batch's outcomes and, in the same transaction, deletes the intents of the
    /// chunk just written; then the batch's objects are durable for the watermark.
    pub(crate) fn flush(
        &mut self,
        batch: &mut Vec<(String, ObjectOutcome)>,
        tracker: &mut WatermarkTracker,
    ) -> Result<(), EngineError> {
        if batch.is_empty() && self.intents_to_clear.is_empty() {
            return Ok(());
        }
        let outcomes: Vec<ObjectOutcome> = batch.iter().map(|(_, o)| o.clone()).collect();
        let intents = std::mem::take(&mut self.intents_to_clear);
        self.store
            .record_outcomes_clearing_intents(&outcomes, &intents)?;
        for o in &outcomes {
            if o.log.status == LogStatus::Failure
                && let Some(r) = &o.log.reason
            {
                *self.failure_causes.entry(r.code).or_default() += 1;
                self.failure_examples
                    .entry(r.code)
                    .or_insert_with(|| r.message.clone());
            }
        }
        for (id, _) in batch.drain(..) {
            tracker.durable(&id);
        }
        Ok(())
    }

    /// Queues one planned object for writing; a full queue is written as one chunk.
    pub(crate) async fn write_and_record(
        &mut self,
        p: Processed,
        w: &mut Work,
        cycle: CycleId,
        drift_before: Option<Timestamp>,
    ) -> Result<(), EngineError> {
        self.write_queue.push(p);
        if self.write_queue.len() >= self.options.batch.max(1)
            || w.batch.len() >= self.options.batch
        {
            self.write_queued(w, cycle, drift_before).await?;
        }
        Ok(())
    }

    /// Writes the queued objects as one chunk: their intents committed in one transaction
    /// (what each outcome will be if its modify succeeds), then one modify per object, then
    /// their outcomes committed with the deletion of the intents (in [`Engine::flush`]). A kill
    /// in between leaves the intents for the next cycle's reconciliation
    /// (`crate::intents::reconcile`). Returns `false` when a stop request left queued objects
    /// unwritten (they have no outcome, so the watermark stays before them).
    pub(crate) async fn write_queued(
        &mut self,
        w: &mut Work,
        cycle: CycleId,
        drift_before: Option<Timestamp>,
    ) -> Result<bool, EngineError> {
        let queue = std::mem::take(&mut self.write_queue);
        if self.cancelled() || self.ad_unreachable.is_some() {
            return Ok(queue.is_empty());
        }
        let mut intents = Vec::new();
        // The intent of each queued object (its id), in queue order.
        let mut intent_ids = Vec::new();
        for p in &queue {
            let mut id = None;
            if let Disposition::Write { plan, .. } = &p.disposition
                && plan.modify.is_some()
            {
                let success = self.outcome(p.clone(), cycle, WriteResult::Written, drift_before);
                if let Some(intent) = WriteIntent::from_success(&p.cloud_id, &success) {
                    id = Some(intent.id);
                    intents.push(intent);
                }
            }
            intent_ids.push(id);
        }
        self.store.record_intents(&intents)?;
        self.intents_to_clear
            .extend(intents.into_iter().map(|i| i.id));
        let mut all_written = true;
        for (p, intent) in queue.into_iter().zip(intent_ids) {
            if self.cancelled() {
                // Stop after the current object; the intents of the rest are deleted with the
                // outcomes of those written.
                all_written = false;
                break;
            }
            let mut result = self.write(&p).await;
            for &wait in &self.options.reconnect_waits {
                if !matches!(&result, WriteResult::Failed(e) if e.is_unreachable())
                    || self.cancelled()
                {
                    break;
                }
                tracing::warn!(cloud_id = %p.cloud_id, wait_ms = wait.as_millis() as u64, "AD cannot be reached; sending the modify again after a wait");
                tokio::time::sleep(wait).await;
                result = self.write(&p).await;
            }
            if let WriteResult::Failed(e) = &result
                && e.is_unreachable()
            {
                // AD is gone: stop writing. This object and the rest of the queue stay
                // pending (no outcome: the watermark stays before them). This object's
                // intent stays too: the modify may have reached AD before the connection
                // broke, and the next cycle's reconciliation logs it if it did.
                tracing::error!(cloud_id = %p.cloud_id, error = %e, "AD stayed unreachable; the cycle stops writing and the rest waits for the next cycle");
                if let Some(id) = intent {
                    self.intents_to_clear.retain(|i| *i != id);
                }
                self.ad_unreachable = Some(e.clone());
                all_written = false;
                break;
            }
            match &result {
                WriteResult::Written => w.counts.written += 1,
                WriteResult::Failed(e) => {
                    w.counts.failed += 1;
                    tracing::warn!(cloud_id = %p.cloud_id, dn = ?p.target.dn, error = %e, "write failed; the object goes to escrow");
                }
                _ => w.counts.failed += 1,
            }
            let id = p.cloud_id.clone();
            let outcome = self.outcome(p, cycle, result, drift_before);
            w.batch.push((id, outcome));
        }
        self.flush(&mut w.batch, &mut w.tracker)?;
        Ok(all_written)
    }

    /// Before anything else a cycle (or approve, undo, provision) does: forgets a previous
    /// cycle's unwritten queue and reconciles the intents a killed process left
    /// (`crate::intents`). Directory errors keep the intents and do not stop the caller.
    pub(crate) async fn reconcile_intents(
        &mut self,
        by: Option<CycleId>,
    ) -> Result<(), EngineError> {
        self.write_queue.clear();
        self.intents_to_clear.clear();
        crate::intents::reconcile(&self.directory, &mut self.store, by).await?;
        Ok(())
    }

    /// Writes one chunk of `approve` or `undo` behind write-ahead intents: the intents of the
    /// items with a modify committed in one transaction, the modifies sent in order, then the
    /// outcomes committed with the intents' deletion. Each item is `(cloud id, modify to send,
    /// outcome if it succeeds — or the final outcome when there is nothing to send)`. A failed
    /// modify turns its outcome into a Failure with nothing journaled (and, with
    /// `escrow_failures`, into escrow under its cloud id).
    pub(crate) async fn write_chunk(
        &mut self,
        items: Vec<(String, Option<ObjectModify>, ObjectOutcome)>,
        escrow_failures: bool,
        counts: &mut CycleCounts,
    ) -> Result<(), EngineError> {
        let intents: Vec<WriteIntent> = items
            .iter()
            .filter_map(|(cloud_id, modify, outcome)| {
                modify.as_ref()?;
                WriteIntent::from_success(cloud_id, outcome)
            })
            .collect();
        self.store.record_intents(&intents)?;
        let mut outcomes = Vec::new();
        for (cloud_id, modify, mut outcome) in items {
            let Some(modify) = modify else {
                outcomes.push(outcome);
                continue;
            };
            match self.directory.modify(&modify).await {
                Ok(()) => counts.written += 1,
                Err(e) => {
                    counts.failed += 1;
                    let d = ldap_failure(&e);
                    outcome.journal.clear();
                    outcome.log.steps.export = step(StepStatus::Failure, d.to_string());
                    outcome.log.status = LogStatus::Failure;
                    outcome.log.reason = Some(Reason::from(d.clone()));
                    if escrow_failures {
                        outcome.escrow = EscrowUpdate::Failed {
                            failure: EscrowFailure {
                                cloud_id,
                                source: outcome.log.source.clone(),
                                target: outcome.log.target.clone(),
                                error: Reason::from(d),
                            },
                            failed_at: Timestamp::now(),
                        };
                    }
                }
            }
            outcome.log.duration = Timestamp::now().duration_since(outcome.log.time);
            outcomes.push(outcome);
        }
        let ids: Vec<Uuid> = intents.iter().map(|i| i.id).collect();
        self.store
            .record_outcomes_clearing_intents(&outcomes, &ids)?;
        Ok(())
    }
}
