//! Write-ahead intents: recorded before a batch's modifies, deleted with its outcomes.

use crate::common::{at, cloud_id, failed, open_temp, success};
use exo_writeback_core::provisioning::{CycleId, CycleKind, LogStatus, ObjectRef};
use exo_writeback_store_sqlite::migrations::SCHEMA_VERSION;
use exo_writeback_store_sqlite::prelude::*;
use exo_writeback_store_sqlite::{DB_FILE_NAME, LogQuery, SqliteStore, WriteIntent};

fn intent(cycle: CycleId, n: u64) -> WriteIntent {
    WriteIntent::from_success(&cloud_id(n), &success(cycle, n, at(n as i64))).expect("intent")
}

#[test]
fn intents_round_trip_in_the_order_recorded() {
    let (_dir, mut store) = open_temp();
    let cycle = store.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
    let batch: Vec<WriteIntent> = [5, 1, 3].iter().map(|n| intent(cycle, *n)).collect();
    store.record_intents(&batch).expect("record");
    assert_eq!(store.intents().expect("intents"), batch);
    // The planned modify is the journal's values after; the outcome is the success one.
    let i = &batch[1];
    let planned: Vec<_> = i
        .planned()
        .map(|(a, v)| (a.to_string(), v.to_vec()))
        .collect();
    let s = success(cycle, 1, at(1));
    assert_eq!(
        planned,
        s.journal
            .iter()
            .map(|j| (j.attribute.clone(), j.new.clone()))
            .collect::<Vec<_>>()
    );
    let o = i.clone().into_outcome();
    assert_eq!((o.log, o.journal, o.join), (s.log, s.journal, s.join));
    // Nothing is logged by recording intents.
    assert!(
        store
            .query_logs(&LogQuery::default())
            .expect("logs")
            .is_empty()
    );
}

#[test]
fn outcomes_and_the_deletion_of_their_intents_commit_together() {
    let (_dir, mut store) = open_temp();
    let cycle = store.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
    let batch: Vec<WriteIntent> = (1..=3).map(|n| intent(cycle, n)).collect();
    store.record_intents(&batch).expect("record");

    // A failing commit (two entries with one id) stores nothing and deletes nothing.
    let bad = [success(cycle, 1, at(1)), success(cycle, 1, at(1))];
    store
        .record_outcomes_clearing_intents(&bad, &[batch[0].id, batch[1].id])
        .expect_err("duplicate log id");
    assert_eq!(store.intents().expect("intents").len(), 3);
    assert!(
        store
            .query_logs(&LogQuery::default())
            .expect("logs")
            .is_empty()
    );

    // Objects 1 and 2 written (2 failed); 3's modify was not sent: all three intents go.
    let outcomes = [success(cycle, 1, at(1)), failed(cycle, 2, at(2))];
    let ids: Vec<_> = batch.iter().map(|i| i.id).collect();
    store
        .record_outcomes_clearing_intents(&outcomes, &ids)
        .expect("commit");
    assert!(store.intents().expect("intents").is_empty());
    let logs = store.query_logs(&LogQuery::default()).expect("logs");
    assert_eq!(logs.len(), 2);
    assert_eq!(
        store
            .journal_for_object(&ObjectRef::Guid(batch[0].object_guid))
            .expect("journal")
            .len(),
        success(cycle, 1, at(1)).journal.len()
    );
    assert!(logs.iter().any(|l| l.status == LogStatus::Failure));
}

#[test]
fn deleting_intents_counts_only_those_that_existed() {
    let (_dir, mut store) = open_temp();
    let cycle = store.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
    let batch: Vec<WriteIntent> = (1..=4).map(|n| intent(cycle, n)).collect();
    store.record_intents(&batch).expect("record");
    let unknown = uuid::Uuid::from_u128(42);
    assert_eq!(
        store
            .delete_intents(&[batch[1].id, unknown, batch[3].id])
            .expect("delete"),
        2
    );
    let left: Vec<_> = store.intents().expect("intents");
    assert_eq!(left, vec![batch[0].clone(), batch[2].clone()]);
    assert_eq!(store.delete_intents(&[]).expect("delete"), 0);
    // An intent names an existing cycle.
    store
        .record_intents(&[intent(CycleId(999), 9)])
        .expect_err("unknown cycle");
    assert_eq!(store.intents().expect("intents").len(), 2);
}

#[test]
fn intents_survive_a_reopen_and_a_database_of_version_3_is_migrated_with_its_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(DB_FILE_NAME);
    let cycle;
    {
        let mut old = SqliteStore::open_at_schema_version(&path, 3).expect("open at v3");
        assert_eq!(old.schema_version().expect("version"), 3);
        cycle = old.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
        crate::common::insert_as_version_4(&path, &success(cycle, 7, at(1)));
        assert!(old.intents().is_err(), "no intents table before version 4");
    }
    {
        let mut store = SqliteStore::open(&path).expect("migrate");
        assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
        const { assert!(SCHEMA_VERSION >= 4) };
        let logs = store.query_logs(&LogQuery::default()).expect("logs");
        assert_eq!(logs, vec![success(cycle, 7, at(1)).log]);
        assert_eq!(
            store.journal_for_cycle(cycle).expect("journal").len(),
            success(cycle, 7, at(1)).journal.len()
        );
        store.record_intents(&[intent(cycle, 8)]).expect("record");
    }
    // A kill after recording intents: they are there when the next process opens the file.
    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(store.intents().expect("intents"), vec![intent(cycle, 8)]);
    store.integrity_check().expect("integrity");
}
