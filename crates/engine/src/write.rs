//! The one write path of cycles, approve, undo and provision on demand: a chunk's write-ahead
//! intents committed (one transaction), then one modify per object — pipelined, a few in flight
//! on the connection, never two of one object at once; sent again while AD cannot be reached —
//! then the chunk's outcomes committed with the deletion of its intents (one
//! transaction). A process killed in between leaves the intents for the next command's
//! reconciliation (`crate::intents`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use exo_writeback_core::directory::ObjectModify;
use exo_writeback_core::provisioning::ObjectOutcome;
use exo_writeback_store::{OutcomeStore, StoreError};

use crate::pipeline::Pipeline;
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
    pub(crate) fn push(&mut self, id: String, outcome: ObjectOutcome) {
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
    /// While a modify waits for AD to come back, no other is sent.
    pub held: Held,
}

/// Whether AD could not be reached by a modify sent before: while one waits to be sent again,
/// the modifies queued behind it wait too; once one gave up, they are not sent.
#[derive(Default)]
pub(crate) struct Held {
    waiting: std::sync::atomic::AtomicUsize,
    gave_up: std::sync::Mutex<Option<DirectoryError>>,
    changed: tokio::sync::Notify,
}

impl Held {
    /// Waits while a modify waits for AD; the error of one that gave up, if any.
    async fn clear(&self) -> Option<DirectoryError> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(e) = self.gave_up.lock().map(|g| g.clone()).unwrap_or(None) {
                return Some(e);
            }
            if self.waiting.load(Ordering::SeqCst) == 0 {
                return None;
            }
            changed.await;
        }
    }
}

impl<'a, D: Directory> Writer<'a, D> {
    /// The writer of an engine: its directory, retry policy, stop flag, fence and window.
    pub(crate) fn new(
        directory: &'a D,
        options: &'a crate::EngineOptions,
        cancel: &'a AtomicBool,
        fence: &'a dyn WriteFence,
    ) -> Self {
        Writer {
            directory,
            waits: &options.reconnect_waits,
            cancel,
            fence,
            in_flight: options.writes_in_flight,
            held: Held::default(),
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// One modify. While AD cannot be reached it is sent again after each wait (a DC
    /// restarting comes back within seconds); permissive modify makes sending it twice safe.
    /// A schema-like or connection error refreshes the cached schema for the next object.
    pub(crate) async fn send(&self, modify: &ObjectModify) -> Result<(), DirectoryError> {
        let mut result = self.directory.modify(modify).await;
        let mut waited = false;
        for &wait in self.waits {
            match &result {
                Err(e) if e.is_unreachable() && !self.cancelled() => {}
                _ => break,
            }
            if !waited {
                waited = true;
                self.held.waiting.fetch_add(1, Ordering::SeqCst);
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
            && e.is_unreachable()
            && let Ok(mut gave_up) = self.held.gave_up.lock()
        {
            gave_up.get_or_insert_with(|| e.clone());
        }
        if waited {
            self.held.waiting.fetch_sub(1, Ordering::SeqCst);
            self.held.changed.notify_waiters();
        }
        if let Err(e) = &result
            && (e.suggests_schema_change() || e.is_unreachable())
            && let Err(re) = self.directory.refresh_schema().await
        {
            tracing::warn!(error = %re, "re-reading the AD schema failed");
        }
        result
    }

    /// Writes one chunk (see [`Pipeline`]): its intents committed in one transaction, its
    /// modifies sent, then its outcomes — `with` first — committed with the deletion of its
    /// intents in one transaction.
    pub(crate) async fn write<St: OutcomeStore>(
        &self,
        store: &mut St,
        items: Vec<WriteItem>,
        with: Vec<(String, ObjectOutcome)>,
    ) -> Result<Chunk, StoreError> {
        let mut pipeline = Pipeline::new(self);
        let mut chunks = pipeline.feed(store, items, with).await?;
        chunks.extend(pipeline.finish(store).await?);
        Ok(chunks.pop().unwrap_or_default())
    }

    /// One modify, sent only if no stop was asked and the fence still holds at the moment it
    /// would be sent (a pipelined modify is queued before the ones ahead of it are answered).
    pub(crate) async fn send_if_allowed(&self, modify: ObjectModify) -> Sent {
        if let Some(e) = self.held.clear().await {
            return Sent::Not(Stop::Unreachable(e));
        }
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
}

/// What became of a modify in flight.
pub(crate) enum Sent {
    /// Not sent: a stop was asked or the fence no longer held.
    Not(Stop),
    Answered(Result<(), DirectoryError>),
}
