//! The job state and the watermark; `exo-writeback restart`.

use std::path::Path;

use exo_writeback_core::provisioning::{JobState, RestartScope, StagedDecision, Watermark};
use exo_writeback_store::{JobStore, RestartReport, RestartStore, Result, StoreError};
use jiff::Timestamp;
use rusqlite::params;

use crate::error::Classify;
use crate::sqlite::SqliteStore;
use exo_writeback_store::codec::{count, from_json, to_json};

impl JobStore for SqliteStore {
    fn job_state(&self) -> Result<JobState> {
        let (state, _) = self.job_row()?;
        from_json(&self.path, "job state", &state)
    }

    fn set_job_state(&mut self, state: &JobState) -> Result<()> {
        let text = to_json(&self.path, "job state", state)?;
        self.conn
            .prepare_cached("UPDATE job SET state = ?1 WHERE id = 1")
            .and_then(|mut s| s.execute(params![text]))
            .map_err(|e| self.err("store job state", e))?;
        Ok(())
    }

    fn watermark(&self) -> Result<Option<Watermark>> {
        let (_, watermark) = self.job_row()?;
        watermark
            .as_deref()
            .map(|t| from_json(&self.path, "watermark", t))
            .transpose()
    }

    fn set_watermark(&mut self, watermark: &Watermark) -> Result<()> {
        let text = to_json(&self.path, "watermark", watermark)?;
        self.conn
            .prepare_cached("UPDATE job SET watermark = ?1 WHERE id = 1")
            .and_then(|mut s| s.execute(params![text]))
            .map_err(|e| self.err("store watermark", e))?;
        Ok(())
    }
}

impl RestartStore for SqliteStore {
    fn restart(&mut self, scope: RestartScope, at: Timestamp) -> Result<RestartReport> {
        let path = self.path.clone();
        let discarded = to_json(&path, "staged decision", &StagedDecision::Discarded { at })?;
        let pending = to_json(&path, "staged decision", &StagedDecision::Pending)?;
        let tx = self.write_tx("begin restart")?;
        let p: &Path = &path;
        let e = |op: &'static str| move |err: rusqlite::Error| StoreError::sqlite(p, op, err);
        let (state, watermark): (String, Option<String>) = tx
            .query_row("SELECT state, watermark FROM job WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(e("read job state"))?;
        let state: JobState = from_json(&path, "job state", &state)?;
        let mut report = RestartReport {
            job_state: state.clone(),
            ..RestartReport::default()
        };
        let clear_watermark = |tx: &rusqlite::Transaction<'_>| {
            tx.execute("UPDATE job SET watermark = NULL WHERE id = 1", [])
                .map_err(e("clear watermark"))
        };
        match scope {
            RestartScope::Full => {
                clear_watermark(&tx)?;
                report.watermark_cleared = watermark.is_some();
                // Unmerged changes first, so the count is of joins.
                crate::joins::merge(&tx, 0).map_err(e("merge joins"))?;
                report.joins_removed = count(
                    tx.execute("DELETE FROM joins", [])
                        .map_err(e("clear joins"))?,
                );
                report.escrow_removed = count(
                    tx.execute("DELETE FROM escrow", [])
                        .map_err(e("clear escrow"))?,
                );
                report.staged_cycles_discarded = count(
                    tx.execute(
                        "UPDATE staged_cycles SET decision = ?1 WHERE decision = ?2",
                        params![discarded, pending],
                    )
                    .map_err(e("discard staged changes"))?,
                );
                report.job_state = JobState::NotRun;
            }
            RestartScope::Watermark => {
                clear_watermark(&tx)?;
                report.watermark_cleared = watermark.is_some();
            }
            RestartScope::Escrow => {
                report.escrow_removed = count(
                    tx.execute("DELETE FROM escrow", [])
                        .map_err(e("clear escrow"))?,
                );
            }
            RestartScope::Quarantine => {
                if let JobState::Quarantine { .. } = state {
                    report.job_state = if watermark.is_some() {
                        JobState::Active
                    } else {
                        JobState::NotRun
                    };
                }
            }
        }
        let text = to_json(&path, "job state", &report.job_state)?;
        tx.execute("UPDATE job SET state = ?1 WHERE id = 1", params![text])
            .map_err(e("store job state"))?;
        tx.commit().map_err(e("commit restart"))?;
        self.forget_pending_joins();
        Ok(report)
    }
}
