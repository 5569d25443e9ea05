//! A write-ahead intent as stored: its JSON without the repetitions a [`WriteIntent`] carries
//! — each journal record's cycle, objectGUID, DN and time when they are the intent's (the time
//! of the first record), each modified property of the log entry whose values a journal record
//! holds (`{"journal": k}` instead), and the join's cloud id, objectGUID and DN when they are
//! the intent's. An intent is written before its modify and deleted with its outcome, so what
//! it stores is written to the WAL and again at checkpoint for every object of a cycle:
//! storing it compactly is most of what it costs. `"compact": 1` marks the form; an intent
//! stored whole (before migration 7) reads as it is.

use std::path::Path;

use exo_writeback_store::{Result, StoreError, WriteIntent};
use serde_json::{Map, Value};

fn unstorable(path: &Path, e: serde_json::Error) -> StoreError {
    StoreError::Unstorable {
        path: path.to_path_buf(),
        what: "write intent",
        detail: e.to_string(),
    }
}

fn bad(path: &Path, detail: impl Into<String>) -> StoreError {
    StoreError::BadRow {
        path: path.to_path_buf(),
        what: "write intent",
        detail: detail.into(),
    }
}

/// Removes `key` from `map` when it holds `value`.
fn drop_if(map: &mut Map<String, Value>, key: &str, value: &Value) {
    if map.get(key) == Some(value) {
        map.remove(key);
    }
}

/// Puts `key` back into `map` when it is missing.
fn restore(map: &mut Map<String, Value>, key: &str, value: &Value) {
    if !map.contains_key(key) {
        map.insert(key.to_string(), value.clone());
    }
}

/// The `intent` column of `i`.
pub(crate) fn encode(path: &Path, i: &WriteIntent) -> Result<String> {
    // Which journal record holds each modified property's values (each record once).
    let mut used = vec![false; i.journal.len()];
    let mut in_journal: Vec<Option<usize>> = Vec::with_capacity(i.log.modified.len());
    for m in &i.log.modified {
        let k = i.journal.iter().enumerate().position(|(k, j)| {
            !used[k] && j.attribute == m.attribute && j.previous == m.old && j.new == m.new
        });
        if let Some(k) = k {
            used[k] = true;
        }
        in_journal.push(k);
    }
    let mut v = serde_json::to_value(i).map_err(|e| unstorable(path, e))?;
    let Value::Object(top) = &mut v else {
        return Err(bad(path, "not a JSON object"));
    };
    let get = |k: &str| top.get(k).cloned().unwrap_or(Value::Null);
    let (cycle, guid, dn, cloud_id) =
        (get("cycle"), get("object_guid"), get("dn"), get("cloud_id"));
    let mut journal_time = Value::Null;
    if let Some(Value::Array(records)) = top.get_mut("journal") {
        if let Some(t) = records.first().and_then(|r| r.get("time")) {
            journal_time = t.clone();
        }
        for r in records.iter_mut() {
            if let Value::Object(r) = r {
                drop_if(r, "cycle", &cycle);
                drop_if(r, "object_guid", &guid);
                drop_if(r, "dn", &dn);
                drop_if(r, "time", &journal_time);
            }
        }
    }
    if let Some(Value::Array(modified)) = top.get_mut("log").and_then(|l| l.get_mut("modified")) {
        for (m, k) in modified.iter_mut().zip(&in_journal) {
            if let Some(k) = k {
                *m = serde_json::json!({ "journal": k });
            }
        }
    }
    if let Some(Value::Object(join)) = top.get_mut("join") {
        drop_if(join, "cloud_id", &cloud_id);
        drop_if(join, "object_guid", &guid);
        drop_if(join, "dn", &dn);
    }
    top.insert("journal_time".into(), journal_time);
    top.insert("compact".into(), Value::from(1));
    serde_json::to_string(&v).map_err(|e| unstorable(path, e))
}

/// The intent of an `intent` column.
pub(crate) fn decode(path: &Path, text: &str) -> Result<WriteIntent> {
    let mut v: Value = serde_json::from_str(text).map_err(|e| bad(path, e.to_string()))?;
    let Value::Object(top) = &mut v else {
        return Err(bad(path, "not a JSON object"));
    };
    if top.remove("compact").is_some() {
        let journal_time = top.remove("journal_time").unwrap_or(Value::Null);
        let get = |k: &str| top.get(k).cloned().unwrap_or(Value::Null);
        let (cycle, guid, dn, cloud_id) =
            (get("cycle"), get("object_guid"), get("dn"), get("cloud_id"));
        let mut records: Vec<Value> = Vec::new();
        if let Some(Value::Array(journal)) = top.get_mut("journal") {
            for r in journal.iter_mut() {
                if let Value::Object(r) = r {
                    restore(r, "cycle", &cycle);
                    restore(r, "object_guid", &guid);
                    restore(r, "dn", &dn);
                    restore(r, "time", &journal_time);
                }
            }
            records = journal.clone();
        }
        if let Some(Value::Array(modified)) = top.get_mut("log").and_then(|l| l.get_mut("modified"))
        {
            for m in modified.iter_mut() {
                let Some(k) = m.get("journal").and_then(Value::as_u64) else {
                    continue;
                };
                let r = usize::try_from(k)
                    .ok()
                    .and_then(|k| records.get(k))
                    .ok_or_else(|| bad(path, format!("no journal record {k}")))?;
                let field = |k: &str| r.get(k).cloned().unwrap_or(Value::Null);
                *m = serde_json::json!({
                    "attribute": field("attribute"),
                    "old": field("previous"),
                    "new": field("new"),
                });
            }
        }
        if let Some(Value::Object(join)) = top.get_mut("join") {
            restore(join, "cloud_id", &cloud_id);
            restore(join, "object_guid", &guid);
            restore(join, "dn", &dn);
        }
    }
    serde_json::from_value(v).map_err(|e| bad(path, e.to_string()))
}

#[cfg(test)]
mod tests;
