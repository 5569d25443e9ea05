//! Provisioning log entries (PRODUCT.md §9): the four steps, the reason, the modified
//! attributes; and the serde of exact attribute values they and the journal use.

use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::directory::AttrValue;
use crate::mailbox::RecipientKind;

use super::CycleId;

// ---------------------------------------------------------------------------------------------
// Provisioning log entries
// ---------------------------------------------------------------------------------------------

/// The identity of a provisioning log entry, chosen by whoever creates it (a random v4 UUID
/// from the engine). Unique in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LogEntryId(pub Uuid);

impl fmt::Display for LogEntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The Exchange Online side of an entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceIdentity {
    /// A mailbox, group or mail contact (issue 17); a mailbox is left out of the stored entry,
    /// so entries written before groups and contacts existed read as mailboxes.
    #[serde(default, skip_serializing_if = "RecipientKind::is_mailbox")]
    pub kind: RecipientKind,
    /// ExternalDirectoryObjectId (the Entra ID object id), without any `User_` prefix.
    pub external_directory_object_id: Option<String>,
    pub primary_smtp_address: Option<String>,
    /// The mailbox's UserPrincipalName (`logs --identity` finds entries by it too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
}

/// The AD side of an entry; empty when no object was matched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetIdentity {
    pub dn: Option<String>,
    pub object_guid: Option<Uuid>,
}

/// What was done to the object (Microsoft's provisioning-log actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// The object was (or, dry-run, would be) modified.
    Update,
    /// Nothing to do: already in sync.
    Other,
    /// The object was skipped (see the reason).
    Skip,
}

/// The status of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStatus {
    Success,
    Skipped,
    Failure,
    Warning,
    /// Planned, but held by the change threshold until `approve` or `reject`.
    Held,
}

impl LogStatus {
    pub const ALL: [LogStatus; 5] = [
        LogStatus::Success,
        LogStatus::Skipped,
        LogStatus::Failure,
        LogStatus::Warning,
        LogStatus::Held,
    ];

    /// The lower-case name used in storage, filters and output.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStatus::Success => "success",
            LogStatus::Skipped => "skipped",
            LogStatus::Failure => "failure",
            LogStatus::Warning => "warning",
            LogStatus::Held => "held",
        }
    }

    /// The status named `name`, case-insensitively.
    pub fn from_name(name: &str) -> Option<LogStatus> {
        LogStatus::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

/// A skip reason or an error: a stable code (`NotInScope`, `TargetNotFound`,
/// `SchemaConstraint` …), what happened, and what the administrator can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub code: crate::outcome::OutcomeCode,
    pub message: String,
    pub recommended_action: String,
}

/// The outcome of one step (`✓`, `✗`, `–` in provision on demand).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Success,
    Failure,
    /// The step was skipped, or not reached because an earlier step ended the run.
    Skipped,
}

impl StepStatus {
    /// The mark provision on demand prints.
    pub fn mark(self) -> &'static str {
        match self {
            StepStatus::Success => "✓",
            StepStatus::Failure => "✗",
            StepStatus::Skipped => "–",
        }
    }
}

/// One step with its status and human-readable details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub status: StepStatus,
    pub details: String,
}

impl Step {
    /// A step that was not reached.
    pub fn not_reached() -> Step {
        Step {
            status: StepStatus::Skipped,
            details: String::new(),
        }
    }
}

/// The four steps of a provisioning run (PRODUCT.md §9, §10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Steps {
    pub import: Step,
    pub scoping: Step,
    pub matching: Step,
    pub export: Step,
}

/// One modified attribute, old values → new values (exact values: bytes stay bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModifiedProperty {
    pub attribute: String,
    #[serde(with = "attr_values_serde")]
    pub old: Vec<AttrValue>,
    #[serde(with = "attr_values_serde")]
    pub new: Vec<AttrValue>,
}

/// One provisioning log entry: one object in one cycle (or one on-demand run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisioningLogEntry {
    pub id: LogEntryId,
    pub cycle: CycleId,
    /// When the object's processing started.
    pub time: Timestamp,
    pub duration: SignedDuration,
    pub source: SourceIdentity,
    pub target: TargetIdentity,
    pub action: Action,
    pub status: LogStatus,
    /// What happened: the skip reason, the error, why nothing was written (`AlreadyInSync`,
    /// `Held`, `PinnedByUndo`, `Rejected`); `None` on a plain write.
    pub reason: Option<Reason>,
    pub steps: Steps,
    pub modified: Vec<ModifiedProperty>,
}

// ---------------------------------------------------------------------------------------------
// Serde for exact attribute values
// ---------------------------------------------------------------------------------------------

/// Serde for `Vec<AttrValue>` that keeps bytes as bytes: text is a JSON string, bytes are
/// `{"base64": "..."}`. Use with `#[serde(with = "attr_values_serde")]`.
pub mod attr_values_serde {
    use super::AttrValue;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Wire {
        Text(String),
        Bytes { base64: String },
    }

    pub fn serialize<S: Serializer>(values: &[AttrValue], s: S) -> Result<S::Ok, S::Error> {
        let wire: Vec<Wire> = values
            .iter()
            .map(|v| match v {
                AttrValue::Text(t) => Wire::Text(t.clone()),
                AttrValue::Bytes(b) => Wire::Bytes {
                    base64: STANDARD.encode(b),
                },
            })
            .collect();
        wire.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<AttrValue>, D::Error> {
        let wire = Vec::<Wire>::deserialize(d)?;
        wire.into_iter()
            .map(|w| match w {
                Wire::Text(t) => Ok(AttrValue::Text(t)),
                Wire::Bytes { base64 } => STANDARD
                    .decode(base64.as_bytes())
                    .map(AttrValue::Bytes)
                    .map_err(|e| serde::de::Error::custom(format!("bad base64 value: {e}"))),
            })
            .collect()
    }
}
