//! The one write path of cycles, approve, undo and provision on demand: a chunk's write-ahead
//! intents committed (one transaction), then one modify per object — pipelined, a few in flight
//! on the connection, never two of one object at once; sent again while AD cannot be reached —
//! then the chunk's outcomes committed with the deletion of its intents (one
//! transaction). A process killed in between leaves the intents for the next command's
//! reconciliation (`crate::intents`).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use exo_writeback_core::directory::ObjectModify;
use exo_writeback_core::provisioning::ObjectOutcome;
use exo_writeback_store::{OutcomeStore, StoreError, WriteIntent};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use jiff::Timestamp;
use uuid::Uuid;

use crate::ports::{Directory, DirectoryError, WriteFence};
use crate::record::Outcome;

/// One object to write.
pub(crate) struct WriteItem {
    /// The object's id in its operation: the cloud id (what the watermark tracks, and the
    /// intent names); empty for undo.
    pub id: String,
    /// The outcome when the modify succeeds (the intent holds it until then) — or, with
    /// nothing to send, the final outcome.
    pub success: ObjectOutcome,
    /// The modify to send, and the outcome before the export, which [`Outcome::refused`]
    /// finishes when the directory refuses the modify.
    pub send: Option<(ObjectModify, Outcome)>,
}

impl WriteItem {
    /// An object with nothing to send: its outcome is final.
    pub(crate) fn done(id: String, outcome: ObjectOutcome) -> WriteItem {
        WriteItem {
            id,
            success: outcome,
            send: None,
        }
    }
}

/// Why a chunk stopped before its end. The objects not reached have no outcome (and no
/// intent left): they wait for the next run.
#[derive(Debug, Clone)]
pub(crate) enum Stop {
    /// A stop request (SIGTERM).
    Cancelled,
    /// AD stayed unreachable through every wait. The intent of the object being sent stays:
    /// the modify may have reached AD before the connection broke, and the next
    /// reconciliation logs it if it did.
    Unreachable(DirectoryError),
    /// This process lost the right to write (its writer lease lapsed or was taken over): no
    /// further modify is sent; what was sent is logged if the store still takes it, else the
    /// next writer reconciles its intents.
    Fenced(String),
}

/// What a chunk came to.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    /// The ids of the objects whose outcomes were committed, in order (`with` first), and
    /// those outcomes.
    pub ids: Vec<String>,
    pub outcomes: Vec<ObjectOutcome>,
    /// Modifies AD applied, and refused.
    pub written: u64,
    pub failed: u64,
    pub stopped: Option<Stop>,
}

impl Chunk {
    fn push(&mut self, id: String, outcome: ObjectOutcome) {
        self.ids.push(id);
        self.outcomes.push(outcome);
    }
}

/// Sends modifies with one retry policy, and writes chunks behind intents.
pub(crate) struct Writer<'a, D> {
    pub directory: &'a D,
    /// A modify that cannot reach AD is sent again after each of these waits.
    pub waits: &'a [Duration],
    pub cancel: &'a AtomicBool,
    /// Asked before each chunk's modifies and before each modify.
    pub fence: &'a dyn WriteFence,
    /// Modifies in flight at once (pipelined on the connection); 1 = each awaited before the
    /// next is sent.
    pub in_flight: usize,
}

impl<D: Directory> Writer<'_, D> {
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// One modify. While AD cannot be reached it is sent again after each wait (a DC
    /// restarting comes back within seconds); permissive modify makes sending it twice safe.
    /// A schema-like or connection error refreshes the cached schema for the next object.
    pub(crate) async fn send(&self, modify: &ObjectModify) -> Result<(), DirectoryError> {
        let mut result = self.directory.modify(modify).await;
        for &wait in self.waits {
            match &result {
                Err(e) if e.is_unreachable() && !self.cancelled() => {}
                _ => break,
            }
            tracing::warn!(dn = %modify.dn, wait_ms = wait.as_millis() as u64, "AD cannot be reached; sending the modify again after a wait");
            tokio::time::sleep(wait).await;
            if self.fence.may_write().is_err() {
                // The lease lapsed while waiting: the modify is not sent again.
                break;
            }
            result = self.directory.modify(modify).await;
        }
        if let Err(e) = &result
            && (e.suggests_schema_change() || e.is_unreachable())
            && let Err(re) = self.directory.refresh_schema().await
        {
            tracing::warn!(error = %re, "re-reading the AD schema failed");
        }
        result
    }

    /// Writes one chunk: the intents of its modifies committed in one transaction, the
    /// modifies sent in order — up to `in_flight` at a time on the connection (pipelined; two
    /// modifies of the same object never at once), each one only while no stop was asked and
    /// the fence holds — then every outcome — `with` first (outcomes of objects with nothing
    /// to write, waiting for a commit) — committed with the deletion of the chunk's intents in
    /// one transaction. A refused modify gets its failure outcome; a stop request, a lost
    /// fence or AD unreachable ends the chunk early ([`Stop`]): no further modify is sent,
    /// those in flight are awaited and logged.
    pub(crate) async fn write<St: OutcomeStore>(
        &self,
        store: &mut St,
        items: Vec<WriteItem>,
        with: Vec<(String, ObjectOutcome)>,
    ) -> Result<Chunk, StoreError> {
        let mut intents: Vec<WriteIntent> = Vec::new();
        let mut intent_of = Vec::with_capacity(items.len());
        for item in &items {
            let intent = item
                .send
                .as_ref()
                .and_then(|_| WriteIntent::from_success(&item.id, &item.success));
            intent_of.push(intent.as_ref().map(|i| i.id));
            intents.extend(intent);
        }
        // The chunk's intents (a shared state checks its fence in this transaction too), then
        // the fence again before each modify.
        store.record_intents(&intents)?;
        let mut clear: Vec<Uuid> = intents.iter().map(|i| i.id).collect();
        let mut chunk = Chunk::default();
        for (id, outcome) in with {
            chunk.push(id, outcome);
        }
        let mut flight = Flight {
            sending: FuturesOrdered::new(),
            waiting: VecDeque::new(),
        };
        for (item, intent) in items.into_iter().zip(intent_of) {
            let Some((modify, draft)) = item.send else {
                chunk.push(item.id, item.success);
                continue;
            };
            // In order per object: a modify of an object still in flight waits for it.
            while flight.waiting.len() >= self.in_flight.max(1)
                || flight
                    .waiting
                    .iter()
                    .any(|w| w.dn.eq_ignore_ascii_case(&modify.dn))
            {
                self.settle_next(&mut flight, &mut chunk, &mut clear).await;
            }
            if chunk.stopped.is_some() {
                break;
            }
            let dn = modify.dn.clone();
            flight
                .sending
                .push_back(Box::pin(self.send_if_allowed(modify)));
            flight.waiting.push_back(Waiting {
                id: item.id,
                dn,
                success: item.success,
                draft,
                intent,
            });
        }
        while !flight.waiting.is_empty() {
            self.settle_next(&mut flight, &mut chunk, &mut clear).await;
        }
        if !chunk.outcomes.is_empty() || !clear.is_empty() {
            store.record_outcomes_clearing_intents(&chunk.outcomes, &clear)?;
        }
        Ok(chunk)
    }

    /// One modify, sent only if no stop was asked and the fence still holds at the moment it
    /// would be sent (a pipelined modify is queued before the ones ahead of it are answered).
    async fn send_if_allowed(&self, modify: ObjectModify) -> Sent {
        if self.cancelled() {
            return Sent::Not(Stop::Cancelled);
        }
        if let Err(why) = self.fence.may_write() {
            tracing::error!(dn = %modify.dn, reason = %why, "this agent may no longer write: no further modify is sent");
            return Sent::Not(Stop::Fenced(why));
        }
        tracing::debug!(dn = %modify.dn, "sending a modify");
        Sent::Answered(self.send(&modify).await)
    }

    /// Awaits the oldest modify in flight and records what became of it.
    async fn settle_next(&self, flight: &mut Flight<'_>, chunk: &mut Chunk, clear: &mut Vec<Uuid>) {
        let (Some(sent), Some(w)) = (flight.sending.next().await, flight.waiting.pop_front())
        else {
            return;
        };
        match sent {
            Sent::Not(stop) => {
                // Not sent: no outcome, its intent is deleted with the chunk's.
                chunk.stopped.get_or_insert(stop);
            }
            Sent::Answered(Ok(())) => {
                chunk.written += 1;
                let mut outcome = w.success;
                outcome.log.duration = Timestamp::now().duration_since(outcome.log.time);
                chunk.push(w.id, outcome);
            }
            Sent::Answered(Err(e)) if e.is_unreachable() => {
                tracing::error!(dn = %w.dn, error = %e, "AD stayed unreachable; writing stops and the rest waits for the next run");
                // The modify may have reached AD before the connection broke: its intent
                // stays for the next reconciliation.
                if let Some(id) = w.intent {
                    clear.retain(|i| *i != id);
                }
                if !matches!(chunk.stopped, Some(Stop::Unreachable(_))) {
                    chunk.stopped = Some(Stop::Unreachable(e));
                }
            }
            Sent::Answered(Err(e)) => {
                chunk.failed += 1;
                tracing::warn!(id = %w.id, dn = %w.dn, error = %e, "write failed; the object's outcome is a failure");
                chunk.push(w.id, w.draft.refused(&e));
            }
        }
    }
}

/// What became of a modify in flight.
enum Sent {
    /// Not sent: a stop was asked or the fence no longer held.
    Not(Stop),
    Answered(Result<(), DirectoryError>),
}

/// An object whose modify is in flight.
struct Waiting {
    id: String,
    dn: String,
    success: ObjectOutcome,
    draft: Outcome,
    intent: Option<Uuid>,
}

/// The modifies in flight (answered in the order sent) and their objects, in the same order.
struct Flight<'a> {
    sending: FuturesOrdered<Pin<Box<dyn Future<Output = Sent> + 'a>>>,
    waiting: VecDeque<Waiting>,
}
