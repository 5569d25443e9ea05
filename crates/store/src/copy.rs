//! Copying a whole state from one backend to another (`exo-writeback state migrate`): every
//! row as a backend-neutral record, in an order an import can take, and the counts that prove
//! nothing was left behind.

use exo_writeback_core::provisioning::{
    CycleId, CycleRecord, EscrowEntry, JobState, Join, JournalRecord, Pause, Pin,
    ProvisioningLogEntry, StagedDecision, StagedPlan, Watermark,
};
use jiff::Timestamp;
use uuid::Uuid;

use crate::{Result, WriteIntent};

/// One row of a state. The sequence numbers (`seq`) keep the order entries were stored in,
/// which breaks ties between entries of the same instant.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // rows stream one at a time; boxing buys nothing
pub enum StateRow {
    /// The job: its state, watermark and pause (one per state).
    Job {
        state: JobState,
        watermark: Option<Watermark>,
        pause: Option<Pause>,
    },
    Cycle(CycleRecord),
    Log {
        seq: i64,
        entry: ProvisioningLogEntry,
    },
    Journal {
        seq: i64,
        /// The id of the log entry the record belongs to.
        log_entry: Uuid,
        record: JournalRecord,
    },
    Join(Join),
    Escrow(EscrowEntry),
    StagedCycle {
        cycle: CycleId,
        staged_at: Timestamp,
        decision: StagedDecision,
    },
    StagedPlan {
        cycle: CycleId,
        seq: i64,
        plan: StagedPlan,
    },
    Intent {
        seq: i64,
        intent: WriteIntent,
    },
    Pin(Pin),
}

/// How many rows a state holds, per table: what a copy must reproduce.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    pub cycles: u64,
    pub log_entries: u64,
    pub journal: u64,
    pub joins: u64,
    pub escrow: u64,
    pub staged_cycles: u64,
    pub staged_plans: u64,
    pub intents: u64,
    pub pins: u64,
}

impl StateCounts {
    /// `(table, count)` pairs, for printing.
    pub fn tables(&self) -> [(&'static str, u64); 9] {
        [
            ("cycles", self.cycles),
            ("log entries", self.log_entries),
            ("journal records", self.journal),
            ("joins", self.joins),
            ("escrow entries", self.escrow),
            ("held cycles", self.staged_cycles),
            ("held changes", self.staged_plans),
            ("write intents", self.intents),
            ("pins", self.pins),
        ]
    }

    /// Counts a row into these counts (the job row is not counted).
    pub fn add(&mut self, row: &StateRow) {
        match row {
            StateRow::Job { .. } => {}
            StateRow::Cycle(_) => self.cycles += 1,
            StateRow::Log { .. } => self.log_entries += 1,
            StateRow::Journal { .. } => self.journal += 1,
            StateRow::Join(_) => self.joins += 1,
            StateRow::Escrow(_) => self.escrow += 1,
            StateRow::StagedCycle { .. } => self.staged_cycles += 1,
            StateRow::StagedPlan { .. } => self.staged_plans += 1,
            StateRow::Intent { .. } => self.intents += 1,
            StateRow::Pin(_) => self.pins += 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == StateCounts::default()
    }
}

/// A backend whose whole state can be read out and written into another.
pub trait StateCopy {
    /// Every row, in an order an import can take: the job, cycles, then what names a cycle
    /// (log entries before their journal, held cycles before their changes).
    fn export(&self, each: &mut dyn FnMut(StateRow) -> Result<()>) -> Result<()>;
    /// Copies every row of `source` into this state, which must hold no cycle yet (a fresh
    /// one), in one transaction: all of it or nothing. Returns the rows copied. Later cycles
    /// and entries number on after the copied ones.
    fn import_from(&mut self, source: &dyn StateCopy) -> Result<StateCounts>;
    /// How many rows each table holds.
    fn counts(&self) -> Result<StateCounts>;
}
