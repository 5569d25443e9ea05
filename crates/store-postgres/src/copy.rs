//! The whole state as backend-neutral rows, and back ([`StateCopy`]): `exo-writeback state
//! migrate` copies a SQLite state into PostgreSQL with it.

use std::path::Path;
use std::sync::mpsc::{Receiver, sync_channel};

use exo_writeback_core::provisioning::{Action, CycleId, LogStatus};
use exo_writeback_store::codec::{
    decode_join, fold, from_json, guid_text, parse_time, source_key, time_key, to_json,
};
use exo_writeback_store::{Result, StateCopy, StateCounts, StateRow, StoreError};
use postgres::{GenericClient, Row, Transaction};
use uuid::Uuid;

use crate::cycles::{CYCLE_COLUMNS, decode_cycle};
use crate::error::E;
use crate::fence::check_fence;
use crate::pg::{Db, PgStore, get};

/// Rows read per query while exporting (bounded memory on large states).
const PAGE: i64 = 5_000;

impl PgStore {
    /// Keyset paging: `sql` takes `$1` (the last key seen) and `$2` (the page size) and returns
    /// the key in column 0.
    fn pages(
        &self,
        sql: &str,
        op: &'static str,
        each: &mut dyn FnMut(&Row) -> Result<()>,
    ) -> Result<()> {
        let mut after = i64::MIN;
        loop {
            let rows = self.read(op, |db| db.query(sql, &[&after, &PAGE]))?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = get(last, 0).map_err(|e| e.into_store(self.path(), op))?;
            for row in &rows {
                each(row)?;
            }
        }
    }

    fn count_of(&self, table: &'static str) -> Result<u64> {
        let n: i64 = self.read("count rows", |db| {
            get(
                &db.query_one(&format!("SELECT count(*) FROM {table}"), &[])?,
                0,
            )
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

fn bad<'a>(path: &'a Path, op: &'static str) -> impl Fn(E) -> StoreError + 'a {
    move |e| e.into_store(path, op)
}

impl StateCopy for PgStore {
    fn export(&self, each: &mut dyn FnMut(StateRow) -> Result<()>) -> Result<()> {
        let path = self.path().to_path_buf();
        let p = path.as_path();
        let (state, watermark, pause) = self.job_row()?;
        each(StateRow::Job {
            state: from_json(p, "job state", &state)?,
            watermark: watermark
                .as_deref()
                .map(|t| from_json(p, "watermark", t))
                .transpose()?,
            pause: pause
                .as_deref()
                .map(|t| from_json(p, "pause", t))
                .transpose()?,
        })?;
        self.pages(
            &format!("SELECT {CYCLE_COLUMNS} FROM cycles WHERE id > $1 ORDER BY id LIMIT $2"),
            "export cycles",
            &mut |r| {
                each(StateRow::Cycle(
                    decode_cycle(p, r).map_err(bad(p, "export cycles"))?,
                ))
            },
        )?;
        self.pages(
            "SELECT seq, entry FROM log_entries WHERE seq > $1 ORDER BY seq LIMIT $2",
            "export log entries",
            &mut |r| {
                let text: String = get(r, 1).map_err(bad(p, "export log entries"))?;
                each(StateRow::Log {
                    seq: get(r, 0).map_err(bad(p, "export log entries"))?,
                    entry: from_json(p, "provisioning log entry", &text)?,
                })
            },
        )?;
        self.pages(
            "SELECT seq, log_entry, record FROM journal WHERE seq > $1 ORDER BY seq LIMIT $2",
            "export journal",
            &mut |r| {
                let op = "export journal";
                let log_entry: String = get(r, 1).map_err(bad(p, op))?;
                let text: String = get(r, 2).map_err(bad(p, op))?;
                each(StateRow::Journal {
                    seq: get(r, 0).map_err(bad(p, op))?,
                    log_entry: Uuid::parse_str(&log_entry).map_err(|e| StoreError::BadRow {
                        path: p.to_path_buf(),
                        what: "journal log entry id",
                        detail: e.to_string(),
                    })?,
                    record: from_json(p, "journal record", &text)?,
                })
            },
        )?;
        // Tables keyed by text: paged by their row's position (ctid is unstable; a row number
        // over the key order is not needed for a consistent read: one export is one pass).
        let joins = self.read("export joins", |db| {
            db.query(
                "SELECT cloud_id, object_guid, dn, updated_at FROM joins ORDER BY cloud_id",
                &[],
            )
        })?;
        for r in &joins {
            let op = "export joins";
            each(StateRow::Join(decode_join(
                p,
                (
                    get(r, 0).map_err(bad(p, op))?,
                    get(r, 1).map_err(bad(p, op))?,
                    get(r, 2).map_err(bad(p, op))?,
                    get(r, 3).map_err(bad(p, op))?,
                ),
            )?))?;
        }
        let escrow = self.read("export escrow", |db| {
            db.query("SELECT entry FROM escrow ORDER BY cloud_id", &[])
        })?;
        for r in &escrow {
            let text: String = get(r, 0).map_err(bad(p, "export escrow"))?;
            each(StateRow::Escrow(from_json(p, "escrow entry", &text)?))?;
        }
        self.pages(
            "SELECT cycle, staged_at, decision FROM staged_cycles
             WHERE cycle > $1 ORDER BY cycle LIMIT $2",
            "export held cycles",
            &mut |r| {
                let op = "export held cycles";
                let staged_at: String = get(r, 1).map_err(bad(p, op))?;
                let decision: String = get(r, 2).map_err(bad(p, op))?;
                each(StateRow::StagedCycle {
                    cycle: CycleId(get(r, 0).map_err(bad(p, op))?),
                    staged_at: parse_time(p, "staging time", &staged_at)?,
                    decision: from_json(p, "staged decision", &decision)?,
                })
            },
        )?;
        let plans = self.read("export held changes", |db| {
            db.query(
                "SELECT cycle, seq, plan FROM staged_plans ORDER BY cycle, seq",
                &[],
            )
        })?;
        for r in &plans {
            let op = "export held changes";
            let text: String = get(r, 2).map_err(bad(p, op))?;
            each(StateRow::StagedPlan {
                cycle: CycleId(get(r, 0).map_err(bad(p, op))?),
                seq: get(r, 1).map_err(bad(p, op))?,
                plan: from_json(p, "staged plan", &text)?,
            })?;
        }
        self.pages(
            "SELECT seq, intent FROM intents WHERE seq > $1 ORDER BY seq LIMIT $2",
            "export intents",
            &mut |r| {
                let text: String = get(r, 1).map_err(bad(p, "export intents"))?;
                each(StateRow::Intent {
                    seq: get(r, 0).map_err(bad(p, "export intents"))?,
                    intent: from_json(p, "write intent", &text)?,
                })
            },
        )?;
        let pins = self.read("export pins", |db| {
            db.query("SELECT pin FROM pins ORDER BY object_guid, attribute", &[])
        })?;
        for r in &pins {
            let text: String = get(r, 0).map_err(bad(p, "export pins"))?;
            each(StateRow::Pin(from_json(p, "pin", &text)?))?;
        }
        Ok(())
    }

    fn import_from(&mut self, source: &dyn StateCopy) -> Result<StateCounts> {
        // The rows stream from the source (read on this thread) to the transaction (on a
        // thread of its own: the client cannot run on an async runtime's thread).
        let token = self.fence.token(self.path(), "import")?;
        let label = self.path().to_path_buf();
        let (send, receive) = sync_channel::<Option<StateRow>>(1_024);
        let mut counts = StateCounts::default();
        let connector = self.connector.clone();
        let mut guard = self.conn_slot();
        let slot: &mut Option<crate::pg::Conn> = &mut guard;
        let (connector, token, label_in) = (&connector, &token, &label);
        let imported: Result<(), E> = std::thread::scope(|s| {
            let writer = s.spawn(move || -> Result<(), E> {
                let label = label_in;
                let conn = crate::pg::ensure(slot, connector)?;
                let (client, _) = conn.parts();
                let mut tx = client.transaction()?;
                let mut stmts = std::collections::HashMap::new();
                let mut db = Db::new(&mut tx, &mut stmts);
                if let Some(t) = token {
                    check_fence(&mut db, t, label, "import")?;
                }
                let cycles: i64 = get(&db.query_one("SELECT count(*) FROM cycles", &[])?, 0)?;
                if cycles > 0 {
                    return Err(E::Store(not_empty(label)));
                }
                if !insert_rows(&mut db, label, &receive)? {
                    // The source failed: nothing is committed.
                    return Ok(());
                }
                db.batch(
                    "SELECT setval(pg_get_serial_sequence('cycles', 'id'),
                                   coalesce((SELECT max(id) FROM cycles), 0) + 1, false);
                     SELECT setval(pg_get_serial_sequence('log_entries', 'seq'),
                                   coalesce((SELECT max(seq) FROM log_entries), 0) + 1, false);
                     SELECT setval(pg_get_serial_sequence('journal', 'seq'),
                                   coalesce((SELECT max(seq) FROM journal), 0) + 1, false);
                     SELECT setval(pg_get_serial_sequence('intents', 'seq'),
                                   coalesce((SELECT max(seq) FROM intents), 0) + 1, false);",
                )?;
                tx.commit()?;
                Ok(())
            });
            let exported = source.export(&mut |row| {
                counts.add(&row);
                send.send(Some(row)).map_err(|_| StoreError::Invalid {
                    path: label.clone(),
                    message: "the import stopped before the end of the source".into(),
                })
            });
            if exported.is_ok() {
                let _ = send.send(None);
            }
            drop(send);
            let written = match writer.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            match (written, exported) {
                (Err(e), _) => Err(e),
                (Ok(()), Err(e)) => Err(E::Store(e)),
                (Ok(()), Ok(())) => Ok(()),
            }
        });
        imported.map_err(|e| e.into_store(&label, "import"))?;
        Ok(counts)
    }

    fn counts(&self) -> Result<StateCounts> {
        Ok(StateCounts {
            cycles: self.count_of("cycles")?,
            log_entries: self.count_of("log_entries")?,
            journal: self.count_of("journal")?,
            joins: self.count_of("joins")?,
            escrow: self.count_of("escrow")?,
            staged_cycles: self.count_of("staged_cycles")?,
            staged_plans: self.count_of("staged_plans")?,
            intents: self.count_of("intents")?,
            pins: self.count_of("pins")?,
        })
    }
}

fn not_empty(path: &Path) -> StoreError {
    StoreError::Invalid {
        path: path.to_path_buf(),
        message: "the target state is not empty (it holds cycles); copy into a new, empty database"
            .into(),
    }
}

/// Inserts rows until the end mark (`true`) or until the source goes away (`false`).
fn insert_rows(
    db: &mut Db<'_, Transaction<'_>>,
    path: &Path,
    rows: &Receiver<Option<StateRow>>,
) -> Result<bool, E> {
    loop {
        match rows.recv() {
            Ok(Some(row)) => insert_row(db, path, &row)?,
            Ok(None) => return Ok(true),
            Err(_) => return Ok(false),
        }
    }
}

fn insert_row<C: GenericClient>(db: &mut Db<'_, C>, path: &Path, row: &StateRow) -> Result<(), E> {
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
            db.execute(
                "UPDATE job SET state = $1, watermark = $2, pause = $3 WHERE id = 1",
                &[&state, &watermark, &pause],
            )?;
        }
        StateRow::Cycle(c) => {
            db.execute(
                "INSERT INTO cycles (id, kind, started_at, finished_at, counts, status)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &c.id.0,
                    &c.kind.as_str(),
                    &c.started_at.to_string(),
                    &c.finished_at.map(|t| t.to_string()),
                    &to_json(path, "cycle counts", &c.counts)?,
                    &to_json(path, "cycle status", &c.status)?,
                ],
            )?;
        }
        StateRow::Log { seq, entry: log } => {
            let in_sync = log.action == Action::Other && log.status == LogStatus::Success;
            db.execute(
                "INSERT INTO log_entries
                   (seq, id, cycle, time, status, source_id, smtp, upn, dn, guid, in_sync, entry)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                &[
                    seq,
                    &log.id.0.hyphenated().to_string(),
                    &log.cycle.0,
                    &time_key(log.time),
                    &log.status.as_str(),
                    &log.source
                        .external_directory_object_id
                        .as_deref()
                        .map(source_key),
                    &log.source.primary_smtp_address.as_deref().map(fold),
                    &log.source.user_principal_name.as_deref().map(fold),
                    &log.target.dn.as_deref().map(fold),
                    &log.target.object_guid.as_ref().map(guid_text),
                    &in_sync,
                    &to_json(path, "provisioning log entry", log)?,
                ],
            )?;
        }
        StateRow::Journal {
            seq,
            log_entry,
            record: j,
        } => {
            db.execute(
                "INSERT INTO journal
                   (seq, cycle, log_entry, time, object_guid, dn, attribute, record)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    seq,
                    &j.cycle.0,
                    &log_entry.hyphenated().to_string(),
                    &time_key(j.time),
                    &guid_text(&j.object_guid),
                    &fold(&j.dn),
                    &j.attribute,
                    &to_json(path, "journal record", j)?,
                ],
            )?;
        }
        StateRow::Join(j) => {
            db.execute(
                "INSERT INTO joins (cloud_id, object_guid, dn, updated_at) VALUES ($1, $2, $3, $4)",
                &[
                    &j.cloud_id,
                    &guid_text(&j.object_guid),
                    &j.dn,
                    &j.updated_at.to_string(),
                ],
            )?;
        }
        StateRow::Escrow(entry) => {
            db.execute(
                "INSERT INTO escrow (cloud_id, next_retry, entry) VALUES ($1, $2, $3)",
                &[
                    &entry.cloud_id,
                    &time_key(entry.next_retry),
                    &to_json(path, "escrow entry", entry)?,
                ],
            )?;
        }
        StateRow::StagedCycle {
            cycle,
            staged_at,
            decision,
        } => {
            db.execute(
                "INSERT INTO staged_cycles (cycle, staged_at, decision) VALUES ($1, $2, $3)",
                &[
                    &cycle.0,
                    &staged_at.to_string(),
                    &to_json(path, "staged decision", decision)?,
                ],
            )?;
        }
        StateRow::StagedPlan { cycle, seq, plan } => {
            db.execute(
                "INSERT INTO staged_plans (cycle, seq, cloud_id, plan) VALUES ($1, $2, $3, $4)",
                &[
                    &cycle.0,
                    seq,
                    &plan.cloud_id,
                    &to_json(path, "staged plan", plan)?,
                ],
            )?;
        }
        StateRow::Intent { seq, intent: i } => {
            db.execute(
                "INSERT INTO intents (seq, id, cycle, cloud_id, object_guid, dn, intent)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    seq,
                    &guid_text(&i.id),
                    &i.cycle.0,
                    &i.cloud_id,
                    &guid_text(&i.object_guid),
                    &i.dn,
                    &to_json(path, "write intent", i)?,
                ],
            )?;
        }
        StateRow::Pin(pin) => {
            db.execute(
                "INSERT INTO pins (object_guid, attribute, pin) VALUES ($1, $2, $3)",
                &[
                    &guid_text(&pin.object_guid),
                    &fold(&pin.attribute),
                    &to_json(path, "pin", pin)?,
                ],
            )?;
        }
    }
    Ok(())
}
