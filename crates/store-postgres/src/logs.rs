//! Provisioning log queries, the retention purge, and the journal.

use exo_writeback_core::provisioning::{
    CycleId, JournalRecord, LogEntryId, ObjectRef, ProvisioningLogEntry,
};
use exo_writeback_store::codec::{fold, from_json, guid_text, limit_param, source_key, time_key};
use exo_writeback_store::{JournalStore, LogQuery, LogStore, PurgeReport, Result};
use jiff::Timestamp;
use postgres::types::ToSql;
use uuid::Uuid;

use crate::pg::{PgStore, column};

impl LogStore for PgStore {
    fn query_logs(&self, query: &LogQuery) -> Result<Vec<ProvisioningLogEntry>> {
        let mut sql = String::from("SELECT entry FROM log_entries WHERE true");
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let mut arg = |sql: &mut String, v: Box<dyn ToSql + Sync + Send>| {
            args.push(v);
            sql.push_str(&format!("${}", args.len()));
        };
        if !query.statuses.is_empty() {
            let statuses: Vec<String> = query
                .statuses
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect();
            sql.push_str(" AND status = ANY(");
            arg(&mut sql, Box::new(statuses));
            sql.push(')');
        }
        if let Some(identity) = query.identity.as_deref() {
            let identity = identity.trim();
            let folded = fold(identity);
            let guid = Uuid::parse_str(identity)
                .map(|g| guid_text(&g))
                .unwrap_or_default();
            sql.push_str(" AND (source_id = ");
            arg(&mut sql, Box::new(source_key(identity)));
            sql.push_str(" OR smtp = ");
            arg(&mut sql, Box::new(folded.clone()));
            sql.push_str(" OR upn = ");
            arg(&mut sql, Box::new(folded.clone()));
            sql.push_str(" OR dn = ");
            arg(&mut sql, Box::new(folded));
            sql.push_str(" OR guid = ");
            arg(&mut sql, Box::new(guid));
            sql.push(')');
        }
        if query.hide_in_sync {
            sql.push_str(" AND NOT in_sync");
        }
        if let Some(cycle) = query.cycle {
            sql.push_str(" AND cycle = ");
            arg(&mut sql, Box::new(cycle.0));
        }
        if let Some(since) = query.since {
            sql.push_str(" AND time >= ");
            arg(&mut sql, Box::new(time_key(since)));
        }
        if let Some(after) = query.after {
            // The order below, as a row value: entries strictly after the given one (none
            // when it is unknown).
            sql.push_str(" AND (time, seq) < (SELECT time, seq FROM log_entries WHERE id = ");
            arg(&mut sql, Box::new(after.0.to_string()));
            sql.push(')');
        }
        sql.push_str(" ORDER BY time DESC, seq DESC LIMIT ");
        arg(&mut sql, Box::new(limit_param(query.limit)));
        let path = self.path();
        self.read("query provisioning logs", |db| {
            let params: Vec<&(dyn ToSql + Sync)> = args
                .iter()
                .map(|a| a.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let texts: Vec<String> = column(&db.query(&sql, &params)?)?;
            Ok(texts
                .iter()
                .map(|t| from_json(path, "provisioning log entry", t))
                .collect::<Result<_>>()?)
        })
    }

    fn log_entry(&self, id: LogEntryId) -> Result<Option<ProvisioningLogEntry>> {
        let path = self.path();
        self.read("read a provisioning log entry", |db| {
            let texts: Vec<String> = column(&db.query(
                "SELECT entry FROM log_entries WHERE id = $1",
                &[&id.0.to_string()],
            )?)?;
            Ok(texts
                .first()
                .map(|t| from_json(path, "provisioning log entry", t))
                .transpose()?)
        })
    }

    fn purge_older_than(&mut self, cutoff: Timestamp) -> Result<PurgeReport> {
        // In chunks, each its own transaction, so a large purge never holds locks long.
        let key = time_key(cutoff);
        let log_entries = self.purge_in_chunks(
            "DELETE FROM log_entries WHERE seq IN
               (SELECT seq FROM log_entries WHERE time < $1 LIMIT $2)",
            key,
            "purge provisioning logs",
        )?;
        let journal_records = self.purge_in_chunks(
            "DELETE FROM journal WHERE seq IN
               (SELECT seq FROM journal WHERE time < $1 LIMIT $2)",
            key,
            "purge journal",
        )?;
        Ok(PurgeReport {
            log_entries,
            journal_records,
        })
    }
}

impl JournalStore for PgStore {
    fn journal_for_cycle(&self, cycle: CycleId) -> Result<Vec<JournalRecord>> {
        self.journal(
            "SELECT record FROM journal WHERE cycle = $1 ORDER BY seq DESC",
            &cycle.0,
        )
    }

    fn journal_for_object(&self, object: &ObjectRef) -> Result<Vec<JournalRecord>> {
        match object {
            ObjectRef::Guid(g) => self.journal(
                "SELECT record FROM journal WHERE object_guid = $1 ORDER BY seq DESC",
                &guid_text(g),
            ),
            ObjectRef::Dn(dn) => self.journal(
                "SELECT record FROM journal WHERE dn = $1 ORDER BY seq DESC",
                &fold(dn.trim()),
            ),
        }
    }
}

impl PgStore {
    fn journal(&self, sql: &str, key: &(dyn ToSql + Sync)) -> Result<Vec<JournalRecord>> {
        let path = self.path();
        self.read("read journal", |db| {
            let texts: Vec<String> = column(&db.query(sql, &[key])?)?;
            Ok(texts
                .iter()
                .map(|t| from_json(path, "journal record", t))
                .collect::<Result<_>>()?)
        })
    }
}
