//! Taking the read phase's mailboxes, a batch at a time: admitted (each once per cycle,
//! counted), evaluated, and each result taken in the order read — a plan kept for the
//! threshold decision, anything else its outcome.
//!
//! When a batch's candidates are read from AD in bulk after the scan (an initial cycle, or a
//! full reconcile that keeps none of its scan's objects), the next batch's candidates are read
//! while the batch before is evaluated: the DC reads while the agent matches and plans. Each
//! read is still one made after the scan, for the batch it serves, at most one batch earlier
//! than one at a time; every write is planned on it, as before. With the DC's change mark
//! (`mark.rs`) that read is, for the candidates the scan kept, a check of what changed since
//! the mark: the kept copies of the others are what it would have read.

use exo_writeback_core::mailbox::Mailbox;
use exo_writeback_core::provisioning::CycleKind;
use exo_writeback_core::schema::Schema;
use exo_writeback_store::Store;
use uuid::Uuid;

use crate::bulk::BatchRead;
use crate::cycle::CycleRun;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::evaluate::{Disposition, Processed, cloud_id};
use crate::ports::{Directory, MailboxSource};
use crate::settle::Settled;
use crate::spill::Spill;

/// A batch admitted, its candidates read, waiting for the evaluation of the batch before.
pub(crate) struct Waiting {
    mailboxes: Vec<(String, Mailbox)>,
    read: BatchRead,
}

/// Whether the read phase reads a batch's candidates while the batch before is evaluated: a
/// match index that keeps none of the scan's objects, or an initial cycle with the DC's change
/// mark (its mailboxes have no joins for a first evaluation on the kept objects to settle).
/// A full reconcile with kept objects reads only the mailboxes they do not settle, known after
/// their first evaluation.
fn reads_ahead(run: &CycleRun) -> bool {
    run.index
        .as_ref()
        .is_some_and(|ix| ix.kept() == 0 || (run.mark.is_some() && run.kind == CycleKind::Initial))
}

impl<S: MailboxSource, D: Directory, St: Store> Engine<S, D, St> {
    /// Each of `pending` not yet taken in this cycle (a listing may repeat one, a delta's
    /// overlap passes over what the watermark's cycle processed), counted as imported — as
    /// retried from escrow (`retried`), re-read in a delta's overlap window (unchanged since
    /// the watermark), or changed.
    fn admit(
        &self,
        run: &mut CycleRun,
        pending: &mut Vec<Mailbox>,
        retried: bool,
    ) -> Vec<(String, Mailbox)> {
        let mut admitted = Vec::new();
        for mailbox in pending.drain(..) {
            let id = cloud_id(&mailbox);
            // Processed at this very WhenChangedUTC by the cycle that set the watermark: a
            // delta's overlap reads it again, and passes it over (not taken: an escrowed one is
            // still retried after the listing).
            if !retried && run.edge.processed(&id, mailbox.when_changed_utc) {
                continue;
            }
            if !run.seen.insert(&id) {
                continue;
            }
            run.counts.imported += 1;
            if retried {
                run.counts.retried += 1;
            } else if run.rereads(mailbox.when_changed_utc) {
                run.counts.reread += 1;
            }
            if let Some(t) = mailbox.when_changed_utc {
                run.tracker.seen(&id, t);
                run.edge.note(&id, t);
            }
            admitted.push((id, mailbox));
        }
        admitted
    }

    /// Admits the `pending` mailboxes and evaluates them concurrently (their AD reads overlap;
    /// nothing is written here), then takes each result in the order read.
    pub(crate) async fn take_all(
        &self,
        run: &mut CycleRun,
        pending: &mut Vec<Mailbox>,
        schema: &Schema,
        retried: bool,
    ) -> Result<(), EngineError> {
        let admitted = self.admit(run, pending, retried);
        self.take_admitted(run, admitted, schema, None).await
    }

    /// One batch of the listing: as [`Engine::take_all`], or — when the read phase reads ahead
    /// ([`reads_ahead`]) — admitted and its candidates read while the batch `waiting` is
    /// evaluated and taken; this batch then waits. [`Engine::finish_batches`] takes the last.
    pub(crate) async fn take_batch(
        &self,
        run: &mut CycleRun,
        pending: &mut Vec<Mailbox>,
        schema: &Schema,
        waiting: &mut Option<Waiting>,
    ) -> Result<(), EngineError> {
        if !reads_ahead(run) {
            self.finish_batches(run, schema, waiting).await?;
            return self.take_all(run, pending, schema, false).await;
        }
        let admitted = self.admit(run, pending, false);
        let next: Vec<&Mailbox> = admitted.iter().map(|(_, m)| m).collect();
        let (before, read) = match waiting.take() {
            Some(before) => {
                let mailboxes: Vec<&Mailbox> = before.mailboxes.iter().map(|(_, m)| m).collect();
                let (evaluated, read) = futures::join!(
                    self.evaluate_batch(
                        &mailboxes,
                        schema,
                        run.index.as_ref(),
                        run.addresses.as_ref(),
                        Some(before.read),
                        run.mark.as_ref(),
                    ),
                    self.read_candidates(&next, run.index.as_ref(), run.mark.as_ref())
                );
                (Some((before.mailboxes, evaluated)), read)
            }
            None => (
                None,
                self.read_candidates(&next, run.index.as_ref(), run.mark.as_ref())
                    .await,
            ),
        };
        *waiting = Some(Waiting {
            mailboxes: admitted,
            read,
        });
        if let Some((mailboxes, evaluated)) = before {
            self.take_evaluated(run, mailboxes, evaluated).await?;
        }
        Ok(())
    }

    /// Evaluates and takes the batch still waiting, if any.
    pub(crate) async fn finish_batches(
        &self,
        run: &mut CycleRun,
        schema: &Schema,
        waiting: &mut Option<Waiting>,
    ) -> Result<(), EngineError> {
        match waiting.take() {
            Some(w) => {
                self.take_admitted(run, w.mailboxes, schema, Some(w.read))
                    .await
            }
            None => Ok(()),
        }
    }

    /// Evaluates admitted mailboxes (with their candidates when already `read`) and takes
    /// each result in order.
    async fn take_admitted(
        &self,
        run: &mut CycleRun,
        admitted: Vec<(String, Mailbox)>,
        schema: &Schema,
        read: Option<BatchRead>,
    ) -> Result<(), EngineError> {
        // A delta's first mailbox to evaluate: the read rights, probed once (`cycle.rs`), on
        // the objects this batch's mailboxes are joined to — a search that does not grow with
        // the directory (`Directory::unreadable_attributes`).
        if !admitted.is_empty() && !run.probed {
            let samples: Vec<Uuid> = admitted
                .iter()
                .filter_map(|(id, _)| self.store.join(id).ok().flatten())
                .map(|join| join.object_guid)
                .collect();
            run.unreadable = self.probe_read_rights(&samples).await;
            run.probed = true;
        }
        // Mailboxes a full reconcile found in sync while it scanned (`settle.rs`) are not
        // evaluated again.
        let early: Vec<Option<Settled>> = admitted
            .iter()
            .map(|(id, _)| run.settled.remove(id))
            .collect();
        let mailboxes: Vec<&Mailbox> = admitted
            .iter()
            .zip(&early)
            .filter(|(_, s)| s.is_none())
            .map(|((_, m), _)| m)
            .collect();
        let mut evaluated = self
            .evaluate_batch(
                &mailboxes,
                schema,
                run.index.as_ref(),
                run.addresses.as_ref(),
                read,
                run.mark.as_ref(),
            )
            .await
            .into_iter();
        for ((id, _), settled) in admitted.into_iter().zip(early) {
            match settled {
                Some(s) => take_settled(run, id, s),
                None => {
                    let Some(mut p) = evaluated.next() else {
                        break;
                    };
                    self.claim(&mut run.claims, &mut p).await;
                    self.take(run, id, p)?;
                }
            }
        }
        Ok(())
    }

    /// Takes evaluated mailboxes in order: the cycle's address claims, then [`Engine::take`].
    async fn take_evaluated(
        &self,
        run: &mut CycleRun,
        admitted: Vec<(String, Mailbox)>,
        evaluated: Vec<Processed>,
    ) -> Result<(), EngineError> {
        for ((id, _), mut p) in admitted.into_iter().zip(evaluated) {
            self.claim(&mut run.claims, &mut p).await;
            self.take(run, id, p)?;
        }
        Ok(())
    }

    /// Counts one evaluated object; a plan waits for the threshold decision, anything else
    /// gets its outcome.
    fn take(&self, run: &mut CycleRun, id: String, p: Processed) -> Result<(), EngineError> {
        match &p.disposition {
            Disposition::Skipped(d) => {
                run.counts.skipped += 1;
                *run.skipped_causes.entry(d.code).or_default() += 1;
            }
            _ => run.counts.in_scope += 1,
        }
        if p.security.is_some() {
            run.counts.security_events += 1;
        }
        if p.drift.is_some() {
            run.counts.drift_detected += 1;
        }
        match &p.disposition {
            Disposition::Write { plan, .. } => {
                run.planned += 1;
                run.removing += exo_writeback_core::plan::removal_count(plan) as u64;
                if run.to_write.len() < self.options.max_plans_in_memory {
                    run.to_write.push(p);
                    return Ok(());
                }
                let spill = match &mut run.spill {
                    Some(spill) => spill,
                    None => run.spill.insert(
                        Spill::new(self.options.spill_dir.as_deref())
                            .map_err(EngineError::Spill)?,
                    ),
                };
                spill.push(&p).map_err(EngineError::Spill)?;
                return Ok(());
            }
            Disposition::Skipped(_) => {}
            Disposition::Failed(_) => run.counts.failed += 1,
            Disposition::InSync => run.counts.unchanged += 1,
            Disposition::Pinned(_) => run.counts.pinned += 1,
            Disposition::Drifted(_) => run.counts.drift_reported += 1,
        }
        run.batch.push((id, p.not_written(run.id)));
        Ok(())
    }
}

/// A mailbox the scan found in sync (`settle.rs`): counted as [`Engine::take`] counts one in
/// sync (nothing to claim, report or write); its outcome is durable already, or waits in the
/// batch as any other.
fn take_settled(run: &mut CycleRun, id: String, s: Settled) {
    run.counts.in_scope += 1;
    run.counts.unchanged += 1;
    if s.recorded {
        run.tracker.durable(&id);
    } else {
        run.batch.push((id, s.outcome));
    }
}
