//! Fixtures of the SQLite-only tests (the shared ones: `exo_writeback_store::testing::fixtures`).

use exo_writeback_core::provisioning::ObjectOutcome;
use exo_writeback_store_sqlite::SqliteStore;
use jiff::Timestamp;
use tempfile::TempDir;

/// A fresh store in a temporary state_dir (kept alive by the returned TempDir).
pub fn open_temp() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open_in(dir.path()).expect("open store");
    (dir, store)
}

pub use exo_writeback_store::testing::fixtures::*;

/// Begins a cycle in a database of an older schema version, as every version stored it: the
/// `cycles` row alone (this binary's `begin_cycle` also merges the identity keys left
/// unmerged, in tables older versions lack).
pub fn begin_cycle_as_before(
    path: &std::path::Path,
    kind: exo_writeback_core::provisioning::CycleKind,
    started_at: Timestamp,
) -> exo_writeback_core::provisioning::CycleId {
    use exo_writeback_core::provisioning::{CycleCounts, CycleId, CycleStatus};
    let conn = rusqlite::Connection::open(path).expect("raw open");
    fn json<T: serde::Serialize>(v: &T) -> String {
        serde_json::to_string(v).expect("json")
    }
    let id = conn
        .query_row(
            "INSERT INTO cycles (kind, started_at, finished_at, counts, status)
             VALUES (?1, ?2, NULL, ?3, ?4) RETURNING id",
            rusqlite::params![
                kind.as_str(),
                started_at.to_string(),
                json(&CycleCounts::default()),
                json(&CycleStatus::Running),
            ],
            |r| r.get(0),
        )
        .expect("insert cycle");
    CycleId(id)
}

/// Stores an outcome's log entry and journal in a database of schema version 1 to 4, as
/// those versions did (raw SQL: the store's own code writes the current schema).
pub fn insert_as_version_4(path: &std::path::Path, o: &ObjectOutcome) {
    let conn = rusqlite::Connection::open(path).expect("raw open");
    let ns = |t: Timestamp| i64::try_from(t.as_nanosecond()).expect("nanoseconds");
    let log = &o.log;
    let id = log.id.0.hyphenated().to_string();
    conn.execute(
        "INSERT INTO log_entries (id, cycle, time, status, source_id, smtp, dn, guid, entry)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        rusqlite::params![
            id,
            log.cycle.0,
            ns(log.time),
            log.status.as_str(),
            log.source
                .external_directory_object_id
                .as_deref()
                .map(str::to_lowercase),
            log.source
                .primary_smtp_address
                .as_deref()
                .map(str::to_lowercase),
            log.target.dn.as_deref().map(str::to_lowercase),
            log.target.object_guid.map(|g| g.hyphenated().to_string()),
            serde_json::to_string(log).expect("entry"),
        ],
    )
    .expect("insert a version 4 log entry");
    for j in &o.journal {
        conn.execute(
            "INSERT INTO journal (cycle, log_entry, time, object_guid, dn, attribute, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![
                j.cycle.0,
                id,
                ns(j.time),
                j.object_guid.hyphenated().to_string(),
                j.dn.to_lowercase(),
                j.attribute,
                serde_json::to_string(j).expect("record"),
            ],
        )
        .expect("insert a version 4 journal record");
    }
}
