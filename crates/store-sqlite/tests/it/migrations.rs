//! Opening, migrating and refusing state databases.

use crate::common::{at, begin_cycle_as_before, insert_as_version_4, open_temp, success};
use exo_writeback_core::provisioning::{CycleKind, JobState};
use exo_writeback_store_sqlite::migrations::SCHEMA_VERSION;
use exo_writeback_store_sqlite::prelude::*;
use exo_writeback_store_sqlite::{DB_FILE_NAME, LogQuery, SqliteStore, StoreError};

#[test]
fn a_fresh_state_dir_gets_the_current_schema() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state_dir = dir.path().join("nested").join("state");
    let store = SqliteStore::open_in(&state_dir).expect("open");
    assert_eq!(store.path(), state_dir.join(DB_FILE_NAME));
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    assert_eq!(store.job_state().expect("state"), JobState::NotRun);
    assert_eq!(store.watermark().expect("watermark"), None);
    store.integrity_check().expect("integrity");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| {
            std::fs::metadata(p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                .permissions()
                .mode()
        };
        let db = store.path().to_path_buf();
        let wal = db.with_extension("db-wal");
        for file in [&db, &wal] {
            let m = mode(file);
            assert_eq!(m & 0o077, 0, "{} readable by others: {m:o}", file.display());
        }
        assert_eq!(mode(&state_dir) & 0o077, 0, "state_dir open to others");
    }
}

#[test]
fn reopening_is_idempotent_and_keeps_the_data() {
    let (dir, mut store) = open_temp();
    let cycle = store.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
    store
        .record_outcome(&success(cycle, 1, at(1)))
        .expect("record");
    store.set_job_state(&JobState::Active).expect("state");
    drop(store);
    for _ in 0..3 {
        let store = SqliteStore::open_in(dir.path()).expect("reopen");
        assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
        assert_eq!(store.job_state().expect("state"), JobState::Active);
        assert_eq!(
            store.query_logs(&LogQuery::default()).expect("logs").len(),
            1
        );
    }
}

#[test]
fn an_older_database_is_migrated_with_its_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(DB_FILE_NAME);
    {
        let old = SqliteStore::open_at_schema_version(&path, 1).expect("open at v1");
        assert_eq!(old.schema_version().expect("version"), 1);
        let cycle = begin_cycle_as_before(&path, CycleKind::Initial, at(0));
        insert_as_version_4(&path, &success(cycle, 7, at(1)));
    }
    let store = SqliteStore::open(&path).expect("migrate");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    let logs = store.query_logs(&LogQuery::default()).expect("logs");
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0], success(logs[0].cycle, 7, at(1)).log);
    // Found by its identities through the keys migration 6 computed.
    for identity in [
        "USER7@contoso.com",
        "cn=user 7,ou=staff,dc=lab,dc=example",
        "0000AAAA-0000-0000-0000-000000000007",
    ] {
        let found = store
            .query_logs(&LogQuery {
                identity: Some(identity.into()),
                ..LogQuery::default()
            })
            .expect("logs");
        assert_eq!(found, logs, "{identity}");
    }
    // The indexes of later migrations exist.
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    for index in ["log_entries_status_time", "journal_log_entry"] {
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?1",
                [index],
                |r| r.get(0),
            )
            .expect("query");
        assert_eq!(n, 1, "index {index} of a later migration");
    }
}

/// Version 5 rebuilds the log table (a new status, two columns): the rows, their order and
/// their sequence survive; entries of objects already in sync are marked as such; pins and a
/// pause can be stored.
#[test]
fn a_version_4_database_keeps_its_log_and_gains_held_entries_pins_and_a_pause() {
    use exo_writeback_core::provisioning::{Action, LogStatus, Pause, PinUpdate};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(DB_FILE_NAME);
    let cycle;
    {
        let _old = SqliteStore::open_at_schema_version(&path, 4).expect("open at v4");
        cycle = begin_cycle_as_before(&path, CycleKind::Delta, at(0));
    }
    let written = success(cycle, 1, at(1));
    let mut in_sync = success(cycle, 2, at(2));
    in_sync.log.action = Action::Other;
    in_sync.journal.clear();
    let failed = crate::common::failed(cycle, 3, at(3));
    for o in [&written, &in_sync, &failed] {
        insert_as_version_4(&path, o);
    }
    let max_seq = |path: &std::path::Path| -> i64 {
        rusqlite::Connection::open(path)
            .expect("raw open")
            .query_row("SELECT max(seq) FROM log_entries", [], |r| r.get(0))
            .expect("max seq")
    };
    let before = max_seq(&path);

    let mut store = SqliteStore::open(&path).expect("migrate");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    let all = store.query_logs(&LogQuery::default()).expect("logs");
    assert_eq!(
        all,
        vec![failed.log.clone(), in_sync.log.clone(), written.log.clone()]
    );
    let quiet = store
        .query_logs(&LogQuery {
            hide_in_sync: true,
            ..LogQuery::default()
        })
        .expect("logs");
    assert_eq!(quiet, vec![failed.log.clone(), written.log.clone()]);
    store.integrity_check().expect("integrity");

    // New rows continue the sequence, may be held, and are found by their UPN.
    let mut held = success(cycle, 4, at(4));
    held.log.status = LogStatus::Held;
    held.journal.clear();
    held.pins = PinUpdate::default();
    store.record_outcome(&held).expect("a held entry");
    assert!(max_seq(&path) > before);
    let by_upn = store
        .query_logs(&LogQuery {
            identity: Some("upn4@corp.example".into()),
            ..LogQuery::default()
        })
        .expect("logs");
    assert_eq!(by_upn, vec![held.log.clone()]);
    assert_eq!(store.pin_count().expect("pins").attributes, 0);
    let pause = Pause {
        by: "alice".into(),
        since: at(9),
        reason: None,
    };
    assert_eq!(store.set_pause(Some(&pause)).expect("pause"), None);
    drop(store);
    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(store.pause().expect("pause"), Some(pause));
}

#[test]
fn a_newer_database_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(DB_FILE_NAME);
    drop(SqliteStore::open(&path).expect("create"));
    {
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 5)
            .expect("bump");
    }
    let err = SqliteStore::open(&path).expect_err("newer schema must be refused");
    match &err {
        StoreError::NewerSchema {
            found, supported, ..
        } => {
            assert_eq!(*found, SCHEMA_VERSION + 5);
            assert_eq!(*supported, SCHEMA_VERSION);
        }
        other => panic!("unexpected error {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("newer exo-writeback"), "{message}");
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(v, SCHEMA_VERSION + 5, "the newer file was not modified");
}

#[test]
fn a_file_that_is_not_a_database_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(DB_FILE_NAME);
    std::fs::write(
        &path,
        b"this is not SQLite at all, just some text ".repeat(200),
    )
    .expect("write");
    let err = SqliteStore::open(&path).expect_err("garbage must be refused");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("restart --scope full"), "{message}");
}

#[test]
fn an_impossible_location_is_reported_with_what_to_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"x").expect("write");
    // state_dir is a regular file: the directory cannot be created.
    let err = SqliteStore::open_in(&blocker).expect_err("must fail");
    assert!(matches!(err, StoreError::CannotOpen { .. }), "{err:?}");
    // The database's parent is a regular file.
    let err = SqliteStore::open(&blocker.join(DB_FILE_NAME)).expect_err("must fail");
    assert!(matches!(err, StoreError::CannotOpen { .. }), "{err:?}");
    assert!(err.to_string().contains("a-file"), "{err}");
}

#[test]
fn a_write_lock_held_elsewhere_is_reported_as_locked() {
    let (_dir, mut store) = open_temp();
    let cycle = store.begin_cycle(CycleKind::Delta, at(0)).expect("cycle");
    store
        .set_busy_timeout(std::time::Duration::from_millis(50))
        .expect("timeout");
    let other = rusqlite::Connection::open(store.path()).expect("second connection");
    other
        .execute_batch("BEGIN IMMEDIATE")
        .expect("hold the write lock");
    let err = store
        .record_outcome(&success(cycle, 1, at(1)))
        .expect_err("must not write while locked");
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains("another process"), "{err}");
    other.execute_batch("ROLLBACK").expect("release");
    store
        .record_outcome(&success(cycle, 1, at(1)))
        .expect("writes once the lock is gone");
}

#[test]
fn intents_survive_a_reopen_and_a_database_of_version_3_is_migrated_with_its_data() {
    use exo_writeback_store_sqlite::WriteIntent;
    let intent8 = |cycle| {
        WriteIntent::from_success(&crate::common::cloud_id(8), &success(cycle, 8, at(8)))
            .expect("intent")
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(DB_FILE_NAME);
    let cycle;
    {
        let old = SqliteStore::open_at_schema_version(&path, 3).expect("open at v3");
        assert_eq!(old.schema_version().expect("version"), 3);
        cycle = begin_cycle_as_before(&path, CycleKind::Initial, at(0));
        insert_as_version_4(&path, &success(cycle, 7, at(1)));
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
        store.record_intents(&[intent8(cycle)]).expect("record");
    }
    // A kill after recording intents: they are there when the next process opens the file.
    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(store.intents().expect("intents"), vec![intent8(cycle)]);
    store.integrity_check().expect("integrity");
}

/// Issue 15: no index takes a random identity value (each insert would dirty a random page
/// of it once it outgrows the page cache); identities are found through `identity_keys`.
#[test]
fn no_index_is_keyed_by_a_random_identity_column() {
    let (dir, store) = open_temp();
    drop(store);
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE_NAME)).expect("raw open");
    let mut stmt = conn
        .prepare(
            "SELECT m.name, i.name FROM sqlite_master m, pragma_index_info(m.name) i
             WHERE m.type = 'index' AND m.tbl_name IN ('log_entries', 'journal')",
        )
        .expect("prepare");
    let columns: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    for (index, column) in &columns {
        assert!(
            !["source_id", "smtp", "upn", "dn", "guid", "object_guid"].contains(&column.as_str()),
            "index {index} on {column}"
        );
    }
    assert!(columns.iter().any(|(_, c)| c == "log_entry"), "{columns:?}");
}

/// Migration 8: intents stored one row each (versions 4 to 7; a process killed mid-chunk
/// leaves them) become batches, read back in the order recorded, counted, and deleted as
/// before — some of a batch, then the rest with outcomes.
#[test]
fn intents_of_a_version_7_database_are_migrated_in_their_order() {
    use exo_writeback_store_sqlite::{StateCopy, WriteIntent};
    let intent = |cycle, n| {
        WriteIntent::from_success(
            &crate::common::cloud_id(n),
            &success(cycle, n, at(n as i64)),
        )
        .expect("intent")
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(DB_FILE_NAME);
    let (cycle, intents) = {
        let old = SqliteStore::open_at_schema_version(&path, 7).expect("open at v7");
        let cycle = begin_cycle_as_before(&path, CycleKind::Initial, at(0));
        let intents: Vec<WriteIntent> = [5, 1, 3].iter().map(|n| intent(cycle, *n)).collect();
        drop(old);
        // As version 7 stored them (`record_intents` of 6f928c2).
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        for i in &intents {
            conn.execute(
                "INSERT INTO intents (id, cycle, cloud_id, object_guid, dn, intent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![
                    i.id.hyphenated().to_string(),
                    i.cycle.0,
                    i.cloud_id,
                    i.object_guid.hyphenated().to_string(),
                    i.dn,
                    serde_json::to_string(i).expect("json"),
                ],
            )
            .expect("insert v7 intent");
        }
        (cycle, intents)
    };
    let mut store = SqliteStore::open(&path).expect("migrate");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    assert_eq!(store.intents().expect("intents"), intents);
    assert_eq!(store.counts().expect("counts").intents, 3);
    // A batch recorded after the migration comes after them.
    let later = intent(cycle, 9);
    store
        .record_intents(std::slice::from_ref(&later))
        .expect("record");
    let mut all = intents.clone();
    all.push(later.clone());
    assert_eq!(store.intents().expect("intents"), all);
    assert_eq!(
        store
            .delete_intents(&[intents[1].id, uuid::Uuid::from_u128(42)])
            .expect("delete"),
        1
    );
    store
        .record_outcomes_clearing_intents(
            &[success(cycle, 5, at(5))],
            &[intents[0].id, intents[2].id, later.id],
        )
        .expect("outcomes");
    assert!(store.intents().expect("intents").is_empty());
    assert_eq!(store.counts().expect("counts").intents, 0);
    store.integrity_check().expect("integrity");
}

/// A version 10 database kept a journal's unmerged keys beside the log entries' (here: a
/// cycle that stopped before its end); migration 11 gives the journal's keys a table of their
/// own and merges the ones waiting, so the journal is found as before.
#[test]
fn the_journal_keys_a_version_10_database_left_unmerged_are_merged() {
    use exo_writeback_core::provisioning::ObjectRef;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(DB_FILE_NAME);
    let written = {
        let mut store = SqliteStore::open(&path).expect("open");
        let cycle = store.begin_cycle(CycleKind::Initial, at(0)).expect("cycle");
        let o = success(cycle, 1, at(1));
        store.record_outcome(&o).expect("outcome");
        o
    };
    // The same database as version 10 left it: one table of unmerged keys, with their kind.
    let raw = rusqlite::Connection::open(&path).expect("raw open");
    raw.execute_batch(
        "INSERT INTO identity_keys_new (h, kind, seq) SELECT h, 1, seq FROM journal_keys_new;
         DROP TABLE journal_keys_new;
         PRAGMA user_version = 10;",
    )
    .expect("as version 10");
    let waiting = |raw: &rusqlite::Connection| -> (i64, i64) {
        raw.query_row(
            "SELECT (SELECT count(*) FROM identity_keys_new WHERE kind = 1),
                    (SELECT count(*) FROM identity_keys)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("count")
    };
    assert_eq!(waiting(&raw), (2, 0));
    let store = SqliteStore::open(&path).expect("migrate");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    assert_eq!(
        waiting(&raw),
        (0, 7),
        "five keys of the entry, two of its journal"
    );
    let guid = written.log.target.object_guid.expect("guid");
    let mut journal = store
        .journal_for_object(&ObjectRef::Guid(guid))
        .expect("journal");
    journal.reverse();
    assert_eq!(journal, written.journal);
}
