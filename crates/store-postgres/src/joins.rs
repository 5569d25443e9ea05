//! Joins between cloud ids and AD objects, and escrow.

use exo_writeback_core::provisioning::{EscrowEntry, Join};
use exo_writeback_store::codec::{decode_join, from_json, limit_param, time_key};
use exo_writeback_store::{EscrowStore, JoinStore, Result};
use jiff::Timestamp;
use postgres::Row;

use crate::error::E;
use crate::pg::{PgStore, column, get};

fn join_of(path: &std::path::Path, r: &Row) -> Result<Join, E> {
    Ok(decode_join(
        path,
        (get(r, 0)?, get(r, 1)?, get(r, 2)?, get(r, 3)?),
    )?)
}

impl JoinStore for PgStore {
    fn join(&self, cloud_id: &str) -> Result<Option<Join>> {
        let path = self.path();
        self.read("read join", |db| {
            db.query_opt(
                "SELECT cloud_id, object_guid, dn, updated_at FROM joins WHERE cloud_id = $1",
                &[&cloud_id],
            )?
            .map(|r| join_of(path, &r))
            .transpose()
        })
    }

    fn joins(&self, after: Option<&str>, limit: usize) -> Result<Vec<Join>> {
        let path = self.path();
        self.read("list joins", |db| {
            db.query(
                "SELECT cloud_id, object_guid, dn, updated_at FROM joins
                 WHERE $1::text IS NULL OR cloud_id > $1 ORDER BY cloud_id LIMIT $2",
                &[&after, &limit_param(limit)],
            )?
            .iter()
            .map(|r| join_of(path, r))
            .collect()
        })
    }

    fn remove_join(&mut self, cloud_id: &str) -> Result<bool> {
        let n = self.write("remove join", |db| {
            db.execute("DELETE FROM joins WHERE cloud_id = $1", &[&cloud_id])
        })?;
        Ok(n > 0)
    }
}

impl PgStore {
    fn escrow_entries(
        &self,
        op: &'static str,
        sql: &str,
        params: &crate::pg::Params<'_>,
    ) -> Result<Vec<EscrowEntry>> {
        let path = self.path();
        self.read(op, |db| {
            let texts: Vec<String> = column(&db.query(sql, params)?)?;
            Ok(texts
                .iter()
                .map(|t| from_json(path, "escrow entry", t))
                .collect::<Result<_>>()?)
        })
    }
}

impl EscrowStore for PgStore {
    fn escrow_due(&self, now: Timestamp, limit: usize) -> Result<Vec<EscrowEntry>> {
        let entries = self.escrow_entries(
            "read due escrow entries",
            "SELECT entry FROM escrow WHERE next_retry <= $1
             ORDER BY next_retry, cloud_id LIMIT $2",
            &[&time_key(now), &limit_param(limit)],
        )?;
        // The key is clamped; the exact instant decides.
        Ok(entries.into_iter().filter(|e| e.is_due(now)).collect())
    }

    fn escrow(&self) -> Result<Vec<EscrowEntry>> {
        self.escrow_entries(
            "list escrow",
            "SELECT entry FROM escrow ORDER BY next_retry, cloud_id",
            &[],
        )
    }

    fn escrow_entry(&self, cloud_id: &str) -> Result<Option<EscrowEntry>> {
        Ok(self
            .escrow_entries(
                "read escrow entry",
                "SELECT entry FROM escrow WHERE cloud_id = $1",
                &[&cloud_id],
            )?
            .pop())
    }

    fn escrow_count(&self) -> Result<u64> {
        let n: i64 = self.read("count escrow", |db| {
            get(&db.query_one("SELECT count(*) FROM escrow", &[])?, 0)
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn clear_escrow(&mut self, cloud_id: &str) -> Result<bool> {
        let n = self.write("clear escrow entry", |db| {
            db.execute("DELETE FROM escrow WHERE cloud_id = $1", &[&cloud_id])
        })?;
        Ok(n > 0)
    }

    fn clear_all_escrow(&mut self) -> Result<u64> {
        self.write("clear escrow", |db| db.execute("DELETE FROM escrow", &[]))
    }
}
