//! An administrator's decisions over the engine (issue 18): an undo that sticks until the cloud
//! value changes, a held cycle rejected and not held again, a pause, a scope that matches
//! nothing, and counts that add up on every kind of cycle.

use exo_writeback_core::outcome::OutcomeCode;
use exo_writeback_core::provisioning::{
    CycleCounts, CycleKind, CycleStatus, JobState, LogStatus, Pause, ProvisioningLogEntry,
};
use exo_writeback_core::settings::WritebackSettings;
use exo_writeback_store_sqlite::prelude::*;
use exo_writeback_store_sqlite::{LogQuery, SqliteStore};
use jiff::{SignedDuration, Timestamp};

use super::support::mailbox;
use super::{Fixture, fixture};
use crate::{CycleMode, CycleReport, EngineError, UndoTarget};

fn t(hours: i64) -> Timestamp {
    "2026-01-01T00:00:00Z"
        .parse::<Timestamp>()
        .expect("ts")
        .checked_add(SignedDuration::from_hours(hours))
        .expect("ts")
}

/// Mailbox `n` changed at `when`, with CustomAttribute3 (extensionAttribute3) `value`.
fn with_ca3(f: &Fixture, n: u32, when: Timestamp, value: &str) {
    let mut m = mailbox(n, when);
    m.custom_attributes[2] = Some(value.into());
    f.source.set(m);
}

fn ext3(f: &Fixture, n: usize) -> Vec<String> {
    f.dir.values(&f.guids[n - 1], "extensionAttribute3")
}

fn entries(
    store: &SqliteStore,
    cycle: exo_writeback_core::provisioning::CycleId,
) -> Vec<ProvisioningLogEntry> {
    store
        .query_logs(&LogQuery {
            cycle: Some(cycle),
            limit: 1000,
            ..LogQuery::default()
        })
        .expect("logs")
}

/// imported = in scope + skipped; in scope = written + unchanged + held + pinned + failed +
/// pending; the skip causes add up to the skipped.
pub(super) fn assert_adds_up(what: &str, r: &CycleReport) {
    let c: &CycleCounts = &r.counts;
    assert_eq!(c.imported, c.in_scope + c.skipped, "{what}: {c:?}");
    assert_eq!(
        c.in_scope,
        c.written + c.unchanged + c.held + c.pinned + c.drift_reported + c.failed + c.pending,
        "{what}: {c:?}"
    );
    assert_eq!(
        r.skipped_causes.values().sum::<u64>(),
        c.skipped,
        "{what}: {:?}",
        r.skipped_causes
    );
}

#[tokio::test]
async fn an_undo_sticks_until_the_cloud_value_changes_and_undoing_it_releases_the_pins() {
    let mut f = fixture(3, 500);
    f.engine.set_operator("alice");
    f.engine.run_cycle(CycleMode::Auto).await.expect("initial");
    with_ca3(&f, 1, t(1), "three-1");
    with_ca3(&f, 2, t(1), "three-2");
    let d = f.engine.run_cycle(CycleMode::Auto).await.expect("delta");
    assert_eq!(d.counts.written, 2);
    let u = f
        .engine
        .undo(UndoTarget::Cycle(d.cycle))
        .await
        .expect("undo");
    assert_eq!(u.pins_set.attributes, 2, "{u:?}");
    assert_eq!(u.pins_set.objects, 2, "{u:?}");
    assert!(ext3(&f, 1).is_empty());

    // Touched again in Exchange Online, the values unchanged: the next delta reads them (a
    // delta passes over what it processed at the same WhenChangedUTC) and leaves them as
    // undone, logged as such.
    let touched = t(1) + SignedDuration::from_mins(30);
    with_ca3(&f, 1, touched, "three-1");
    with_ca3(&f, 2, touched, "three-2");
    let next = f.engine.run_cycle(CycleMode::Auto).await.expect("delta");
    assert_eq!(
        (next.counts.written, next.counts.pinned),
        (0, 2),
        "{next:?}"
    );
    assert_adds_up("delta after undo", &next);
    assert!(ext3(&f, 1).is_empty() && ext3(&f, 2).is_empty());
    let pinned: Vec<_> = entries(&f.engine.store, next.cycle)
        .into_iter()
        .filter(|e| {
            e.reason
                .as_ref()
                .is_some_and(|r| r.code == OutcomeCode::PinnedByUndo)
        })
        .collect();
    assert_eq!(pinned.len(), 2, "{pinned:#?}");
    assert_eq!(pinned[0].status, LogStatus::Skipped);
    let message = &pinned[0].reason.as_ref().expect("reason").message;
    assert!(
        message.contains("extensionAttribute3")
            && message.contains(&format!("cycle {}", u.cycle))
            && message.contains("alice"),
        "{message}"
    );
    // A full reconcile, preview and provision on demand respect the pins too.
    let full = f.engine.run_cycle(CycleMode::Full).await.expect("full");
    assert_eq!(full.counts.written, 0, "{full:?}");
    let preview = f.engine.preview(CycleMode::Full).await.expect("preview");
    assert_eq!(preview.would_write, 0);
    assert_eq!(
        preview
            .items
            .iter()
            .filter(|i| i.code == OutcomeCode::PinnedByUndo)
            .count(),
        2
    );
    let p = f
        .engine
        .provision("user1@contoso.com", false)
        .await
        .expect("provision");
    assert_eq!(
        p.entry.reason.expect("reason").code,
        OutcomeCode::PinnedByUndo
    );
    assert!(ext3(&f, 1).is_empty());

    // A new cloud value releases the pin and is written; the other stays pinned.
    with_ca3(&f, 1, t(2), "three again");
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("delta");
    assert_eq!(r.counts.written, 1, "{r:?}");
    assert_eq!(ext3(&f, 1), ["three again"]);
    assert_eq!(f.engine.store.pin_count().expect("pins").attributes, 1);
    let written = entries(&f.engine.store, r.cycle)
        .into_iter()
        .find(|e| e.status == LogStatus::Success && !e.modified.is_empty())
        .expect("the write");
    assert!(
        written
            .steps
            .export
            .details
            .contains("released the pin of extensionAttribute3"),
        "{:?}",
        written.steps.export
    );

    // Undoing the undo writes the cloud value back and releases the pin.
    let uu = f
        .engine
        .undo(UndoTarget::Cycle(u.cycle))
        .await
        .expect("undo the undo");
    assert_eq!(uu.pins_set.attributes, 0);
    assert_eq!(uu.pins_released, 2, "{uu:?}");
    assert_eq!(ext3(&f, 2), ["three-2"]);
    assert_eq!(f.engine.store.pin_count().expect("pins").attributes, 0);
}

#[tokio::test]
async fn a_rejected_cycle_is_logged_not_held_again_and_a_later_change_is_written() {
    // Every object loses the stale address: 3 removals > threshold 1.
    let mut f = fixture(3, 1);
    let before: Vec<_> = f.guids.iter().map(|g| f.dir.get(g)).collect();
    let held = f.engine.run_cycle(CycleMode::Auto).await.expect("held");
    assert_eq!(held.status, CycleStatus::ThresholdExceeded);
    assert_eq!(held.counts.held, 3);
    assert_adds_up("held", &held);
    let logged = entries(&f.engine.store, held.cycle);
    assert_eq!(logged.len(), 3);
    assert!(logged.iter().all(|e| {
        e.status == LogStatus::Held
            && e.reason
                .as_ref()
                .is_some_and(|r| r.code == OutcomeCode::Held)
            && !e.modified.is_empty()
    }));

    let r = crate::reject::reject(&mut f.engine.store, held.cycle, "bob", Some("audit week"))
        .expect("reject");
    assert_eq!(r.kind, CycleKind::Reject);
    assert_adds_up("reject", &r);
    assert_eq!(f.engine.store.job_state().expect("state"), JobState::Active);
    let rejected = entries(&f.engine.store, r.cycle);
    assert_eq!(rejected.len(), 3);
    for e in &rejected {
        assert_eq!(e.status, LogStatus::Skipped);
        let reason = e.reason.as_ref().expect("reason");
        assert_eq!(reason.code, OutcomeCode::Rejected);
        assert!(
            reason.message.contains("rejected by bob") && reason.message.contains("audit week"),
            "{}",
            reason.message
        );
    }
    let err = f.engine.approve(held.cycle).await.expect_err("rejected");
    let text = err.to_string();
    assert!(text.contains("they were rejected by bob"), "{text}");
    assert!(
        !text.contains("Rejected {") && !text.contains("CycleId("),
        "{text}"
    );
    crate::reject::reject(&mut f.engine.store, held.cycle, "bob", None).expect_err("once");

    // The same plans come back (nothing advanced the watermark): not held again, nothing
    // written, and the watermark moves on.
    let next = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(next.status, CycleStatus::Completed, "{next:?}");
    assert_eq!(
        (next.counts.written, next.counts.pinned),
        (0, 3),
        "{next:?}"
    );
    assert!(next.watermark.is_some());
    let after: Vec<_> = f.guids.iter().map(|g| f.dir.get(g)).collect();
    assert_eq!(before, after, "nothing written");
    // A later real change re-plans the object: the new value is written, the rejected
    // removal stays refused.
    with_ca3(&f, 2, t(3), "new");
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.counts.written, 1, "{r:?}");
    assert_eq!(ext3(&f, 2), ["new"]);
    let proxies = f.dir.values(&f.guids[1], "proxyAddresses");
    assert!(
        proxies.iter().any(|p| p == "smtp:stale@contoso.com"),
        "{proxies:?}"
    );
}

#[tokio::test]
async fn a_paused_job_runs_no_cycle_and_keeps_its_state() {
    let mut f = fixture(2, 500);
    f.engine.run_cycle(CycleMode::Auto).await.expect("initial");
    let watermark = f.engine.store.watermark().expect("wm");
    let pause = Pause {
        by: "alice".into(),
        since: Timestamp::now(),
        reason: Some("moving the DCs".into()),
    };
    f.engine.store.set_pause(Some(&pause)).expect("pause");
    with_ca3(&f, 1, t(1), "while paused");
    let err = f
        .engine
        .run_cycle(CycleMode::Auto)
        .await
        .expect_err("paused");
    assert!(
        matches!(&err, EngineError::Paused(p) if *p == pause),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("paused by alice")
            && text.contains("moving the DCs")
            && text.contains("exo-writeback resume"),
        "{text}"
    );
    assert!(ext3(&f, 1).is_empty());
    assert_eq!(f.engine.store.watermark().expect("wm"), watermark);
    f.engine.store.set_pause(None).expect("resume");
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.counts.written, 1);
}

#[tokio::test]
async fn a_full_read_that_finds_nothing_in_scope_says_why_and_keeps_the_watermark() {
    let mut f = fixture(3, 500);
    f.engine.settings = WritebackSettings {
        container_scope: vec!["OU=Elsewhere,DC=lab,DC=test".into()],
        ..WritebackSettings::default()
    }
    .resolve()
    .expect("settings");
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    let CycleStatus::NothingInScope { reason } = &r.status else {
        panic!("{r:?}");
    };
    assert!(
        reason.contains("OutsideContainerScope 3") && reason.contains("container_scope"),
        "{reason}"
    );
    assert_adds_up("nothing in scope", &r);
    assert!(r.watermark.is_none());
    assert_eq!(f.engine.store.watermark().expect("wm"), None);
    assert!(f.dir.modifies.lock().expect("lock").is_empty());
    // A delta whose few changes are all out of scope is ordinary, not a warning.
    f.engine.settings = WritebackSettings::default().resolve().expect("settings");
    f.engine.run_cycle(CycleMode::Auto).await.expect("initial");
    let mut m = mailbox(1, t(5));
    m.is_exchange_cloud_managed = false;
    f.source.set(m);
    f.engine.options.overlap = SignedDuration::ZERO;
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("delta");
    assert_eq!(r.status, CycleStatus::Completed, "{r:?}");
}

#[tokio::test]
async fn counts_add_up_and_say_what_a_delta_only_re_read() {
    let mut f = fixture(4, 500);
    // Not cloud-managed, and a mailbox no AD object belongs to.
    let mut m = mailbox(2, t(0));
    m.is_exchange_cloud_managed = false;
    f.source.set(m);
    f.source.set(mailbox(9, t(0)));
    let initial = f.engine.run_cycle(CycleMode::Auto).await.expect("initial");
    assert_adds_up("initial", &initial);
    assert_eq!((initial.counts.imported, initial.counts.skipped), (5, 2));
    assert_eq!(initial.counts.reread, 0);
    assert_eq!(initial.skipped_causes.get("TargetNotFound"), Some(&1));
    assert_eq!(initial.skipped_causes.get("NotInScope"), Some(&1));

    with_ca3(&f, 3, t(1), "three");
    let delta = f.engine.run_cycle(CycleMode::Auto).await.expect("delta");
    assert_adds_up("delta", &delta);
    assert_eq!(delta.counts.written, 1);
    assert_eq!(delta.counts.changed(), 1, "{delta:?}");
    assert_eq!(delta.counts.reread, delta.counts.imported - 1, "{delta:?}");

    // A stopped cycle: what it planned and did not write is pending.
    with_ca3(&f, 1, t(2), "one");
    with_ca3(&f, 4, t(2), "four");
    f.engine
        .cancel_flag()
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let stopped = f.engine.run_cycle(CycleMode::Full).await.expect("stopped");
    f.engine
        .cancel_flag()
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert_adds_up("stopped", &stopped);

    let full = f.engine.run_cycle(CycleMode::Full).await.expect("full");
    assert_adds_up("full", &full);
    assert_eq!(full.counts.written, 2, "{full:?}");
    let undo = f
        .engine
        .undo(UndoTarget::Cycle(full.cycle))
        .await
        .expect("undo");
    assert_adds_up("undo", &undo);
    let p = f
        .engine
        .provision("user3@contoso.com", false)
        .await
        .expect("provision");
    let on_demand = f
        .engine
        .store
        .cycle(p.cycle.expect("cycle"))
        .expect("read")
        .expect("cycle");
    let c = on_demand.counts;
    assert_eq!(c.imported, c.in_scope + c.skipped);
    assert_eq!(
        c.in_scope,
        c.written + c.unchanged + c.held + c.pinned + c.failed + c.pending
    );
}
