use super::*;
use crate::SqliteStore;
use exo_writeback_core::provisioning::{CycleKind, CycleStatus, JoinUpdate};
use exo_writeback_store::prelude::*;
use exo_writeback_store::testing::fixtures::{at, cloud_id};
use exo_writeback_store::{RestartStore, StateCopy};

fn unmerged(store: &SqliteStore) -> i64 {
    store
        .conn
        .query_row("SELECT count(*) FROM joins_new", [], |r| r.get(0))
        .expect("count")
}

fn merged(store: &SqliteStore) -> i64 {
    store
        .conn
        .query_row("SELECT count(*) FROM joins", [], |r| r.get(0))
        .expect("count")
}

/// The fixture's outcome of object `n`, under a log entry id of its own (an object may have
/// several outcomes here).
fn success(
    cycle: exo_writeback_core::provisioning::CycleId,
    n: u64,
    time: jiff::Timestamp,
) -> ObjectOutcome {
    let mut o = exo_writeback_store::testing::fixtures::success(cycle, n, time);
    o.log.id = exo_writeback_core::provisioning::LogEntryId(uuid::Uuid::now_v7());
    o
}

fn removal(cycle: exo_writeback_core::provisioning::CycleId, n: u64) -> ObjectOutcome {
    let mut o = success(cycle, n, at(n as i64));
    o.journal.clear();
    o.join = JoinUpdate::Remove {
        cloud_id: cloud_id(n),
    };
    o
}

use exo_writeback_core::provisioning::ObjectOutcome;

fn ids(joins: &[Join]) -> Vec<String> {
    joins.iter().map(|j| j.cloud_id.clone()).collect()
}

/// A cycle's join changes are appended, found before they are merged (the newest change of a
/// cloud id wins, a removal included), merged at the threshold and when the cycle finishes;
/// listings and counts see merged and unmerged joins alike.
#[test]
fn unmerged_joins_are_seen_by_look_ups_listings_and_counts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = SqliteStore::open_in(dir.path()).expect("open");
    store.merge_joins_at = 4;
    let cycle = store.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
    let first = success(cycle, 1, at(1));
    store.record_outcome(&first).expect("1");
    assert_eq!((unmerged(&store), merged(&store)), (1, 0));
    let JoinUpdate::Set(join1) = &first.join else {
        panic!("a join")
    };
    assert_eq!(store.join(&cloud_id(1)).expect("join"), Some(join1.clone()));
    assert_eq!(store.join(&cloud_id(9)).expect("join"), None);

    // Set again (a later time), then more objects: the newest change wins.
    let again = success(cycle, 1, at(5));
    store
        .record_outcomes(&[again.clone(), success(cycle, 2, at(2))])
        .expect("2");
    let JoinUpdate::Set(join1_again) = &again.join else {
        panic!("a join")
    };
    assert_eq!(
        store.join(&cloud_id(1)).expect("join"),
        Some(join1_again.clone())
    );
    assert_eq!(
        ids(&store.joins(None, 10).expect("list")),
        [cloud_id(1), cloud_id(2)]
    );
    assert_eq!(store.counts().expect("counts").joins, 2);

    // The fourth change reaches the threshold: merged, joins_new emptied.
    store.record_outcome(&success(cycle, 3, at(3))).expect("3");
    assert_eq!((unmerged(&store), merged(&store)), (0, 3));
    assert_eq!(
        store.join(&cloud_id(1)).expect("join"),
        Some(join1_again.clone())
    );

    // A removal of a merged join and a new join, unmerged.
    store
        .record_outcomes(&[removal(cycle, 2), success(cycle, 4, at(4))])
        .expect("4");
    assert_eq!(unmerged(&store), 2);
    assert_eq!(store.join(&cloud_id(2)).expect("join"), None);
    assert!(store.join(&cloud_id(4)).expect("join").is_some());
    assert_eq!(
        ids(&store.joins(None, 10).expect("list")),
        [cloud_id(1), cloud_id(3), cloud_id(4)]
    );
    // Paging across both tables.
    assert_eq!(
        ids(&store.joins(None, 2).expect("list")),
        [cloud_id(1), cloud_id(3)]
    );
    assert_eq!(
        ids(&store.joins(Some(&cloud_id(3)), 2).expect("list")),
        [cloud_id(4)]
    );
    assert_eq!(store.counts().expect("counts").joins, 3);
    let mut exported = Vec::new();
    store
        .export(&mut |row| {
            if let exo_writeback_store::StateRow::Join(j) = row {
                exported.push(j.cloud_id);
            }
            Ok(())
        })
        .expect("export");
    assert_eq!(exported, [cloud_id(1), cloud_id(3), cloud_id(4)]);

    // remove_join of an unmerged join.
    assert!(store.remove_join(&cloud_id(4)).expect("remove"));
    assert!(!store.remove_join(&cloud_id(4)).expect("remove again"));
    assert_eq!(store.join(&cloud_id(4)).expect("join"), None);

    // The finished cycle merges the rest: the removals are applied.
    store
        .finish_cycle(cycle, at(9), &Default::default(), &CycleStatus::Completed)
        .expect("finish");
    assert_eq!((unmerged(&store), merged(&store)), (0, 2));
    assert_eq!(
        ids(&store.joins(None, 10).expect("list")),
        [cloud_id(1), cloud_id(3)]
    );
    assert_eq!(store.join(&cloud_id(2)).expect("join"), None);
    assert_eq!(
        store.join(&cloud_id(1)).expect("join"),
        Some(join1_again.clone())
    );
}

/// The in-memory map of unmerged joins follows commits of other connections (another
/// process writing the same state, one after the other): it is rebuilt when the database
/// changed under it.
#[test]
fn look_ups_see_joins_another_connection_committed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut a = SqliteStore::open_in(dir.path()).expect("open");
    let mut b = SqliteStore::open_in(dir.path()).expect("open");
    let cycle = a.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
    a.record_outcome(&success(cycle, 1, at(1))).expect("1");
    // a's map is built (and holds 1).
    assert!(a.join(&cloud_id(1)).expect("join").is_some());
    assert!(b.join(&cloud_id(1)).expect("join").is_some());
    b.record_outcome(&success(cycle, 2, at(2))).expect("2");
    b.record_outcomes(&[removal(cycle, 1)]).expect("remove 1");
    assert!(
        a.join(&cloud_id(2)).expect("join").is_some(),
        "b's new join"
    );
    assert_eq!(a.join(&cloud_id(1)).expect("join"), None, "b's removal");
    // b merges: a's map points at rows that are gone, and is rebuilt.
    b.finish_cycle(cycle, at(3), &Default::default(), &CycleStatus::Completed)
        .expect("finish");
    assert!(a.join(&cloud_id(2)).expect("join").is_some());
    assert_eq!(a.join(&cloud_id(1)).expect("join"), None);
    // A restart in full removes merged and unmerged joins, counted once each.
    let cycle = a.begin_cycle(CycleKind::Delta, at(4)).expect("cycle");
    a.record_outcome(&success(cycle, 3, at(5))).expect("3");
    let report = a
        .restart(exo_writeback_core::provisioning::RestartScope::Full, at(6))
        .expect("restart");
    assert_eq!(report.joins_removed, 2);
    assert_eq!(a.join(&cloud_id(3)).expect("join"), None);
    assert_eq!(b.join(&cloud_id(2)).expect("join"), None);
}

/// The rowids of `joins_new` holding `id`, oldest first.
fn rows_of(store: &SqliteStore, id: &str) -> Vec<i64> {
    let mut stmt = store
        .conn
        .prepare("SELECT rowid FROM joins_new WHERE cloud_id = ?1 ORDER BY rowid")
        .expect("prepare");
    stmt.query_map([id], |r| r.get(0))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows")
}

/// The map holds one rowid per 64-bit key, the newest. When another cloud id with the same
/// key wrote after a cloud id's change (a collision, made here by pointing the key at the
/// other id's row), the look-up still finds the cloud id's own newest change — a removal
/// included — and, with no unmerged change of its own, its merged join.
#[test]
fn a_key_whose_newest_row_is_another_cloud_ids_still_finds_its_own_newest_change() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = SqliteStore::open_in(dir.path()).expect("open");
    let cycle = store.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
    let merged1 = success(cycle, 1, at(1));
    store.record_outcome(&merged1).expect("1");
    store
        .finish_cycle(cycle, at(2), &Default::default(), &CycleStatus::Completed)
        .expect("finish");
    assert_eq!((unmerged(&store), merged(&store)), (0, 1));

    let cycle = store.begin_cycle(CycleKind::Delta, at(3)).expect("cycle");
    let older = success(cycle, 2, at(4));
    let newer = success(cycle, 2, at(5));
    store
        .record_outcomes(&[older, newer.clone(), success(cycle, 3, at(6))])
        .expect("2, 2, 3");
    let JoinUpdate::Set(join2) = &newer.join else {
        panic!("a join")
    };
    // The map is built, each key at its newest row.
    assert_eq!(store.join(&cloud_id(2)).expect("join"), Some(join2.clone()));
    let (rows2, rows3) = (rows_of(&store, &cloud_id(2)), rows_of(&store, &cloud_id(3)));
    assert_eq!((rows2.len(), rows3.len()), (2, 1));
    let pending = |store: &SqliteStore, id: &str| {
        store
            .pending_joins
            .borrow()
            .as_ref()
            .and_then(|p| p.rows.get(&key(id)).copied())
    };
    assert_eq!(pending(&store, &cloud_id(2)), Some(rows2[1]));
    let collide = |store: &SqliteStore, id: &str, rowid: i64| {
        store
            .pending_joins
            .borrow_mut()
            .as_mut()
            .expect("the map")
            .rows
            .insert(key(id), rowid);
    };

    // Cloud id 3 "collides" with 2 and wrote after it: 2's newest change is still found.
    collide(&store, &cloud_id(2), rows3[0]);
    assert_eq!(store.join(&cloud_id(2)).expect("join"), Some(join2.clone()));

    // 2 removed, then 3 writes after it under the same key: 2 stays removed.
    store
        .record_outcomes(&[removal(cycle, 2)])
        .expect("remove 2");
    store
        .record_outcome(&success(cycle, 3, at(7)))
        .expect("3 again");
    let newest3 = *rows_of(&store, &cloud_id(3)).last().expect("3");
    collide(&store, &cloud_id(2), newest3);
    assert_eq!(store.join(&cloud_id(2)).expect("join"), None);

    // Cloud id 1 has no unmerged change; its key pointing at 3's row: its merged join.
    let JoinUpdate::Set(join1) = &merged1.join else {
        panic!("a join")
    };
    collide(&store, &cloud_id(1), newest3);
    assert_eq!(store.join(&cloud_id(1)).expect("join"), Some(join1.clone()));
    assert!(store.join(&cloud_id(3)).expect("join").is_some());
}
