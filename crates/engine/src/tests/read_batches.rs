//! The batches of an initial or full cycle's read phase: `bulk_read` mailboxes whose candidates
//! are read by objectGUID with one request (`take.rs`, `bulk.rs`) — every object read once, in
//! requests of at most `bulk_read`; a request that fails leaves each of its mailboxes to read
//! its own, so a failure fails only the objects it concerns and the cycle goes on — and
//! `read_batch` outcomes that need no write committed together (`read.rs`); those not yet
//! committed when the process dies are processed again by the next cycle (the watermark moves
//! only at the end of a cycle that read everything).

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use exo_writeback_core::provisioning::{CycleId, CycleKind, CycleStatus};
use exo_writeback_store_sqlite::SqliteStore;
use exo_writeback_store_sqlite::prelude::*;
use futures::FutureExt;
use jiff::Timestamp;
use uuid::Uuid;

use super::support::{cycle_entries, hooked_engine, users};
use crate::testing::Hook;
use crate::{CycleMode, DirectoryError, EngineOptions};

/// Records each read by objectGUID; fails those asking for `failing` (one request of several
/// objects, or the object's own read) as an unreachable DC would.
#[derive(Clone, Default)]
struct Reads {
    together: Arc<Mutex<Vec<Vec<Uuid>>>>,
    alone: Arc<Mutex<Vec<Uuid>>>,
    failing: Arc<Mutex<Option<Uuid>>>,
}

impl Reads {
    fn take(&self) -> (Vec<Vec<Uuid>>, Vec<Uuid>) {
        (
            std::mem::take(&mut *self.together.lock().expect("lock")),
            std::mem::take(&mut *self.alone.lock().expect("lock")),
        )
    }
}

const FAILED_READ: &str = "reading the objects failed: the server is busy (injected)";

impl Hook for Reads {
    fn reading_guids(&self, guids: &[Uuid], together: bool) -> Result<(), DirectoryError> {
        if together {
            self.together.lock().expect("lock").push(guids.to_vec());
        } else {
            self.alone.lock().expect("lock").extend(guids);
        }
        match *self.failing.lock().expect("lock") {
            Some(f) if guids.contains(&f) => Err(DirectoryError::new(FAILED_READ)),
            _ => Ok(()),
        }
    }
}

fn t0() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().expect("ts")
}

#[tokio::test]
async fn each_object_is_read_once_in_requests_of_at_most_bulk_read() {
    let bulk_read = 3;
    for n in [1u32, 2, 3, 4, 6, 7] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let lab = users(n, t0(), &[]);
        let hook = Reads::default();
        let options = EngineOptions {
            bulk_read,
            // Neither cycle keeps its scan's objects: both read them.
            scan_cache_bytes: 0,
            initial_scan_cache_bytes: 0,
            ..EngineOptions::default()
        };
        let mut engine = hooked_engine(&lab.source, &lab.dir, &hook, tmp.path(), options);
        for (mode, kind) in [
            (CycleMode::Auto, CycleKind::Initial),
            (CycleMode::Full, CycleKind::FullReconcile),
        ] {
            let r = engine.run_cycle(mode).await.expect("cycle");
            assert_eq!((r.kind, r.status), (kind, CycleStatus::Completed));
            assert_eq!(r.counts.written + r.counts.unchanged, u64::from(n));
            let (together, alone) = hook.take();
            // In listing order, `bulk_read` mailboxes (one candidate each) per request.
            let expected: Vec<Vec<Uuid>> = lab
                .guids
                .chunks(bulk_read)
                .map(|c| {
                    let mut c = c.to_vec();
                    c.sort();
                    c
                })
                .collect();
            assert_eq!(together, expected, "{kind:?} of {n}: the requests");
            assert!(alone.is_empty(), "{kind:?} of {n}: read alone {alone:?}");
        }
    }
}

#[tokio::test]
async fn a_failed_batch_read_fails_only_its_object_and_the_cycle_goes_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lab = users(7, t0(), &[]);
    let hook = Reads::default();
    let options = EngineOptions {
        bulk_read: 3,
        // The initial cycle reads every candidate (none kept).
        initial_scan_cache_bytes: 0,
        ..EngineOptions::default()
    };
    let mut engine = hooked_engine(&lab.source, &lab.dir, &hook, tmp.path(), options);
    // The second batch (users 4 to 6) cannot be read together, nor user 5 alone.
    let bad = lab.guids[4];
    *hook.failing.lock().expect("lock") = Some(bad);
    let r = engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(
        (r.kind, r.status),
        (CycleKind::Initial, CycleStatus::Completed)
    );
    assert_eq!(
        (r.counts.imported, r.counts.written, r.counts.failed),
        (7, 6, 1)
    );
    assert!(r.watermark.is_some());
    let (together, mut alone) = hook.take();
    assert_eq!(together.len(), 3);
    alone.sort();
    let mut second: Vec<Uuid> = lab.guids[3..6].to_vec();
    second.sort();
    assert_eq!(
        alone, second,
        "each of the failed request's mailboxes read its own"
    );
    // Nothing written to the object that could not be read; every other object once.
    let modified: Vec<String> = lab
        .dir
        .modifies
        .lock()
        .expect("lock")
        .iter()
        .map(|m| m.dn.clone())
        .collect();
    let unique: BTreeSet<&String> = modified.iter().collect();
    assert_eq!((modified.len(), unique.len()), (6, 6));
    assert!(!unique.contains(&lab.dns[4]));
    assert!(lab.dir.values(&bad, "extensionAttribute1").is_empty());
    let failures = super::failures(&engine.store);
    assert_eq!(failures.len(), 1);
    assert_eq!(
        failures[0].source.primary_smtp_address.as_deref(),
        Some("user5@contoso.com")
    );
    let reason = failures[0].reason.clone().expect("reason");
    assert!(reason.message.contains(FAILED_READ), "{reason:?}");
    assert_eq!(engine.store.escrow_count().expect("escrow"), 1);
    // The DC answers again: the next cycle (a delta, nothing changed in the cloud) writes it.
    *hook.failing.lock().expect("lock") = None;
    let r = engine.run_cycle(CycleMode::Auto).await.expect("delta");
    assert_eq!(r.kind, CycleKind::Delta);
    assert_eq!(
        (r.counts.retried, r.counts.written, r.counts.failed),
        (1, 1, 0)
    );
    assert_eq!(engine.store.escrow_count().expect("escrow"), 0);
    for (i, g) in lab.guids.iter().enumerate() {
        assert_eq!(
            lab.dir.values(g, "extensionAttribute1"),
            [format!("ca1-{}", i + 1)]
        );
    }
}

/// At each request for a batch's candidates: the mailboxes admitted so far (one candidate
/// each) and the outcomes of the cycle committed so far, read through a second connection to
/// the state (as a process killed at that moment would leave them).
#[derive(Clone)]
struct Committed {
    state: Arc<Mutex<SqliteStore>>,
    cycle: Arc<Mutex<Option<CycleId>>>,
    admitted: Arc<Mutex<usize>>,
    seen: Arc<Mutex<Vec<(usize, usize)>>>,
}

impl Hook for Committed {
    fn reading_guids(&self, guids: &[Uuid], together: bool) -> Result<(), DirectoryError> {
        if together {
            *self.admitted.lock().expect("lock") += guids.len();
        }
        Ok(())
    }
    async fn before_read_by_guids(&self) {
        let Some(cycle) = *self.cycle.lock().expect("lock") else {
            return;
        };
        let committed = cycle_entries(&self.state.lock().expect("lock"), cycle).len();
        let admitted = *self.admitted.lock().expect("lock");
        self.seen.lock().expect("lock").push((admitted, committed));
    }
}

#[tokio::test]
async fn outcomes_without_a_write_are_committed_read_batch_at_a_time() {
    let n = 12;
    // (read_batch, batch, outcomes per commit): read_batch, at least `batch`.
    for (read_batch, batch, per_commit) in [(4, 2, 4), (1, 3, 3), (5, 1, 5)] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let lab = users(n, t0(), &[]);
        let hook = Committed {
            state: Arc::new(Mutex::new(
                SqliteStore::open_in(tmp.path()).expect("second connection"),
            )),
            cycle: Arc::default(),
            admitted: Arc::default(),
            seen: Arc::default(),
        };
        let bulk_read = 1;
        let options = EngineOptions {
            bulk_read,
            batch,
            read_batch,
            scan_cache_bytes: 0,
            ..EngineOptions::default()
        };
        let mut engine = hooked_engine(&lab.source, &lab.dir, &hook, tmp.path(), options);
        let r = engine.run_cycle(CycleMode::Auto).await.expect("initial");
        assert_eq!(r.counts.written, u64::from(n));
        // A full reconcile: every mailbox in sync, each outcome committed in the read phase.
        *hook.cycle.lock().expect("lock") = Some(CycleId(r.cycle.0 + 1));
        *hook.admitted.lock().expect("lock") = 0;
        let r = engine.run_cycle(CycleMode::Full).await.expect("full");
        assert_eq!(r.cycle, CycleId(2));
        assert_eq!((r.counts.unchanged, r.counts.written), (u64::from(n), 0));
        let seen = hook.seen.lock().expect("lock").clone();
        assert_eq!(seen.len(), n as usize, "read_batch {read_batch}: {seen:?}");
        for &(admitted, committed) in &seen {
            assert_eq!(
                committed % per_commit,
                0,
                "read_batch {read_batch}, batch {batch}: {committed} committed at once ({seen:?})"
            );
            // Waiting uncommitted: fewer than a commit's worth taken, and the two batches in
            // the read phase's pipeline (one evaluated while the next one's candidates are read).
            assert!(
                admitted - committed < per_commit + 2 * bulk_read,
                "read_batch {read_batch}, batch {batch}: {admitted} admitted, {committed} \
                 committed ({seen:?})"
            );
        }
        let logged = cycle_entries(&engine.store, r.cycle);
        assert_eq!(logged.len(), n as usize);
    }
}

/// A process "killed" (a panic: nothing after it runs, as kill -9) when it asks for the
/// `die_at`-th object read on its own.
#[derive(Clone, Default)]
struct DieAt {
    alone: Arc<AtomicUsize>,
    die_at: Arc<AtomicUsize>,
}

impl Hook for DieAt {
    fn reading_guids(&self, _guids: &[Uuid], together: bool) -> Result<(), DirectoryError> {
        if !together {
            let n = self.alone.fetch_add(1, Ordering::SeqCst) + 1;
            if n == self.die_at.load(Ordering::SeqCst) {
                panic!("kill -9 at the read of object {n}");
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn outcomes_not_yet_committed_when_the_process_dies_are_processed_by_the_next_cycle() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lab = users(8, t0(), &[]);
    let hook = DieAt::default();
    // A delta evaluates one mailbox at a time; its outcomes are committed 3 at a time.
    let options = EngineOptions {
        evaluate_concurrency: 1,
        read_batch: 3,
        batch: 1,
        ..EngineOptions::default()
    };
    let process = || hooked_engine(&lab.source, &lab.dir, &hook, tmp.path(), options.clone());
    let r = process().run_cycle(CycleMode::Auto).await.expect("initial");
    assert_eq!(r.counts.written, 8);
    let first = r.cycle;
    // Every mailbox changes to a value AD does not allow (a failure before any write: an
    // outcome of the read phase), the listing newest first, as a listing may come.
    let mut changed = Vec::new();
    for (i, m) in lab
        .source
        .mailboxes
        .lock()
        .expect("lock")
        .iter()
        .enumerate()
    {
        let mut m = m.clone();
        m.custom_attributes[0] = Some("x".repeat(1500));
        m.when_changed_utc = Some(t0() + jiff::SignedDuration::from_hours(9 - i as i64));
        changed.push(m);
    }
    for m in changed {
        lab.source.set(m);
    }
    // The delta dies at the fifth mailbox: three outcomes committed, the fourth's not.
    hook.alone.store(0, Ordering::SeqCst);
    hook.die_at.store(5, Ordering::SeqCst);
    let mut dying = process();
    let died = AssertUnwindSafe(dying.run_cycle(CycleMode::Auto))
        .catch_unwind()
        .await;
    assert!(died.is_err(), "the cycle was not killed");
    drop(dying);
    hook.die_at.store(usize::MAX, Ordering::SeqCst);
    let mut engine = process();
    let killed = CycleId(first.0 + 1);
    let committed: Vec<_> = cycle_entries(&engine.store, killed)
        .into_iter()
        .map(|e| e.source.primary_smtp_address.unwrap_or_default())
        .collect();
    assert_eq!(
        committed.iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([
            &"user1@contoso.com".to_string(),
            &"user2@contoso.com".to_string(),
            &"user3@contoso.com".to_string()
        ])
    );
    assert_eq!(engine.store.escrow_count().expect("escrow"), 3);
    let watermark = engine
        .store
        .watermark()
        .expect("watermark")
        .map(|w| w.cycle);
    assert_eq!(
        watermark,
        Some(first),
        "the killed cycle moved the watermark"
    );
    // The next process's delta reads from the watermark the killed cycle never moved: the
    // fourth mailbox (and those not read) are processed, none is lost.
    let r = engine.run_cycle(CycleMode::Auto).await.expect("next delta");
    assert_eq!(r.kind, CycleKind::Delta);
    assert_eq!((r.counts.imported, r.counts.failed), (8, 8));
    assert_eq!(engine.store.escrow_count().expect("escrow"), 8);
    let logged: BTreeSet<String> = cycle_entries(&engine.store, r.cycle)
        .into_iter()
        .filter_map(|e| e.source.primary_smtp_address)
        .collect();
    assert!(logged.contains("user4@contoso.com"), "{logged:?}");
    assert_eq!(logged.len(), 8);
}
