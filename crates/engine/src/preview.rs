//! What the next cycle would write, and the changes a held cycle waits to apply.

use std::collections::HashSet;

use exo_writeback_core::outcome::OutcomeCode;
use exo_writeback_core::provisioning::{CycleId, CycleKind, JobState, ModifiedProperty};
use exo_writeback_store::{JobStore, JoinStore, JournalStore, PinStore, StagingStore};
use futures::StreamExt;

use crate::address_index::Claims;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::evaluate::{Disposition, Processed, cloud_id};
use crate::options::CycleMode;
use crate::ports::{Directory, MailboxSource};
use crate::record::modified_of;
use crate::staged::StagedObject;

/// One object of a preview.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PreviewItem {
    pub cloud_id: String,
    pub primary_smtp_address: Option<String>,
    pub dn: Option<String>,
    /// `Updated` (would be written), `Held` (waits for approval), or the skip/failure code.
    pub code: OutcomeCode,
    pub reason: Option<String>,
    pub removes_values: bool,
    pub changes: Vec<ModifiedProperty>,
}

/// What the next cycle would do, and the changes a held cycle waits to apply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Preview {
    pub kind: String,
    pub items: Vec<PreviewItem>,
    /// Objects the next cycle would write.
    pub would_write: u64,
    /// Of those, how many remove values (threshold count).
    pub removing: u64,
    pub threshold: u32,
    pub would_be_held: bool,
    /// A held cycle and its staged changes.
    pub held: Option<HeldChanges>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HeldChanges {
    pub cycle: CycleId,
    pub items: Vec<PreviewItem>,
}

impl PreviewItem {
    /// The preview of one evaluated object (`None`: in sync, nothing to show).
    fn of(p: &Processed) -> Option<PreviewItem> {
        let (code, reason, removes, changes) = match &p.disposition {
            // In sync, but the matching had a security event: shown.
            Disposition::InSync => {
                let event = p.security.as_ref()?;
                (event.code, Some(event.reason.clone()), false, Vec::new())
            }
            Disposition::Skipped(d)
            | Disposition::Failed(d)
            | Disposition::Pinned(d)
            | Disposition::Drifted(d) => (d.code, Some(d.reason.clone()), false, Vec::new()),
            Disposition::Write { plan, .. } => (
                p.security
                    .as_ref()
                    .or(p.drift.as_ref())
                    .or(p.advisory.as_ref())
                    .map_or(OutcomeCode::Updated, |e| e.code),
                p.security
                    .as_ref()
                    .or(p.drift.as_ref())
                    .or(p.advisory.as_ref())
                    .map(|e| e.reason.clone()),
                plan.removes_values,
                modified_of(plan),
            ),
        };
        Some(PreviewItem {
            cloud_id: p.cloud_id.clone(),
            primary_smtp_address: p.source.primary_smtp_address.clone(),
            dn: p.target.dn.clone(),
            code,
            reason,
            removes_values: removes,
            changes,
        })
    }
}

impl<
    S: MailboxSource,
    D: Directory,
    St: JobStore + JoinStore + StagingStore + PinStore + JournalStore,
> Engine<S, D, St>
{
    /// What the next cycle would write, per object and attribute; writes nothing (not even to
    /// the store). Also lists the changes of a held cycle.
    pub async fn preview(&self, mode: CycleMode) -> Result<Preview, EngineError> {
        let (kind, previous) = self.next_kind(mode)?;
        let schema = self.schema().await?;
        // As the cycle: an initial or full cycle's probe evaluates the first objects of its
        // scan (`read_rights.rs`), and is done before anything is evaluated.
        let (index, addresses) = if matches!(kind, CycleKind::Initial | CycleKind::FullReconcile) {
            let (samples, sampled) = crate::read_rights::scan_samples();
            let (scans, _) = futures::join!(
                self.load_scans(kind == CycleKind::FullReconcile, Some(samples)),
                self.probe_scan_samples(sampled)
            );
            scans
        } else {
            self.probe_read_rights(&[]).await;
            (None, None)
        };
        let mut claims = Claims::default();
        let mut stream = self.stream_for(kind, previous.as_ref());
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        let (mut would_write, mut removing) = (0u64, 0u64);
        while let Some(item) = stream.next().await {
            let mailbox = match item {
                Ok(m) => m,
                Err(e) if e.is_per_record() => {
                    let record = e.record.clone().unwrap_or_default();
                    items.push(PreviewItem {
                        cloud_id: record.external_directory_object_id.unwrap_or_default(),
                        primary_smtp_address: record.primary_smtp_address,
                        dn: None,
                        code: OutcomeCode::MalformedMailboxRecord,
                        reason: Some(e.message),
                        removes_values: false,
                        changes: Vec::new(),
                    });
                    continue;
                }
                Err(e) => return Err(EngineError::Source(e)),
            };
            if !seen.insert(cloud_id(&mailbox)) {
                continue;
            }
            let Some(mut p) = self
                .evaluate_batch(
                    &[&mailbox],
                    &schema,
                    index.as_ref(),
                    addresses.as_ref(),
                    None,
                    None,
                )
                .await
                .pop()
            else {
                continue;
            };
            self.claim(&mut claims, &mut p).await;
            if let Disposition::Write { plan, .. } = &p.disposition {
                would_write += 1;
                // As the cycle counts it: a group's removed members one by one.
                removing += exo_writeback_core::plan::removal_count(plan) as u64;
            }
            items.extend(PreviewItem::of(&p));
        }
        drop(stream);
        let held = match self.store.job_state()? {
            JobState::ThresholdExceeded { cycle } => Some(self.held_changes(cycle)?),
            _ => match self.store.pending_staged_cycles()?.last() {
                Some(c) => Some(self.held_changes(*c)?),
                None => None,
            },
        };
        Ok(Preview {
            kind: kind.as_str().to_string(),
            items,
            would_write,
            removing,
            threshold: self.settings.threshold,
            would_be_held: removing > u64::from(self.settings.threshold),
            held,
        })
    }

    pub(crate) fn held_changes(&self, cycle: CycleId) -> Result<HeldChanges, EngineError> {
        let staged = self
            .store
            .staged_changes(cycle)?
            .ok_or_else(|| EngineError::NotHeld {
                cycle,
                why: String::new(),
            })?;
        let mut items = Vec::new();
        for plan in &staged.plans {
            let obj =
                StagedObject::from_staged_plan(plan).map_err(|e| EngineError::StagedPlan {
                    cycle,
                    problem: e.to_string(),
                })?;
            items.push(PreviewItem {
                cloud_id: obj.cloud_id,
                primary_smtp_address: obj.source.primary_smtp_address,
                dn: Some(obj.dn),
                code: OutcomeCode::Held,
                reason: None,
                removes_values: obj.removes_values,
                changes: obj.modified,
            });
        }
        Ok(HeldChanges { cycle, items })
    }
}
