//! The values of a write stored once: a log entry's modified properties (attribute, old and new
//! values) are the journal records of its outcome again (`previous`, `new`), so where a
//! property equals one of them the entry is stored without the values and the column
//! `modified_in_journal` says where they are — `i:k,…`: property `i` of the entry holds the
//! values of the `k`-th journal record of the entry (in `seq` order). Reading the entry puts
//! them back, exactly as written.
//!
//! Only when every journal record of the outcome is at least as recent as the entry: the
//! retention purge deletes entries and journal records by their own times, so a stored entry's
//! records are then always still there.

use std::path::Path;

use exo_writeback_core::provisioning::{
    JournalRecord, ModifiedProperty, ObjectOutcome, ProvisioningLogEntry,
};
use exo_writeback_store::codec::from_json;
use exo_writeback_store::{Result, StoreError};
use rusqlite::{Connection, params};

use crate::error::Classify;

/// `(property of the entry, journal record of the outcome)` pairs holding the same values.
pub(crate) fn in_journal(o: &ObjectOutcome) -> Vec<(usize, usize)> {
    if o.journal.iter().any(|j| j.time < o.log.time) {
        return Vec::new();
    }
    let mut used = vec![false; o.journal.len()];
    let mut pairs = Vec::new();
    for (i, m) in o.log.modified.iter().enumerate() {
        let found = o.journal.iter().enumerate().position(|(k, j)| {
            !used[k] && j.attribute == m.attribute && j.previous == m.old && j.new == m.new
        });
        if let Some(k) = found {
            used[k] = true;
            pairs.push((i, k));
        }
    }
    pairs
}

/// The entry as stored: the paired properties without their values; the column's text.
pub(crate) fn stored(
    log: &ProvisioningLogEntry,
    pairs: &[(usize, usize)],
) -> (Option<ProvisioningLogEntry>, Option<String>) {
    if pairs.is_empty() {
        return (None, None);
    }
    let mut entry = ProvisioningLogEntry {
        modified: Vec::with_capacity(log.modified.len()),
        ..log.clone()
    };
    for (i, m) in log.modified.iter().enumerate() {
        entry.modified.push(if pairs.iter().any(|p| p.0 == i) {
            ModifiedProperty {
                attribute: m.attribute.clone(),
                old: Vec::new(),
                new: Vec::new(),
            }
        } else {
            m.clone()
        });
    }
    let column = pairs
        .iter()
        .map(|(i, k)| format!("{i}:{k}"))
        .collect::<Vec<_>>()
        .join(",");
    (Some(entry), Some(column))
}

/// A stored entry read back: `(entry JSON, modified_in_journal, a compact entry's columns)`.
pub(crate) type Row = (
    crate::packed::Json,
    Option<String>,
    Option<crate::compact::Columns>,
);

/// The columns [`row`] reads.
pub(crate) fn columns() -> String {
    format!("entry, modified_in_journal, {}", crate::compact::COLUMNS)
}

/// A [`Row`] from [`columns`], from column `at` on.
pub(crate) fn row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Row> {
    Ok((
        r.get(at)?,
        r.get(at + 1)?,
        crate::compact::columns(r, at + 2)?,
    ))
}

/// The entries of `rows`, their values put back from the journal.
pub(crate) fn read(
    conn: &Connection,
    path: &Path,
    rows: Vec<Row>,
) -> Result<Vec<ProvisioningLogEntry>> {
    let mut out = Vec::with_capacity(rows.len());
    for (text, column, compact) in rows {
        let mut entry: ProvisioningLogEntry = match compact {
            Some(c) => crate::compact::expand(path, &text.0, c)?,
            None => from_json(path, "provisioning log entry", &text.0)?,
        };
        if let Some(column) = column {
            fill(conn, path, &mut entry, &column)?;
        }
        out.push(entry);
    }
    Ok(out)
}

fn fill(
    conn: &Connection,
    path: &Path,
    entry: &mut ProvisioningLogEntry,
    column: &str,
) -> Result<()> {
    let bad = |detail: String| StoreError::BadRow {
        path: path.to_path_buf(),
        what: "log entry's modified values",
        detail,
    };
    let rows: Vec<crate::records::Row> = conn
        .prepare_cached(&format!(
            "SELECT {} FROM journal WHERE log_entry = ?1 ORDER BY seq",
            crate::records::COLUMNS
        ))
        .and_then(|mut s| {
            s.query_map(
                params![entry.id.0.hyphenated().to_string()],
                crate::records::row,
            )?
            .collect()
        })
        .map_err(|e| StoreError::sqlite(path, "read the journal of a log entry", e))?;
    let records: Vec<JournalRecord> = crate::records::decode_all(path, rows, false)?;
    for pair in column.split(',') {
        let (i, k) = pair
            .split_once(':')
            .and_then(|(i, k)| Some((i.parse::<usize>().ok()?, k.parse::<usize>().ok()?)))
            .ok_or_else(|| bad(format!("{pair:?} is not a pair of indexes")))?;
        let record = records.get(k).ok_or_else(|| {
            bad(format!(
                "entry {} names journal record {k}, it has {}",
                entry.id.0,
                records.len()
            ))
        })?;
        let property = entry
            .modified
            .get_mut(i)
            .ok_or_else(|| bad(format!("entry {} has no property {i}", entry.id.0)))?;
        property.old = record.previous.clone();
        property.new = record.new.clone();
    }
    Ok(())
}

#[cfg(test)]
mod tests;
