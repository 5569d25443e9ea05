//! The shapes of the operations: held cycles and their staged changes, escrow, provision on
//! demand, undo, restart, preview.

use exo_writeback_core::provisioning::{EscrowEntry, StagedPlan};
use exo_writeback_engine::staged::StagedObject;
use exo_writeback_engine::{Preview, PreviewItem, ProvisionReport};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::log::{LogEntry, ModifiedPropertyView};

/// A held cycle waiting for approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeldCycle {
    pub cycle: i64,
    /// Objects whose changes it staged.
    pub objects: u64,
}

/// The held cycles, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HeldList {
    pub value: Vec<HeldCycle>,
}

/// One object's staged change, attribute by attribute (old → new as planned when held).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StagedChangeView {
    pub cloud_id: String,
    pub primary_smtp_address: Option<String>,
    pub dn: String,
    pub object_guid: Option<String>,
    pub removes_values: bool,
    pub modified_properties: Vec<ModifiedPropertyView>,
}

impl StagedChangeView {
    /// The view of a staged plan; a plan that does not read back is shown by its ids, with
    /// no change (approve reports it).
    pub fn of(p: &StagedPlan) -> StagedChangeView {
        match serde_json::from_value::<StagedObject>(p.plan.clone()) {
            Ok(o) => StagedChangeView {
                cloud_id: o.cloud_id,
                primary_smtp_address: o.source.primary_smtp_address,
                dn: o.dn,
                object_guid: Some(o.object_guid.to_string()),
                removes_values: o.removes_values,
                modified_properties: o.modified.iter().map(Into::into).collect(),
            },
            Err(_) => StagedChangeView {
                cloud_id: p.cloud_id.clone(),
                primary_smtp_address: None,
                dn: p.dn.clone(),
                object_guid: p.object_guid.map(|g| g.to_string()),
                removes_values: false,
                modified_properties: Vec::new(),
            },
        }
    }
}

/// A page of a held cycle's staged changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeldChanges {
    pub cycle: i64,
    /// Every staged object of the cycle.
    pub total: u64,
    pub offset: usize,
    pub value: Vec<StagedChangeView>,
}

/// An object in escrow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EscrowItem {
    pub cloud_id: String,
    pub primary_smtp_address: Option<String>,
    pub dn: Option<String>,
    pub error_code: String,
    pub reason: String,
    pub recommended_resolution: String,
    pub attempts: u32,
    pub first_failed_at: String,
    pub last_failed_at: String,
    pub next_retry: String,
}

impl From<&EscrowEntry> for EscrowItem {
    fn from(e: &EscrowEntry) -> EscrowItem {
        EscrowItem {
            cloud_id: e.cloud_id.clone(),
            primary_smtp_address: e.source.primary_smtp_address.clone(),
            dn: e.target.dn.clone(),
            error_code: e.error.code.to_string(),
            reason: e.error.message.clone(),
            recommended_resolution: e.error.recommended_action.clone(),
            attempts: e.attempts,
            first_failed_at: e.first_failed_at.to_string(),
            last_failed_at: e.last_failed_at.to_string(),
            next_retry: e.next_retry.to_string(),
        }
    }
}

/// The escrow, earliest retry first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EscrowList {
    pub value: Vec<EscrowItem>,
}

/// Provision one mailbox now (`provisionOnDemand`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionRequest {
    /// UPN or SMTP address, ExternalDirectoryObjectId, `User_<id>`, or an AD DN.
    pub identity: String,
    /// Show what would be written; write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What provision on demand did, step by step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionResult {
    pub identity: String,
    pub dry_run: bool,
    /// The on-demand cycle that logged it (none for a dry run).
    pub cycle: Option<i64>,
    /// The log entry: its `provisioningSteps` are the trace.
    pub entry: LogEntry,
}

impl From<&ProvisionReport> for ProvisionResult {
    fn from(r: &ProvisionReport) -> ProvisionResult {
        ProvisionResult {
            identity: r.identity.clone(),
            dry_run: r.dry_run,
            cycle: r.cycle.map(|c| c.0),
            entry: (&r.entry).into(),
        }
    }
}

/// What to undo: exactly one of `cycle` and `object`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UndoRequest {
    /// Undo everything this cycle wrote.
    pub cycle: Option<i64>,
    /// Undo the latest cycle's changes to this object (DN, objectGUID,
    /// ExternalDirectoryObjectId, UPN or address).
    pub object: Option<String>,
}

/// Which state to forget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RestartScopeName {
    Full,
    Watermark,
    Escrow,
    Quarantine,
}

impl From<exo_writeback_core::provisioning::RestartScope> for RestartScopeName {
    fn from(scope: exo_writeback_core::provisioning::RestartScope) -> Self {
        use exo_writeback_core::provisioning::RestartScope;
        match scope {
            RestartScope::Full => Self::Full,
            RestartScope::Watermark => Self::Watermark,
            RestartScope::Escrow => Self::Escrow,
            RestartScope::Quarantine => Self::Quarantine,
        }
    }
}

/// `exo-writeback restart --scope …`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RestartRequest {
    pub scope: RestartScopeName,
}

/// What a restart changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestartResult {
    pub watermark_cleared: bool,
    pub joins_removed: u64,
    pub escrow_removed: u64,
    pub held_cycles_discarded: u64,
    /// The job after the restart.
    pub job: super::status::Job,
}

/// One object the next cycle would write (or skip).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewItemView {
    pub cloud_id: String,
    pub primary_smtp_address: Option<String>,
    pub dn: Option<String>,
    /// The outcome code it would have.
    pub code: String,
    pub reason: Option<String>,
    pub removes_values: bool,
    pub modified_properties: Vec<ModifiedPropertyView>,
}

impl From<&PreviewItem> for PreviewItemView {
    fn from(i: &PreviewItem) -> PreviewItemView {
        PreviewItemView {
            cloud_id: i.cloud_id.clone(),
            primary_smtp_address: i.primary_smtp_address.clone(),
            dn: i.dn.clone(),
            code: i.code.to_string(),
            reason: i.reason.clone(),
            removes_values: i.removes_values,
            modified_properties: i.changes.iter().map(Into::into).collect(),
        }
    }
}

/// What the next cycle would write, writing nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewView {
    /// The kind of the next cycle.
    pub kind: String,
    pub would_write: u64,
    pub removing: u64,
    pub threshold: u32,
    pub would_be_held: bool,
    pub value: Vec<PreviewItemView>,
}

impl From<&Preview> for PreviewView {
    fn from(p: &Preview) -> PreviewView {
        PreviewView {
            kind: p.kind.to_string(),
            would_write: p.would_write,
            removing: p.removing,
            threshold: p.threshold,
            would_be_held: p.would_be_held,
            value: p.items.iter().map(Into::into).collect(),
        }
    }
}

/// Pause the job: no cycle runs until it is resumed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PauseRequest {
    /// Why (shown by the status and in the agent's log).
    pub reason: Option<String>,
}

/// The pause in effect, and the one it replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PauseResult {
    pub pause: super::status::PauseView,
    pub replaced: Option<super::status::PauseView>,
}

/// The pause that was lifted (none: the job was not paused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResumeResult {
    pub lifted: Option<super::status::PauseView>,
}

/// Reject a held cycle's changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RejectRequest {
    /// Why (kept in the log entries and shown by the status).
    pub reason: Option<String>,
}

/// Release pins: of one object, or all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UnpinRequest {
    /// objectGUID, DN, ExternalDirectoryObjectId, primary SMTP address or UPN.
    pub object: Option<String>,
    /// Release every pin.
    #[serde(default)]
    pub all: bool,
}

/// What was released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnpinResult {
    pub attributes: u64,
    pub objects: u64,
    /// The object the identity was resolved to.
    pub object_guid: Option<String>,
}
