//! The log recorder ([`LogRecorder`]) of the PostgreSQL store: a second connection from the
//! same connector, whose writes check the same fence as the store's (a process that lost the
//! writer lease stores nothing through either).

use std::cell::RefCell;

use exo_writeback_core::provisioning::{JoinUpdate, ObjectOutcome};
use exo_writeback_store::{LogRecorder, Result, StoreError};

use crate::pg::PgStore;

/// [`LogRecorder`] of the PostgreSQL store: a store of its own on the same database,
/// connecting at its first write.
pub(crate) struct PgRecorder(PgStore);

/// The recorder of `store` (`OutcomeStore::log_recorder`).
pub(crate) fn log_recorder(store: &PgStore) -> Result<Option<Box<dyn LogRecorder>>> {
    let recorder: Box<dyn LogRecorder> = Box::new(PgRecorder(PgStore {
        connector: store.connector.clone(),
        conn: RefCell::new(None),
        fence: store.fence.clone(),
        purge_chunk: store.purge_chunk,
    }));
    Ok(Some(recorder))
}

impl LogRecorder for PgRecorder {
    fn record(&mut self, outcomes: &[ObjectOutcome]) -> Result<()> {
        if let Some(o) = outcomes.iter().find(|o| o.join != JoinUpdate::Keep) {
            return Err(StoreError::Invalid {
                path: self.0.path().to_path_buf(),
                message: format!(
                    "the log recorder was given an outcome that changes a join (log entry {}); \
                     joins are recorded on the store's own connection",
                    o.log.id.0
                ),
            });
        }
        self.0.commit_outcomes(outcomes, &[], None)
    }

    fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}
