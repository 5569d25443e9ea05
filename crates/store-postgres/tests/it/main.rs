//! Integration tests of the PostgreSQL state store (one test binary), against a real
//! PostgreSQL 15 (`lab/pg-up`: one throwaway cluster for the binary, TLS required, a database
//! per test): the store's behaviour every backend shares
//! (`exo_writeback_store::testing::conformance`), and what is PostgreSQL's own — TLS verified,
//! migrations, the writer lease and its fence, the server restarting, copying a SQLite state.

mod connection;
mod copy;
mod lease;

use exo_writeback_store::testing::{Backend, TestStore};
use exo_writeback_store_postgres::{Fence, PgSettings, PgStore};
use exo_writeback_testlab::{LabDatabase, LabPostgres};

/// The settings of a lab database: password and CA from the lab cluster.
pub fn settings(url: &str) -> PgSettings {
    let pg = LabPostgres::shared();
    PgSettings::new(
        url,
        Some(exo_writeback_core::secret::Secret::new(pg.password())),
        Some(pg.ca_file.clone()),
    )
}

/// A fresh database (dropped with the guard) and its settings.
pub fn database() -> (LabDatabase, PgSettings) {
    let db = LabPostgres::database().expect("a lab database");
    let s = settings(&db.url);
    (db, s)
}

/// A store on a fresh database, writes not fenced.
pub struct Postgres;

impl Backend for Postgres {
    type Store = PgStore;

    fn open(&self) -> TestStore<PgStore> {
        let (db, settings) = database();
        let store = PgStore::open(&settings, Fence::unenforced()).expect("open store");
        TestStore::new(store, db.url.clone(), db)
    }

    fn reopen(&self, store: &TestStore<PgStore>) -> PgStore {
        PgStore::open(&settings(&store.location), Fence::unenforced()).expect("reopen store")
    }
}

mod conformance {
    exo_writeback_store::conformance_tests!(crate::Postgres);
}
