//! Pinned attributes (set and released with outcomes, in `outcomes.rs`) and the pause.

use exo_writeback_core::provisioning::{Pause, Pin, PinCount};
use exo_writeback_store::{PauseStore, PinStore, Result, StoreError};
use rusqlite::params;
use uuid::Uuid;

use crate::error::Classify;
use crate::sqlite::SqliteStore;
use exo_writeback_store::codec::{collect_json, count, from_json, guid_text, limit_param, to_json};

impl PinStore for SqliteStore {
    fn pins_of(&self, object_guid: &Uuid) -> Result<Vec<Pin>> {
        let texts: Vec<String> = self
            .conn
            .prepare_cached("SELECT pin FROM pins WHERE object_guid = ?1 ORDER BY attribute")
            .and_then(|mut s| {
                s.query_map(params![guid_text(object_guid)], |r| r.get(0))?
                    .collect()
            })
            .map_err(|e| self.err("read pins", e))?;
        collect_json(&self.path, "pin", texts)
    }

    fn pins(&self, limit: usize) -> Result<Vec<Pin>> {
        let texts: Vec<String> = self
            .conn
            .prepare_cached("SELECT pin FROM pins ORDER BY object_guid, attribute LIMIT ?1")
            .and_then(|mut s| {
                s.query_map(params![limit_param(limit)], |r| r.get(0))?
                    .collect()
            })
            .map_err(|e| self.err("read pins", e))?;
        collect_json(&self.path, "pin", texts)
    }

    fn pin_count(&self) -> Result<PinCount> {
        self.conn
            .prepare_cached("SELECT count(*), count(DISTINCT object_guid) FROM pins")
            .and_then(|mut s| {
                s.query_row([], |r| {
                    Ok(PinCount {
                        attributes: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                        objects: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    })
                })
            })
            .map_err(|e| self.err("count pins", e))
    }

    fn unpin(&mut self, object_guid: Option<&Uuid>) -> Result<PinCount> {
        let path = self.path.clone();
        let tx = self.write_tx("begin releasing pins")?;
        let e = |op: &'static str| {
            let path = path.clone();
            move |err: rusqlite::Error| StoreError::sqlite(&path, op, err)
        };
        let released = match object_guid {
            Some(g) => {
                let n = tx
                    .execute(
                        "DELETE FROM pins WHERE object_guid = ?1",
                        params![guid_text(g)],
                    )
                    .map_err(e("release pins"))?;
                PinCount {
                    attributes: count(n),
                    objects: u64::from(n > 0),
                }
            }
            None => {
                let objects: i64 = tx
                    .query_row("SELECT count(DISTINCT object_guid) FROM pins", [], |r| {
                        r.get(0)
                    })
                    .map_err(e("count pins"))?;
                let n = tx
                    .execute("DELETE FROM pins", [])
                    .map_err(e("release pins"))?;
                PinCount {
                    attributes: count(n),
                    objects: u64::try_from(objects).unwrap_or(0),
                }
            }
        };
        tx.commit().map_err(e("commit releasing pins"))?;
        Ok(released)
    }
}

impl PauseStore for SqliteStore {
    fn pause(&self) -> Result<Option<Pause>> {
        let text: Option<String> = self
            .conn
            .prepare_cached("SELECT pause FROM job WHERE id = 1")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(|e| self.err("read pause", e))?;
        text.as_deref()
            .map(|t| from_json(&self.path, "pause", t))
            .transpose()
    }

    fn set_pause(&mut self, pause: Option<&Pause>) -> Result<Option<Pause>> {
        let path = self.path.clone();
        let text = pause.map(|p| to_json(&path, "pause", p)).transpose()?;
        let tx = self.write_tx("begin pausing")?;
        let before: Option<String> = tx
            .query_row("SELECT pause FROM job WHERE id = 1", [], |r| r.get(0))
            .map_err(|e| StoreError::sqlite(&path, "read pause", e))?;
        tx.execute("UPDATE job SET pause = ?1 WHERE id = 1", params![text])
            .map_err(|e| StoreError::sqlite(&path, "store pause", e))?;
        tx.commit()
            .map_err(|e| StoreError::sqlite(&path, "commit pause", e))?;
        before
            .as_deref()
            .map(|t| from_json(&path, "pause", t))
            .transpose()
    }
}
