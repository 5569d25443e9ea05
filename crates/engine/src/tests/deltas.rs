//! Deltas proportional to the changes: the overlap window reads again what the previous cycle
//! processed at the watermark's edge; those still at the instant processed are passed over,
//! and nothing unprocessed ever is.

use super::*;

#[tokio::test]
async fn a_delta_passes_over_what_was_processed_at_the_edge_and_processes_the_rest() {
    let mut f = fixture(3, 500);
    let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("initial");
    assert_eq!(r.counts.written, 3);
    // Nothing changed: the overlap window holds the three mailboxes, all processed at t0.
    for _ in 0..2 {
        let r = f.engine.run_cycle(CycleMode::Auto).await.expect("delta");
        assert_eq!(r.kind, CycleKind::Delta);
        assert_eq!(
            (r.counts.imported, r.counts.unchanged),
            (0, 0),
            "nothing is planned again: {r:?}"
        );
        assert_eq!(r.watermark.expect("watermark").changed_since, t0);
    }
    // Mailbox 1 changed again; mailbox 2 shows a change stamped inside the window that no
    // cycle processed (it became visible late): both are processed, mailbox 3 is not.
    let mut m1 = mailbox(1, t0 + SignedDuration::from_mins(1));
    m1.custom_attributes[4] = Some("again".into());
    f.source.set(m1);
    let mut m2 = mailbox(2, t0 - SignedDuration::from_mins(2));
    m2.custom_attributes[4] = Some("late".into());
    f.source.set(m2);
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("delta");
    assert_eq!((r.counts.imported, r.counts.written), (2, 2), "{r:?}");
    assert_eq!(f.dir.values(&f.guids[0], "extensionAttribute5"), ["again"]);
    assert_eq!(f.dir.values(&f.guids[1], "extensionAttribute5"), ["late"]);
    // A full reconcile reads and plans every mailbox.
    let r = f.engine.run_cycle(CycleMode::Full).await.expect("full");
    assert_eq!(r.counts.imported, 3);
}

/// Counts the read-rights probes.
#[derive(Clone, Default)]
struct Probes(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl crate::testing::Hook for Probes {
    async fn before_rights(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_delta_with_nothing_to_evaluate_does_not_probe_the_read_rights() {
    use std::sync::atomic::Ordering;
    // The probe searches sample objects of the whole search scope, which a DC may answer by
    // evaluating every object in it (Samba with the paged results control): a delta that has
    // no mailbox to plan does not need it, one that has does.
    let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
    let lab = super::support::users(3, t0, &[("extensionAttribute15", &["on-premises"])]);
    // An attribute the account may not read: never planned.
    lab.dir
        .unreadable
        .lock()
        .expect("lock")
        .push("extensionAttribute15".into());
    let probes = Probes::default();
    let dir = crate::testing::Hooked {
        inner: lab.dir.clone(),
        hook: probes.clone(),
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut engine =
        super::support::engine(&lab.source, dir, tmp.path(), 500, EngineOptions::default());
    let r = engine.run_cycle(CycleMode::Auto).await.expect("initial");
    assert_eq!(r.counts.written, 3, "{r:?}");
    let after_initial = probes.0.load(Ordering::SeqCst);
    let r = engine.run_cycle(CycleMode::Auto).await.expect("delta");
    assert_eq!((r.kind, r.counts.imported), (CycleKind::Delta, 0), "{r:?}");
    assert_eq!(
        probes.0.load(Ordering::SeqCst),
        after_initial,
        "a delta with nothing changed probes no rights"
    );
    // A change: the delta probes, and reports the attribute it does not plan.
    let mut m = mailbox(1, t0 + SignedDuration::from_mins(1));
    m.custom_attributes[14] = Some("cloud".into());
    lab.source.set(m);
    let r = engine.run_cycle(CycleMode::Auto).await.expect("delta");
    assert_eq!(r.counts.imported, 1, "{r:?}");
    assert_eq!(probes.0.load(Ordering::SeqCst), after_initial + 1);
    assert_eq!(super::support::unreadable(&r), ["extensionAttribute15"]);
    assert_eq!(
        lab.dir.values(&lab.guids[0], "extensionAttribute15"),
        ["on-premises"]
    );
}
