//! The change threshold: a cycle whose plans would remove values from more objects than
//! `threshold` writes nothing; its plans are staged for `exo-writeback approve` (or `reject`),
//! each held object is logged with status `held`, and the job is held (`ThresholdExceeded`)
//! until then.

use exo_writeback_core::provisioning::{CycleStatus, JobState, ObjectOutcome, StagedPlan};
use exo_writeback_store::{CycleStore, JobStore, OutcomeStore, StagingStore};
use jiff::Timestamp;

use crate::cycle::{CycleReport, CycleRun};
use crate::engine::Engine;
use crate::error::EngineError;
use crate::evaluate::Processed;
use crate::staged::StagedObject;

impl<S, D, St: StagingStore + JobStore + CycleStore + OutcomeStore> Engine<S, D, St> {
    /// Stages every plan of the cycle — those in memory, then those in the spill file a
    /// bounded batch at a time — logs each held object, holds the job and ends the cycle.
    pub(crate) fn hold(&mut self, run: &mut CycleRun) -> Result<CycleReport, EngineError> {
        let cycle = run.id;
        let threshold = self.settings.threshold;
        let staged_plan = |obj: &StagedObject| -> Result<StagedPlan, EngineError> {
            obj.to_staged_plan().map_err(|e| EngineError::StagedPlan {
                cycle,
                problem: e.to_string(),
            })
        };
        let batch_size = self.options.max_plans_in_memory.max(1);
        let now = Timestamp::now();
        let mut staged = Vec::new();
        let mut logged: Vec<ObjectOutcome> = Vec::new();
        for p in std::mem::take(&mut run.to_write) {
            if let Some(obj) = StagedObject::of(&p) {
                staged.push(staged_plan(&obj)?);
            }
            logged.push(p.held(cycle, threshold));
        }
        self.store.stage_changes(cycle, now, &staged)?;
        self.log_held(&mut logged)?;
        if let Some(spill) = run.spill.take() {
            let mut reader = spill.read().map_err(EngineError::Spill)?;
            let mut batch = Vec::new();
            while let Some((p, obj)) = reader.next_object().map_err(EngineError::Spill)? {
                batch.push(staged_plan(&obj)?);
                logged.push(Processed::held(p, cycle, threshold));
                if batch.len() >= batch_size {
                    self.store.stage_changes(cycle, now, &batch)?;
                    self.log_held(&mut logged)?;
                    batch.clear();
                }
            }
            self.store.stage_changes(cycle, now, &batch)?;
            self.log_held(&mut logged)?;
        }
        run.counts.held = run.planned;
        self.store
            .set_job_state(&JobState::ThresholdExceeded { cycle })?;
        let status = CycleStatus::ThresholdExceeded;
        self.store.finish_cycle(cycle, now, &run.counts, &status)?;
        tracing::warn!(%cycle, removing = run.removing, threshold, "change threshold exceeded: nothing written; review with `exo-writeback preview`, then `exo-writeback approve {cycle}` or `exo-writeback reject {cycle}`");
        Ok(run.report(status, None))
    }

    /// Records the log entries of held objects, in batches.
    fn log_held(&mut self, logged: &mut Vec<ObjectOutcome>) -> Result<(), EngineError> {
        for chunk in logged.chunks(self.options.batch.max(1)) {
            self.store.record_outcomes(chunk)?;
        }
        logged.clear();
        Ok(())
    }
}
