//! One cycle: import → scope → match → plan → guard → threshold → write → record →
//! watermark.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use exo_writeback_core::mailbox::Mailbox;
use exo_writeback_core::outcome::OutcomeCode;
use exo_writeback_core::provisioning::{
    CycleCounts, CycleId, CycleKind, CycleStatus, JobState, ObjectOutcome, Watermark,
    WatermarkTracker,
};
use exo_writeback_core::schema::Schema;
use exo_writeback_store::prelude::*;
use futures::StreamExt;
use jiff::Timestamp;

use crate::ports::{Directory, MailboxSource, SourceError};
use crate::spill::Spill;
use crate::staged::StagedObject;

use crate::engine::Engine;
use crate::error::EngineError;
use crate::evaluate::Disposition;
use crate::evaluate::Processed;
use crate::evaluate::cloud_id;
use crate::options::CycleMode;
use crate::options::Progress;
use crate::record::unreadable_outcome;
use crate::write::WriteResult;

/// What a cycle did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleReport {
    pub cycle: CycleId,
    pub kind: CycleKind,
    pub counts: CycleCounts,
    pub status: CycleStatus,
    /// The watermark stored at the end (`None`: not advanced).
    pub watermark: Option<Watermark>,
    /// Objects whose plans remove values (the threshold's count).
    pub removing: u64,
    /// Failed objects by outcome code (`LdapError`, `SchemaConstraint` …).
    pub failure_causes: BTreeMap<OutcomeCode, u64>,
}

/// Resolves once `flag` is set (polled; cancellation is rare and coarse).
pub(crate) async fn wait_for(flag: Arc<AtomicBool>) {
    while !flag.load(Ordering::SeqCst) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The state of a running cycle.
pub(crate) struct Work {
    pub(crate) seen: HashSet<String>,
    pub(crate) tracker: WatermarkTracker,
    pub(crate) counts: CycleCounts,
    pub(crate) batch: Vec<(String, ObjectOutcome)>,
    /// Planned objects waiting for the threshold decision.
    pub(crate) to_write: Vec<Processed>,
    /// Plans beyond `max_plans_in_memory`, in a temporary file until the threshold decision
    /// (memory stays bounded; nothing is read or planned twice).
    pub(crate) spill: Option<Spill>,
    /// Objects whose plans remove values (the threshold's count).
    pub(crate) removing: u64,
}

impl<S: MailboxSource, D: Directory, St: Store> Engine<S, D, St> {
    pub(crate) fn next_kind(
        &self,
        mode: CycleMode,
    ) -> Result<(CycleKind, Option<Watermark>), EngineError> {
        let previous = self.store.watermark()?;
        let kind = match (mode, &previous) {
            (_, None) => CycleKind::Initial,
            (CycleMode::Full, Some(_)) => CycleKind::FullReconcile,
            (CycleMode::Auto, Some(_)) => CycleKind::Delta,
        };
        Ok((kind, previous))
    }

    pub(crate) fn stream_for(
        &self,
        kind: CycleKind,
        previous: Option<&Watermark>,
    ) -> crate::MailboxStream {
        match (kind, previous) {
            (CycleKind::Delta, Some(w)) => self
                .source
                .changed_since(w.changed_since, self.options.overlap),
            _ => self.source.all(),
        }
    }

    pub(crate) async fn schema(&self) -> Result<Arc<Schema>, EngineError> {
        match self.directory.schema().await {
            Ok(s) => Ok(s),
            Err(_) => self
                .directory
                .refresh_schema()
                .await
                .map_err(EngineError::Directory),
        }
    }

    pub(crate) fn check_job(&self) -> Result<(), EngineError> {
        match self.store.job_state()? {
            JobState::ThresholdExceeded { cycle } => Err(EngineError::Held { cycle }),
            JobState::Paused => Err(EngineError::Paused),
            state => crate::quarantine::check(&state, Timestamp::now())
                .map_err(|(reason, next_retry)| EngineError::Quarantined { reason, next_retry }),
        }
    }

    /// Run one cycle: import → scope → match → plan → guard → threshold → write → record →
    /// watermark.
    pub async fn run_cycle(&mut self, mode: CycleMode) -> Result<CycleReport, EngineError> {
        self.check_job()?;
        let (kind, previous) = self.next_kind(mode)?;
        let started = Timestamp::now();
        let cycle = self.store.begin_cycle(kind, started)?;
        let result = match self.reconcile_intents(Some(cycle)).await {
            Ok(()) => self.cycle_body(cycle, kind, previous).await,
            Err(e) => Err(e),
        };
        self.match_index = None;
        match result {
            Ok(report) => Ok(report),
            Err(e) => {
                // A cycle the body already ended keeps its counts and status.
                let running = matches!(
                    self.store.cycle(cycle),
                    Ok(Some(c)) if c.status == CycleStatus::Running
                );
                if !running {
                    return Err(e);
                }
                // Failing as a whole before any object (cannot bind, DC unreachable, token
                // refused) is a quarantine cause.
                let before_any = self.cycle_imported == 0
                    && matches!(e, EngineError::Directory(_) | EngineError::Source(_));
                let now = Timestamp::now();
                let status = if before_any {
                    CycleStatus::Quarantined {
                        reason: e.to_string(),
                    }
                } else {
                    CycleStatus::Failed {
                        reason: e.to_string(),
                    }
                };
                let _ = self
                    .store
                    .finish_cycle(cycle, now, &CycleCounts::default(), &status);
                if before_any {
                    let _ = crate::quarantine::enter(&mut self.store, &e.to_string(), now);
                }
                Err(e)
            }
        }
    }

    pub(crate) async fn cycle_body(
        &mut self,
        cycle: CycleId,
        kind: CycleKind,
        previous: Option<Watermark>,
    ) -> Result<CycleReport, EngineError> {
        // Full cycles re-read the schema (picking up an extension without a restart); deltas
        // use the cache, which a schema-like write error refreshes.
        let schema = match kind {
            CycleKind::Initial | CycleKind::FullReconcile => self
                .directory
                .refresh_schema()
                .await
                .map_err(EngineError::Directory)?,
            _ => self.schema().await?,
        };
        // Initial and full cycles match every mailbox: read the match keys once.
        if matches!(kind, CycleKind::Initial | CycleKind::FullReconcile) {
            self.load_match_index().await;
        }
        let floor = match (&previous, kind) {
            (Some(w), CycleKind::Delta | CycleKind::FullReconcile) => w.changed_since,
            _ => Timestamp::MIN,
        };
        let drift_before = match kind {
            CycleKind::FullReconcile => previous.as_ref().map(|w| w.query_from()),
            _ => None,
        };
        self.failure_causes.clear();
        self.failure_examples.clear();
        self.cycle_imported = 0;
        self.ad_unreachable = None;
        let cycle_started = Timestamp::now();
        let mut w = Work {
            seen: HashSet::new(),
            tracker: WatermarkTracker::new(floor),
            counts: CycleCounts::default(),
            batch: Vec::new(),
            to_write: Vec::new(),
            spill: None,
            removing: 0,
        };
        let mut stream = self.stream_for(kind, previous.as_ref());
        let mut fatal: Option<SourceError> = None;
        let mut stream_complete = true;
        // Mailboxes read and not yet evaluated (evaluated `evaluate_concurrency` at a time).
        let mut pending: Vec<Mailbox> = Vec::new();
        loop {
            // A stop request abandons a page still being read (nothing was written for it).
            let item = tokio::select! {
                item = stream.next() => item,
                _ = wait_for(self.cancel.clone()) => None,
            };
            let Some(item) = item else {
                break;
            };
            if self.cancelled() {
                stream_complete = false;
                break;
            }
            let mailbox = match item {
                Ok(m) => m,
                Err(e) if e.per_record => {
                    tracing::warn!(error = %e, "a mailbox record could not be read; skipped");
                    let (id, outcome) = unreadable_outcome(&e, cycle);
                    // Once per cycle (a listing may repeat a record); not retried from escrow
                    // in this cycle.
                    if w.seen.insert(id.clone()) {
                        w.counts.imported += 1;
                        self.cycle_imported = w.counts.imported;
                        w.counts.failed += 1;
                        w.batch.push((id, outcome));
                    }
                    continue;
                }
                Err(e) => {
                    fatal = Some(e);
                    stream_complete = false;
                    break;
                }
            };
            w.counts.imported += 1;
            self.cycle_imported = w.counts.imported;
            if w.counts.imported.is_multiple_of(100) {
                (self.progress)(Progress::Imported(w.counts.imported));
            }
            pending.push(mailbox);
            if pending.len() >= self.options.evaluate_concurrency.max(1) {
                self.take_all(&mut pending, &schema, &mut w, cycle, drift_before)
                    .await?;
                if w.batch.len() >= self.options.batch {
                    self.flush(&mut w.batch, &mut w.tracker)?;
                }
            }
        }
        self.take_all(&mut pending, &schema, &mut w, cycle, drift_before)
            .await?;
        drop(stream);
        if self.cancelled() {
            stream_complete = false;
        }
        // Escrowed objects that are due.
        if stream_complete && !self.cancelled() {
            let due = self
                .store
                .escrow_due(Timestamp::now(), self.options.escrow_per_cycle)?;
            for entry in due {
                if self.cancelled() {
                    break;
                }
                if w.seen.contains(&entry.cloud_id) {
                    continue;
                }
                match self.source.get(&entry.cloud_id).await {
                    Ok(Some(mailbox)) => {
                        w.counts.imported += 1;
                        self.take(mailbox, &schema, &mut w, cycle, drift_before)
                            .await?;
                    }
                    Ok(None) => {
                        self.store.clear_escrow(&entry.cloud_id)?;
                    }
                    Err(e) if e.per_record => {
                        // Still unreadable: one more failed attempt (the back-off grows).
                        tracing::warn!(cloud_id = %entry.cloud_id, error = %e, "escrow retry: the mailbox record still cannot be read");
                        w.counts.imported += 1;
                        w.counts.failed += 1;
                        w.batch.push(unreadable_outcome(&e, cycle));
                    }
                    Err(e) => {
                        tracing::warn!(cloud_id = %entry.cloud_id, error = %e, "escrow retry could not read the mailbox");
                    }
                }
            }
        }
        self.flush(&mut w.batch, &mut w.tracker)?;
        (self.progress)(Progress::Imported(w.counts.imported));

        if let Some(e) = fatal {
            let reason = format!("reading Exchange Online failed: {e}");
            let now = Timestamp::now();
            if w.counts.imported == 0 {
                // Nothing could be read (token refused, service unreachable): quarantine.
                let status = CycleStatus::Quarantined {
                    reason: reason.clone(),
                };
                self.store.finish_cycle(cycle, now, &w.counts, &status)?;
                crate::quarantine::enter(&mut self.store, &reason, now)?;
            } else {
                let status = CycleStatus::Failed { reason };
                self.store.finish_cycle(cycle, now, &w.counts, &status)?;
            }
            return Err(EngineError::Source(e));
        }

        // The change threshold: everything is planned before anything is written.
        let removing = w.removing;
        if stream_complete && removing > u64::from(self.settings.threshold) {
            let mut staged = Vec::new();
            for p in &w.to_write {
                if let Some(obj) = StagedObject::of(p) {
                    staged.push(obj.to_staged_plan().map_err(|e| EngineError::StagedPlan {
                        cycle,
                        problem: e.to_string(),
                    })?);
                }
            }
            let now = Timestamp::now();
            self.store.stage_changes(cycle, now, &staged)?;
            // The plans beyond max_plans_in_memory are staged too, a bounded batch at a time.
            if let Some(spill) = w.spill.take() {
                let mut reader = spill.read().map_err(EngineError::Spill)?;
                let mut batch = Vec::new();
                while let Some((_, obj)) = reader.next_object().map_err(EngineError::Spill)? {
                    batch.push(obj.to_staged_plan().map_err(|e| EngineError::StagedPlan {
                        cycle,
                        problem: e.to_string(),
                    })?);
                    if batch.len() >= self.options.max_plans_in_memory.max(1) {
                        self.store.stage_changes(cycle, now, &batch)?;
                        batch.clear();
                    }
                }
                self.store.stage_changes(cycle, now, &batch)?;
            }
            self.store
                .set_job_state(&JobState::ThresholdExceeded { cycle })?;
            let status = CycleStatus::ThresholdExceeded;
            self.store.finish_cycle(cycle, now, &w.counts, &status)?;
            tracing::warn!(%cycle, removing, threshold = self.settings.threshold, "change threshold exceeded: nothing written; review with `exo-writeback preview`, apply with `exo-writeback approve {cycle}`");
            return Ok(CycleReport {
                cycle,
                kind,
                counts: w.counts,
                status,
                watermark: None,
                removing,
                failure_causes: self.failure_causes.clone(),
            });
        }

        // Write: one modify per object.
        let total = (w.to_write.len() as u64) + w.spill.as_ref().map_or(0, Spill::len);
        let mut done = 0u64;
        let mut complete = stream_complete;
        let to_write = std::mem::take(&mut w.to_write);
        for p in to_write {
            if self.cancelled() || self.ad_unreachable.is_some() {
                complete = false;
                break;
            }
            self.write_and_record(p, &mut w, cycle, drift_before)
                .await?;
            done += 1;
            if done.is_multiple_of(50) || done == total {
                (self.progress)(Progress::Writing { done, total });
            }
        }
        // Plans beyond `max_plans_in_memory`: read back from the spill file, then written.
        if let Some(spill) = w.spill.take()
            && complete
        {
            let mut reader = spill.read().map_err(EngineError::Spill)?;
            while let Some((p, _)) = reader.next_object().map_err(EngineError::Spill)? {
                if self.cancelled() || self.ad_unreachable.is_some() {
                    complete = false;
                    break;
                }
                self.write_and_record(p, &mut w, cycle, drift_before)
                    .await?;
                done += 1;
                if done.is_multiple_of(50) || done == total {
                    (self.progress)(Progress::Writing { done, total });
                }
            }
        }
        complete &= self.write_queued(&mut w, cycle, drift_before).await?;
        self.flush(&mut w.batch, &mut w.tracker)?;

        let now = Timestamp::now();
        let watermark = if stream_complete {
            // Everything read has a durable outcome or stays pending (cancelled writes):
            // the tracker never passes a pending object.
            let mut wm = w.tracker.watermark(cycle, self.options.overlap);
            if wm.changed_since == Timestamp::MIN {
                // A full read that saw no mailbox: everything changed before it began is
                // processed (there was nothing); the overlap covers clock skew.
                wm.changed_since = cycle_started;
            }
            self.store.set_watermark(&wm)?;
            Some(wm)
        } else {
            None
        };
        let quarantine = if complete {
            crate::quarantine::dominant_cause(
                &w.counts,
                &self.failure_causes,
                &self.failure_examples,
            )
        } else {
            None
        };
        let quarantine = quarantine.or_else(|| {
            self.ad_unreachable.as_ref().map(|e| {
                format!(
                    "AD became unreachable while writing ({e}); the objects not yet written stay \
                     pending for the next cycle"
                )
            })
        });
        let status = if let Some(reason) = &quarantine {
            CycleStatus::Quarantined {
                reason: reason.clone(),
            }
        } else if complete {
            CycleStatus::Completed
        } else {
            CycleStatus::Failed {
                reason:
                    "stopped before the end (signal); the next cycle resumes from the watermark"
                        .into(),
            }
        };
        self.store.finish_cycle(cycle, now, &w.counts, &status)?;
        if let Some(reason) = &quarantine {
            crate::quarantine::enter(&mut self.store, reason, now)?;
        } else if complete {
            // A good cycle: clears a quarantine.
            self.store.set_job_state(&JobState::Active)?;
        }
        Ok(CycleReport {
            cycle,
            kind,
            counts: w.counts,
            status,
            watermark,
            removing,
            failure_causes: self.failure_causes.clone(),
        })
    }

    /// Evaluate the `pending` mailboxes concurrently (their AD reads overlap; nothing is
    /// written here), then take each result in the order read.
    pub(crate) async fn take_all(
        &mut self,
        pending: &mut Vec<Mailbox>,
        schema: &Schema,
        w: &mut Work,
        cycle: CycleId,
        drift_before: Option<Timestamp>,
    ) -> Result<(), EngineError> {
        let mut admitted = Vec::new();
        for mailbox in pending.drain(..) {
            let id = cloud_id(&mailbox);
            if !w.seen.insert(id.clone()) {
                continue;
            }
            if let Some(t) = mailbox.when_changed_utc {
                w.tracker.seen(&id, t);
            }
            admitted.push((id, mailbox));
        }
        let evaluated =
            futures::future::join_all(admitted.iter().map(|(_, m)| self.evaluate(m, schema))).await;
        for ((id, _), p) in admitted.into_iter().zip(evaluated) {
            self.take_evaluated(id, p, w, cycle, drift_before)?;
        }
        Ok(())
    }

    pub(crate) async fn take(
        &mut self,
        mailbox: Mailbox,
        schema: &Schema,
        w: &mut Work,
        cycle: CycleId,
        drift_before: Option<Timestamp>,
    ) -> Result<(), EngineError> {
        let id = cloud_id(&mailbox);
        if !w.seen.insert(id.clone()) {
            return Ok(());
        }
        if let Some(t) = mailbox.when_changed_utc {
            w.tracker.seen(&id, t);
        }
        let p = self.evaluate(&mailbox, schema).await;
        self.take_evaluated(id, p, w, cycle, drift_before)
    }

    pub(crate) fn take_evaluated(
        &mut self,
        id: String,
        p: Processed,
        w: &mut Work,
        cycle: CycleId,
        drift_before: Option<Timestamp>,
    ) -> Result<(), EngineError> {
        if !matches!(&p.disposition, Disposition::Skipped(d) if d.code == OutcomeCode::NotInScope) {
            w.counts.in_scope += 1;
        }
        match &p.disposition {
            Disposition::Write { plan, .. } => {
                if plan.removes_values {
                    w.removing += 1;
                }
                if w.to_write.len() < self.options.max_plans_in_memory {
                    w.to_write.push(p);
                } else {
                    if w.spill.is_none() {
                        w.spill = Some(
                            Spill::new(self.options.spill_dir.as_deref())
                                .map_err(EngineError::Spill)?,
                        );
                    }
                    if let Some(spill) = w.spill.as_mut() {
                        spill.push(&p).map_err(EngineError::Spill)?;
                    }
                }
                return Ok(());
            }
            Disposition::Skipped(_) => w.counts.skipped += 1,
            Disposition::Failed(_) => w.counts.failed += 1,
            Disposition::InSync => w.counts.unchanged += 1,
        }
        let outcome = self.outcome(p, cycle, WriteResult::NotNeeded, drift_before);
        w.batch.push((id, outcome));
        Ok(())
    }
}
