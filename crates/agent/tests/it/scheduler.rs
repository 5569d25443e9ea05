//! The agent's loop: a cycle every interval, a full reconcile every reconcile interval, no
//! cycle before a quarantine's next retry, and the state lock free between cycles.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use exo_writeback_agent::lock::StateLock;
use exo_writeback_agent::scheduler::{Clock, Schedule, Scheduler, Turn};
use exo_writeback_core::provisioning::{CycleKind, JobState, Pause};
use exo_writeback_core::settings::WritebackSettings;
use exo_writeback_engine::testing::{FakeDirectory, FakeSource, users};
use exo_writeback_engine::{Engine, EngineOptions};
use exo_writeback_store_sqlite::SqliteStore;
use exo_writeback_store_sqlite::prelude::*;
use jiff::{SignedDuration, Timestamp};

/// A clock that jumps to each wake-up at once, recording it, and asks the loop to stop after
/// `turns` waits. While the loop waits it checks that the state lock is free.
#[derive(Clone)]
struct TestClock {
    now: Arc<Mutex<Timestamp>>,
    wakes: Arc<Mutex<Vec<Timestamp>>>,
    turns: usize,
    state_dir: std::path::PathBuf,
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().expect("lock")
    }

    async fn sleep_until(&self, at: Timestamp, _stop: &AtomicBool) -> bool {
        // Between cycles another writer (approve, undo, provision) gets the state at once.
        let other = tokio::time::timeout(
            Duration::from_secs(5),
            StateLock::acquire(&self.state_dir, "exo-writeback approve"),
        )
        .await
        .expect("the state lock is free between cycles")
        .expect("lock");
        drop(other);
        let mut wakes = self.wakes.lock().expect("lock");
        wakes.push(at);
        *self.now.lock().expect("lock") = at;
        wakes.len() >= self.turns
    }
}

struct Agent {
    engine: Engine<FakeSource, FakeDirectory, SqliteStore>,
    clock: TestClock,
    scheduler: Scheduler<TestClock>,
    _tmp: tempfile::TempDir,
}

fn agent(turns: usize, interval_secs: i64, source: FakeSource, dir: FakeDirectory) -> Agent {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open_in(tmp.path()).expect("store");
    let engine = Engine::new(
        source,
        dir,
        store,
        WritebackSettings::default().resolve().expect("settings"),
        EngineOptions::default(),
    );
    let clock = TestClock {
        now: Arc::new(Mutex::new(Timestamp::now())),
        wakes: Arc::default(),
        turns,
        state_dir: tmp.path().to_path_buf(),
    };
    let scheduler = Scheduler {
        clock: clock.clone(),
        schedule: Schedule {
            interval: SignedDuration::from_secs(interval_secs),
            reconcile_interval: SignedDuration::from_secs(180),
            log_retention_days: 30,
        },
        state: std::sync::Arc::new(exo_writeback_agent::state::State::sqlite(
            tmp.path().to_path_buf(),
        )),
        stop: Arc::default(),
    };
    Agent {
        engine,
        clock,
        scheduler,
        _tmp: tmp,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_every_interval_and_a_full_reconcile_every_reconcile_interval() {
    let lab = users(3, Timestamp::now(), &[]);
    let mut a = agent(6, 60, lab.source, lab.dir);
    let started = a.clock.now();
    let mut kinds = Vec::new();
    a.scheduler
        .run(&mut a.engine, |turn| match turn {
            Turn::Cycle(r) => kinds.push(r.kind),
            other => panic!("{other:?}"),
        })
        .await
        .expect("run");
    use CycleKind::{Delta, FullReconcile, Initial};
    assert_eq!(
        kinds,
        [Initial, Delta, Delta, FullReconcile, Delta, Delta],
        "cycles at 0, 60, 120, 180 (3 min after the initial cycle), 240, 300 s"
    );
    let wakes = a.clock.wakes.lock().expect("lock").clone();
    let offsets: Vec<i64> = wakes
        .iter()
        .map(|w| w.duration_since(started).as_secs())
        .collect();
    assert_eq!(offsets, [60, 120, 180, 240, 300, 360]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantined_job_sleeps_until_its_next_retry() {
    let lab = users(3, Timestamp::now(), &[]);
    // Exchange Online cannot be read at all: the cycle is quarantined (retry in a minute).
    *lab.source.fail_after.lock().expect("lock") = Some(0);
    let mut a = agent(2, 5, lab.source, lab.dir);
    let mut turns = Vec::new();
    a.scheduler
        .run(&mut a.engine, |turn| {
            turns.push(match turn {
                Turn::Cycle(r) => format!("cycle {:?}", r.status),
                Turn::Quarantined { .. } => "quarantined".to_string(),
                Turn::Held(c) => format!("held {c}"),
                Turn::Paused(p) => format!("paused by {}", p.by),
                Turn::Failed(e) => format!("failed: {e}"),
            })
        })
        .await
        .expect("run");
    let JobState::Quarantine { next_retry, .. } = a.engine.store.job_state().expect("state") else {
        panic!("not quarantined");
    };
    // The first cycle failed before reading anything (quarantine); the second turn found the
    // retry not due and ran nothing.
    assert!(
        turns[0].starts_with("failed: reading Exchange Online failed"),
        "{turns:?}"
    );
    assert_eq!(turns[1], "quarantined", "{turns:?}");
    let wakes = a.clock.wakes.lock().expect("lock").clone();
    assert_eq!(
        wakes[0], next_retry,
        "the agent sleeps until the next retry (a minute), beyond its interval (5 s)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_job_runs_no_cycle_and_says_so_every_turn_until_resumed() {
    let lab = users(3, Timestamp::now(), &[]);
    let modifies = lab.dir.modifies.clone();
    let mut a = agent(3, 60, lab.source, lab.dir);
    let pause = Pause {
        by: "alice".into(),
        since: Timestamp::now(),
        reason: Some("moving the DCs".into()),
    };
    a.engine.store.set_pause(Some(&pause)).expect("pause");
    let mut turns = Vec::new();
    a.scheduler
        .run(&mut a.engine, |turn| {
            turns.push(match turn {
                Turn::Paused(p) => format!("paused by {}", p.by),
                other => format!("{other:?}"),
            })
        })
        .await
        .expect("run");
    assert_eq!(
        turns,
        vec!["paused by alice"; 3],
        "one turn per interval, no cycle"
    );
    assert!(modifies.lock().expect("lock").is_empty());
    assert!(a.engine.store.recent_cycles(5).expect("cycles").is_empty());
    // The state was kept; resumed, the next turn runs the initial cycle.
    assert_eq!(a.engine.store.job_state().expect("state"), JobState::NotRun);
    a.engine.store.set_pause(None).expect("resume");
    a.clock.wakes.lock().expect("lock").clear();
    let mut kinds = Vec::new();
    a.scheduler
        .run(&mut a.engine, |turn| {
            if let Turn::Cycle(r) = turn {
                kinds.push(r.kind);
            }
        })
        .await
        .expect("run");
    assert_eq!(kinds.first(), Some(&CycleKind::Initial));
    assert_eq!(modifies.lock().expect("lock").len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cycles_start_an_interval_apart_and_one_that_overruns_is_followed_at_once() {
    let lab = users(3, Timestamp::now(), &[]);
    let mut a = agent(4, 5, lab.source, lab.dir);
    let started = a.clock.now();
    // Each turn's cycle "takes" the time given here: the clock moves on while it runs (the
    // callback hears each turn after its cycle and before the loop decides when to wake).
    let takes = [3, 7, 5, 1];
    let mut turn = 0;
    let now = a.clock.now.clone();
    a.scheduler
        .run(&mut a.engine, |t| {
            assert!(matches!(t, Turn::Cycle(_)), "{t:?}");
            let mut now = now.lock().expect("lock");
            *now += SignedDuration::from_secs(takes[turn]);
            turn += 1;
        })
        .await
        .expect("run");
    let wakes = a.clock.wakes.lock().expect("lock").clone();
    let offsets: Vec<i64> = wakes
        .iter()
        .map(|w| w.duration_since(started).as_secs())
        .collect();
    // Start to start: 0 → 5 (a 3 s cycle waits 2 s); 5 → 12 (a 7 s cycle overran its 5 s:
    // the next starts when it ends, none skipped, none at once beside it); 12 → 17 (a cycle
    // of exactly the interval); 17 → 22.
    assert_eq!(offsets, [5, 12, 17, 22]);
}
