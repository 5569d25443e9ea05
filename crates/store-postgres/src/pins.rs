//! Pinned attributes (set and released with outcomes, in `outcomes.rs`).

use exo_writeback_core::provisioning::{Pin, PinCount};
use exo_writeback_store::codec::{from_json, guid_text, limit_param};
use exo_writeback_store::{PinStore, Result};
use uuid::Uuid;

use crate::pg::{PgStore, column, get};

impl PgStore {
    fn pin_rows(&self, sql: &str, params: &crate::pg::Params<'_>) -> Result<Vec<Pin>> {
        let path = self.path();
        self.read("read pins", |db| {
            let texts: Vec<String> = column(&db.query(sql, params)?)?;
            Ok(texts
                .iter()
                .map(|t| from_json(path, "pin", t))
                .collect::<Result<_>>()?)
        })
    }
}

impl PinStore for PgStore {
    fn pins_of(&self, object_guid: &Uuid) -> Result<Vec<Pin>> {
        self.pin_rows(
            "SELECT pin FROM pins WHERE object_guid = $1 ORDER BY attribute",
            &[&guid_text(object_guid)],
        )
    }

    fn pins(&self, limit: usize) -> Result<Vec<Pin>> {
        self.pin_rows(
            "SELECT pin FROM pins ORDER BY object_guid, attribute LIMIT $1",
            &[&limit_param(limit)],
        )
    }

    fn pin_count(&self) -> Result<PinCount> {
        self.read("count pins", |db| {
            let row = db.query_one(
                "SELECT count(*), count(DISTINCT object_guid) FROM pins",
                &[],
            )?;
            Ok(PinCount {
                attributes: u64::try_from(get::<i64>(&row, 0)?).unwrap_or(0),
                objects: u64::try_from(get::<i64>(&row, 1)?).unwrap_or(0),
            })
        })
    }

    fn unpin(&mut self, object_guid: Option<&Uuid>) -> Result<PinCount> {
        self.write("release pins", |db| match object_guid {
            Some(g) => {
                let n = db.execute("DELETE FROM pins WHERE object_guid = $1", &[&guid_text(g)])?;
                Ok(PinCount {
                    attributes: n,
                    objects: u64::from(n > 0),
                })
            }
            None => {
                let objects: i64 = get(
                    &db.query_one("SELECT count(DISTINCT object_guid) FROM pins", &[])?,
                    0,
                )?;
                let n = db.execute("DELETE FROM pins", &[])?;
                Ok(PinCount {
                    attributes: n,
                    objects: u64::try_from(objects).unwrap_or(0),
                })
            }
        })
    }
}
