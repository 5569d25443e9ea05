//! The AD schema kept between processes (`schema_cache`, one row): the `schemaInfo` it was
//! read under and its attributes as JSON.

use exo_writeback_store::codec::{from_json, to_json};
use exo_writeback_store::{Result, SchemaCacheStore, SchemaSnapshot, StoreError};
use rusqlite::{OptionalExtension, params};

use crate::error::Classify;
use crate::sqlite::SqliteStore;

impl SchemaCacheStore for SqliteStore {
    fn schema_snapshot(&self) -> Result<Option<SchemaSnapshot>> {
        let row: Option<(Vec<u8>, String)> = self
            .conn
            .prepare_cached("SELECT schema_info, attributes FROM schema_cache WHERE id = 1")
            .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(|e| self.err("read the schema snapshot", e))?;
        row.map(|(schema_info, attributes)| {
            Ok(SchemaSnapshot {
                schema_info,
                attributes: from_json(&self.path, "schema snapshot", &attributes)?,
            })
        })
        .transpose()
    }

    fn put_schema_snapshot(&mut self, snapshot: &SchemaSnapshot) -> Result<()> {
        let path = self.path.clone();
        let attributes = to_json(&path, "schema snapshot", &snapshot.attributes)?;
        let tx = self.write_tx("begin keeping the schema")?;
        tx.execute(
            "INSERT INTO schema_cache (id, schema_info, attributes) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET schema_info = excluded.schema_info,
                                            attributes = excluded.attributes",
            params![snapshot.schema_info, attributes],
        )
        .map_err(|e| StoreError::sqlite(&path, "keep the schema snapshot", e))?;
        tx.commit()
            .map_err(|e| StoreError::sqlite(&path, "commit the schema snapshot", e))
    }
}
