//! The SQLite backend of [`Store`].
//!
//! Layout: INTEGER time columns are nanoseconds since the Unix epoch, clamped to `i64`, used
//! only for ordering and filtering; the exact values live in the JSON of each row (`entry`,
//! `record`, …), which is what is read back. TEXT time columns are RFC 3339.

use std::path::{Path, PathBuf};
use std::time::Duration;

use exo_writeback_core::provisioning::{
    CycleCounts, CycleId, CycleKind, CycleRecord, CycleStatus, EscrowEntry, EscrowUpdate, JobState,
    Join, JoinUpdate, JournalRecord, ObjectOutcome, ObjectRef, ProvisioningLogEntry, RestartScope,
    StagedCycle, StagedDecision, StagedPlan, Watermark,
};
use jiff::Timestamp;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params, params_from_iter};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::Classify;
use crate::migrations::{MIGRATIONS, SCHEMA_VERSION};
use exo_writeback_store::{
    LogQuery, PurgeReport, RestartReport, Result, Store, StoreError, WriteIntent,
};

/// Where the agent keeps its state unless configured otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/exo-writeback";
/// The database file inside `state_dir`.
pub const DB_FILE_NAME: &str = "state.db";

/// How long a write waits for another connection's lock before failing with
/// [`StoreError::Locked`].
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The SQLite state store. One per process; readers in other processes (e.g.
/// `exo-writeback status` while `run` is active) are fine thanks to WAL.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// Rows deleted per transaction by a retention purge.
    purge_chunk: i64,
}

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

    fn connect(path: &Path) -> Result<SqliteStore> {
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
            let Some(sql) = MIGRATIONS.get(index) else {
                break;
            };
            tx.execute_batch(sql)
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

    fn err(&self, op: &'static str, e: rusqlite::Error) -> StoreError {
        StoreError::sqlite(&self.path, op, e)
    }

    fn write_tx(&mut self, op: &'static str) -> Result<rusqlite::Transaction<'_>> {
        let path = &self.path;
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| StoreError::sqlite(path, op, e))
    }

    /// Runs a `DELETE … WHERE seq IN (SELECT … LIMIT ?2)` statement with `?1 = key` until it
    /// deletes nothing; returns the rows deleted.
    fn purge_in_chunks(&mut self, sql: &str, key: i64, op: &'static str) -> Result<u64> {
        let chunk = self.purge_chunk;
        let mut total = 0;
        loop {
            let n = self
                .conn
                .prepare_cached(sql)
                .and_then(|mut s| s.execute(params![key, chunk]))
                .map_err(|e| self.err(op, e))?;
            total += count(n);
            if n == 0 {
                return Ok(total);
            }
        }
    }

    /// Outcomes, the deletion of intents and the watermark, in one transaction.
    fn commit_outcomes(
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
        let tx = self.write_tx("begin recording outcomes")?;
        for o in outcomes {
            insert_outcome(&tx, &path, o)?;
        }
        delete_intent_rows(&tx, &path, intents)?;
        if let Some(w) = watermark {
            tx.prepare_cached("UPDATE job SET watermark = ?1 WHERE id = 1")
                .and_then(|mut s| s.execute(params![w]))
                .map_err(|e| StoreError::sqlite(&path, "store watermark", e))?;
        }
        tx.commit()
            .map_err(|e| StoreError::sqlite(&path, "commit outcomes", e))
    }

    fn job_row(&self) -> Result<(String, Option<String>)> {
        self.conn
            .prepare_cached("SELECT state, watermark FROM job WHERE id = 1")
            .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(|e| self.err("read job state", e))
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding helpers
// ---------------------------------------------------------------------------------------------

/// The ordering key of an instant: nanoseconds since the epoch, clamped to `i64`.
fn time_key(t: Timestamp) -> i64 {
    let n = t.as_nanosecond();
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

fn to_json<T: Serialize>(path: &Path, what: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Unstorable {
        path: path.to_path_buf(),
        what,
        detail: e.to_string(),
    })
}

fn from_json<T: DeserializeOwned>(path: &Path, what: &'static str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::BadRow {
        path: path.to_path_buf(),
        what,
        detail: e.to_string(),
    })
}

fn parse_time(path: &Path, what: &'static str, text: &str) -> Result<Timestamp> {
    text.parse().map_err(|e: jiff::Error| StoreError::BadRow {
        path: path.to_path_buf(),
        what,
        detail: e.to_string(),
    })
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Case folding for identity columns (DNs and SMTP addresses compare case-insensitively).
fn fold(s: &str) -> String {
    s.to_lowercase()
}

fn guid_text(g: &Uuid) -> String {
    g.hyphenated().to_string()
}

/// The ExternalDirectoryObjectId in the form stored for look-ups: lower case, no `User_`.
fn source_key(id: &str) -> String {
    let folded = fold(id.trim());
    match folded.strip_prefix("user_") {
        Some(rest) => rest.to_owned(),
        None => folded,
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Creates an empty file readable and writable by the owner only; an existing file (another
/// process won the race) is fine.
#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<()> {
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
fn create_private_file(path: &Path) -> std::io::Result<()> {
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

// ---------------------------------------------------------------------------------------------
// Row decoding
// ---------------------------------------------------------------------------------------------

struct CycleRow {
    id: i64,
    kind: String,
    started_at: String,
    finished_at: Option<String>,
    counts: String,
    status: String,
}

const CYCLE_COLUMNS: &str = "id, kind, started_at, finished_at, counts, status";

fn cycle_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CycleRow> {
    Ok(CycleRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        started_at: r.get(2)?,
        finished_at: r.get(3)?,
        counts: r.get(4)?,
        status: r.get(5)?,
    })
}

fn decode_cycle(path: &Path, row: CycleRow) -> Result<CycleRecord> {
    let kind = CycleKind::from_name(&row.kind).ok_or_else(|| StoreError::BadRow {
        path: path.to_path_buf(),
        what: "cycle kind",
        detail: format!("unknown kind {:?}", row.kind),
    })?;
    Ok(CycleRecord {
        id: CycleId(row.id),
        kind,
        started_at: parse_time(path, "cycle start", &row.started_at)?,
        finished_at: row
            .finished_at
            .as_deref()
            .map(|t| parse_time(path, "cycle end", t))
            .transpose()?,
        counts: from_json(path, "cycle counts", &row.counts)?,
        status: from_json(path, "cycle status", &row.status)?,
    })
}

fn decode_join(
    path: &Path,
    (cloud_id, guid, dn, updated_at): (String, String, String, String),
) -> Result<Join> {
    Ok(Join {
        cloud_id,
        object_guid: Uuid::parse_str(&guid).map_err(|e| StoreError::BadRow {
            path: path.to_path_buf(),
            what: "join objectGUID",
            detail: e.to_string(),
        })?,
        dn,
        updated_at: parse_time(path, "join time", &updated_at)?,
    })
}

fn collect_json<T: DeserializeOwned>(
    path: &Path,
    what: &'static str,
    texts: Vec<String>,
) -> Result<Vec<T>> {
    texts.iter().map(|t| from_json(path, what, t)).collect()
}

// ---------------------------------------------------------------------------------------------
// Outcomes
// ---------------------------------------------------------------------------------------------

fn insert_outcome(tx: &rusqlite::Transaction<'_>, path: &Path, o: &ObjectOutcome) -> Result<()> {
    let e = |op: &'static str| move |err: rusqlite::Error| StoreError::sqlite(path, op, err);
    let log = &o.log;
    let entry = to_json(path, "provisioning log entry", log)?;
    tx.prepare_cached(
        "INSERT INTO log_entries (id, cycle, time, status, source_id, smtp, dn, guid, entry)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            log.id.0.hyphenated().to_string(),
            log.cycle.0,
            time_key(log.time),
            log.status.as_str(),
            log.source
                .external_directory_object_id
                .as_deref()
                .map(source_key),
            log.source.primary_smtp_address.as_deref().map(fold),
            log.target.dn.as_deref().map(fold),
            log.target.object_guid.as_ref().map(guid_text),
            entry,
        ])
    })
    .map_err(e("store provisioning log entry"))?;

    if !o.journal.is_empty() {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO journal (cycle, log_entry, time, object_guid, dn, attribute, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(e("store journal record"))?;
        for j in &o.journal {
            let record = to_json(path, "journal record", j)?;
            stmt.execute(params![
                j.cycle.0,
                log.id.0.hyphenated().to_string(),
                time_key(j.time),
                guid_text(&j.object_guid),
                fold(&j.dn),
                j.attribute,
                record,
            ])
            .map_err(e("store journal record"))?;
        }
    }

    match &o.join {
        JoinUpdate::Keep => {}
        JoinUpdate::Set(join) => {
            tx.prepare_cached(
                "INSERT INTO joins (cloud_id, object_guid, dn, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (cloud_id) DO UPDATE SET
                   object_guid = excluded.object_guid, dn = excluded.dn,
                   updated_at = excluded.updated_at",
            )
            .and_then(|mut s| {
                s.execute(params![
                    join.cloud_id,
                    guid_text(&join.object_guid),
                    join.dn,
                    join.updated_at.to_string(),
                ])
            })
            .map_err(e("store join"))?;
        }
        JoinUpdate::Remove { cloud_id } => {
            tx.prepare_cached("DELETE FROM joins WHERE cloud_id = ?1")
                .and_then(|mut s| s.execute(params![cloud_id]))
                .map_err(e("remove join"))?;
        }
    }

    match &o.escrow {
        EscrowUpdate::Keep => {}
        EscrowUpdate::Failed { failure, failed_at } => {
            let previous: Option<String> = tx
                .prepare_cached("SELECT entry FROM escrow WHERE cloud_id = ?1")
                .and_then(|mut s| {
                    s.query_row(params![failure.cloud_id], |r| r.get(0))
                        .optional()
                })
                .map_err(e("read escrow entry"))?;
            let previous: Option<EscrowEntry> = previous
                .as_deref()
                .map(|t| from_json(path, "escrow entry", t))
                .transpose()?;
            let next = EscrowEntry::after_failure(previous.as_ref(), failure, *failed_at);
            let entry = to_json(path, "escrow entry", &next)?;
            tx.prepare_cached(
                "INSERT INTO escrow (cloud_id, next_retry, entry) VALUES (?1, ?2, ?3)
                 ON CONFLICT (cloud_id) DO UPDATE SET
                   next_retry = excluded.next_retry, entry = excluded.entry",
            )
            .and_then(|mut s| s.execute(params![next.cloud_id, time_key(next.next_retry), entry]))
            .map_err(e("store escrow entry"))?;
        }
        EscrowUpdate::Clear { cloud_id } => {
            tx.prepare_cached("DELETE FROM escrow WHERE cloud_id = ?1")
                .and_then(|mut s| s.execute(params![cloud_id]))
                .map_err(e("clear escrow entry"))?;
        }
    }
    Ok(())
}

fn delete_intent_rows(tx: &rusqlite::Transaction<'_>, path: &Path, ids: &[Uuid]) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let mut stmt = tx
        .prepare_cached("DELETE FROM intents WHERE id = ?1")
        .map_err(|e| StoreError::sqlite(path, "delete intent", e))?;
    let mut n = 0;
    for id in ids {
        n += count(
            stmt.execute(params![guid_text(id)])
                .map_err(|e| StoreError::sqlite(path, "delete intent", e))?,
        );
    }
    Ok(n)
}

// ---------------------------------------------------------------------------------------------
// The trait
// ---------------------------------------------------------------------------------------------

impl Store for SqliteStore {
    fn job_state(&self) -> Result<JobState> {
        let (state, _) = self.job_row()?;
        from_json(&self.path, "job state", &state)
    }

    fn set_job_state(&mut self, state: &JobState) -> Result<()> {
        let text = to_json(&self.path, "job state", state)?;
        self.conn
            .prepare_cached("UPDATE job SET state = ?1 WHERE id = 1")
            .and_then(|mut s| s.execute(params![text]))
            .map_err(|e| self.err("store job state", e))?;
        Ok(())
    }

    fn watermark(&self) -> Result<Option<Watermark>> {
        let (_, watermark) = self.job_row()?;
        watermark
            .as_deref()
            .map(|t| from_json(&self.path, "watermark", t))
            .transpose()
    }

    fn set_watermark(&mut self, watermark: &Watermark) -> Result<()> {
        let text = to_json(&self.path, "watermark", watermark)?;
        self.conn
            .prepare_cached("UPDATE job SET watermark = ?1 WHERE id = 1")
            .and_then(|mut s| s.execute(params![text]))
            .map_err(|e| self.err("store watermark", e))?;
        Ok(())
    }

    fn begin_cycle(&mut self, kind: CycleKind, started_at: Timestamp) -> Result<CycleId> {
        let counts = to_json(&self.path, "cycle counts", &CycleCounts::default())?;
        let status = to_json(&self.path, "cycle status", &CycleStatus::Running)?;
        let id = self
            .conn
            .prepare_cached(
                "INSERT INTO cycles (kind, started_at, finished_at, counts, status)
                 VALUES (?1, ?2, NULL, ?3, ?4) RETURNING id",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![kind.as_str(), started_at.to_string(), counts, status],
                    |r| r.get(0),
                )
            })
            .map_err(|e| self.err("begin cycle", e))?;
        Ok(CycleId(id))
    }

    fn finish_cycle(
        &mut self,
        cycle: CycleId,
        finished_at: Timestamp,
        counts: &CycleCounts,
        status: &CycleStatus,
    ) -> Result<()> {
        let counts = to_json(&self.path, "cycle counts", counts)?;
        let status = to_json(&self.path, "cycle status", status)?;
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE cycles SET finished_at = ?2, counts = ?3, status = ?4 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![cycle.0, finished_at.to_string(), counts, status]))
            .map_err(|e| self.err("finish cycle", e))?;
        if changed == 0 {
            return Err(StoreError::Invalid {
                path: self.path.clone(),
                message: format!("there is no cycle {cycle} to finish"),
            });
        }
        Ok(())
    }

    fn cycle(&self, cycle: CycleId) -> Result<Option<CycleRecord>> {
        let row = self
            .conn
            .prepare_cached(&format!("SELECT {CYCLE_COLUMNS} FROM cycles WHERE id = ?1"))
            .and_then(|mut s| s.query_row(params![cycle.0], cycle_row).optional())
            .map_err(|e| self.err("read cycle", e))?;
        row.map(|r| decode_cycle(&self.path, r)).transpose()
    }

    fn recent_cycles(&self, limit: usize) -> Result<Vec<CycleRecord>> {
        let rows: Vec<CycleRow> = self
            .conn
            .prepare_cached(&format!(
                "SELECT {CYCLE_COLUMNS} FROM cycles ORDER BY id DESC LIMIT ?1"
            ))
            .and_then(|mut s| {
                s.query_map(params![limit_param(limit)], cycle_row)?
                    .collect()
            })
            .map_err(|e| self.err("list cycles", e))?;
        rows.into_iter()
            .map(|r| decode_cycle(&self.path, r))
            .collect()
    }

    fn interrupt_running_cycles(&mut self, at: Timestamp) -> Result<u64> {
        let running = to_json(&self.path, "cycle status", &CycleStatus::Running)?;
        let interrupted = to_json(&self.path, "cycle status", &CycleStatus::Interrupted)?;
        let n = self
            .conn
            .prepare_cached("UPDATE cycles SET status = ?2, finished_at = ?3 WHERE status = ?1")
            .and_then(|mut s| s.execute(params![running, interrupted, at.to_string()]))
            .map_err(|e| self.err("mark interrupted cycles", e))?;
        Ok(count(n))
    }

    fn record_outcomes(&mut self, outcomes: &[ObjectOutcome]) -> Result<()> {
        self.record_outcomes_then_watermark(outcomes, None)
    }

    fn record_outcomes_then_watermark(
        &mut self,
        outcomes: &[ObjectOutcome],
        watermark: Option<&Watermark>,
    ) -> Result<()> {
        self.commit_outcomes(outcomes, &[], watermark)
    }

    fn record_intents(&mut self, intents: &[WriteIntent]) -> Result<()> {
        if intents.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let p: &Path = &path;
        let e = |op: &'static str| move |err: rusqlite::Error| StoreError::sqlite(p, op, err);
        let tx = self.write_tx("begin recording intents")?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO intents (id, cycle, cloud_id, object_guid, dn, intent)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(e("store intent"))?;
            for i in intents {
                let text = to_json(&path, "write intent", i)?;
                stmt.execute(params![
                    guid_text(&i.id),
                    i.cycle.0,
                    i.cloud_id,
                    guid_text(&i.object_guid),
                    i.dn,
                    text,
                ])
                .map_err(e("store intent"))?;
            }
        }
        tx.commit().map_err(e("commit intents"))
    }

    fn record_outcomes_clearing_intents(
        &mut self,
        outcomes: &[ObjectOutcome],
        intents: &[Uuid],
    ) -> Result<()> {
        self.commit_outcomes(outcomes, intents, None)
    }

    fn intents(&self) -> Result<Vec<WriteIntent>> {
        let texts: Vec<String> = self
            .conn
            .prepare_cached("SELECT intent FROM intents ORDER BY seq")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| self.err("read intents", e))?;
        collect_json(&self.path, "write intent", texts)
    }

    fn delete_intents(&mut self, ids: &[Uuid]) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let path = self.path.clone();
        let tx = self.write_tx("begin deleting intents")?;
        let n = delete_intent_rows(&tx, &path, ids)?;
        tx.commit()
            .map_err(|e| StoreError::sqlite(&path, "commit deleting intents", e))?;
        Ok(n)
    }

    fn join(&self, cloud_id: &str) -> Result<Option<Join>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT cloud_id, object_guid, dn, updated_at FROM joins WHERE cloud_id = ?1",
            )
            .and_then(|mut s| {
                s.query_row(params![cloud_id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()
            })
            .map_err(|e| self.err("read join", e))?;
        row.map(|r| decode_join(&self.path, r)).transpose()
    }

    fn joins(&self, after: Option<&str>, limit: usize) -> Result<Vec<Join>> {
        let rows: Vec<(String, String, String, String)> = self
            .conn
            .prepare_cached(
                "SELECT cloud_id, object_guid, dn, updated_at FROM joins
                 WHERE ?1 IS NULL OR cloud_id > ?1 ORDER BY cloud_id LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![after, limit_param(limit)], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect()
            })
            .map_err(|e| self.err("list joins", e))?;
        rows.into_iter()
            .map(|r| decode_join(&self.path, r))
            .collect()
    }

    fn remove_join(&mut self, cloud_id: &str) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM joins WHERE cloud_id = ?1")
            .and_then(|mut s| s.execute(params![cloud_id]))
            .map_err(|e| self.err("remove join", e))?;
        Ok(n > 0)
    }

    fn escrow_due(&self, now: Timestamp, limit: usize) -> Result<Vec<EscrowEntry>> {
        let texts: Vec<String> = self
            .conn
            .prepare_cached(
                "SELECT entry FROM escrow WHERE next_retry <= ?1
                 ORDER BY next_retry, cloud_id LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![time_key(now), limit_param(limit)], |r| r.get(0))?
                    .collect()
            })
            .map_err(|e| self.err("read due escrow entries", e))?;
        // The key is clamped; the exact instant decides.
        Ok(
            collect_json::<EscrowEntry>(&self.path, "escrow entry", texts)?
                .into_iter()
                .filter(|e| e.is_due(now))
                .collect(),
        )
    }

    fn escrow(&self) -> Result<Vec<EscrowEntry>> {
        let texts: Vec<String> = self
            .conn
            .prepare_cached("SELECT entry FROM escrow ORDER BY next_retry, cloud_id")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| self.err("list escrow", e))?;
        collect_json(&self.path, "escrow entry", texts)
    }

    fn escrow_entry(&self, cloud_id: &str) -> Result<Option<EscrowEntry>> {
        let text: Option<String> = self
            .conn
            .prepare_cached("SELECT entry FROM escrow WHERE cloud_id = ?1")
            .and_then(|mut s| s.query_row(params![cloud_id], |r| r.get(0)).optional())
            .map_err(|e| self.err("read escrow entry", e))?;
        text.as_deref()
            .map(|t| from_json(&self.path, "escrow entry", t))
            .transpose()
    }

    fn escrow_count(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM escrow")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(|e| self.err("count escrow", e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn clear_escrow(&mut self, cloud_id: &str) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM escrow WHERE cloud_id = ?1")
            .and_then(|mut s| s.execute(params![cloud_id]))
            .map_err(|e| self.err("clear escrow entry", e))?;
        Ok(n > 0)
    }

    fn clear_all_escrow(&mut self) -> Result<u64> {
        let n = self
            .conn
            .execute("DELETE FROM escrow", [])
            .map_err(|e| self.err("clear escrow", e))?;
        Ok(count(n))
    }

    fn stage_changes(
        &mut self,
        cycle: CycleId,
        staged_at: Timestamp,
        plans: &[StagedPlan],
    ) -> Result<()> {
        let path = self.path.clone();
        let decision = to_json(&path, "staged decision", &StagedDecision::Pending)?;
        let encoded: Vec<(String, String)> = plans
            .iter()
            .map(|p| Ok((p.cloud_id.clone(), to_json(&path, "staged plan", p)?)))
            .collect::<Result<_>>()?;
        let tx = self.write_tx("begin staging changes")?;
        let p: &Path = &path;
        let e = |op: &'static str| move |err: rusqlite::Error| StoreError::sqlite(p, op, err);
        let existing: Option<String> = tx
            .query_row(
                "SELECT decision FROM staged_cycles WHERE cycle = ?1",
                params![cycle.0],
                |r| r.get(0),
            )
            .optional()
            .map_err(e("read staged changes"))?;
        match existing {
            Some(d) => {
                let d: StagedDecision = from_json(&path, "staged decision", &d)?;
                if d != StagedDecision::Pending {
                    return Err(StoreError::Invalid {
                        path: path.clone(),
                        message: format!(
                            "the staged changes of cycle {cycle} were already approved or \
                             discarded; nothing can be added to them"
                        ),
                    });
                }
            }
            None => {
                let cycle_exists: bool = tx
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM cycles WHERE id = ?1)",
                        params![cycle.0],
                        |r| r.get(0),
                    )
                    .map_err(e("read cycle"))?;
                if !cycle_exists {
                    return Err(StoreError::Invalid {
                        path: path.clone(),
                        message: format!("there is no cycle {cycle} to stage changes for"),
                    });
                }
                tx.execute(
                    "INSERT INTO staged_cycles (cycle, staged_at, decision) VALUES (?1, ?2, ?3)",
                    params![cycle.0, staged_at.to_string(), decision],
                )
                .map_err(e("store staged cycle"))?;
            }
        }
        let first: i64 = tx
            .query_row(
                "SELECT coalesce(max(seq) + 1, 0) FROM staged_plans WHERE cycle = ?1",
                params![cycle.0],
                |r| r.get(0),
            )
            .map_err(e("read staged plans"))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO staged_plans (cycle, seq, cloud_id, plan) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(e("store staged plan"))?;
            for (i, (cloud_id, plan)) in encoded.iter().enumerate() {
                let seq = first.saturating_add(limit_param(i));
                stmt.execute(params![cycle.0, seq, cloud_id, plan])
                    .map_err(e("store staged plan"))?;
            }
        }
        tx.commit().map_err(e("commit staged changes"))
    }

    fn staged_changes(&self, cycle: CycleId) -> Result<Option<StagedCycle>> {
        let head: Option<(String, String)> = self
            .conn
            .prepare_cached("SELECT staged_at, decision FROM staged_cycles WHERE cycle = ?1")
            .and_then(|mut s| {
                s.query_row(params![cycle.0], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(|e| self.err("read staged changes", e))?;
        let Some((staged_at, decision)) = head else {
            return Ok(None);
        };
        let texts: Vec<String> = self
            .conn
            .prepare_cached("SELECT plan FROM staged_plans WHERE cycle = ?1 ORDER BY seq")
            .and_then(|mut s| s.query_map(params![cycle.0], |r| r.get(0))?.collect())
            .map_err(|e| self.err("read staged plans", e))?;
        Ok(Some(StagedCycle {
            cycle,
            staged_at: parse_time(&self.path, "staging time", &staged_at)?,
            decision: from_json(&self.path, "staged decision", &decision)?,
            plans: collect_json(&self.path, "staged plan", texts)?,
        }))
    }

    fn staged_plans(&self, cycle: CycleId, from: usize, limit: usize) -> Result<Vec<StagedPlan>> {
        let texts: Vec<String> = self
            .conn
            .prepare_cached(
                "SELECT plan FROM staged_plans WHERE cycle = ?1 ORDER BY seq LIMIT ?3 OFFSET ?2",
            )
            .and_then(|mut s| {
                s.query_map(
                    params![cycle.0, limit_param(from), limit_param(limit)],
                    |r| r.get(0),
                )?
                .collect()
            })
            .map_err(|e| self.err("read staged plans", e))?;
        collect_json(&self.path, "staged plan", texts)
    }

    fn staged_count(&self, cycle: CycleId) -> Result<u64> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM staged_plans WHERE cycle = ?1")
            .and_then(|mut s| s.query_row(params![cycle.0], |r| r.get(0)))
            .map_err(|e| self.err("count staged plans", e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn pending_staged_cycles(&self) -> Result<Vec<CycleId>> {
        let pending = to_json(&self.path, "staged decision", &StagedDecision::Pending)?;
        let ids: Vec<i64> = self
            .conn
            .prepare_cached("SELECT cycle FROM staged_cycles WHERE decision = ?1 ORDER BY cycle")
            .and_then(|mut s| s.query_map(params![pending], |r| r.get(0))?.collect())
            .map_err(|e| self.err("list staged cycles", e))?;
        Ok(ids.into_iter().map(CycleId).collect())
    }

    fn mark_staged_approved(&mut self, cycle: CycleId, by: CycleId, at: Timestamp) -> Result<()> {
        let path = self.path.clone();
        let approved = to_json(
            &path,
            "staged decision",
            &StagedDecision::Approved { at, by },
        )?;
        let tx = self.write_tx("begin approving staged changes")?;
        let p: &Path = &path;
        let e = |op: &'static str| move |err: rusqlite::Error| StoreError::sqlite(p, op, err);
        let decision: Option<String> = tx
            .query_row(
                "SELECT decision FROM staged_cycles WHERE cycle = ?1",
                params![cycle.0],
                |r| r.get(0),
            )
            .optional()
            .map_err(e("read staged changes"))?;
        let Some(decision) = decision else {
            return Err(StoreError::Invalid {
                path: path.clone(),
                message: format!(
                    "cycle {cycle} has no staged changes; `exo-writeback status` shows the held \
                     cycle"
                ),
            });
        };
        match from_json::<StagedDecision>(&path, "staged decision", &decision)? {
            StagedDecision::Pending => {}
            StagedDecision::Approved { by: earlier, .. } => {
                return Err(StoreError::Invalid {
                    path: path.clone(),
                    message: format!(
                        "the changes of cycle {cycle} were already approved (applied by cycle \
                         {earlier})"
                    ),
                });
            }
            StagedDecision::Discarded { .. } => {
                return Err(StoreError::Invalid {
                    path: path.clone(),
                    message: format!(
                        "the changes of cycle {cycle} were discarded by a restart; run a new \
                         cycle"
                    ),
                });
            }
        }
        tx.execute(
            "UPDATE staged_cycles SET decision = ?2 WHERE cycle = ?1",
            params![cycle.0, approved],
        )
        .map_err(e("approve staged changes"))?;
        tx.commit().map_err(e("commit approval"))
    }

    fn query_logs(&self, query: &LogQuery) -> Result<Vec<ProvisioningLogEntry>> {
        let mut sql = String::from("SELECT entry FROM log_entries WHERE 1 = 1");
        let mut args: Vec<SqlValue> = Vec::new();
        if !query.statuses.is_empty() {
            sql.push_str(" AND status IN (");
            for (i, s) in query.statuses.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('?');
                args.push(SqlValue::Text(s.as_str().to_owned()));
            }
            sql.push(')');
        }
        if let Some(identity) = query.identity.as_deref() {
            let identity = identity.trim();
            let folded = fold(identity);
            let guid = Uuid::parse_str(identity)
                .map(|g| guid_text(&g))
                .unwrap_or_default();
            sql.push_str(" AND (source_id = ? OR smtp = ? OR dn = ? OR guid = ?)");
            args.push(SqlValue::Text(source_key(identity)));
            args.push(SqlValue::Text(folded.clone()));
            args.push(SqlValue::Text(folded));
            args.push(SqlValue::Text(guid));
        }
        if let Some(cycle) = query.cycle {
            sql.push_str(" AND cycle = ?");
            args.push(SqlValue::Integer(cycle.0));
        }
        if let Some(since) = query.since {
            sql.push_str(" AND time >= ?");
            args.push(SqlValue::Integer(time_key(since)));
        }
        sql.push_str(" ORDER BY time DESC, seq DESC LIMIT ?");
        args.push(SqlValue::Integer(limit_param(query.limit)));
        let texts: Vec<String> = self
            .conn
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_map(params_from_iter(args), |r| r.get(0))?.collect())
            .map_err(|e| self.err("query provisioning logs", e))?;
        collect_json(&self.path, "provisioning log entry", texts)
    }

    fn purge_older_than(&mut self, cutoff: Timestamp) -> Result<PurgeReport> {
        // In chunks, each its own transaction, so a large purge never holds the write lock
        // long (a cycle or `exo-writeback status` may be waiting).
        let key = time_key(cutoff);
        let log_entries = self.purge_in_chunks(
            "DELETE FROM log_entries WHERE seq IN
               (SELECT seq FROM log_entries WHERE time < ?1 LIMIT ?2)",
            key,
            "purge provisioning logs",
        )?;
        let journal_records = self.purge_in_chunks(
            "DELETE FROM journal WHERE seq IN
               (SELECT seq FROM journal WHERE time < ?1 LIMIT ?2)",
            key,
            "purge journal",
        )?;
        Ok(PurgeReport {
            log_entries,
            journal_records,
        })
    }

    fn journal_for_cycle(&self, cycle: CycleId) -> Result<Vec<JournalRecord>> {
        let texts: Vec<String> = self
            .conn
            .prepare_cached("SELECT record FROM journal WHERE cycle = ?1 ORDER BY seq DESC")
            .and_then(|mut s| s.query_map(params![cycle.0], |r| r.get(0))?.collect())
            .map_err(|e| self.err("read journal", e))?;
        collect_json(&self.path, "journal record", texts)
    }

    fn journal_for_object(&self, object: &ObjectRef) -> Result<Vec<JournalRecord>> {
        let (sql, key) = match object {
            ObjectRef::Guid(g) => (
                "SELECT record FROM journal WHERE object_guid = ?1 ORDER BY seq DESC",
                guid_text(g),
            ),
            ObjectRef::Dn(dn) => (
                "SELECT record FROM journal WHERE dn = ?1 ORDER BY seq DESC",
                fold(dn.trim()),
            ),
        };
        let texts: Vec<String> = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut s| s.query_map(params![key], |r| r.get(0))?.collect())
            .map_err(|e| self.err("read journal", e))?;
        collect_json(&self.path, "journal record", texts)
    }

    fn restart(&mut self, scope: RestartScope, at: Timestamp) -> Result<RestartReport> {
        let path = self.path.clone();
        let discarded = to_json(&path, "staged decision", &StagedDecision::Discarded { at })?;
        let pending = to_json(&path, "staged decision", &StagedDecision::Pending)?;
        let tx = self.write_tx("begin restart")?;
        let p: &Path = &path;
        let e = |op: &'static str| move |err: rusqlite::Error| StoreError::sqlite(p, op, err);
        let (state, watermark): (String, Option<String>) = tx
            .query_row("SELECT state, watermark FROM job WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(e("read job state"))?;
        let state: JobState = from_json(&path, "job state", &state)?;
        let mut report = RestartReport {
            job_state: state.clone(),
            ..RestartReport::default()
        };
        let clear_watermark = |tx: &rusqlite::Transaction<'_>| {
            tx.execute("UPDATE job SET watermark = NULL WHERE id = 1", [])
                .map_err(e("clear watermark"))
        };
        match scope {
            RestartScope::Full => {
                clear_watermark(&tx)?;
                report.watermark_cleared = watermark.is_some();
                report.joins_removed = count(
                    tx.execute("DELETE FROM joins", [])
                        .map_err(e("clear joins"))?,
                );
                report.escrow_removed = count(
                    tx.execute("DELETE FROM escrow", [])
                        .map_err(e("clear escrow"))?,
                );
                report.staged_cycles_discarded = count(
                    tx.execute(
                        "UPDATE staged_cycles SET decision = ?1 WHERE decision = ?2",
                        params![discarded, pending],
                    )
                    .map_err(e("discard staged changes"))?,
                );
                report.job_state = JobState::NotRun;
            }
            RestartScope::Watermark => {
                clear_watermark(&tx)?;
                report.watermark_cleared = watermark.is_some();
            }
            RestartScope::Escrow => {
                report.escrow_removed = count(
                    tx.execute("DELETE FROM escrow", [])
                        .map_err(e("clear escrow"))?,
                );
            }
            RestartScope::Quarantine => {
                if let JobState::Quarantine { .. } = state {
                    report.job_state = if watermark.is_some() {
                        JobState::Active
                    } else {
                        JobState::NotRun
                    };
                }
            }
        }
        let text = to_json(&path, "job state", &report.job_state)?;
        tx.execute("UPDATE job SET state = ?1 WHERE id = 1", params![text])
            .map_err(e("store job state"))?;
        tx.commit().map_err(e("commit restart"))?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exo_writeback_core::provisioning::{
        Action, EscrowUpdate, JoinUpdate, LogEntryId, LogStatus, SourceIdentity, Step, Steps,
        TargetIdentity,
    };
    use jiff::SignedDuration;

    #[test]
    fn time_keys_order_like_timestamps_and_clamp_outside_i64() {
        let cases = [
            ("1970-01-01T00:00:00Z", 0),
            ("1970-01-01T00:00:00.000000001Z", 1),
            ("1969-12-31T23:59:59Z", -1_000_000_000),
            ("2026-03-01T08:00:00.1234567Z", 1_772_352_000_123_456_700),
        ];
        for (text, key) in cases {
            let t: Timestamp = text.parse().expect("timestamp");
            assert_eq!(time_key(t), key, "{text}");
        }
        assert_eq!(time_key(Timestamp::MAX), i64::MAX);
        assert_eq!(time_key(Timestamp::MIN), i64::MIN);
    }

    #[test]
    fn source_keys_fold_case_and_the_user_prefix() {
        let cases = [
            ("ABC-def", "abc-def"),
            ("User_ABC-def", "abc-def"),
            ("user_abc", "abc"),
            ("  User_x  ", "x"),
            ("Username", "username"),
        ];
        for (input, want) in cases {
            assert_eq!(source_key(input), want, "{input:?}");
        }
    }

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
        }
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

    #[test]
    fn a_watermark_committed_with_a_failing_batch_is_not_stored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = SqliteStore::open_in(dir.path()).expect("open");
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
        let cycle = store.begin_cycle(CycleKind::Delta, t0).expect("cycle");
        let wm = Watermark {
            changed_since: t0,
            overlap: SignedDuration::from_secs(60),
            cycle,
        };
        // Two outcomes with the same log id: the batch fails, and so does the watermark.
        let bad = [entry(1, t0), entry(1, t0)];
        store
            .record_outcomes_then_watermark(&bad, Some(&wm))
            .expect_err("duplicate");
        assert_eq!(store.watermark().expect("watermark"), None);
        store
            .record_outcomes_then_watermark(&bad[..1], Some(&wm))
            .expect("record");
        assert_eq!(store.watermark().expect("watermark"), Some(wm));
    }
}
