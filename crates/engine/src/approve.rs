//! Applying the changes a cycle held by the change threshold.

use exo_writeback_core::outcome::{OutcomeCode, OutcomeDetail};
use exo_writeback_core::provisioning::{
    Action, CycleCounts, CycleId, CycleKind, JobState, StagedDecision, StepStatus,
};
use exo_writeback_core::schema::Schema;
use exo_writeback_store::{StagingStore, Store};
use jiff::Timestamp;

use crate::cycle::CycleReport;
use crate::engine::{Engine, stopped};
use crate::error::EngineError;
use crate::ports::Directory;
use crate::record::{Escrow, in_sync, journal_of, ldap_failure, step};
use crate::staged::StagedObject;
use crate::write::WriteItem;

/// Where a held (staged) object stands when its change is approved.
pub(crate) enum HeldState {
    /// It holds the values the change was planned from: write it.
    Unchanged,
    /// It already holds the approved values: nothing to write.
    AlreadyApplied,
    /// Changed since, gone, or unreadable: not written.
    Refused(OutcomeDetail),
}

impl<S, D: Directory, St: Store> Engine<S, D, St> {
    /// Apply the changes a held cycle staged, and release the job.
    pub async fn approve(&mut self, held: CycleId) -> Result<CycleReport, EngineError> {
        let objects = held_objects(&self.store, held)?;
        let cycle = self
            .store
            .begin_cycle(CycleKind::Approve, Timestamp::now())?;
        let mut counts = CycleCounts {
            imported: objects.len() as u64,
            in_scope: objects.len() as u64,
            ..CycleCounts::default()
        };
        let result = self.apply_held(held, cycle, &objects, &mut counts).await;
        counts.pending = counts
            .in_scope
            .saturating_sub(counts.written + counts.unchanged + counts.failed);
        self.close(cycle, &counts, result)?;
        Ok(CycleReport::of(cycle, CycleKind::Approve, counts))
    }

    /// Writes the held objects in chunks, like a cycle's write phase, then marks the changes
    /// approved and releases the job. Each object is read first: only an object that still
    /// holds the values its change was planned from is written (approving a stale plan would
    /// overwrite a newer on-premises change); one that already holds the approved values (an
    /// earlier, interrupted `approve` of the same cycle wrote it and logged it from its
    /// intent) is not written or logged as applied again.
    async fn apply_held(
        &mut self,
        held: CycleId,
        cycle: CycleId,
        objects: &[StagedObject],
        counts: &mut CycleCounts,
    ) -> Result<(), EngineError> {
        self.reconcile_intents(Some(cycle)).await?;
        let schema = self.schema().await?;
        for chunk in objects.chunks(self.options.batch.max(1)) {
            let mut items = Vec::with_capacity(chunk.len());
            for obj in chunk {
                let state = self.held_object_state(obj, &schema).await;
                items.push(held_item(held, cycle, obj, state, counts));
            }
            let written = self.write_chunk(items, Vec::new()).await?;
            counts.written += written.written;
            counts.failed += written.failed;
            if let Some(stop) = written.stopped {
                return Err(stopped(cycle, stop));
            }
        }
        self.store
            .mark_staged_approved(held, cycle, Timestamp::now())?;
        if self.store.job_state()? == (JobState::ThresholdExceeded { cycle: held }) {
            self.store.set_job_state(&JobState::Active)?;
        }
        Ok(())
    }

    /// Where a held object stands now: still as its change was planned from, already holding
    /// the approved values, or changed since (or unreadable: refused, with the reason).
    pub(crate) async fn held_object_state(&self, obj: &StagedObject, schema: &Schema) -> HeldState {
        let attrs: Vec<String> = obj.modified.iter().map(|m| m.attribute.clone()).collect();
        let current = match self.directory.read_by_guid(&obj.object_guid, &attrs).await {
            Ok(Some(current)) => current,
            Ok(None) => {
                return HeldState::Refused(OutcomeDetail::new(
                    OutcomeCode::ChangedSinceHeld,
                    format!(
                        "{} (objectGUID {}) no longer exists; nothing written",
                        obj.dn, obj.object_guid
                    ),
                ));
            }
            Err(e) => return HeldState::Refused(ldap_failure(&e)),
        };
        let syntax = |attr: &str| schema.get(attr).map(|a| &a.syntax);
        if obj.modified.iter().all(|m| {
            crate::intents::holds(
                syntax(&m.attribute),
                current.attributes.get(&m.attribute),
                &m.new,
            )
        }) {
            return HeldState::AlreadyApplied;
        }
        let changed: Vec<&str> = obj
            .modified
            .iter()
            .filter(|m| {
                let now = current.attributes.get(&m.attribute);
                !crate::intents::holds(syntax(&m.attribute), now, &m.old)
                    && !crate::intents::holds(syntax(&m.attribute), now, &m.new)
            })
            .map(|m| m.attribute.as_str())
            .collect();
        if changed.is_empty() {
            return HeldState::Unchanged;
        }
        HeldState::Refused(OutcomeDetail::new(
            OutcomeCode::ChangedSinceHeld,
            format!(
                "{} changed in AD after the change was held ({} no longer hold the values it \
                 was planned from); nothing written",
                obj.dn,
                changed.join(", ")
            ),
        ))
    }
}

/// The staged objects of a cycle whose changes wait for approval (or rejection).
pub(crate) fn held_objects<St: StagingStore>(
    store: &St,
    held: CycleId,
) -> Result<Vec<StagedObject>, EngineError> {
    let staged = store
        .staged_changes(held)?
        .ok_or_else(|| EngineError::NotHeld {
            cycle: held,
            why: " (the change threshold did not hold it; `exo-writeback status` names the held \
                  cycle)"
                .into(),
        })?;
    if staged.decision != StagedDecision::Pending {
        return Err(EngineError::NotHeld {
            cycle: held,
            why: format!(": they were {}", staged.decision.describe()),
        });
    }
    staged
        .plans
        .iter()
        .map(|plan| {
            StagedObject::from_staged_plan(plan).map_err(|e| EngineError::StagedPlan {
                cycle: held,
                problem: e.to_string(),
            })
        })
        .collect()
}

/// The write of one held object in the approving `cycle`: its modify when it still holds the
/// values its change was planned from, else its final outcome (already applied: nothing
/// written; changed since: refused, into escrow).
fn held_item(
    held: CycleId,
    cycle: CycleId,
    obj: &StagedObject,
    state: HeldState,
    counts: &mut CycleCounts,
) -> WriteItem {
    let mut draft = obj.draft(
        held,
        cycle,
        Timestamp::now(),
        Escrow::Track(obj.cloud_id.clone()),
    );
    let id = obj.cloud_id.clone();
    match state {
        HeldState::Unchanged => {
            let mut success = draft.clone();
            success.journal = journal_of(
                cycle,
                draft.started,
                obj.object_guid,
                &obj.dn,
                &obj.modified,
            );
            success.steps.export = step(
                StepStatus::Success,
                format!("applied the changes held by cycle {held}"),
            );
            WriteItem {
                id,
                success: success.finish(Action::Update, None),
                send: Some((obj.modify(), draft)),
            }
        }
        HeldState::AlreadyApplied => {
            counts.unchanged += 1;
            let what = format!("already holds the values held by cycle {held}; nothing written");
            draft.steps.export = step(StepStatus::Skipped, what.clone());
            WriteItem::done(id, draft.finish(Action::Other, Some(in_sync(what))))
        }
        HeldState::Refused(d) => {
            counts.failed += 1;
            draft.steps.export = step(StepStatus::Failure, d.to_string());
            WriteItem::done(id, draft.finish(Action::Update, Some(d)))
        }
    }
}
