//! Escrow: failures accumulate attempts and back off; success clears.

use crate::prelude::*;
use crate::testing::Backend;
use crate::testing::fixtures::{at, cloud_id, failed, success};
use exo_writeback_core::provisioning::{CycleKind, LogEntryId, escrow_next_retry};
use jiff::SignedDuration;
use uuid::Uuid;

pub fn repeated_failures_follow_the_back_off_schedule(b: &impl Backend) {
    let mut store = b.open();
    let cycle = store.begin_cycle(CycleKind::Delta, at(0)).expect("cycle");
    // (failure instant in seconds, attempts after it, retry delay in seconds)
    let cases = [
        (10, 1, 0),
        (20, 2, 60),
        (100, 3, 300),
        (500, 4, 1800),
        (3000, 5, 7200),
        (20000, 6, 4 * 3600),
    ];
    for (i, (secs, attempts, delay)) in cases.into_iter().enumerate() {
        let mut o = failed(cycle, 1, at(secs));
        o.log.id = LogEntryId(Uuid::from_u128(i as u128 + 1));
        store.record_outcome(&o).expect("record");
        let e = store
            .escrow_entry(&cloud_id(1))
            .expect("read")
            .expect("in escrow");
        assert_eq!(e.attempts, attempts, "after failure at {secs}s");
        assert_eq!(e.first_failed_at, at(10));
        assert_eq!(e.last_failed_at, at(secs));
        assert_eq!(e.next_retry, at(secs) + SignedDuration::from_secs(delay));
        assert_eq!(e.next_retry, escrow_next_retry(attempts, at(secs)));
        assert_eq!(e.error.code, "LdapError");
    }
    // Success clears it.
    let mut ok = success(cycle, 1, at(30000));
    ok.log.id = LogEntryId(Uuid::from_u128(100));
    store.record_outcome(&ok).expect("record");
    assert_eq!(store.escrow_entry(&cloud_id(1)).expect("read"), None);
    assert_eq!(store.escrow_count().expect("count"), 0);
}

pub fn due_entries_are_those_whose_retry_time_has_come(b: &impl Backend) {
    let mut store = b.open();
    let cycle = store.begin_cycle(CycleKind::Delta, at(0)).expect("cycle");
    // Objects 1..=3 fail once (due next cycle); object 2 fails a second time (due +60 s).
    store
        .record_outcomes(&[
            failed(cycle, 1, at(10)),
            failed(cycle, 2, at(5)),
            failed(cycle, 3, at(20)),
        ])
        .expect("record");
    let mut again = failed(cycle, 2, at(30));
    again.log.id = LogEntryId(Uuid::from_u128(55));
    store.record_outcome(&again).expect("record");

    fn due_ids(store: &dyn Store, t: i64) -> Vec<String> {
        store
            .escrow_due(at(t), 100)
            .expect("due")
            .into_iter()
            .map(|e| e.cloud_id)
            .collect()
    }
    let due = |t| due_ids(&*store, t);
    assert_eq!(due(9), Vec::<String>::new());
    assert_eq!(due(10), vec![cloud_id(1)]);
    assert_eq!(due(25), vec![cloud_id(1), cloud_id(3)]);
    assert_eq!(due(89), vec![cloud_id(1), cloud_id(3)]);
    assert_eq!(due(90), vec![cloud_id(1), cloud_id(3), cloud_id(2)]);
    assert_eq!(store.escrow_due(at(90), 2).expect("due").len(), 2);
    assert_eq!(store.escrow().expect("all").len(), 3);

    assert!(store.clear_escrow(&cloud_id(3)).expect("clear"));
    assert!(!store.clear_escrow(&cloud_id(3)).expect("clear again"));
    assert_eq!(due_ids(&*store, 1000), vec![cloud_id(1), cloud_id(2)]);
    assert_eq!(store.clear_all_escrow().expect("clear all"), 2);
    assert!(store.escrow().expect("all").is_empty());
}
