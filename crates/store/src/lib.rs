//! Durable state of the writeback agent: job state, watermark, cycle history, provisioning
//! logs, the journal (for undo), joins, escrow and changes staged by the change threshold.
//!
//! The engine talks to the [`Store`] trait, composed of one narrow trait per role — the job
//! and its watermark ([`JobStore`]), cycles ([`CycleStore`]), outcomes and their write-ahead
//! intents ([`OutcomeStore`]), joins ([`JoinStore`]), escrow ([`EscrowStore`]), changes staged
//! by the change threshold ([`StagingStore`]), the journal ([`JournalStore`]), log queries
//! ([`LogStore`]), restarts ([`RestartStore`]), pinned attributes ([`PinStore`]), a pause
//! ([`PauseStore`]) and the AD schema kept between processes ([`SchemaCacheStore`]) — so an operation says which part of the
//! state it needs, and a backend implements each. Bring them into scope with
//! `use exo_writeback_store::prelude::*`. The embedded SQLite backend
//! (`SqliteStore`: one file, `state.db` in the configured `state_dir`, WAL mode,
//! `synchronous=FULL`) lives in `exo-writeback-store-sqlite`, so this crate, and the engine
//! above it, link no database.
//!
//! # How the engine uses it
//!
//! ```text
//! store.interrupt_running_cycles(now)?;                 // once, at agent start
//! let cycle = store.begin_cycle(CycleKind::Delta, now)?;
//! let mut tracker = WatermarkTracker::new(previous.changed_since);
//! for batch in changed_mailboxes.chunks(500) {
//!     for m in batch { tracker.seen(&m.id, m.when_changed); }
//!     let outcomes: Vec<ObjectOutcome> = batch.iter().map(plan_and_write).collect();
//!     for m in batch { tracker.durable(&m.id); }
//!     // outcomes and watermark in one transaction: durable together, or neither
//!     if store.record_outcomes_then_watermark(&outcomes, Some(&tracker.watermark(cycle, overlap))).is_err() {
//!         for m in batch { tracker.seen(&m.id, m.when_changed); }   // not durable after all
//!         /* retry one by one with record_outcome, or stop the cycle */
//!     }
//! }
//! store.finish_cycle(cycle, now, &counts, &CycleStatus::Completed)?;
//! ```
//!
//! Per-object use (`record_outcome`, then `set_watermark`) is equally safe, only slower: every
//! commit waits for the disk (`synchronous=FULL`).
//!
//! Writes to AD go through write-ahead intents ([`WriteIntent`]) so a process killed between a
//! modify and the commit of its outcome loses no audit record:
//!
//! ```text
//! store.record_intents(&intents_of(chunk))?;              // one transaction per chunk
//! for object in chunk { directory.modify(object) }        // one LDAP modify per object
//! store.record_outcomes_clearing_intents(&outcomes, &intent_ids)?;   // one transaction
//! // at the start of the next cycle: store.intents()? — leftovers of a killed process
//! ```
//!
//! The API is blocking (SQLite): from async code call it on a dedicated thread or with
//! `tokio::task::spawn_blocking`. One writer per state file; readers in other processes
//! (`exo-writeback status`, `logs`) work while the agent runs.
//!
//! Architecture invariant: the store knows nothing of LDAP or Exchange Online; it persists the
//! core's `provisioning` types and never interprets staged plans (opaque JSON).

mod boxed;
pub mod codec;
mod copy;
mod error;
mod records;
mod roles;
#[cfg(feature = "testing")]
pub mod testing;

pub use copy::{StateCopy, StateCounts, StateRow};
pub use error::{Result, StoreError};
pub use records::{
    DEFAULT_RETENTION, LogQuery, PurgeReport, RestartReport, SchemaSnapshot, WriteIntent,
};
pub use roles::{
    CycleStore, EscrowStore, JobStore, JoinStore, JournalStore, LogRecorder, LogStore,
    OutcomeStore, PauseStore, PinStore, RestartStore, SchemaCacheStore, StagingStore,
    changes_no_join,
};

/// The durable state of the agent: every role. Writes take `&mut self`; each write is one
/// transaction. Every method returns [`StoreError`] with the database path and what to do.
/// A backend implements each role, then `impl Store for TheBackend {}`.
pub trait Store:
    JobStore
    + CycleStore
    + OutcomeStore
    + JoinStore
    + EscrowStore
    + StagingStore
    + JournalStore
    + LogStore
    + RestartStore
    + PinStore
    + PauseStore
    + SchemaCacheStore
    + Send
{
}

/// The role traits and [`Store`], to call their methods on a concrete store.
pub mod prelude {
    pub use crate::{
        CycleStore, EscrowStore, JobStore, JoinStore, JournalStore, LogStore, OutcomeStore,
        PauseStore, PinStore, RestartStore, SchemaCacheStore, StagingStore, Store,
    };
}
