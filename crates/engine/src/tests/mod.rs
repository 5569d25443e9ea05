//! Engine behaviour over in-memory ports and a real SQLite store.

use exo_writeback_core::provisioning::{
    CycleKind, CycleStatus, JobState, LogStatus, ObjectRef, SourceIdentity,
};
use exo_writeback_store_sqlite::prelude::*;
use exo_writeback_store_sqlite::{LogQuery, SqliteStore};
use jiff::{SignedDuration, Timestamp};

use crate::testing::{FakeDirectory, FakeSource};
use crate::{
    CycleMode, Engine, EngineError, EngineOptions, SourceError, SourceErrorKind, UndoTarget,
};

type TestEngine = Engine<FakeSource, FakeDirectory, SqliteStore>;

mod addresses;
mod decisions;
mod deltas;
mod drift;
mod groups;
mod in_sync_during_scan;
mod intents;
mod matching;
mod membership;
mod old_state;
mod pipeline;
mod quarantine;
mod read_ahead;
mod read_batches;
mod read_rights;
mod reported;
mod scan;
mod spill;
mod spoofing;
mod start;
mod support;
mod usn;

use support::mailbox;

struct Fixture {
    engine: TestEngine,
    source: FakeSource,
    dir: FakeDirectory,
    guids: Vec<uuid::Uuid>,
    _tmp: tempfile::TempDir,
}

/// The Failure entries of the provisioning log (at most 100, newest first).
fn failures(store: &SqliteStore) -> Vec<exo_writeback_core::provisioning::ProvisioningLogEntry> {
    store
        .query_logs(&LogQuery {
            statuses: vec![LogStatus::Failure],
            ..LogQuery::default()
        })
        .expect("logs")
}

fn fixture(n: u32, threshold: u32) -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
    let users = support::users(
        n,
        t0,
        &[
            (
                "proxyAddresses",
                &["X500:/o=Legacy/cn=old", "smtp:stale@contoso.com"],
            ),
            ("department", &["Finance"]),
        ],
    );
    let engine = support::engine(
        &users.source,
        users.dir.clone(),
        tmp.path(),
        threshold,
        EngineOptions {
            overlap: SignedDuration::from_mins(5),
            batch: 2,
            ..EngineOptions::default()
        },
    );
    Fixture {
        engine,
        source: users.source,
        dir: users.dir,
        guids: users.guids,
        _tmp: tmp,
    }
}

#[tokio::test]
async fn initial_cycle_writes_mapped_values_and_a_second_cycle_writes_nothing() {
    let mut f = fixture(5, 500);
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.kind, CycleKind::Initial);
    assert_eq!(r.status, CycleStatus::Completed);
    assert_eq!(
        (r.counts.imported, r.counts.written, r.counts.failed),
        (5, 5, 0)
    );
    let g = f.guids[0];
    assert_eq!(f.dir.values(&g, "extensionAttribute1"), ["ca1-1"]);
    assert_eq!(f.dir.values(&g, "mail"), ["user1@contoso.com"]);
    let mut proxies = f.dir.values(&g, "proxyAddresses");
    proxies.sort();
    // X500 kept, stale smtp removed, cloud addresses added.
    assert_eq!(
        proxies,
        [
            "SMTP:user1@contoso.com",
            "X500:/o=Legacy/cn=old",
            "smtp:user1@contoso.onmicrosoft.com"
        ]
    );
    assert_eq!(f.dir.values(&g, "department"), ["Finance"]);
    assert!(r.watermark.is_some());

    let modifies = f.dir.modifies.lock().expect("lock").len();
    let r2 = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle 2");
    assert_eq!(r2.kind, CycleKind::Delta);
    assert_eq!(r2.counts.written, 0);
    // Every mailbox was processed at the WhenChangedUTC the overlap shows again: passed over.
    assert_eq!((r2.counts.imported, r2.counts.unchanged), (0, 0));
    assert_eq!(f.dir.modifies.lock().expect("lock").len(), modifies);

    // The journal holds the previous values.
    let journal = f
        .engine
        .store
        .journal_for_object(&ObjectRef::Guid(g))
        .expect("journal");
    assert!(
        journal
            .iter()
            .any(|j| j.attribute == "extensionAttribute1" && j.previous.is_empty())
    );
}

#[tokio::test]
async fn a_cloud_change_reaches_ad_in_the_next_delta_and_old_changes_are_not_reread() {
    let mut f = fixture(3, 500);
    f.engine.run_cycle(CycleMode::Auto).await.expect("initial");
    let later: Timestamp = "2026-01-01T01:00:00Z".parse().expect("ts");
    let mut m = mailbox(2, later);
    m.custom_attributes[4] = Some("changed".into());
    f.source.set(m);
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("delta");
    assert_eq!(r.kind, CycleKind::Delta);
    // The boundary of the previous watermark is read again (overlap); what was processed at
    // the same WhenChangedUTC is passed over, only the change is planned and written.
    assert_eq!(r.counts.written, 1);
    assert_eq!((r.counts.imported, r.counts.unchanged), (1, 0));
    assert_eq!(
        f.dir.values(&f.guids[1], "extensionAttribute5"),
        ["changed"]
    );
    assert_eq!(r.watermark.expect("watermark").changed_since, later);
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("delta 2");
    assert_eq!(
        r.counts.imported, 0,
        "only mailboxes changed since the watermark are read, and the one processed at the \
         watermark is passed over"
    );
    assert_eq!(r.counts.written, 0);
}

#[tokio::test]
async fn not_cloud_managed_is_skipped_with_the_failed_condition() {
    let mut f = fixture(2, 500);
    let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
    let mut m = mailbox(2, t0);
    m.is_exchange_cloud_managed = false;
    f.source.set(m);
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!((r.counts.written, r.counts.skipped), (1, 1));
    assert!(f.dir.values(&f.guids[1], "extensionAttribute1").is_empty());
    let logs = f
        .engine
        .store
        .query_logs(&LogQuery {
            statuses: vec![LogStatus::Skipped],
            ..LogQuery::default()
        })
        .expect("logs");
    assert_eq!(logs.len(), 1);
    let reason = logs[0].reason.clone().expect("reason");
    assert_eq!(reason.code, "NotInScope");
    assert!(
        reason.message.contains("IsExchangeCloudManaged is False"),
        "{reason:?}"
    );
}

#[tokio::test]
async fn a_failed_write_fails_one_object_goes_to_escrow_and_is_retried() {
    let mut f = fixture(3, 500);
    let dn = f.dir.get(&f.guids[0]).dn;
    f.dir.fail_dns.lock().expect("lock").insert(dn.clone(), 50);
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!((r.counts.written, r.counts.failed), (2, 1));
    assert_eq!(f.engine.store.escrow_count().expect("escrow"), 1);
    assert_eq!(r.failure_causes.get("LdapError"), Some(&1));
    let failed = f
        .engine
        .store
        .query_logs(&LogQuery {
            statuses: vec![LogStatus::Failure],
            ..LogQuery::default()
        })
        .expect("logs");
    let reason = failed[0].reason.clone().expect("reason");
    assert_eq!(reason.code, "LdapError");
    assert!(reason.message.contains("result 50"), "{reason:?}");
    // Fixed: the next (delta) cycle retries the escrowed object even though it did not change.
    f.dir.fail_dns.lock().expect("lock").clear();
    let r2 = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle 2");
    assert_eq!(r2.counts.written, 1);
    assert_eq!(f.engine.store.escrow_count().expect("escrow"), 0);
    assert_eq!(f.dir.values(&f.guids[0], "extensionAttribute1"), ["ca1-1"]);
}

#[tokio::test]
async fn an_unreadable_record_is_a_logged_failure_in_escrow_and_the_others_are_written() {
    let mut f = fixture(4, 500);
    let bad = mailbox(2, "2026-01-01T00:00:00Z".parse().expect("ts"));
    let bad_id = bad.external_directory_object_id.clone().expect("id");
    f.source
        .mailboxes
        .lock()
        .expect("lock")
        .retain(|m| m.external_directory_object_id != bad.external_directory_object_id);
    let message = "mailbox user2@contoso.com: the value of CustomAttribute1 arrived as bytes \
                   that are not valid UTF-8 text; this record is skipped";
    let unreadable = SourceError {
        message: message.into(),
        kind: SourceErrorKind::Record,
        record: Some(SourceIdentity {
            kind: Default::default(),
            external_directory_object_id: Some(bad_id.clone()),
            primary_smtp_address: bad.primary_smtp_address.clone(),
            ..SourceIdentity::default()
        }),
    };
    // Listed twice (paging may repeat a record): one failure.
    f.source.unreadable.lock().expect("lock").extend([
        unreadable.clone(),
        unreadable,
        SourceError {
            message: "mailbox (a record whose identity is not readable): the record …".into(),
            kind: SourceErrorKind::Record,
            record: None,
        },
    ]);
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.status, CycleStatus::Completed);
    assert_eq!(
        (r.counts.imported, r.counts.written, r.counts.failed),
        (5, 3, 2)
    );
    assert_eq!(r.failure_causes.get("MalformedMailboxRecord"), Some(&2));
    assert!(r.watermark.is_some(), "the cycle completes");
    assert!(f.dir.values(&f.guids[1], "extensionAttribute1").is_empty());
    let failed = failures(&f.engine.store);
    assert_eq!(failed.len(), 2, "{failed:?}");
    let entry = failed
        .iter()
        .find(|e| e.source.external_directory_object_id.as_deref() == Some(bad_id.as_str()))
        .expect("logged with its identity");
    let reason = entry.reason.clone().expect("reason");
    assert_eq!(reason.code, "MalformedMailboxRecord");
    assert_eq!(reason.message, message);
    assert!(!reason.recommended_action.is_empty());
    let escrow = f.engine.store.escrow().expect("escrow");
    assert_eq!(escrow.len(), 1, "only the record with a readable id");
    assert_eq!(escrow[0].cloud_id, bad_id);

    // Still unreadable: one more attempt. Then readable again (unchanged in the cloud, so
    // only escrow brings it back): written, out of escrow.
    f.engine.run_cycle(CycleMode::Auto).await.expect("cycle 2");
    assert_eq!(f.engine.store.escrow().expect("escrow")[0].attempts, 2);
    f.source.unreadable.lock().expect("lock").clear();
    f.source.set(bad);
    let r3 = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle 3");
    assert_eq!((r3.counts.written, r3.counts.failed), (1, 0));
    assert_eq!(f.engine.store.escrow_count().expect("escrow"), 0);
    assert_eq!(f.dir.values(&f.guids[1], "extensionAttribute1"), ["ca1-2"]);
}

#[tokio::test]
async fn the_threshold_holds_a_mass_removal_until_approved() {
    let mut f = fixture(3, 1);
    // Every object loses the stale smtp address: 3 removals > threshold 1.
    let before: Vec<_> = f.guids.iter().map(|g| f.dir.get(g)).collect();
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.status, CycleStatus::ThresholdExceeded);
    assert_eq!(r.removing, 3);
    let after: Vec<_> = f.guids.iter().map(|g| f.dir.get(g)).collect();
    assert_eq!(before, after, "nothing written");
    assert!(f.engine.store.watermark().expect("wm").is_none());
    assert!(matches!(
        f.engine.store.job_state().expect("state"),
        JobState::ThresholdExceeded { .. }
    ));
    // Further cycles refuse while held; the preview shows the held changes.
    assert!(matches!(
        f.engine.run_cycle(CycleMode::Auto).await,
        Err(EngineError::Held { .. })
    ));
    let preview = f.engine.preview(CycleMode::Auto).await.expect("preview");
    let held = preview.held.expect("held");
    assert_eq!(held.cycle, r.cycle);
    assert_eq!(held.items.len(), 3);
    let a = f.engine.approve(r.cycle).await.expect("approve");
    assert_eq!(a.counts.written, 3);
    assert_eq!(f.dir.values(&f.guids[2], "extensionAttribute1"), ["ca1-3"]);
    assert_eq!(f.engine.store.job_state().expect("state"), JobState::Active);
    assert!(
        f.engine.approve(r.cycle).await.is_err(),
        "approved only once"
    );
}

#[tokio::test]
async fn undo_restores_the_previous_values_exactly() {
    let mut f = fixture(2, 500);
    let before = f.dir.get(&f.guids[0]);
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_ne!(f.dir.get(&f.guids[0]), before);
    let u = f
        .engine
        .undo(UndoTarget::Cycle(r.cycle))
        .await
        .expect("undo");
    assert_eq!(u.counts.written, 2);
    let mut restored = f.dir.get(&f.guids[0]);
    // Attributes that had no value before exist as empty lists after the replace.
    let mut cleaned = exo_writeback_core::directory::Attributes::new();
    for (k, v) in restored.attributes.iter() {
        if !v.is_empty() {
            cleaned.insert(k, v.to_vec());
        }
    }
    restored.attributes = cleaned;
    assert_eq!(restored, before);
}

#[tokio::test]
async fn a_conflicting_address_is_refused_naming_the_other_object() {
    let mut f = fixture(2, 500);
    let holder = f.dir.add_user(
        "squatter",
        "ffff",
        &[("proxyAddresses", &["smtp:user1@contoso.com"])],
    );
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.counts.failed, 1);
    assert!(f.dir.values(&f.guids[0], "extensionAttribute1").is_empty());
    let logs = f
        .engine
        .store
        .query_logs(&LogQuery {
            statuses: vec![LogStatus::Failure],
            ..LogQuery::default()
        })
        .expect("logs");
    let reason = logs[0].reason.clone().expect("reason");
    assert_eq!(reason.code, "ProxyAddressConflict");
    assert!(
        reason.message.contains(&f.dir.get(&holder).dn),
        "{reason:?}"
    );
}

#[tokio::test]
async fn a_cancelled_cycle_does_not_advance_the_watermark() {
    let mut f = fixture(3, 500);
    f.engine
        .cancel_flag()
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert!(r.watermark.is_none());
    assert!(f.engine.store.watermark().expect("wm").is_none());
    f.engine
        .cancel_flag()
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.kind, CycleKind::Initial);
    assert_eq!(r.counts.written, 3);
}

/// Provision on demand tells each step as soon as it is decided: import, scoping and matching
/// before anything is written, export after the modify — the same steps as the entry's.
#[tokio::test]
async fn provision_traces_each_step_before_the_write_and_the_export_after_it() {
    use crate::provision::StepKind;
    let mut f = fixture(2, 500);
    let modifies = f.dir.modifies.clone();
    let seen: std::sync::Mutex<Vec<(StepKind, String, usize)>> = Default::default();
    let trace = |kind: StepKind, step: &exo_writeback_core::provisioning::Step| {
        let applied = modifies.lock().expect("modifies").len();
        seen.lock()
            .expect("seen")
            .push((kind, step.details.clone(), applied));
    };
    let before = modifies.lock().expect("modifies").len();
    let r = f
        .engine
        .provision_traced("user2@contoso.com", false, &trace)
        .await
        .expect("provision");
    assert_eq!(r.entry.status, LogStatus::Success);
    let seen = seen.into_inner().expect("seen");
    let kinds: Vec<StepKind> = seen.iter().map(|s| s.0).collect();
    assert_eq!(kinds, StepKind::ALL, "{seen:?}");
    for (kind, details, applied) in &seen {
        assert_eq!(details, &kind.of(&r.entry.steps).details, "{kind:?}");
        let want = if *kind == StepKind::Export {
            before + 1
        } else {
            before
        };
        assert_eq!(*applied, want, "modifies applied when {kind:?} was told");
    }
}

#[tokio::test]
async fn provision_dry_run_writes_nothing_and_a_real_run_logs_the_steps() {
    let mut f = fixture(2, 500);
    let before = f.dir.get(&f.guids[1]);
    let r = f
        .engine
        .provision("user2@contoso.com", true)
        .await
        .expect("dry run");
    assert!(r.cycle.is_none());
    assert_eq!(f.dir.get(&f.guids[1]), before);
    assert!(
        r.entry
            .modified
            .iter()
            .any(|m| m.attribute == "extensionAttribute1")
    );
    assert!(f.engine.store.recent_cycles(10).expect("cycles").is_empty());
    let r = f
        .engine
        .provision("User_00000000-0000-0000-0000-000000000002", false)
        .await
        .expect("run");
    assert_eq!(r.entry.status, LogStatus::Success);
    assert_eq!(f.dir.values(&f.guids[1], "extensionAttribute1"), ["ca1-2"]);
    let missing = f.engine.provision("*)(cn=*", false).await.expect("missing");
    assert_eq!(missing.entry.status, LogStatus::Failure);
    assert_eq!(
        missing.entry.reason.expect("reason").code,
        "MailboxNotFound"
    );
}

#[tokio::test]
async fn a_broken_import_fails_the_cycle_keeps_its_counts_and_writes_nothing() {
    let mut f = fixture(4, 500);
    *f.source.fail_after.lock().expect("lock") = Some(2);
    let err = f.engine.run_cycle(CycleMode::Auto).await.unwrap_err();
    assert!(err.to_string().contains("connection reset"), "{err}");
    assert!(f.dir.modifies.lock().expect("lock").is_empty());
    assert!(f.engine.store.watermark().expect("wm").is_none());
    let cycle = &f.engine.store.recent_cycles(1).expect("cycles")[0];
    assert!(
        matches!(&cycle.status, CycleStatus::Failed { reason } if reason.contains("connection reset"))
    );
    assert_eq!(cycle.counts.imported, 2);
    *f.source.fail_after.lock().expect("lock") = None;
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!((r.kind, r.counts.written), (CycleKind::Initial, 4));
}

#[tokio::test]
async fn an_empty_tenant_gives_a_usable_watermark() {
    let mut f = fixture(0, 500);
    let before = Timestamp::now();
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    let w = r.watermark.expect("watermark");
    assert!(w.changed_since >= before, "{w:?}");
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("delta");
    assert_eq!(r.kind, CycleKind::Delta);
}

#[tokio::test]
async fn plans_beyond_the_memory_bound_are_planned_again_and_written() {
    let mut f = fixture(7, 500);
    f.engine.options.max_plans_in_memory = 2;
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.status, CycleStatus::Completed);
    assert_eq!((r.counts.imported, r.counts.written), (7, 7));
    for (i, g) in f.guids.iter().enumerate() {
        assert_eq!(
            f.dir.values(g, "extensionAttribute1"),
            [format!("ca1-{}", i + 1)]
        );
    }
    assert_eq!(
        f.dir.modifies.lock().expect("lock").len(),
        7,
        "each object written once"
    );
    let logs = f
        .engine
        .store
        .query_logs(&LogQuery {
            cycle: Some(r.cycle),
            ..LogQuery::default()
        })
        .expect("logs");
    assert_eq!(logs.len(), 7, "one log entry per object");
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle 2");
    assert_eq!(r.counts.written, 0);
}

/// A fence that lets `allowed` modifies through, then says the lease was lost.
struct LapsingFence {
    allowed: std::sync::atomic::AtomicUsize,
}

impl crate::WriteFence for LapsingFence {
    fn may_write(&self) -> Result<(), String> {
        let left = self.allowed.load(std::sync::atomic::Ordering::SeqCst);
        if left == 0 {
            return Err("the writer lease was taken over by another agent".into());
        }
        self.allowed
            .store(left - 1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn a_writer_that_loses_its_lease_sends_no_further_modify_and_keeps_the_rest_pending() {
    let mut f = fixture(6, 500);
    f.engine
        .set_fence(std::sync::Arc::new(LapsingFence { allowed: 3.into() }));
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(
        f.dir.modifies.lock().expect("modifies").len(),
        3,
        "modifies after the lease was lost"
    );
    assert_eq!(r.counts.written, 3);
    let CycleStatus::Failed { reason } = &r.status else {
        panic!("{:?}", r.status);
    };
    assert!(reason.contains("lost the right to write"), "{reason}");
    // The next writer writes the rest, and only the rest: the watermark did not pass them.
    f.engine.set_fence(std::sync::Arc::new(crate::Unfenced));
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.counts.written, 3);
    assert_eq!(f.dir.modifies.lock().expect("modifies").len(), 6);
}
