//! `[state] url = "postgres://…"` (a real PostgreSQL 15 from `lab/pg-up`): every command that
//! writes takes the writer lease, as it takes the state lock on SQLite — a second one waits
//! until the first is done — and a store opened without it cannot write at all.

use std::path::Path;
use std::time::Duration;

use exo_writeback_agent::compose::open_store;
use exo_writeback_agent::config::Config;
use exo_writeback_agent::state::WriteLock;
use exo_writeback_core::provisioning::JobState;
use exo_writeback_store_sqlite::prelude::*;
use exo_writeback_testlab::{LabDatabase, LabPostgres};

fn config(db: &LabDatabase, state_dir: &Path) -> Config {
    let pg = LabPostgres::shared();
    let text = format!(
        "[ad]\nurl = \"ldaps://127.0.0.9\"\nbind_dn = \"a@b\"\npassword_env = \"X\"\n\n\
         [sync]\nstate_dir = \"{}\"\n\n\
         [state]\nurl = \"{}\"\npassword_file = \"{}\"\nca_file = \"{}\"\nlease = \"2s\"\n",
        state_dir.display(),
        db.url,
        pg.password_file.display(),
        pg.ca_file.display()
    );
    Config::parse(&text, Path::new("test.toml")).expect("config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_writing_command_waits_for_the_writer_lease_and_nothing_else_writes() {
    let db = LabPostgres::database().expect("a lab database");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(&db, dir.path());
    let first = WriteLock::acquire(&config, "exo-writeback approve 7")
        .await
        .expect("the writer lease");
    let mut store = first.store().expect("store");
    store
        .set_job_state(&JobState::Active)
        .expect("a write under the lease");

    // A store opened without the lease reads, but its writes are refused.
    let reader = open_store(&config).expect("store");
    assert_eq!(reader.job_state().expect("read"), JobState::Active);
    let mut reader = reader;
    let refused = reader
        .set_job_state(&JobState::Active)
        .expect_err("a write without the writer lease");
    assert!(refused.is_fenced(), "{refused}");

    // A second writing command waits, past several lease times (the first renews its lease).
    let second_config = config.clone();
    let second = tokio::spawn(async move {
        let lock = WriteLock::acquire(&second_config, "exo-writeback undo --cycle 3").await?;
        lock.store()?.set_job_state(&JobState::Active)?;
        Ok::<_, exo_writeback_agent::AgentError>(())
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        !second.is_finished(),
        "the second writer did not wait for the first"
    );
    store
        .set_job_state(&JobState::Active)
        .expect("the first still writes");
    drop(store);
    drop(first);
    tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the second writer goes on")
        .expect("join")
        .expect("the second writer writes");
}
