//! The change threshold: a cycle whose plans would remove values from more objects than
//! `threshold` writes nothing; its plans are staged for `exo-writeback approve` and the job is
//! held (`ThresholdExceeded`) until then.

use exo_writeback_core::provisioning::{CycleStatus, JobState, StagedPlan};
use exo_writeback_store::{CycleStore, JobStore, StagingStore};
use jiff::Timestamp;

use crate::cycle::{CycleReport, CycleRun};
use crate::engine::Engine;
use crate::error::EngineError;
use crate::staged::StagedObject;

impl<S, D, St: StagingStore + JobStore + CycleStore> Engine<S, D, St> {
    /// Stages every plan of the cycle — those in memory, then those in the spill file a
    /// bounded batch at a time — holds the job and ends the cycle.
    pub(crate) fn hold(&mut self, run: &mut CycleRun) -> Result<CycleReport, EngineError> {
        let cycle = run.id;
        let staged_plan = |obj: &StagedObject| -> Result<StagedPlan, EngineError> {
            obj.to_staged_plan().map_err(|e| EngineError::StagedPlan {
                cycle,
                problem: e.to_string(),
            })
        };
        let mut staged = Vec::new();
        for p in &run.to_write {
            if let Some(obj) = StagedObject::of(p) {
                staged.push(staged_plan(&obj)?);
            }
        }
        let now = Timestamp::now();
        self.store.stage_changes(cycle, now, &staged)?;
        if let Some(spill) = run.spill.take() {
            let mut reader = spill.read().map_err(EngineError::Spill)?;
            let mut batch = Vec::new();
            while let Some((_, obj)) = reader.next_object().map_err(EngineError::Spill)? {
                batch.push(staged_plan(&obj)?);
                if batch.len() >= self.options.max_plans_in_memory.max(1) {
                    self.store.stage_changes(cycle, now, &batch)?;
                    batch.clear();
                }
            }
            self.store.stage_changes(cycle, now, &batch)?;
        }
        self.store
            .set_job_state(&JobState::ThresholdExceeded { cycle })?;
        let status = CycleStatus::ThresholdExceeded;
        self.store.finish_cycle(cycle, now, &run.counts, &status)?;
        tracing::warn!(%cycle, removing = run.removing, threshold = self.settings.threshold, "change threshold exceeded: nothing written; review with `exo-writeback preview`, apply with `exo-writeback approve {cycle}`");
        Ok(run.report(status, None))
    }
}
