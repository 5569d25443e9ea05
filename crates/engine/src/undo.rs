//! Restoring the journaled previous values of a cycle or an object. The undo is itself a cycle
//! (kind `Undo`) with log entries and journal, so it can be undone too.

use std::collections::BTreeMap;

use exo_writeback_core::directory::{AttrChange, AttrValue, ModOp, ObjectModify};
use exo_writeback_core::outcome::{OutcomeCode, OutcomeDetail};
use exo_writeback_core::provisioning::{
    Action, CycleCounts, CycleId, CycleKind, ModifiedProperty, ObjectRef, StepStatus,
    TargetIdentity,
};
use exo_writeback_store::Store;
use jiff::Timestamp;
use uuid::Uuid;

use crate::cycle::CycleReport;
use crate::engine::{Engine, stopped};
use crate::error::EngineError;
use crate::evaluate::cloud_id;
use crate::ports::{Directory, MailboxSource};
use crate::record::{Escrow, Outcome, journal_of, ldap_failure, step};
use crate::write::WriteItem;

/// What `undo` restores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoTarget {
    Cycle(CycleId),
    Object(ObjectRef),
}

/// Attribute → values to put back, for one object.
type Restore = Vec<(String, Vec<AttrValue>)>;

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
        let result = self.restore(cycle, &order, restore, &mut counts).await;
        self.close(cycle, &counts, result)?;
        Ok(CycleReport::of(cycle, CycleKind::Undo, counts))
    }

    /// Restores the objects in chunks, like a cycle's write phase: read and plan the chunk,
    /// then write it (intents, modifies, outcomes).
    async fn restore(
        &mut self,
        cycle: CycleId,
        order: &[Uuid],
        mut restore: BTreeMap<Uuid, (String, Restore)>,
        counts: &mut CycleCounts,
    ) -> Result<(), EngineError> {
        for chunk in order.chunks(self.options.batch.max(1)) {
            let mut items = Vec::new();
            for guid in chunk {
                let Some((dn, attrs)) = restore.remove(guid) else {
                    continue;
                };
                items.push(self.plan_undo(cycle, *guid, dn, &attrs, counts).await);
            }
            let written = self.write_chunk(items, Vec::new()).await?;
            counts.written += written.written;
            counts.failed += written.failed;
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
        counts: &mut CycleCounts,
    ) -> WriteItem {
        let names: Vec<String> = attrs.iter().map(|(a, _)| a.clone()).collect();
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
            draft.modified.push(ModifiedProperty {
                attribute: attribute.clone(),
                old: now_values,
                new: previous.clone(),
            });
        }
        if changes.is_empty() {
            counts.unchanged += 1;
            draft.steps.export = step(StepStatus::Success, "already holds the previous values");
            return WriteItem::done(String::new(), draft.finish(Action::Other, None));
        }
        let mut success = draft.clone();
        success.journal = journal_of(cycle, Timestamp::now(), guid, &obj.dn, &draft.modified);
        success.steps.export = step(
            StepStatus::Success,
            format!(
                "restored {}",
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
