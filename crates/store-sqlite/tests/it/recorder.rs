//! The SQLite log recorder (`recorder.rs`; its behaviour as every backend's: the conformance
//! test `outcomes_recorded_by_the_log_recorder_read_as_the_stores_own`): `finish` merges the
//! recorded outcomes' identity keys, what the cycle's end would otherwise do.

use exo_writeback_core::provisioning::CycleKind;
use exo_writeback_store::prelude::*;
use exo_writeback_store::testing::fixtures::{at, in_sync};
use exo_writeback_store_sqlite::DB_FILE_NAME;

use crate::common::open_temp;

/// Keys of in-sync log entries still in `identity_keys_new`.
fn unmerged_in_sync_keys(dir: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(dir.join(DB_FILE_NAME)).expect("raw open");
    conn.query_row(
        "SELECT count(*) FROM identity_keys_new n JOIN log_entries l ON l.seq = n.seq
         WHERE n.kind = 0 AND l.in_sync = 1",
        [],
        |r| r.get(0),
    )
    .expect("count")
}

#[test]
fn finish_merges_the_recorded_outcomes_identity_keys() {
    let (dir, mut store) = open_temp();
    let cycle = store
        .begin_cycle(CycleKind::FullReconcile, at(0))
        .expect("cycle");
    let outcomes: Vec<_> = (1..=50).map(|n| in_sync(cycle, n, at(n as i64))).collect();
    let mut recorder = store.log_recorder().expect("recorder").expect("one");
    recorder.record(&outcomes).expect("record");
    // Five keys each (cloud id, SMTP, UPN, DN, objectGUID), appended unmerged.
    assert_eq!(unmerged_in_sync_keys(dir.path()), 5 * 50);
    recorder.finish().expect("finish");
    assert_eq!(unmerged_in_sync_keys(dir.path()), 0);
}
