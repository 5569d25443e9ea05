//! The leases: one writer at a time, a lapsed lease taken over with a new epoch, and the fence
//! that keeps a former writer from storing anything.

use std::time::{Duration, Instant};

use exo_writeback_core::provisioning::{CycleKind, JobState};
use exo_writeback_store::testing::fixtures::in_sync;
use exo_writeback_store_postgres::lease::{Acquired, Identity, LeaseGuard, LeaseName, Leases};
use exo_writeback_store_postgres::prelude::*;
use exo_writeback_store_postgres::{Fence, LogQuery, PgSettings, PgStore, StoreError};
use exo_writeback_testlab::LabPostgres;

use crate::database;

const TTL: Duration = Duration::from_millis(1_200);

fn agent(settings: &PgSettings, command: &str) -> Leases {
    Leases::new(
        settings,
        Identity::this_process(command),
        TTL,
        Fence::enforced(),
    )
    .expect("leases")
}

fn take(leases: &Leases, name: LeaseName) -> LeaseGuard {
    match leases.try_acquire(name).expect("try") {
        Acquired::Held(g) => g,
        Acquired::Busy(h) => panic!("{name:?} is held by {h}"),
    }
}

/// Polls until the lease is taken; returns the guard and how long it took.
fn wait_for(leases: &Leases, name: LeaseName) -> (LeaseGuard, Duration) {
    let start = Instant::now();
    loop {
        if let Acquired::Held(g) = leases.try_acquire(name).expect("try") {
            return (g, start.elapsed());
        }
        assert!(start.elapsed() < TTL * 5, "{name:?} never became free");
        std::thread::sleep(TTL / 8);
    }
}

/// A process that stops renewing (frozen, killed): its leases lapse.
fn freeze(leases: Leases, guards: Vec<LeaseGuard>) {
    for g in guards {
        std::mem::forget(g);
    }
    drop(leases);
}

#[test]
fn one_writer_at_a_time_and_a_lapsed_lease_is_taken_over_with_a_new_epoch() {
    let (_db, settings) = database();
    let a = agent(&settings, "exo-writeback run (a)");
    let b = agent(&settings, "exo-writeback approve 7 (b)");
    let held = take(&a, LeaseName::Writer);
    let epoch_a = held.lease().epoch;
    // Renewed: still held after several lease times.
    std::thread::sleep(TTL * 3);
    match b.try_acquire(LeaseName::Writer).expect("try") {
        Acquired::Busy(h) => {
            assert_eq!(h.command, "exo-writeback run (a)");
            assert_eq!(h.pid, std::process::id());
            assert_eq!(h.epoch, epoch_a);
        }
        Acquired::Held(_) => panic!("two writers"),
    }
    assert!(held.lease().is_valid());
    a.may_write().expect("the holder may write");
    assert!(b.may_write().is_err(), "b holds nothing");

    // Given back: taken at once.
    drop(held);
    let (held_b, waited) = wait_for(&b, LeaseName::Writer);
    assert!(waited < TTL, "{waited:?}");
    assert!(held_b.lease().epoch > epoch_a);

    // b stops renewing: a takes over once the lease lapsed, within two lease times.
    let epoch_b = held_b.lease().epoch;
    freeze(b, vec![held_b]);
    let (held_a, waited) = wait_for(&a, LeaseName::Writer);
    assert!(waited <= TTL * 2, "takeover after {waited:?}");
    assert!(held_a.lease().epoch > epoch_b);
}

#[test]
fn a_fenced_writer_stores_nothing_and_sends_nothing() {
    let (db, settings) = database();
    let a = agent(&settings, "exo-writeback run (a)");
    let mut store_a = PgStore::open(&settings, a.fence().clone()).expect("store");
    // No writer lease: every write is refused.
    let err = store_a
        .set_job_state(&JobState::Active)
        .expect_err("no lease");
    assert!(matches!(err, StoreError::Fenced { .. }), "{err:?}");
    assert!(err.to_string().contains("holds no writer lease"), "{err}");

    let held = take(&a, LeaseName::Writer);
    let cycle = store_a
        .begin_cycle(CycleKind::Delta, jiff::Timestamp::now())
        .expect("the holder writes");
    // Its log recorder (a connection of its own) writes under the same lease.
    let mut recorder = store_a.log_recorder().expect("recorder").expect("one");
    recorder
        .record(&[in_sync(cycle, 1, jiff::Timestamp::now())])
        .expect("the holder's recorder writes");

    // Another agent takes the lease over (here: by hand, as if a's lease had lapsed while a
    // was frozen and its renewer never ran): a's next write is refused inside its transaction,
    // and a's renewer finds the lease gone.
    LabPostgres::shared()
        .psql(
            &db.name,
            "UPDATE leases SET holder = gen_random_uuid(), epoch = epoch + 1, host = 'srv-b', \
             pid = 4242, command = 'exo-writeback run', \
             expires_at = clock_timestamp() + interval '1 hour' WHERE name = 'writer'",
        )
        .expect("take over");
    let err = store_a
        .finish_cycle(
            cycle,
            jiff::Timestamp::now(),
            &Default::default(),
            &exo_writeback_core::provisioning::CycleStatus::Completed,
        )
        .expect_err("fenced");
    assert!(matches!(err, StoreError::Fenced { .. }), "{err:?}");
    assert!(err.to_string().contains("srv-b pid 4242"), "{err}");
    assert_eq!(
        store_a.cycle(cycle).expect("read").map(|c| c.status),
        Some(exo_writeback_core::provisioning::CycleStatus::Running),
        "nothing of the fenced write was stored"
    );
    let err = recorder
        .record(&[in_sync(cycle, 2, jiff::Timestamp::now())])
        .expect_err("the recorder is fenced too");
    assert!(matches!(err, StoreError::Fenced { .. }), "{err:?}");
    let logged = store_a
        .query_logs(&LogQuery {
            cycle: Some(cycle),
            ..LogQuery::default()
        })
        .expect("logs");
    assert_eq!(logged.len(), 1, "only the entry recorded under the lease");
    let start = Instant::now();
    while a.may_write().is_ok() {
        assert!(start.elapsed() < TTL, "the renewer never noticed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(held.lease().is_lost());
    let why = a.may_write().expect_err("lost");
    assert!(why.contains("taken over"), "{why}");
}

#[test]
fn a_frozen_writer_knows_before_any_renewal_that_it_may_not_write() {
    let (_db, settings) = database();
    let a = agent(&settings, "exo-writeback run (a)");
    let held = take(&a, LeaseName::Writer);
    std::thread::sleep(TTL * 2);
    a.may_write().expect("renewed");
    // The renewer stops (as in a process frozen with SIGSTOP): once the local deadline passes,
    // no modify may be sent, whatever the database would say.
    stop_renewer(&a);
    std::thread::sleep(TTL + TTL / 4);
    let why = a.may_write().expect_err("deadline passed");
    assert!(why.contains("not renewed in time"), "{why}");
    assert!(!held.lease().is_valid());
    assert!(!held.lease().is_lost(), "no other agent took it");
}

/// Stops a process's renewals, as SIGSTOP would.
fn stop_renewer(leases: &Leases) {
    leases.stop_renewing();
}

#[test]
fn a_change_of_leader_is_recorded_with_why_and_the_cluster_is_listed() {
    let (_db, settings) = database();
    let a = agent(&settings, "exo-writeback run");
    let b = agent(&settings, "exo-writeback run");
    let c = agent(&settings, "exo-writeback run");
    for x in [&a, &b, &c] {
        x.register().expect("register");
    }
    let lead_a = take(&a, LeaseName::Leader);
    let cluster = c.cluster().expect("cluster");
    let leader = cluster.leader.as_ref().expect("a leads");
    assert_eq!(leader.pid, std::process::id());
    assert_eq!(cluster.agents.len(), 3);
    assert_eq!(cluster.standbys().count(), 2);
    assert_eq!(
        cluster.last_takeover.as_ref().map(|t| t.reason.as_str()),
        Some("first leader of this state")
    );

    drop(lead_a);
    let (lead_b, _) = wait_for(&b, LeaseName::Leader);
    let reason = c
        .cluster()
        .expect("cluster")
        .last_takeover
        .expect("takeover")
        .reason;
    assert!(
        reason.contains("stopped and gave the lease back"),
        "{reason}"
    );

    freeze(b, vec![lead_b]);
    let (_lead_c, waited) = wait_for(&c, LeaseName::Leader);
    assert!(waited <= TTL * 2, "{waited:?}");
    let cluster = c.cluster().expect("cluster");
    let last = cluster.last_takeover.expect("takeover");
    assert!(last.reason.contains("expired at"), "{}", last.reason);
    assert!(last.reason.contains("not renewed"), "{}", last.reason);
    assert_eq!(cluster.takeovers, 3);
    // b stopped renewing: after three lease times it is no longer listed.
    std::thread::sleep(TTL * 3);
    let cluster = c.cluster().expect("cluster");
    assert_eq!(cluster.agents.len(), 2, "{:?}", cluster.agents);
}
