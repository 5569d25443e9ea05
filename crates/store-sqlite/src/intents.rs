//! Write-ahead intents, one row per batch (migration 8).
//!
//! A chunk's intents are committed together before its first modify and deleted together
//! with its outcomes. Stored one row per intent (migrations 4–7), the rows of a chunk filled
//! ≈ 90 leaf pages that every deletion then rewrote — SQLite rebalances a leaf each time rows
//! leave it, moving the next chunk's intents between pages — and whose freed pages churned
//! the freelist: 3.9 KB of write-ahead log per object at 100k for an intent of 1.8 KB
//! (measured by the WAL frames' contents, docs/performance-history.md). Stored as one row, a batch's
//! JSON lies in overflow pages, written once when the batch is recorded; deleting the row
//! frees them without writing them (only its leaf and a freelist trunk page change).
//!
//! `ids` holds the batch's intent ids, 16 bytes each, in the order of `intents` (a JSON array
//! of the intents, deflated: a chunk's intents repeat their attribute names, DN suffixes and
//! step texts, and each carries its log entry, journal and join, so they shrink about sevenfold
//! — measured in docs/performance-history.md), so a deletion finds its intents without inflating them. Deleting some
//! intents of a batch rewrites the row with the others (rare: an unreachable DC keeps the
//! intent of a modify that may have reached it).

use std::collections::HashSet;
use std::path::Path;

use crate::error::Classify;
use exo_writeback_store::codec::{count, from_json, to_json};
use exo_writeback_store::{Result, StoreError, WriteIntent};
use rusqlite::{Connection, Transaction, params};
use uuid::Uuid;

/// The `ids` column of `intent_batches`.
fn ids_blob<'a>(ids: impl Iterator<Item = &'a Uuid>) -> Vec<u8> {
    ids.flat_map(|id| id.as_bytes().to_vec()).collect()
}

fn ids_of(blob: &[u8]) -> Vec<Uuid> {
    blob.chunks_exact(16)
        .map(|c| Uuid::from_slice(c).unwrap_or_default())
        .collect()
}

/// The `intents` column of `intent_batches`.
fn pack(path: &Path, intents: &[WriteIntent]) -> Result<Vec<u8>> {
    crate::packed::pack(
        path,
        "write intents",
        &to_json(path, "write intents", &intents)?,
    )
}

/// The intents of an `intents` column.
fn unpack(path: &Path, stored: &[u8]) -> Result<Vec<WriteIntent>> {
    let json = crate::packed::inflate(stored).map_err(|e| StoreError::BadRow {
        path: path.to_path_buf(),
        what: "write intents",
        detail: e.to_string(),
    })?;
    from_json(path, "write intents", &json)
}

/// Records `intents` as one batch per run of intents of one cycle (one, from a chunk), the
/// first row `seq` when given (an import keeps the order).
pub(crate) fn insert_batch(
    tx: &Transaction<'_>,
    path: &Path,
    seq: Option<i64>,
    intents: &[WriteIntent],
) -> Result<()> {
    let mut seq = seq;
    for run in intents.chunk_by(|a, b| a.cycle == b.cycle) {
        let packed = pack(path, run)?;
        tx.prepare_cached(
            "INSERT INTO intent_batches (seq, cycle, ids, intents) VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut s| {
            s.execute(params![
                seq,
                run[0].cycle.0,
                ids_blob(run.iter().map(|i| &i.id)),
                packed
            ])
        })
        .map_err(|e| StoreError::sqlite(path, "store intents", e))?;
        seq = seq.map(|s| s + 1);
    }
    Ok(())
}

/// Deletes the intents `ids` names; returns how many existed.
pub(crate) fn delete(tx: &Transaction<'_>, path: &Path, ids: &[Uuid]) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let e = |op: &'static str| move |err: rusqlite::Error| StoreError::sqlite(path, op, err);
    let clear: HashSet<&Uuid> = ids.iter().collect();
    // The batches still stored: the chunks in flight, a handful.
    let batches: Vec<(i64, Vec<u8>)> = tx
        .prepare_cached("SELECT seq, ids FROM intent_batches ORDER BY seq")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(e("read intent ids"))?;
    let mut n = 0;
    for (seq, blob) in batches {
        let stored = ids_of(&blob);
        let hits = stored.iter().filter(|id| clear.contains(id)).count();
        if hits == 0 {
            continue;
        }
        n += count(hits);
        if hits == stored.len() {
            tx.prepare_cached("DELETE FROM intent_batches WHERE seq = ?1")
                .and_then(|mut s| s.execute(params![seq]))
                .map_err(e("delete intents"))?;
            continue;
        }
        let stored: Vec<u8> = tx
            .prepare_cached("SELECT intents FROM intent_batches WHERE seq = ?1")
            .and_then(|mut s| s.query_row(params![seq], |r| r.get(0)))
            .map_err(e("read intents"))?;
        let mut kept = unpack(path, &stored)?;
        kept.retain(|i| !clear.contains(&i.id));
        let packed = pack(path, &kept)?;
        tx.prepare_cached("UPDATE intent_batches SET ids = ?2, intents = ?3 WHERE seq = ?1")
            .and_then(|mut s| s.execute(params![seq, ids_blob(kept.iter().map(|i| &i.id)), packed]))
            .map_err(e("delete intents"))?;
    }
    Ok(n)
}

/// Every stored intent, in the order recorded.
pub(crate) fn all(conn: &Connection, path: &Path) -> Result<Vec<WriteIntent>> {
    let stored: Vec<Vec<u8>> = conn
        .prepare_cached("SELECT intents FROM intent_batches ORDER BY seq")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| StoreError::sqlite(path, "read intents", e))?;
    let mut all = Vec::new();
    for batch in stored {
        all.extend(unpack(path, &batch)?);
    }
    Ok(all)
}

/// How many intents are stored.
pub(crate) fn count_all(conn: &Connection, path: &Path) -> Result<u64> {
    let bytes: i64 = conn
        .query_row(
            "SELECT coalesce(sum(length(ids)), 0) FROM intent_batches",
            [],
            |r| r.get(0),
        )
        .map_err(|e| StoreError::sqlite(path, "count intents", e))?;
    Ok(u64::try_from(bytes / 16).unwrap_or(0))
}

/// Migration 8: the intents of `intents` (one row each) become one batch each, in their order.
pub(crate) fn migrate(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let rows: Vec<(i64, i64, String, String)> = tx
        .prepare("SELECT seq, cycle, id, intent FROM intents ORDER BY seq")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut insert = tx
        .prepare("INSERT INTO intent_batches (seq, cycle, ids, intents) VALUES (?1, ?2, ?3, ?4)")?;
    for (seq, cycle, id, text) in rows {
        let id = Uuid::parse_str(&id).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
        })?;
        insert.execute(params![
            seq,
            cycle,
            ids_blob(std::iter::once(&id)),
            crate::packed::deflate(&format!("[{text}]"))
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?
        ])?;
    }
    tx.execute_batch("DROP TABLE intents;")
}
