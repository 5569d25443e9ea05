//! `exo-writeback state migrate`: a SQLite state copied into PostgreSQL, counts verified.

use exo_writeback_core::provisioning::{CycleKind, JobState, ObjectRef};
use exo_writeback_store::testing::fixtures::{at, failed, guid, success};
use exo_writeback_store_postgres::prelude::*;
use exo_writeback_store_postgres::{Fence, LogQuery, PgStore, StateCopy};
use exo_writeback_store_sqlite::SqliteStore;

use crate::database;

#[test]
fn a_sqlite_state_is_copied_into_postgres_whole_and_goes_on_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sqlite = SqliteStore::open_in(dir.path()).expect("sqlite");
    let c1 = sqlite
        .begin_cycle(CycleKind::Initial, at(0))
        .expect("cycle");
    let outcomes: Vec<_> = (1..=1_200)
        .map(|n| {
            if n % 10 == 0 {
                failed(c1, n, at(n as i64))
            } else {
                success(c1, n, at(n as i64))
            }
        })
        .collect();
    sqlite.record_outcomes(&outcomes).expect("record");
    sqlite.set_job_state(&JobState::Active).expect("state");
    let (_db, settings) = database();
    let mut pg = PgStore::open(&settings, Fence::unenforced()).expect("pg");
    let copied = pg.import_from(&sqlite).expect("copy");
    let source = sqlite.counts().expect("counts");
    assert_eq!(copied, source);
    assert_eq!(pg.counts().expect("counts"), source);
    assert_eq!(source.log_entries, 1_200);
    assert_eq!(source.journal, 1_080 * 3);
    assert_eq!(source.escrow, 120);
    let all = LogQuery {
        limit: 5_000,
        ..LogQuery::default()
    };
    assert_eq!(
        pg.query_logs(&all).expect("logs"),
        sqlite.query_logs(&all).expect("logs")
    );
    assert_eq!(
        pg.journal_for_object(&ObjectRef::Guid(guid(7)))
            .expect("journal"),
        sqlite
            .journal_for_object(&ObjectRef::Guid(guid(7)))
            .expect("journal")
    );
    assert_eq!(pg.job_state().expect("state"), JobState::Active);
    // The agents go on from there.
    let c2 = pg.begin_cycle(CycleKind::Delta, at(5_000)).expect("cycle");
    assert!(c2 > c1);
}
