//! A bounded stop (issue 14, item 6): SIGTERM asks `run` to stop after the current object; a
//! cycle that cannot get there within `sync.stop_timeout` is abandoned and the agent exits —
//! its write-ahead intents let the next start log what reached AD, and nothing is written
//! twice.

use std::time::{Duration, Instant};

use exo_writeback_core::provisioning::{Action, LogStatus};
use exo_writeback_store_sqlite::LogQuery;
use exo_writeback_store_sqlite::prelude::*;

use crate::harness::Lab;

/// Modifies the agent applies before the test pause holds it inside the write phase.
const HELD_AFTER: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_abandons_a_cycle_stuck_past_the_stop_timeout_and_the_next_start_logs_its_writes() {
    let lab = Lab::start(12).await;
    let config = std::fs::read_to_string(&lab.config).expect("config");
    let interval = "interval = \"5s\"";
    assert!(config.contains(interval), "{config}");
    std::fs::write(
        &lab.config,
        config.replace(interval, &format!("{interval}\nstop_timeout = \"2s\"")),
    )
    .expect("config");

    // `run`, held by the agent's test pause inside its first cycle's write phase after its
    // third modify: the cycle cannot reach the end of its current object until the pause file
    // is removed, which this test does only after the agent has exited.
    let pause = lab.dir.path().join("pause");
    let log_file = lab.dir.path().join("run.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_exo-writeback"))
        .args(["run", "--config"])
        .arg(&lab.config)
        .env(
            exo_writeback_agent::test_pause::VARIABLE,
            format!("{HELD_AFTER}:{}", pause.display()),
        )
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_file).expect("log file"))
        .spawn()
        .expect("spawn run");
    let started = Instant::now();
    while !pause.exists() {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "run ended before its pause"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no pause within two minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    // Without the bound the agent would wait for the stuck object for ever: the pause file
    // stays until the agent has gone.
    let signalled = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        if signalled.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!(
                "run did not stop within 90 s of SIGTERM with a 2 s stop_timeout:\n{}",
                std::fs::read_to_string(&log_file).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        pause.exists(),
        "the cycle was released before the agent exited"
    );
    let log = std::fs::read_to_string(&log_file).expect("log");
    assert!(exit.success(), "exit {exit:?}:\n{log}");
    assert!(
        log.contains("did not stop in time: abandoned"),
        "the abandoned cycle is not logged:\n{log}"
    );
    std::fs::remove_file(&pause).expect("release");

    // The next start logs, from the abandoned cycle's intents, the modifies that reached AD,
    // and writes the rest once.
    let next = lab.run(&["sync", "--json"]).await;
    assert_eq!(next.code, 0, "{}\n{}", next.stdout, next.stderr);
    let store = lab.store();
    let applied: Vec<_> = store
        .query_logs(&LogQuery {
            statuses: vec![LogStatus::Success],
            limit: 1_000,
            ..LogQuery::default()
        })
        .expect("logs")
        .into_iter()
        .filter(|e| e.action == Action::Update)
        .collect();
    let late = applied
        .iter()
        .filter(|e| {
            e.steps
                .export
                .details
                .contains("which stopped before logging it")
        })
        .count();
    assert!(
        late >= HELD_AFTER,
        "{late} entries logged from the abandoned cycle's intents, expected at least {HELD_AFTER}"
    );
    let mut objects: Vec<_> = applied.iter().map(|e| e.target.dn.clone()).collect();
    let total = objects.len();
    objects.sort();
    objects.dedup();
    assert_eq!(objects.len(), total, "an object was written twice");
    assert_eq!(total, 12, "every mailbox is written once");
}
