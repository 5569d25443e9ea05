//! The log recorder ([`LogRecorder`]) of the PostgreSQL store: a second connection from the
//! same connector, whose writes check the same fence as the store's (a process that lost the
//! writer lease stores nothing through either).

use std::cell::RefCell;

use exo_writeback_core::provisioning::ObjectOutcome;
use exo_writeback_store::{LogRecorder, Result, changes_no_join};

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
        changes_no_join(self.0.path(), outcomes)?;
        self.0.commit_outcomes(outcomes, &[], None)
    }

    fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}
