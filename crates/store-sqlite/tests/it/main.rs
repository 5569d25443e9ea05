//! Integration tests of the SQLite state store (one test binary): the store's behaviour every
//! backend shares (`exo_writeback_store::testing::conformance`), and what is SQLite's own —
//! migrations of older files, file modes, locks, corruption, crash safety.

mod common;
mod compact;
mod crash;
mod intents;
mod journal;
mod migrations;
mod old_states;
mod recorder;

use exo_writeback_store::testing::{Backend, TestStore};
use exo_writeback_store_sqlite::SqliteStore;

/// A store in a fresh temporary state_dir.
pub struct Sqlite;

impl Backend for Sqlite {
    type Store = SqliteStore;

    fn open(&self) -> TestStore<SqliteStore> {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open_in(dir.path()).expect("open store");
        let location = store.path().display().to_string();
        TestStore::new(store, location, dir)
    }

    fn reopen(&self, store: &TestStore<SqliteStore>) -> SqliteStore {
        SqliteStore::open(std::path::Path::new(&store.location)).expect("reopen store")
    }
}

mod conformance {
    exo_writeback_store::conformance_tests!(crate::Sqlite);
}
