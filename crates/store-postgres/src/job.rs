//! The job state and the watermark; `exo-writeback restart`; the pause.

use exo_writeback_core::provisioning::{JobState, Pause, RestartScope, StagedDecision, Watermark};
use exo_writeback_store::codec::{from_json, to_json};
use exo_writeback_store::{JobStore, PauseStore, RestartReport, RestartStore, Result};
use jiff::Timestamp;

use crate::pg::{PgStore, get};

impl PgStore {
    pub(crate) fn job_row(&self) -> Result<(String, Option<String>, Option<String>)> {
        self.read("read job state", |db| {
            let row = db.query_one("SELECT state, watermark, pause FROM job WHERE id = 1", &[])?;
            Ok((get(&row, 0)?, get(&row, 1)?, get(&row, 2)?))
        })
    }
}

impl JobStore for PgStore {
    fn job_state(&self) -> Result<JobState> {
        let (state, _, _) = self.job_row()?;
        from_json(self.path(), "job state", &state)
    }

    fn set_job_state(&mut self, state: &JobState) -> Result<()> {
        let text = to_json(self.path(), "job state", state)?;
        self.write("store job state", |db| {
            db.execute("UPDATE job SET state = $1 WHERE id = 1", &[&text])
        })?;
        Ok(())
    }

    fn watermark(&self) -> Result<Option<Watermark>> {
        let (_, watermark, _) = self.job_row()?;
        watermark
            .as_deref()
            .map(|t| from_json(self.path(), "watermark", t))
            .transpose()
    }

    fn set_watermark(&mut self, watermark: &Watermark) -> Result<()> {
        let text = to_json(self.path(), "watermark", watermark)?;
        self.write("store watermark", |db| {
            db.execute("UPDATE job SET watermark = $1 WHERE id = 1", &[&text])
        })?;
        Ok(())
    }
}

impl PauseStore for PgStore {
    fn pause(&self) -> Result<Option<Pause>> {
        let (_, _, pause) = self.job_row()?;
        pause
            .as_deref()
            .map(|t| from_json(self.path(), "pause", t))
            .transpose()
    }

    fn set_pause(&mut self, pause: Option<&Pause>) -> Result<Option<Pause>> {
        let path = self.path().to_path_buf();
        let text = pause.map(|p| to_json(&path, "pause", p)).transpose()?;
        let before: Option<String> = self.write("store pause", |db| {
            let row = db.query_one("SELECT pause FROM job WHERE id = 1 FOR UPDATE", &[])?;
            let before: Option<String> = get(&row, 0)?;
            db.execute("UPDATE job SET pause = $1 WHERE id = 1", &[&text])?;
            Ok(before)
        })?;
        before
            .as_deref()
            .map(|t| from_json(&path, "pause", t))
            .transpose()
    }
}

impl RestartStore for PgStore {
    fn restart(&mut self, scope: RestartScope, at: Timestamp) -> Result<RestartReport> {
        let path = self.path().to_path_buf();
        let discarded = to_json(&path, "staged decision", &StagedDecision::Discarded { at })?;
        let pending = to_json(&path, "staged decision", &StagedDecision::Pending)?;
        self.write("restart", |db| {
            let row = db.query_one(
                "SELECT state, watermark FROM job WHERE id = 1 FOR UPDATE",
                &[],
            )?;
            let state: String = get(&row, 0)?;
            let watermark: Option<String> = get(&row, 1)?;
            let state: JobState = from_json(&path, "job state", &state)?;
            let mut report = RestartReport {
                job_state: state.clone(),
                ..RestartReport::default()
            };
            match scope {
                RestartScope::Full => {
                    db.execute("UPDATE job SET watermark = NULL WHERE id = 1", &[])?;
                    report.watermark_cleared = watermark.is_some();
                    report.joins_removed = db.execute("DELETE FROM joins", &[])?;
                    report.escrow_removed = db.execute("DELETE FROM escrow", &[])?;
                    report.staged_cycles_discarded = db.execute(
                        "UPDATE staged_cycles SET decision = $1 WHERE decision = $2",
                        &[&discarded, &pending],
                    )?;
                    report.job_state = JobState::NotRun;
                }
                RestartScope::Watermark => {
                    db.execute("UPDATE job SET watermark = NULL WHERE id = 1", &[])?;
                    report.watermark_cleared = watermark.is_some();
                }
                RestartScope::Escrow => {
                    report.escrow_removed = db.execute("DELETE FROM escrow", &[])?;
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
            db.execute("UPDATE job SET state = $1 WHERE id = 1", &[&text])?;
            Ok(report)
        })
    }
}
