//! The SQLite backend of [`exo_writeback_store::Store`]: opening, migrations, transactions;
//! each role of the store is implemented in its own module.
//!
//! Layout: INTEGER time columns are nanoseconds since the Unix epoch, clamped to `i64`, used
//! only for ordering and filtering; the exact values live in the JSON of each row (`entry`,
//! `record`, …), which is what is read back. TEXT time columns are RFC 3339.

use std::path::{Path, PathBuf};
use std::time::Duration;

use exo_writeback_core::provisioning::{ObjectOutcome, Watermark};
use rusqlite::{Connection, TransactionBehavior, params};
use uuid::Uuid;

use crate::error::Classify;
use crate::migrations::{MIGRATIONS, Migration, SCHEMA_VERSION};
use crate::outcomes::insert_outcome;
use exo_writeback_store::codec::to_json;
use exo_writeback_store::{Result, StoreError};

/// Where the agent keeps its state unless configured otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/exo-writeback";
/// The database file inside `state_dir`.
pub const DB_FILE_NAME: &str = "state.db";

/// How long a write waits for another connection's lock before failing with
/// [`StoreError::Locked`].
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// WAL pages between automatic checkpoints (see `configure`).
const WAL_AUTOCHECKPOINT_PAGES: i64 = 10_000;

/// The size the write-ahead log file is cut back to once a checkpoint has emptied it (see
/// `configure`): above the ≈ 40 MiB a checkpoint interval fills, so only a larger transaction
/// leaves a larger file behind.
const WAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

/// The SQLite state store. One per process; readers in other processes (e.g.
/// `exo-writeback status` while `run` is active) are fine thanks to WAL.
#[derive(Debug)]
pub struct SqliteStore {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
    /// Rows deleted per transaction by a retention purge.
    pub(crate) purge_chunk: i64,
    /// Unmerged identity keys that make a commit merge them: `merge_keys_first`, doubled by
    /// each merge during a cycle (`keys::after_merge`).
    pub(crate) merge_keys_at: i64,
    /// `merge_keys_at` at a cycle's start (`keys::MERGE_AT`).
    pub(crate) merge_keys_first: i64,
    /// Unmerged join changes that make a commit merge them (`joins::MERGE_AT`).
    pub(crate) merge_joins_at: i64,
    /// Where the unmerged join changes are (`joins.rs`); built when first needed.
    pub(crate) pending_joins: std::cell::RefCell<Option<crate::joins::Pending>>,
}

/// Every role of the store (each in its own module).
impl exo_writeback_store::Store for SqliteStore {}

impl SqliteStore {
    /// Opens (creating if needed) `state_dir/state.db`; creates `state_dir` (mode 0700) if it
    /// is missing.
    pub fn open_in(state_dir: &Path) -> Result<SqliteStore> {
        if !state_dir.exists() {
            create_private_dir(state_dir).map_err(|source| StoreError::StateDir {
                dir: state_dir.to_path_buf(),
                source,
            })?;
        }
        SqliteStore::open(&state_dir.join(DB_FILE_NAME))
    }

    /// Opens (creating if needed) the database file at `path` and migrates it to the current
    /// schema. A database from a newer exo-writeback is refused ([`StoreError::NewerSchema`]).
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let mut store = SqliteStore::connect(path)?;
        store.migrate(SCHEMA_VERSION)?;
        Ok(store)
    }

    /// Opens the database and migrates it only up to `version` (for tests of migrations).
    #[doc(hidden)]
    pub fn open_at_schema_version(path: &Path, version: i64) -> Result<SqliteStore> {
        let mut store = SqliteStore::connect(path)?;
        store.migrate(version.min(SCHEMA_VERSION))?;
        Ok(store)
    }

    pub(crate) fn connect(path: &Path) -> Result<SqliteStore> {
        // A new file is created owner-only before SQLite opens it: SQLite gives the -wal and
        // -shm files the database file's mode, and they hold the same data.
        if !path.exists() {
            create_private_file(path).map_err(|e| match e.kind() {
                std::io::ErrorKind::PermissionDenied => StoreError::PermissionDenied {
                    path: path.to_path_buf(),
                    op: "create",
                },
                _ => StoreError::CannotOpen {
                    path: path.to_path_buf(),
                    op: "create",
                },
            })?;
        }
        let conn = Connection::open(path).map_err(|e| StoreError::sqlite(path, "open", e))?;
        let store = SqliteStore {
            conn,
            path: path.to_path_buf(),
            purge_chunk: 5_000,
            merge_keys_at: crate::keys::MERGE_AT,
            merge_keys_first: crate::keys::MERGE_AT,
            merge_joins_at: crate::joins::MERGE_AT,
            pending_joins: Default::default(),
        };
        store.configure()?;
        Ok(store)
    }

    fn configure(&self) -> Result<()> {
        let conn = &self.conn;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| self.err("set busy timeout", e))?;
        // The first statement that reads the file: a non-database file fails here.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| self.err("enable WAL", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Invalid {
                path: self.path.clone(),
                message: format!(
                    "cannot use write-ahead logging (journal mode stayed {mode:?}); put the \
                     state_dir on a local file system"
                ),
            });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| self.err("set synchronous=FULL", e))?;
        // 64 MiB of page cache: the identity indexes take random keys, and with SQLite's
        // 2 MiB default every insert into a large table misses the cache.
        conn.pragma_update(None, "cache_size", -65_536)
            .map_err(|e| self.err("set cache size", e))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| self.err("enable foreign keys", e))?;
        // Checkpoint every 10,000 pages (≈ 40 MiB of WAL) instead of SQLite's 1,000: a page
        // changed by several transactions between two checkpoints (the tail page of each
        // table, the intents' pages reused by every chunk) is copied into the database once
        // per checkpoint. Measured with the `throughput` example (100,000 outcomes in chunks
        // of 200, intents first): 9.1 KB written per outcome at 1,000 pages, 8.5 at 4,000,
        // 8.2 at 10,000, 8.0 at 20,000.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
            .map_err(|e| self.err("set WAL checkpoint interval", e))?;
        // The WAL file keeps the size of the largest transaction written since the store
        // opened — a merge of a million joins or keys is one transaction of ≈ 250 MB at 1M —
        // unless a limit cuts it back after the checkpoint: `run` keeps its store open.
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES)
            .map_err(|e| self.err("set WAL size limit", e))?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(())
    }

    fn migrate(&mut self, target: i64) -> Result<()> {
        let found = self.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: self.path.clone(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        let path = self.path.clone();
        for version in (found + 1)..=target {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| StoreError::sqlite(&path, "begin migration", e))?;
            // Another process may have migrated while we waited for the lock.
            let now: i64 = tx
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(|e| StoreError::sqlite(&path, "read schema version", e))?;
            if now >= version {
                continue;
            }
            let index = usize::try_from(version - 1).unwrap_or(usize::MAX);
            let Some(migration) = MIGRATIONS.get(index) else {
                break;
            };
            match migration {
                Migration::Sql(sql) => tx.execute_batch(sql),
                Migration::SqlThen(sql, then) => tx.execute_batch(sql).and_then(|()| then(&tx)),
            }
            .map_err(|e| StoreError::sqlite(&path, "apply migration", e))?;
            tx.pragma_update(None, "user_version", version)
                .map_err(|e| StoreError::sqlite(&path, "record schema version", e))?;
            tx.commit()
                .map_err(|e| StoreError::sqlite(&path, "commit migration", e))?;
        }
        Ok(())
    }

    /// How long a write waits for another process's lock before [`StoreError::Locked`]
    /// (default 10 s).
    pub fn set_busy_timeout(&self, timeout: Duration) -> Result<()> {
        self.conn
            .busy_timeout(timeout)
            .map_err(|e| self.err("set busy timeout", e))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err("read schema version", e))
    }

    /// Runs SQLite's integrity check; [`StoreError::Corrupt`] with its findings if it fails.
    pub fn integrity_check(&self) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare("PRAGMA integrity_check")
            .map_err(|e| self.err("integrity check", e))?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err("integrity check", e))?;
        if rows == ["ok"] {
            Ok(())
        } else {
            Err(StoreError::Corrupt {
                path: self.path.clone(),
                op: "integrity check",
                detail: rows.join("; "),
            })
        }
    }

    pub(crate) fn err(&self, op: &'static str, e: rusqlite::Error) -> StoreError {
        StoreError::sqlite(&self.path, op, e)
    }

    pub(crate) fn write_tx(&mut self, op: &'static str) -> Result<rusqlite::Transaction<'_>> {
        let path = &self.path;
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| StoreError::sqlite(path, op, e))
    }

    /// Runs a `DELETE … WHERE seq IN (SELECT … LIMIT ?2) RETURNING n` statement with
    /// `?1 = key` until it deletes nothing; returns the sum of the `n`s (what a row counts for).
    pub(crate) fn purge_in_chunks(&mut self, sql: &str, key: i64, op: &'static str) -> Result<u64> {
        let chunk = self.purge_chunk;
        let mut total = 0;
        loop {
            let counted: Vec<i64> = self
                .conn
                .prepare_cached(sql)
                .and_then(|mut s| s.query_map(params![key, chunk], |r| r.get(0))?.collect())
                .map_err(|e| self.err(op, e))?;
            if counted.is_empty() {
                return Ok(total);
            }
            total += counted
                .iter()
                .map(|n| u64::try_from(*n).unwrap_or(0))
                .sum::<u64>();
        }
    }

    /// Outcomes, the deletion of intents and the watermark, in one transaction.
    pub(crate) fn commit_outcomes(
        &mut self,
        outcomes: &[ObjectOutcome],
        intents: &[Uuid],
        watermark: Option<&Watermark>,
    ) -> Result<()> {
        if outcomes.is_empty() && intents.is_empty() && watermark.is_none() {
            return Ok(());
        }
        let path = self.path.clone();
        let watermark = watermark
            .map(|w| to_json(&path, "watermark", w))
            .transpose()?;
        let (merge_keys_at, merge_joins_at) = (self.merge_keys_at, self.merge_joins_at);
        let mut joins = Vec::new();
        // The log shapes this transaction stored or found (`compact.rs`).
        let mut shapes = crate::compact::Seen::new();
        let tx = self.write_tx("begin recording outcomes")?;
        for o in outcomes {
            insert_outcome(&tx, &path, o, &mut joins, &mut shapes)?;
        }
        crate::intents::delete(&tx, &path, intents)?;
        let keys_merged = crate::keys::merge(&tx, merge_keys_at)
            .map_err(|e| StoreError::sqlite(&path, "merge identity keys", e))?;
        let merged = crate::joins::merge(&tx, merge_joins_at)
            .map_err(|e| StoreError::sqlite(&path, "merge joins", e))?;
        if let Some(w) = watermark {
            tx.prepare_cached("UPDATE job SET watermark = ?1 WHERE id = 1")
                .and_then(|mut s| s.execute(params![w]))
                .map_err(|e| StoreError::sqlite(&path, "store watermark", e))?;
        }
        tx.commit()
            .map_err(|e| StoreError::sqlite(&path, "commit outcomes", e))?;
        if keys_merged {
            self.merge_keys_at = crate::keys::after_merge(merge_keys_at);
        }
        self.joins_committed(joins, merged);
        Ok(())
    }

    pub(crate) fn job_row(&self) -> Result<(String, Option<String>)> {
        self.conn
            .prepare_cached("SELECT state, watermark FROM job WHERE id = 1")
            .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(|e| self.err("read job state", e))
    }
}

#[cfg(unix)]
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Creates an empty file readable and writable by the owner only; an existing file (another
/// process won the race) is fine.
#[cfg(unix)]
pub(crate) fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
pub(crate) fn create_private_file(path: &Path) -> std::io::Result<()> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exo_writeback_core::provisioning::{
        Action, EscrowUpdate, JoinUpdate, LogEntryId, LogStatus, SourceIdentity, Step, Steps,
        TargetIdentity,
    };
    use exo_writeback_core::provisioning::{
        CycleId, CycleKind, ObjectOutcome, ProvisioningLogEntry,
    };
    use exo_writeback_store::prelude::*;
    use jiff::SignedDuration;
    use jiff::Timestamp;

    fn entry(n: u128, time: Timestamp) -> ObjectOutcome {
        let step = Step::not_reached();
        ObjectOutcome {
            log: ProvisioningLogEntry {
                id: LogEntryId(Uuid::from_u128(n)),
                cycle: CycleId(1),
                time,
                duration: SignedDuration::ZERO,
                source: SourceIdentity::default(),
                target: TargetIdentity::default(),
                action: Action::Other,
                status: LogStatus::Success,
                reason: None,
                steps: Steps {
                    import: step.clone(),
                    scoping: step.clone(),
                    matching: step.clone(),
                    export: step,
                },
                modified: vec![],
            },
            journal: vec![],
            join: JoinUpdate::Keep,
            escrow: EscrowUpdate::Keep,
            pins: Default::default(),
        }
    }

    /// A transaction larger than the WAL size limit does not leave a WAL file of its size
    /// behind once a checkpoint has copied it into the database and the next write starts
    /// the log again.
    #[test]
    fn a_large_transaction_leaves_no_larger_wal_behind_than_the_limit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open_in(dir.path()).expect("open");
        let wal = dir.path().join(format!("{DB_FILE_NAME}-wal"));
        let limit = u64::try_from(WAL_SIZE_LIMIT_BYTES).expect("positive");
        let conn = &store.conn;
        conn.execute_batch(
            "CREATE TABLE big (b BLOB);
             BEGIN;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 80)
             INSERT INTO big SELECT zeroblob(1048576) FROM n;
             COMMIT;",
        )
        .expect("a transaction of 80 MiB");
        let after_commit = std::fs::metadata(&wal).expect("wal").len();
        assert!(after_commit > limit, "the WAL held {after_commit} bytes");
        // The commit's automatic checkpoint copied it; the next write restarts the log.
        conn.execute_batch("PRAGMA wal_checkpoint; INSERT INTO big VALUES (x'00');")
            .expect("checkpoint, then a small write");
        let left = std::fs::metadata(&wal).expect("wal").len();
        assert!(left <= limit, "the WAL kept {left} bytes (limit {limit})");
    }

    #[test]
    fn purge_works_through_many_chunks() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = SqliteStore::open_in(dir.path()).expect("open");
        store.purge_chunk = 3;
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
        store.begin_cycle(CycleKind::Delta, t0).expect("cycle");
        let batch: Vec<_> = (0..20)
            .map(|n| entry(n, t0 + SignedDuration::from_secs(n as i64)))
            .collect();
        store.record_outcomes(&batch).expect("record");
        let report = store
            .purge_older_than(t0 + SignedDuration::from_secs(11))
            .expect("purge");
        assert_eq!(report.log_entries, 11);
        let left = store
            .query_logs(&crate::LogQuery {
                limit: 100,
                ..crate::LogQuery::default()
            })
            .expect("query");
        assert_eq!(left.len(), 9);
        assert!(
            left.iter()
                .all(|e| e.time >= t0 + SignedDuration::from_secs(11))
        );
    }
}
