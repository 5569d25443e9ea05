//! Attributes the directory account may not read (issue 12, item 6): the directory leaves them
//! out of its answers without an error. They are not planned — no blind write, no wrong
//! previous value journaled, no rewrite every cycle — and the cycle reports them.

use exo_writeback_core::provisioning::ObjectRef;
use exo_writeback_store_sqlite::prelude::*;
use jiff::Timestamp;

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

/// A delta probes the read rights on the objects its mailboxes are joined to (a check whose
/// cost does not grow with the directory); the initial cycle lets the directory sample its own.
#[tokio::test]
async fn a_delta_probes_the_objects_it_evaluates() {
    let mut f = super::fixture(3, 500);
    f.engine.run_cycle(CycleMode::Auto).await.expect("initial");
    assert_eq!(
        *f.dir.probes.lock().expect("lock"),
        [Vec::<uuid::Uuid>::new()],
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
