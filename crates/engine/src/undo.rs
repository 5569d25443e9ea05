//! Restoring the journaled previous values of a cycle or an object.

use std::collections::BTreeMap;

use exo_writeback_core::directory::{AttrChange, AttrValue, ModOp, ObjectModify};
use exo_writeback_core::outcome::{OutcomeCode, OutcomeDetail};
use exo_writeback_core::provisioning::{
    Action, CycleCounts, CycleId, CycleKind, CycleStatus, EscrowUpdate, JoinUpdate, JournalRecord,
    LogEntryId, LogStatus, ModifiedProperty, ObjectOutcome, ObjectRef, ProvisioningLogEntry,
    Reason, SourceIdentity, Step, StepStatus, Steps, TargetIdentity,
};
use exo_writeback_store::prelude::*;
use jiff::Timestamp;
use uuid::Uuid;

use crate::ports::{Directory, MailboxSource};

use crate::cycle::CycleReport;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::evaluate::cloud_id;
use crate::record::ldap_failure;
use crate::record::step;

/// What `undo` restores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoTarget {
    Cycle(CycleId),
    Object(ObjectRef),
}

/// Attribute → values to put back, for one object.
pub(crate) type Restore = Vec<(String, Vec<AttrValue>)>;

impl<S: MailboxSource, D: Directory, St: Store> Engine<S, D, St> {
    /// Resolve an identity (objectGUID, DN, ExternalDirectoryObjectId, `User_<id>`, UPN or
    /// address) to the AD object journaled for it.
    pub async fn object_ref(&self, identity: &str) -> Result<ObjectRef, EngineError> {
        let id = identity.trim();
        if let Ok(guid) = Uuid::parse_str(id)
            && self.store.join(id)?.is_none()
        {
            return Ok(ObjectRef::Guid(guid));
        }
        if id.contains('=') && exo_writeback_core::ldap_text::Dn::parse(id).is_ok() {
            return Ok(ObjectRef::Dn(id.to_string()));
        }
        let bare = id.strip_prefix("User_").unwrap_or(id);
        if let Some(join) = self.store.join(bare)? {
            return Ok(ObjectRef::Guid(join.object_guid));
        }
        if let Some(m) = self.source.get(bare).await.map_err(EngineError::Source)?
            && let Some(join) = self.store.join(&cloud_id(&m))?
        {
            return Ok(ObjectRef::Guid(join.object_guid));
        }
        Err(EngineError::NothingToUndo(format!(
            "no AD object is known for {identity:?}"
        )))
    }

    /// Reads one object for undo and plans its restore: the modify to send (if any) and the
    /// outcome it has if the modify succeeds, or the final outcome when there is nothing to
    /// send (already restored, gone, unreadable).
    pub(crate) async fn plan_undo(
        &self,
        cycle: CycleId,
        guid: Uuid,
        dn: String,
        attrs: &Restore,
        counts: &mut CycleCounts,
    ) -> (Option<ObjectModify>, ObjectOutcome) {
        let started = Timestamp::now();
        let names: Vec<String> = attrs.iter().map(|(a, _)| a.clone()).collect();
        let current = self.directory.read_by_guid(&guid, &names).await;
        let mut steps = Steps {
            import: step(StepStatus::Skipped, "undo restores journaled values"),
            scoping: step(StepStatus::Skipped, ""),
            matching: Step::not_reached(),
            export: Step::not_reached(),
        };
        let target = TargetIdentity {
            dn: Some(dn.clone()),
            object_guid: Some(guid),
        };
        let mut modified = Vec::new();
        let mut journal = Vec::new();
        let mut modify = None;
        let (status, reason) = match current {
            Ok(Some(obj)) => {
                steps.matching = step(
                    StepStatus::Success,
                    format!("found {} by objectGUID {guid}", obj.dn),
                );
                let mut changes = Vec::new();
                for (attribute, previous) in attrs {
                    let now_values = obj.attributes.get(attribute).to_vec();
                    if now_values == *previous {
                        continue;
                    }
                    changes.push(AttrChange {
                        op: ModOp::Replace,
                        attribute: attribute.clone(),
                        values: previous.clone(),
                    });
                    modified.push(ModifiedProperty {
                        attribute: attribute.clone(),
                        old: now_values.clone(),
                        new: previous.clone(),
                    });
                }
                if changes.is_empty() {
                    counts.unchanged += 1;
                    steps.export = step(StepStatus::Success, "already holds the previous values");
                } else {
                    let now = Timestamp::now();
                    for m in &modified {
                        journal.push(JournalRecord {
                            cycle,
                            time: now,
                            object_guid: guid,
                            dn: obj.dn.clone(),
                            attribute: m.attribute.clone(),
                            previous: m.old.clone(),
                            new: m.new.clone(),
                        });
                    }
                    steps.export = step(
                        StepStatus::Success,
                        format!(
                            "restored {}",
                            modified
                                .iter()
                                .map(|m| m.attribute.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                    modify = Some(ObjectModify {
                        dn: obj.dn.clone(),
                        changes,
                    });
                }
                (LogStatus::Success, None)
            }
            Ok(None) => {
                counts.failed += 1;
                let d = OutcomeDetail::new(
                    OutcomeCode::TargetNotFound,
                    format!("{dn} (objectGUID {guid}) no longer exists"),
                );
                steps.matching = step(StepStatus::Failure, d.to_string());
                (LogStatus::Failure, Some(Reason::from(d)))
            }
            Err(e) => {
                counts.failed += 1;
                let d = ldap_failure(&e);
                steps.matching = step(StepStatus::Failure, d.to_string());
                (LogStatus::Failure, Some(Reason::from(d)))
            }
        };
        let outcome = ObjectOutcome {
            log: ProvisioningLogEntry {
                id: LogEntryId(Uuid::new_v4()),
                cycle,
                time: started,
                duration: Timestamp::now().duration_since(started),
                source: SourceIdentity::default(),
                target,
                action: if modified.is_empty() {
                    Action::Other
                } else {
                    Action::Update
                },
                status,
                reason,
                steps,
                modified,
            },
            journal,
            join: JoinUpdate::Keep,
            escrow: EscrowUpdate::Keep,
        };
        (modify, outcome)
    }

    /// Restore the journaled previous values of a cycle, or of an object's latest written
    /// cycle. The undo is itself a cycle (kind `Undo`) with log entries and journal.
    pub async fn undo(&mut self, target: UndoTarget) -> Result<CycleReport, EngineError> {
        // First log what an interrupted cycle applied, so its journal can be undone too.
        self.reconcile_intents(None).await?;
        let records = match &target {
            UndoTarget::Cycle(c) => self.store.journal_for_cycle(*c)?,
            UndoTarget::Object(r) => {
                let all = self.store.journal_for_object(r)?;
                match all.first().map(|r| r.cycle) {
                    Some(latest) => all.into_iter().filter(|r| r.cycle == latest).collect(),
                    None => Vec::new(),
                }
            }
        };
        if records.is_empty() {
            return Err(EngineError::NothingToUndo(match target {
                UndoTarget::Cycle(c) => format!("cycle {c} wrote nothing to AD"),
                UndoTarget::Object(r) => format!("no journaled change for {r:?}"),
            }));
        }
        // Per object (in journal order), per attribute: the oldest previous value wins
        // (records are newest first).
        let mut order: Vec<Uuid> = Vec::new();
        let mut restore: BTreeMap<Uuid, (String, Restore)> = BTreeMap::new();
        for r in &records {
            if !restore.contains_key(&r.object_guid) {
                order.push(r.object_guid);
            }
            let entry = restore
                .entry(r.object_guid)
                .or_insert_with(|| (r.dn.clone(), Vec::new()));
            match entry
                .1
                .iter_mut()
                .find(|(a, _)| a.eq_ignore_ascii_case(&r.attribute))
            {
                Some(slot) => slot.1 = r.previous.clone(),
                None => entry.1.push((r.attribute.clone(), r.previous.clone())),
            }
        }
        let cycle = self.store.begin_cycle(CycleKind::Undo, Timestamp::now())?;
        let mut counts = CycleCounts::default();
        // In chunks, like a cycle's write phase: read and plan the chunk, commit the intents of
        // its modifies, send them, commit the outcomes with the intents' deletion.
        for chunk in order.chunks(self.options.batch.max(1)) {
            let mut items = Vec::new();
            for guid in chunk {
                let Some((dn, attrs)) = restore.remove(guid) else {
                    continue;
                };
                items.push(self.plan_undo(cycle, *guid, dn, &attrs, &mut counts).await);
            }
            // An undo restores objects, not mailboxes: no cloud id, no join, no escrow.
            let items = items
                .into_iter()
                .map(|(modify, outcome)| (String::new(), modify, outcome))
                .collect();
            self.write_chunk(items, false, &mut counts).await?;
        }
        let status = CycleStatus::Completed;
        self.store
            .finish_cycle(cycle, Timestamp::now(), &counts, &status)?;
        Ok(CycleReport {
            cycle,
            kind: CycleKind::Undo,
            counts,
            status,
            watermark: None,
            removing: 0,
            failure_causes: BTreeMap::new(),
        })
    }
}
