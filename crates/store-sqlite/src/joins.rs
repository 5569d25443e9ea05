//! Joins between cloud ids and AD objects, written the way identity keys are (`keys.rs`).
//!
//! The key of `joins` is the cloud id, a random value: an upsert per object put every
//! transaction of outcomes on random pages of its index, each page written to the WAL and
//! again at checkpoint (6.9 KB per object of the 13.1 KB the store wrote per outcome, measured
//! with the `throughput` example). Instead a cycle appends each change to `joins_new` — no
//! index; a row with a NULL objectGUID removes the join — and the changes are merged into
//! `joins`, sorted by cloud id, in bulk: when [`MERGE_AT`] wait and when a cycle finishes. A
//! merge dirties each page of the index at most once.
//!
//! Look-ups during a cycle must see the unmerged changes: the store keeps, in memory, the
//! newest row of each unmerged key ([`Pending`]: the 64-bit key of the cloud id → the largest
//! rowid of `joins_new` holding that key), built by one scan of `joins_new` when first needed
//! and again whenever another connection committed (`PRAGMA data_version`), and extended by
//! each commit of its own. A look-up reads that row, comparing the real cloud id: when it is
//! the cloud id's, it is its newest change (every change of the cloud id has the same key, so
//! none is newer); when another cloud id with the same key wrote after it (a collision of two
//! 64-bit keys), the look-up scans `joins_new` for the cloud id's newest row — a slower
//! answer, never a wrong one. Without an unmerged row it reads `joins`. Listings read both
//! tables.
//!
//! One rowid per key keeps the map at about 17 bytes a bucket (≈ 36 MB at [`MERGE_AT`]), so
//! a cycle of up to a million changes merges once, at its end; at 250,000 with a list of
//! rowids per key, a 1M initial cycle merged four times, each merge rewriting the `joins`
//! table as it stood (2.5M rows' pages for 1M joins).

use std::collections::HashMap;

use exo_writeback_core::provisioning::Join;
use exo_writeback_store::{JoinStore, Result, StoreError};

use crate::error::Classify;
use rusqlite::{OptionalExtension, Transaction, params};

use crate::keys::key;
use crate::sqlite::SqliteStore;
use exo_writeback_store::codec::{decode_join, guid_text, limit_param};

/// Unmerged join changes that make a commit merge them (the in-memory map then holds at most
/// this many keys: 2^21 buckets of 17 bytes, ≈ 36 MB).
pub(crate) const MERGE_AT: i64 = 1_000_000;

/// The newest unmerged change of each key: the key of a cloud id → the largest rowid of
/// `joins_new` with that key, as of `data_version`.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    data_version: i64,
    rows: HashMap<i64, i64>,
}

/// A row of `joins_new` written by this connection's transaction: its cloud id's key, rowid.
pub(crate) type Added = (i64, i64);

/// The newest unmerged change of each cloud id (SQL, a sub-select of `joins_new`).
const LATEST: &str = "SELECT cloud_id, object_guid, dn, updated_at FROM joins_new
     WHERE rowid IN (SELECT max(rowid) FROM joins_new GROUP BY cloud_id)";

/// Appends a join change (`None`: removed) in the outcome's transaction.
pub(crate) fn add(
    tx: &Transaction<'_>,
    cloud_id: &str,
    join: Option<&Join>,
) -> rusqlite::Result<Added> {
    // The rowid read back with `last_insert_rowid`, as the log entry's (`outcomes.rs`): with
    // `RETURNING`, SQLite wrote its statement journal to a temporary file.
    tx.prepare_cached(
        "INSERT INTO joins_new (cloud_id, object_guid, dn, updated_at)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        cloud_id,
        join.map(|j| guid_text(&j.object_guid)),
        join.map(|j| j.dn.as_str()),
        join.map(|j| j.updated_at.to_string()),
    ])?;
    Ok((key(cloud_id), tx.last_insert_rowid()))
}

/// Merges the unmerged changes into `joins` when there are at least `at` of them (all when
/// `at` is 0); true when it merged. The rowids of `joins_new` restart after each merge (it is
/// emptied), so its largest rowid counts its rows without a scan.
pub(crate) fn merge(tx: &Transaction<'_>, at: i64) -> rusqlite::Result<bool> {
    let pending: i64 = tx
        .prepare_cached("SELECT coalesce(max(rowid), 0) FROM joins_new")?
        .query_row([], |r| r.get(0))?;
    if pending == 0 || pending < at {
        return Ok(false);
    }
    tx.prepare_cached(&format!(
        "INSERT INTO joins (cloud_id, object_guid, dn, updated_at)
         SELECT cloud_id, object_guid, dn, updated_at FROM ({LATEST})
         WHERE object_guid IS NOT NULL ORDER BY cloud_id
         ON CONFLICT (cloud_id) DO UPDATE SET
           object_guid = excluded.object_guid, dn = excluded.dn,
           updated_at = excluded.updated_at"
    ))?
    .execute([])?;
    tx.prepare_cached(&format!(
        "DELETE FROM joins WHERE cloud_id IN
           (SELECT cloud_id FROM ({LATEST}) WHERE object_guid IS NULL)"
    ))?
    .execute([])?;
    tx.prepare_cached("DELETE FROM joins_new")?.execute([])?;
    Ok(true)
}

/// A join row as stored (`object_guid` NULL: removed).
type Row = (String, Option<String>, Option<String>, Option<String>);

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

impl SqliteStore {
    fn decode(&self, (cloud_id, guid, dn, at): Row) -> Result<Option<Join>> {
        match (guid, dn, at) {
            (Some(g), Some(d), Some(t)) => decode_join(&self.path, (cloud_id, g, d, t)).map(Some),
            (None, _, _) => Ok(None),
            _ => Err(StoreError::BadRow {
                path: self.path.clone(),
                what: "join",
                detail: format!("the join of {cloud_id} lacks its DN or time"),
            }),
        }
    }

    fn data_version(&self) -> Result<i64> {
        // Asked before every join look-up: prepared once.
        self.conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(|e| self.err("read data version", e))
    }

    /// The newest row of `joins_new` with `cloud_id`'s key (see the module's documentation);
    /// the map is rebuilt first when another connection committed since it was built.
    fn pending_row(&self, cloud_id: &str) -> Result<Option<i64>> {
        let version = self.data_version()?;
        let mut pending = self.pending_joins.borrow_mut();
        if pending.as_ref().is_none_or(|p| p.data_version != version) {
            let mut rows: HashMap<i64, i64> = HashMap::new();
            let mut stmt = self
                .conn
                .prepare_cached("SELECT rowid, cloud_id FROM joins_new ORDER BY rowid")
                .map_err(|e| self.err("read unmerged joins", e))?;
            let mut it = stmt
                .query([])
                .map_err(|e| self.err("read unmerged joins", e))?;
            while let Some(r) = it.next().map_err(|e| self.err("read unmerged joins", e))? {
                let rowid: i64 = r.get(0).map_err(|e| self.err("read unmerged joins", e))?;
                let id: String = r.get(1).map_err(|e| self.err("read unmerged joins", e))?;
                // In rowid order: the last one a key gets is its newest.
                rows.insert(key(&id), rowid);
            }
            *pending = Some(Pending {
                data_version: version,
                rows,
            });
        }
        Ok(pending
            .as_ref()
            .and_then(|p| p.rows.get(&key(cloud_id)))
            .copied())
    }

    /// After this connection committed: its added rows join the map, or a merge emptied
    /// `joins_new`. (A map not built yet is built on its first use.)
    pub(crate) fn joins_committed(&self, added: Vec<Added>, merged: bool) {
        if let Some(p) = self.pending_joins.borrow_mut().as_mut() {
            if merged {
                p.rows.clear();
            } else {
                // A transaction's rows in the order it inserted them: the last one wins.
                for (k, rowid) in added {
                    p.rows.insert(k, rowid);
                }
            }
        }
    }

    /// Forgets the map (its rows may be gone): rebuilt on the next look-up.
    pub(crate) fn forget_pending_joins(&self) {
        *self.pending_joins.borrow_mut() = None;
    }

    /// Whether unmerged changes wait.
    fn any_pending(&self) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM joins_new)")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(|e| self.err("read unmerged joins", e))
    }

    /// The number of joins (merged and not).
    pub(crate) fn count_joins(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row(
                &format!(
                    "WITH p AS ({LATEST})
                     SELECT (SELECT count(*) FROM joins WHERE cloud_id NOT IN
                               (SELECT cloud_id FROM p))
                          + (SELECT count(*) FROM p WHERE object_guid IS NOT NULL)"
                ),
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err("count joins", e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

impl JoinStore for SqliteStore {
    fn join(&self, cloud_id: &str) -> Result<Option<Join>> {
        if let Some(newest) = self.pending_row(cloud_id)? {
            let mut found: Option<Row> = self
                .conn
                .prepare_cached(
                    "SELECT cloud_id, object_guid, dn, updated_at FROM joins_new
                     WHERE rowid = ?1 AND cloud_id = ?2",
                )
                .and_then(|mut s| s.query_row(params![newest, cloud_id], row).optional())
                .map_err(|e| self.err("read join", e))?;
            if found.is_none() {
                // The key's newest row is another cloud id's: the cloud id's own newest row,
                // if it has one, is older (a scan of the unmerged rows; keys collide almost
                // never).
                found = self
                    .conn
                    .prepare_cached(
                        "SELECT cloud_id, object_guid, dn, updated_at FROM joins_new
                         WHERE cloud_id = ?1 AND rowid < ?2 ORDER BY rowid DESC LIMIT 1",
                    )
                    .and_then(|mut s| s.query_row(params![cloud_id, newest], row).optional())
                    .map_err(|e| self.err("read join", e))?;
            }
            if let Some(found) = found {
                return self.decode(found);
            }
        }
        let found: Option<Row> = self
            .conn
            .prepare_cached(
                "SELECT cloud_id, object_guid, dn, updated_at FROM joins WHERE cloud_id = ?1",
            )
            .and_then(|mut s| s.query_row(params![cloud_id], row).optional())
            .map_err(|e| self.err("read join", e))?;
        found.map_or(Ok(None), |r| self.decode(r))
    }

    fn joins(&self, after: Option<&str>, limit: usize) -> Result<Vec<Join>> {
        // Between cycles everything is merged: one indexed range. During a cycle each side
        // gives its first `limit` after the cursor (the unmerged side is a scan), merged.
        let sql = if self.any_pending()? {
            format!(
                "WITH p AS ({LATEST})
                 SELECT * FROM (SELECT * FROM p WHERE object_guid IS NOT NULL
                                  AND (?1 IS NULL OR cloud_id > ?1)
                                ORDER BY cloud_id LIMIT ?2)
                 UNION ALL
                 SELECT * FROM (SELECT cloud_id, object_guid, dn, updated_at FROM joins
                                WHERE (?1 IS NULL OR cloud_id > ?1)
                                  AND cloud_id NOT IN (SELECT cloud_id FROM p)
                                ORDER BY cloud_id LIMIT ?2)
                 ORDER BY cloud_id LIMIT ?2"
            )
        } else {
            "SELECT cloud_id, object_guid, dn, updated_at FROM joins
             WHERE ?1 IS NULL OR cloud_id > ?1 ORDER BY cloud_id LIMIT ?2"
                .to_string()
        };
        let rows: Vec<Row> = self
            .conn
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_map(params![after, limit_param(limit)], row)?
                    .collect()
            })
            .map_err(|e| self.err("list joins", e))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.extend(self.decode(r)?);
        }
        Ok(out)
    }

    fn remove_join(&mut self, cloud_id: &str) -> Result<bool> {
        if self.join(cloud_id)?.is_none() {
            return Ok(false);
        }
        let path = self.path.clone();
        let p: &std::path::Path = &path;
        let e = |op: &'static str| move |err: rusqlite::Error| StoreError::sqlite(p, op, err);
        let tx = self.write_tx("begin removing a join")?;
        let added = add(&tx, cloud_id, None).map_err(e("remove join"))?;
        tx.commit().map_err(e("commit removing a join"))?;
        self.joins_committed(vec![added], false);
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
