//! Restoring the journaled previous values of a cycle or an object. The undo is itself a cycle
//! (kind `Undo`) with log entries and journal, so it can be undone too.
//!
//! Exchange Online still holds the values that were undone, so each restored attribute is
//! pinned (`core::provisioning::Pin`) with the value the undone change wrote: cycles leave it
//! alone until Exchange Online maps to something else, or `exo-writeback unpin` releases it.
//! Undoing an undo writes the cloud values back and releases those pins instead.

use std::collections::BTreeMap;

use exo_writeback_core::directory::{AttrChange, AttrValue, ModOp, ObjectModify};
use exo_writeback_core::membership::{MEMBER_ATTRIBUTE, restore_changes, same_members};
use exo_writeback_core::outcome::{OutcomeCode, OutcomeDetail};
use exo_writeback_core::provisioning::{
    Action, CycleCounts, CycleId, CycleKind, ModifiedProperty, ObjectRef, Pin, PinCount, PinKey,
    PinOrigin, PinUpdate, StepStatus, TargetIdentity,
};
use exo_writeback_store::Store;
use jiff::Timestamp;
use uuid::Uuid;

use crate::cycle::CycleReport;
use crate::engine::{Engine, stopped};
use crate::error::EngineError;
use crate::evaluate::cloud_id;
use crate::ports::{Directory, MailboxSource};
use crate::record::{Escrow, Outcome, in_sync, journal_of, ldap_failure, step};
use crate::write::WriteItem;

/// What `undo` restores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoTarget {
    Cycle(CycleId),
    Object(ObjectRef),
}

/// One attribute to restore: the values to put back, and those the undone change wrote (the
/// cloud's, which the pin holds back).
struct Restored {
    attribute: String,
    previous: Vec<AttrValue>,
    undone: Vec<AttrValue>,
}

/// What undo restores for one object.
type Restore = Vec<Restored>;

/// What an undo does to the pins of the attributes it restores.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pinning {
    /// Pin them: Exchange Online still holds the values undone.
    Set,
    /// Release them: undoing an undo writes the cloud values back.
    Release,
}

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
        let bare = exo_writeback_core::mailbox::bare_cloud_id(id);
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
        let Some(first) = records.first() else {
            return Err(EngineError::NothingToUndo(match target {
                UndoTarget::Cycle(c) => format!("cycle {c} wrote nothing to AD"),
                UndoTarget::Object(ObjectRef::Guid(g)) => {
                    format!("no change to the object with objectGUID {g} is journaled")
                }
                UndoTarget::Object(ObjectRef::Dn(dn)) => {
                    format!("no change to {dn} is journaled")
                }
            }));
        };
        let pinning = match self.store.cycle(first.cycle)? {
            Some(c) if c.kind == CycleKind::Undo => Pinning::Release,
            _ => Pinning::Set,
        };
        // Per object (in journal order), per attribute: the oldest previous value wins, the
        // newest value written is the one undone (records are newest first).
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
                .find(|a| a.attribute.eq_ignore_ascii_case(&r.attribute))
            {
                Some(slot) => slot.previous = r.previous.clone(),
                None => entry.1.push(Restored {
                    attribute: r.attribute.clone(),
                    previous: r.previous.clone(),
                    undone: r.new.clone(),
                }),
            }
        }
        let cycle = self.store.begin_cycle(CycleKind::Undo, Timestamp::now())?;
        let objects = order.len() as u64;
        let mut counts = CycleCounts {
            imported: objects,
            in_scope: objects,
            ..CycleCounts::default()
        };
        let mut report = CycleReport::of(cycle, CycleKind::Undo, counts);
        let result = self
            .restore(cycle, &order, restore, pinning, &mut report)
            .await;
        counts = report.counts;
        counts.pending = objects.saturating_sub(counts.written + counts.unchanged + counts.failed);
        report.counts = counts;
        self.close(cycle, &counts, result)?;
        Ok(report)
    }

    /// Restores the objects in chunks, like a cycle's write phase: read and plan the chunk,
    /// then write it (intents, modifies, outcomes).
    async fn restore(
        &mut self,
        cycle: CycleId,
        order: &[Uuid],
        mut restore: BTreeMap<Uuid, (String, Restore)>,
        pinning: Pinning,
        report: &mut CycleReport,
    ) -> Result<(), EngineError> {
        for chunk in order.chunks(self.options.batch.max(1)) {
            let mut items = Vec::new();
            for guid in chunk {
                let Some((dn, attrs)) = restore.remove(guid) else {
                    continue;
                };
                let item = self.plan_undo(cycle, *guid, dn, &attrs, pinning, &mut report.counts);
                items.push(item.await);
            }
            let written = self.write_chunk(items, Vec::new()).await?;
            report.counts.written += written.written;
            report.counts.failed += written.failed;
            for o in &written.outcomes {
                report.pins_set.attributes += o.pins.set.len() as u64;
                report.pins_set.objects += u64::from(!o.pins.set.is_empty());
                report.pins_released += o.pins.release.len() as u64;
            }
            if let Some(stop) = written.stopped {
                return Err(stopped(cycle, stop));
            }
        }
        Ok(())
    }

    /// Reads one object for undo and plans its restore: the modify to send (if any) and the
    /// outcome it has if the modify succeeds, or the final outcome when there is nothing to
    /// send (already restored, gone, unreadable). An undo restores objects, not mailboxes: no
    /// cloud id, no join, no escrow.
    async fn plan_undo(
        &self,
        cycle: CycleId,
        guid: Uuid,
        dn: String,
        attrs: &Restore,
        pinning: Pinning,
        counts: &mut CycleCounts,
    ) -> WriteItem {
        let names: Vec<String> = attrs.iter().map(|a| a.attribute.clone()).collect();
        let mut draft = Outcome::new(cycle, Timestamp::now(), Escrow::Keep);
        draft.steps.import = step(StepStatus::Skipped, "undo restores journaled values");
        draft.steps.scoping = step(StepStatus::Skipped, "");
        draft.target = TargetIdentity {
            dn: Some(dn.clone()),
            object_guid: Some(guid),
        };
        let obj = match self.directory.read_by_guid(&guid, &names).await {
            Ok(Some(obj)) => obj,
            found => {
                counts.failed += 1;
                let d = match found {
                    Err(e) => ldap_failure(&e),
                    _ => OutcomeDetail::new(
                        OutcomeCode::TargetNotFound,
                        format!("{dn} (objectGUID {guid}) no longer exists"),
                    ),
                };
                draft.steps.matching = step(StepStatus::Failure, d.to_string());
                return WriteItem::done(String::new(), draft.finish(Action::Other, Some(d)));
            }
        };
        draft.steps.matching = step(
            StepStatus::Success,
            format!("found {} by objectGUID {guid}", obj.dn),
        );
        draft.pins = self.undo_pins(cycle, guid, &obj.dn, attrs, pinning);
        let pin_note = match pinning {
            Pinning::Set => "; pinned until its Exchange Online value changes",
            Pinning::Release => "; the pins of the undone undo are released",
        };
        let mut changes = Vec::new();
        for a in attrs {
            let now_values = obj.attributes.get(&a.attribute).to_vec();
            // A group's members: the list put back exactly, by single deletes and adds (a
            // replace of a 10,000-value list is what membership writing never sends).
            let members = a.attribute.eq_ignore_ascii_case(MEMBER_ATTRIBUTE);
            if now_values == a.previous || members && same_members(&now_values, &a.previous) {
                continue;
            }
            if members {
                changes.extend(restore_changes(&now_values, &a.previous));
            } else {
                changes.push(AttrChange {
                    op: ModOp::Replace,
                    attribute: a.attribute.clone(),
                    values: a.previous.clone(),
                });
            }
            draft.modified.push(ModifiedProperty {
                attribute: a.attribute.clone(),
                old: now_values,
                new: a.previous.clone(),
            });
        }
        if changes.is_empty() {
            counts.unchanged += 1;
            let what = format!("already holds the previous values{pin_note}");
            draft.steps.export = step(StepStatus::Success, what.clone());
            return WriteItem::done(
                String::new(),
                draft.finish(Action::Other, Some(in_sync(what))),
            );
        }
        let mut success = draft.clone();
        success.journal = journal_of(cycle, Timestamp::now(), guid, &obj.dn, &draft.modified);
        success.steps.export = step(
            StepStatus::Success,
            format!(
                "restored {}{pin_note}",
                draft
                    .modified
                    .iter()
                    .map(|m| m.attribute.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        let modify = ObjectModify {
            dn: obj.dn.clone(),
            changes,
        };
        WriteItem {
            id: String::new(),
            success: success.finish(Action::Update, None),
            send: Some((modify, draft)),
        }
    }
}

impl<S, D, St> Engine<S, D, St> {
    /// The pins an undo sets on (or releases from) the attributes it restores of one object.
    fn undo_pins(
        &self,
        cycle: CycleId,
        guid: Uuid,
        dn: &str,
        attrs: &Restore,
        pinning: Pinning,
    ) -> PinUpdate {
        match pinning {
            Pinning::Release => PinUpdate {
                set: Vec::new(),
                release: attrs
                    .iter()
                    .map(|a| PinKey {
                        object_guid: guid,
                        attribute: a.attribute.clone(),
                    })
                    .collect(),
            },
            Pinning::Set => PinUpdate {
                set: attrs
                    .iter()
                    .map(|a| Pin {
                        object_guid: guid,
                        dn: dn.to_string(),
                        cloud_id: None,
                        primary_smtp_address: None,
                        attribute: a.attribute.clone(),
                        cloud_value: a.undone.clone(),
                        origin: PinOrigin::Undo,
                        cycle,
                        at: Timestamp::now(),
                        by: self.operator.clone(),
                        note: None,
                    })
                    .collect(),
                release: Vec::new(),
            },
        }
    }
}

/// `3 attributes on 2 objects` (singular for one).
pub fn describe_pins(count: PinCount) -> String {
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{} on {}",
        plural(count.attributes, "attribute", "attributes"),
        plural(count.objects, "object", "objects")
    )
}
