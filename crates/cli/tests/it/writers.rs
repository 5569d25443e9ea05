//! One writer per state: `approve`, `undo` and `provision` run beside a live `run` agent on the
//! same state directory and DC. Each waits for the agent's running cycle (saying so) instead of
//! reconciling its write-ahead intents as if a dead process had left them, and the agent, in
//! turn, never keeps them out for longer than a cycle.

use std::time::Duration;

use exo_writeback_core::provisioning::{Action, CycleKind, JobState, LogStatus};
use exo_writeback_store_sqlite::LogQuery;
use exo_writeback_store_sqlite::prelude::*;

use crate::harness::{DOMAIN, Lab, cn, dn};

/// Starts `exo-writeback run` on the lab's configuration.
pub(crate) fn spawn_run(lab: &Lab) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_exo-writeback"))
        .args(["run", "--config"])
        .arg(&lab.config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn run")
}

/// SIGTERM, then the agent's exit (it finishes the current object); its stderr.
pub(crate) async fn stop(mut child: std::process::Child) -> String {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let started = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "run did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_and_provision_beside_a_live_run_wait_for_its_cycle_and_leave_its_intents_alone() {
    let users = 400;
    let lab = Lab::start(users).await;
    lab.write_config("", "threshold = 1000000");
    // undo and provision ask the running agent, with the operator token they can read.
    crate::service::add_tokens(&lab);
    let first = lab.run(&["sync", "--json"]).await;
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let undone = first.json()["cycle"].as_i64().expect("cycle id");
    // Every mailbox changes in the cloud: the agent's first cycle rewrites every object, in
    // chunks behind write-ahead intents.
    for i in 1..=users {
        lab.update(i, |m| m.set_custom_attribute(3, &format!("round two {i}")));
    }
    let agent = spawn_run(&lab);
    let started = std::time::Instant::now();
    while lab.store().intents().expect("intents").is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the agent's cycle never started writing"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The agent is writing a chunk: undo the first cycle and provision one mailbox now.
    let undo_cycle = undone.to_string();
    let identity = format!("{}@{DOMAIN}", cn(7));
    let undo_args = ["undo", "--cycle", undo_cycle.as_str()];
    let provision_args = ["provision", identity.as_str(), "--json"];
    let (undo, provision) = tokio::join!(lab.run(&undo_args), lab.run(&provision_args));
    let agent_log = stop(agent).await;
    assert_eq!(undo.code, 0, "{}\n{}", undo.stdout, undo.stderr);
    assert_eq!(
        provision.code, 0,
        "{}\n{}",
        provision.stdout, provision.stderr
    );

    let store = lab.store();
    let entries = store
        .query_logs(&LogQuery {
            limit: 1_000_000,
            ..LogQuery::default()
        })
        .expect("logs");
    // Nobody stopped: no change may be logged as left by a stopped process.
    let late: Vec<_> = entries
        .iter()
        .filter(|e| {
            e.steps
                .export
                .details
                .contains("which stopped before logging it")
        })
        .collect();
    assert!(
        late.is_empty(),
        "{} changes of a live cycle were logged by another command as left by a stopped one, e.g. {:#?}",
        late.len(),
        late.first()
    );
    // The agent's first cycle logged each of its writes once.
    let agent_cycle = store
        .recent_cycles(100)
        .expect("cycles")
        .into_iter()
        .filter(|c| c.kind == CycleKind::Delta)
        .map(|c| c.id)
        .min()
        .expect("the agent's cycle");
    for i in 1..=users {
        let applied = entries
            .iter()
            .filter(|e| {
                e.cycle == agent_cycle
                    && e.action == Action::Update
                    && e.status == LogStatus::Success
                    && e.target
                        .dn
                        .as_deref()
                        .is_some_and(|d| d.eq_ignore_ascii_case(&dn(i)))
            })
            .count();
        assert_eq!(
            applied,
            1,
            "{}: applied entries of cycle {agent_cycle}",
            cn(i)
        );
    }
    assert!(store.intents().expect("intents").is_empty());
    // Both asked the agent, which ran them behind its state lock after its chunk.
    for (what, run) in [("undo", &undo), ("provision", &provision)] {
        assert!(
            run.stderr.contains("asking the running agent"),
            "{what} did not ask the running agent:\n{}",
            run.stderr
        );
    }
    assert!(!agent_log.contains("panicked"), "{agent_log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_beside_a_live_run_is_not_kept_out_by_the_agent() {
    let lab = Lab::start(20).await;
    lab.write_config("", "threshold = 1000000");
    let first = lab.run(&["sync", "--json"]).await;
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    // Three objects lose a value: a threshold of 1 holds the agent's cycle.
    lab.write_config("", "threshold = 1");
    // approve asks the running agent, with the operator token it can read.
    crate::service::add_tokens(&lab);
    for i in 1..=3 {
        lab.update(i, |m| m.set_custom_attribute(5, ""));
    }
    let agent = spawn_run(&lab);
    let started = std::time::Instant::now();
    let held = loop {
        if let JobState::ThresholdExceeded { cycle } = lab.job_state() {
            break cycle;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the agent's cycle was not held"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let approve = tokio::time::timeout(
        Duration::from_secs(120),
        lab.run(&["approve", &held.0.to_string()]),
    )
    .await
    .expect("approve beside the agent finishes");
    let agent_log = stop(agent).await;
    assert_eq!(approve.code, 0, "{}\n{}", approve.stdout, approve.stderr);
    for i in 1..=3 {
        let obj = lab.user(i).await;
        assert!(
            obj.attributes.get("extensionAttribute5").is_empty(),
            "{} keeps extensionAttribute5",
            cn(i)
        );
    }
    assert!(!agent_log.contains("panicked"), "{agent_log}");
}
