//! The write phase as one pipeline: the next chunk's modifies are sent while a chunk's last
//! modifies are still unanswered (and its outcomes not yet committed), each behind its
//! chunk's write-ahead intents.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use exo_writeback_core::directory::ObjectModify;
use exo_writeback_core::provisioning::{Action, CycleStatus, LogStatus};
use exo_writeback_store_sqlite::prelude::*;
use exo_writeback_store_sqlite::{LogQuery, SqliteStore};
use jiff::{SignedDuration, Timestamp};

use super::support::{engine, users};
use crate::ports::{Directory, DirectoryError};
use crate::testing::{FakeDirectory, Hook, Hooked};
use crate::{CycleMode, EngineOptions};

/// The fake directory, whose first `hold` modifies are answered only once modify `hold + 1`
/// was sent; each modify notes how many write-ahead intents the state held when it was sent.
type Gated = Hooked<Gate>;

/// The gate of [`Gated`].
#[derive(Clone)]
struct Gate {
    hold: usize,
    sent: Arc<AtomicUsize>,
    open: Arc<AtomicBool>,
    opened: Arc<tokio::sync::Notify>,
    intents_at_send: Arc<Mutex<Vec<usize>>>,
    state_dir: PathBuf,
}

impl Hook for Gate {
    async fn modify(
        &self,
        inner: &FakeDirectory,
        modify: &ObjectModify,
    ) -> Result<(), DirectoryError> {
        let intents = SqliteStore::open_in(&self.state_dir)
            .and_then(|s| s.intents())
            .expect("intents")
            .len();
        self.intents_at_send.lock().expect("lock").push(intents);
        let n = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.hold + 1 {
            self.open.store(true, Ordering::SeqCst);
            self.opened.notify_waiters();
        }
        while n <= self.hold && !self.open.load(Ordering::SeqCst) {
            let opened = self.opened.notified();
            tokio::pin!(opened);
            opened.as_mut().enable();
            if self.open.load(Ordering::SeqCst) {
                break;
            }
            opened.await;
        }
        inner.modify(modify).await
    }
}

/// Chunks of 3: the first chunk's three modifies are answered only once the second chunk's
/// first modify was sent. A writer that waits for a chunk's last answer (and the commit of its
/// outcomes) before sending the next chunk never gets there. The second chunk's first modify
/// goes out with both chunks' intents stored (the first chunk's outcomes wait for its answers);
/// in the end every object is written and logged once, and no intent is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_chunks_modifies_are_sent_while_a_chunks_outcomes_wait_for_their_answers() {
    let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
    let lab = users(7, t0, &[]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir: Gated = Hooked {
        inner: lab.dir.clone(),
        hook: Gate {
            hold: 3,
            sent: Arc::default(),
            open: Arc::default(),
            opened: Arc::default(),
            intents_at_send: Arc::default(),
            state_dir: tmp.path().to_path_buf(),
        },
    };
    let mut engine = engine(
        &lab.source,
        dir.clone(),
        tmp.path(),
        1000,
        EngineOptions {
            overlap: SignedDuration::from_mins(5),
            batch: 3,
            ..EngineOptions::default()
        },
    );
    let r = tokio::time::timeout(Duration::from_secs(20), engine.run_cycle(CycleMode::Auto))
        .await
        .expect(
            "the next chunk's modifies were not sent while the chunk before waited for its answers",
        )
        .expect("cycle");
    assert_eq!(r.status, CycleStatus::Completed);
    assert_eq!((r.counts.written, r.counts.failed), (7, 0));
    let at_send = dir.intents_at_send.lock().expect("lock").clone();
    assert_eq!(at_send.len(), 7, "{at_send:?}");
    assert_eq!(
        at_send[..4],
        [3, 3, 3, 6],
        "chunk 1 is sent behind its 3 intents; chunk 2's first modify behind both chunks' ({at_send:?})"
    );
    assert!(engine.store.intents().expect("intents").is_empty());
    let logs = engine
        .store
        .query_logs(&LogQuery {
            limit: 100,
            ..LogQuery::default()
        })
        .expect("logs");
    for guid in &lab.guids {
        let applied = logs
            .iter()
            .filter(|e| {
                e.status == LogStatus::Success
                    && e.action == Action::Update
                    && e.target.object_guid == Some(*guid)
            })
            .count();
        assert_eq!(applied, 1, "{guid}");
    }
}
