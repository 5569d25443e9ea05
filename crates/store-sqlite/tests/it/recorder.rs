//! The log recorder (`OutcomeStore::log_recorder`): in-sync outcomes recorded on a second
//! connection, from another thread, while the store's own connection records others, read
//! back by every reader exactly as the store's own; an outcome that changes a join refused.

use exo_writeback_core::provisioning::{
    CycleKind, EscrowUpdate, JoinUpdate, LogEntryId, ObjectOutcome,
};
use exo_writeback_store::LogQuery;
use exo_writeback_store::prelude::*;
use exo_writeback_store::testing::fixtures::{at, cloud_id, failed, smtp, success};
use exo_writeback_store_sqlite::DB_FILE_NAME;

use crate::common::open_temp;
use crate::compact::in_sync;

const DONE: &str = "already in sync: nothing to write";

#[test]
fn outcomes_recorded_beside_the_store_read_as_its_own() {
    let (dir, mut store) = open_temp();
    let cycle = store
        .begin_cycle(CycleKind::FullReconcile, at(0))
        .expect("cycle");
    // Mailbox 7 had failed before: its escrow entry is cleared by its in-sync outcome.
    let mut failure = failed(cycle, 7, at(1));
    failure.log.id = LogEntryId(uuid::Uuid::from_u128(7_000_000));
    store.record_outcome(&failure).expect("failure");
    assert!(store.escrow_entry(&cloud_id(7)).expect("escrow").is_some());
    let outcomes: Vec<ObjectOutcome> = (1..=300)
        .map(|n| in_sync(cycle, n, at(10 + n as i64), DONE))
        .collect();
    let mut recorder = store
        .log_recorder()
        .expect("recorder")
        .expect("SQLite has one");
    let beside = outcomes.clone();
    let thread = std::thread::spawn(move || {
        for chunk in beside.chunks(120) {
            recorder.record(chunk).expect("record");
        }
        recorder.finish().expect("finish");
    });
    // The store's own connection records meanwhile (a write: it waits for the recorder's
    // transactions, not fails).
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
    assert_eq!(all.len(), 300 + 20 + 1);
    for o in &outcomes {
        let found = all.iter().find(|e| e.id == o.log.id).expect("recorded");
        assert_eq!(found, &o.log, "read back as recorded");
    }
    // Found by identity (their keys merged by `finish`), as `logs --identity` finds them.
    for n in [1, 150, 300] {
        let by_identity = store
            .query_logs(&LogQuery {
                identity: Some(smtp(n)),
                limit: 10,
                ..LogQuery::default()
            })
            .expect("by identity");
        assert_eq!(by_identity.len(), 1, "{}", smtp(n));
        assert_eq!(by_identity[0].id, outcomes[n as usize - 1].log.id);
    }
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).expect("raw open");
    // Their keys were merged by `finish` (the cycle's end merges what is left: the store's
    // own outcomes' keys, some or all of which `finish` may have merged too).
    let unmerged_in_sync: i64 = conn
        .query_row(
            "SELECT count(*) FROM identity_keys_new n JOIN log_entries l ON l.seq = n.seq
             WHERE n.kind = 0 AND l.in_sync = 1",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(unmerged_in_sync, 0);
    assert!(
        store.escrow_entry(&cloud_id(7)).expect("escrow").is_none(),
        "the in-sync outcome cleared the escrow entry"
    );
}

#[test]
fn an_outcome_that_changes_a_join_is_refused_and_nothing_is_stored() {
    let (_dir, mut store) = open_temp();
    let cycle = store
        .begin_cycle(CycleKind::FullReconcile, at(0))
        .expect("cycle");
    let mut recorder = store.log_recorder().expect("recorder").expect("one");
    let mut joined = success(cycle, 2, at(2));
    joined.journal.clear();
    assert!(matches!(joined.join, JoinUpdate::Set(_)));
    let e = recorder
        .record(&[in_sync(cycle, 1, at(1), DONE), joined])
        .expect_err("a join change");
    assert!(e.to_string().contains("changes a join"), "{e}");
    let mut removed = in_sync(cycle, 3, at(3), DONE);
    removed.join = JoinUpdate::Remove {
        cloud_id: cloud_id(3),
    };
    removed.escrow = EscrowUpdate::Keep;
    assert!(recorder.record(&[removed]).is_err());
    let logged = store
        .query_logs(&LogQuery {
            cycle: Some(cycle),
            limit: 10,
            ..LogQuery::default()
        })
        .expect("logs");
    assert!(logged.is_empty(), "nothing stored: {logged:?}");
}
