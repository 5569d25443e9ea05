//! Outcomes (log entry, journal, join, escrow, pins in one transaction) and write-ahead
//! intents.

use std::path::Path;

use exo_writeback_core::provisioning::{
    Action, EscrowEntry, EscrowUpdate, JoinUpdate, LogStatus, ObjectOutcome, Watermark,
};
use exo_writeback_store::codec::{fold, from_json, guid_text, source_key, time_key, to_json};
use exo_writeback_store::{LogRecorder, OutcomeStore, Result, WriteIntent};
use postgres::Transaction;
use uuid::Uuid;

use crate::error::E;
use crate::pg::{Db, PgStore, column, get};

type Tx<'a, 'b> = Db<'a, Transaction<'b>>;

pub(crate) fn insert_outcome(db: &mut Tx<'_, '_>, path: &Path, o: &ObjectOutcome) -> Result<(), E> {
    let log = &o.log;
    let entry = to_json(path, "provisioning log entry", log)?;
    let in_sync = log.action == Action::Other && log.status == LogStatus::Success;
    let id = log.id.0.hyphenated().to_string();
    db.execute(
        "INSERT INTO log_entries
           (id, cycle, time, status, source_id, smtp, upn, dn, guid, in_sync, entry)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &id,
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
            &entry,
        ],
    )?;
    for j in &o.journal {
        let record = to_json(path, "journal record", j)?;
        db.execute(
            "INSERT INTO journal (cycle, log_entry, time, object_guid, dn, attribute, record)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &j.cycle.0,
                &id,
                &time_key(j.time),
                &guid_text(&j.object_guid),
                &fold(&j.dn),
                &j.attribute,
                &record,
            ],
        )?;
    }
    match &o.join {
        JoinUpdate::Keep => {}
        JoinUpdate::Set(join) => {
            db.execute(
                "INSERT INTO joins (cloud_id, object_guid, dn, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (cloud_id) DO UPDATE SET
                   object_guid = excluded.object_guid, dn = excluded.dn,
                   updated_at = excluded.updated_at",
                &[
                    &join.cloud_id,
                    &guid_text(&join.object_guid),
                    &join.dn,
                    &join.updated_at.to_string(),
                ],
            )?;
        }
        JoinUpdate::Remove { cloud_id } => {
            db.execute("DELETE FROM joins WHERE cloud_id = $1", &[cloud_id])?;
        }
    }
    match &o.escrow {
        EscrowUpdate::Keep => {}
        EscrowUpdate::Failed { failure, failed_at } => {
            let previous = db.query_opt(
                "SELECT entry FROM escrow WHERE cloud_id = $1 FOR UPDATE",
                &[&failure.cloud_id],
            )?;
            let previous: Option<EscrowEntry> = match previous {
                Some(row) => Some(from_json(path, "escrow entry", &get::<String>(&row, 0)?)?),
                None => None,
            };
            let next = EscrowEntry::after_failure(previous.as_ref(), failure, *failed_at);
            let entry = to_json(path, "escrow entry", &next)?;
            db.execute(
                "INSERT INTO escrow (cloud_id, next_retry, entry) VALUES ($1, $2, $3)
                 ON CONFLICT (cloud_id) DO UPDATE SET
                   next_retry = excluded.next_retry, entry = excluded.entry",
                &[&next.cloud_id, &time_key(next.next_retry), &entry],
            )?;
        }
        EscrowUpdate::Clear { cloud_id } => {
            db.execute("DELETE FROM escrow WHERE cloud_id = $1", &[cloud_id])?;
        }
    }
    for key in &o.pins.release {
        db.execute(
            "DELETE FROM pins WHERE object_guid = $1 AND attribute = $2",
            &[&guid_text(&key.object_guid), &fold(&key.attribute)],
        )?;
    }
    for pin in &o.pins.set {
        let text = to_json(path, "pin", pin)?;
        db.execute(
            "INSERT INTO pins (object_guid, attribute, pin) VALUES ($1, $2, $3)
             ON CONFLICT (object_guid, attribute) DO UPDATE SET pin = excluded.pin",
            &[&guid_text(&pin.object_guid), &fold(&pin.attribute), &text],
        )?;
    }
    Ok(())
}

fn delete_intent_rows(db: &mut Tx<'_, '_>, ids: &[Uuid]) -> Result<u64, E> {
    if ids.is_empty() {
        return Ok(0);
    }
    let ids: Vec<String> = ids.iter().map(guid_text).collect();
    db.execute("DELETE FROM intents WHERE id = ANY($1)", &[&ids])
}

impl PgStore {
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
        let path = self.path().to_path_buf();
        let watermark = watermark
            .map(|w| to_json(&path, "watermark", w))
            .transpose()?;
        self.write("record outcomes", |db| {
            for o in outcomes {
                insert_outcome(db, &path, o)?;
            }
            delete_intent_rows(db, intents)?;
            if let Some(w) = &watermark {
                db.execute("UPDATE job SET watermark = $1 WHERE id = 1", &[w])?;
            }
            Ok(())
        })
    }
}

impl OutcomeStore for PgStore {
    fn record_outcomes(&mut self, outcomes: &[ObjectOutcome]) -> Result<()> {
        self.commit_outcomes(outcomes, &[], None)
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
        let path = self.path().to_path_buf();
        let rows: Vec<(String, String, String)> = intents
            .iter()
            .map(|i| {
                Ok((
                    guid_text(&i.id),
                    guid_text(&i.object_guid),
                    to_json(&path, "write intent", i)?,
                ))
            })
            .collect::<Result<_>>()?;
        self.write("record intents", |db| {
            for (i, (id, guid, text)) in intents.iter().zip(&rows) {
                db.execute(
                    "INSERT INTO intents (id, cycle, cloud_id, object_guid, dn, intent)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[id, &i.cycle.0, &i.cloud_id, guid, &i.dn, text],
                )?;
            }
            Ok(())
        })
    }

    fn record_outcomes_clearing_intents(
        &mut self,
        outcomes: &[ObjectOutcome],
        intents: &[Uuid],
    ) -> Result<()> {
        self.commit_outcomes(outcomes, intents, None)
    }

    fn intents(&self) -> Result<Vec<WriteIntent>> {
        let path = self.path();
        self.read("read intents", |db| {
            let texts: Vec<String> =
                column(&db.query("SELECT intent FROM intents ORDER BY seq", &[])?)?;
            Ok(texts
                .iter()
                .map(|t| from_json(path, "write intent", t))
                .collect::<Result<_>>()?)
        })
    }

    fn delete_intents(&mut self, ids: &[Uuid]) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.write("delete intents", |db| delete_intent_rows(db, ids))
    }

    fn log_recorder(&self) -> Result<Option<Box<dyn LogRecorder>>> {
        crate::recorder::log_recorder(self)
    }
}
