//! The records the store keeps besides the core's provisioning types: write-ahead intents, log
//! queries, and what a purge or a restart did.

use exo_writeback_core::directory::AttrValue;
use exo_writeback_core::provisioning::{
    CycleId, EscrowUpdate, JobState, Join, JoinUpdate, JournalRecord, LogEntryId, LogStatus,
    ObjectOutcome, PinUpdate, ProvisioningLogEntry,
};
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

/// How long provisioning logs and journal records are kept by default.
pub const DEFAULT_RETENTION: SignedDuration = SignedDuration::from_hours(30 * 24);

/// Filters for [`crate::LogStore::query_logs`]. All filters are AND-ed; `None` means "any".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// Any of these statuses (empty: any status).
    pub statuses: Vec<LogStatus>,
    /// Matches the source ExternalDirectoryObjectId (with or without `User_`), the primary
    /// SMTP address, the UserPrincipalName, the target DN or the target objectGUID;
    /// case-insensitive, exact.
    pub identity: Option<String>,
    pub cycle: Option<CycleId>,
    /// Entries at or after this instant.
    pub since: Option<Timestamp>,
    /// At most this many entries (newest first).
    pub limit: usize,
    /// Leave out the entries of objects that were already in sync (action `Other`, status
    /// `success`: nothing to write), which are most of a quiet delta's entries.
    pub hide_in_sync: bool,
    /// Only entries after this one in the newest-first order (keyset paging: the id of the
    /// last entry of the previous page). An unknown id matches nothing.
    pub after: Option<LogEntryId>,
}

impl Default for LogQuery {
    fn default() -> Self {
        LogQuery {
            statuses: Vec::new(),
            identity: None,
            cycle: None,
            since: None,
            limit: 100,
            hide_in_sync: false,
            after: None,
        }
    }
}

/// What a retention purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub log_entries: u64,
    pub journal_records: u64,
}

/// What a restart changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestartReport {
    pub watermark_cleared: bool,
    pub joins_removed: u64,
    pub escrow_removed: u64,
    pub staged_cycles_discarded: u64,
    /// The job state after the restart.
    pub job_state: JobState,
}

/// A modify the engine is about to send, recorded before it is sent (write-ahead), with the
/// outcome the engine records if it succeeds.
///
/// The engine records the intents of a batch in one transaction before the batch's first
/// modify, and deletes them in the transaction that records the batch's outcomes
/// ([`crate::OutcomeStore::record_outcomes_clearing_intents`]). An intent still stored when a cycle starts was
/// left by a process that stopped (kill -9, power loss) between a modify and the commit of its
/// outcome: the next cycle reads the object and, if it holds the planned values, records
/// [`WriteIntent::log`] and [`WriteIntent::journal`] — the change is logged once, as applied,
/// and `undo` can restore it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WriteIntent {
    /// Unique per intent (the id of [`WriteIntent::log`]).
    pub id: Uuid,
    /// The cycle that planned (and possibly sent) the modify.
    pub cycle: CycleId,
    /// The mailbox (ExternalDirectoryObjectId, or the engine's fallback id).
    pub cloud_id: String,
    pub object_guid: Uuid,
    pub dn: String,
    /// The log entry the cycle records when the modify succeeds.
    pub log: ProvisioningLogEntry,
    /// The journal recorded with it: per attribute of the modify, the values before
    /// (`previous`, what `undo` restores) and after (`new`: what the attribute holds once the
    /// modify is applied — the planned modify, see [`WriteIntent::planned`]).
    pub journal: Vec<JournalRecord>,
    /// The join recorded with it, if the cycle sets one.
    pub join: Option<Join>,
    /// The pins recorded with it (an undo pins what it restores).
    #[serde(default)]
    pub pins: PinUpdate,
}

impl WriteIntent {
    /// The intent of a successful outcome: `None` when the outcome has no journal (nothing is
    /// written) or no target objectGUID.
    pub fn from_success(cloud_id: &str, outcome: &ObjectOutcome) -> Option<WriteIntent> {
        let object_guid = outcome.log.target.object_guid?;
        if outcome.journal.is_empty() {
            return None;
        }
        Some(WriteIntent {
            id: outcome.log.id.0,
            cycle: outcome.log.cycle,
            cloud_id: cloud_id.to_string(),
            object_guid,
            dn: outcome.log.target.dn.clone().unwrap_or_default(),
            log: outcome.log.clone(),
            journal: outcome.journal.clone(),
            join: match &outcome.join {
                JoinUpdate::Set(j) => Some(j.clone()),
                _ => None,
            },
            pins: outcome.pins.clone(),
        })
    }

    /// The planned modify: attribute → the values it holds once the modify is applied.
    pub fn planned(&self) -> impl Iterator<Item = (&str, &[AttrValue])> {
        self.journal
            .iter()
            .map(|j| (j.attribute.as_str(), j.new.as_slice()))
    }

    /// The outcome the normal path would have recorded: the log entry, its journal, join and
    /// pins; the escrow is left as it is (a later cycle may have escrowed the object since).
    pub fn into_outcome(self) -> ObjectOutcome {
        ObjectOutcome {
            log: self.log,
            journal: self.journal,
            join: self.join.map_or(JoinUpdate::Keep, JoinUpdate::Set),
            escrow: EscrowUpdate::Keep,
            pins: self.pins,
        }
    }
}

/// The AD schema as last read, with the schema NC head's `schemaInfo` it was read under: kept
/// so that the next process (each `sync` is one) need not read the whole schema again while the
/// DC shows the same `schemaInfo`. A cache: not part of a state copy ([`crate::StateCopy`]);
/// one that cannot be read back is ignored and the schema read from AD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaSnapshot {
    /// The `schemaInfo` value, opaque.
    pub schema_info: Vec<u8>,
    /// The attributeSchema objects as the schema read holds them.
    pub attributes: Vec<exo_writeback_core::schema::AttributeSchema>,
}
