//! Cycles: begun, finished, listed.

use std::path::Path;

use exo_writeback_core::provisioning::{CycleCounts, CycleId, CycleKind, CycleRecord, CycleStatus};
use exo_writeback_store::codec::{from_json, limit_param, parse_time, to_json};
use exo_writeback_store::{CycleStore, Result, StoreError};
use jiff::Timestamp;
use postgres::Row;

use crate::error::E;
use crate::pg::{PgStore, get};

pub(crate) const CYCLE_COLUMNS: &str = "id, kind, started_at, finished_at, counts, status";

pub(crate) fn decode_cycle(path: &Path, row: &Row) -> Result<CycleRecord, E> {
    let kind: String = get(row, 1)?;
    let kind = CycleKind::from_name(&kind).ok_or_else(|| StoreError::BadRow {
        path: path.to_path_buf(),
        what: "cycle kind",
        detail: format!("unknown kind {kind:?}"),
    })?;
    let started_at: String = get(row, 2)?;
    let finished_at: Option<String> = get(row, 3)?;
    let counts: String = get(row, 4)?;
    let status: String = get(row, 5)?;
    Ok(CycleRecord {
        id: CycleId(get(row, 0)?),
        kind,
        started_at: parse_time(path, "cycle start", &started_at)?,
        finished_at: finished_at
            .as_deref()
            .map(|t| parse_time(path, "cycle end", t))
            .transpose()?,
        counts: from_json(path, "cycle counts", &counts)?,
        status: from_json(path, "cycle status", &status)?,
    })
}

impl CycleStore for PgStore {
    fn begin_cycle(&mut self, kind: CycleKind, started_at: Timestamp) -> Result<CycleId> {
        let counts = to_json(self.path(), "cycle counts", &CycleCounts::default())?;
        let status = to_json(self.path(), "cycle status", &CycleStatus::Running)?;
        let started = started_at.to_string();
        let id: i64 = self.write("begin cycle", |db| {
            let row = db.query_one(
                "INSERT INTO cycles (kind, started_at, finished_at, counts, status)
                 VALUES ($1, $2, NULL, $3, $4) RETURNING id",
                &[&kind.as_str(), &started, &counts, &status],
            )?;
            get(&row, 0)
        })?;
        Ok(CycleId(id))
    }

    fn finish_cycle(
        &mut self,
        cycle: CycleId,
        finished_at: Timestamp,
        counts: &CycleCounts,
        status: &CycleStatus,
    ) -> Result<()> {
        let counts = to_json(self.path(), "cycle counts", counts)?;
        let status = to_json(self.path(), "cycle status", status)?;
        let finished = finished_at.to_string();
        let changed = self.write("finish cycle", |db| {
            db.execute(
                "UPDATE cycles SET finished_at = $2, counts = $3, status = $4 WHERE id = $1",
                &[&cycle.0, &finished, &counts, &status],
            )
        })?;
        if changed == 0 {
            return Err(StoreError::Invalid {
                path: self.path().to_path_buf(),
                message: format!("there is no cycle {cycle} to finish"),
            });
        }
        Ok(())
    }

    fn cycle(&self, cycle: CycleId) -> Result<Option<CycleRecord>> {
        let path = self.path();
        self.read("read cycle", |db| {
            db.query_opt(
                &format!("SELECT {CYCLE_COLUMNS} FROM cycles WHERE id = $1"),
                &[&cycle.0],
            )?
            .map(|r| decode_cycle(path, &r))
            .transpose()
        })
    }

    fn recent_cycles(&self, limit: usize) -> Result<Vec<CycleRecord>> {
        let path = self.path();
        self.read("list cycles", |db| {
            db.query(
                &format!("SELECT {CYCLE_COLUMNS} FROM cycles ORDER BY id DESC LIMIT $1"),
                &[&limit_param(limit)],
            )?
            .iter()
            .map(|r| decode_cycle(path, r))
            .collect()
        })
    }

    fn last_cycle_of(&self, kinds: &[CycleKind], completed: bool) -> Result<Option<CycleRecord>> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let path = self.path();
        let kinds: Vec<String> = kinds.iter().map(|k| k.as_str().to_owned()).collect();
        let completed_status = to_json(path, "cycle status", &CycleStatus::Completed)?;
        self.read("read cycle", |db| {
            let row = if completed {
                db.query_opt(
                    &format!(
                        "SELECT {CYCLE_COLUMNS} FROM cycles WHERE kind = ANY($1) AND status = $2
                         ORDER BY id DESC LIMIT 1"
                    ),
                    &[&kinds, &completed_status],
                )?
            } else {
                db.query_opt(
                    &format!(
                        "SELECT {CYCLE_COLUMNS} FROM cycles WHERE kind = ANY($1)
                         ORDER BY id DESC LIMIT 1"
                    ),
                    &[&kinds],
                )?
            };
            row.map(|r| decode_cycle(path, &r)).transpose()
        })
    }

    fn interrupt_running_cycles(&mut self, at: Timestamp) -> Result<u64> {
        let running = to_json(self.path(), "cycle status", &CycleStatus::Running)?;
        let interrupted = to_json(self.path(), "cycle status", &CycleStatus::Interrupted)?;
        let at = at.to_string();
        self.write("mark interrupted cycles", |db| {
            db.execute(
                "UPDATE cycles SET status = $2, finished_at = $3 WHERE status = $1",
                &[&running, &interrupted, &at],
            )
        })
    }
}
