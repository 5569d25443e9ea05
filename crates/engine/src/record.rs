//! The durable outcome of one object — its log entry (the four steps), journal, join and escrow
//! change — built in one place for cycles, approve, undo and provision ([`Outcome`]).

use exo_writeback_core::directory::AttrValue;
use exo_writeback_core::outcome::{OutcomeCode, OutcomeDetail};
use exo_writeback_core::plan::ObjectPlan;
use exo_writeback_core::provisioning::{
    Action, CycleId, EscrowFailure, EscrowUpdate, JoinUpdate, JournalRecord, LogEntryId, LogStatus,
    ModifiedProperty, ObjectOutcome, PinUpdate, ProvisioningLogEntry, Reason, SourceIdentity, Step,
    StepStatus, Steps, TargetIdentity,
};
use jiff::Timestamp;
use uuid::Uuid;

use crate::ports::{DirectoryError, SourceError};

pub(crate) fn step(status: StepStatus, details: impl Into<String>) -> Step {
    Step {
        status,
        details: details.into(),
    }
}

fn describe_values(values: &[AttrValue]) -> String {
    if values.is_empty() {
        return "(none)".into();
    }
    values
        .iter()
        .map(|v| match v {
            AttrValue::Text(t) => t.clone(),
            AttrValue::Bytes(b) => format!(
                "0x{}",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            ),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The text of a modified property, `old → new`, for tables.
pub fn describe_change(p: &ModifiedProperty) -> String {
    if p.attribute
        .eq_ignore_ascii_case(exo_writeback_core::membership::MEMBER_ATTRIBUTE)
    {
        return exo_writeback_core::membership::describe_member_change(&p.old, &p.new);
    }
    format!("{} → {}", describe_values(&p.old), describe_values(&p.new))
}

/// A directory error as an object's failure.
pub(crate) fn ldap_failure(e: &DirectoryError) -> OutcomeDetail {
    OutcomeDetail::new(OutcomeCode::LdapError, e.reason())
}

/// The attributes a plan changes, old → new.
pub(crate) fn modified_of(plan: &ObjectPlan) -> Vec<ModifiedProperty> {
    plan.changes
        .iter()
        .map(|c| ModifiedProperty {
            attribute: c.attribute.clone(),
            old: c.old.clone(),
            new: c.new.clone(),
        })
        .collect()
}

/// The journal of a write: per modified attribute, the values before (what `undo` restores)
/// and after.
pub(crate) fn journal_of(
    cycle: CycleId,
    time: Timestamp,
    object_guid: Uuid,
    dn: &str,
    modified: &[ModifiedProperty],
) -> Vec<JournalRecord> {
    modified
        .iter()
        .map(|m| JournalRecord {
            cycle,
            time,
            object_guid,
            dn: dn.to_string(),
            attribute: m.attribute.clone(),
            previous: m.old.clone(),
            new: m.new.clone(),
        })
        .collect()
}

/// What an outcome does to the escrow.
#[derive(Debug, Clone)]
pub(crate) enum Escrow {
    /// The object is a mailbox, escrowed under this cloud id: a failure escrows it, anything
    /// else clears its entry.
    Track(String),
    /// Leave the escrow alone (undo restores objects, not mailboxes).
    Keep,
}

/// The reason of an object that needed nothing: every mapped attribute already holds its
/// Exchange Online value (`what` says so in the operation's words).
pub(crate) fn in_sync(what: impl Into<String>) -> OutcomeDetail {
    OutcomeDetail::new(OutcomeCode::AlreadyInSync, what)
}

/// One object's outcome being built: everything but the action and the skip or failure
/// detail, which [`Outcome::finish`] takes.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub cycle: CycleId,
    /// When the object's processing began (the log entry's time; its duration runs to the
    /// finish).
    pub started: Timestamp,
    pub source: SourceIdentity,
    pub target: TargetIdentity,
    pub steps: Steps,
    pub modified: Vec<ModifiedProperty>,
    pub journal: Vec<JournalRecord>,
    pub join: JoinUpdate,
    pub escrow: Escrow,
    /// Pins set (undo, reject) or released (a cloud value that changed since).
    pub pins: PinUpdate,
}

impl Outcome {
    /// An outcome with nothing reached yet, nothing modified, no join change.
    pub(crate) fn new(cycle: CycleId, started: Timestamp, escrow: Escrow) -> Outcome {
        Outcome {
            cycle,
            started,
            source: SourceIdentity::default(),
            target: TargetIdentity::default(),
            steps: Steps {
                import: Step::not_reached(),
                scoping: Step::not_reached(),
                matching: Step::not_reached(),
                export: Step::not_reached(),
            },
            modified: Vec::new(),
            journal: Vec::new(),
            join: JoinUpdate::Keep,
            escrow,
            pins: PinUpdate::default(),
        }
    }

    /// The log entry (status from `detail`: success without one), with the journal, join,
    /// escrow change and pins, stored together.
    pub(crate) fn finish(self, action: Action, detail: Option<OutcomeDetail>) -> ObjectOutcome {
        let now = Timestamp::now();
        let status = detail.as_ref().map_or(LogStatus::Success, |d| d.status());
        let escrow = match self.escrow {
            Escrow::Keep => EscrowUpdate::Keep,
            Escrow::Track(cloud_id) => match &detail {
                Some(d) if status == LogStatus::Failure => EscrowUpdate::Failed {
                    failure: EscrowFailure {
                        cloud_id,
                        source: self.source.clone(),
                        target: self.target.clone(),
                        error: Reason::from(d.clone()),
                    },
                    failed_at: now,
                },
                _ => EscrowUpdate::Clear { cloud_id },
            },
        };
        ObjectOutcome {
            log: ProvisioningLogEntry {
                id: LogEntryId(Uuid::now_v7()),
                cycle: self.cycle,
                time: self.started,
                duration: now.duration_since(self.started),
                source: self.source,
                target: self.target,
                action,
                status,
                reason: detail.map(Reason::from),
                steps: self.steps,
                modified: self.modified,
            },
            journal: self.journal,
            join: self.join,
            escrow,
            pins: self.pins,
        }
    }

    /// The outcome of a modify the directory refused: a failure of the export step, nothing
    /// journaled or pinned (escrowed when the object is a mailbox).
    pub(crate) fn refused(mut self, e: &DirectoryError) -> ObjectOutcome {
        let d = ldap_failure(e);
        self.journal.clear();
        // A pin comes with a change AD applied (an undo's); releases stand.
        self.pins.set.clear();
        self.steps.export = step(StepStatus::Failure, d.to_string());
        self.finish(Action::Update, Some(d))
    }
}

/// The outcome of a mailbox record the source could not read (a property of the wrong JSON
/// type, bytes that are not UTF-8): a Failure entry in the provisioning log, and escrow —
/// retried by its ExternalDirectoryObjectId — when that id was readable. The record is not
/// tracked for the watermark (its WhenChangedUTC is unknown): the watermark may pass it, and
/// escrow or its next change brings it back. Returns the id for the batch and the outcome.
pub(crate) fn unreadable_outcome(e: &SourceError, cycle: CycleId) -> (String, ObjectOutcome) {
    let source = e.record.clone().unwrap_or_default();
    let cloud_id = source
        .external_directory_object_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let escrow = cloud_id.clone().map_or(Escrow::Keep, Escrow::Track);
    let mut outcome = Outcome::new(cycle, Timestamp::now(), escrow);
    outcome.source = source;
    outcome.steps.import = step(StepStatus::Failure, e.message.clone());
    let detail = OutcomeDetail::new(OutcomeCode::MalformedMailboxRecord, e.message.clone());
    let outcome = outcome.finish(Action::Skip, Some(detail));
    let id = cloud_id.unwrap_or_else(|| format!("unreadable:{}", outcome.log.id));
    (id, outcome)
}

/// The provisioning-log entry of errors the source reported beside a result page: a Failure
/// of the import step with the service's text, for no object (the page's records have their
/// own outcomes); nothing escrowed. Returns an id for the batch (tracked by no watermark) and
/// the outcome.
pub(crate) fn reported_outcome(e: &SourceError, cycle: CycleId) -> (String, ObjectOutcome) {
    let mut outcome = Outcome::new(cycle, Timestamp::now(), Escrow::Keep);
    outcome.steps.import = step(StepStatus::Failure, e.message.clone());
    let detail = OutcomeDetail::new(OutcomeCode::ServiceReportedErrors, e.message.clone());
    let outcome = outcome.finish(Action::Skip, Some(detail));
    (format!("reported:{}", outcome.log.id), outcome)
}
