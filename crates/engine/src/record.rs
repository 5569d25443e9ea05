//! The durable outcome of one object: log entry, journal, join and escrow.

use exo_writeback_core::directory::AttrValue;
use exo_writeback_core::outcome::{OutcomeCode, OutcomeDetail};
use exo_writeback_core::plan::ObjectPlan;
use exo_writeback_core::provisioning::{
    Action, CycleId, EscrowFailure, EscrowUpdate, JoinUpdate, JournalRecord, LogEntryId, LogStatus,
    ModifiedProperty, ObjectOutcome, ObjectRef, ProvisioningLogEntry, Reason, Step, StepStatus,
    Steps, TargetIdentity,
};
use exo_writeback_store::prelude::*;
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

use crate::ports::{Directory, DirectoryError, MailboxSource, SourceError};

use crate::engine::Engine;
use crate::evaluate::Disposition;
use crate::evaluate::Processed;
use crate::write::WriteResult;

pub(crate) fn step(status: StepStatus, details: impl Into<String>) -> Step {
    Step {
        status,
        details: details.into(),
    }
}

pub(crate) fn describe_values(values: &[AttrValue]) -> String {
    if values.is_empty() {
        return "(none)".into();
    }
    values
        .iter()
        .map(|v| match v {
            AttrValue::Text(t) => t.clone(),
            AttrValue::Bytes(b) => format!(
                "0x{}",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            ),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The text of a modified property, `old → new`, for tables.
pub fn describe_change(p: &ModifiedProperty) -> String {
    format!("{} → {}", describe_values(&p.old), describe_values(&p.new))
}

pub(crate) fn ldap_failure(e: &DirectoryError) -> OutcomeDetail {
    OutcomeDetail::new(OutcomeCode::LdapError, e.reason())
}

/// The outcome of a mailbox record the source could not read (a property of the wrong JSON
/// type, bytes that are not UTF-8): a Failure entry in the provisioning log, and escrow —
/// retried by its ExternalDirectoryObjectId — when that id was readable. The record is not
/// tracked for the watermark (its WhenChangedUTC is unknown): the watermark may pass it, and
/// escrow or its next change brings it back. Returns the id for the batch and the outcome.
pub(crate) fn unreadable_outcome(e: &SourceError, cycle: CycleId) -> (String, ObjectOutcome) {
    let source = e.record.clone().unwrap_or_default();
    let cloud_id = source
        .external_directory_object_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let detail = OutcomeDetail::new(OutcomeCode::MalformedMailboxRecord, e.message.clone());
    let now = Timestamp::now();
    let escrow = match &cloud_id {
        Some(id) => EscrowUpdate::Failed {
            failure: EscrowFailure {
                cloud_id: id.clone(),
                source: source.clone(),
                target: TargetIdentity::default(),
                error: Reason::from(detail.clone()),
            },
            failed_at: now,
        },
        None => EscrowUpdate::Keep,
    };
    let log = ProvisioningLogEntry {
        id: LogEntryId(Uuid::new_v4()),
        cycle,
        time: now,
        duration: SignedDuration::ZERO,
        source,
        target: TargetIdentity::default(),
        action: Action::Skip,
        status: LogStatus::Failure,
        reason: Some(Reason::from(detail)),
        steps: Steps {
            import: step(StepStatus::Failure, e.message.clone()),
            scoping: Step::not_reached(),
            matching: Step::not_reached(),
            export: Step::not_reached(),
        },
        modified: Vec::new(),
    };
    let id = cloud_id.unwrap_or_else(|| format!("unreadable:{}", log.id));
    (
        id,
        ObjectOutcome {
            log,
            journal: Vec::new(),
            join: JoinUpdate::Keep,
            escrow,
        },
    )
}

pub(crate) fn modified_of(plan: &ObjectPlan) -> Vec<ModifiedProperty> {
    plan.changes
        .iter()
        .map(|c| ModifiedProperty {
            attribute: c.attribute.clone(),
            old: c.old.clone(),
            new: c.new.clone(),
        })
        .collect()
}

impl<S: MailboxSource, D: Directory, St: Store> Engine<S, D, St> {
    /// The durable outcome of one object.
    pub(crate) fn outcome(
        &self,
        mut p: Processed,
        cycle: CycleId,
        result: WriteResult,
        drift_before: Option<Timestamp>,
    ) -> ObjectOutcome {
        let now = Timestamp::now();
        let mut journal = Vec::new();
        let mut modified = Vec::new();
        let (action, detail): (Action, Option<OutcomeDetail>) = match (&p.disposition, &result) {
            (Disposition::Skipped(d), _) => (Action::Skip, Some(d.clone())),
            (Disposition::Failed(d), _) => (Action::Skip, Some(d.clone())),
            (Disposition::InSync, _) => (Action::Other, None),
            (Disposition::Write { plan, object_guid }, WriteResult::Written) => {
                modified = modified_of(plan);
                for c in &plan.changes {
                    journal.push(JournalRecord {
                        cycle,
                        time: now,
                        object_guid: *object_guid,
                        dn: plan.dn.clone(),
                        attribute: c.attribute.clone(),
                        previous: c.old.clone(),
                        new: c.new.clone(),
                    });
                }
                let drift = drift_before.is_some()
                    && self.is_drift(*object_guid, p.when_changed, drift_before);
                let names = plan
                    .changes
                    .iter()
                    .map(|c| c.attribute.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                if drift {
                    p.steps.export = step(
                        StepStatus::Success,
                        format!("DriftCorrected: restored the cloud values of {names}"),
                    );
                    (
                        Action::Update,
                        Some(OutcomeDetail::new(
                            OutcomeCode::DriftCorrected,
                            format!(
                                "on-premises values of {names} differed from Exchange Online and were restored"
                            ),
                        )),
                    )
                } else {
                    p.steps.export = step(StepStatus::Success, format!("updated {names}"));
                    (Action::Update, None)
                }
            }
            (Disposition::Write { plan, .. }, WriteResult::DryRun) => {
                modified = modified_of(plan);
                p.steps.export = step(
                    StepStatus::Success,
                    format!("dry run: would update {} attribute(s)", plan.changes.len()),
                );
                (Action::Update, None)
            }
            (Disposition::Write { plan, .. }, WriteResult::Failed(e)) => {
                modified = modified_of(plan);
                let d = ldap_failure(e);
                p.steps.export = step(StepStatus::Failure, d.to_string());
                (Action::Update, Some(d))
            }
            (Disposition::Write { .. }, WriteResult::NotNeeded) => (Action::Other, None),
        };
        let status = detail.as_ref().map_or(LogStatus::Success, |d| d.status());
        let escrow = match &detail {
            Some(d) if status == LogStatus::Failure => EscrowUpdate::Failed {
                failure: EscrowFailure {
                    cloud_id: p.cloud_id.clone(),
                    source: p.source.clone(),
                    target: p.target.clone(),
                    error: Reason::from(d.clone()),
                },
                failed_at: now,
            },
            _ => EscrowUpdate::Clear {
                cloud_id: p.cloud_id.clone(),
            },
        };
        let duration = now.duration_since(p.started);
        ObjectOutcome {
            log: ProvisioningLogEntry {
                id: LogEntryId(Uuid::new_v4()),
                cycle,
                time: p.started,
                duration,
                source: p.source,
                target: p.target,
                action,
                status,
                reason: detail.map(Reason::from),
                steps: p.steps,
                modified,
            },
            journal,
            join: p.join,
            escrow,
        }
    }

    /// Whether a full reconcile's write corrects on-premises drift: the mailbox has not
    /// changed in Exchange Online since the agent last wrote the object (journal), or —
    /// never written — since before the watermark's window. Only a label for the log.
    pub(crate) fn is_drift(
        &self,
        object_guid: Uuid,
        when_changed: Option<Timestamp>,
        watermark_from: Option<Timestamp>,
    ) -> bool {
        let Some(changed) = when_changed else {
            return false;
        };
        match self.store.journal_for_object(&ObjectRef::Guid(object_guid)) {
            Ok(records) if !records.is_empty() => records.iter().any(|r| r.time > changed),
            _ => watermark_from.is_some_and(|limit| changed < limit),
        }
    }
}
