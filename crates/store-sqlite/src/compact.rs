//! In-sync log entries stored compactly (migration 9, issue 15).
//!
//! A full reconcile records one entry per object, nearly all "already in sync" (action
//! `Other`, status `success`, nothing modified). Built as JSON and deflated, each cost a
//! quarter of the agent's CPU in a full reconcile at 10,000 users. Most of such an entry is the
//! same for every object of the cycle: the action, status and reason, the steps' statuses, the
//! scoping and export texts — its *shape*. A shape is stored once per cycle in `log_shapes`,
//! keyed by a hash of its text; the entry's row names it in `shape` and its `entry` column
//! holds, as plain JSON text, only what is the object's own: duration, source and target
//! identities, the import and matching texts. The id, cycle, time and status come from the
//! row's columns (so only entries whose time the nanosecond column holds exactly are stored
//! so). Every other entry, and an entry whose shape's hash another text of the cycle already
//! took, is stored whole as before (`shape` NULL).
//!
//! The row keeps every column the filters use (status, in_sync, cycle, time, identity keys),
//! so queries, paging and the retention purge are unchanged; the purge also deletes the
//! shapes of cycles left without entries.

use std::collections::HashMap;
use std::path::Path;

use exo_writeback_core::mailbox::RecipientKind;
use exo_writeback_core::provisioning::{
    Action, CycleId, LogEntryId, LogStatus, ProvisioningLogEntry, Reason, Step, StepStatus, Steps,
};
use exo_writeback_store::codec::time_key;
use exo_writeback_store::{Result, StoreError};
use jiff::{SignedDuration, Timestamp};
use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What the in-sync entries of a cycle share.
#[derive(Serialize)]
struct ShapeRef<'a> {
    action: Action,
    status: LogStatus,
    reason: &'a Option<Reason>,
    import: StepStatus,
    scoping: &'a Step,
    matching: StepStatus,
    export: &'a Step,
}

#[derive(Deserialize)]
struct Shape {
    action: Action,
    status: LogStatus,
    reason: Option<Reason>,
    import: StepStatus,
    scoping: Step,
    matching: StepStatus,
    export: Step,
}

/// An entry's own part: duration, source (kind, id, address, UPN), target (DN, objectGUID),
/// the import and matching texts.
type Own<'a> = (
    SignedDuration,
    RecipientKind,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<Uuid>,
    &'a str,
    &'a str,
);

type OwnRead = (
    SignedDuration,
    RecipientKind,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<Uuid>,
    String,
    String,
);

/// The shapes a transaction stored or found: `(cycle, hash)` → text.
pub(crate) type Seen = HashMap<(i64, i64), String>;

/// `(hash of the shape, shape text, own part)` of an in-sync entry stored compactly, or None:
/// store it whole.
pub(crate) fn split(
    path: &Path,
    log: &ProvisioningLogEntry,
) -> Result<Option<(i64, String, String)>> {
    let exact = Timestamp::from_nanosecond(i128::from(time_key(log.time))).ok() == Some(log.time);
    if log.action != Action::Other
        || log.status != LogStatus::Success
        || !log.modified.is_empty()
        || !exact
    {
        return Ok(None);
    }
    let shape = text(
        path,
        &ShapeRef {
            action: log.action,
            status: log.status,
            reason: &log.reason,
            import: log.steps.import.status,
            scoping: &log.steps.scoping,
            matching: log.steps.matching.status,
            export: &log.steps.export,
        },
    )?;
    let own: Own<'_> = (
        log.duration,
        log.source.kind,
        log.source.external_directory_object_id.as_deref(),
        log.source.primary_smtp_address.as_deref(),
        log.source.user_principal_name.as_deref(),
        log.target.dn.as_deref(),
        log.target.object_guid,
        &log.steps.import.details,
        &log.steps.matching.details,
    );
    let own = text(path, &own)?;
    Ok(Some((crate::keys::key(&shape), shape, own)))
}

/// Whether `shape` is stored under `(cycle, h)`: stored now, or already with the same text
/// (false: another text took the hash; the entry is then stored whole).
pub(crate) fn intern(
    tx: &Transaction<'_>,
    seen: &mut Seen,
    cycle: CycleId,
    h: i64,
    shape: &str,
) -> rusqlite::Result<bool> {
    if let Some(text) = seen.get(&(cycle.0, h)) {
        return Ok(text == shape);
    }
    let added = tx
        .prepare_cached(
            "INSERT INTO log_shapes (cycle, h, text) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )?
        .execute(params![cycle.0, h, shape])?;
    let text = if added == 1 {
        shape.to_owned()
    } else {
        tx.prepare_cached("SELECT text FROM log_shapes WHERE cycle = ?1 AND h = ?2")?
            .query_row(params![cycle.0, h], |r| r.get::<_, String>(0))
            .optional()?
            .unwrap_or_default()
    };
    let same = text == shape;
    seen.insert((cycle.0, h), text);
    Ok(same)
}

/// The shapes of cycles that have no entry left (after a purge).
pub(crate) fn forget_unused(tx: &Transaction<'_>) -> rusqlite::Result<usize> {
    tx.execute(
        "DELETE FROM log_shapes WHERE NOT EXISTS
           (SELECT 1 FROM log_entries e WHERE e.cycle = log_shapes.cycle)",
        [],
    )
}

/// The columns of a compact row [`expand`] reads beside `entry`: id, cycle, time, the shape.
pub(crate) const COLUMNS: &str = "shape, id, cycle, time, \
    (SELECT s.text FROM log_shapes s WHERE s.cycle = log_entries.cycle AND s.h = log_entries.shape)";

/// A compact row's columns ([`COLUMNS`]); `None` for a whole entry.
#[derive(Debug)]
pub(crate) struct Columns {
    id: String,
    cycle: i64,
    time: i64,
    shape: Option<String>,
}

/// [`COLUMNS`] of `r`, from column `at` on.
pub(crate) fn columns(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Option<Columns>> {
    if r.get::<_, Option<i64>>(at)?.is_none() {
        return Ok(None);
    }
    Ok(Some(Columns {
        id: r.get(at + 1)?,
        cycle: r.get(at + 2)?,
        time: r.get(at + 3)?,
        shape: r.get(at + 4)?,
    }))
}

/// The entry of a compact row: its shape, its own part and its columns.
pub(crate) fn expand(path: &Path, own: &str, c: Columns) -> Result<ProvisioningLogEntry> {
    let bad = |detail: String| StoreError::BadRow {
        path: path.to_path_buf(),
        what: "provisioning log entry",
        detail,
    };
    let shape = c
        .shape
        .ok_or_else(|| bad(format!("entry {}: its shape is not stored", c.id)))?;
    let shape: Shape = serde_json::from_str(&shape).map_err(|e| bad(e.to_string()))?;
    let (duration, kind, source_id, smtp, upn, dn, guid, import, matching): OwnRead =
        serde_json::from_str(own).map_err(|e| bad(e.to_string()))?;
    let id = Uuid::parse_str(&c.id).map_err(|e| bad(e.to_string()))?;
    let time = Timestamp::from_nanosecond(i128::from(c.time))
        .map_err(|e| bad(format!("time {}: {e}", c.time)))?;
    Ok(ProvisioningLogEntry {
        id: LogEntryId(id),
        cycle: CycleId(c.cycle),
        time,
        duration,
        source: exo_writeback_core::provisioning::SourceIdentity {
            kind,
            external_directory_object_id: source_id,
            primary_smtp_address: smtp,
            user_principal_name: upn,
        },
        target: exo_writeback_core::provisioning::TargetIdentity {
            dn,
            object_guid: guid,
        },
        action: shape.action,
        status: shape.status,
        reason: shape.reason,
        steps: Steps {
            import: Step {
                status: shape.import,
                details: import,
            },
            scoping: shape.scoping,
            matching: Step {
                status: shape.matching,
                details: matching,
            },
            export: shape.export,
        },
        modified: Vec::new(),
    })
}

fn text(path: &Path, v: &impl Serialize) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Unstorable {
        path: path.to_path_buf(),
        what: "provisioning log entry",
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shape's hash taken by another text of the cycle (stored before, or earlier in the
    /// same transaction) is not used for it: the entry is then stored whole.
    #[test]
    fn a_hash_another_text_took_is_not_used() {
        let mut conn = rusqlite::Connection::open_in_memory().expect("db");
        conn.execute_batch(
            "CREATE TABLE log_entries (cycle INTEGER);
             CREATE TABLE log_shapes (cycle INTEGER NOT NULL, h INTEGER NOT NULL,
               text TEXT NOT NULL, PRIMARY KEY (cycle, h)) WITHOUT ROWID;",
        )
        .expect("schema");
        let (c, other) = (CycleId(3), CycleId(4));
        let tx = conn.transaction().expect("tx");
        let mut seen = Seen::new();
        assert!(intern(&tx, &mut seen, c, 7, "a").expect("a"));
        assert!(intern(&tx, &mut seen, c, 7, "a").expect("a again"));
        assert!(!intern(&tx, &mut seen, c, 7, "b").expect("b, same transaction"));
        assert!(intern(&tx, &mut seen, other, 7, "b").expect("b, another cycle"));
        tx.commit().expect("commit");
        let tx = conn.transaction().expect("tx");
        let mut seen = Seen::new();
        assert!(!intern(&tx, &mut seen, c, 7, "b").expect("b, stored before"));
        assert!(intern(&tx, &mut seen, c, 7, "a").expect("a, stored before"));
        // Shapes of cycles without entries go; those of cycles with entries stay.
        tx.execute("INSERT INTO log_entries (cycle) VALUES (4)", [])
            .expect("entry");
        assert_eq!(forget_unused(&tx).expect("forget"), 1);
        let left: Vec<i64> = tx
            .prepare("SELECT cycle FROM log_shapes")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("left");
        assert_eq!(left, [4]);
    }
}
