//! The log recorder ([`LogRecorder`]): a second connection to the same database, so that a
//! full reconcile records the mailboxes its scan finds in sync while the scan runs, on
//! another thread, instead of after it. SQLite takes one writer at a time: a write of the
//! store's own connection meanwhile waits for the recorder's transaction (the busy time-out),
//! as a second process's would.

use std::path::PathBuf;

use exo_writeback_core::provisioning::{JoinUpdate, ObjectOutcome};
use exo_writeback_store::{LogRecorder, Result, StoreError};
use rusqlite::{Connection, TransactionBehavior};

use crate::error::Classify;
use crate::outcomes::insert_outcome;
use crate::sqlite::SqliteStore;

/// [`LogRecorder`] of the SQLite store.
pub(crate) struct SqliteRecorder {
    conn: Connection,
    path: PathBuf,
    /// As the store's (`keys::MERGE_AT`).
    merge_keys_at: i64,
}

impl SqliteStore {
    /// A recorder on a new connection to this store's file, set up as the store's own.
    pub(crate) fn recorder(&self) -> Result<SqliteRecorder> {
        let conn =
            Connection::open(&self.path).map_err(|e| StoreError::sqlite(&self.path, "open", e))?;
        Self::configure_connection(&conn, &self.path)?;
        Ok(SqliteRecorder {
            conn,
            path: self.path.clone(),
            merge_keys_at: self.merge_keys_at,
        })
    }
}

impl LogRecorder for SqliteRecorder {
    fn record(&mut self, outcomes: &[ObjectOutcome]) -> Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        if let Some(o) = outcomes.iter().find(|o| o.join != JoinUpdate::Keep) {
            return Err(StoreError::Invalid {
                path: self.path.clone(),
                message: format!(
                    "the log recorder was given an outcome that changes a join (log entry {}); \
                     joins are recorded on the store's own connection",
                    o.log.id.0
                ),
            });
        }
        let path = &self.path;
        let mut joins = Vec::new();
        let mut shapes = crate::compact::Seen::new();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| StoreError::sqlite(path, "begin recording outcomes", e))?;
        for o in outcomes {
            insert_outcome(&tx, path, o, &mut joins, &mut shapes)?;
        }
        crate::keys::merge(&tx, self.merge_keys_at)
            .map_err(|e| StoreError::sqlite(path, "merge identity keys", e))?;
        tx.commit()
            .map_err(|e| StoreError::sqlite(path, "commit outcomes", e))
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| StoreError::sqlite(path, "begin merging identity keys", e))?;
        // What `finish_cycle` would do for these outcomes: their keys into the index.
        crate::keys::merge(&tx, 0)
            .map_err(|e| StoreError::sqlite(path, "merge identity keys", e))?;
        tx.commit()
            .map_err(|e| StoreError::sqlite(path, "commit merging identity keys", e))
    }
}

/// The recorder of the SQLite store (`OutcomeStore::log_recorder`).
pub(crate) fn log_recorder(store: &SqliteStore) -> Result<Option<Box<dyn LogRecorder>>> {
    let recorder: Box<dyn LogRecorder> = Box::new(store.recorder()?);
    Ok(Some(recorder))
}
