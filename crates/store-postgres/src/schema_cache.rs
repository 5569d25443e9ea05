//! The AD schema kept between processes (`schema_cache`, one row): the `schemaInfo` it was
//! read under and its attributes as JSON. Kept by the writer (a fenced write, as every other).

use exo_writeback_store::codec::{from_json, to_json};
use exo_writeback_store::{Result, SchemaCacheStore, SchemaSnapshot};

use crate::pg::{PgStore, get};

impl SchemaCacheStore for PgStore {
    fn schema_snapshot(&self) -> Result<Option<SchemaSnapshot>> {
        let row: Option<(Vec<u8>, String)> = self.read("read the schema snapshot", |db| {
            db.query_opt(
                "SELECT schema_info, attributes FROM schema_cache WHERE id = 1",
                &[],
            )?
            .map(|row| Ok((get(&row, 0)?, get(&row, 1)?)))
            .transpose()
        })?;
        row.map(|(schema_info, attributes)| {
            Ok(SchemaSnapshot {
                schema_info,
                attributes: from_json(self.path(), "schema snapshot", &attributes)?,
            })
        })
        .transpose()
    }

    fn put_schema_snapshot(&mut self, snapshot: &SchemaSnapshot) -> Result<()> {
        let attributes = to_json(self.path(), "schema snapshot", &snapshot.attributes)?;
        self.write("keep the schema snapshot", |db| {
            db.execute(
                "INSERT INTO schema_cache (id, schema_info, attributes) VALUES (1, $1, $2)
                 ON CONFLICT (id) DO UPDATE SET schema_info = EXCLUDED.schema_info,
                                                attributes = EXCLUDED.attributes",
                &[&snapshot.schema_info, &attributes],
            )?;
            Ok(())
        })
    }
}
