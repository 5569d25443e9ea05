//! A full reconcile records the outcomes of the mailboxes its scan finds in sync while the
//! scan runs (`settle/recording.rs`), on the store's log recorder: they are in the state
//! before the scan ends, once each, and the cycle counts and takes them as before.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use exo_writeback_core::outcome::OutcomeCode;
use exo_writeback_core::provisioning::{CycleKind, CycleStatus};
use exo_writeback_store_sqlite::prelude::*;
use exo_writeback_store_sqlite::{LogQuery, SqliteStore};
use jiff::Timestamp;

use super::support::{cycle_entries, hooked_engine, users};
use crate::testing::Hook;
use crate::{CycleMode, EngineOptions};

/// At the end of each scan, how many in-sync entries the state holds (read on a connection
/// of its own), waiting up to two seconds for `expect` of them.
#[derive(Clone)]
struct CountAtScanEnd {
    state_dir: std::path::PathBuf,
    expect: Arc<AtomicUsize>,
    counts: Arc<Mutex<Vec<usize>>>,
}

impl CountAtScanEnd {
    fn in_sync(&self) -> usize {
        let store = SqliteStore::open_in(&self.state_dir).expect("second store");
        store
            .query_logs(&LogQuery {
                limit: 100_000,
                ..LogQuery::default()
            })
            .expect("logs")
            .iter()
            .filter(|e| e.reason.as_ref().map(|r| r.code) == Some(OutcomeCode::AlreadyInSync))
            .count()
    }
}

impl Hook for CountAtScanEnd {
    async fn after_scan(&self) {
        let mut n = self.in_sync();
        for _ in 0..200 {
            if n >= self.expect.load(Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            n = self.in_sync();
        }
        self.counts.lock().expect("lock").push(n);
    }
}

#[tokio::test]
async fn in_sync_outcomes_are_durable_before_the_scan_ends_and_recorded_once() {
    let n = 40;
    let tmp = tempfile::tempdir().expect("tempdir");
    let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
    let lab = users(n, t0, &[]);
    let hook = CountAtScanEnd {
        state_dir: tmp.path().to_path_buf(),
        expect: Arc::default(),
        counts: Arc::default(),
    };
    let options = EngineOptions {
        read_ahead: 100,
        ..EngineOptions::default()
    };
    let mut engine = hooked_engine(&lab.source, &lab.dir, &hook, tmp.path(), options);
    let initial = engine.run_cycle(CycleMode::Auto).await.expect("initial");
    assert_eq!(initial.counts.written, u64::from(n));
    hook.expect.store(n as usize, Ordering::SeqCst);
    let full = engine.run_cycle(CycleMode::Full).await.expect("full");
    assert_eq!(
        (full.kind, full.status),
        (CycleKind::FullReconcile, CycleStatus::Completed)
    );
    let counts = hook.counts.lock().expect("lock").clone();
    assert_eq!(
        counts,
        [0, n as usize],
        "in-sync entries in the state when each scan ended (the initial cycle's, the full \
         reconcile's)"
    );
    assert_eq!(
        (
            full.counts.imported,
            full.counts.in_scope,
            full.counts.unchanged,
            full.counts.written
        ),
        (u64::from(n), u64::from(n), u64::from(n), 0)
    );
    let entries = cycle_entries(&engine.store, full.cycle);
    assert_eq!(entries.len(), n as usize, "one entry per mailbox");
    let mut ids: Vec<_> = entries
        .iter()
        .map(|e| e.source.external_directory_object_id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n as usize);
    // Found by identity as the store's own entries are, and the watermark moved past them.
    let first = entries[0]
        .source
        .primary_smtp_address
        .clone()
        .expect("smtp");
    let by_identity = engine
        .store
        .query_logs(&LogQuery {
            identity: Some(first),
            cycle: Some(full.cycle),
            limit: 10,
            ..LogQuery::default()
        })
        .expect("by identity");
    assert_eq!(by_identity.len(), 1);
    assert!(full.watermark.is_some(), "the watermark moved");
}
