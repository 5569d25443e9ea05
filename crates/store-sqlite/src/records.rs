//! A journal record as stored: the JSON of the record without what the row's columns already
//! hold exactly — `cycle`, `object_guid`, `attribute` and `time` (when its nanosecond column
//! is not clamped) — so each record carries its DN, previous and new values only. Reading
//! puts the columns back; a record stored whole (every row before migration 7) reads as it
//! is.
//!
//! Since migration 8 the records of one outcome and object (same cycle, time, objectGUID and
//! DN: every attribute one modify wrote) share one row ([`group`]): its `record` is a JSON
//! array of the records, each with its attribute, the DN in the first only; `attribute` lists
//! the attributes and `records` counts them. A row per attribute repeated the columns, the log
//! entry's id and three index entries per record, about half of the journal's bytes.

use std::path::Path;

use exo_writeback_core::provisioning::JournalRecord;
use exo_writeback_store::codec::{guid_text, time_key};
use exo_writeback_store::{Result, StoreError};
use jiff::Timestamp;
use serde_json::Value;

/// The columns [`decode`] reads, in its order.
pub(crate) const COLUMNS: &str = "record, cycle, object_guid, attribute, time";

/// `(record, cycle, object_guid, attribute, time)` of a journal row.
pub(crate) type Row = (crate::packed::Json, i64, String, String, i64);

pub(crate) fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

/// The records of `journal` in rows: runs of records sharing cycle, time, objectGUID and DN.
pub(crate) fn group(journal: &[JournalRecord]) -> impl Iterator<Item = &[JournalRecord]> {
    journal.chunk_by(|a, b| {
        a.cycle == b.cycle && a.time == b.time && a.object_guid == b.object_guid && a.dn == b.dn
    })
}

/// The `record` and `attribute` columns of a row holding `records` (one of [`group`]).
pub(crate) fn encode_group(path: &Path, records: &[JournalRecord]) -> Result<(String, String)> {
    let [first, rest @ ..] = records else {
        return Err(StoreError::Unstorable {
            path: path.to_path_buf(),
            what: "journal record",
            detail: "no record".into(),
        });
    };
    if rest.is_empty() {
        return Ok((encode(path, first)?, first.attribute.clone()));
    }
    // The column's CHECK refuses an empty attribute of a row of one record; so does this.
    if records.iter().any(|j| j.attribute.is_empty()) {
        return Err(StoreError::Unstorable {
            path: path.to_path_buf(),
            what: "journal record",
            detail: "a record names no attribute".into(),
        });
    }
    let mut items = Vec::with_capacity(records.len());
    for (n, j) in records.iter().enumerate() {
        let mut v = stripped(path, j)?;
        if let Value::Object(map) = &mut v
            && n > 0
        {
            map.remove("dn");
        }
        items.push(v);
    }
    let text = serde_json::to_string(&Value::Array(items)).map_err(|e| unstorable(path, e))?;
    let attributes: Vec<&str> = records.iter().map(|j| j.attribute.as_str()).collect();
    Ok((text, attributes.join(",")))
}

fn unstorable(path: &Path, e: serde_json::Error) -> StoreError {
    StoreError::Unstorable {
        path: path.to_path_buf(),
        what: "journal record",
        detail: e.to_string(),
    }
}

fn bad(path: &Path, detail: String) -> StoreError {
    StoreError::BadRow {
        path: path.to_path_buf(),
        what: "journal record",
        detail,
    }
}

/// The `record` column of `j` (its other columns: `cycle`, `guid_text(object_guid)`,
/// `attribute`, `time_key(time)`).
pub(crate) fn encode(path: &Path, j: &JournalRecord) -> Result<String> {
    let mut v = stripped(path, j)?;
    if let Value::Object(map) = &mut v {
        map.remove("attribute");
    }
    serde_json::to_string(&v).map_err(|e| unstorable(path, e))
}

/// `j` without its cycle, objectGUID and (when the column holds it exactly) time.
fn stripped(path: &Path, j: &JournalRecord) -> Result<Value> {
    let mut v = serde_json::to_value(j).map_err(|e| unstorable(path, e))?;
    if let Value::Object(map) = &mut v {
        map.remove("cycle");
        map.remove("object_guid");
        if from_key(time_key(j.time)) == Some(j.time) {
            map.remove("time");
        }
    }
    Ok(v)
}

fn from_key(nanos: i64) -> Option<Timestamp> {
    Timestamp::from_nanosecond(i128::from(nanos)).ok()
}

/// The records of a row, its columns put back where the JSON left them out.
pub(crate) fn decode(
    path: &Path,
    (text, cycle, guid, attribute, time): Row,
) -> Result<Vec<JournalRecord>> {
    let v: Value = serde_json::from_str(&text.0).map_err(|e| bad(path, e.to_string()))?;
    let items = match v {
        Value::Array(items) => items,
        single => vec![single],
    };
    let mut dn: Option<Value> = None;
    let mut records = Vec::with_capacity(items.len());
    for mut v in items {
        let Value::Object(map) = &mut v else {
            return Err(bad(path, "not a JSON object".into()));
        };
        map.entry("cycle").or_insert_with(|| Value::from(cycle));
        map.entry("object_guid")
            .or_insert_with(|| Value::from(guid.clone()));
        map.entry("attribute")
            .or_insert_with(|| Value::from(attribute.clone()));
        match (map.get("dn"), &dn) {
            (Some(d), None) => dn = Some(d.clone()),
            (None, Some(d)) => {
                map.insert("dn".into(), d.clone());
            }
            _ => {}
        }
        if !map.contains_key("time") {
            let t = from_key(time).ok_or_else(|| bad(path, format!("time {time} out of range")))?;
            map.insert("time".into(), Value::from(t.to_string()));
        }
        let record: JournalRecord =
            serde_json::from_value(v).map_err(|e| bad(path, e.to_string()))?;
        // The columns and the record agree (a whole record of an old row was never changed).
        if guid_text(&record.object_guid) != guid {
            return Err(bad(path, format!("objectGUID {guid} of the row differs")));
        }
        records.push(record);
    }
    Ok(records)
}

/// The records of `rows`, in their order; `descending`: rows in descending `seq`, so the
/// records of each row are read in reverse too (as rows of one record each were).
pub(crate) fn decode_all(
    path: &Path,
    rows: Vec<Row>,
    descending: bool,
) -> Result<Vec<JournalRecord>> {
    let mut all = Vec::with_capacity(rows.len());
    for r in rows {
        let mut records = decode(path, r)?;
        if descending {
            records.reverse();
        }
        all.extend(records);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use exo_writeback_store::testing::fixtures::{at, journal};

    fn columns(j: &JournalRecord, record: String) -> Row {
        (
            crate::packed::Json(record),
            j.cycle.0,
            guid_text(&j.object_guid),
            j.attribute.clone(),
            time_key(j.time),
        )
    }

    /// A record is stored without what its columns hold and read back exactly; a record stored
    /// whole (rows before migration 7) reads as it is; a time the nanosecond column clamps
    /// stays in the JSON.
    #[test]
    fn records_store_what_the_columns_do_not_hold_and_read_back_exactly() {
        let path = Path::new("state.db");
        let mut records = journal(exo_writeback_core::provisioning::CycleId(7), 3, at(5));
        records[2].time = "2300-01-01T00:00:00.5Z".parse().expect("time");
        for (n, j) in records.iter().enumerate() {
            let text = encode(path, j).expect("encode");
            let v: Value = serde_json::from_str(&text).expect("json");
            for gone in ["cycle", "object_guid", "attribute"] {
                assert!(v.get(gone).is_none(), "{gone} in {text}");
            }
            assert_eq!(v.get("time").is_some(), n == 2, "{text}");
            assert_eq!(v["dn"], Value::from(j.dn.clone()));
            let one = std::slice::from_ref(j);
            assert_eq!(decode(path, columns(j, text)).expect("decode"), one);
            let whole = serde_json::to_string(j).expect("json");
            assert_eq!(decode(path, columns(j, whole)).expect("decode"), one);
        }
    }
}
