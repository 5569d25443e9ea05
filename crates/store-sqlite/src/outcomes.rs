//! Outcomes (log entry, journal, join, escrow in one transaction) and write-ahead intents.

use std::path::Path;

use exo_writeback_core::provisioning::{
    Action, EscrowEntry, EscrowUpdate, JoinUpdate, LogStatus, ObjectOutcome, Watermark,
};
use exo_writeback_store::{LogRecorder, OutcomeStore, Result, StoreError, WriteIntent};
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

use crate::error::Classify;
use crate::keys;
use crate::sqlite::SqliteStore;
use exo_writeback_store::codec::{fold, from_json, guid_text, source_key, time_key, to_json};

// ---------------------------------------------------------------------------------------------
// Outcomes
// ---------------------------------------------------------------------------------------------

pub(crate) fn insert_outcome(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    o: &ObjectOutcome,
    joins: &mut Vec<crate::joins::Added>,
    shapes: &mut crate::compact::Seen,
) -> Result<()> {
    let e = |op: &'static str| move |err: rusqlite::Error| StoreError::sqlite(path, op, err);
    let log = &o.log;
    // An in-sync entry: its cycle's shape once, its own part in the row (`compact.rs`).
    let mut compact = None;
    if let Some((h, shape, own)) = crate::compact::split(path, log)?
        && crate::compact::intern(tx, shapes, log.cycle, h, &shape)
            .map_err(e("store provisioning log shape"))?
    {
        compact = Some((h, own));
    }
    let (entry, modified_in_journal, shape) = match compact {
        Some((h, own)) => (SqlValue::Text(own), None, Some(h)),
        None => {
            // The values of the write once, in the journal (`modified.rs`).
            let (stripped, modified_in_journal) =
                crate::modified::stored(log, &crate::modified::in_journal(o));
            // Deflated (`packed.rs`).
            let entry = crate::packed::pack(
                path,
                "provisioning log entry",
                &to_json(
                    path,
                    "provisioning log entry",
                    stripped.as_ref().unwrap_or(log),
                )?,
            )?;
            (SqlValue::Blob(entry), modified_in_journal, None)
        }
    };
    let in_sync = log.action == Action::Other && log.status == LogStatus::Success;
    let source_id = log
        .source
        .external_directory_object_id
        .as_deref()
        .map(source_key);
    let smtp = log.source.primary_smtp_address.as_deref().map(fold);
    let upn = log.source.user_principal_name.as_deref().map(fold);
    let dn = log.target.dn.as_deref().map(fold);
    let guid = log.target.object_guid.as_ref().map(guid_text);
    // `seq` is the rowid, read back with `last_insert_rowid`. With `RETURNING` these inserts
    // wrote SQLite's statement journal to a temporary file: 17 % of the CPU in the `throughput`
    // example (`IN_SYNC=1`), gone from its profile without it (docs/performance-history.md).
    tx.prepare_cached(
        "INSERT INTO log_entries
           (id, cycle, time, status, source_id, smtp, upn, dn, guid, in_sync, entry,
            modified_in_journal, shape)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )
    .and_then(|mut s| {
        s.execute(params![
            log.id.0.hyphenated().to_string(),
            log.cycle.0,
            time_key(log.time),
            log.status.as_str(),
            source_id,
            smtp,
            upn,
            dn,
            guid,
            in_sync,
            entry,
            modified_in_journal,
            shape,
        ])
    })
    .map_err(e("store provisioning log entry"))?;
    let seq = tx.last_insert_rowid();
    keys::add(
        tx,
        keys::LOG,
        seq,
        &[
            source_id.as_deref(),
            smtp.as_deref(),
            upn.as_deref(),
            dn.as_deref(),
            guid.as_deref(),
        ],
    )
    .map_err(e("store provisioning log keys"))?;

    let mut keyed: Vec<(String, String)> = Vec::new();
    if !o.journal.is_empty() {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO journal
                   (cycle, log_entry, time, object_guid, dn, attribute, record, records)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(e("store journal record"))?;
        // The records of one modify in one row (`records.rs`).
        for group in crate::records::group(&o.journal) {
            let j = &group[0];
            let (record, attributes) = crate::records::encode_group(path, group)?;
            let record = crate::packed::pack(path, "journal record", &record)?;
            let (guid, dn) = (guid_text(&j.object_guid), fold(&j.dn));
            stmt.execute(params![
                j.cycle.0,
                log.id.0.hyphenated().to_string(),
                time_key(j.time),
                guid,
                dn,
                attributes,
                record,
                group.len() as i64,
            ])
            .map_err(e("store journal record"))?;
            let seq = tx.last_insert_rowid();
            // One record of the outcome per object carries the keys (see `keys.rs`).
            if !keyed.iter().any(|(g, d)| *g == guid && *d == dn) {
                keys::add(tx, keys::JOURNAL, seq, &[Some(&guid), Some(&dn)])
                    .map_err(e("store journal keys"))?;
                keyed.push((guid, dn));
            }
        }
    }

    match &o.join {
        JoinUpdate::Keep => {}
        // Appended, merged in bulk (`joins.rs`).
        JoinUpdate::Set(join) => {
            joins.push(crate::joins::add(tx, &join.cloud_id, Some(join)).map_err(e("store join"))?);
        }
        JoinUpdate::Remove { cloud_id } => {
            joins.push(crate::joins::add(tx, cloud_id, None).map_err(e("remove join"))?);
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

    for key in &o.pins.release {
        tx.prepare_cached("DELETE FROM pins WHERE object_guid = ?1 AND attribute = ?2")
            .and_then(|mut s| s.execute(params![guid_text(&key.object_guid), fold(&key.attribute)]))
            .map_err(e("release pin"))?;
    }
    for pin in &o.pins.set {
        let text = to_json(path, "pin", pin)?;
        tx.prepare_cached(
            "INSERT INTO pins (object_guid, attribute, pin) VALUES (?1, ?2, ?3)
             ON CONFLICT (object_guid, attribute) DO UPDATE SET pin = excluded.pin",
        )
        .and_then(|mut s| {
            s.execute(params![
                guid_text(&pin.object_guid),
                fold(&pin.attribute),
                text
            ])
        })
        .map_err(e("store pin"))?;
    }
    Ok(())
}

impl OutcomeStore for SqliteStore {
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
        let tx = self.write_tx("begin recording intents")?;
        crate::intents::insert_batch(&tx, &path, None, intents)?;
        tx.commit()
            .map_err(|e| StoreError::sqlite(&path, "commit intents", e))
    }

    fn record_outcomes_clearing_intents(
        &mut self,
        outcomes: &[ObjectOutcome],
        intents: &[Uuid],
    ) -> Result<()> {
        self.commit_outcomes(outcomes, intents, None)
    }

    fn intents(&self) -> Result<Vec<WriteIntent>> {
        crate::intents::all(&self.conn, &self.path)
    }

    fn delete_intents(&mut self, ids: &[Uuid]) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let path = self.path.clone();
        let tx = self.write_tx("begin deleting intents")?;
        let n = crate::intents::delete(&tx, &path, ids)?;
        tx.commit()
            .map_err(|e| StoreError::sqlite(&path, "commit deleting intents", e))?;
        Ok(n)
    }

    fn log_recorder(&self) -> Result<Option<Box<dyn LogRecorder>>> {
        crate::recorder::log_recorder(self)
    }
}
