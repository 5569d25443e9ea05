//! Joins between cloud ids and AD objects.

use exo_writeback_core::provisioning::Join;
use exo_writeback_store::{JoinStore, Result};
use rusqlite::{OptionalExtension, params};

use crate::sqlite::SqliteStore;
use exo_writeback_store::codec::{decode_join, limit_param};

impl JoinStore for SqliteStore {
    fn join(&self, cloud_id: &str) -> Result<Option<Join>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT cloud_id, object_guid, dn, updated_at FROM joins WHERE cloud_id = ?1",
            )
            .and_then(|mut s| {
                s.query_row(params![cloud_id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()
            })
            .map_err(|e| self.err("read join", e))?;
        row.map(|r| decode_join(&self.path, r)).transpose()
    }

    fn joins(&self, after: Option<&str>, limit: usize) -> Result<Vec<Join>> {
        let rows: Vec<(String, String, String, String)> = self
            .conn
            .prepare_cached(
                "SELECT cloud_id, object_guid, dn, updated_at FROM joins
                 WHERE ?1 IS NULL OR cloud_id > ?1 ORDER BY cloud_id LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![after, limit_param(limit)], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect()
            })
            .map_err(|e| self.err("list joins", e))?;
        rows.into_iter()
            .map(|r| decode_join(&self.path, r))
            .collect()
    }

    fn remove_join(&mut self, cloud_id: &str) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM joins WHERE cloud_id = ?1")
            .and_then(|mut s| s.execute(params![cloud_id]))
            .map_err(|e| self.err("remove join", e))?;
        Ok(n > 0)
    }
}
