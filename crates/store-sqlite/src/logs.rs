//! Provisioning log queries, the retention purge, and the journal.

use exo_writeback_core::provisioning::{
    CycleId, JournalRecord, LogEntryId, ObjectRef, ProvisioningLogEntry,
};
use exo_writeback_store::{JournalStore, LogQuery, LogStore, PurgeReport, Result, StoreError};
use jiff::Timestamp;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter};
use uuid::Uuid;

use crate::error::Classify;
use crate::sqlite::SqliteStore;
use crate::{keys, records};
use exo_writeback_store::codec::{fold, guid_text, limit_param, source_key, time_key};

impl LogStore for SqliteStore {
    fn query_logs(&self, query: &LogQuery) -> Result<Vec<ProvisioningLogEntry>> {
        let mut sql = format!(
            "SELECT {} FROM log_entries WHERE 1 = 1",
            crate::modified::columns()
        );
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
            let source = source_key(identity);
            sql.push_str(" AND seq IN (");
            sql.push_str(&keys::seqs_sql(keys::LOG, &[&source, &folded, &guid]));
            sql.push_str(") AND (source_id = ? OR smtp = ? OR upn = ? OR dn = ? OR guid = ?)");
            args.push(SqlValue::Text(source));
            args.push(SqlValue::Text(folded.clone()));
            args.push(SqlValue::Text(folded.clone()));
            args.push(SqlValue::Text(folded));
            args.push(SqlValue::Text(guid));
        }
        if query.hide_in_sync {
            sql.push_str(" AND in_sync = 0");
        }
        if let Some(cycle) = query.cycle {
            sql.push_str(" AND cycle = ?");
            args.push(SqlValue::Integer(cycle.0));
        }
        if let Some(since) = query.since {
            sql.push_str(" AND time >= ?");
            args.push(SqlValue::Integer(time_key(since)));
        }
        if let Some(after) = query.after {
            // The order below, as a row value: entries strictly after the given one.
            sql.push_str(" AND (time, seq) < (SELECT time, seq FROM log_entries WHERE id = ?)");
            args.push(SqlValue::Text(after.0.to_string()));
        }
        sql.push_str(" ORDER BY time DESC, seq DESC LIMIT ?");
        args.push(SqlValue::Integer(limit_param(query.limit)));
        let rows: Vec<crate::modified::Row> = self
            .conn
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_map(params_from_iter(args), |r| crate::modified::row(r, 0))?
                    .collect()
            })
            .map_err(|e| self.err("query provisioning logs", e))?;
        crate::modified::read(&self.conn, &self.path, rows)
    }

    fn log_entry(&self, id: LogEntryId) -> Result<Option<ProvisioningLogEntry>> {
        let rows: Vec<crate::modified::Row> = self
            .conn
            .prepare_cached(&format!(
                "SELECT {} FROM log_entries WHERE id = ?1",
                crate::modified::columns()
            ))
            .and_then(|mut s| {
                s.query_map(params![id.0.to_string()], |r| crate::modified::row(r, 0))?
                    .collect()
            })
            .map_err(|e| self.err("read a provisioning log entry", e))?;
        Ok(crate::modified::read(&self.conn, &self.path, rows)?
            .into_iter()
            .next())
    }

    fn purge_older_than(&mut self, cutoff: Timestamp) -> Result<PurgeReport> {
        // In chunks, each its own transaction, so a large purge never holds the write lock
        // long (a cycle or `exo-writeback status` may be waiting).
        let key = time_key(cutoff);
        let log_entries = self.purge_in_chunks(
            "DELETE FROM log_entries WHERE seq IN
               (SELECT seq FROM log_entries WHERE time < ?1 LIMIT ?2) RETURNING 1",
            key,
            "purge provisioning logs",
        )?;
        let journal_records = self.purge_in_chunks(
            "DELETE FROM journal WHERE seq IN
               (SELECT seq FROM journal WHERE time < ?1 LIMIT ?2) RETURNING records",
            key,
            "purge journal",
        )?;
        // Forgetting scans every key (604,200 after a 50,000-user initial cycle and three
        // deltas): only after a purge that deleted rows. It forgets every key below the oldest
        // row left, so keys a stopped process left behind go with the next such purge
        // (meanwhile a look-up finds no row for them: `keys.rs`).
        if log_entries > 0 || journal_records > 0 {
            let path = self.path.clone();
            let p: &std::path::Path = &path;
            let e = |op: &'static str| move |err: rusqlite::Error| StoreError::sqlite(p, op, err);
            let tx = self.write_tx("begin forgetting purged keys")?;
            keys::forget_purged(&tx).map_err(e("forget purged identity keys"))?;
            if log_entries > 0 {
                crate::compact::forget_unused(&tx).map_err(e("forget unused log shapes"))?;
            }
            tx.commit().map_err(e("commit forgetting purged keys"))?;
        }
        Ok(PurgeReport {
            log_entries,
            journal_records,
        })
    }
}

impl JournalStore for SqliteStore {
    fn journal_for_cycle(&self, cycle: CycleId) -> Result<Vec<JournalRecord>> {
        let rows: Vec<records::Row> = self
            .conn
            .prepare_cached(&format!(
                "SELECT {} FROM journal WHERE cycle = ?1 ORDER BY seq DESC",
                records::COLUMNS
            ))
            .and_then(|mut s| s.query_map(params![cycle.0], records::row)?.collect())
            .map_err(|e| self.err("read journal", e))?;
        records::decode_all(&self.path, rows, true)
    }

    fn journal_for_object(&self, object: &ObjectRef) -> Result<Vec<JournalRecord>> {
        // The records of the outcomes whose keys match (see `keys.rs`), then the real column.
        let (column, key) = match object {
            ObjectRef::Guid(g) => ("object_guid", guid_text(g)),
            ObjectRef::Dn(dn) => ("dn", fold(dn.trim())),
        };
        if key.is_empty() {
            // No key is stored for an empty value: no record.
            return Ok(Vec::new());
        }
        // The key is a parameter, so the statement is prepared once per connection and
        // cached: a cycle asks this of every object it plans a change for (drift).
        let sql = format!(
            "SELECT {} FROM journal WHERE log_entry IN
               (SELECT log_entry FROM journal WHERE seq IN ({}))
             AND {column} = ?1 ORDER BY seq DESC",
            records::COLUMNS,
            keys::seq_of_key_sql(keys::JOURNAL, 2)
        );
        let rows: Vec<records::Row> = self
            .conn
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_map(params![key, keys::key(&key)], records::row)?
                    .collect()
            })
            .map_err(|e| self.err("read journal", e))?;
        records::decode_all(&self.path, rows, true)
    }
}
