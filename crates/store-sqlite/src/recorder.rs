//! The log recorder ([`LogRecorder`]): a store of its own on the same file, so that a full
//! reconcile records the mailboxes its scan finds in sync while the scan runs, on another
//! thread, instead of after it. SQLite takes one writer at a time: a write of the store's own
//! connection meanwhile waits for the recorder's transaction (the busy time-out), as a second
//! process's would; the store's map of unmerged joins is rebuilt when another connection
//! committed (`joins.rs`).

use exo_writeback_core::provisioning::ObjectOutcome;
use exo_writeback_store::{LogRecorder, Result, StoreError, changes_no_join};

use crate::error::Classify;
use crate::sqlite::SqliteStore;

/// [`LogRecorder`] of the SQLite store.
pub(crate) struct SqliteRecorder(SqliteStore);

/// The recorder of `store` (`OutcomeStore::log_recorder`): a new connection to its file, with
/// its merge thresholds.
pub(crate) fn log_recorder(store: &SqliteStore) -> Result<Option<Box<dyn LogRecorder>>> {
    let mut own = SqliteStore::connect(&store.path)?;
    own.merge_keys_at = store.merge_keys_at;
    own.merge_keys_first = store.merge_keys_first;
    own.merge_joins_at = store.merge_joins_at;
    let recorder: Box<dyn LogRecorder> = Box::new(SqliteRecorder(own));
    Ok(Some(recorder))
}

impl LogRecorder for SqliteRecorder {
    fn record(&mut self, outcomes: &[ObjectOutcome]) -> Result<()> {
        changes_no_join(&self.0.path, outcomes)?;
        self.0.commit_outcomes(outcomes, &[], None)
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        let path = self.0.path.clone();
        let tx = self.0.write_tx("begin merging identity keys")?;
        // What `finish_cycle` would do for these outcomes: their keys into the index.
        crate::keys::merge(&tx, 0)
            .map_err(|e| StoreError::sqlite(&path, "merge identity keys", e))?;
        tx.commit()
            .map_err(|e| StoreError::sqlite(&path, "commit merging identity keys", e))
    }
}
