//! Drift: one object's planned changes compared with what the agent last wrote (the journal).
//! An on-premises edit of a written attribute, while Exchange Online still maps to the value
//! the agent wrote, is reported (`DriftDetected`, the attribute left as it is) or corrected
//! (`DriftCorrected`, written back), per profile (`core::drift`). Every operation that
//! evaluates an object (cycles, preview, provision) goes through it.

use exo_writeback_core::directory::DirectoryObject;
use exo_writeback_core::drift::{DriftOutcome, apply_drift, detect_drift};
use exo_writeback_core::outcome::{OutcomeCode, OutcomeDetail};
use exo_writeback_core::plan::ObjectPlan;
use exo_writeback_core::provisioning::ObjectRef;
use exo_writeback_core::schema::Schema;
use exo_writeback_store::JournalStore;

use crate::engine::Engine;
use crate::ports::Directory;

impl<S, D: Directory, St: JournalStore> Engine<S, D, St> {
    /// Finds the drifted attributes among `plan`'s changes and applies their profiles' modes
    /// (reported attributes leave the plan). `Ok(None)`: nothing drifted. An unreadable journal
    /// fails the object (nothing is written: the agent cannot tell an edit from a change).
    pub(crate) async fn check_drift(
        &self,
        plan: &mut ObjectPlan,
        current: &DirectoryObject,
        schema: &Schema,
    ) -> Result<Option<DriftOutcome>, OutcomeDetail> {
        if plan.changes.is_empty() {
            return Ok(None);
        }
        let journal = self
            .store
            .journal_for_object(&ObjectRef::Guid(current.object_guid))
            .map_err(|e| {
                OutcomeDetail::new(
                    OutcomeCode::StateError,
                    format!("the journal of {} could not be read: {e}", current.dn),
                )
            })?;
        if journal.is_empty() {
            return Ok(None);
        }
        let mappings = &self.settings.mappings;
        let mut drifts = detect_drift(
            plan,
            &journal,
            |a| schema.get(a).map(|s| &s.syntax),
            |a| self.settings.drift.mode_for(mappings, a),
        );
        if drifts.is_empty() {
            return Ok(None);
        }
        // When and where: only a directory serving msDS-ReplAttributeMetaData says; without
        // it the drift is reported all the same.
        let names: Vec<String> = drifts.iter().map(|d| d.attribute.clone()).collect();
        match self.directory.attribute_origins(&current.dn, &names).await {
            Ok(origins) => {
                for d in &mut drifts {
                    d.origin = origins
                        .iter()
                        .find(|o| o.attribute.eq_ignore_ascii_case(&d.attribute))
                        .cloned();
                }
            }
            Err(e) => {
                tracing::debug!(dn = %current.dn, error = %e, "msDS-ReplAttributeMetaData could not be read")
            }
        }
        for d in &drifts {
            tracing::warn!(
                dn = %current.dn,
                mode = d.mode.as_str(),
                "on-premises edit of a written attribute: {}",
                d.describe()
            );
        }
        Ok(apply_drift(plan, &drifts))
    }
}
