//! Changes staged by the change threshold.

use exo_writeback_core::provisioning::{CycleId, StagedCycle, StagedDecision, StagedPlan};
use exo_writeback_store::codec::{from_json, limit_param, parse_time, to_json};
use exo_writeback_store::{Result, StagingStore, StoreError};
use jiff::Timestamp;

use crate::pg::{PgStore, column, get};

impl StagingStore for PgStore {
    fn stage_changes(
        &mut self,
        cycle: CycleId,
        staged_at: Timestamp,
        plans: &[StagedPlan],
    ) -> Result<()> {
        let path = self.path().to_path_buf();
        let decision = to_json(&path, "staged decision", &StagedDecision::Pending)?;
        let encoded: Vec<(String, String)> = plans
            .iter()
            .map(|p| Ok((p.cloud_id.clone(), to_json(&path, "staged plan", p)?)))
            .collect::<Result<_>>()?;
        let staged_at = staged_at.to_string();
        self.write("stage changes", |db| {
            let existing = db.query_opt(
                "SELECT decision FROM staged_cycles WHERE cycle = $1 FOR UPDATE",
                &[&cycle.0],
            )?;
            match existing {
                Some(row) => {
                    let d: StagedDecision =
                        from_json(&path, "staged decision", &get::<String>(&row, 0)?)?;
                    if d != StagedDecision::Pending {
                        return Err(StoreError::Invalid {
                            path: path.clone(),
                            message: format!(
                                "the staged changes of cycle {cycle} were already approved or \
                                 discarded; nothing can be added to them"
                            ),
                        }
                        .into());
                    }
                }
                None => {
                    let exists: bool = get(
                        &db.query_one(
                            "SELECT EXISTS (SELECT 1 FROM cycles WHERE id = $1)",
                            &[&cycle.0],
                        )?,
                        0,
                    )?;
                    if !exists {
                        return Err(StoreError::Invalid {
                            path: path.clone(),
                            message: format!("there is no cycle {cycle} to stage changes for"),
                        }
                        .into());
                    }
                    db.execute(
                        "INSERT INTO staged_cycles (cycle, staged_at, decision) VALUES ($1, $2, $3)",
                        &[&cycle.0, &staged_at, &decision],
                    )?;
                }
            }
            let first: i64 = get(
                &db.query_one(
                    "SELECT coalesce(max(seq) + 1, 0) FROM staged_plans WHERE cycle = $1",
                    &[&cycle.0],
                )?,
                0,
            )?;
            for (i, (cloud_id, plan)) in encoded.iter().enumerate() {
                let seq = first.saturating_add(limit_param(i));
                db.execute(
                    "INSERT INTO staged_plans (cycle, seq, cloud_id, plan) VALUES ($1, $2, $3, $4)",
                    &[&cycle.0, &seq, cloud_id, plan],
                )?;
            }
            Ok(())
        })
    }

    fn staged_changes(&self, cycle: CycleId) -> Result<Option<StagedCycle>> {
        let path = self.path();
        self.read("read staged changes", |db| {
            let Some(head) = db.query_opt(
                "SELECT staged_at, decision FROM staged_cycles WHERE cycle = $1",
                &[&cycle.0],
            )?
            else {
                return Ok(None);
            };
            let texts: Vec<String> = column(&db.query(
                "SELECT plan FROM staged_plans WHERE cycle = $1 ORDER BY seq",
                &[&cycle.0],
            )?)?;
            Ok(Some(StagedCycle {
                cycle,
                staged_at: parse_time(path, "staging time", &get::<String>(&head, 0)?)?,
                decision: from_json(path, "staged decision", &get::<String>(&head, 1)?)?,
                plans: texts
                    .iter()
                    .map(|t| from_json(path, "staged plan", t))
                    .collect::<Result<_>>()?,
            }))
        })
    }

    fn staged_plans(&self, cycle: CycleId, from: usize, limit: usize) -> Result<Vec<StagedPlan>> {
        let path = self.path();
        self.read("read staged plans", |db| {
            let texts: Vec<String> = column(&db.query(
                "SELECT plan FROM staged_plans WHERE cycle = $1 ORDER BY seq LIMIT $3 OFFSET $2",
                &[&cycle.0, &limit_param(from), &limit_param(limit)],
            )?)?;
            Ok(texts
                .iter()
                .map(|t| from_json(path, "staged plan", t))
                .collect::<Result<_>>()?)
        })
    }

    fn staged_count(&self, cycle: CycleId) -> Result<u64> {
        let n: i64 = self.read("count staged plans", |db| {
            get(
                &db.query_one(
                    "SELECT count(*) FROM staged_plans WHERE cycle = $1",
                    &[&cycle.0],
                )?,
                0,
            )
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn pending_staged_cycles(&self) -> Result<Vec<CycleId>> {
        let pending = to_json(self.path(), "staged decision", &StagedDecision::Pending)?;
        let ids: Vec<i64> = self.read("list staged cycles", |db| {
            column(&db.query(
                "SELECT cycle FROM staged_cycles WHERE decision = $1 ORDER BY cycle",
                &[&pending],
            )?)
        })?;
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

impl PgStore {
    /// Records the decision on a held cycle's changes, which must still be pending.
    fn decide(&mut self, cycle: CycleId, decision: &StagedDecision) -> Result<()> {
        let path = self.path().to_path_buf();
        let text = to_json(&path, "staged decision", decision)?;
        self.write("record the decision on staged changes", |db| {
            let Some(row) = db.query_opt(
                "SELECT decision FROM staged_cycles WHERE cycle = $1 FOR UPDATE",
                &[&cycle.0],
            )?
            else {
                return Err(StoreError::Invalid {
                    path: path.clone(),
                    message: format!(
                        "cycle {cycle} has no staged changes; `exo-writeback status` shows the \
                         held cycle"
                    ),
                }
                .into());
            };
            let current: StagedDecision =
                from_json(&path, "staged decision", &get::<String>(&row, 0)?)?;
            if current != StagedDecision::Pending {
                return Err(StoreError::Invalid {
                    path: path.clone(),
                    message: format!(
                        "the changes held by cycle {cycle} were already {}",
                        current.describe()
                    ),
                }
                .into());
            }
            db.execute(
                "UPDATE staged_cycles SET decision = $2 WHERE cycle = $1",
                &[&cycle.0, &text],
            )?;
            Ok(())
        })
    }
}
