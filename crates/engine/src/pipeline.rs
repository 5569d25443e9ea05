//! The write phase as one stream of modifies across chunks: a chunk's write-ahead intents are
//! committed before its first modify is sent, its outcomes are committed (with the deletion of
//! its intents) once its last modify is answered — while the next chunk's modifies are already
//! in flight, so the DC keeps working while the store commits.
//!
//! What stays exactly as before, chunk by chunk: no modify is sent before its intent is
//! durable; no outcome is committed before its modify was answered; outcomes are committed in
//! the order of the chunks; a modify that may have reached AD without an answer keeps its
//! intent; a stop (signal, lost fence, AD unreachable) sends nothing more, and the modifies
//! already in flight are awaited and logged.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use exo_writeback_core::provisioning::ObjectOutcome;
use exo_writeback_store::{OutcomeStore, StoreError, WriteIntent};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use jiff::Timestamp;
use uuid::Uuid;

use crate::ports::Directory;
use crate::record::Outcome;
use crate::write::{Chunk, Sent, Stop, WriteItem, Writer};

/// Modifies in flight across the chunks of one write phase.
pub(crate) struct Pipeline<'w, 'a, D> {
    writer: &'w Writer<'a, D>,
    /// The modifies in flight (answered in the order sent) and their objects, in that order.
    sending: FuturesOrdered<Pin<Box<dyn Future<Output = Sent> + 'w>>>,
    waiting: VecDeque<Waiting>,
    /// Chunks whose outcomes are not committed yet, oldest first (at most the one being fed
    /// and the one before it, unless the window is larger than a chunk).
    open: VecDeque<Open>,
    /// The number of the next chunk fed.
    next: u64,
    /// Set once a modify could not be sent or AD stayed unreachable: nothing more is sent.
    stopped: bool,
}

/// An object whose modify is in flight.
struct Waiting {
    chunk: u64,
    id: String,
    dn: String,
    success: ObjectOutcome,
    draft: Outcome,
    intent: Option<Uuid>,
}

/// A chunk whose outcomes wait for a commit.
struct Open {
    number: u64,
    chunk: Chunk,
    /// Its intents to delete with its outcomes.
    clear: Vec<Uuid>,
    /// Its modifies not answered yet.
    unanswered: usize,
    /// Every object of it was taken (sent, or with nothing to send, or left by a stop).
    fed: bool,
}

impl<'w, 'a, D: Directory> Pipeline<'w, 'a, D> {
    pub(crate) fn new(writer: &'w Writer<'a, D>) -> Self {
        Pipeline {
            writer,
            sending: FuturesOrdered::new(),
            waiting: VecDeque::new(),
            open: VecDeque::new(),
            next: 0,
            stopped: false,
        }
    }

    /// Whether the writes stopped (a chunk returned says why): feed nothing more.
    pub(crate) fn stopped(&self) -> bool {
        self.stopped
    }

    /// One chunk: its intents committed in one transaction (while the modifies of the chunk
    /// before are still in flight), then its modifies sent in order — up to the writer's
    /// `in_flight` at a time, two of one object never at once, each only while no stop was
    /// asked and the fence holds. Returns the chunks whose outcomes were committed meanwhile
    /// (`with` — outcomes of objects with nothing to write — first in this chunk's).
    pub(crate) async fn feed<St: OutcomeStore>(
        &mut self,
        store: &mut St,
        items: Vec<WriteItem>,
        with: Vec<(String, ObjectOutcome)>,
    ) -> Result<Vec<Chunk>, StoreError> {
        let mut committed = Vec::new();
        // The modifies queued last are sent before this process blocks on the store.
        self.pump();
        self.commit_ready(store, &mut committed)?;
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
        if self.stopped {
            // Nothing of this chunk is sent: only the outcomes waiting for a commit.
            intents.clear();
        }
        // A shared state checks its fence in this transaction too; the fence is asked again
        // before each modify.
        store.record_intents(&intents)?;
        let number = self.next;
        self.next += 1;
        let mut chunk = Chunk::default();
        for (id, outcome) in with {
            chunk.push(id, outcome);
        }
        self.open.push_back(Open {
            number,
            chunk,
            clear: intents.iter().map(|i| i.id).collect(),
            unanswered: 0,
            fed: false,
        });
        let window = self.writer.in_flight.max(1);
        for (item, intent) in items.into_iter().zip(intent_of) {
            if self.stopped {
                break;
            }
            let Some((modify, draft)) = item.send else {
                self.current().chunk.push(item.id, item.success);
                continue;
            };
            // In order per object: a modify of an object still in flight waits for it.
            while self.waiting.len() >= window
                || self
                    .waiting
                    .iter()
                    .any(|w| w.dn.eq_ignore_ascii_case(&modify.dn))
            {
                self.answer_next().await;
                self.commit_ready(store, &mut committed)?;
            }
            if self.stopped {
                break;
            }
            let dn = modify.dn.clone();
            self.sending
                .push_back(Box::pin(self.writer.send_if_allowed(modify)));
            self.waiting.push_back(Waiting {
                chunk: number,
                id: item.id,
                dn,
                success: item.success,
                draft,
                intent,
            });
            self.current().unanswered += 1;
        }
        self.current().fed = true;
        self.commit_ready(store, &mut committed)?;
        Ok(committed)
    }

    /// Awaits every modify in flight and commits the remaining chunks' outcomes.
    pub(crate) async fn finish<St: OutcomeStore>(
        mut self,
        store: &mut St,
    ) -> Result<Vec<Chunk>, StoreError> {
        let mut committed = Vec::new();
        while !self.waiting.is_empty() {
            self.answer_next().await;
            self.commit_ready(store, &mut committed)?;
        }
        self.commit_ready(store, &mut committed)?;
        Ok(committed)
    }

    fn current(&mut self) -> &mut Open {
        self.open.back_mut().expect("a chunk is being fed")
    }

    /// Polls the modifies in flight once, so each queued one is handed to the connection
    /// (and those already answered are taken) before the caller blocks.
    fn pump(&mut self) {
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        while let Poll::Ready(Some(sent)) = self.sending.poll_next_unpin(&mut cx) {
            self.answered(sent);
        }
    }

    /// Awaits the oldest modify in flight.
    async fn answer_next(&mut self) {
        if let Some(sent) = self.sending.next().await {
            self.answered(sent);
        }
    }

    /// Commits, in order, the chunks every modify of which was answered — after handing the
    /// next modifies to the connection, so the DC works while the store commits.
    fn commit_ready<St: OutcomeStore>(
        &mut self,
        store: &mut St,
        committed: &mut Vec<Chunk>,
    ) -> Result<(), StoreError> {
        while self
            .open
            .front()
            .is_some_and(|o| o.fed && o.unanswered == 0)
        {
            self.pump();
            let Some(open) = self.open.pop_front() else {
                break;
            };
            if !open.chunk.outcomes.is_empty() || !open.clear.is_empty() {
                store.record_outcomes_clearing_intents(&open.chunk.outcomes, &open.clear)?;
            }
            committed.push(open.chunk);
        }
        Ok(())
    }

    /// Records what became of the oldest modify in flight.
    fn answered(&mut self, sent: Sent) {
        let Some(w) = self.waiting.pop_front() else {
            return;
        };
        let Some(first) = self.open.front().map(|o| o.number) else {
            return;
        };
        let Some(open) = usize::try_from(w.chunk - first)
            .ok()
            .and_then(|i| self.open.get_mut(i))
        else {
            return;
        };
        open.unanswered -= 1;
        let chunk = &mut open.chunk;
        match sent {
            Sent::Not(stop) => {
                // Not sent: no outcome, its intent is deleted with the chunk's.
                self.stopped = true;
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
                self.stopped = true;
                // The modify may have reached AD before the connection broke: its intent
                // stays for the next reconciliation.
                if let Some(id) = w.intent {
                    open.clear.retain(|i| *i != id);
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
