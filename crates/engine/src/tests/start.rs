//! The start of an initial or full cycle (`settle.rs`): the schema refresh and the read-rights
//! probe run beside the scan, and a full reconcile decides what is in sync while the scan still
//! runs — every write is still planned after the scan, on objects read fresh; the read phase
//! reads a batch's candidates while the batch before is evaluated (`take.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use exo_writeback_core::outcome::OutcomeCode;
use exo_writeback_core::provisioning::{CycleKind, CycleStatus};
use exo_writeback_store_sqlite::LogQuery;
use exo_writeback_store_sqlite::prelude::*;
use jiff::Timestamp;

use super::support::{engine, users};
use crate::testing::{FakeDirectory, Hook, Hooked, Users};
use crate::{CycleMode, EngineOptions};

/// `n` users in the fake directory behind `hook`, and an engine on them (its state in `tmp`).
fn hooked<H: Hook + Clone + Sync>(
    n: u32,
    hook: H,
    tmp: &tempfile::TempDir,
    options: EngineOptions,
) -> (
    Users,
    crate::Engine<crate::testing::FakeSource, Hooked<H>, exo_writeback_store_sqlite::SqliteStore>,
) {
    let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
    let lab = users(n, t0, &[]);
    let dir = Hooked {
        inner: lab.dir.clone(),
        hook,
    };
    let engine = engine(&lab.source, dir, tmp.path(), 1000, options);
    (lab, engine)
}

/// The schema refresh and the scan each wait until the other has begun; the read-rights probe,
/// which evaluates the scan's first objects (`read_rights.rs`'s `ScanSamples`), and the scan's
/// end each wait for the other: a cycle that runs them one after the other never gets past the
/// first.
#[derive(Clone)]
struct Together {
    started: Arc<tokio::sync::Barrier>,
    sampled: Arc<tokio::sync::Barrier>,
}

impl Hook for Together {
    async fn before_schema(&self) {
        self.started.wait().await;
    }
    async fn before_scan(&self) {
        self.started.wait().await;
    }
    async fn before_rights(&self) {
        self.sampled.wait().await;
    }
    async fn after_scan(&self) {
        self.sampled.wait().await;
    }
}

#[tokio::test]
async fn the_schema_refresh_and_the_read_rights_probe_run_beside_the_scan() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let hook = Together {
        started: Arc::new(tokio::sync::Barrier::new(2)),
        sampled: Arc::new(tokio::sync::Barrier::new(2)),
    };
    // More objects than the probe samples: it starts before the scan has handed over the last.
    let (_lab, mut engine) = hooked(130, hook, &tmp, EngineOptions::default());
    for (mode, kind) in [
        (CycleMode::Auto, CycleKind::Initial),
        (CycleMode::Full, CycleKind::FullReconcile),
    ] {
        let r = tokio::time::timeout(Duration::from_secs(20), engine.run_cycle(mode))
            .await
            .expect(
                "the schema refresh, the read-rights probe and the scan ran one after the other",
            )
            .expect("cycle");
        assert_eq!((r.kind, r.status), (kind, CycleStatus::Completed));
        assert_eq!(r.counts.written + r.counts.unchanged, 130);
    }
}

/// The order in which the schema refresh and the scan began.
#[derive(Clone, Default)]
struct Order {
    began: Arc<Mutex<Vec<&'static str>>>,
}

impl Hook for Order {
    async fn before_schema(&self) {
        self.began.lock().expect("lock").push("schema");
    }
    async fn before_scan(&self) {
        self.began.lock().expect("lock").push("scan");
    }
}

#[tokio::test]
async fn the_schema_refresh_begins_before_the_scan() {
    // The scan's first request needs the schema to decode its answer: begun first, the
    // refresh (on AD's side connection) is the read the scan waits for, not a second one.
    let tmp = tempfile::tempdir().expect("tempdir");
    let hook = Order::default();
    let (_lab, mut engine) = hooked(4, hook.clone(), &tmp, EngineOptions::default());
    for mode in [CycleMode::Auto, CycleMode::Full] {
        hook.began.lock().expect("lock").clear();
        engine.run_cycle(mode).await.expect("cycle");
        let began = hook.began.lock().expect("lock").clone();
        assert_eq!(began.first(), Some(&"schema"), "{mode:?}: {began:?}");
        assert!(began.contains(&"scan"), "{mode:?}: {began:?}");
    }
}

/// The scan's last page is followed by a pause (a DC still reading); notes when the scan
/// returned, and on the scan numbered `move_on` moves the object `moving` to a new DN just
/// before returning (an administrator's rename after the scan read it).
#[derive(Clone)]
struct SlowEnd {
    ended: Arc<Mutex<Option<Timestamp>>>,
    scans: Arc<AtomicUsize>,
    move_on: usize,
    moving: Arc<Mutex<Option<(FakeDirectory, uuid::Uuid)>>>,
}

impl SlowEnd {
    fn new() -> SlowEnd {
        SlowEnd {
            ended: Arc::default(),
            scans: Arc::default(),
            move_on: usize::MAX,
            moving: Arc::default(),
        }
    }
}

const MOVED: &str = "CN=moved after the scan,OU=Mailboxes,DC=lab,DC=test";

impl Hook for SlowEnd {
    async fn after_scan(&self) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        *self.ended.lock().expect("lock") = Some(Timestamp::now());
        let n = self.scans.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.move_on
            && let Some((dir, guid)) = self.moving.lock().expect("lock").as_ref()
        {
            let mut o = dir.get(guid);
            o.dn = MOVED.into();
            dir.insert(o);
        }
    }
}

#[tokio::test]
async fn a_full_reconcile_finds_mailboxes_in_sync_while_the_scan_still_runs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let hook = SlowEnd::new();
    let (lab, mut engine) = hooked(6, hook.clone(), &tmp, EngineOptions::default());
    let r = engine.run_cycle(CycleMode::Auto).await.expect("initial");
    assert_eq!(r.counts.written, 6);
    let reads = lab.dir.reads.load(Ordering::SeqCst);
    let r = engine.run_cycle(CycleMode::Full).await.expect("full");
    assert_eq!((r.counts.unchanged, r.counts.written), (6, 0));
    assert_eq!(
        lab.dir.reads.load(Ordering::SeqCst),
        reads,
        "no object read again"
    );
    let ended = hook.ended.lock().expect("lock").expect("scanned");
    let entries = engine
        .store
        .query_logs(&LogQuery {
            cycle: Some(r.cycle),
            ..LogQuery::default()
        })
        .expect("logs");
    assert_eq!(entries.len(), 6);
    for e in &entries {
        assert_eq!(
            e.reason.as_ref().map(|r| r.code),
            Some(OutcomeCode::AlreadyInSync)
        );
        assert!(
            e.time < ended,
            "{:?} was evaluated at {}, after the scan ended at {ended}",
            e.source.primary_smtp_address,
            e.time
        );
    }
}

#[tokio::test]
async fn a_full_reconcile_writes_a_change_at_the_name_its_object_took_after_the_scan() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let hook = SlowEnd {
        move_on: 2,
        ..SlowEnd::new()
    };
    let (lab, mut engine) = hooked(3, hook.clone(), &tmp, EngineOptions::default());
    *hook.moving.lock().expect("lock") = Some((lab.dir.clone(), lab.guids[0]));
    let r = engine.run_cycle(CycleMode::Auto).await.expect("initial");
    assert_eq!(r.counts.written, 3);
    let mut m = lab.source.mailboxes.lock().expect("lock")[0].clone();
    m.custom_attributes[0] = Some("changed in the cloud".into());
    lab.source.set(m);
    let r = engine.run_cycle(CycleMode::Full).await.expect("full");
    assert_eq!((r.counts.written, r.counts.unchanged), (1, 2));
    let last = lab.dir.modifies.lock().expect("lock").last().cloned();
    assert_eq!(last.map(|m| m.dn), Some(MOVED.to_string()));
    assert_eq!(
        lab.dir.values(&lab.guids[0], "extensionAttribute1"),
        ["changed in the cloud"]
    );
}

/// A search for an address's holders (made while a batch is evaluated) waits until the bulk
/// read of `reads` batches' candidates has begun.
#[derive(Clone)]
struct ReadWhileEvaluating {
    reads: usize,
    begun: Arc<AtomicUsize>,
    read: Arc<tokio::sync::Notify>,
}

impl Hook for ReadWhileEvaluating {
    async fn before_read_by_guids(&self) {
        self.begun.fetch_add(1, Ordering::SeqCst);
        self.read.notify_waiters();
    }
    // With the DC's change mark, a batch's read of its kept candidates is this check.
    async fn before_changed_since(&self) {
        self.before_read_by_guids().await;
    }
    async fn before_address_holders(&self) {
        loop {
            let read = self.read.notified();
            tokio::pin!(read);
            read.as_mut().enable();
            if self.begun.load(Ordering::SeqCst) >= self.reads {
                return;
            }
            read.await;
        }
    }
}

#[tokio::test]
async fn an_initial_cycle_reads_the_next_batchs_candidates_while_a_batch_is_evaluated() {
    // Read fresh (no object kept), and checked against the DC's change mark (all kept).
    for initial_scan_cache_bytes in [0, EngineOptions::default().initial_scan_cache_bytes] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let hook = ReadWhileEvaluating {
            reads: 2,
            begun: Arc::default(),
            read: Arc::default(),
        };
        let options = EngineOptions {
            bulk_read: 2,
            initial_scan_cache_bytes,
            ..EngineOptions::default()
        };
        reads_ahead(hook, &tmp, options).await;
    }
}

async fn reads_ahead(hook: ReadWhileEvaluating, tmp: &tempfile::TempDir, options: EngineOptions) {
    let (lab, mut engine) = hooked(4, hook, tmp, options);
    // Another object holds an address the first mailbox adds: its evaluation searches.
    lab.dir.add_user(
        "holder",
        "holder",
        &[("proxyAddresses", &["smtp:user1@contoso.onmicrosoft.com"])],
    );
    let r = tokio::time::timeout(Duration::from_secs(10), engine.run_cycle(CycleMode::Auto))
        .await
        .expect("the second batch's candidates were read only after the first batch was evaluated")
        .expect("cycle");
    assert_eq!(r.kind, CycleKind::Initial);
    assert_eq!((r.counts.written, r.counts.failed), (3, 1));
    assert_eq!(
        r.failure_causes.keys().collect::<Vec<_>>(),
        [&OutcomeCode::ProxyAddressConflict]
    );
}
