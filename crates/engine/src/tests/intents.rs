//! Write-ahead intents over the engine: processes killed mid-chunk, AD unreachable mid-cycle.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use exo_writeback_core::directory::{AttrValue, ObjectModify};
use exo_writeback_core::provisioning::{
    Action, CycleId, CycleStatus, JobState, LogStatus, ObjectRef, ProvisioningLogEntry,
    RestartScope,
};
use exo_writeback_core::settings::WritebackSettings;
use exo_writeback_store_sqlite::prelude::*;
use exo_writeback_store_sqlite::{LogQuery, SqliteStore};
use futures::FutureExt;
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

use super::support::{engine, users};
use crate::intents::{Reconciled, holds, reconcile};
use crate::ports::{Directory, DirectoryError};
use crate::testing::{FakeDirectory, FakeSource, Hook, Hooked};
use crate::{CycleMode, Engine, EngineError, EngineOptions, UndoTarget};
use exo_writeback_core::schema::Syntax;

/// The modify after which a stop request is raised, and the flag it is raised on.
type StopAfter = (usize, Arc<AtomicBool>);

/// The fake directory, plus a process "killed" (a panic, which drops the engine mid-cycle
/// like kill -9: nothing after it runs) when the `die_at`-th modify is about to be sent,
/// and reads that fail while `unreachable` is set.
type Dying = Hooked<Faults>;

/// The faults of [`Dying`].
#[derive(Clone)]
struct Faults {
    die_at: Arc<AtomicUsize>,
    sent: Arc<AtomicUsize>,
    unreachable: Arc<AtomicBool>,
    /// Die after applying the `die_at`-th modify instead of before.
    apply_then_die: Arc<AtomicBool>,
    /// Modifies after the `refuse_after`-th are refused as if AD could not be reached,
    /// while `refusals` (counted down per refusal) is above zero.
    refuse_after: Arc<AtomicUsize>,
    refusals: Arc<AtomicUsize>,
    /// A stop request (as SIGTERM sets it) raised on this flag once the `n`-th modify is
    /// applied.
    stop_after: Arc<std::sync::Mutex<Option<StopAfter>>>,
}

fn dying(inner: FakeDirectory) -> Dying {
    Hooked {
        inner,
        hook: Faults {
            die_at: Arc::new(AtomicUsize::new(usize::MAX)),
            sent: Arc::default(),
            unreachable: Arc::default(),
            apply_then_die: Arc::default(),
            refuse_after: Arc::default(),
            refusals: Arc::default(),
            stop_after: Arc::default(),
        },
    }
}

impl Hook for Faults {
    fn before_read(&self) -> Result<(), DirectoryError> {
        if self.unreachable.load(Ordering::SeqCst) {
            return Err(DirectoryError::unreachable("connection refused"));
        }
        Ok(())
    }
    async fn modify(
        &self,
        inner: &FakeDirectory,
        modify: &ObjectModify,
    ) -> Result<(), DirectoryError> {
        let n = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
        if n > self.refuse_after.load(Ordering::SeqCst) && self.refusals.load(Ordering::SeqCst) > 0
        {
            self.refusals.fetch_sub(1, Ordering::SeqCst);
            return Err(DirectoryError::unreachable("connection refused"));
        }
        if n < self.die_at.load(Ordering::SeqCst) {
            inner.modify(modify).await?;
            if let Some((at, stop)) = &*self.stop_after.lock().expect("lock")
                && n == *at
            {
                stop.store(true, Ordering::SeqCst);
            }
            return Ok(());
        }
        if self.apply_then_die.load(Ordering::SeqCst) {
            inner.modify(modify).await?;
            panic!("kill -9 after modify {n}");
        }
        panic!("kill -9 before modify {n}");
    }
}

type TestEngine = Engine<FakeSource, Dying, SqliteStore>;

struct Lab {
    tmp: tempfile::TempDir,
    source: FakeSource,
    fake: FakeDirectory,
    dir: Dying,
    guids: Vec<Uuid>,
}

fn lab(n: u32) -> Lab {
    let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
    let users = users(n, t0, &[("proxyAddresses", &["X500:/o=Legacy/cn=old"])]);
    Lab {
        tmp: tempfile::tempdir().expect("tempdir"),
        source: users.source,
        dir: dying(users.dir.clone()),
        fake: users.dir,
        guids: users.guids,
    }
}

impl Lab {
    /// A new agent process on the same state directory and directory.
    fn engine(&self) -> TestEngine {
        self.engine_with_threshold(WritebackSettings::default().threshold)
    }

    /// A new agent process whose change threshold is `threshold`.
    fn engine_with_threshold(&self, threshold: u32) -> TestEngine {
        engine(
            &self.source,
            self.dir.clone(),
            self.tmp.path(),
            threshold,
            EngineOptions {
                overlap: SignedDuration::from_mins(5),
                batch: 3,
                reconnect_waits: vec![std::time::Duration::from_millis(5); 3],
                ..EngineOptions::default()
            },
        )
    }

    /// Runs a cycle in a process killed before the `n`-th modify.
    async fn killed_cycle(&self, n: usize) {
        self.dir.die_at.store(n, Ordering::SeqCst);
        let mut engine = self.engine();
        let died = AssertUnwindSafe(engine.run_cycle(CycleMode::Auto))
            .catch_unwind()
            .await;
        assert!(died.is_err(), "the cycle was not killed");
        drop(engine);
        self.dir.die_at.store(usize::MAX, Ordering::SeqCst);
    }

    fn ca1(&self, i: usize) -> Vec<String> {
        self.fake.values(&self.guids[i], "extensionAttribute1")
    }
}

fn all_logs(store: &SqliteStore) -> Vec<ProvisioningLogEntry> {
    store
        .query_logs(&LogQuery {
            limit: 10_000,
            ..LogQuery::default()
        })
        .expect("logs")
}

/// Success entries that record a change as applied, per objectGUID.
fn applied(store: &SqliteStore, guid: Uuid) -> Vec<ProvisioningLogEntry> {
    all_logs(store)
        .into_iter()
        .filter(|e| {
            e.status == LogStatus::Success
                && e.action == Action::Update
                && e.target.object_guid == Some(guid)
        })
        .collect()
}

#[tokio::test]
async fn a_kill_between_a_modify_and_its_outcome_is_logged_once_as_applied_with_its_journal() {
    // Batches of 3: objects 1–3 are logged; the kill comes before the 5th modify, so
    // object 4 is written in AD with only its intent stored, and object 5 is not written.
    let lab = lab(5);
    lab.killed_cycle(5).await;
    assert_eq!(lab.ca1(3), ["ca1-4"], "the 4th modify was applied");
    assert!(lab.ca1(4).is_empty(), "the 5th was not");
    let killed = CycleId(1);
    {
        let store = SqliteStore::open_in(lab.tmp.path()).expect("store");
        assert_eq!(all_logs(&store).len(), 3, "only the first batch is logged");
        let left = store.intents().expect("intents");
        assert_eq!(
            left.iter().map(|i| i.object_guid).collect::<Vec<_>>(),
            [lab.guids[3], lab.guids[4]]
        );
    }

    let mut engine = lab.engine();
    assert_eq!(
        engine
            .store
            .cycle(killed)
            .expect("cycle")
            .expect("killed")
            .status,
        CycleStatus::Interrupted
    );
    let r = engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.status, CycleStatus::Completed);
    // Object 5 written now; 1–4 already hold their values.
    assert_eq!((r.counts.written, r.counts.unchanged), (1, 4));
    assert!(engine.store.intents().expect("intents").is_empty());

    for (i, guid) in lab.guids.iter().enumerate() {
        let entries = applied(&engine.store, *guid);
        assert_eq!(entries.len(), 1, "object {}: {entries:#?}", i + 1);
        let journal = engine
            .store
            .journal_for_object(&ObjectRef::Guid(*guid))
            .expect("journal");
        assert!(
            journal
                .iter()
                .any(|j| j.attribute == "extensionAttribute1" && j.previous.is_empty()),
            "object {} has no journal of its change",
            i + 1
        );
    }
    let late = &applied(&engine.store, lab.guids[3])[0];
    assert_eq!(late.cycle, killed, "logged under the cycle that applied it");
    assert!(
        late.steps.export.details.ends_with(&format!(
            "applied by cycle {killed}, which stopped before logging it; logged by cycle {}",
            r.cycle
        )),
        "{}",
        late.steps.export.details
    );
    assert_eq!(applied(&engine.store, lab.guids[4])[0].cycle, r.cycle);

    // undo of the killed cycle restores everything it applied, the late-logged object too.
    let u = engine.undo(UndoTarget::Cycle(killed)).await.expect("undo");
    assert_eq!(u.counts.written, 4);
    assert!(lab.ca1(3).is_empty());
    assert_eq!(lab.ca1(4), ["ca1-5"]);
}

#[tokio::test]
async fn intents_whose_change_is_not_in_ad_log_nothing_as_applied() {
    // Killed before the 4th modify: objects 4 and 5 have intents, neither was written.
    let lab = lab(5);
    lab.killed_cycle(4).await;
    assert!(lab.ca1(3).is_empty() && lab.ca1(4).is_empty());
    {
        let store = SqliteStore::open_in(lab.tmp.path()).expect("store");
        assert_eq!(store.intents().expect("intents").len(), 2);
    }
    // The next process: its reconciliation drops both intents (not applied); it writes 4,
    // then is killed before writing 5 (so 4 is applied with an intent left) …
    lab.dir.sent.store(0, Ordering::SeqCst);
    lab.killed_cycle(2).await;
    assert_eq!(lab.ca1(3), ["ca1-4"]);
    // … and someone changes object 4 before the next cycle.
    lab.fake.set(
        &lab.guids[3],
        "extensionAttribute1",
        vec![AttrValue::Text("by hand".into())],
    );

    let mut engine = lab.engine();
    let r = engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.status, CycleStatus::Completed);
    assert!(engine.store.intents().expect("intents").is_empty());
    // Object 4's change by the killed cycle is not logged as applied (it no longer holds
    // it); this cycle writes the cloud value again and logs that — once.
    assert_eq!((r.counts.written, r.counts.unchanged), (2, 3));
    for (i, guid) in lab.guids.iter().enumerate() {
        let entries = applied(&engine.store, *guid);
        assert_eq!(entries.len(), 1, "object {}: {entries:#?}", i + 1);
        assert!(
            !entries[0]
                .steps
                .export
                .details
                .contains("stopped before logging"),
            "object {}: {}",
            i + 1,
            entries[0].steps.export.details
        );
    }
    assert_eq!(applied(&engine.store, lab.guids[3])[0].cycle, r.cycle);
    assert_eq!(lab.ca1(3), ["ca1-4"]);
}

#[tokio::test]
async fn a_directory_error_keeps_the_intents_for_the_next_cycle() {
    let lab = lab(5);
    lab.killed_cycle(5).await;
    let mut store = SqliteStore::open_in(lab.tmp.path()).expect("store");
    let by = Some(CycleId(7));

    lab.dir.unreachable.store(true, Ordering::SeqCst);
    let report = reconcile(&lab.dir, &mut store, by)
        .await
        .expect("reconcile");
    assert_eq!(
        report,
        Reconciled {
            kept: 2,
            ..Reconciled::default()
        }
    );
    assert_eq!(store.intents().expect("intents").len(), 2);
    assert_eq!(all_logs(&store).len(), 3);

    // A cycle over an unreachable directory fails on its own account (every object fails:
    // quarantine); the intents stay.
    drop(store);
    let mut engine = lab.engine();
    let r = engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert!(
        matches!(r.status, CycleStatus::Quarantined { .. }),
        "{:?}",
        r.status
    );
    assert_eq!(engine.store.intents().expect("intents").len(), 2);
    engine
        .store
        .restart(RestartScope::Quarantine, Timestamp::now())
        .expect("restart");
    drop(engine);

    lab.dir.unreachable.store(false, Ordering::SeqCst);
    let mut store = SqliteStore::open_in(lab.tmp.path()).expect("store");
    let report = reconcile(&lab.dir, &mut store, by)
        .await
        .expect("reconcile");
    assert_eq!(
        report,
        Reconciled {
            logged: 1,
            not_applied: 1,
            ..Reconciled::default()
        }
    );
    assert!(store.intents().expect("intents").is_empty());
    assert_eq!(applied(&store, lab.guids[3]).len(), 1);

    // An object deleted since: its intent is dropped.
    drop(store);
    lab.killed_cycle(1).await;
    let mut store = SqliteStore::open_in(lab.tmp.path()).expect("store");
    let left = store.intents().expect("intents");
    assert_eq!(left.len(), 1);
    lab.fake.remove(&left[0].object_guid);
    let report = reconcile(&lab.dir, &mut store, by)
        .await
        .expect("reconcile");
    assert_eq!(
        report,
        Reconciled {
            gone: 1,
            ..Reconciled::default()
        }
    );
    assert!(store.intents().expect("intents").is_empty());
}

#[tokio::test]
async fn a_cycle_that_completes_or_is_cancelled_leaves_no_intent() {
    let lab = lab(7);
    let mut engine = lab.engine();
    let cancel = engine.cancel_flag();
    let r = engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.counts.written, 7);
    assert!(engine.store.intents().expect("intents").is_empty());
    for guid in &lab.guids {
        assert_eq!(applied(&engine.store, *guid).len(), 1);
    }
    cancel.store(true, Ordering::SeqCst);
    let r = engine.run_cycle(CycleMode::Full).await.expect("cycle");
    assert_ne!(r.status, CycleStatus::Completed);
    assert!(engine.store.intents().expect("intents").is_empty());
}

/// A stop request (SIGTERM) raised right after the 5th modify, inside the second chunk of 3
/// (objects 4, 5 | 6): the writer sends no further modify; the outcomes of 4 and 5 are
/// committed with the deletion of the whole chunk's intents (6 included, never sent); 6 and 7
/// stay pending — no outcome, the watermark not past them — and the next cycle writes them.
#[tokio::test]
async fn a_stop_after_the_nth_modify_inside_a_chunk_ends_the_writes_there_and_leaves_the_rest_pending()
 {
    let lab = lab(7);
    let stop = Arc::new(AtomicBool::new(false));
    *lab.dir.stop_after.lock().expect("lock") = Some((5, stop.clone()));
    let mut engine = lab.engine();
    engine.set_cancel_flag(stop.clone());
    let r = engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(
        lab.dir.sent.load(Ordering::SeqCst),
        5,
        "no modify after the stop"
    );
    assert_eq!((r.counts.written, r.counts.failed), (5, 0));
    assert!(
        matches!(&r.status, CycleStatus::Failed { reason } if reason.contains("stopped before the end")),
        "{:?}",
        r.status
    );
    // Every mailbox was read: a watermark is stored, but not past the two left pending.
    let pending_changed = lab.source.mailboxes.lock().expect("lock")[5]
        .when_changed_utc
        .expect("changed");
    let w = engine.store.watermark().expect("wm").expect("a watermark");
    assert!(w.changed_since <= pending_changed, "{w:?}");
    assert!(
        engine.store.intents().expect("intents").is_empty(),
        "the chunk's intents (also of the object not reached) are deleted with its outcomes"
    );
    for i in 0..5 {
        assert_eq!(lab.ca1(i), [format!("ca1-{}", i + 1)]);
        assert_eq!(
            applied(&engine.store, lab.guids[i]).len(),
            1,
            "object {}",
            i + 1
        );
    }
    for i in 5..7 {
        assert!(
            lab.ca1(i).is_empty(),
            "object {} written after the stop",
            i + 1
        );
        assert!(
            all_logs(&engine.store)
                .iter()
                .all(|e| e.target.object_guid != Some(lab.guids[i])),
            "object {} has an outcome though it was not written",
            i + 1
        );
    }
    drop(engine);

    // The next run writes the two left; every change is logged as applied once.
    *lab.dir.stop_after.lock().expect("lock") = None;
    let mut engine = lab.engine();
    let r = engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.status, CycleStatus::Completed);
    assert_eq!((r.counts.written, r.counts.unchanged), (2, 5));
    for (i, guid) in lab.guids.iter().enumerate() {
        assert_eq!(applied(&engine.store, *guid).len(), 1, "object {}", i + 1);
    }
}

fn t(v: &[&str]) -> Vec<AttrValue> {
    v.iter().map(|s| AttrValue::Text(s.to_string())).collect()
}

#[test]
fn planned_values_are_held_in_any_order_and_only_exactly() {
    let text = Some(&Syntax::Unicode);
    assert!(holds(text, &t(&["b", "a"]), &t(&["a", "b"])));
    assert!(holds(text, &[], &[]));
    assert!(holds(Some(&Syntax::Integer), &t(&["7"]), &t(&["007"])));
    assert!(holds(Some(&Syntax::Boolean), &t(&["TRUE"]), &t(&["true"])));
    assert!(!holds(text, &t(&["7"]), &t(&["007"])));
    assert!(!holds(None, &t(&["TRUE"]), &t(&["true"])));
    assert!(!holds(
        Some(&Syntax::Boolean),
        &t(&["FALSE"]),
        &t(&["true"])
    ));
    assert!(!holds(text, &t(&["a"]), &t(&["A"])));
    assert!(!holds(text, &t(&["a", "b"]), &t(&["a"])));
    assert!(!holds(text, &t(&["a"]), &[]));
    assert!(!holds(text, &t(&["a", "a"]), &t(&["a", "b"])));
    let bytes = |b: u8| vec![AttrValue::Bytes(vec![b])];
    assert!(!holds(Some(&Syntax::OctetString), &bytes(1), &bytes(2)));
}

#[tokio::test]
async fn undo_first_logs_what_a_killed_cycle_applied_so_it_is_undone_too() {
    let lab = lab(5);
    lab.killed_cycle(5).await;
    let mut engine = lab.engine();
    let u = engine
        .undo(UndoTarget::Cycle(CycleId(1)))
        .await
        .expect("undo");
    assert_eq!(u.counts.written, 4);
    for i in 0..5 {
        assert!(lab.ca1(i).is_empty(), "object {}", i + 1);
    }
    let late = &applied(&engine.store, lab.guids[3]);
    assert!(
        late.iter().any(|e| e.cycle == CycleId(1)
            && e.steps
                .export
                .details
                .contains("which stopped before logging it; logged at")),
        "{late:#?}"
    );
    assert!(engine.store.intents().expect("intents").is_empty());
}

#[tokio::test]
async fn a_provision_killed_after_its_modify_is_logged_by_the_next_cycle() {
    let lab = lab(2);
    lab.dir.apply_then_die.store(true, Ordering::SeqCst);
    lab.dir.die_at.store(1, Ordering::SeqCst);
    let mut engine = lab.engine();
    let died = AssertUnwindSafe(engine.provision("user1@contoso.com", false))
        .catch_unwind()
        .await;
    assert!(died.is_err(), "not killed");
    drop(engine);
    lab.dir.die_at.store(usize::MAX, Ordering::SeqCst);
    assert_eq!(lab.ca1(0), ["ca1-1"]);

    let mut engine = lab.engine();
    let r = engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!((r.counts.written, r.counts.unchanged), (1, 1));
    let entries = applied(&engine.store, lab.guids[0]);
    assert_eq!(entries.len(), 1, "{entries:#?}");
    assert_ne!(
        entries[0].cycle, r.cycle,
        "logged under the on-demand cycle"
    );
    assert!(
        !engine
            .store
            .journal_for_object(&ObjectRef::Guid(lab.guids[0]))
            .expect("journal")
            .is_empty()
    );
}

#[tokio::test]
async fn an_undo_killed_mid_chunk_logs_each_restore_once() {
    let lab = lab(5);
    let mut engine = lab.engine();
    let first = engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(first.counts.written, 5);
    drop(engine);
    // The undo's second modify is applied, then the process dies: two objects restored in
    // AD, nothing of the undo logged.
    lab.dir.sent.store(0, Ordering::SeqCst);
    lab.dir.apply_then_die.store(true, Ordering::SeqCst);
    lab.dir.die_at.store(2, Ordering::SeqCst);
    let mut engine = lab.engine();
    let died = AssertUnwindSafe(engine.undo(UndoTarget::Cycle(first.cycle)))
        .catch_unwind()
        .await;
    assert!(died.is_err(), "not killed");
    drop(engine);
    lab.dir.die_at.store(usize::MAX, Ordering::SeqCst);
    let restored: Vec<usize> = (0..5).filter(|&i| lab.ca1(i).is_empty()).collect();
    assert_eq!(restored.len(), 2);

    // Run again: the killed undo's two restores are logged first (under the killed undo
    // cycle), then the other three are restored.
    let mut engine = lab.engine();
    let u = engine
        .undo(UndoTarget::Cycle(first.cycle))
        .await
        .expect("undo");
    assert_eq!((u.counts.written, u.counts.unchanged), (3, 2));
    for (i, guid) in lab.guids.iter().enumerate() {
        assert!(lab.ca1(i).is_empty(), "object {}", i + 1);
        let undone: Vec<_> = applied(&engine.store, *guid)
            .into_iter()
            .filter(|e| e.cycle != first.cycle)
            .collect();
        assert_eq!(undone.len(), 1, "object {}: {undone:#?}", i + 1);
        let late = undone[0]
            .steps
            .export
            .details
            .contains("which stopped before logging it");
        assert_eq!(late, restored.contains(&i), "object {}", i + 1);
        assert!(
            engine
                .store
                .journal_for_cycle(undone[0].cycle)
                .expect("journal")
                .iter()
                .any(|j| j.object_guid == *guid),
            "object {}",
            i + 1
        );
    }
    assert!(engine.store.intents().expect("intents").is_empty());
}

/// Sets `attr` of object `i` by hand (an administrator's edit), not through the agent.
async fn set_by_hand(lab: &Lab, i: usize, attr: &str, values: &[&str]) {
    let dn = lab.fake.get(&lab.guids[i]).dn;
    lab.fake
        .modify(&ObjectModify {
            dn,
            changes: vec![exo_writeback_core::directory::AttrChange {
                op: exo_writeback_core::directory::ModOp::Replace,
                attribute: attr.into(),
                values: values
                    .iter()
                    .map(|v| AttrValue::Text(v.to_string()))
                    .collect(),
            }],
        })
        .await
        .expect("edit by hand");
}

/// A lab whose every object holds a stale extensionAttribute2 (the cloud has none), so every
/// plan removes a value, and a first cycle held by a threshold of 1.
async fn held_lab(n: u32) -> (Lab, CycleId) {
    let lab = lab(n);
    for i in 0..n as usize {
        set_by_hand(&lab, i, "extensionAttribute2", &["stale"]).await;
    }
    let mut engine = lab.engine_with_threshold(1);
    let r = engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.status, CycleStatus::ThresholdExceeded);
    assert_eq!(
        lab.dir.sent.load(Ordering::SeqCst),
        0,
        "a held cycle writes nothing"
    );
    (lab, r.cycle)
}

#[tokio::test]
async fn approve_writes_only_objects_still_as_their_held_change_was_planned_from() {
    let (lab, held) = held_lab(4).await;
    // After the preview, an administrator edits object 2 on-premises.
    set_by_hand(&lab, 1, "extensionAttribute2", &["edited on-premises"]).await;
    let mut engine = lab.engine_with_threshold(1);
    let r = engine.approve(held).await.expect("approve");
    assert_eq!((r.counts.written, r.counts.failed), (3, 1));
    assert_eq!(
        lab.ca1(1),
        Vec::<String>::new(),
        "the edited object is not written"
    );
    assert_eq!(
        lab.fake.values(&lab.guids[1], "extensionAttribute2"),
        ["edited on-premises"],
        "the newer on-premises value is not overwritten"
    );
    for i in [0, 2, 3] {
        assert_eq!(lab.ca1(i), [format!("ca1-{}", i + 1)]);
        assert_eq!(applied(&engine.store, lab.guids[i]).len(), 1);
    }
    let refused: Vec<_> = all_logs(&engine.store)
        .into_iter()
        .filter(|e| e.cycle == r.cycle && e.status == LogStatus::Failure)
        .collect();
    assert_eq!(refused.len(), 1, "{refused:#?}");
    let reason = refused[0].reason.as_ref().expect("reason");
    assert_eq!(reason.code, "ChangedSinceHeld");
    assert!(
        reason.message.contains("extensionAttribute2")
            && reason.message.contains("nothing written"),
        "{}",
        reason.message
    );
    let escrowed = engine.store.escrow().expect("escrow");
    assert_eq!(
        escrowed.len(),
        1,
        "the refused object is retried from escrow"
    );
    assert!(engine.store.intents().expect("intents").is_empty());
}

#[tokio::test]
async fn an_approve_killed_mid_chunk_and_run_again_logs_each_change_once() {
    // Batches of 3; the approve dies right after sending its 2nd modify (applied, not
    // logged); approving again must log objects 1 and 2 once (from their intents) and write
    // the others, without logging 1 and 2 as applied a second time.
    let (lab, held) = held_lab(5).await;
    lab.dir.sent.store(0, Ordering::SeqCst);
    lab.dir.apply_then_die.store(true, Ordering::SeqCst);
    lab.dir.die_at.store(2, Ordering::SeqCst);
    {
        let mut engine = lab.engine_with_threshold(1);
        let died = AssertUnwindSafe(engine.approve(held)).catch_unwind().await;
        assert!(died.is_err(), "the approve was not killed");
    }
    lab.dir.die_at.store(usize::MAX, Ordering::SeqCst);
    lab.dir.apply_then_die.store(false, Ordering::SeqCst);
    assert_eq!(
        lab.ca1(1),
        ["ca1-2"],
        "the 2nd modify was applied before the kill"
    );

    let mut engine = lab.engine_with_threshold(1);
    let r = engine.approve(held).await.expect("approve again");
    assert_eq!((r.counts.written, r.counts.unchanged), (3, 2));
    for (i, guid) in lab.guids.iter().enumerate() {
        assert_eq!(lab.ca1(i), [format!("ca1-{}", i + 1)]);
        let entries = applied(&engine.store, *guid);
        assert_eq!(entries.len(), 1, "object {}: {entries:#?}", i + 1);
        assert!(
            !engine
                .store
                .journal_for_object(&ObjectRef::Guid(*guid))
                .expect("journal")
                .is_empty(),
            "object {} has no journal",
            i + 1
        );
    }
    assert!(engine.store.intents().expect("intents").is_empty());
    assert!(engine.store.escrow().expect("escrow").is_empty());
}

#[tokio::test]
async fn a_modify_that_cannot_reach_ad_is_sent_again_once_ad_answers() {
    // The first modify meets a DC restarting (refused twice), then goes through.
    let lab = lab(5);
    lab.dir.refusals.store(2, Ordering::SeqCst);
    let mut engine = lab.engine();
    let r = engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.status, CycleStatus::Completed);
    assert_eq!((r.counts.written, r.counts.failed), (5, 0));
    assert_eq!(
        lab.dir.sent.load(Ordering::SeqCst),
        7,
        "two refused sends, five good"
    );
    assert!(engine.store.escrow().expect("escrow").is_empty());
}

#[tokio::test]
async fn ad_gone_mid_cycle_stops_the_writes_and_leaves_the_rest_pending_not_failed() {
    // Two modifies go through, then AD cannot be reached however long the engine waits.
    let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
    let lab = lab(5);
    lab.dir.refuse_after.store(2, Ordering::SeqCst);
    lab.dir.refusals.store(usize::MAX, Ordering::SeqCst);
    let mut engine = lab.engine();
    let r = engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    let CycleStatus::Quarantined { reason } = &r.status else {
        panic!("{:?}", r.status);
    };
    assert!(
        reason.contains("AD became unreachable") && reason.contains("connection refused"),
        "{reason}"
    );
    assert_eq!((r.counts.written, r.counts.failed), (2, 0));
    // 2 written, then the 3rd sent 1 + 3 times; nothing after it.
    assert_eq!(lab.dir.sent.load(Ordering::SeqCst), 6);
    // No failure entries, no escrow: the rest is pending, and the watermark waits for it.
    let logs = all_logs(&engine.store);
    assert_eq!(logs.len(), 2, "{logs:#?}");
    assert!(logs.iter().all(|e| e.status == LogStatus::Success));
    assert!(engine.store.escrow().expect("escrow").is_empty());
    if let Some(w) = engine.store.watermark().expect("watermark") {
        assert!(
            w.changed_since <= t0,
            "watermark {} passed pending objects",
            w.changed_since
        );
    }
    assert!(matches!(
        engine.store.job_state().expect("state"),
        exo_writeback_core::provisioning::JobState::Quarantine { .. }
    ));
    drop(engine);

    // AD is back: the next cycle writes the other three, each change logged once.
    lab.dir.refusals.store(0, Ordering::SeqCst);
    let mut engine = lab.engine();
    engine
        .store
        .restart(RestartScope::Quarantine, Timestamp::now())
        .expect("restart");
    let r = engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.status, CycleStatus::Completed);
    assert_eq!((r.counts.written, r.counts.failed), (3, 0));
    for (i, guid) in lab.guids.iter().enumerate() {
        assert_eq!(lab.ca1(i), [format!("ca1-{}", i + 1)]);
        assert_eq!(applied(&engine.store, *guid).len(), 1, "object {}", i + 1);
    }
    assert!(engine.store.intents().expect("intents").is_empty());
}

#[tokio::test]
async fn approve_undo_and_provision_send_a_modify_again_once_ad_answers() {
    // One write path: each meets a DC restarting (two refused sends) and goes through, as a
    // cycle does.
    let (lab, held) = held_lab(3).await;
    lab.dir.sent.store(0, Ordering::SeqCst);
    lab.dir.refusals.store(2, Ordering::SeqCst);
    let mut engine = lab.engine_with_threshold(1);
    let r = engine.approve(held).await.expect("approve");
    assert_eq!((r.counts.written, r.counts.failed), (3, 0));
    assert_eq!(
        lab.dir.sent.load(Ordering::SeqCst),
        5,
        "two refused, three good"
    );

    lab.dir.sent.store(0, Ordering::SeqCst);
    lab.dir.refusals.store(2, Ordering::SeqCst);
    let u = engine.undo(UndoTarget::Cycle(r.cycle)).await.expect("undo");
    assert_eq!((u.counts.written, u.counts.failed), (3, 0));
    assert_eq!(lab.dir.sent.load(Ordering::SeqCst), 5);

    // The undo pinned what it restored; released, provision writes the cloud values again.
    engine.store.unpin(None).expect("unpin");
    lab.dir.sent.store(0, Ordering::SeqCst);
    lab.dir.refusals.store(2, Ordering::SeqCst);
    let p = engine
        .provision("user1@contoso.com", false)
        .await
        .expect("provision");
    assert_eq!(p.entry.status, LogStatus::Success, "{:#?}", p.entry);
    assert_eq!(lab.dir.sent.load(Ordering::SeqCst), 3);
    assert!(engine.store.escrow().expect("escrow").is_empty());
    assert!(engine.store.intents().expect("intents").is_empty());
}

#[tokio::test]
async fn ad_gone_during_approve_stops_it_with_the_changes_still_held_and_approving_again_finishes()
{
    let (lab, held) = held_lab(5).await;
    // Two modifies go through, then AD cannot be reached however long the engine waits.
    lab.dir.sent.store(0, Ordering::SeqCst);
    lab.dir.refuse_after.store(2, Ordering::SeqCst);
    lab.dir.refusals.store(usize::MAX, Ordering::SeqCst);
    let mut engine = lab.engine_with_threshold(1);
    let err = engine.approve(held).await.expect_err("AD is gone");
    assert!(
        matches!(&err, EngineError::Stopped { .. }) && err.to_string().contains("unreachable"),
        "{err}"
    );
    // Nothing failed into escrow, the job stays held, the approve cycle ended as failed.
    assert!(engine.store.escrow().expect("escrow").is_empty());
    assert_eq!(
        engine.store.job_state().expect("state"),
        JobState::ThresholdExceeded { cycle: held }
    );
    let cycles = engine.store.recent_cycles(1).expect("cycles");
    assert!(
        matches!(cycles[0].status, CycleStatus::Failed { .. }),
        "{:?}",
        cycles[0].status
    );
    drop(engine);

    // AD is back: approving again logs the one sent when AD went (from its intent), and
    // writes the rest; each change logged once.
    lab.dir.refusals.store(0, Ordering::SeqCst);
    let mut engine = lab.engine_with_threshold(1);
    let r = engine.approve(held).await.expect("approve again");
    assert_eq!(r.counts.failed, 0);
    for (i, guid) in lab.guids.iter().enumerate() {
        assert_eq!(lab.ca1(i), [format!("ca1-{}", i + 1)]);
        assert_eq!(applied(&engine.store, *guid).len(), 1, "object {}", i + 1);
    }
    assert_eq!(engine.store.job_state().expect("state"), JobState::Active);
    assert!(engine.store.intents().expect("intents").is_empty());
}
