//! A cycle's read phase: every mailbox read once, evaluated (a few at a time: their AD reads
//! overlap; nothing is written), and its plan kept for the threshold decision — in memory, or
//! beyond `max_plans_in_memory` in the spill file; then the escrowed mailboxes that are due.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use exo_writeback_core::mailbox::Mailbox;
use exo_writeback_core::provisioning::CycleStatus;
use exo_writeback_core::schema::Schema;
use exo_writeback_store::Store;
use futures::StreamExt;
use futures::channel::mpsc::UnboundedSender;
use jiff::Timestamp;
use std::future::Future;

use crate::cycle::CycleRun;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::options::Progress;
use crate::ports::{Directory, MailboxSource, MailboxStream, SourceError, SourceErrorKind};
use crate::record::{reported_outcome, unreadable_outcome};

/// The start of a cycle's listing, read while the directory was scanned (initial and full
/// cycles): the records read so far, in order, and the rest of the stream (`None`: it ended).
pub(crate) struct ReadAhead {
    pub read: Vec<Result<Mailbox, SourceError>>,
    pub rest: Option<MailboxStream>,
}

impl ReadAhead {
    /// Runs `work` while reading up to `limit` records of `stream` ahead (the listing of
    /// Exchange Online and the scan of AD overlap; memory stays bounded by `limit`); with
    /// `tap`, a copy of each mailbox read is handed to `work` as it is read.
    pub(crate) async fn during<F: Future>(
        work: F,
        mut stream: MailboxStream,
        limit: usize,
        tap: Option<UnboundedSender<Mailbox>>,
    ) -> (F::Output, ReadAhead) {
        let mut read = Vec::new();
        let mut ended = false;
        let output = {
            let fill = async {
                while read.len() < limit {
                    match stream.next().await {
                        Some(item) => {
                            if let (Some(tap), Ok(m)) = (&tap, &item) {
                                // `work` stopped listening: nothing more to hand on.
                                let _ = tap.unbounded_send(m.clone());
                            }
                            read.push(item);
                        }
                        None => {
                            ended = true;
                            break;
                        }
                    }
                }
                // Full or ended: waits for `work`.
                std::future::pending::<std::convert::Infallible>().await
            };
            futures::pin_mut!(work, fill);
            match futures::future::select(work, fill).await {
                futures::future::Either::Left((output, _)) => output,
                futures::future::Either::Right((never, _)) => match never {},
            }
        };
        let rest = (!ended).then_some(stream);
        (output, ReadAhead { read, rest })
    }

    fn into_stream(self) -> MailboxStream {
        let read = futures::stream::iter(self.read);
        match self.rest {
            Some(rest) => read.chain(rest).boxed(),
            None => read.boxed(),
        }
    }
}

/// Resolves once `flag` is set (polled; cancellation is rare and coarse).
async fn wait_for(flag: Arc<AtomicBool>) {
    while !flag.load(Ordering::SeqCst) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

impl<S: MailboxSource, D: Directory, St: Store> Engine<S, D, St> {
    /// Reads and evaluates the cycle's mailboxes, then the escrowed ones that are due.
    /// Returns whether every mailbox was read (not stopped). Errors the source reported beside
    /// a page end the read (logged, kept in `run.reported`); the mailboxes read before them go
    /// on to the write phase. A listing that broke off ends the cycle (quarantined when
    /// nothing could be read) and is returned.
    pub(crate) async fn read_phase(
        &mut self,
        run: &mut CycleRun,
        schema: &Schema,
        ahead: Option<ReadAhead>,
    ) -> Result<bool, EngineError> {
        let mut stream = match ahead {
            Some(ahead) => ahead.into_stream(),
            None => self.stream_for(run.kind, run.previous.as_ref()),
        };
        let mut fatal: Option<SourceError> = None;
        let mut stream_complete = true;
        // Mailboxes read and not yet evaluated (evaluated `evaluate_concurrency` at a time).
        let mut pending: Vec<Mailbox> = Vec::new();
        // A batch whose candidates were read while the batch before was evaluated (`take.rs`).
        let mut waiting = None;
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
                Err(e) if e.is_per_record() => {
                    tracing::warn!(error = %e, "a mailbox record could not be read; skipped");
                    let (id, outcome) = unreadable_outcome(&e, run.id);
                    run.streamed += 1;
                    // Once per cycle (a listing may repeat a record); not retried from escrow
                    // in this cycle. Counted in scope: it failed, whatever its scope.
                    if run.seen.insert(&id) {
                        run.counts.imported += 1;
                        run.counts.in_scope += 1;
                        run.counts.failed += 1;
                        run.batch.push((id, outcome));
                    }
                    continue;
                }
                Err(e) if e.kind == SourceErrorKind::Reported => {
                    // The page's records came before the error: they are processed (and
                    // written); the listing ends here, so the watermark waits.
                    tracing::error!(error = %e, "Exchange Online reported errors with a result page; the mailboxes read so far are processed, the rest waits for the next poll");
                    run.batch.push(reported_outcome(&e, run.id));
                    run.reported = Some(e);
                    stream_complete = false;
                    break;
                }
                Err(e) => {
                    fatal = Some(e);
                    stream_complete = false;
                    break;
                }
            };
            run.streamed += 1;
            if run.streamed.is_multiple_of(100) {
                (self.progress)(Progress::Imported(run.streamed));
            }
            pending.push(mailbox);
            // With the match index the batch's candidates are read together: a larger batch.
            let batch = match run.index {
                Some(_) => self.options.bulk_read,
                None => self.options.evaluate_concurrency,
            };
            if pending.len() >= batch.max(1) {
                self.take_batch(run, &mut pending, schema, &mut waiting)
                    .await?;
                if run.batch.len() >= self.options.read_batch.max(self.options.batch) {
                    self.flush(run)?;
                }
            }
        }
        self.take_batch(run, &mut pending, schema, &mut waiting)
            .await?;
        self.finish_batches(run, schema, &mut waiting).await?;
        drop(stream);
        if self.cancelled() {
            stream_complete = false;
        }
        if stream_complete {
            self.retry_escrow(run, schema).await?;
        }
        self.flush(run)?;
        (self.progress)(Progress::Imported(run.streamed));
        if let Some(e) = fatal {
            let reason = format!("reading Exchange Online failed: {e}");
            let now = Timestamp::now();
            if run.streamed == 0 {
                // Nothing could be read (token refused, service unreachable): quarantine.
                let status = CycleStatus::Quarantined {
                    reason: reason.clone(),
                };
                self.store.finish_cycle(run.id, now, &run.counts, &status)?;
                crate::quarantine::enter(&mut self.store, &reason, now)?;
            } else {
                let status = CycleStatus::Failed { reason };
                self.store.finish_cycle(run.id, now, &run.counts, &status)?;
            }
            return Err(EngineError::Source(e));
        }
        Ok(stream_complete)
    }

    /// The escrowed mailboxes that are due, read again one by one.
    async fn retry_escrow(
        &mut self,
        run: &mut CycleRun,
        schema: &Schema,
    ) -> Result<(), EngineError> {
        let due = self
            .store
            .escrow_due(Timestamp::now(), self.options.escrow_per_cycle)?;
        for entry in due {
            if self.cancelled() {
                break;
            }
            if run.seen.contains(&entry.cloud_id) {
                continue;
            }
            match self.source.get(&entry.cloud_id).await {
                Ok(Some(mailbox)) => {
                    self.take_all(run, &mut vec![mailbox], schema, true).await?;
                }
                Ok(None) => {
                    self.store.clear_escrow(&entry.cloud_id)?;
                }
                Err(e) if e.is_per_record() => {
                    // Still unreadable: one more failed attempt (the back-off grows).
                    tracing::warn!(cloud_id = %entry.cloud_id, error = %e, "escrow retry: the mailbox record still cannot be read");
                    run.counts.imported += 1;
                    run.counts.retried += 1;
                    run.counts.in_scope += 1;
                    run.counts.failed += 1;
                    run.batch.push(unreadable_outcome(&e, run.id));
                }
                Err(e) => {
                    tracing::warn!(cloud_id = %entry.cloud_id, error = %e, "escrow retry could not read the mailbox");
                }
            }
        }
        Ok(())
    }
}
