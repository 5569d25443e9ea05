//! A provisioning log entry as the API shows it: the fields of the Graph API's
//! `provisioningObjectSummary` an Entra administrator knows (`activityDateTime`, `cycleId`,
//! `provisioningAction`, `provisioningStatusInfo`, `sourceIdentity`, `targetIdentity`,
//! `provisioningSteps`, `modifiedProperties`), from the agent's own entry.

use exo_writeback_core::directory::AttrValue;
use exo_writeback_core::provisioning::{
    Action, ModifiedProperty, ProvisioningLogEntry, Step, StepStatus,
};
use exo_writeback_engine::StepKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One object in one cycle (`provisioningObjectSummary`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    /// The entry's id (a UUID).
    pub id: String,
    /// When the object's processing started (RFC 3339).
    pub activity_date_time: String,
    pub cycle_id: i64,
    pub duration_in_milliseconds: i64,
    /// `update` (written, or would be), `other` (in sync, or skipped).
    pub provisioning_action: String,
    /// The agent's own action: `Update`, `Other` (in sync) or `Skip`.
    pub action: String,
    pub provisioning_status_info: StatusInfo,
    pub source_identity: Identity,
    pub target_identity: Identity,
    pub source_system: System,
    pub target_system: System,
    /// Import, scoping, matching, export — in order.
    pub provisioning_steps: Vec<ProvisioningStep>,
    pub modified_properties: Vec<ModifiedPropertyView>,
}

/// `provisioningStatusInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusInfo {
    /// `success`, `skipped`, `failure`, `warning` or `held`.
    pub status: String,
    pub error_information: Option<ErrorInformation>,
}

/// Why an object was skipped or failed, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorInformation {
    /// A stable code: `NotInScope`, `TargetNotFound`, `SchemaConstraint` …
    pub error_code: String,
    pub reason: String,
    pub recommended_resolution: String,
}

/// A side's identity of the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// ExternalDirectoryObjectId (source) or objectGUID (target).
    pub id: Option<String>,
    /// Primary SMTP address (source) or DN (target).
    pub display_name: Option<String>,
    /// The mailbox's UserPrincipalName (source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    /// `Mailbox` or `user`.
    pub identity_type: String,
}

/// A system the entry spans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct System {
    pub display_name: String,
}

/// One step (`provisioningStep`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningStep {
    pub name: String,
    /// `import`, `scoping`, `matching` or `export`.
    pub provisioning_step_type: String,
    /// `success`, `failure` or `skipped`.
    pub status: String,
    pub description: String,
}

/// One attribute's values before and after (`modifiedProperty`), exact values beside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModifiedPropertyView {
    pub display_name: String,
    /// The old values as text (`; `-separated; bytes in base64).
    pub old_value: String,
    pub new_value: String,
    pub old_values: Vec<Value>,
    pub new_values: Vec<Value>,
}

/// An attribute value: text, or bytes in base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Value {
    Text(String),
    Bytes { base64: String },
}

impl From<&AttrValue> for Value {
    fn from(v: &AttrValue) -> Value {
        use base64::Engine as _;
        match v {
            AttrValue::Text(t) => Value::Text(t.clone()),
            AttrValue::Bytes(b) => Value::Bytes {
                base64: base64::engine::general_purpose::STANDARD.encode(b),
            },
        }
    }
}

fn text(values: &[Value]) -> String {
    values
        .iter()
        .map(|v| match v {
            Value::Text(t) => t.clone(),
            Value::Bytes { base64 } => format!("base64:{base64}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<&ModifiedProperty> for ModifiedPropertyView {
    fn from(m: &ModifiedProperty) -> ModifiedPropertyView {
        let old_values: Vec<Value> = m.old.iter().map(Value::from).collect();
        let new_values: Vec<Value> = m.new.iter().map(Value::from).collect();
        ModifiedPropertyView {
            display_name: m.attribute.clone(),
            old_value: text(&old_values),
            new_value: text(&new_values),
            old_values,
            new_values,
        }
    }
}

impl ProvisioningStep {
    /// One step of an entry, named as in `provisioningSteps`.
    pub fn of(kind: exo_writeback_engine::StepKind, s: &Step) -> ProvisioningStep {
        match kind {
            StepKind::Import => step("Import from Exchange Online", "import", s),
            StepKind::Scoping => step("Determine if in scope", "scoping", s),
            StepKind::Matching => step("Match in Active Directory", "matching", s),
            StepKind::Export => step("Perform action", "export", s),
        }
    }
}

fn step(name: &str, kind: &str, s: &Step) -> ProvisioningStep {
    ProvisioningStep {
        name: name.to_string(),
        provisioning_step_type: kind.to_string(),
        status: match s.status {
            StepStatus::Success => "success",
            StepStatus::Failure => "failure",
            StepStatus::Skipped => "skipped",
        }
        .to_string(),
        description: s.details.clone(),
    }
}

impl From<&ProvisioningLogEntry> for LogEntry {
    fn from(e: &ProvisioningLogEntry) -> LogEntry {
        LogEntry {
            id: e.id.to_string(),
            activity_date_time: e.time.to_string(),
            cycle_id: e.cycle.0,
            duration_in_milliseconds: e.duration.as_millis() as i64,
            provisioning_action: match e.action {
                Action::Update => "update",
                Action::Other | Action::Skip => "other",
            }
            .to_string(),
            action: match e.action {
                Action::Update => "Update",
                Action::Other => "Other",
                Action::Skip => "Skip",
            }
            .to_string(),
            provisioning_status_info: StatusInfo {
                status: e.status.as_str().to_string(),
                error_information: e.reason.as_ref().map(|r| ErrorInformation {
                    error_code: r.code.to_string(),
                    reason: r.message.clone(),
                    recommended_resolution: r.recommended_action.clone(),
                }),
            },
            source_identity: Identity {
                id: e.source.external_directory_object_id.clone(),
                display_name: e.source.primary_smtp_address.clone(),
                user_principal_name: e.source.user_principal_name.clone(),
                identity_type: "Mailbox".into(),
            },
            target_identity: Identity {
                id: e.target.object_guid.map(|g| g.to_string()),
                display_name: e.target.dn.clone(),
                user_principal_name: None,
                identity_type: "user".into(),
            },
            source_system: System {
                display_name: "Exchange Online".into(),
            },
            target_system: System {
                display_name: "Active Directory".into(),
            },
            provisioning_steps: vec![
                ProvisioningStep::of(StepKind::Import, &e.steps.import),
                ProvisioningStep::of(StepKind::Scoping, &e.steps.scoping),
                ProvisioningStep::of(StepKind::Matching, &e.steps.matching),
                ProvisioningStep::of(StepKind::Export, &e.steps.export),
            ],
            modified_properties: e.modified.iter().map(Into::into).collect(),
        }
    }
}

/// A page of log entries, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogPage {
    pub value: Vec<LogEntry>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// The next page's URL (the same filters, the cursor set).
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
}
