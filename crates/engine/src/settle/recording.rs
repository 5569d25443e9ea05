//! The outcomes of the mailboxes a full reconcile's scan finds in sync, recorded while the
//! scan runs: in chunks, by the store's log recorder (`LogRecorder`, a connection of its own),
//! on a thread of its own — so that the read phase, after the scan, finds them durable instead
//! of recording them then, while the DC waits.
//!
//! Nothing is lost when the recorder fails: a chunk it could not record, and every chunk after
//! it, goes back unrecorded, and the read phase records those with the others (as it records
//! everything without a recorder).

use std::collections::HashMap;
use std::sync::mpsc;

use exo_writeback_core::provisioning::ObjectOutcome;
use exo_writeback_store::LogRecorder;
use futures::channel::oneshot;

/// Outcomes recorded per transaction at most (fewer when the scan waits for a page: `flush`).
const CHUNK: usize = 500;

/// A mailbox found in sync during the scan: its outcome, and whether that is durable already.
#[derive(Debug)]
pub(crate) struct Settled {
    pub outcome: ObjectOutcome,
    pub recorded: bool,
}

/// One chunk: the mailboxes' cloud ids and their outcomes, in the same order.
#[derive(Default)]
struct Chunk {
    ids: Vec<String>,
    outcomes: Vec<ObjectOutcome>,
}

/// The outcomes found in sync so far, and the thread recording them (if any).
pub(crate) struct Recording {
    chunk: Chunk,
    to_thread: Option<mpsc::Sender<Chunk>>,
    /// The chunks back from the thread, each with whether it was recorded.
    from_thread: Option<oneshot::Receiver<Vec<(Chunk, bool)>>>,
}

impl Recording {
    /// Records with `recorder` on a new thread; without one (or when the thread cannot be
    /// started) keeps the outcomes for the read phase.
    pub(crate) fn start(recorder: Option<Box<dyn LogRecorder>>) -> Recording {
        let mut recording = Recording {
            chunk: Chunk::default(),
            to_thread: None,
            from_thread: None,
        };
        let Some(recorder) = recorder else {
            return recording;
        };
        let (to_thread, chunks) = mpsc::channel();
        let (done, from_thread) = oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("log-recorder".into())
            .spawn(move || {
                let _ = done.send(record_all(recorder, chunks));
            });
        match spawned {
            Ok(_) => {
                recording.to_thread = Some(to_thread);
                recording.from_thread = Some(from_thread);
            }
            Err(e) => tracing::warn!(
                error = %e,
                "cannot start the thread that records in-sync outcomes during the scan; they are recorded after it"
            ),
        }
        recording
    }

    /// A mailbox (`cloud_id`) found in sync.
    pub(crate) fn push(&mut self, cloud_id: String, outcome: ObjectOutcome) {
        self.chunk.ids.push(cloud_id);
        self.chunk.outcomes.push(outcome);
        if self.chunk.ids.len() >= CHUNK && self.to_thread.is_some() {
            self.send();
        }
    }

    /// The outcomes found so far to the thread, however few (the scan waits for the DC's next
    /// page: the thread records them meanwhile, instead of after the scan).
    pub(crate) fn flush(&mut self) {
        if !self.chunk.ids.is_empty() {
            self.send();
        }
    }

    /// The chunk to the thread (when there is one).
    fn send(&mut self) {
        let Some(to_thread) = &self.to_thread else {
            return;
        };
        if let Err(mpsc::SendError(chunk)) = to_thread.send(std::mem::take(&mut self.chunk)) {
            // The thread is gone (it panicked): what it did not take stays for the read phase.
            self.to_thread = None;
            self.chunk = chunk;
        }
    }

    /// Every outcome found in sync, by cloud id (the first of each), once the thread recorded
    /// what it was given.
    pub(crate) async fn finish(mut self) -> HashMap<String, Settled> {
        self.flush();
        self.to_thread = None;
        let mut settled = HashMap::new();
        let mut keep = |chunk: Chunk, recorded: bool| {
            for (id, outcome) in chunk.ids.into_iter().zip(chunk.outcomes) {
                settled.entry(id).or_insert(Settled { outcome, recorded });
            }
        };
        if let Some(from_thread) = self.from_thread.take() {
            match from_thread.await {
                Ok(chunks) => {
                    for (chunk, recorded) in chunks {
                        keep(chunk, recorded);
                    }
                }
                Err(_) => tracing::error!(
                    "the thread recording in-sync outcomes during the scan ended without an answer; \
                     the read phase evaluates those mailboxes again"
                ),
            }
        }
        keep(std::mem::take(&mut self.chunk), false);
        settled
    }
}

/// The thread's work: each chunk recorded in one transaction until one fails; that one and
/// the rest go back unrecorded.
fn record_all(
    mut recorder: Box<dyn LogRecorder>,
    chunks: mpsc::Receiver<Chunk>,
) -> Vec<(Chunk, bool)> {
    let mut back = Vec::new();
    let mut failed = false;
    for chunk in chunks {
        if !failed && let Err(e) = recorder.record(&chunk.outcomes) {
            tracing::warn!(
                error = %e,
                "recording in-sync outcomes during the scan failed; they are recorded after it"
            );
            failed = true;
        }
        back.push((chunk, !failed));
    }
    if !failed && let Err(e) = recorder.finish() {
        // The outcomes are durable; only their identity keys wait for the cycle's end.
        tracing::warn!(error = %e, "merging the in-sync outcomes' identity keys failed; the cycle's end merges them");
    }
    back
}

#[cfg(test)]
mod tests;
