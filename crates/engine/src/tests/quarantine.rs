//! The quarantine over the engine, with in-memory ports and a real SQLite store.

use exo_writeback_core::provisioning::{CycleStatus, JobState};
use exo_writeback_core::settings::WritebackSettings;
use exo_writeback_store_sqlite::SqliteStore;
use exo_writeback_store_sqlite::prelude::*;
use jiff::{SignedDuration, Timestamp};

use super::support::{engine, users};
use crate::testing::{FakeDirectory, FakeSource};
use crate::{CycleMode, Engine, EngineError, EngineOptions};

struct Lab {
    engine: Engine<FakeSource, FakeDirectory, SqliteStore>,
    source: FakeSource,
    dir: FakeDirectory,
    dns: Vec<String>,
    _tmp: tempfile::TempDir,
}

fn lab(n: u32) -> Lab {
    let tmp = tempfile::tempdir().expect("tempdir");
    let users = users(n, Timestamp::now(), &[]);
    let engine = engine(
        &users.source,
        users.dir.clone(),
        tmp.path(),
        WritebackSettings::default().threshold,
        EngineOptions::default(),
    );
    Lab {
        engine,
        source: users.source,
        dir: users.dir,
        dns: users.dns,
        _tmp: tmp,
    }
}

fn next_retry(state: &JobState) -> Timestamp {
    match state {
        JobState::Quarantine { next_retry, .. } => *next_retry,
        other => panic!("not quarantined: {other:?}"),
    }
}

/// Pretend the retry is due (time passing) without touching the reason.
fn make_due(lab: &mut Lab) {
    let state = lab.engine.store.job_state().expect("state");
    if let JobState::Quarantine { reason, since, .. } = state {
        lab.engine
            .store
            .set_job_state(&JobState::Quarantine {
                reason,
                since,
                next_retry: Timestamp::now() - SignedDuration::from_secs(1),
            })
            .expect("set state");
    }
}

#[tokio::test]
async fn most_objects_failing_for_one_cause_quarantines_and_a_good_cycle_clears_it() {
    let mut lab = lab(6);
    for dn in &lab.dns[..5] {
        lab.dir
            .fail_dns
            .lock()
            .expect("lock")
            .insert(dn.clone(), 50);
    }
    let t0 = Timestamp::now();
    let r = lab.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!((r.counts.failed, r.counts.written), (5, 1));
    let CycleStatus::Quarantined { reason } = &r.status else {
        panic!("not quarantined: {:?}", r.status);
    };
    assert!(
        reason.contains("5 of 6") && reason.contains("LdapError"),
        "{reason}"
    );
    assert!(reason.contains("result 50"), "{reason}");
    let state = lab.engine.store.job_state().expect("state");
    assert_eq!(state.name(), "Quarantine");
    let due = next_retry(&state);
    assert!(due >= t0 + SignedDuration::from_mins(1), "{due}");
    assert!(
        due <= Timestamp::now() + SignedDuration::from_mins(1),
        "{due}"
    );
    // Each failed object also sits in escrow with its own back-off.
    assert_eq!(lab.engine.store.escrow_count().expect("escrow"), 5);

    // Refused until the retry is due, with the reason and the time.
    let modifies = lab.dir.modifies.lock().expect("lock").len();
    match lab.engine.run_cycle(CycleMode::Auto).await {
        Err(EngineError::Quarantined { reason, next_retry }) => {
            assert!(reason.contains("LdapError"));
            assert_eq!(next_retry, due);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(lab.dir.modifies.lock().expect("lock").len(), modifies);

    // Still failing when due: the back-off grows to 5 minutes.
    make_due(&mut lab);
    lab.engine
        .run_cycle(CycleMode::Full)
        .await
        .expect("second bad cycle");
    let state = lab.engine.store.job_state().expect("state");
    assert!(next_retry(&state) > Timestamp::now() + SignedDuration::from_mins(4));

    // The cause is fixed: the first good cycle clears the quarantine.
    lab.dir.fail_dns.lock().expect("lock").clear();
    make_due(&mut lab);
    let r = lab.engine.run_cycle(CycleMode::Full).await.expect("good");
    assert_eq!(r.status, CycleStatus::Completed);
    assert_eq!(r.counts.failed, 0);
    assert_eq!(
        lab.engine.store.job_state().expect("state"),
        JobState::Active
    );
    assert_eq!(lab.engine.store.escrow_count().expect("escrow"), 0);
}

#[tokio::test]
async fn a_minority_of_failures_only_escrows_those_objects() {
    let mut lab = lab(6);
    for dn in &lab.dns[..3] {
        lab.dir
            .fail_dns
            .lock()
            .expect("lock")
            .insert(dn.clone(), 50);
    }
    let r = lab.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.status, CycleStatus::Completed);
    assert_eq!(r.counts.failed, 3);
    assert_eq!(
        lab.engine.store.job_state().expect("state"),
        JobState::Active
    );
    assert_eq!(lab.engine.store.escrow_count().expect("escrow"), 3);
    lab.engine
        .run_cycle(CycleMode::Auto)
        .await
        .expect("next cycle runs");
}

#[tokio::test]
async fn a_cycle_that_reads_nothing_quarantines_and_retries_slow_down() {
    let mut lab = lab(3);
    *lab.source.fail_after.lock().expect("lock") = Some(0);
    let mut gaps = Vec::new();
    for _ in 0..3 {
        make_due(&mut lab);
        let before = Timestamp::now();
        match lab.engine.run_cycle(CycleMode::Auto).await {
            Err(EngineError::Source(e)) => assert!(e.message.contains("reset")),
            other => panic!("expected a source error, got {other:?}"),
        }
        let state = lab.engine.store.job_state().expect("state");
        let JobState::Quarantine { reason, .. } = &state else {
            panic!("{state:?}");
        };
        assert!(reason.contains("connection reset"), "{reason}");
        gaps.push(next_retry(&state).duration_since(before).as_secs() / 60);
    }
    assert_eq!(gaps, [1, 5, 15]);
    let cycles = lab.engine.store.recent_cycles(5).expect("cycles");
    assert!(
        cycles
            .iter()
            .all(|c| matches!(c.status, CycleStatus::Quarantined { .. }))
    );
    *lab.source.fail_after.lock().expect("lock") = None;
    make_due(&mut lab);
    let r = lab.engine.run_cycle(CycleMode::Auto).await.expect("good");
    assert_eq!(r.counts.written, 3);
    assert_eq!(
        lab.engine.store.job_state().expect("state"),
        JobState::Active
    );
}

#[tokio::test]
async fn a_start_that_cannot_bind_is_a_quarantined_cycle() {
    let mut lab = lab(1);
    let state = crate::quarantine::record_failed_start(
        &mut lab.engine.store,
        "invalid credentials for CN=svc",
        Timestamp::now(),
    )
    .expect("record");
    assert_eq!(state.name(), "Quarantine");
    let cycles = lab.engine.store.recent_cycles(1).expect("cycles");
    assert_eq!(
        cycles[0].status,
        CycleStatus::Quarantined {
            reason: "invalid credentials for CN=svc".into()
        }
    );
    assert!(matches!(
        lab.engine.run_cycle(CycleMode::Auto).await,
        Err(EngineError::Quarantined { .. })
    ));
}
