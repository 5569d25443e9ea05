//! Cycles: begun, finished, listed.

use std::path::Path;

use exo_writeback_core::provisioning::{CycleCounts, CycleId, CycleKind, CycleRecord, CycleStatus};
use exo_writeback_store::{CycleStore, Result, StoreError};
use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};

use crate::error::Classify;
use crate::sqlite::SqliteStore;
use exo_writeback_store::codec::{count, from_json, limit_param, parse_time, to_json};

// ---------------------------------------------------------------------------------------------
// Row decoding
// ---------------------------------------------------------------------------------------------

pub(crate) struct CycleRow {
    pub(crate) id: i64,
    pub(crate) kind: String,
    pub(crate) started_at: String,
    pub(crate) finished_at: Option<String>,
    pub(crate) counts: String,
    pub(crate) status: String,
}

pub(crate) const CYCLE_COLUMNS: &str = "id, kind, started_at, finished_at, counts, status";

pub(crate) fn cycle_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CycleRow> {
    Ok(CycleRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        started_at: r.get(2)?,
        finished_at: r.get(3)?,
        counts: r.get(4)?,
        status: r.get(5)?,
    })
}

pub(crate) fn decode_cycle(path: &Path, row: CycleRow) -> Result<CycleRecord> {
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

impl CycleStore for SqliteStore {
    fn begin_cycle(&mut self, kind: CycleKind, started_at: Timestamp) -> Result<CycleId> {
        let counts = to_json(&self.path, "cycle counts", &CycleCounts::default())?;
        let status = to_json(&self.path, "cycle status", &CycleStatus::Running)?;
        let path = self.path.clone();
        let tx = self.write_tx("begin starting cycle")?;
        let id = tx
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
            .map_err(|e| StoreError::sqlite(&path, "begin cycle", e))?;
        // What a stopped cycle left unmerged: this cycle's look-ups of the journal, one per
        // object it plans a change for, then find none waiting (`keys.rs`).
        crate::keys::merge(&tx, 0)
            .map_err(|e| StoreError::sqlite(&path, "merge identity keys", e))?;
        tx.commit()
            .map_err(|e| StoreError::sqlite(&path, "commit starting cycle", e))?;
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
        let path = self.path.clone();
        let tx = self.write_tx("begin finishing cycle")?;
        let changed = tx
            .prepare_cached(
                "UPDATE cycles SET finished_at = ?2, counts = ?3, status = ?4 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![cycle.0, finished_at.to_string(), counts, status]))
            .map_err(|e| StoreError::sqlite(&path, "finish cycle", e))?;
        // The cycle's identity keys and joins into their indexes, so look-ups between cycles use it only.
        crate::keys::merge(&tx, 0)
            .map_err(|e| StoreError::sqlite(&path, "merge identity keys", e))?;
        let merged =
            crate::joins::merge(&tx, 0).map_err(|e| StoreError::sqlite(&path, "merge joins", e))?;
        tx.commit()
            .map_err(|e| StoreError::sqlite(&path, "commit finishing cycle", e))?;
        self.merge_keys_at = self.merge_keys_first;
        self.joins_committed(Vec::new(), merged);
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

    fn last_cycle_of(&self, kinds: &[CycleKind], completed: bool) -> Result<Option<CycleRecord>> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let mut sql = format!("SELECT {CYCLE_COLUMNS} FROM cycles WHERE kind IN (");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        for (i, k) in kinds.iter().enumerate() {
            sql.push_str(if i == 0 { "?" } else { ", ?" });
            args.push(rusqlite::types::Value::Text(k.as_str().to_owned()));
        }
        sql.push(')');
        if completed {
            sql.push_str(" AND status = ?");
            args.push(rusqlite::types::Value::Text(to_json(
                &self.path,
                "cycle status",
                &CycleStatus::Completed,
            )?));
        }
        sql.push_str(" ORDER BY id DESC LIMIT 1");
        let row = self
            .conn
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_row(rusqlite::params_from_iter(args), cycle_row)
                    .optional()
            })
            .map_err(|e| self.err("read cycle", e))?;
        row.map(|r| decode_cycle(&self.path, r)).transpose()
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
}
