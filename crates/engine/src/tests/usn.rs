//! The DC's change mark (`mark.rs`): an initial cycle decides on its scan's copy of an object
//! unchanged since the mark instead of reading it again; an object changed, moved or deleted
//! after the scan, a mark of another DC, or a check that fails, is read fresh as before.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use exo_writeback_core::directory::AttrValue;
use exo_writeback_core::provisioning::{CycleKind, CycleStatus};
use jiff::Timestamp;
use uuid::Uuid;

use super::support::{hooked_engine, users};
use crate::testing::{FakeDirectory, Hook, Users};
use crate::{CycleMode, DirectoryError, EngineOptions};

type Action = Arc<dyn Fn(&FakeDirectory) + Send + Sync>;

/// Changes the directory after the scan (`after_scan`) or at the first check of the mark
/// (`at_check`), and records the objectGUIDs read.
#[derive(Clone)]
struct Changes {
    dir: FakeDirectory,
    after_scan: Option<Action>,
    at_check: Option<Action>,
    read: Arc<Mutex<Vec<Uuid>>>,
}

impl Changes {
    fn new(dir: &FakeDirectory) -> Self {
        Changes {
            dir: dir.clone(),
            after_scan: None,
            at_check: None,
            read: Arc::default(),
        }
    }
    fn read(&self) -> Vec<Uuid> {
        let mut read = self.read.lock().expect("lock").clone();
        read.sort();
        read
    }
}

impl Hook for Changes {
    async fn after_scan(&self) {
        if let Some(a) = &self.after_scan {
            a(&self.dir);
        }
    }
    async fn before_changed_since(&self) {
        if let Some(a) = &self.at_check {
            a(&self.dir);
        }
    }
    fn reading_guids(&self, guids: &[Uuid], _together: bool) -> Result<(), DirectoryError> {
        self.read.lock().expect("lock").extend(guids);
        Ok(())
    }
}

fn t0() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().expect("ts")
}

fn options() -> EngineOptions {
    EngineOptions {
        bulk_read: 2,
        ..EngineOptions::default()
    }
}

fn ext1(dir: &FakeDirectory, guid: &Uuid) -> Vec<String> {
    dir.values(guid, "extensionAttribute1")
}

#[tokio::test]
async fn an_initial_cycle_reads_no_kept_unchanged_candidate_again() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lab = users(5, t0(), &[]);
    let hook = Changes::new(&lab.dir);
    let mut engine = hooked_engine(&lab.source, &lab.dir, &hook, tmp.path(), options());
    let r = engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(
        (r.kind, r.status, r.counts.written),
        (CycleKind::Initial, CycleStatus::Completed, 5)
    );
    // Every candidate checked against the mark (three batches), none read again.
    assert_eq!(hook.read(), Vec::<Uuid>::new());
    assert_eq!(lab.dir.reads.load(Ordering::SeqCst), 0);
    assert_eq!(lab.dir.change_checks.load(Ordering::SeqCst), 3);
    assert_eq!(lab.dir.checked.load(Ordering::SeqCst), 5);
    for (i, g) in lab.guids.iter().enumerate() {
        assert_eq!(ext1(&lab.dir, g), [format!("ca1-{}", i + 1)]);
    }
}

#[tokio::test]
async fn an_object_changed_after_the_scan_is_read_fresh_and_decided_on_the_fresh_value() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lab = users(5, t0(), &[]);
    let mut hook = Changes::new(&lab.dir);
    let (edited, renamed) = (lab.guids[1], lab.guids[2]);
    hook.after_scan = Some(Arc::new(move |dir: &FakeDirectory| {
        // An administrator sets what the plan would write (the scan's copy lacks it), and
        // renames another object (the scan's copy has the old DN).
        dir.set(
            &edited,
            "extensionAttribute1",
            vec![AttrValue::Text("ca1-2".into())],
        );
        dir.move_to(&renamed, "CN=renamed,OU=Mailboxes,DC=lab,DC=test");
    }));
    let mut engine = hooked_engine(&lab.source, &lab.dir, &hook, tmp.path(), options());
    let r = engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!((r.status, r.counts.written), (CycleStatus::Completed, 5));
    let mut changed = vec![edited, renamed];
    changed.sort();
    assert_eq!(
        hook.read(),
        changed,
        "only the changed objects are read again"
    );
    let modifies = lab.dir.modifies.lock().expect("lock").clone();
    let dns: Vec<&str> = modifies.iter().map(|m| m.dn.as_str()).collect();
    assert!(dns.contains(&"CN=renamed,OU=Mailboxes,DC=lab,DC=test"));
    assert!(
        !dns.contains(&lab.dns[2].as_str()),
        "written at its old DN: {dns:?}"
    );
    // Planned on the fresh copy, which already holds extensionAttribute1: not written again
    // (the scan's copy, without it, would have planned it).
    let edited_modify = modifies
        .iter()
        .find(|m| m.dn == lab.dns[1])
        .expect("the edited object's other attributes are written");
    assert!(
        edited_modify
            .changes
            .iter()
            .all(|c| !c.attribute.eq_ignore_ascii_case("extensionAttribute1")),
        "{edited_modify:?}"
    );
    assert!(
        modifies
            .iter()
            .find(|m| m.dn == lab.dns[0])
            .expect("user1")
            .changes
            .iter()
            .any(|c| c.attribute.eq_ignore_ascii_case("extensionAttribute1"))
    );
    assert_eq!(ext1(&lab.dir, &renamed), ["ca1-3"]);
}

#[tokio::test]
async fn an_object_deleted_after_the_scan_is_not_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lab = users(5, t0(), &[]);
    let mut hook = Changes::new(&lab.dir);
    let gone = lab.guids[3];
    hook.after_scan = Some(Arc::new(move |dir: &FakeDirectory| dir.remove(&gone)));
    let mut engine = hooked_engine(&lab.source, &lab.dir, &hook, tmp.path(), options());
    let r = engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.counts.written, 4);
    // Read fresh (in its batch, then alone when that read did not find it), not taken kept.
    let mut read = hook.read();
    read.dedup();
    assert_eq!(read, [gone]);
    let modifies = lab.dir.modifies.lock().expect("lock").clone();
    assert_eq!(modifies.len(), 4);
    assert!(modifies.iter().all(|m| m.dn != lab.dns[3]));
}

/// An initial cycle over `lab` with `hook`: every one of its 5 candidates read fresh, and the
/// change checks made.
async fn every_candidate_read_fresh(lab: &Users, hook: &Changes) -> usize {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut engine = hooked_engine(&lab.source, &lab.dir, hook, tmp.path(), options());
    let r = engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.counts.written, 5);
    let mut all = lab.guids.clone();
    all.sort();
    assert_eq!(hook.read(), all);
    lab.dir.change_checks.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_scan_that_ended_on_another_dc_reads_every_candidate_fresh() {
    let lab = users(5, t0(), &[]);
    let mut hook = Changes::new(&lab.dir);
    hook.after_scan = Some(Arc::new(|dir: &FakeDirectory| {
        *dir.dc.lock().expect("lock") = Some("another-dc".into());
    }));
    assert_eq!(every_candidate_read_fresh(&lab, &hook).await, 0);
}

#[tokio::test]
async fn a_check_on_another_dc_reads_fresh_from_then_on() {
    let lab = users(5, t0(), &[]);
    let mut hook = Changes::new(&lab.dir);
    // The connection moves to another DC before the first check: it fails, and the mark is
    // not used again.
    hook.at_check = Some(Arc::new(|dir: &FakeDirectory| {
        *dir.dc.lock().expect("lock") = Some("another-dc".into());
    }));
    assert_eq!(every_candidate_read_fresh(&lab, &hook).await, 1);
}

#[tokio::test]
async fn a_directory_without_change_marks_reads_every_candidate_fresh() {
    let lab = users(5, t0(), &[]);
    *lab.dir.dc.lock().expect("lock") = None;
    let hook = Changes::new(&lab.dir);
    assert_eq!(every_candidate_read_fresh(&lab, &hook).await, 0);
}

#[tokio::test]
async fn a_full_reconcile_decides_its_unsettled_mailboxes_on_unchanged_kept_objects() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lab = users(5, t0(), &[]);
    let hook = Changes::new(&lab.dir);
    let mut engine = hooked_engine(&lab.source, &lab.dir, &hook, tmp.path(), options());
    engine.run_cycle(CycleMode::Auto).await.expect("initial");
    // A cloud change after the initial cycle: the full reconcile's first evaluation on the
    // kept object does not settle it (a write), the check against the mark does.
    let mut m = lab.source.mailboxes.lock().expect("lock")[0].clone();
    m.custom_attributes[0] = Some("changed".into());
    lab.source.set(m);
    hook.read.lock().expect("lock").clear();
    let r = engine.run_cycle(CycleMode::Full).await.expect("full");
    assert_eq!(r.kind, CycleKind::FullReconcile);
    assert_eq!((r.counts.written, r.counts.unchanged), (1, 4));
    assert_eq!(hook.read(), Vec::<Uuid>::new());
    assert_eq!(ext1(&lab.dir, &lab.guids[0]), ["changed"]);
}
