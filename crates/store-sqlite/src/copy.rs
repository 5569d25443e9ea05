//! The whole state as backend-neutral rows, and back ([`StateCopy`]): what `exo-writeback
//! state migrate` copies.

use std::path::Path;

use exo_writeback_core::provisioning::{Action, CycleId, JournalRecord, LogStatus, StagedDecision};
use exo_writeback_store::{JoinStore, Result, StateCopy, StateCounts, StateRow, StoreError};
use rusqlite::params;

use crate::cycles::{CYCLE_COLUMNS, cycle_row, decode_cycle};
use crate::error::Classify;
use crate::sqlite::SqliteStore;
use exo_writeback_store::codec::{
    fold, from_json, guid_text, parse_time, source_key, time_key, to_json,
};

/// Rows read per query while exporting (bounded memory on large states).
const PAGE: i64 = 5_000;

impl SqliteStore {
    /// Runs `sql` (keyset paging: `?1` the last key seen, `?2` the page size) page by page,
    /// handing each row's `(key, text…)` to `each`.
    fn pages<T>(
        &self,
        sql: &str,
        op: &'static str,
        row: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<(i64, T)>,
        each: &mut dyn FnMut(T) -> Result<()>,
    ) -> Result<()> {
        let mut after = i64::MIN;
        loop {
            let rows: Vec<(i64, T)> = self
                .conn
                .prepare_cached(sql)
                .and_then(|mut s| s.query_map(params![after, PAGE], &row)?.collect())
                .map_err(|e| self.err(op, e))?;
            let Some(last) = rows.last().map(|r| r.0) else {
                return Ok(());
            };
            after = last;
            for (_, t) in rows {
                each(t)?;
            }
        }
    }

    fn count_of(&self, table: &str) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|e| self.err("count rows", e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Journal records (a row holds those of one modify, `records.rs`).
    fn count_journal(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT coalesce(sum(records), 0) FROM journal", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.err("count rows", e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

impl StateCopy for SqliteStore {
    fn export(&self, each: &mut dyn FnMut(StateRow) -> Result<()>) -> Result<()> {
        let path = &self.path;
        let mut journal_seq = 0i64;
        let (state, watermark): (String, Option<String>) = self.job_row()?;
        let pause: Option<String> = self
            .conn
            .query_row("SELECT pause FROM job WHERE id = 1", [], |r| r.get(0))
            .map_err(|e| self.err("read pause", e))?;
        each(StateRow::Job {
            state: from_json(path, "job state", &state)?,
            watermark: watermark
                .as_deref()
                .map(|t| from_json(path, "watermark", t))
                .transpose()?,
            pause: pause
                .as_deref()
                .map(|t| from_json(path, "pause", t))
                .transpose()?,
        })?;
        self.pages(
            &format!("SELECT {CYCLE_COLUMNS} FROM cycles WHERE id > ?1 ORDER BY id LIMIT ?2"),
            "export cycles",
            |r| Ok((r.get(0)?, cycle_row(r)?)),
            &mut |row| each(StateRow::Cycle(decode_cycle(path, row)?)),
        )?;
        self.pages(
            &format!(
                "SELECT seq, {} FROM log_entries WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                crate::modified::columns()
            ),
            "export log entries",
            |r| Ok((r.get(0)?, (r.get(0)?, crate::modified::row(r, 1)?))),
            &mut |(seq, row): (i64, crate::modified::Row)| {
                let entry = crate::modified::read(&self.conn, path, vec![row])?
                    .pop()
                    .ok_or_else(|| StoreError::BadRow {
                        path: path.clone(),
                        what: "provisioning log entry",
                        detail: format!("entry {seq} did not read"),
                    })?;
                each(StateRow::Log { seq, entry })
            },
        )?;
        self.pages(
            "SELECT seq, log_entry, record, cycle, object_guid, attribute, time FROM journal
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            "export journal",
            |r| {
                let record = (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?);
                Ok((r.get(0)?, (r.get(0)?, r.get::<_, String>(1)?, record)))
            },
            &mut |(_, log_entry, row): (i64, String, crate::records::Row)| {
                let records: Vec<JournalRecord> = crate::records::decode(path, row)?;
                let log_entry =
                    uuid::Uuid::parse_str(&log_entry).map_err(|e| StoreError::BadRow {
                        path: path.clone(),
                        what: "journal log entry id",
                        detail: e.to_string(),
                    })?;
                // A row holds the records of one modify: each its own row in the copy,
                // numbered in order.
                for record in records {
                    journal_seq += 1;
                    each(StateRow::Journal {
                        seq: journal_seq,
                        log_entry,
                        record,
                    })?;
                }
                Ok(())
            },
        )?;
        // Merged and unmerged (`joins.rs`), in cloud id order.
        let mut after: Option<String> = None;
        loop {
            let page = self.joins(after.as_deref(), PAGE as usize)?;
            let Some(last) = page.last() else { break };
            after = Some(last.cloud_id.clone());
            for join in page {
                each(StateRow::Join(join))?;
            }
        }
        self.pages(
            "SELECT rowid, entry FROM escrow WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
            "export escrow",
            |r| Ok((r.get(0)?, r.get::<_, String>(1)?)),
            &mut |text: String| each(StateRow::Escrow(from_json(path, "escrow entry", &text)?)),
        )?;
        self.pages(
            "SELECT cycle, staged_at, decision FROM staged_cycles
             WHERE cycle > ?1 ORDER BY cycle LIMIT ?2",
            "export held cycles",
            |r| {
                Ok((
                    r.get(0)?,
                    (r.get(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?),
                ))
            },
            &mut |(cycle, staged_at, decision): (i64, String, String)| {
                each(StateRow::StagedCycle {
                    cycle: CycleId(cycle),
                    staged_at: parse_time(path, "staging time", &staged_at)?,
                    decision: from_json(path, "staged decision", &decision)?,
                })
            },
        )?;
        self.pages(
            "SELECT rowid, cycle, seq, plan FROM staged_plans WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
            "export held changes",
            |r| {
                Ok((
                    r.get(0)?,
                    (r.get(1)?, r.get(2)?, r.get::<_, String>(3)?),
                ))
            },
            &mut |(cycle, seq, text): (i64, i64, String)| {
                each(StateRow::StagedPlan {
                    cycle: CycleId(cycle),
                    seq,
                    plan: from_json(path, "staged plan", &text)?,
                })
            },
        )?;
        // The stored intents: the chunks in flight when the process stopped, a handful.
        for (seq, intent) in (1..).zip(crate::intents::all(&self.conn, path)?) {
            each(StateRow::Intent { seq, intent })?;
        }
        self.pages(
            "SELECT rowid, pin FROM pins WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
            "export pins",
            |r| Ok((r.get(0)?, r.get::<_, String>(1)?)),
            &mut |text: String| each(StateRow::Pin(from_json(path, "pin", &text)?)),
        )
    }

    fn import_from(&mut self, source: &dyn StateCopy) -> Result<StateCounts> {
        let path = self.path.clone();
        let tx = self.write_tx("begin import")?;
        let cycles: i64 = tx
            .query_row("SELECT count(*) FROM cycles", [], |r| r.get(0))
            .map_err(|e| StoreError::sqlite(&path, "count cycles", e))?;
        if cycles > 0 {
            return Err(not_empty(&path));
        }
        let mut counts = StateCounts::default();
        source.export(&mut |row| {
            counts.add(&row);
            insert_row(&tx, &path, &row)
        })?;
        crate::keys::rebuild(&tx)
            .map_err(|e| StoreError::sqlite(&path, "index identity keys", e))?;
        tx.commit()
            .map_err(|e| StoreError::sqlite(&path, "commit import", e))?;
        self.forget_pending_joins();
        Ok(counts)
    }

    fn counts(&self) -> Result<StateCounts> {
        Ok(StateCounts {
            cycles: self.count_of("cycles")?,
            log_entries: self.count_of("log_entries")?,
            journal: self.count_journal()?,
            joins: self.count_joins()?,
            escrow: self.count_of("escrow")?,
            staged_cycles: self.count_of("staged_cycles")?,
            staged_plans: self.count_of("staged_plans")?,
            intents: crate::intents::count_all(&self.conn, &self.path)?,
            pins: self.count_of("pins")?,
        })
    }
}

pub(crate) fn not_empty(path: &Path) -> StoreError {
    StoreError::Invalid {
        path: path.to_path_buf(),
        message: "the target state is not empty (it holds cycles); copy into a new, empty state"
            .into(),
    }
}

fn insert_row(tx: &rusqlite::Transaction<'_>, path: &Path, row: &StateRow) -> Result<()> {
    let e = |op: &'static str| move |err: rusqlite::Error| StoreError::sqlite(path, op, err);
    match row {
        StateRow::Job {
            state,
            watermark,
            pause,
        } => {
            let state = to_json(path, "job state", state)?;
            let watermark = watermark
                .as_ref()
                .map(|w| to_json(path, "watermark", w))
                .transpose()?;
            let pause = pause
                .as_ref()
                .map(|p| to_json(path, "pause", p))
                .transpose()?;
            tx.execute(
                "UPDATE job SET state = ?1, watermark = ?2, pause = ?3 WHERE id = 1",
                params![state, watermark, pause],
            )
            .map_err(e("import job"))?;
        }
        StateRow::Cycle(c) => {
            tx.execute(
                "INSERT INTO cycles (id, kind, started_at, finished_at, counts, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    c.id.0,
                    c.kind.as_str(),
                    c.started_at.to_string(),
                    c.finished_at.map(|t| t.to_string()),
                    to_json(path, "cycle counts", &c.counts)?,
                    to_json(path, "cycle status", &c.status)?,
                ],
            )
            .map_err(e("import cycle"))?;
        }
        StateRow::Log { seq, entry: log } => {
            let in_sync = log.action == Action::Other && log.status == LogStatus::Success;
            let text = to_json(path, "provisioning log entry", log)?;
            tx.prepare_cached(
                "INSERT INTO log_entries
                   (seq, id, cycle, time, status, source_id, smtp, upn, dn, guid, in_sync, entry)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    seq,
                    log.id.0.hyphenated().to_string(),
                    log.cycle.0,
                    time_key(log.time),
                    log.status.as_str(),
                    log.source
                        .external_directory_object_id
                        .as_deref()
                        .map(source_key),
                    log.source.primary_smtp_address.as_deref().map(fold),
                    log.source.user_principal_name.as_deref().map(fold),
                    log.target.dn.as_deref().map(fold),
                    log.target.object_guid.as_ref().map(guid_text),
                    in_sync,
                    text,
                ])
            })
            .map_err(e("import log entry"))?;
        }
        StateRow::Journal {
            seq,
            log_entry,
            record: j,
        } => {
            let text = crate::records::encode(path, j)?;
            tx.prepare_cached(
                "INSERT INTO journal (seq, cycle, log_entry, time, object_guid, dn, attribute, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    seq,
                    j.cycle.0,
                    log_entry.hyphenated().to_string(),
                    time_key(j.time),
                    guid_text(&j.object_guid),
                    fold(&j.dn),
                    j.attribute,
                    text,
                ])
            })
            .map_err(e("import journal record"))?;
        }
        StateRow::Join(j) => {
            tx.prepare_cached(
                "INSERT INTO joins (cloud_id, object_guid, dn, updated_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    j.cloud_id,
                    guid_text(&j.object_guid),
                    j.dn,
                    j.updated_at.to_string()
                ])
            })
            .map_err(e("import join"))?;
        }
        StateRow::Escrow(entry) => {
            let text = to_json(path, "escrow entry", entry)?;
            tx.prepare_cached(
                "INSERT INTO escrow (cloud_id, next_retry, entry) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![entry.cloud_id, time_key(entry.next_retry), text]))
            .map_err(e("import escrow entry"))?;
        }
        StateRow::StagedCycle {
            cycle,
            staged_at,
            decision,
        } => {
            let decision: &StagedDecision = decision;
            tx.execute(
                "INSERT INTO staged_cycles (cycle, staged_at, decision) VALUES (?1, ?2, ?3)",
                params![
                    cycle.0,
                    staged_at.to_string(),
                    to_json(path, "staged decision", decision)?
                ],
            )
            .map_err(e("import held cycle"))?;
        }
        StateRow::StagedPlan { cycle, seq, plan } => {
            let text = to_json(path, "staged plan", plan)?;
            tx.prepare_cached(
                "INSERT INTO staged_plans (cycle, seq, cloud_id, plan) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![cycle.0, seq, plan.cloud_id, text]))
            .map_err(e("import held change"))?;
        }
        StateRow::Intent { seq, intent } => {
            crate::intents::insert_batch(tx, path, Some(*seq), std::slice::from_ref(intent))?;
        }
        StateRow::Pin(pin) => {
            let text = to_json(path, "pin", pin)?;
            tx.prepare_cached("INSERT INTO pins (object_guid, attribute, pin) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| {
                    s.execute(params![
                        guid_text(&pin.object_guid),
                        fold(&pin.attribute),
                        text
                    ])
                })
                .map_err(e("import pin"))?;
        }
    }
    Ok(())
}
