//! Connecting: TLS verified, migrations, the server restarting under the store.

use std::time::Duration;

use exo_writeback_core::provisioning::{CycleKind, JobState};
use exo_writeback_store_postgres::migrations::SCHEMA_VERSION;
use exo_writeback_store_postgres::prelude::*;
use exo_writeback_store_postgres::{Fence, PgSettings, PgStore, StoreError};
use exo_writeback_testlab::LabPostgres;

use crate::database;

#[test]
fn a_fresh_database_gets_the_current_schema_once() {
    let (_db, settings) = database();
    let store = PgStore::open(&settings, Fence::unenforced()).expect("open");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    assert_eq!(store.job_state().expect("state"), JobState::NotRun);
    drop(store);
    // Agents starting together: each migrates or finds it done.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let settings = settings.clone();
            std::thread::spawn(move || {
                PgStore::open(&settings, Fence::unenforced()).and_then(|s| s.schema_version())
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().expect("join").expect("open"), SCHEMA_VERSION);
    }
}

#[test]
fn an_older_schema_is_migrated_and_a_newer_one_refused_untouched() {
    let (db, settings) = database();
    {
        let mut old = PgStore::open_at_schema_version(&settings, 1).expect("at v1");
        assert_eq!(old.schema_version().expect("version"), 1);
        old.begin_cycle(CycleKind::Initial, jiff::Timestamp::now())
            .expect("cycle");
    }
    let store = PgStore::open(&settings, Fence::unenforced()).expect("migrate");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    assert_eq!(store.recent_cycles(5).expect("cycles").len(), 1);
    drop(store);
    let pg = LabPostgres::shared();
    pg.psql(
        &db.name,
        &format!(
            "INSERT INTO schema_migrations VALUES ({}, now())",
            SCHEMA_VERSION + 3
        ),
    )
    .expect("bump");
    let err = PgStore::open(&settings, Fence::unenforced()).expect_err("newer");
    assert!(
        matches!(err, StoreError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 3),
        "{err:?}"
    );
    assert!(err.to_string().contains("newer exo-writeback"), "{err}");
    assert!(!err.to_string().contains(&pg.password()), "{err}");
}

#[test]
fn the_server_certificate_is_verified_and_plain_connections_are_not_made() {
    let (db, settings) = database();
    let _ = &db;
    // Another CA than the one that issued the server's certificate: refused before any SQL.
    let other = tempfile::tempdir().expect("tempdir");
    let ca = other.path().join("other-ca.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-subj",
            "/CN=another CA",
            "-days",
            "1",
            "-config",
            "/dev/null",
        ])
        .arg("-keyout")
        .arg(other.path().join("key.pem"))
        .arg("-out")
        .arg(&ca)
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{made:?}");
    let wrong = PgSettings {
        ca_file: Some(ca),
        ..settings.clone()
    };
    let err = PgStore::open(&wrong, Fence::unenforced()).expect_err("unknown CA");
    let text = err.to_string();
    assert!(
        matches!(err, StoreError::Unavailable { .. }) && text.contains("certificate"),
        "{text}"
    );
    // sslmode=disable is refused before connecting.
    let plain = PgSettings {
        url: format!("{}?sslmode=disable", db.url),
        ..settings.clone()
    };
    let err = PgStore::open(&plain, Fence::unenforced()).expect_err("plain");
    assert!(err.to_string().contains("always reached over TLS"), "{err}");
    // A wrong password is said as such, without the password.
    let wrong_password = PgSettings {
        password: Some(exo_writeback_core::secret::Secret::new(
            "not-the-password".to_string(),
        )),
        ..settings
    };
    let err = PgStore::open(&wrong_password, Fence::unenforced()).expect_err("password");
    let text = err.to_string();
    assert!(text.contains("password"), "{text}");
    assert!(!text.contains("not-the-password"), "{text}");
}

/// The server restarts: the store's next call opens a new connection and reads; a write made
/// while it is down fails (nothing stored, said as such) and works once it is back.
#[test]
fn the_store_rides_out_a_restart_of_the_server() {
    // A cluster of its own: the other tests' cluster stays up.
    let pg = LabPostgres::start().expect("a second cluster");
    let url = pg.create_database("restarted").expect("database");
    let settings = PgSettings::new(
        url,
        Some(exo_writeback_core::secret::Secret::new(pg.password())),
        Some(pg.ca_file.clone()),
    );
    let mut store = PgStore::open(&settings, Fence::unenforced()).expect("open");
    let cycle = store
        .begin_cycle(CycleKind::Delta, jiff::Timestamp::now())
        .expect("cycle");
    pg.restart(Duration::from_millis(200), false)
        .expect("restart");
    assert_eq!(
        store
            .cycle(cycle)
            .expect("read after the restart")
            .map(|c| c.id),
        Some(cycle)
    );
    store
        .set_job_state(&JobState::Active)
        .expect("write after the restart");
    assert_eq!(store.job_state().expect("state"), JobState::Active);
}
