//! An administrator's first week (issue 18): undo that sticks, a way to say no (`reject`),
//! pause and resume, a `restart` that needs its scope, a cycle whose scope matches nothing,
//! counts that add up, quieter logs and a `status` that says whether an agent runs — each
//! through the real binary, against a lab DC and the emulator.

use std::time::Duration;

use exo_writeback_core::mailbox::Mailbox;
use exo_writeback_store_sqlite::prelude::*;
use serde_json::Value;

use crate::harness::{DOMAIN, Lab, Run, cn, texts};
use crate::writers::{spawn_run, stop};

/// The log entries a `logs --format json` run printed.
fn entries(run: &Run) -> Vec<Value> {
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn smtp(i: u32) -> String {
    format!("{}@{DOMAIN}", cn(i))
}

/// The entries of one mailbox among `entries`.
fn of(entries: &[Value], i: u32) -> Vec<&Value> {
    entries
        .iter()
        .filter(|e| e["source"]["primary_smtp_address"] == smtp(i).as_str())
        .collect()
}

fn count(v: &Value, name: &str) -> u64 {
    v["counts"][name].as_u64().unwrap_or(0)
}

/// Every mailbox read is in scope or skipped (and said why); every object in scope was
/// written, already in sync, held, kept by a pin, failed or left pending.
fn assert_counts_add_up(what: &str, report: &Value) {
    let imported = count(report, "imported");
    let in_scope = count(report, "in_scope");
    let skipped = count(report, "skipped");
    assert_eq!(
        imported,
        in_scope + skipped,
        "{what}: imported = in scope + skipped: {report}"
    );
    let parts: u64 = [
        "written",
        "unchanged",
        "held",
        "pinned",
        "failed",
        "pending",
    ]
    .iter()
    .map(|n| count(report, n))
    .sum();
    assert_eq!(
        in_scope, parts,
        "{what}: in scope = written + unchanged + held + pinned + failed + pending: {report}"
    );
    let causes: u64 = report["skipped_causes"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    assert_eq!(
        causes, skipped,
        "{what}: every skip has its cause: {report}"
    );
}

async fn ext3(lab: &Lab, i: u32) -> Vec<String> {
    texts(&lab.user(i).await, "extensionAttribute3")
}

fn sync_json(run: &Run) -> Value {
    assert!(
        run.code == 0 || run.code == 1,
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    run.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_sticks_until_the_cloud_value_changes_again() {
    let lab = Lab::start(5).await;
    let first = lab.run(&["sync", "--json"]).await;
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let before: Vec<Vec<String>> = {
        let mut v = Vec::new();
        for i in 1..=3 {
            v.push(texts(&lab.user(i).await, "extensionAttribute3"));
        }
        v
    };
    for i in 1..=3 {
        lab.update(i, |m| m.set_custom_attribute(3, &format!("three-{i}")));
    }
    let delta = sync_json(&lab.run(&["sync", "--json"]).await);
    assert_eq!(delta["counts"]["written"], 3, "{delta}");
    let undone = delta["cycle"].to_string();

    let undo = lab.run(&["undo", "--cycle", &undone]).await;
    assert_eq!(undo.code, 0, "{}\n{}", undo.stdout, undo.stderr);
    assert!(
        undo.stdout
            .contains("3 attributes on 3 objects pinned until their Exchange Online value changes"),
        "{}",
        undo.stdout
    );
    assert!(
        undo.stdout.contains("exo-writeback unpin --object"),
        "{}",
        undo.stdout
    );
    for i in 1..=3u32 {
        assert_eq!(ext3(&lab, i).await, before[i as usize - 1], "undone");
    }

    // Touched again in Exchange Online, the values unchanged (a delta passes over what it
    // processed at the same WhenChangedUTC): the next delta reads them and leaves them as
    // undone, saying why.
    for i in 1..=3 {
        lab.update(i, |_| {});
    }
    let next = sync_json(&lab.run(&["sync", "--json"]).await);
    assert_eq!(next["counts"]["written"], 0, "{next}");
    assert_eq!(next["counts"]["pinned"], 3, "{next}");
    for i in 1..=3u32 {
        assert_eq!(
            ext3(&lab, i).await,
            before[i as usize - 1],
            "the undo stuck"
        );
    }
    let logged = entries(
        &lab.run(&[
            "logs",
            "--all",
            "--format",
            "json",
            "--cycle",
            &next["cycle"].to_string(),
        ])
        .await,
    );
    let mine = of(&logged, 1);
    assert_eq!(mine.len(), 1, "{logged:?}");
    assert_eq!(mine[0]["reason"]["code"], "PinnedByUndo", "{}", mine[0]);
    assert_eq!(mine[0]["status"], "skipped", "{}", mine[0]);
    let message = mine[0]["reason"]["message"].as_str().unwrap_or("");
    assert!(message.contains("extensionAttribute3"), "{message}");
    assert!(
        message.contains(&format!("cycle {}", undo_cycle(&undo))),
        "{message}"
    );

    let status = lab.run(&["status"]).await;
    assert!(
        status
            .stdout
            .contains("pins:       3 attributes on 3 objects"),
        "{}",
        status.stdout
    );
    // The DC the agent used, recorded when it connected (dc-status.json), and no failover.
    assert!(
        status.stdout.contains(
            "DC in use:  lab.example.test: DC dc1.lab.example.test (configured, global catalog)"
        ),
        "{}",
        status.stdout
    );
    assert!(!status.stdout.contains("failover:"), "{}", status.stdout);
    let status = lab.run(&["status", "--json"]).await.json();
    assert_eq!(status["pins"]["attributes"], 3, "{status}");
    assert_eq!(status["pins"]["objects"], 3, "{status}");
    assert_eq!(
        status["directory"]["domains"][0]["dc"], "dc1.lab.example.test",
        "{status}"
    );

    // A full reconcile leaves them too.
    let full = sync_json(&lab.run(&["sync", "--full", "--json"]).await);
    assert_eq!(full["counts"]["written"], 0, "{full}");
    assert_eq!(ext3(&lab, 3).await, before[2]);

    // A new value in Exchange Online releases the pin and is written.
    lab.update(1, |m| m.set_custom_attribute(3, "three again"));
    let r = sync_json(&lab.run(&["sync", "--json"]).await);
    assert_eq!(r["counts"]["written"], 1, "{r}");
    assert_eq!(ext3(&lab, 1).await, ["three again"]);
    assert_eq!(ext3(&lab, 2).await, before[1]);

    // Released by hand: one object, then all; each time a full reconcile writes the cloud
    // value of what was released, and only that.
    let smtp2 = smtp(2);
    for (args, released) in [
        (vec!["unpin", "--object", &smtp2], 2),
        (vec!["unpin", "--all"], 3),
    ] {
        let u = lab.run(&args).await;
        assert_eq!(u.code, 0, "{}\n{}", u.stdout, u.stderr);
        assert!(
            u.stdout.contains("released 1 pinned attribute on 1 object"),
            "{}",
            u.stdout
        );
        lab.run(&["sync", "--full", "--json"]).await;
        assert_eq!(ext3(&lab, released).await, [format!("three-{released}")]);
        if released == 2 {
            assert_eq!(ext3(&lab, 3).await, before[2], "still pinned");
        }
    }
    let status = lab.run(&["status", "--json"]).await.json();
    assert_eq!(status["pins"]["attributes"], 0, "{status}");
}

/// The undo cycle's number, from the text report's first line (`cycle N (Undo): …`).
fn undo_cycle(run: &Run) -> String {
    run.stdout
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("cycle ")?;
            let (n, kind) = rest.split_once(' ')?;
            kind.starts_with("(Undo)").then(|| n.to_string())
        })
        .unwrap_or_else(|| panic!("no undo cycle in {}", run.stdout))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_cycle_can_be_rejected_and_is_not_held_again() {
    let lab = Lab::start(6).await;
    lab.write_config("", "threshold = 1000000");
    let first = lab.run(&["sync", "--json"]).await;
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    lab.write_config("", "threshold = 2");
    for i in 1..=4 {
        lab.update(i, |m| m.set_custom_attribute(5, ""));
    }
    let held = lab.run(&["sync", "--json"]).await;
    assert_eq!(held.code, 1, "{}", held.stdout);
    let report = held.json();
    assert_eq!(report["status"], "ThresholdExceeded", "{report}");
    let cycle = report["cycle"].to_string();

    // Held objects are logged as such while the cycle waits.
    let waiting = entries(
        &lab.run(&[
            "logs", "--format", "json", "--status", "held", "--cycle", &cycle,
        ])
        .await,
    );
    assert_eq!(waiting.len(), 4, "{waiting:?}");
    for e in &waiting {
        assert_eq!(e["status"], "held", "{e}");
        assert_eq!(e["reason"]["code"], "Held", "{e}");
        assert!(
            e["modified"][0]["attribute"] == "extensionAttribute5",
            "{e}"
        );
    }

    let reject = lab
        .run(&["reject", &cycle, "--reason", "not during the audit"])
        .await;
    assert_eq!(reject.code, 0, "{}\n{}", reject.stdout, reject.stderr);
    assert!(
        reject.stdout.contains(&format!(
            "rejected the changes held by cycle {cycle}: 4 objects"
        )),
        "{}",
        reject.stdout
    );
    for forbidden in ["CycleId(", "Some(", "{ ", "Pending", "Rejected {"] {
        assert!(!reject.stdout.contains(forbidden), "{}", reject.stdout);
    }
    let status = lab.run(&["status", "--json"]).await.json();
    assert_eq!(status["job_state"], "Active", "{status}");
    let reject_cycle = status["last_command"]["cycle"].to_string();
    assert_eq!(status["last_command"]["kind"], "Reject", "{status}");
    let rejected = entries(
        &lab.run(&["logs", "--format", "json", "--cycle", &reject_cycle])
            .await,
    );
    assert_eq!(rejected.len(), 4, "{rejected:?}");
    for e in &rejected {
        assert_eq!(e["status"], "skipped", "{e}");
        assert_eq!(e["reason"]["code"], "Rejected", "{e}");
        let message = e["reason"]["message"].as_str().unwrap_or("");
        assert!(message.contains("not during the audit"), "{message}");
        assert!(message.contains("rejected by"), "{message}");
    }
    for i in 1..=4 {
        assert_eq!(
            texts(&lab.user(i).await, "extensionAttribute5"),
            [format!("five-{i}")]
        );
    }

    // The next delta re-reads the same mailboxes (the overlap) and is not held again.
    let next = lab.run(&["sync", "--json"]).await;
    assert_eq!(next.code, 0, "{}\n{}", next.stdout, next.stderr);
    assert_eq!(next.json()["status"], "Completed");
    for i in 1..=4 {
        assert_eq!(
            texts(&lab.user(i).await, "extensionAttribute5"),
            [format!("five-{i}")]
        );
    }
    // A rejected cycle cannot be approved any more, in plain words.
    let approve = lab.run(&["approve", &cycle]).await;
    assert_eq!(approve.code, 2, "{}", approve.stdout);
    assert!(
        approve.stderr.contains("were rejected by"),
        "{}",
        approve.stderr
    );
    for forbidden in ["CycleId(", "Rejected {", "Some("] {
        assert!(!approve.stderr.contains(forbidden), "{}", approve.stderr);
    }
    // A later real change in Exchange Online re-plans the object; a full reconcile leaves
    // the others rejected.
    lab.update(1, |m| m.set_custom_attribute(5, "five, again"));
    let r = lab.run(&["sync", "--full", "--json"]).await.json();
    assert_eq!(r["counts"]["written"], 1, "{r}");
    assert_eq!(
        texts(&lab.user(1).await, "extensionAttribute5"),
        ["five, again"]
    );
    assert_eq!(texts(&lab.user(2).await, "extensionAttribute5"), ["five-2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_cycles_until_resume() {
    let lab = Lab::start(3).await;
    let first = lab.run(&["sync"]).await;
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let pause = lab.run(&["pause", "--reason", "moving the DCs"]).await;
    assert_eq!(pause.code, 0, "{}\n{}", pause.stdout, pause.stderr);
    assert!(pause.stdout.contains("paused"), "{}", pause.stdout);
    let status = lab.run(&["status"]).await;
    assert!(
        status.stdout.contains("job state:  Paused"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("moving the DCs"),
        "{}",
        status.stdout
    );
    let json = lab.run(&["status", "--json"]).await.json();
    assert_eq!(json["job_state"], "Paused", "{json}");
    assert!(
        json["paused"]["since"]
            .as_str()
            .is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()),
        "{json}"
    );
    assert!(
        !json["paused"]["by"].as_str().unwrap_or("").is_empty(),
        "{json}"
    );

    lab.update(1, |m| m.set_custom_attribute(3, "while paused"));
    let refused = lab.run(&["sync"]).await;
    assert_eq!(refused.code, 2, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("paused") && refused.stderr.contains("exo-writeback resume"),
        "{}",
        refused.stderr
    );
    // The agent keeps running and says so, but runs no cycle.
    let mut agent = spawn_run(&lab);
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(
        agent.try_wait().expect("wait").is_none(),
        "the agent exited"
    );
    let log = stop(agent).await;
    assert!(log.contains("the job is paused"), "{log}");
    assert!(texts(&lab.user(1).await, "extensionAttribute3").is_empty());
    assert_eq!(
        lab.run(&["status", "--json"]).await.json()["job_state"],
        "Paused"
    );

    let resume = lab.run(&["resume"]).await;
    assert_eq!(resume.code, 0, "{}\n{}", resume.stdout, resume.stderr);
    assert_eq!(
        lab.run(&["status", "--json"]).await.json()["job_state"],
        "Active"
    );
    let r = lab.run(&["sync", "--json"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        texts(&lab.user(1).await, "extensionAttribute3"),
        ["while paused"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_whose_scope_matches_nothing_warns_and_fails() {
    let lab = Lab::start(4).await;
    lab.write_config(
        "",
        &format!("container_scope = [\"OU=Elsewhere,{}\"]", lab.dc.base_dn),
    );
    let r = lab.run(&["sync"]).await;
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("NothingInScope"), "{}", r.stdout);
    assert!(r.stdout.contains("OutsideContainerScope 4"), "{}", r.stdout);
    assert!(r.stdout.contains("container_scope"), "{}", r.stdout);
    // Nothing was written, and the next cycle (after the fix) is still an initial one.
    lab.write_config("", "");
    let fixed = lab.run(&["sync", "--json"]).await;
    assert_eq!(fixed.code, 0, "{}\n{}", fixed.stdout, fixed.stderr);
    let fixed = fixed.json();
    assert_eq!(fixed["kind"], "Initial", "{fixed}");
    assert_eq!(fixed["counts"]["written"], 4, "{fixed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_add_up_on_every_kind_of_cycle() {
    let lab = Lab::start(8).await;
    lab.write_config("", "threshold = 1000000");
    // Not cloud-managed, a value too long for AD, and a mailbox no AD object belongs to.
    lab.update(2, |m| m.is_exchange_cloud_managed = false);
    lab.update(6, |m| m.set_custom_attribute(1, &"z".repeat(1500)));
    let orphan = Mailbox {
        external_directory_object_id: Some(uuid::Uuid::new_v4().to_string()),
        primary_smtp_address: Some(format!("orphan@{DOMAIN}")),
        windows_email_address: Some(format!("orphan@{DOMAIN}")),
        email_addresses: vec![format!("SMTP:orphan@{DOMAIN}")],
        alias: Some("orphan".into()),
        recipient_type_details: "UserMailbox".into(),
        is_dir_synced: true,
        is_exchange_cloud_managed: true,
        ..Mailbox::default()
    };
    lab.sim.state().add_mailbox(orphan).expect("orphan");

    let initial = sync_json(&lab.run(&["sync", "--json"]).await);
    assert_counts_add_up("initial", &initial);
    assert_eq!(count(&initial, "imported"), 9, "{initial}");
    assert_eq!(count(&initial, "skipped"), 2, "{initial}");
    assert_eq!(initial["skipped_causes"]["NotInScope"], 1, "{initial}");
    assert_eq!(initial["skipped_causes"]["TargetNotFound"], 1, "{initial}");

    // A delta with one change: the rest of the overlap window was processed at the same
    // WhenChangedUTC by the initial cycle, so it is passed over, not re-read.
    lab.update(3, |m| m.set_custom_attribute(7, "seven"));
    let delta = sync_json(&lab.run(&["sync", "--json"]).await);
    assert_counts_add_up("delta", &delta);
    assert_eq!(count(&delta, "written"), 1, "{delta}");
    assert_eq!(count(&delta, "reread"), 0, "{delta}");
    let text = lab.run(&["sync"]).await;
    assert!(
        !text.stdout.contains("re-read in the overlap"),
        "{}",
        text.stdout
    );

    // A held cycle counts what it holds; reject, approve and undo add up too.
    lab.write_config("", "threshold = 1");
    for i in [1, 3] {
        lab.update(i, |m| m.set_custom_attribute(5, ""));
    }
    let held = sync_json(&lab.run(&["sync", "--json"]).await);
    assert_eq!(held["status"], "ThresholdExceeded", "{held}");
    assert_counts_add_up("held", &held);
    assert_eq!(count(&held, "held"), 2, "{held}");
    let reject = lab
        .run(&["reject", &held["cycle"].to_string(), "--json"])
        .await;
    assert_counts_add_up("reject", &sync_json(&reject));
    for i in [4, 5] {
        lab.update(i, |m| m.set_custom_attribute(5, ""));
    }
    let held = sync_json(&lab.run(&["sync", "--json"]).await);
    assert_counts_add_up("held again", &held);
    let approve = sync_json(
        &lab.run(&["approve", &held["cycle"].to_string(), "--json"])
            .await,
    );
    assert_counts_add_up("approve", &approve);
    assert_eq!(count(&approve, "written"), 2, "{approve}");
    let undo = sync_json(
        &lab.run(&["undo", "--cycle", &approve["cycle"].to_string(), "--json"])
            .await,
    );
    assert_counts_add_up("undo", &undo);
    lab.write_config("", "threshold = 1000000");
    let full = sync_json(&lab.run(&["sync", "--full", "--json"]).await);
    assert_counts_add_up("full", &full);
    assert_eq!(count(&full, "reread"), 0, "{full}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_hide_objects_already_in_sync_and_show_the_cycle_kind() {
    let lab = Lab::start(5).await;
    assert_eq!(lab.run(&["sync"]).await.code, 0);
    lab.update(2, |m| m.set_custom_attribute(3, "three"));
    // The others touched, their values unchanged: the delta reads all five.
    for i in [1, 3, 4, 5] {
        lab.update(i, |_| {});
    }
    let delta = sync_json(&lab.run(&["sync", "--json"]).await);
    let cycle = delta["cycle"].to_string();
    // The default listing: the one change, not the four objects already in sync.
    let table = lab.run(&["logs", "--cycle", &cycle]).await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(
        lines[0].split_whitespace().any(|h| h == "kind"),
        "{}",
        table.stdout
    );
    assert_eq!(lines.len(), 2, "{}", table.stdout);
    assert!(
        lines[1].contains(&smtp(2)) && lines[1].contains("Delta"),
        "{}",
        table.stdout
    );
    // --all shows them, said as such.
    let all = entries(
        &lab.run(&["logs", "--all", "--format", "json", "--cycle", &cycle])
            .await,
    );
    assert_eq!(all.len(), 5, "{all:?}");
    let quiet = of(&all, 1);
    assert_eq!(quiet[0]["reason"]["code"], "AlreadyInSync", "{}", quiet[0]);
    let csv = lab
        .run(&["logs", "--all", "--format", "csv", "--cycle", &cycle])
        .await;
    assert!(csv.stdout.starts_with("time,cycle,kind,"), "{}", csv.stdout);
    assert!(
        csv.stdout.contains("AlreadyInSync: already in sync"),
        "{}",
        csv.stdout
    );
    // Undo rows are marked as such.
    let undo = lab.run(&["undo", "--cycle", &cycle, "--json"]).await;
    assert_eq!(undo.code, 0, "{}\n{}", undo.stdout, undo.stderr);
    let undo_cycle = undo.json()["cycle"].to_string();
    let table = lab.run(&["logs", "--cycle", &undo_cycle]).await;
    assert!(
        table
            .stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("Undo")),
        "{}",
        table.stdout
    );
    // The UPN finds the mailbox's entries as the primary address does.
    let upn = format!("{}@lab.example.test", cn(2));
    let by_upn = entries(
        &lab.run(&["logs", "--all", "--format", "json", "--identity", &upn])
            .await,
    );
    let by_smtp = entries(
        &lab.run(&["logs", "--all", "--format", "json", "--identity", &smtp(2)])
            .await,
    );
    assert!(!by_smtp.is_empty());
    assert_eq!(by_upn.len(), by_smtp.len(), "{by_upn:?}");
    let none = lab
        .run(&["logs", "--identity", "nobody@contoso.example"])
        .await;
    assert_eq!(none.code, 0, "{}", none.stderr);
    assert!(none.stdout.contains("no entries"), "{}", none.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_says_whether_an_agent_runs() {
    let lab = Lab::start(3).await;
    // `provision` below asks the running agent, with the operator token it can read.
    crate::service::add_tokens(&lab);
    assert_eq!(lab.run(&["sync"]).await.code, 0);
    let idle = lab.run(&["status", "--json"]).await.json();
    assert!(idle["agent"].is_null(), "{idle}");
    assert!(idle["next_run"].is_null(), "{idle}");
    let text = lab.run(&["status"]).await;
    assert!(
        text.stdout.contains("agent:      not running"),
        "{}",
        text.stdout
    );

    let agent = spawn_run(&lab);
    let started = std::time::Instant::now();
    let running = loop {
        let s = lab.run(&["status", "--json"]).await.json();
        if s["agent"]["pid"] == agent.id() && s["last_cycle"]["kind"] == "Delta" {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "status never showed the agent: {s}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        running["agent"]["since"]
            .as_str()
            .is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()),
        "{running}"
    );
    let next: jiff::Timestamp = running["next_run"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("next_run is not a timestamp: {running}"));
    assert!(next > jiff::Timestamp::now() - jiff::SignedDuration::from_secs(60));
    assert_eq!(running["last_success"]["status"], "Completed", "{running}");
    let text = lab.run(&["status"]).await;
    assert!(
        text.stdout.contains(&format!(
            "agent:      running (pid {}, `exo-writeback run`",
            agent.id()
        )),
        "{}",
        text.stdout
    );

    // An on-demand run does not replace the last scheduled cycle.
    let last = running["last_cycle"]["cycle"].clone();
    let p = lab.run(&["provision", &smtp(1)]).await;
    assert_eq!(p.code, 0, "{}\n{}", p.stdout, p.stderr);
    let after = lab.run(&["status", "--json"]).await.json();
    assert_ne!(after["last_cycle"]["kind"], "OnDemand", "{after}");
    assert!(
        after["last_cycle"]["cycle"].as_i64() >= last.as_i64(),
        "{after}"
    );
    assert_eq!(after["last_command"]["kind"], "OnDemand", "{after}");

    stop(agent).await;
    let stopped = lab.run(&["status", "--json"]).await.json();
    assert!(stopped["agent"].is_null(), "{stopped}");
    assert!(stopped["next_run"].is_null(), "{stopped}");
    // The store is still readable by anyone (no lock left behind).
    lab.store().job_state().expect("state");
}

/// `restart` without `--scope` used to reset everything; it now names the scopes and changes
/// nothing. With a scope it waits for the state lock a running cycle holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_needs_an_explicit_scope_and_waits_for_a_running_cycle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = crate::manners::config(dir.path(), "");
    let state = dir.path().join("state");
    {
        let mut store = exo_writeback_store_sqlite::SqliteStore::open_in(&state).expect("store");
        let cycle = store
            .begin_cycle(
                exo_writeback_core::provisioning::CycleKind::Initial,
                jiff::Timestamp::now(),
            )
            .expect("cycle");
        store
            .set_watermark(&exo_writeback_core::provisioning::Watermark {
                changed_since: jiff::Timestamp::now(),
                overlap: jiff::SignedDuration::from_mins(5),
                cycle,
                edge: Vec::new(),
            })
            .expect("watermark");
    }
    let watermark = || {
        exo_writeback_store_sqlite::SqliteStore::open_in(&state)
            .expect("store")
            .watermark()
            .expect("watermark")
    };
    let bare = crate::harness::exo_writeback(&config, &["restart"]).await;
    assert_eq!(bare.code, 2, "{}\n{}", bare.stdout, bare.stderr);
    for scope in ["full", "watermark", "escrow", "quarantine"] {
        assert!(bare.stderr.contains(scope), "{}", bare.stderr);
    }
    assert!(
        watermark().is_some(),
        "restart without a scope reset the state"
    );

    // A running cycle holds the state lock: restart waits for it, saying so.
    let lock = exo_writeback_agent::lock::StateLock::acquire(&state, "exo-writeback run (a test)")
        .await
        .expect("lock");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_exo-writeback"))
        .args(["restart", "--scope", "watermark", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn restart");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(watermark().is_some(), "restart did not wait for the lock");
    drop(lock);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("waiting for the state lock"), "{stderr}");
    assert!(stderr.contains("exo-writeback run (a test)"), "{stderr}");
    assert!(watermark().is_none());
}
