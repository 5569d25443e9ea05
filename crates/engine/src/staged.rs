//! The content of a plan held by the change threshold (opaque JSON to the store).

use exo_writeback_core::directory::{AttrChange, AttrValue, ModOp, ObjectModify};
use exo_writeback_core::provisioning::{
    CycleId, ModifiedProperty, SourceIdentity, StagedPlan, StepStatus, TargetIdentity,
    attr_values_serde,
};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::record::{Escrow, Outcome, step};

/// One attribute change of a staged modify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedChange {
    /// Stored as `add`, `delete` or `replace`; any other text does not read back.
    #[serde(with = "op_serde")]
    pub op: ModOp,
    pub attribute: String,
    #[serde(with = "attr_values_serde")]
    pub values: Vec<AttrValue>,
}

/// Everything needed to apply (and log) one held object's plan later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedObject {
    pub cloud_id: String,
    pub source: SourceIdentity,
    pub target: TargetIdentity,
    pub dn: String,
    pub object_guid: Uuid,
    pub removes_values: bool,
    pub changes: Vec<StagedChange>,
    pub modified: Vec<ModifiedProperty>,
}

/// The text a staged change's operation is stored as.
mod op_serde {
    use exo_writeback_core::directory::ModOp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(op: &ModOp, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match op {
            ModOp::Add => "add",
            ModOp::Delete => "delete",
            ModOp::Replace => "replace",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ModOp, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "add" => Ok(ModOp::Add),
            "delete" => Ok(ModOp::Delete),
            "replace" => Ok(ModOp::Replace),
            other => Err(serde::de::Error::custom(format!(
                "unknown operation {other:?} (add, delete or replace)"
            ))),
        }
    }
}

impl StagedObject {
    /// The staged form of a planned write (`None` unless it is a `Disposition::Write` with a
    /// modify): what the threshold stages and what the spill file keeps.
    pub(crate) fn of(p: &crate::evaluate::Processed) -> Option<StagedObject> {
        let crate::evaluate::Disposition::Write { plan, object_guid } = &p.disposition else {
            return None;
        };
        let modify = plan.modify.as_ref()?;
        Some(StagedObject {
            cloud_id: p.cloud_id.clone(),
            source: p.source.clone(),
            target: p.target.clone(),
            dn: plan.dn.clone(),
            object_guid: *object_guid,
            removes_values: plan.removes_values,
            changes: StagedObject::changes_from(modify),
            modified: plan.changes.iter().map(Into::into).collect(),
        })
    }

    pub fn changes_from(modify: &ObjectModify) -> Vec<StagedChange> {
        modify
            .changes
            .iter()
            .map(|c| StagedChange {
                op: c.op,
                attribute: c.attribute.clone(),
                values: c.values.clone(),
            })
            .collect()
    }

    /// The LDAP modify to send.
    pub fn modify(&self) -> ObjectModify {
        ObjectModify {
            dn: self.dn.clone(),
            changes: self
                .changes
                .iter()
                .map(|c| AttrChange {
                    op: c.op,
                    attribute: c.attribute.clone(),
                    values: c.values.clone(),
                })
                .collect(),
        }
    }

    pub fn to_staged_plan(&self) -> Result<StagedPlan, serde_json::Error> {
        Ok(StagedPlan {
            cloud_id: self.cloud_id.clone(),
            object_guid: Some(self.object_guid),
            dn: self.dn.clone(),
            plan: serde_json::to_value(self)?,
        })
    }

    pub fn from_staged_plan(plan: &StagedPlan) -> Result<StagedObject, serde_json::Error> {
        serde_json::from_value(plan.plan.clone())
    }

    /// This object's outcome being built in `cycle` (approve, reject), which takes up the
    /// change `held` staged: its identities, steps so far and the change.
    pub(crate) fn draft(
        &self,
        held: CycleId,
        cycle: CycleId,
        started: Timestamp,
        escrow: Escrow,
    ) -> Outcome {
        let mut draft = Outcome::new(cycle, started, escrow);
        draft.source = self.source.clone();
        draft.target = self.target.clone();
        draft.steps.import = step(StepStatus::Skipped, format!("staged by cycle {held}"));
        draft.steps.scoping = step(StepStatus::Skipped, format!("staged by cycle {held}"));
        draft.steps.matching = step(StepStatus::Success, self.dn.clone());
        draft.modified = self.modified.clone();
        draft
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_objects_round_trip_with_exact_values() {
        let modify = ObjectModify {
            dn: "CN=a,DC=x".into(),
            changes: vec![
                AttrChange {
                    op: ModOp::Delete,
                    attribute: "proxyAddresses".into(),
                    values: vec![AttrValue::Text("smtp:a@x".into())],
                },
                AttrChange {
                    op: ModOp::Replace,
                    attribute: "msExchSafeSendersHash".into(),
                    values: vec![AttrValue::Bytes(vec![0, 159, 255])],
                },
            ],
        };
        let staged = StagedObject {
            cloud_id: "c1".into(),
            source: SourceIdentity::default(),
            target: TargetIdentity::default(),
            dn: modify.dn.clone(),
            object_guid: Uuid::nil(),
            removes_values: true,
            changes: StagedObject::changes_from(&modify),
            modified: vec![],
        };
        let plan = staged.to_staged_plan().expect("serialize");
        let back = StagedObject::from_staged_plan(&plan).expect("deserialize");
        assert_eq!(back, staged);
        assert_eq!(back.modify(), modify);
    }

    #[test]
    fn an_unknown_operation_is_an_error_not_a_guess() {
        let staged = StagedObject {
            cloud_id: "c1".into(),
            source: SourceIdentity::default(),
            target: TargetIdentity::default(),
            dn: "CN=a".into(),
            object_guid: Uuid::nil(),
            removes_values: false,
            changes: vec![StagedChange {
                op: ModOp::Replace,
                attribute: "mail".into(),
                values: vec![],
            }],
            modified: vec![],
        };
        let mut plan = staged.to_staged_plan().expect("serialize");
        plan.plan["changes"][0]["op"] = "merge".into();
        let err = StagedObject::from_staged_plan(&plan).unwrap_err();
        assert!(err.to_string().contains("merge"), "{err}");
    }
}
