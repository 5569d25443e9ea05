//! Applying the changes a cycle held by the change threshold.

use std::collections::BTreeMap;

use exo_writeback_core::directory::ObjectModify;
use exo_writeback_core::outcome::{OutcomeCode, OutcomeDetail};
use exo_writeback_core::provisioning::{
    Action, CycleCounts, CycleId, CycleKind, CycleStatus, EscrowFailure, EscrowUpdate, JobState,
    JoinUpdate, JournalRecord, LogEntryId, LogStatus, ObjectOutcome, ProvisioningLogEntry, Reason,
    Step, StepStatus, Steps,
};
use exo_writeback_core::schema::Schema;
use exo_writeback_store::prelude::*;
use jiff::Timestamp;
use uuid::Uuid;

use crate::ports::{Directory, MailboxSource};
use crate::staged::StagedObject;

use crate::cycle::CycleReport;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::record::ldap_failure;
use crate::record::step;

/// Where a held (staged) object stands when its change is approved.
pub(crate) enum HeldState {
    /// It holds the values the change was planned from: write it.
    Unchanged,
    /// It already holds the approved values: nothing to write.
    AlreadyApplied,
    /// Changed since, gone, or unreadable: not written.
    Refused(OutcomeDetail),
}

impl<S: MailboxSource, D: Directory, St: Store> Engine<S, D, St> {
    /// Apply the changes a held cycle staged, and release the job.
    pub async fn approve(&mut self, held: CycleId) -> Result<CycleReport, EngineError> {
        let staged = self
            .store
            .staged_changes(held)?
            .ok_or_else(|| EngineError::NotHeld {
                cycle: held,
                why: " (no staged changes)".into(),
            })?;
        if staged.decision != exo_writeback_core::provisioning::StagedDecision::Pending {
            return Err(EngineError::NotHeld {
                cycle: held,
                why: format!(" (already {:?})", staged.decision),
            });
        }
        let mut objects = Vec::new();
        for plan in &staged.plans {
            objects.push(StagedObject::from_staged_plan(plan).map_err(|e| {
                EngineError::StagedPlan {
                    cycle: held,
                    problem: e.to_string(),
                }
            })?);
        }
        let cycle = self
            .store
            .begin_cycle(CycleKind::Approve, Timestamp::now())?;
        self.reconcile_intents(Some(cycle)).await?;
        let schema = self.schema().await?;
        let mut counts = CycleCounts::default();
        // In chunks, like a cycle's write phase. Each object is read first: only an object that
        // still holds the values its change was planned from is written (approving a stale plan
        // would overwrite a newer on-premises change); one that already holds the approved
        // values (an earlier, interrupted `approve` of the same cycle wrote it and logged it
        // from its intent) is not written or logged as applied again.
        for chunk in objects.chunks(self.options.batch.max(1)) {
            let mut items: Vec<(String, Option<ObjectModify>, ObjectOutcome)> = Vec::new();
            for obj in chunk {
                let started = Timestamp::now();
                let modify = obj.modify();
                let check = self.held_object_state(obj, &schema).await;
                let outcome = |status: LogStatus,
                               detail: Option<OutcomeDetail>,
                               export: Step,
                               journal: Vec<JournalRecord>| {
                    let reason = detail.clone().map(Reason::from);
                    let escrow = match &detail {
                        Some(d) if status == LogStatus::Failure => EscrowUpdate::Failed {
                            failure: EscrowFailure {
                                cloud_id: obj.cloud_id.clone(),
                                source: obj.source.clone(),
                                target: obj.target.clone(),
                                error: Reason::from(d.clone()),
                            },
                            failed_at: Timestamp::now(),
                        },
                        _ => EscrowUpdate::Clear {
                            cloud_id: obj.cloud_id.clone(),
                        },
                    };
                    ObjectOutcome {
                        log: ProvisioningLogEntry {
                            id: LogEntryId(Uuid::new_v4()),
                            cycle,
                            time: started,
                            duration: Timestamp::now().duration_since(started),
                            source: obj.source.clone(),
                            target: obj.target.clone(),
                            action: if journal.is_empty() && status != LogStatus::Failure {
                                Action::Other
                            } else {
                                Action::Update
                            },
                            status,
                            reason,
                            steps: Steps {
                                import: step(
                                    StepStatus::Skipped,
                                    format!("staged by cycle {held}"),
                                ),
                                scoping: step(
                                    StepStatus::Skipped,
                                    format!("staged by cycle {held}"),
                                ),
                                matching: step(StepStatus::Success, obj.dn.to_string()),
                                export,
                            },
                            modified: obj.modified.clone(),
                        },
                        journal,
                        join: JoinUpdate::Keep,
                        escrow,
                    }
                };
                match check {
                    HeldState::Unchanged => {
                        let journal = obj
                            .modified
                            .iter()
                            .map(|m| JournalRecord {
                                cycle,
                                time: started,
                                object_guid: obj.object_guid,
                                dn: obj.dn.clone(),
                                attribute: m.attribute.clone(),
                                previous: m.old.clone(),
                                new: m.new.clone(),
                            })
                            .collect();
                        let export = step(
                            StepStatus::Success,
                            format!("applied the changes held by cycle {held}"),
                        );
                        items.push((
                            obj.cloud_id.clone(),
                            Some(modify),
                            outcome(LogStatus::Success, None, export, journal),
                        ));
                    }
                    HeldState::AlreadyApplied => {
                        counts.unchanged += 1;
                        let export = step(
                            StepStatus::Skipped,
                            format!(
                                "already holds the values held by cycle {held}; nothing written"
                            ),
                        );
                        items.push((
                            obj.cloud_id.clone(),
                            None,
                            outcome(LogStatus::Success, None, export, Vec::new()),
                        ));
                    }
                    HeldState::Refused(d) => {
                        counts.failed += 1;
                        let export = step(StepStatus::Failure, d.to_string());
                        items.push((
                            obj.cloud_id.clone(),
                            None,
                            outcome(LogStatus::Failure, Some(d), export, Vec::new()),
                        ));
                    }
                }
            }
            self.write_chunk(items, true, &mut counts).await?;
        }
        let now = Timestamp::now();
        self.store.mark_staged_approved(held, cycle, now)?;
        if self.store.job_state()? == (JobState::ThresholdExceeded { cycle: held }) {
            self.store.set_job_state(&JobState::Active)?;
        }
        let status = CycleStatus::Completed;
        self.store.finish_cycle(cycle, now, &counts, &status)?;
        Ok(CycleReport {
            cycle,
            kind: CycleKind::Approve,
            counts,
            status,
            watermark: None,
            removing: 0,
            failure_causes: BTreeMap::new(),
        })
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
