//! Write-ahead intents: recorded before a batch's modifies, deleted with its outcomes.

use crate::prelude::*;
use crate::testing::Backend;
use crate::testing::fixtures::{at, cloud_id, failed, success};
use crate::{LogQuery, WriteIntent};
use exo_writeback_core::provisioning::{CycleId, CycleKind, LogStatus, ObjectRef};

fn intent(cycle: CycleId, n: u64) -> WriteIntent {
    WriteIntent::from_success(&cloud_id(n), &success(cycle, n, at(n as i64))).expect("intent")
}

pub fn intents_round_trip_in_the_order_recorded(b: &impl Backend) {
    let mut store = b.open();
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

pub fn outcomes_and_the_deletion_of_their_intents_commit_together(b: &impl Backend) {
    let mut store = b.open();
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

pub fn deleting_intents_counts_only_those_that_existed(b: &impl Backend) {
    let mut store = b.open();
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

pub fn intents_survive_a_reopen(b: &impl Backend) {
    let mut store = b.open();
    let cycle = store.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
    store.record_intents(&[intent(cycle, 8)]).expect("record");
    // A kill after recording intents: they are there when the next process opens the state.
    let other = b.reopen(&store);
    assert_eq!(other.intents().expect("intents"), vec![intent(cycle, 8)]);
}
