//! One scan of the search scope (initial and full cycles): the objects it keeps decide that a
//! mailbox is in sync without reading AD again; every other decision is the same as on
//! objects read fresh — and a write is always planned on a fresh read.

use std::sync::atomic::Ordering;

use exo_writeback_core::directory::AttrValue;
use exo_writeback_core::mailbox::Mailbox;
use exo_writeback_core::provisioning::{CycleKind, CycleStatus, JoinUpdate};

use super::{Fixture, fixture};
use crate::{CycleMode, Disposition, Processed};

/// What must not differ between the paths: the decision, its wording, the target, the join,
/// the drift.
fn decision(p: &Processed) -> String {
    let join = |j: &JoinUpdate| match j {
        JoinUpdate::Set(j) => format!("set {} {}", j.object_guid, j.dn),
        other => format!("{other:?}"),
    };
    let disposition = match &p.disposition {
        Disposition::Write { object_guid, plan } => {
            format!("write {object_guid} {} {:?}", plan.dn, plan.changes)
        }
        other => format!("{other:?}"),
    };
    format!(
        "{disposition} | {:?} {} | {:?} | {} | {:?} | {}",
        p.steps.matching.status,
        p.steps.matching.details,
        p.target,
        join(&p.join),
        p.drift,
        join(&p.join_if_failed)
    )
}

fn mailboxes(f: &Fixture) -> Vec<Mailbox> {
    f.source.mailboxes.lock().expect("lock").clone()
}

/// Moves an object to another DN (an administrator's rename; same objectGUID).
fn rename(f: &Fixture, i: usize, cn: &str) -> String {
    let mut o = f.dir.get(&f.guids[i]);
    o.dn = format!("CN={cn},OU=Mailboxes,DC=lab,DC=test");
    f.dir.insert(o.clone());
    o.dn
}

#[tokio::test]
async fn a_full_reconcile_in_sync_reads_no_object_again_and_its_scan_brings_the_addresses() {
    let mut f = fixture(5, 500);
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("initial");
    assert_eq!((r.kind, r.counts.written), (CycleKind::Initial, 5));
    let reads = f.dir.reads.load(Ordering::SeqCst);
    let r = f.engine.run_cycle(CycleMode::Full).await.expect("full");
    assert_eq!(r.kind, CycleKind::FullReconcile);
    assert_eq!(r.status, CycleStatus::Completed);
    assert_eq!((r.counts.unchanged, r.counts.written), (5, 0));
    assert_eq!(
        f.dir.reads.load(Ordering::SeqCst) - reads,
        0,
        "no object read again"
    );
    assert_eq!(f.dir.searches.load(Ordering::SeqCst), 0);
    assert_eq!(f.dir.scans.load(Ordering::SeqCst), 2, "one scan per cycle");
    assert_eq!(
        f.dir.address_scans.load(Ordering::SeqCst),
        0,
        "the scan of the search scope (the whole forest here) read the addresses too"
    );
    // Without room to keep them, each object is read again, as before.
    f.engine.options.scan_cache_bytes = 0;
    let reads = f.dir.reads.load(Ordering::SeqCst);
    let r = f.engine.run_cycle(CycleMode::Full).await.expect("full");
    assert_eq!((r.counts.unchanged, r.counts.written), (5, 0));
    assert_eq!(f.dir.reads.load(Ordering::SeqCst) - reads, 5);
}

#[tokio::test]
async fn the_kept_objects_decide_as_objects_read_fresh_and_as_the_searches() {
    let mut f = fixture(6, 500);
    f.engine.run_cycle(CycleMode::Auto).await.expect("initial");
    // 1: in sync. 2: changed in the cloud. 3: renamed in AD (the join follows). 4: an
    // on-premises edit of a written attribute (drift). 5: deleted in AD (the join goes).
    // 6: its join's object no longer holds the mailbox's key (matched again).
    let mut m = mailboxes(&f)[1].clone();
    m.custom_attributes[0] = Some("changed".into());
    f.source.set(m);
    rename(&f, 2, "moved3");
    f.dir.set(
        &f.guids[3],
        "extensionAttribute1",
        vec![AttrValue::Text("edited on-premises".into())],
    );
    f.dir.remove(&f.guids[4]);
    f.dir
        .set(&f.guids[5], "msDS-ExternalDirectoryObjectId", Vec::new());
    let schema = f.dir.schema.clone();
    let all = mailboxes(&f);
    let mut searched = Vec::new();
    for m in &all {
        searched.push(decision(&f.engine.evaluate(m, &schema, None).await));
    }
    f.engine.options.scan_cache_bytes = 0;
    let compact = f.engine.load_match_index().await.expect("index");
    assert_eq!(compact.kept(), 0);
    f.engine.options.scan_cache_bytes = 64 << 20;
    let kept = f.engine.load_match_index().await.expect("index");
    assert!(kept.kept() >= 5);
    for (m, want) in all.iter().zip(&searched) {
        let fresh = decision(&f.engine.evaluate(m, &schema, Some(&compact)).await);
        let reads = f.dir.reads.load(Ordering::SeqCst);
        let p = f.engine.evaluate(m, &schema, Some(&kept)).await;
        assert_eq!(&fresh, want, "{:?}", m.primary_smtp_address);
        assert_eq!(&decision(&p), want, "{:?}", m.primary_smtp_address);
        // Nothing to do (in sync, the join kept): decided on the kept object alone.
        if matches!(p.disposition, Disposition::InSync) && p.join == JoinUpdate::Keep {
            assert_eq!(f.dir.reads.load(Ordering::SeqCst), reads, "{want}");
        }
    }
    assert!(
        searched[0].starts_with("InSync") && searched[0].contains("| Keep |"),
        "{}",
        searched[0]
    );
    assert!(searched[1].starts_with("write "), "{}", searched[1]);
    assert!(searched[2].contains("set ") && searched[2].contains("CN=moved3,"));
    assert!(searched[3].contains("DriftDetected"), "{}", searched[3]);
    assert!(searched[4].contains("Remove"), "{}", searched[4]);
}

#[tokio::test]
async fn an_object_renamed_after_the_scan_is_written_at_its_new_name() {
    let mut f = fixture(2, 500);
    f.engine.run_cycle(CycleMode::Auto).await.expect("initial");
    let index = f.engine.load_match_index().await.expect("index");
    assert!(index.kept() >= 2);
    // After the scan: the cloud value changes and the object moves.
    let mut m = mailboxes(&f)[0].clone();
    m.custom_attributes[0] = Some("after the scan".into());
    f.source.set(m.clone());
    let moved = rename(&f, 0, "moved1");
    let p = f
        .engine
        .evaluate(&m, &f.dir.schema.clone(), Some(&index))
        .await;
    match &p.disposition {
        Disposition::Write { plan, .. } => assert_eq!(plan.dn, moved),
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&p.join, JoinUpdate::Set(j) if j.dn == moved),
        "{:?}",
        p.join
    );
}
