//! One object: import, scope, match, plan and the address guard (writes nothing).

use exo_writeback_core::mailbox::{Mailbox, RecipientKind};
use exo_writeback_core::outcome::{OutcomeCode, OutcomeDetail};
use exo_writeback_core::plan::{ObjectPlan, PlanInput, check_address_conflicts, plan_object};
use exo_writeback_core::provisioning::{
    Action, CycleId, JoinUpdate, LogStatus, ObjectOutcome, PinCheck, PinOrigin, SourceIdentity,
    Step, StepStatus, Steps, TargetIdentity, check_pins,
};
use exo_writeback_core::schema::Schema;
use exo_writeback_core::scope::{check_container_scope, evaluate_scope};
use exo_writeback_store::{JoinStore, JournalStore, PinStore};
use jiff::Timestamp;
use uuid::Uuid;

use crate::bulk::Bulk;
use crate::engine::Engine;
use crate::match_index::MatchIndex;
use crate::ports::{Directory, MailboxSource};
use crate::record::{Escrow, Outcome, in_sync, journal_of, ldap_failure, modified_of, step};
use crate::write::WriteItem;

/// What became of one object before writing.
#[derive(Debug, Clone)]
pub enum Disposition {
    Skipped(OutcomeDetail),
    Failed(OutcomeDetail),
    InSync,
    /// Every change planned is pinned (`PinnedByUndo` or `Rejected`): nothing to write.
    Pinned(OutcomeDetail),
    /// Every change left planned is an on-premises edit reported, not corrected
    /// (`DriftDetected`, `drift = "report"`): nothing to write.
    Drifted(OutcomeDetail),
    Write {
        plan: ObjectPlan,
        object_guid: Uuid,
    },
}

/// One object after import, scope, match, plan and the address guard.
#[derive(Debug, Clone)]
pub struct Processed {
    pub cloud_id: String,
    pub when_changed: Option<Timestamp>,
    pub started: Timestamp,
    pub source: SourceIdentity,
    pub target: TargetIdentity,
    pub steps: Steps,
    pub join: JoinUpdate,
    /// The change to the join if the object fails (a new pairing is not stored then).
    pub join_if_failed: JoinUpdate,
    /// A security event of the matching (`SpoofedMatchKey`): the outcome's code when the
    /// object is written or in sync.
    pub security: Option<OutcomeDetail>,
    /// A warning of the plan (`TargetAddressUnexpected`): the outcome's code when the object is
    /// written, unless a security event takes its place.
    pub advisory: Option<OutcomeDetail>,
    /// On-premises edits of attributes the agent wrote (`DriftDetected` when one is left as it
    /// is, `DriftCorrected` when all are written back): the outcome's code when the object is
    /// written, unless a security event takes its place.
    pub drift: Option<OutcomeDetail>,
    pub disposition: Disposition,
    /// The object's pins: those still holding (their attributes taken out of the plan) and
    /// those released because the cloud value changed.
    pub pins: PinCheck,
}

/// The identity of a mailbox: its ExternalDirectoryObjectId, else its primary address.
pub fn cloud_id(mailbox: &Mailbox) -> String {
    if let Some(id) = mailbox
        .external_directory_object_id
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        return id.trim().to_string();
    }
    match (&mailbox.primary_smtp_address, &mailbox.alias) {
        (Some(p), _) => format!("smtp:{}", p.to_lowercase()),
        (None, Some(a)) => format!("alias:{a}"),
        (None, None) => "unknown".into(),
    }
}

pub(crate) fn source_identity(mailbox: &Mailbox) -> SourceIdentity {
    SourceIdentity {
        kind: mailbox.kind,
        external_directory_object_id: mailbox.external_directory_object_id.clone(),
        primary_smtp_address: mailbox.primary_smtp_address.clone(),
        user_principal_name: mailbox.user_principal_name.clone(),
    }
}

impl<S: MailboxSource, D: Directory, St: JoinStore + PinStore + JournalStore> Engine<S, D, St> {
    /// Import, scope, match, plan and guard one mailbox. Writes nothing. `index`: the match
    /// keys of the search scope, read once by an initial or full cycle (else the rules search
    /// per mailbox).
    pub async fn evaluate(
        &self,
        mailbox: &Mailbox,
        schema: &Schema,
        index: Option<&MatchIndex>,
    ) -> Processed {
        let mut one = self
            .evaluate_batch(&[mailbox], schema, index, None, None, None)
            .await;
        one.pop().expect("one mailbox evaluated")
    }

    /// [`Engine::evaluate`] with what the cycle read in bulk ([`Bulk`]).
    pub(crate) async fn evaluate_in(
        &self,
        mailbox: &Mailbox,
        schema: &Schema,
        bulk: Bulk<'_>,
    ) -> Processed {
        let started = Timestamp::now();
        let cloud_id = cloud_id(mailbox);
        let mut p = Processed {
            cloud_id: cloud_id.clone(),
            when_changed: mailbox.when_changed_utc,
            started,
            source: source_identity(mailbox),
            target: TargetIdentity::default(),
            steps: Steps {
                import: step(
                    StepStatus::Success,
                    format!(
                        "read {}{} (ExternalDirectoryObjectId {}, {}, WhenChangedUTC {})",
                        match mailbox.kind {
                            RecipientKind::Mailbox => String::new(),
                            kind => format!("{kind} "),
                        },
                        mailbox
                            .primary_smtp_address
                            .as_deref()
                            .unwrap_or("(no address)"),
                        mailbox
                            .external_directory_object_id
                            .as_deref()
                            .unwrap_or("(none)"),
                        mailbox.recipient_type_details,
                        mailbox
                            .when_changed_utc
                            .map(|t| t.to_string())
                            .unwrap_or_else(|| "(none)".into())
                    ),
                ),
                scoping: Step::not_reached(),
                matching: Step::not_reached(),
                export: Step::not_reached(),
            },
            join: JoinUpdate::Keep,
            join_if_failed: JoinUpdate::Keep,
            security: None,
            advisory: None,
            drift: None,
            disposition: Disposition::InSync,
            pins: PinCheck::default(),
        };
        let in_scope = match evaluate_scope(&self.settings, mailbox) {
            Ok(s) => s,
            Err(skip) => {
                p.steps.scoping = step(StepStatus::Skipped, skip.to_string());
                p.disposition = Disposition::Skipped(skip.outcome());
                return p;
            }
        };
        p.steps.scoping = step(
            StepStatus::Success,
            format!(
                "in scope of {}",
                in_scope
                    .profiles()
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        let computed;
        let attrs = if bulk.attributes.is_empty() {
            computed = self.settings.required_ad_attributes();
            computed.as_slice()
        } else {
            bulk.attributes
        };
        let target = match self.find_target(mailbox, &cloud_id, attrs, bulk).await {
            Ok(r) => r,
            Err(e) => {
                let d = ldap_failure(&e);
                p.steps.matching = step(StepStatus::Failure, d.to_string());
                p.disposition = Disposition::Failed(d);
                return p;
            }
        };
        p.join = target.join;
        p.join_if_failed = target.join_if_failed;
        p.security = target.security;
        let (current, how) = match target.matched {
            Ok(m) => m,
            Err(detail) => {
                // A key not followed (a Warning) writes nothing, as a skip.
                let status = if detail.status() == LogStatus::Failure {
                    StepStatus::Failure
                } else {
                    StepStatus::Skipped
                };
                p.steps.matching = step(status, detail.to_string());
                p.disposition = if status == StepStatus::Skipped {
                    Disposition::Skipped(detail)
                } else {
                    Disposition::Failed(detail)
                };
                return p;
            }
        };
        p.target = TargetIdentity {
            dn: Some(current.dn.clone()),
            object_guid: Some(current.object_guid),
        };
        if let Err(skip) = check_container_scope(&self.settings, &current.dn) {
            p.steps.matching = step(StepStatus::Skipped, skip.to_string());
            p.disposition = Disposition::Skipped(skip.outcome());
            return p;
        }
        let security = p
            .security
            .as_ref()
            .map(|e| format!("; {e}"))
            .unwrap_or_default();
        p.steps.matching = step(
            StepStatus::Success,
            format!("matched {} {how}{security}", current.dn),
        );
        let ctx = self.ctx();
        let unreadable = self.unreadable_names();
        let mut plan = match plan_object(&PlanInput {
            settings: &self.settings,
            scope: &in_scope,
            mailbox,
            current: &current,
            schema,
            ctx: &ctx,
            unreadable: &unreadable,
        }) {
            Ok(plan) => plan,
            Err(f) => {
                let d = f.outcome();
                p.steps.export = step(StepStatus::Failure, d.to_string());
                p.disposition = Disposition::Failed(d);
                return p;
            }
        };
        // A group's membership (`write_membership`): its incremental change joins the plan,
        // so pins, drift, the threshold and the journal treat `member` as any attribute.
        match self
            .membership_step(
                mailbox,
                &cloud_id,
                &current,
                &mut plan,
                &unreadable,
                bulk.matches,
            )
            .await
        {
            Ok(note) => p.steps.matching.details.push_str(&note),
            Err(d) => {
                p.steps.export = step(StepStatus::Failure, d.to_string());
                p.disposition = Disposition::Failed(d);
                return p;
            }
        }
        // Attributes an administrator undid or rejected stay as they are while Exchange
        // Online still holds the value that was undone or rejected.
        let had_changes = !plan.is_in_sync();
        match self.store.pins_of(&current.object_guid) {
            Ok(pins) if pins.is_empty() => {}
            Ok(pins) => {
                p.pins = check_pins(&mut plan, pins, &current, |a| {
                    schema.get(a).map(|s| &s.syntax)
                })
            }
            Err(e) => {
                let d = OutcomeDetail::new(
                    OutcomeCode::StateError,
                    format!("the pins of {} could not be read: {e}", current.dn),
                );
                p.steps.export = step(StepStatus::Failure, d.to_string());
                p.disposition = Disposition::Failed(d);
                return p;
            }
        }
        p.advisory = plan.warnings.first().cloned();
        // On-premises edits of attributes the agent wrote: reported ones leave the plan.
        let before_drift = !plan.is_in_sync();
        match self.check_drift(&mut plan, &current, schema).await {
            Ok(drift) => p.drift = drift.map(|d| d.detail),
            Err(d) => {
                p.steps.export = step(StepStatus::Failure, d.to_string());
                p.disposition = Disposition::Failed(d);
                return p;
            }
        }
        if plan.is_in_sync() {
            if before_drift && let Some(d) = p.drift.clone() {
                p.steps.export = step(StepStatus::Skipped, format!("{d}{}", pin_notes(&p.pins)));
                p.disposition = Disposition::Drifted(d);
            } else if had_changes {
                let d = pinned_detail(&p.pins);
                p.steps.export = step(StepStatus::Skipped, d.to_string());
                p.disposition = Disposition::Pinned(d);
            } else {
                p.steps.export = step(
                    StepStatus::Success,
                    format!("already in sync: nothing to write{}", pin_notes(&p.pins)),
                );
                p.disposition = Disposition::InSync;
            }
            return p;
        }
        if bulk.from_scan {
            // A plan on the scan's objects is never written (`bulk::settled_by_scan`): it is
            // planned and guarded again on objects read fresh.
            p.disposition = Disposition::Write {
                object_guid: current.object_guid,
                plan,
            };
            return p;
        }
        // The duplicate-address guard: a search for the added addresses some object of the
        // forest may hold (all of them without the cycle's address index).
        let mut holders = Vec::new();
        let guarded = match bulk.addresses {
            Some(ix) => ix.maybe_held(&plan.guarded_addresses()),
            None => plan.guarded_addresses(),
        };
        if !guarded.is_empty() {
            match self.directory.address_holders(&guarded).await {
                Ok(h) => holders = h,
                Err(e) => {
                    let d = ldap_failure(&e);
                    p.steps.export = step(StepStatus::Failure, d.to_string());
                    p.disposition = Disposition::Failed(d);
                    return p;
                }
            }
        }
        if let Err(f) = check_address_conflicts(&plan, &holders, &current.dn) {
            let d = f.outcome();
            p.steps.export = step(StepStatus::Failure, d.to_string());
            p.disposition = Disposition::Failed(d);
            return p;
        }
        p.disposition = Disposition::Write {
            object_guid: current.object_guid,
            plan,
        };
        p
    }
}

impl Processed {
    /// This object's outcome being built in `cycle`: its steps so far, target and join,
    /// escrowed under its cloud id.
    fn into_draft(self, cycle: CycleId) -> (Outcome, Disposition) {
        let draft = Outcome {
            cycle,
            started: self.started,
            source: self.source,
            target: self.target,
            steps: self.steps,
            modified: Vec::new(),
            journal: Vec::new(),
            join: self.join,
            escrow: Escrow::Track(self.cloud_id),
            pins: self.pins.update(),
        };
        (draft, self.disposition)
    }

    /// The outcome of an object with nothing to write: skipped, failed before writing, or
    /// already in sync.
    pub(crate) fn not_written(self, cycle: CycleId) -> ObjectOutcome {
        let (if_failed, security) = (self.join_if_failed.clone(), self.security.clone());
        let (mut draft, disposition) = self.into_draft(cycle);
        if matches!(disposition, Disposition::Failed(_)) {
            draft.join = if_failed;
        }
        finish_unwritten(draft, disposition, security)
    }

    /// The outcome a dry run shows: what would be written, nothing journaled.
    pub(crate) fn dry_run(self, cycle: CycleId) -> ObjectOutcome {
        let Disposition::Write { plan, .. } = &self.disposition else {
            return self.not_written(cycle);
        };
        let modified = modified_of(plan);
        let export = step(
            StepStatus::Success,
            format!("dry run: would update {} attribute(s)", plan.changes.len()),
        );
        let detail = self
            .security
            .clone()
            .or(self.drift.clone())
            .or(self.advisory.clone());
        let (mut draft, _) = self.into_draft(cycle);
        draft.modified = modified;
        draft.steps.export = export;
        draft.finish(Action::Update, detail)
    }

    /// The outcome of a planned object the change threshold holds: status `held`, with the
    /// changes it waits to write; nothing is written or journaled, its escrow is left alone.
    pub(crate) fn held(self, cycle: CycleId, threshold: u32) -> ObjectOutcome {
        let notes = pin_notes(&self.pins);
        let security = self.security.clone();
        let (mut draft, disposition) = self.into_draft(cycle);
        let Disposition::Write { plan, .. } = disposition else {
            return finish_unwritten(draft, disposition, security);
        };
        draft.modified = modified_of(&plan);
        draft.escrow = Escrow::Keep;
        let d = OutcomeDetail::new(
            OutcomeCode::Held,
            format!(
                "held by the change threshold ({threshold}): cycle {cycle} would remove values \
                 from more objects; `exo-writeback approve {cycle}` writes this change, \
                 `exo-writeback reject {cycle}` refuses it"
            ),
        );
        draft.steps.export = step(
            StepStatus::Skipped,
            format!(
                "held: {} attribute(s) wait for approve or reject{notes}",
                plan.changes.len()
            ),
        );
        draft.finish(Action::Skip, Some(d))
    }

    /// The write of a planned object: its modify, and its outcome if AD applies it (journal,
    /// `updated …` — with a drift, the on-premises edits corrected or left as they are) or
    /// refuses it. An object with nothing to write gets its final outcome and no modify.
    pub(crate) fn into_write(self, cycle: CycleId) -> WriteItem {
        let id = self.cloud_id.clone();
        let notes = pin_notes(&self.pins);
        let (if_failed, security) = (self.join_if_failed.clone(), self.security.clone());
        let (advisory, drift) = (self.advisory.clone(), self.drift.clone());
        let (mut draft, disposition) = self.into_draft(cycle);
        let (plan, object_guid) = match disposition {
            Disposition::Write { plan, object_guid } => (plan, object_guid),
            other => {
                if matches!(other, Disposition::Failed(_)) {
                    draft.join = if_failed;
                }
                return WriteItem::done(id, finish_unwritten(draft, other, security));
            }
        };
        draft.modified = modified_of(&plan);
        let names = plan
            .changes
            .iter()
            .map(|c| c.attribute.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut success = draft.clone();
        success.journal = journal_of(
            cycle,
            Timestamp::now(),
            object_guid,
            &plan.dn,
            &draft.modified,
        );
        let drift_note = drift.as_ref().map(|d| format!("; {d}")).unwrap_or_default();
        success.steps.export = step(
            StepStatus::Success,
            format!("updated {names}{notes}{drift_note}"),
        );
        // A security event is what the entry is about; then an on-premises edit.
        let success = success.finish(Action::Update, security.or(drift).or(advisory));
        // A refused modify leaves no new join behind.
        draft.join = if_failed;
        match plan.modify {
            Some(modify) => WriteItem {
                id,
                success,
                send: Some((modify, draft)),
            },
            None => WriteItem::done(id, success),
        }
    }
}

/// The outcome of an object that is not written: a skip or failure with its detail, kept by
/// its pins, else nothing to do — with the matching's security event, if any, else "already
/// in sync".
fn finish_unwritten(
    draft: Outcome,
    disposition: Disposition,
    security: Option<OutcomeDetail>,
) -> ObjectOutcome {
    match disposition {
        Disposition::Skipped(d)
        | Disposition::Failed(d)
        | Disposition::Pinned(d)
        | Disposition::Drifted(d) => draft.finish(Action::Skip, Some(d)),
        Disposition::InSync | Disposition::Write { .. } => draft.finish(
            Action::Other,
            security.or_else(|| {
                Some(in_sync(
                    "already in sync: every mapped attribute holds its Exchange Online value",
                ))
            }),
        ),
    }
}

/// Why an object whose every planned change is pinned is left as it is: `Rejected` when a
/// rejection pins one of them, else `PinnedByUndo`.
fn pinned_detail(pins: &PinCheck) -> OutcomeDetail {
    let list = pins
        .kept
        .iter()
        .map(|p| p.describe())
        .collect::<Vec<_>>()
        .join("; ");
    if pins.kept.iter().any(|p| p.origin == PinOrigin::Reject) {
        OutcomeDetail::new(
            OutcomeCode::Rejected,
            format!(
                "not written: {list}; Exchange Online still holds the values that were \
                 rejected{}",
                released_note(pins)
            ),
        )
    } else {
        OutcomeDetail::new(
            OutcomeCode::PinnedByUndo,
            format!(
                "left as undone: {list}; Exchange Online still holds the values that were \
                 undone{}",
                released_note(pins)
            ),
        )
    }
}

/// `; released the pin of …` for the pins whose cloud value changed.
fn released_note(pins: &PinCheck) -> String {
    if pins.released.is_empty() {
        return String::new();
    }
    format!(
        "; released the pin of {} (its Exchange Online value changed)",
        pins.released
            .iter()
            .map(|p| p.attribute.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// What the export step says about pins beside a write (or nothing to write).
pub(crate) fn pin_notes(pins: &PinCheck) -> String {
    let mut out = String::new();
    if !pins.kept.is_empty() {
        out.push_str("; left as they are (pinned): ");
        out.push_str(
            &pins
                .kept
                .iter()
                .map(|p| p.describe())
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    out.push_str(&released_note(pins));
    out
}
