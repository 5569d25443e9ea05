//! The one lab builder of the engine's tests: synced users in the fake directory and their
//! mailboxes in the fake source (`crate::testing::users`), and engines — each a new agent
//! process — on one SQLite state directory.

use std::path::Path;

use exo_writeback_core::settings::WritebackSettings;
use exo_writeback_store_sqlite::SqliteStore;
use exo_writeback_store_sqlite::prelude::*;
use jiff::Timestamp;

use crate::testing::FakeSource;
use crate::{Directory, Engine, EngineOptions};

pub(crate) use crate::testing::{mailbox, users};

/// An engine — a new agent process — on the state in `state_dir`, with change threshold
/// `threshold`: cycles a previous process left running are marked interrupted first.
pub(crate) fn engine<D: Directory>(
    source: &FakeSource,
    dir: D,
    state_dir: &Path,
    threshold: u32,
    options: EngineOptions,
) -> Engine<FakeSource, D, SqliteStore> {
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

/// The attributes a cycle reported it may not read.
pub(crate) fn unreadable(r: &crate::CycleReport) -> Vec<&str> {
    r.unreadable_attributes
        .iter()
        .map(|u| u.attribute.as_str())
        .collect()
}
