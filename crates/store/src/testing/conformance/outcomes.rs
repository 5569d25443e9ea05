//! `record_outcome(s)`: one transaction, all or nothing.

use crate::LogQuery;
use crate::prelude::*;
use crate::testing::Backend;
use crate::testing::fixtures::{at, cloud_id, failed, guid, in_sync, success};
use exo_writeback_core::provisioning::{
    CycleId, CycleKind, EscrowUpdate, JoinUpdate, LogEntryId, ObjectRef,
};
use uuid::Uuid;

/// Everything the store holds about fixture object `n`, for before/after comparisons.
fn footprint(store: &dyn Store, n: u64) -> (usize, usize, bool, Option<u32>) {
    let logs = store
        .query_logs(&LogQuery {
            identity: Some(cloud_id(n)),
            limit: 1000,
            ..LogQuery::default()
        })
        .expect("logs");
    let journal = store
        .journal_for_object(&ObjectRef::Guid(guid(n)))
        .expect("journal");
    let join = store.join(&cloud_id(n)).expect("join").is_some();
    let escrow = store
        .escrow_entry(&cloud_id(n))
        .expect("escrow")
        .map(|e| e.attempts);
    (logs.len(), journal.len(), join, escrow)
}

pub fn an_outcome_is_stored_whole(b: &impl Backend) {
    let mut sqlite = b.open();
    // The engine holds the store as a trait object (another backend can follow).
    let store: &mut dyn Store = &mut *sqlite;
    let cycle = store.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
    let outcome = success(cycle, 1, at(1));
    store.record_outcome(&outcome).expect("record");
    assert_eq!(footprint(&*store, 1), (1, 3, true, None));
    let logs = store.query_logs(&LogQuery::default()).expect("logs");
    assert_eq!(logs, vec![outcome.log.clone()]);
    let JoinUpdate::Set(join) = &outcome.join else {
        unreachable!("fixture sets the join")
    };
    assert_eq!(store.join(&cloud_id(1)).expect("join").as_ref(), Some(join));
}

pub fn a_constraint_violation_in_the_middle_stores_nothing_of_the_outcome(b: &impl Backend) {
    let mut store = b.open();
    let cycle = store.begin_cycle(CycleKind::Delta, at(0)).expect("cycle");
    // Object 1 is already in escrow with one attempt.
    store
        .record_outcome(&failed(cycle, 1, at(1)))
        .expect("first failure");
    let before = footprint(&*store, 1);
    assert_eq!(before, (1, 0, false, Some(1)));

    // Now it succeeds, but its second journal record is invalid (no attribute name): the
    // log entry and first journal record are written before the failing insert.
    let mut bad = success(cycle, 1, at(2));
    bad.log.id = LogEntryId(Uuid::from_u128(999));
    bad.journal[1].attribute = String::new();
    let err = store
        .record_outcome(&bad)
        .expect_err("constraint violation");
    assert!(err.to_string().contains("journal"), "{err}");
    assert_eq!(
        footprint(&*store, 1),
        before,
        "no log entry, journal record, join or escrow change of the failed outcome"
    );

    // A journal record that names a cycle that does not exist fails the same way.
    let mut bad = success(cycle, 1, at(3));
    bad.log.id = LogEntryId(Uuid::from_u128(1000));
    bad.journal[2].cycle = CycleId(4242);
    store.record_outcome(&bad).expect_err("unknown cycle");
    assert_eq!(footprint(&*store, 1), before);
}

pub fn a_batch_is_all_or_nothing(b: &impl Backend) {
    let mut store = b.open();
    let cycle = store.begin_cycle(CycleKind::Delta, at(0)).expect("cycle");
    let mut batch: Vec<_> = (1..=5).map(|n| success(cycle, n, at(n as i64))).collect();
    // The fourth repeats the first's log id: a unique-constraint violation late in the batch.
    batch[3].log.id = batch[0].log.id;
    store.record_outcomes(&batch).expect_err("duplicate id");
    for n in 1..=5 {
        assert_eq!(footprint(&*store, n), (0, 0, false, None), "object {n}");
    }
    batch[3] = success(cycle, 4, at(4));
    store.record_outcomes(&batch).expect("valid batch");
    for n in 1..=5 {
        assert_eq!(footprint(&*store, n), (1, 3, true, None), "object {n}");
    }
}

pub fn joins_are_set_replaced_listed_and_removed(b: &impl Backend) {
    let mut store = b.open();
    let cycle = store.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
    let batch: Vec<_> = (1..=5).map(|n| success(cycle, n, at(n as i64))).collect();
    store.record_outcomes(&batch).expect("record");

    // The object was moved: the join follows it.
    let mut moved = success(cycle, 3, at(10));
    moved.log.id = LogEntryId(Uuid::from_u128(77));
    if let JoinUpdate::Set(j) = &mut moved.join {
        j.dn = "CN=User 3,OU=Moved,DC=lab,DC=example".into();
    }
    store.record_outcome(&moved).expect("record");
    let j = store.join(&cloud_id(3)).expect("join").expect("present");
    assert_eq!(j.dn, "CN=User 3,OU=Moved,DC=lab,DC=example");
    assert_eq!(j.updated_at, at(10));

    // Keyset paging visits every join once, in order.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.joins(after.as_deref(), 2).expect("page");
        if page.is_empty() {
            break;
        }
        after = page.last().map(|j| j.cloud_id.clone());
        seen.extend(page.into_iter().map(|j| j.cloud_id));
    }
    assert_eq!(seen, (1..=5).map(cloud_id).collect::<Vec<_>>());

    // An outcome can drop the join; so can the store directly.
    let mut gone = failed(cycle, 2, at(11));
    gone.log.id = LogEntryId(Uuid::from_u128(78));
    gone.join = JoinUpdate::Remove {
        cloud_id: cloud_id(2),
    };
    gone.escrow = EscrowUpdate::Keep;
    store.record_outcome(&gone).expect("record");
    assert_eq!(store.join(&cloud_id(2)).expect("join"), None);
    assert!(store.remove_join(&cloud_id(4)).expect("remove"));
    assert!(!store.remove_join(&cloud_id(4)).expect("remove again"));
    assert_eq!(store.joins(None, 100).expect("list").len(), 3);
}

pub fn a_watermark_committed_with_a_failing_batch_is_not_stored(b: &impl Backend) {
    use exo_writeback_core::provisioning::Watermark;
    let mut store = b.open();
    let cycle = store.begin_cycle(CycleKind::Delta, at(0)).expect("cycle");
    let wm = Watermark {
        changed_since: at(0),
        overlap: jiff::SignedDuration::from_secs(60),
        cycle,
        edge: Vec::new(),
    };
    // Two outcomes with the same log id: the batch fails, and so does the watermark.
    let bad = [success(cycle, 1, at(1)), success(cycle, 1, at(1))];
    store
        .record_outcomes_then_watermark(&bad, Some(&wm))
        .expect_err("duplicate");
    assert_eq!(store.watermark().expect("watermark"), None);
    store
        .record_outcomes_then_watermark(&bad[..1], Some(&wm))
        .expect("record");
    assert_eq!(store.watermark().expect("watermark"), Some(wm));
}

/// The log recorder (`OutcomeStore::log_recorder`): in-sync outcomes recorded on its own
/// connection, from another thread, while the store records others, are read back as the
/// store's own (by cycle, by identity, the escrow entry they clear); an outcome that changes a
/// join is refused, nothing of its chunk stored.
pub fn outcomes_recorded_by_the_log_recorder_read_as_the_stores_own(b: &impl Backend) {
    let mut store = b.open();
    let cycle = store
        .begin_cycle(CycleKind::FullReconcile, at(0))
        .expect("cycle");
    // Mailbox 7 failed before (a log entry of another id): its in-sync outcome clears it.
    let mut failure = failed(cycle, 7, at(1));
    failure.log.id = LogEntryId(Uuid::from_u128(7_000_000));
    store.record_outcome(&failure).expect("failure");
    let outcomes: Vec<_> = (1..=300)
        .map(|n| in_sync(cycle, n, at(10 + n as i64)))
        .collect();
    let mut recorder = store
        .log_recorder()
        .expect("recorder")
        .expect("this backend has a recorder");
    let beside = outcomes.clone();
    let thread = std::thread::spawn(move || {
        for chunk in beside.chunks(120) {
            recorder.record(chunk).expect("record");
        }
        let mut joined = success(cycle, 2_000, at(2));
        joined.journal.clear();
        let refused = recorder.record(&[in_sync(cycle, 3_000, at(3)), joined]);
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("changes a join")),
            "{refused:?}"
        );
        recorder.finish().expect("finish");
    });
    // The store's own connection records meanwhile: a write waits for the recorder's, it
    // does not fail.
    for n in 1001..=1020 {
        store
            .record_outcome(&success(cycle, n, at(n as i64)))
            .expect("own outcome");
    }
    thread.join().expect("recorder thread");

    let all = store
        .query_logs(&LogQuery {
            cycle: Some(cycle),
            limit: 10_000,
            ..LogQuery::default()
        })
        .expect("logs");
    assert_eq!(all.len(), 1 + 300 + 20, "nothing of the refused chunk");
    for o in &outcomes {
        let found = all.iter().find(|e| e.id == o.log.id).expect("recorded");
        assert_eq!(found, &o.log, "read back as recorded");
    }
    for n in [1, 150, 300] {
        let by_identity = store
            .query_logs(&LogQuery {
                identity: Some(cloud_id(n)),
                limit: 10,
                ..LogQuery::default()
            })
            .expect("by identity");
        assert_eq!(by_identity.len(), 1, "{}", cloud_id(n));
        assert_eq!(by_identity[0].id, outcomes[n as usize - 1].log.id);
    }
    assert!(
        store.escrow_entry(&cloud_id(7)).expect("escrow").is_none(),
        "the in-sync outcome cleared the escrow entry"
    );
    assert!(store.join(&cloud_id(2_000)).expect("join").is_none());
}
