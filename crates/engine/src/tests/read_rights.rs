//! Attributes the directory account may not read (issue 12, item 6): the directory leaves them
//! out of its answers without an error. They are not planned — no blind write, no wrong
//! previous value journaled, no rewrite every cycle — and the cycle reports them.

use exo_writeback_core::provisioning::ObjectRef;
use exo_writeback_store_sqlite::prelude::*;
use jiff::Timestamp;
use uuid::Uuid;

use crate::{CycleMode, EngineOptions};

#[tokio::test]
async fn an_unreadable_attribute_is_not_planned_nor_journaled_and_is_reported() {
    let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
    let users = super::support::users(3, t0, &[("extensionAttribute15", &["on-premises"])]);
    for n in 1..=3u32 {
        let mut m = super::support::mailbox(n, t0);
        m.custom_attributes[14] = Some(format!("cloud-{n}"));
        users.source.set(m);
    }
    users
        .dir
        .unreadable
        .lock()
        .expect("lock")
        .push("extensionAttribute15".into());
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut engine = super::support::engine(
        &users.source,
        users.dir.clone(),
        tmp.path(),
        500,
        EngineOptions::default(),
    );
    let r = engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.counts.written, 3, "{r:?}");
    assert_eq!(super::support::unreadable(&r), ["extensionAttribute15"]);
    for g in &users.guids {
        // The value the account could not see is still there, untouched.
        assert_eq!(users.dir.values(g, "extensionAttribute15"), ["on-premises"]);
        assert_eq!(users.dir.values(g, "extensionAttribute1").len(), 1);
        let journal = engine
            .store
            .journal_for_object(&ObjectRef::Guid(*g))
            .expect("journal");
        assert!(
            journal
                .iter()
                .all(|j| !j.attribute.eq_ignore_ascii_case("extensionAttribute15")),
            "{journal:?}"
        );
    }
    // Nothing is rewritten by the next cycle.
    let r = engine.run_cycle(CycleMode::Full).await.expect("full");
    assert_eq!((r.counts.written, r.counts.unchanged), (0, 3), "{r:?}");
    // Readable again (the right granted): planned again.
    users.dir.unreadable.lock().expect("lock").clear();
    let r = engine.run_cycle(CycleMode::Full).await.expect("full");
    assert_eq!(r.counts.written, 3, "{r:?}");
    assert!(r.unreadable_attributes.is_empty());
    assert_eq!(
        users.dir.values(&users.guids[0], "extensionAttribute15"),
        ["cloud-1"]
    );
}

/// The objects a probe was asked to sample, sorted.
fn sorted(mut guids: Vec<Uuid>) -> Vec<Uuid> {
    guids.sort();
    guids
}

/// A delta probes the read rights on the objects its mailboxes are joined to (a check whose
/// cost does not grow with the directory).
#[tokio::test]
async fn a_delta_probes_the_objects_it_evaluates() {
    let mut f = super::fixture(3, 500);
    f.engine.run_cycle(CycleMode::Auto).await.expect("initial");
    assert_eq!(
        f.dir.probes.lock().expect("lock").len(),
        1,
        "the initial cycle's probe"
    );
    let t1: Timestamp = "2026-01-01T01:00:00Z".parse().expect("ts");
    let mut m = super::support::mailbox(2, t1);
    m.custom_attributes[2] = Some("changed".into());
    f.source.set(m);
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("delta");
    assert_eq!(r.counts.written, 1, "{r:?}");
    assert_eq!(
        f.dir.probes.lock().expect("lock").last(),
        Some(&vec![f.guids[1]]),
        "the delta's probe samples the one object it evaluates"
    );
}

/// An initial cycle and a full reconcile probe the read rights on the objects of their own scan
/// (by objectGUID, as a delta does), not on a sample search of the whole scope, which a DC may
/// answer by evaluating every object in it (docs/performance-history.md). Before: `[]`, the directory's
/// own first few users.
#[tokio::test]
async fn an_initial_and_a_full_cycle_probe_the_objects_of_their_scan() {
    let mut f = super::fixture(3, 500);
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("initial");
    assert_eq!(r.counts.written, 3, "{r:?}");
    let r = f.engine.run_cycle(CycleMode::Full).await.expect("full");
    assert_eq!(r.counts.unchanged, 3, "{r:?}");
    let probes = f.dir.probes.lock().expect("lock").clone();
    let every = sorted(f.guids.clone());
    assert_eq!(
        probes.into_iter().map(sorted).collect::<Vec<_>>(),
        [every.clone(), every],
        "the initial cycle's probe, then the full reconcile's"
    );
}

/// Objects that hold no witness (no UPN, mail or proxy address: containers, system objects,
/// which a scan by objectGUID lists too) are never written, and are not sampled.
#[tokio::test]
async fn the_probe_samples_no_object_without_a_witness() {
    let mut f = super::fixture(3, 500);
    for n in 0..150 {
        let mut a = exo_writeback_core::directory::Attributes::new();
        a.insert(
            "description",
            vec![exo_writeback_core::directory::AttrValue::Text(format!(
                "system {n}"
            ))],
        );
        f.dir.add(&format!("system{n}"), a);
    }
    f.engine.run_cycle(CycleMode::Auto).await.expect("initial");
    let probes = f.dir.probes.lock().expect("lock").clone();
    assert_eq!(
        probes.into_iter().map(sorted).collect::<Vec<_>>(),
        [sorted(f.guids.clone())]
    );
}

/// The samples are the first objects the scan hands over, at most as many as a directory probes
/// by objectGUID at once (100): the probe starts with the scan's first page.
#[tokio::test]
async fn the_probe_of_a_large_scan_samples_its_first_objects() {
    let mut f = super::fixture(130, 500);
    f.engine.run_cycle(CycleMode::Auto).await.expect("initial");
    let probes = f.dir.probes.lock().expect("lock").clone();
    assert_eq!(probes.len(), 1, "{probes:?}");
    assert_eq!(probes[0].len(), 100);
    assert!(probes[0].iter().all(|g| f.guids.contains(g)), "{probes:?}");
}

/// A cycle whose scan fails still probes before it plans — the directory then samples objects
/// of its own — and plans no attribute the account may not read.
#[tokio::test]
async fn a_cycle_whose_scan_fails_still_probes() {
    let mut f = super::fixture(3, 500);
    *f.dir.no_scan.lock().expect("lock") = true;
    f.dir
        .unreadable
        .lock()
        .expect("lock")
        .push("extensionAttribute15".into());
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("initial");
    assert_eq!(
        *f.dir.probes.lock().expect("lock"),
        [Vec::<Uuid>::new()],
        "the directory's own samples"
    );
    assert_eq!(super::support::unreadable(&r), ["extensionAttribute15"]);
}
