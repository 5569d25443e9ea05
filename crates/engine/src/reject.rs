//! Refusing the changes a cycle held by the change threshold (`exo-writeback reject`).
//!
//! A reject writes nothing to AD and needs neither AD nor Exchange Online: it is a cycle of its
//! own (kind `Reject`) whose log entries say, per staged object, who rejected the change, when
//! and why; it pins each attribute the change would have written with the value it would have
//! written, marks the held cycle's changes rejected and releases the job.
//!
//! Why pins: the held cycle never moved the watermark, so the next delta reads the same
//! mailboxes again (and the overlap window would re-read them anyway). Exchange Online still
//! holds the values that were refused, so without the pins the next cycle would plan the same
//! changes and be held again. With them, those attributes are left alone until their value in
//! Exchange Online changes: a later real change is planned (and written) as usual, and the
//! cycle that re-reads the rejected mailboxes records their outcomes, so the watermark moves on.

use exo_writeback_core::outcome::{OutcomeCode, OutcomeDetail};
use exo_writeback_core::provisioning::{
    Action, CycleCounts, CycleId, CycleKind, CycleStatus, JobState, ObjectOutcome, Pin, PinOrigin,
    StepStatus,
};
use exo_writeback_store::Store;
use jiff::Timestamp;

use crate::approve::held_objects;
use crate::cycle::CycleReport;
use crate::error::EngineError;
use crate::record::{Escrow, step};
use crate::staged::StagedObject;

/// Objects logged per transaction.
const BATCH: usize = 500;

/// Rejects the changes held by cycle `held`: `by` is who rejects them, `reason` what they
/// said. Returns the report of the `Reject` cycle that logged it.
pub fn reject<St: Store>(
    store: &mut St,
    held: CycleId,
    by: &str,
    reason: Option<&str>,
) -> Result<CycleReport, EngineError> {
    let objects = held_objects(store, held)?;
    let now = Timestamp::now();
    let cycle = store.begin_cycle(CycleKind::Reject, now)?;
    let n = objects.len() as u64;
    let counts = CycleCounts {
        imported: n,
        in_scope: n,
        pinned: n,
        ..CycleCounts::default()
    };
    let mut report = CycleReport::of(cycle, CycleKind::Reject, counts);
    let result = log_rejected(store, held, cycle, &objects, by, reason, now, &mut report);
    let status = match &result {
        Ok(()) => CycleStatus::Completed,
        Err(e) => CycleStatus::Failed {
            reason: e.to_string(),
        },
    };
    if let Err(e) = store.finish_cycle(cycle, Timestamp::now(), &counts, &status) {
        tracing::warn!(%cycle, error = %e, "cannot record the end of the cycle");
    }
    result?;
    tracing::info!(%held, %cycle, objects = n, by, "rejected the changes of a held cycle");
    Ok(report)
}

/// Logs and pins every staged object (in batches), then records the decision and releases the
/// job. A failure part-way leaves the held cycle pending: running `reject` again logs it all
/// again, and the pins are the same.
#[allow(clippy::too_many_arguments)]
fn log_rejected<St: Store>(
    store: &mut St,
    held: CycleId,
    cycle: CycleId,
    objects: &[StagedObject],
    by: &str,
    reason: Option<&str>,
    now: Timestamp,
    report: &mut CycleReport,
) -> Result<(), EngineError> {
    for chunk in objects.chunks(BATCH) {
        let outcomes: Vec<ObjectOutcome> = chunk
            .iter()
            .map(|obj| rejected(obj, held, cycle, by, reason, now))
            .collect();
        store.record_outcomes(&outcomes)?;
        for o in &outcomes {
            report.pins_set.attributes += o.pins.set.len() as u64;
            report.pins_set.objects += u64::from(!o.pins.set.is_empty());
        }
    }
    store.mark_staged_rejected(held, cycle, now, by, reason)?;
    if store.job_state()? == (JobState::ThresholdExceeded { cycle: held }) {
        store.set_job_state(&JobState::Active)?;
    }
    Ok(())
}

/// The outcome of one rejected object: skipped (`Rejected`), with the change it would have
/// written, and a pin per attribute holding the value it would have written.
fn rejected(
    obj: &StagedObject,
    held: CycleId,
    cycle: CycleId,
    by: &str,
    reason: Option<&str>,
    now: Timestamp,
) -> ObjectOutcome {
    let mut draft = obj.draft(held, cycle, now, Escrow::Keep);
    let said = reason.map(|r| format!(": \"{r}\"")).unwrap_or_default();
    let names = obj
        .modified
        .iter()
        .map(|m| m.attribute.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    draft.steps.export = step(
        StepStatus::Skipped,
        format!("not written: the change held by cycle {held} was rejected{said}"),
    );
    draft.pins.set = obj
        .modified
        .iter()
        .map(|m| Pin {
            object_guid: obj.object_guid,
            dn: obj.dn.clone(),
            cloud_id: Some(obj.cloud_id.clone()),
            primary_smtp_address: obj.source.primary_smtp_address.clone(),
            attribute: m.attribute.clone(),
            cloud_value: m.new.clone(),
            origin: PinOrigin::Reject,
            cycle,
            at: now,
            by: by.to_string(),
            note: reason.map(str::to_string),
        })
        .collect();
    let d = OutcomeDetail::new(
        OutcomeCode::Rejected,
        format!(
            "the change held by cycle {held} ({names}) was rejected by {by} at {now}{said}; \
             these attributes are left as they are until their Exchange Online values change"
        ),
    );
    draft.finish(Action::Skip, Some(d))
}
