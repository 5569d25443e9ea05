//! What quarantines the job and what does not (docs/RELIABILITY.md, "Quarantine"): a start
//! that cannot bind or fails TLS is quarantined, configuration mistakes are not; `run` waits
//! out a quarantine it cannot even start a cycle from, then starts. (A refusing token endpoint:
//! the "token endpoint refuses" round of `faults::exchange_online_faults_…`.)

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use exo_writeback_agent::compose;
use exo_writeback_agent::scheduler::Clock;
use exo_writeback_core::provisioning::{CycleStatus, JobState};
use exo_writeback_engine::CycleMode;
use exo_writeback_store_sqlite::prelude::*;
use jiff::Timestamp;

use crate::harness::{Lab, wait_exit};

/// A configuration mistake: its name, how it edits the file, and what the error names.
type Mistake = (
    &'static str,
    Box<dyn FnOnce(String) -> String>,
    &'static str,
);

fn cycles(lab: &Lab) -> usize {
    lab.store().recent_cycles(100).expect("cycles").len()
}

/// The configuration file with `f` applied to its text.
fn edit_config(lab: &Lab, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(&lab.config).expect("config");
    std::fs::write(&lab.config, f(text)).expect("config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_mistakes_are_not_quarantined_and_a_tls_failure_is() {
    let lab = Lab::start(4).await;
    let first = lab.run(&["sync"]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let url = lab.dc.url.clone();
    let ca = lab.dc.ca_file.display().to_string();
    let mistakes: Vec<Mistake> = vec![
        (
            "a broken file",
            Box::new(|t: String| t.replace("[writeback]", "[writeback")),
            "exo-writeback.toml",
        ),
        (
            "plain LDAP not allowed",
            Box::new({
                let url = url.clone();
                move |t: String| t.replace(&url, &url.replace("ldaps://", "ldap://"))
            }),
            "allow_insecure_ldap",
        ),
        (
            "a missing CA file",
            Box::new({
                let ca = ca.clone();
                move |t: String| t.replace(&ca, "/nonexistent/lab-ca.pem")
            }),
            "/nonexistent/lab-ca.pem",
        ),
    ];
    for (name, edit, named) in mistakes {
        lab.write_config("", "");
        edit_config(&lab, edit);
        let before = cycles(&lab);
        let r = lab.run(&["sync"]).await;
        assert_eq!(r.code, 2, "{name}: {}", r.stderr);
        assert!(r.stderr.contains(named), "{name}: {}", r.stderr);
        assert_eq!(lab.job_state(), JobState::Active, "{name}: quarantined");
        assert_eq!(cycles(&lab), before, "{name}: a cycle was recorded");
    }

    // No CA file: the system's trust store does not know the lab's CA, the TLS handshake
    // fails — not a mistake in the file but a failed start, quarantined.
    lab.write_config("", "");
    edit_config(&lab, |t| {
        t.lines()
            .filter(|l| !l.starts_with("ca_file"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let before = cycles(&lab);
    let r = lab.run(&["sync"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("unknown issuer"), "{}", r.stderr);
    let JobState::Quarantine { reason, .. } = lab.job_state() else {
        panic!("a TLS failure must quarantine: {:?}", lab.job_state());
    };
    assert!(reason.contains("unknown issuer"), "{reason}");
    let recent = lab.store().recent_cycles(1).expect("cycles");
    assert_eq!(cycles(&lab), before + 1);
    assert!(
        matches!(&recent[0].status, CycleStatus::Quarantined { reason } if reason.contains("unknown issuer")),
        "{:?}",
        recent[0].status
    );
}

/// `exo-writeback run` that cannot bind does not exit: it records the failed start
/// (quarantine), says it waits for the next retry, and tries nothing more until then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_that_cannot_start_waits_for_the_quarantines_retry() {
    let lab = Lab::start(4).await;
    lab.set_password("not-the-password-1!");
    let log = lab.dir.path().join("run.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_exo-writeback"))
        .args(["run", "--config"])
        .arg(&lab.config)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn");
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("waiting for the quarantine's next retry")
    {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "run exited: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(started.elapsed() < Duration::from_secs(60), "no wait");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let JobState::Quarantine { next_retry, .. } = lab.job_state() else {
        panic!("not quarantined: {:?}", lab.job_state());
    };
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("invalid credentials") && text.contains(&next_retry.to_string()),
        "{text}"
    );
    // Two more seconds: still waiting, no second attempt (one quarantined cycle).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(child.try_wait().expect("wait").is_none(), "run exited");
    assert_eq!(cycles(&lab), 1);
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let status = wait_exit(&mut child, Duration::from_secs(30)).await;
    assert!(status.success(), "{status}");
}

/// A clock that wakes at once from each wait, recording it; on the `fix_at`-th wake it makes
/// the start possible (the password right, the retry due).
#[derive(Clone)]
struct WakingClock {
    wakes: Arc<Mutex<Vec<Timestamp>>>,
    fix_at: usize,
    fix: Arc<dyn Fn() + Send + Sync>,
}

impl Clock for WakingClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    async fn sleep_until(&self, at: Timestamp, _stop: &AtomicBool) -> bool {
        let n = {
            let mut wakes = self.wakes.lock().expect("lock");
            wakes.push(at);
            wakes.len()
        };
        if n == self.fix_at {
            (self.fix)();
        }
        n > 5
    }
}

/// The agent's start (`agent::compose::start_agent`, what `run` calls) over a DC it cannot
/// bind to: it waits for the quarantine's next retry; a wake before the retry is due tries
/// nothing (the back-off does not grow); once the retry is due and the password right, it
/// starts, and its first cycle clears the quarantine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_waits_out_a_quarantine_it_cannot_start_from_then_starts() {
    let lab = Arc::new(Lab::start(4).await);
    lab.set_password("not-the-password-1!");
    let config = compose::load_config(&lab.config).expect("config");
    let fix = {
        let lab = lab.clone();
        move || {
            lab.set_password(&lab.dc.password());
            lab.make_retry_due();
        }
    };
    let clock = WakingClock {
        wakes: Arc::default(),
        fix_at: 2,
        fix: Arc::new(fix),
    };
    let stop = AtomicBool::new(false);
    let state =
        exo_writeback_agent::state::State::open(&config, "exo-writeback run").expect("state");
    let engine = compose::start_agent(&config, &state, &clock, &stop)
        .await
        .expect("start")
        .expect("started, not stopped");
    let wakes = clock.wakes.lock().expect("lock").clone();
    let JobState::Quarantine {
        reason, next_retry, ..
    } = lab.job_state()
    else {
        panic!("the failed start quarantines: {:?}", lab.job_state());
    };
    assert!(reason.contains("invalid credentials"), "{reason}");
    // The retry time the agent waited for was moved by the fix (made due); the two waits were
    // for the one retry of the one failed start.
    assert_eq!(wakes.len(), 2, "{wakes:?}");
    assert_eq!(
        wakes[0], wakes[1],
        "a wake before the retry grew the back-off"
    );
    assert!(next_retry < wakes[0], "{next_retry} {wakes:?}");
    assert_eq!(cycles(&lab), 1, "one failed start recorded");
    let mut engine = engine;
    let report = engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(report.status, CycleStatus::Completed);
    assert_eq!(lab.job_state(), JobState::Active);
}
