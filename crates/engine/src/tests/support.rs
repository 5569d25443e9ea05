//! The one lab builder of the engine's tests: synced users in the fake directory and their
//! mailboxes in the fake source (`crate::testing::users`), and engines — each a new agent
//! process — on one SQLite state directory.

use std::path::Path;

use exo_writeback_core::provisioning::{CycleId, ProvisioningLogEntry};
use exo_writeback_core::settings::WritebackSettings;
use exo_writeback_store_sqlite::prelude::*;
use exo_writeback_store_sqlite::{LogQuery, SqliteStore};
use jiff::Timestamp;

use crate::testing::{FakeDirectory, Hook, Hooked};
use crate::{Directory, Engine, EngineOptions, MailboxSource};

pub(crate) use crate::testing::{mailbox, users};

/// An engine — a new agent process — on the state in `state_dir`, with change threshold
/// `threshold`: cycles a previous process left running are marked interrupted first.
pub(crate) fn engine<S: MailboxSource + Clone, D: Directory>(
    source: &S,
    dir: D,
    state_dir: &Path,
    threshold: u32,
    options: EngineOptions,
) -> Engine<S, D, SqliteStore> {
    let mut store = SqliteStore::open_in(state_dir).expect("store");
    store
        .interrupt_running_cycles(Timestamp::now())
        .expect("interrupt");
    let settings = WritebackSettings {
        threshold,
        ..WritebackSettings::default()
    }
    .resolve()
    .expect("settings");
    Engine::new(source.clone(), dir, store, settings, options)
}

/// An engine (as [`engine`], threshold 1000) on the fake directory `dir` behind `hook`.
pub(crate) fn hooked_engine<S: MailboxSource + Clone, H: Hook + Clone + Sync>(
    source: &S,
    dir: &FakeDirectory,
    hook: &H,
    state_dir: &Path,
    options: EngineOptions,
) -> Engine<S, Hooked<H>, SqliteStore> {
    let dir = Hooked {
        inner: dir.clone(),
        hook: hook.clone(),
    };
    engine(source, dir, state_dir, 1000, options)
}

/// Every log entry of `cycle`.
pub(crate) fn cycle_entries(store: &SqliteStore, cycle: CycleId) -> Vec<ProvisioningLogEntry> {
    store
        .query_logs(&LogQuery {
            cycle: Some(cycle),
            limit: 100_000,
            ..LogQuery::default()
        })
        .expect("logs")
}

/// The attributes a cycle reported it may not read.
pub(crate) fn unreadable(r: &crate::CycleReport) -> Vec<&str> {
    r.unreadable_attributes
        .iter()
        .map(|u| u.attribute.as_str())
        .collect()
}
