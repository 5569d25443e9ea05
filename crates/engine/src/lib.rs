//! The writeback engine: cycles (initial, delta, full reconcile) over two ports — a
//! [`MailboxSource`] (Exchange Online) and a [`Directory`] (AD) — and the durable
//! [`exo_writeback_store::Store`].
//!
//! One object goes import → scope → match (stored join re-validated by objectGUID, else the
//! ordered rules) → container scope → plan → duplicate-address guard; a cycle plans every
//! object first, holds the whole cycle when the change threshold is exceeded (staging the
//! plans for `approve`), otherwise writes one modify per object and records each outcome
//! durably (log entry with the four steps, journal, join, escrow) before the watermark moves.
//! Writes go in chunks behind write-ahead intents (`intents.rs`): a process killed between a
//! modify and the commit of its outcome has the change logged, once, by the next cycle.
//!
//! One file per operation — `cycle` (with `read` and `hold`), `preview`, `approve`, `reject`,
//! `undo`, `provision` — over what they share: `evaluate` (one object), `record` (every outcome) and
//! `write` (the one write path, with its retry policy).
//!
//! Architecture invariant: decisions come from `exo_writeback_core`; this crate sequences
//! them and talks only through the ports and the store, so it runs against in-memory fakes
//! (`testing`, feature `testing`) and links no LDAP, HTTP or SQLite crate.

pub mod address_index;
mod approve;
mod bulk;
mod cycle;
mod drift;
mod edge;
mod engine;
mod error;
mod evaluate;
mod hold;
mod intents;
mod mark;
pub mod match_index;
mod membership;
mod options;
mod pipeline;
pub mod ports;
mod preview;
mod provision;
pub mod quarantine;
mod read;
mod read_rights;
mod recipient_target;
mod record;
pub mod reject;
mod scan;
mod settle;
mod spill;
pub mod staged;
mod take;
mod target;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod undo;
mod write;

#[cfg(test)]
mod tests;

pub use cycle::CycleReport;
pub use engine::Engine;
pub use error::EngineError;
pub use evaluate::{Disposition, Processed, cloud_id};
pub use options::{CycleMode, EngineOptions, Progress};
pub use ports::{
    ChangeMark, Directory, DirectoryError, DirectoryErrorKind, MailboxSource, MailboxStream,
    ScanScope, SourceError, SourceErrorKind, Unfenced, UnreadableAttribute, WriteFence,
};
pub use preview::{HeldChanges, Preview, PreviewItem};
pub use provision::{ProvisionReport, StepKind, StepTrace};
pub use record::describe_change;
pub use undo::{UndoTarget, describe_pins};
