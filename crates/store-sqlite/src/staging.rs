//! Changes staged by the change threshold.

use std::path::Path;

use exo_writeback_core::provisioning::{CycleId, StagedCycle, StagedDecision, StagedPlan};
use exo_writeback_store::{Result, StagingStore, StoreError};
use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};

use crate::error::Classify;
use crate::sqlite::SqliteStore;
use exo_writeback_store::codec::{collect_json, from_json, limit_param, parse_time, to_json};

impl StagingStore for SqliteStore {
    fn stage_changes(
        &mut self,
        cycle: CycleId,
        staged_at: Timestamp,
        plans: &[StagedPlan],
    ) -> Result<()> {
        let path = self.path.clone();
        let decision = to_json(&path, "staged decision", &StagedDecision::Pending)?;
        let encoded: Vec<(String, String)> = plans
            .iter()
            .map(|p| Ok((p.cloud_id.clone(), to_json(&path, "staged plan", p)?)))
            .collect::<Result<_>>()?;
        let tx = self.write_tx("begin staging changes")?;
        let p: &Path = &path;
        let e = |op: &'static str| move |err: rusqlite::Error| StoreError::sqlite(p, op, err);
        let existing: Option<String> = tx
            .query_row(
                "SELECT decision FROM staged_cycles WHERE cycle = ?1",
                params![cycle.0],
                |r| r.get(0),
            )
            .optional()
            .map_err(e("read staged changes"))?;
        match existing {
            Some(d) => {
                let d: StagedDecision = from_json(&path, "staged decision", &d)?;
                if d != StagedDecision::Pending {
                    return Err(StoreError::Invalid {
                        path: path.clone(),
                        message: format!(
                            "the staged changes of cycle {cycle} were already approved or \
                             discarded; nothing can be added to them"
                        ),
                    });
                }
            }
            None => {
                let cycle_exists: bool = tx
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM cycles WHERE id = ?1)",
                        params![cycle.0],
                        |r| r.get(0),
                    )
                    .map_err(e("read cycle"))?;
                if !cycle_exists {
                    return Err(StoreError::Invalid {
                        path: path.clone(),
                        message: format!("there is no cycle {cycle} to stage changes for"),
                    });
                }
                tx.execute(
                    "INSERT INTO staged_cycles (cycle, staged_at, decision) VALUES (?1, ?2, ?3)",
                    params![cycle.0, staged_at.to_string(), decision],
                )
                .map_err(e("store staged cycle"))?;
            }
        }
        let first: i64 = tx
            .query_row(
                "SELECT coalesce(max(seq) + 1, 0) FROM staged_plans WHERE cycle = ?1",
                params![cycle.0],
                |r| r.get(0),
            )
            .map_err(e("read staged plans"))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO staged_plans (cycle, seq, cloud_id, plan) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(e("store staged plan"))?;
            for (i, (cloud_id, plan)) in encoded.iter().enumerate() {
                let seq = first.saturating_add(limit_param(i));
                stmt.execute(params![cycle.0, seq, cloud_id, plan])
                    .map_err(e("store staged plan"))?;
            }
        }
        tx.commit().map_err(e("commit staged changes"))
    }

    fn staged_changes(&self, cycle: CycleId) -> Result<Option<StagedCycle>> {
        let head: Option<(String, String)> = self
            .conn
            .prepare_cached("SELECT staged_at, decision FROM staged_cycles WHERE cycle = ?1")
            .and_then(|mut s| {
                s.query_row(params![cycle.0], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(|e| self.err("read staged changes", e))?;
        let Some((staged_at, decision)) = head else {
            return Ok(None);
        };
        let texts: Vec<String> = self
            .conn
            .prepare_cached("SELECT plan FROM staged_plans WHERE cycle = ?1 ORDER BY seq")
            .and_then(|mut s| s.query_map(params![cycle.0], |r| r.get(0))?.collect())
            .map_err(|e| self.err("read staged plans", e))?;
        Ok(Some(StagedCycle {
            cycle,
            staged_at: parse_time(&self.path, "staging time", &staged_at)?,
            decision: from_json(&self.path, "staged decision", &decision)?,
            plans: collect_json(&self.path, "staged plan", texts)?,
        }))
    }

    fn staged_plans(&self, cycle: CycleId, from: usize, limit: usize) -> Result<Vec<StagedPlan>> {
        let texts: Vec<String> = self
            .conn
            .prepare_cached(
                "SELECT plan FROM staged_plans WHERE cycle = ?1 ORDER BY seq LIMIT ?3 OFFSET ?2",
            )
            .and_then(|mut s| {
                s.query_map(
                    params![cycle.0, limit_param(from), limit_param(limit)],
                    |r| r.get(0),
                )?
                .collect()
            })
            .map_err(|e| self.err("read staged plans", e))?;
        collect_json(&self.path, "staged plan", texts)
    }

    fn staged_count(&self, cycle: CycleId) -> Result<u64> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM staged_plans WHERE cycle = ?1")
            .and_then(|mut s| s.query_row(params![cycle.0], |r| r.get(0)))
            .map_err(|e| self.err("count staged plans", e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn pending_staged_cycles(&self) -> Result<Vec<CycleId>> {
        let pending = to_json(&self.path, "staged decision", &StagedDecision::Pending)?;
        let ids: Vec<i64> = self
            .conn
            .prepare_cached("SELECT cycle FROM staged_cycles WHERE decision = ?1 ORDER BY cycle")
            .and_then(|mut s| s.query_map(params![pending], |r| r.get(0))?.collect())
            .map_err(|e| self.err("list staged cycles", e))?;
        Ok(ids.into_iter().map(CycleId).collect())
    }

    fn mark_staged_approved(&mut self, cycle: CycleId, by: CycleId, at: Timestamp) -> Result<()> {
        self.decide(cycle, &StagedDecision::Approved { at, by })
    }

    fn mark_staged_rejected(
        &mut self,
        cycle: CycleId,
        logged_in: CycleId,
        at: Timestamp,
        by: &str,
        reason: Option<&str>,
    ) -> Result<()> {
        self.decide(
            cycle,
            &StagedDecision::Rejected {
                at,
                cycle: logged_in,
                by: by.to_string(),
                reason: reason.map(str::to_string),
            },
        )
    }
}

impl SqliteStore {
    /// Records the decision on a held cycle's changes, which must still be pending.
    fn decide(&mut self, cycle: CycleId, decision: &StagedDecision) -> Result<()> {
        let path = self.path.clone();
        let text = to_json(&path, "staged decision", decision)?;
        let tx = self.write_tx("begin deciding staged changes")?;
        let p: &Path = &path;
        let e = |op: &'static str| move |err: rusqlite::Error| StoreError::sqlite(p, op, err);
        let current: Option<String> = tx
            .query_row(
                "SELECT decision FROM staged_cycles WHERE cycle = ?1",
                params![cycle.0],
                |r| r.get(0),
            )
            .optional()
            .map_err(e("read staged changes"))?;
        let Some(current) = current else {
            return Err(StoreError::Invalid {
                path: path.clone(),
                message: format!(
                    "cycle {cycle} has no staged changes; `exo-writeback status` shows the held \
                     cycle"
                ),
            });
        };
        let current: StagedDecision = from_json(&path, "staged decision", &current)?;
        if current != StagedDecision::Pending {
            return Err(StoreError::Invalid {
                path: path.clone(),
                message: format!(
                    "the changes held by cycle {cycle} were already {}",
                    current.describe()
                ),
            });
        }
        tx.execute(
            "UPDATE staged_cycles SET decision = ?2 WHERE cycle = ?1",
            params![cycle.0, text],
        )
        .map_err(e("record the decision on staged changes"))?;
        tx.commit().map_err(e("commit the decision"))
    }
}
