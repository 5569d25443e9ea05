//! The AD schema kept in the state between processes. Each `exo-writeback sync` is a process
//! of its own, and every process read the whole schema (every attributeSchema of the schema
//! NC) at its first cycle. The schema read is kept in the state with the schema NC head's
//! `schemaInfo` it was read under ([`SchemaSnapshot`]); the next process adopts it before its
//! first cycle, whose refresh then reads only `schemaInfo` while it is unchanged
//! (`exo_writeback_ad`'s `AdConnection::refresh_schema`). A cache: one that cannot be read
//! back is ignored (a warning) and the schema read from AD; a schema read without a
//! `schemaInfo` is not kept (nothing would tell the next process whether it is current).

use std::sync::{Arc, Mutex};

use exo_writeback_core::schema::Schema;
use exo_writeback_store_sqlite::prelude::*;
use exo_writeback_store_sqlite::{SchemaSnapshot, StoreError};

/// A handle on the state for the schema kept there, and the `schemaInfo` of the schema kept
/// (or adopted) last.
pub struct SchemaCache {
    store: Mutex<Box<dyn Store>>,
    kept: Mutex<Option<Vec<u8>>>,
}

impl std::fmt::Debug for SchemaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaCache").finish_non_exhaustive()
    }
}

impl SchemaCache {
    /// Over `store` (a handle of its own: the engine owns its store).
    pub fn new(store: Box<dyn Store>) -> SchemaCache {
        SchemaCache {
            store: Mutex::new(store),
            kept: Mutex::new(None),
        }
    }

    /// The schema an earlier process kept, tagged with its `schemaInfo`; `None` when there is
    /// none, or it cannot be read back (said: the schema is then read from AD).
    pub fn load(&self) -> Option<Arc<Schema>> {
        let read = self.store.lock().ok()?.schema_snapshot();
        match read {
            Ok(Some(snapshot)) => {
                if let Ok(mut kept) = self.kept.lock() {
                    *kept = Some(snapshot.schema_info.clone());
                }
                tracing::debug!(
                    attributes = snapshot.attributes.len(),
                    "the AD schema kept in the state is used until the DC's schemaInfo differs"
                );
                Some(Arc::new(
                    Schema::new(snapshot.attributes).with_schema_info(Some(snapshot.schema_info)),
                ))
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "the AD schema kept in the state cannot be read back; ignored, the schema is read from AD");
                None
            }
        }
    }

    /// Keeps `schema` in the state unless it is the one kept already (the same `schemaInfo`)
    /// or has no `schemaInfo`. A failure is said and changes nothing: the next refresh tries
    /// again.
    pub fn keep(&self, schema: &Schema) {
        let Some(info) = schema.schema_info() else {
            return;
        };
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        if kept.as_deref() == Some(info) {
            return;
        }
        let snapshot = SchemaSnapshot {
            schema_info: info.to_vec(),
            attributes: schema.iter().cloned().collect(),
        };
        let Ok(mut store) = self.store.lock() else {
            return;
        };
        match store.put_schema_snapshot(&snapshot) {
            Ok(()) => {
                tracing::debug!(
                    attributes = snapshot.attributes.len(),
                    "the AD schema is kept in the state"
                );
                *kept = Some(snapshot.schema_info);
            }
            // A process without the writer lease of a shared state (`preview`) keeps nothing.
            Err(e @ StoreError::Fenced { .. }) => {
                tracing::debug!(error = %e, "the AD schema is not kept in the state");
            }
            Err(e) => {
                tracing::warn!(error = %e, "the AD schema could not be kept in the state; the next process reads it from AD");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exo_writeback_core::schema::exchange_lab_schema;
    use exo_writeback_store_sqlite::SqliteStore;

    fn tagged(info: &[u8]) -> Schema {
        exchange_lab_schema().with_schema_info(Some(info.to_vec()))
    }

    #[test]
    fn a_kept_schema_is_loaded_by_the_next_process_with_its_schema_info() {
        let dir = tempfile::tempdir().unwrap();
        let first = SchemaCache::new(Box::new(SqliteStore::open_in(dir.path()).unwrap()));
        assert!(first.load().is_none(), "nothing kept yet");
        first.keep(&tagged(&[0xFF, 0, 0, 0, 0x23]));

        let next = SchemaCache::new(Box::new(SqliteStore::open_in(dir.path()).unwrap()));
        let loaded = next.load().expect("the kept schema");
        assert_eq!(loaded.schema_info(), Some(&[0xFF, 0, 0, 0, 0x23][..]));
        assert_eq!(loaded.len(), exchange_lab_schema().len());
        assert_eq!(
            loaded.get("mail"),
            exchange_lab_schema().get("mail"),
            "attributes as read"
        );
    }

    #[test]
    fn only_a_schema_under_another_schema_info_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let cache = SchemaCache::new(Box::new(SqliteStore::open_in(dir.path()).unwrap()));
        let reader = SqliteStore::open_in(dir.path()).unwrap();
        cache.keep(&exchange_lab_schema());
        assert_eq!(
            reader.schema_snapshot().unwrap(),
            None,
            "no schemaInfo: not kept"
        );
        cache.keep(&tagged(&[1]));
        let first = reader.schema_snapshot().unwrap().expect("kept");
        // The same schemaInfo with other attributes is not written: the store is not asked.
        cache.keep(&Schema::new([]).with_schema_info(Some(vec![1])));
        assert_eq!(reader.schema_snapshot().unwrap(), Some(first));
        cache.keep(&tagged(&[2]));
        assert_eq!(
            reader.schema_snapshot().unwrap().map(|s| s.schema_info),
            Some(vec![2])
        );
    }

    #[test]
    fn a_snapshot_that_cannot_be_read_back_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = SchemaCache::new(Box::new(SqliteStore::open_in(dir.path()).unwrap()));
        cache.keep(&tagged(&[1]));
        let db =
            rusqlite::Connection::open(dir.path().join(exo_writeback_store_sqlite::DB_FILE_NAME))
                .unwrap();
        db.execute("UPDATE schema_cache SET attributes = '{not json'", [])
            .unwrap();
        let next = SchemaCache::new(Box::new(SqliteStore::open_in(dir.path()).unwrap()));
        assert!(next.load().is_none(), "ignored: the schema is read from AD");
        // And replaced by the next schema read.
        next.keep(&tagged(&[1]));
        assert!(next.load().is_some());
    }
}
