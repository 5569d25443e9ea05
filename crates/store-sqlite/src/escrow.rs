//! Escrow.

use exo_writeback_core::provisioning::EscrowEntry;
use exo_writeback_store::{EscrowStore, Result};
use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};

use crate::sqlite::SqliteStore;
use exo_writeback_store::codec::{collect_json, count, from_json, limit_param, time_key};

impl EscrowStore for SqliteStore {
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
}
