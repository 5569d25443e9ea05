//! How the journal is stored: the records of one modify in one row (migration 8).

use exo_writeback_core::provisioning::{CycleKind, ObjectRef};
use exo_writeback_store::prelude::*;
use exo_writeback_store::testing::fixtures::{at, success};
use exo_writeback_store_sqlite::{DB_FILE_NAME, StateCopy};

use crate::common::open_temp;

/// The records of one modify (one outcome, one object) share a row: a row per attribute
/// repeated the cycle, time, objectGUID, DN and log entry id, and three index entries, per
/// record. They read back exactly, in the order rows of one record each read: undo's
/// newest-first order by cycle and by object, the log entry's values, the counts and a copy.
#[test]
fn the_records_of_one_modify_share_a_row_and_read_as_before() {
    let (dir, mut store) = open_temp();
    let cycle = store.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
    let (one, two) = (success(cycle, 1, at(1)), success(cycle, 2, at(2)));
    assert!(one.journal.len() >= 3);
    store
        .record_outcomes(&[one.clone(), two.clone()])
        .expect("outcomes");
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).expect("raw open");
    let (rows, records): (i64, i64) = conn
        .query_row("SELECT count(*), sum(records) FROM journal", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("count");
    assert_eq!(rows, 2, "one row per modify");
    assert_eq!(records as usize, one.journal.len() + two.journal.len());
    // The JSON columns are stored deflated (`packed.rs`), shorter than their text.
    let (kind, stored): (String, i64) = conn
        .query_row(
            "SELECT typeof(entry), length(entry) FROM log_entries WHERE id = ?1",
            [one.log.id.0.hyphenated().to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("entry");
    let text = serde_json::to_string(&one.log).expect("json").len();
    assert_eq!(kind, "blob");
    assert!(
        (stored as usize) < text,
        "{stored} bytes for {text} of JSON"
    );
    let kinds: Vec<String> = conn
        .prepare("SELECT DISTINCT typeof(record) FROM journal")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("records");
    assert_eq!(kinds, ["blob"]);

    let newest_first = |o: &exo_writeback_core::provisioning::ObjectOutcome| {
        o.journal.iter().rev().cloned().collect::<Vec<_>>()
    };
    let mut by_cycle = newest_first(&two);
    by_cycle.extend(newest_first(&one));
    assert_eq!(store.journal_for_cycle(cycle).expect("journal"), by_cycle);
    assert_eq!(
        store
            .journal_for_object(&ObjectRef::Guid(one.log.target.object_guid.expect("guid")))
            .expect("journal"),
        newest_first(&one)
    );
    assert_eq!(
        store.log_entry(one.log.id).expect("entry"),
        Some(one.log.clone())
    );
    assert_eq!(
        store.counts().expect("counts").journal as usize,
        by_cycle.len()
    );
    let mut copied = Vec::new();
    store
        .export(&mut |row| {
            if let exo_writeback_store::StateRow::Journal { record, .. } = row {
                copied.push(record);
            }
            Ok(())
        })
        .expect("export");
    let mut in_order = one.journal.clone();
    in_order.extend(two.journal.clone());
    assert_eq!(copied, in_order);
    // A purge counts records, as before.
    let purged = store.purge_older_than(at(100)).expect("purge");
    assert_eq!(purged.journal_records as usize, in_order.len());
}
