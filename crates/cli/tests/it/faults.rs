//! Faults end to end (issue 6): the real binary against a lab Samba DC and the in-process
//! Exchange Online emulator — quarantine, kill -9 at random instants, the DC stopped
//! mid-cycle, Exchange Online faults while paging and refreshing tokens, and single objects
//! the DC refuses.

use std::time::Duration;

use exo_sim::{Endpoint, FaultKind, FaultRule};
use exo_writeback_ad::SearchScope;
use exo_writeback_core::provisioning::{Action, JobState, LogStatus, ObjectRef};
use exo_writeback_store_sqlite::LogQuery;
use exo_writeback_store_sqlite::prelude::*;
use exo_writeback_testlab::MAILBOXES_OU;
use serde_json::Value;

use crate::harness::{
    Lab, Rng, applied_per_dn, assert_matches_cloud, cn, dn, edoid, env_u32, mapped, texts,
    wait_exit,
};

fn rule(endpoint: Endpoint, kind: FaultKind, count: Option<u32>, skip: u32) -> FaultRule {
    FaultRule {
        endpoint,
        kind,
        count,
        probability: None,
        skip,
    }
}

// ---------------------------------------------------------------------------------------------
// Quarantine
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ad_password_quarantines_the_job_and_the_first_good_cycle_clears_it() {
    let lab = Lab::start(8).await;
    let first = lab.run(&["sync", "--json"]).await;
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);

    // The administrator breaks the password: the cycle cannot bind.
    lab.set_password("not-the-password-1!");
    let bad = lab.run(&["sync", "--json"]).await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("invalid credentials"), "{}", bad.stderr);
    assert!(!bad.stderr.contains("not-the-password"), "{}", bad.stderr);
    let JobState::Quarantine {
        reason, next_retry, ..
    } = lab.job_state()
    else {
        panic!("not quarantined: {:?}", lab.job_state());
    };
    assert!(reason.contains("invalid credentials"), "{reason}");
    let wait = jiff::Timestamp::now().duration_until(next_retry);
    assert!(
        wait > jiff::SignedDuration::from_secs(30) && wait <= jiff::SignedDuration::from_mins(1),
        "{wait:?}"
    );
    let status = lab.run(&["status"]).await;
    assert!(
        status.stdout.contains("Quarantine: invalid credentials"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains(&next_retry.to_string()),
        "{}",
        status.stdout
    );

    // Until the retry is due, sync refuses without binding (no new cycle), saying why and
    // when.
    let cycles = lab.store().recent_cycles(50).expect("cycles").len();
    lab.set_password(&lab.dc.password());
    let refused = lab.run(&["sync"]).await;
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("quarantine")
            && refused.stderr.contains("invalid credentials")
            && refused.stderr.contains(&next_retry.to_string())
            && refused.stderr.contains("restart --scope quarantine"),
        "{}",
        refused.stderr
    );
    assert_eq!(lab.store().recent_cycles(50).expect("cycles").len(), cycles);

    // Due, with the password fixed: the first good cycle clears the quarantine.
    lab.update(3, |m| m.set_custom_attribute(2, "after-quarantine"));
    lab.make_retry_due();
    let good = lab.run(&["sync", "--json"]).await;
    assert_eq!(good.code, 0, "{}\n{}", good.stdout, good.stderr);
    assert_eq!(good.json()["status"], "Completed");
    assert_eq!(lab.job_state(), JobState::Active);
    assert_eq!(
        texts(&lab.user(3).await, "extensionAttribute2"),
        ["after-quarantine"]
    );
    let status = lab.run(&["status", "--json"]).await.json();
    assert_eq!(status["job_state"], "Active");
}

// ---------------------------------------------------------------------------------------------
// kill -9
// ---------------------------------------------------------------------------------------------

/// Objects of the Mailboxes OU that already hold a value in extensionAttribute5 (written).
async fn written_count(lab: &Lab) -> usize {
    lab.ad
        .search(
            MAILBOXES_OU,
            SearchScope::OneLevel,
            "(extensionAttribute5=*)",
            &["cn"],
        )
        .await
        .map(|v| v.len())
        .unwrap_or(0)
}

/// `sync` killed with SIGKILL inside a chunk after its 37th modify (a known point, held by the
/// agent's test pause), then at random instants of an initial cycle, several times — even
/// kills at a random instant of the (stretched) read phase, odd kills once a random number of
/// objects are written (surely mid-write) — then a clean run: every object holds its cloud values,
/// and every object whose values changed has exactly one success entry recording the change as
/// applied (never only "found in sync", never twice), with journal records for it (so `undo`
/// could restore it). Changes a killed cycle applied before logging them are logged by the next
/// cycle from the write-ahead intents (docs/RELIABILITY.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_inside_a_chunk_and_at_random_instants_of_an_initial_cycle_loses_nothing() {
    // scripts/soak runs longer versions (more mailboxes, more kills).
    let users = env_u32("FAULTS_USERS", 300);
    let kills = env_u32("FAULTS_KILLS", 5);
    let lab = Lab::start(users).await;
    // Every object loses a stale value in its first cycle: keep the change threshold out of
    // the way of bigger runs.
    lab.write_config("", "threshold = 1000000");
    let before = lab.all_users().await;
    let mut rng = Rng::from_time();
    // Slow pages stretch the read phase (about 6 ms per mailbox: pages of 50, 300 ms each) so
    // a kill at a random instant lands while the cycle runs, however fast the machine writes.
    lab.sim.state().add_fault(rule(
        Endpoint::Invoke,
        FaultKind::Delay { ms: 300 },
        None,
        0,
    ));
    // First a kill at a known point: inside the first chunk of 200, after its 37th modify (the
    // agent's test pause holds it there). Those 37 objects are changed in AD with only their
    // intents stored, so the next cycle must log them from the intents ("logged late").
    const PAUSED_KILL_AT: usize = 37;
    let pause = lab.dir.path().join("paused");
    let mut child = paused_sync(&lab, PAUSED_KILL_AT, &pause, &["sync"]);
    wait_for_pause(&mut child, &pause).await;
    assert_eq!(written_count(&lab).await, PAUSED_KILL_AT);
    assert_eq!(
        lab.store().intents().expect("intents").len(),
        (users as usize).min(200),
        "the first chunk's intents are stored before its first modify"
    );
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    std::fs::remove_file(&pause).expect("pause file");
    let mut killed = 1;
    for k in 0..kills {
        let written = written_count(&lab).await;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_exo-writeback"))
            .args(["sync", "--config"])
            .arg(&lab.config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        if k % 2 == 1 && written + 10 < users as usize {
            let target = written + 1 + rng.below((users as usize - written - 5) as u64) as usize;
            let started = std::time::Instant::now();
            while written_count(&lab).await < target
                && child.try_wait().expect("wait").is_none()
                && started.elapsed() < Duration::from_secs(30 + u64::from(users) / 20)
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        } else {
            // Within the read phase (≥ 6 ms per mailbox), whatever the machine's speed.
            let span = u64::from(users) * 5;
            tokio::time::sleep(Duration::from_millis(100 + rng.below(span))).await;
        }
        if child.try_wait().expect("wait").is_none() {
            child.kill().expect("SIGKILL");
            killed += 1;
        }
        let _ = child.wait();
        eprintln!(
            "kill {k}: objects written so far {}",
            written_count(&lab).await
        );
    }
    assert!(
        killed > kills.min(3),
        "only {killed} kills landed mid-cycle"
    );
    lab.sim.state().clear_faults();
    let clean = lab.run(&["sync", "--json"]).await;
    assert_eq!(clean.code, 0, "{}\n{}", clean.stdout, clean.stderr);
    lab.assert_converged(&before).await;

    let after = lab.all_users().await;
    let store = lab.store();
    assert!(
        store.intents().expect("intents").is_empty(),
        "write intents left after a clean run"
    );
    let applied = applied_per_dn(&store);
    let twice: Vec<(&String, &u32)> = applied.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "changes logged as applied twice: {twice:?}"
    );
    let changed: Vec<u32> = (1..=users)
        .filter(|i| mapped(&before[i]) != mapped(&after[i]))
        .collect();
    assert_eq!(
        changed.len(),
        users as usize,
        "every object changes in its first cycle (a stale value goes)"
    );
    // Written by a killed cycle but not logged as applied: must be none.
    let unlogged: Vec<u32> = changed
        .iter()
        .copied()
        .filter(|&i| !applied.contains_key(&dn(i).to_ascii_lowercase()))
        .collect();
    assert!(
        unlogged.is_empty(),
        "{} objects changed with no log entry recording the change as applied, e.g. {:?}",
        unlogged.len(),
        unlogged.iter().take(10).map(|&i| cn(i)).collect::<Vec<_>>()
    );
    // Each change has its journal, in the cycle its entry names (what `undo <cycle>` restores).
    let mut logged_late = 0;
    for &i in &changed {
        let entry = store
            .query_logs(&LogQuery {
                identity: Some(dn(i)),
                statuses: vec![LogStatus::Success],
                limit: 1_000,
                ..LogQuery::default()
            })
            .expect("logs")
            .into_iter()
            .find(|e| e.action == Action::Update)
            .expect("the applied entry");
        if entry
            .steps
            .export
            .details
            .contains("which stopped before logging it")
        {
            logged_late += 1;
        }
        let journal = store
            .journal_for_object(&ObjectRef::Dn(dn(i)))
            .expect("journal");
        let of_entry: Vec<&str> = journal
            .iter()
            .filter(|j| j.cycle == entry.cycle)
            .map(|j| j.attribute.as_str())
            .collect();
        let mut logged: Vec<&str> = entry
            .modified
            .iter()
            .map(|m| m.attribute.as_str())
            .collect();
        let mut journaled = of_entry.clone();
        logged.sort_unstable();
        journaled.sort_unstable();
        assert!(
            !journaled.is_empty() && journaled == logged,
            "{}: the journal of cycle {} holds {journaled:?}, the entry changed {logged:?}",
            cn(i),
            entry.cycle
        );
    }
    // Reconciliation of the intents was exercised: at least the paused kill's 37 objects were
    // logged from them by a later cycle.
    assert!(
        logged_late >= PAUSED_KILL_AT,
        "only {logged_late} changes logged from write-ahead intents"
    );
    eprintln!(
        "SOAK kill9: users={users} kills_mid_cycle={killed} logged_written={} logged_late={logged_late} written_unlogged={} applied_twice=0 converged=yes",
        applied.len(),
        unlogged.len()
    );
    // A further cycle finds nothing to write.
    let again = lab.run(&["sync", "--json"]).await.json();
    assert_eq!(again["counts"]["written"], 0, "{again}");
}

// ---------------------------------------------------------------------------------------------
// The DC stopped mid-cycle
// ---------------------------------------------------------------------------------------------

fn signal_dc(lab: &Lab, signal: &str) {
    let pids = exo_writeback_testlab::processes_in(&lab.dc.dir);
    assert!(!pids.is_empty(), "no samba process found");
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .args(pids.iter().map(|p| p.to_string()))
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} {pids:?}");
}

/// What happens to the DC in the middle of a cycle's writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DcOutage {
    /// Every samba process stopped with SIGSTOP for 3.5 s, then SIGCONT: the DC hangs
    /// (connections stay open and unanswered), then answers again.
    Hang,
    /// A real restart (`lab/restart`): samba terminated, its connections reset, nothing
    /// listening for 1.5 s, then samba started again on the same data and address.
    Restart,
}

/// The DC stops answering (every samba process stopped with SIGSTOP) in the middle of a
/// cycle's writes, then comes back: the cycle waits for it and writes every object (none
/// fails for the outage), no object is half-written (each is entirely as before the cycle or
/// entirely as the cloud has it), and the next cycle completes with everything in sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dc_stopped_mid_cycle_leaves_nothing_half_written_and_the_next_cycle_completes() {
    dc_outage_mid_cycle(DcOutage::Hang).await;
}

/// The same with a real DC restart mid-cycle: the agent's connection is reset and the DC is
/// unreachable for a moment; the cycle reconnects and ends by itself, nothing is half-written,
/// and the next cycle completes with everything in sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dc_restarted_mid_cycle_leaves_nothing_half_written_and_the_next_cycle_completes() {
    dc_outage_mid_cycle(DcOutage::Restart).await;
}

/// `sync` with the agent's test pause: after its `n`-th modify the agent creates `pause` and
/// waits until the file is removed (`agent::test_pause`). Its standard error goes to
/// `pause` + `.log`.
fn paused_sync(lab: &Lab, n: usize, pause: &std::path::Path, args: &[&str]) -> std::process::Child {
    let log = std::fs::File::create(pause.with_extension("log")).expect("log file");
    std::process::Command::new(env!("CARGO_BIN_EXE_exo-writeback"))
        .args(args)
        .arg("--config")
        .arg(&lab.config)
        .env(
            exo_writeback_agent::test_pause::VARIABLE,
            format!("{n}:{}", pause.display()),
        )
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn")
}

/// Waits until the paused agent created `pause` (it has applied its n-th modify).
async fn wait_for_pause(child: &mut std::process::Child, pause: &std::path::Path) {
    let started = std::time::Instant::now();
    while !pause.exists() {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the cycle ended before its pause"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no pause within a minute"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn dc_outage_mid_cycle(outage: DcOutage) {
    const PAUSE_AT: usize = 10;
    let users = env_u32("FAULTS_DC_USERS", 60);
    let mut lab = Lab::start(users).await;
    // Every object loses a stale value in its first cycle: keep the change threshold out of
    // the way at soak sizes.
    lab.write_config("timeout_secs = 1", "threshold = 1000000");
    let before = lab.all_users().await;
    let pause = lab.dir.path().join("paused");
    let mut child = paused_sync(&lab, PAUSE_AT, &pause, &["sync", "--json"]);
    let spawned = std::time::Instant::now();
    wait_for_pause(&mut child, &pause).await;
    // The outage lands in a running write phase: the cycle runs, exactly PAUSE_AT objects are
    // written, the rest are not.
    assert!(child.try_wait().expect("wait").is_none(), "the cycle ended");
    let written_at_outage = written_count(&lab).await;
    assert_eq!(
        written_at_outage, PAUSE_AT,
        "objects written when the DC went away"
    );
    let outage_started = std::time::Instant::now();
    let outage_len = match outage {
        DcOutage::Hang => {
            signal_dc(&lab, "STOP");
            // The agent goes on at once and meets the hung DC with its next modify.
            std::fs::remove_file(&pause).expect("resume the agent");
            tokio::time::sleep(Duration::from_millis(3500)).await;
            assert!(
                child.try_wait().expect("wait").is_none(),
                "the cycle ended while the DC was stopped"
            );
            signal_dc(&lab, "CONT");
            Duration::from_millis(3500)
        }
        DcOutage::Restart => {
            let old_pid = lab.dc.pid;
            // The agent goes on once samba is gone (its connection reset), while nothing
            // listens; `restart` returns once LDAPS answers again.
            let resume = pause.clone();
            let resumer = std::thread::spawn(move || {
                let gone = std::time::Instant::now();
                while std::path::Path::new(&format!("/proc/{old_pid}")).exists() {
                    assert!(
                        gone.elapsed() < Duration::from_secs(60),
                        "samba did not stop"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
                std::fs::remove_file(&resume).expect("resume the agent");
            });
            tokio::task::block_in_place(|| {
                lab.dc
                    .restart(Duration::from_millis(1500))
                    .expect("restart the DC")
            });
            resumer.join().expect("resumer");
            assert_ne!(lab.dc.pid, old_pid, "samba was not started again");
            assert!(
                child.try_wait().expect("wait").is_none(),
                "the cycle ended while the DC was down"
            );
            outage_started.elapsed()
        }
    };
    let status = wait_exit(&mut child, Duration::from_secs(120)).await;
    let cycle_secs = spawned.elapsed();
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        use std::io::Read;
        let _ = o.read_to_string(&mut out);
    }
    eprintln!("cycle with the DC stopped: {status} in {cycle_secs:?} {out}");
    assert!(
        cycle_secs >= outage_len,
        "the cycle ({cycle_secs:?}) lasted less than the outage ({outage_len:?})"
    );
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let counts = report["counts"].clone();
    // An outage is not the objects' fault: modifies are sent again once the DC answers (were
    // it to stay away, the rest would wait for the next cycle, quarantined — engine test
    // `ad_gone_mid_cycle_stops_the_writes_and_leaves_the_rest_pending_not_failed`); no object
    // fails for it, and the cycle writes every object: exit 0.
    assert_eq!(status.code(), Some(0), "{out}");
    assert_eq!(report["status"], "Completed", "{out}");
    assert_eq!(counts["failed"], 0, "objects failed for the outage: {out}");
    assert_eq!(counts["written"], users, "{out}");
    // The outage was met: a modify could not reach AD and was sent again.
    let log = std::fs::read_to_string(pause.with_extension("log")).expect("agent log");
    assert!(
        log.contains("AD cannot be reached; sending the modify again"),
        "the agent never met the outage:\n{log}"
    );
    // Whole or nothing, object by object.
    let mid = lab.all_users().await;
    let mut whole = 0;
    for (&i, obj) in &mid {
        let now = mapped(obj);
        if now != mapped(&before[&i]) {
            assert_matches_cloud(i, obj, &lab.mailbox(i), &before[&i]);
            whole += 1;
        }
    }
    assert_eq!(whole, users, "objects written whole");
    // The next cycle completes with nothing left to do.
    lab.make_retry_due();
    let next = lab.run(&["sync", "--json"]).await;
    assert_eq!(next.code, 0, "{}\n{}", next.stdout, next.stderr);
    assert_eq!(next.json()["counts"]["written"], 0, "{}", next.stdout);
    lab.assert_converged(&before).await;
    assert_eq!(lab.store().escrow_count().expect("escrow"), 0);
    assert_eq!(lab.job_state(), JobState::Active);
    let tag = match outage {
        DcOutage::Hang => "dc_stop",
        DcOutage::Restart => "dc_restart",
    };
    eprintln!(
        "SOAK {tag}: users={users} written_at_outage={written_at_outage} outage_ms={} cycle_ms={} stopped_cycle_exit={} written={} failed={} whole_objects={whole} half_written=0 next_cycle=converged",
        outage_len.as_millis(),
        cycle_secs.as_millis(),
        status.code().unwrap_or(-1),
        counts["written"],
        counts["failed"]
    );
}

// ---------------------------------------------------------------------------------------------
// Exchange Online faults
// ---------------------------------------------------------------------------------------------

/// Mailboxes whose change of `round` is not in AD yet; panics when the stored watermark passed
/// one of them (the watermark never passes a mailbox whose change is not in AD).
async fn unprocessed_behind_the_watermark(lab: &Lab, round: u32, users: u32) -> u32 {
    let w = lab
        .store()
        .watermark()
        .expect("watermark")
        .expect("the first cycle stored a watermark");
    let mut unprocessed = 0;
    for i in 1..=users {
        let obj = lab.user(i).await;
        if texts(&obj, "extensionAttribute3") != [format!("round-{round}")] {
            unprocessed += 1;
            let changed = lab.mailbox(i).when_changed_utc.expect("WhenChangedUTC");
            assert!(
                w.changed_since <= changed,
                "watermark {} passed unprocessed {} (changed {changed})",
                w.changed_since,
                cn(i)
            );
        }
    }
    unprocessed
}

/// One round of the Exchange Online fault test: the rules, and what the faulted cycle must
/// come to.
struct Round {
    name: &'static str,
    rules: Vec<FaultRule>,
    /// How often each rule must have fired: the proof that the fault reached the client.
    fired: Vec<u32>,
    /// Token and InvokeCommand requests the faulted cycle sends.
    token_requests: u64,
    invoke_requests: u64,
    /// Exit status of the faulted `sync`: 0 when the fault is ridden out (every mailbox
    /// written, the watermark moves), 2 when the listing breaks off (nothing written, the
    /// watermark stays) — `sync`'s documented codes.
    exit: i32,
    /// The job is quarantined by the faulted cycle (it failed before reading any mailbox).
    quarantined: bool,
}

/// Faults while paging and refreshing the token — a 429 storm, 503s, 500s, resets, truncated
/// JSON, malformed JSON, an expired token, a broken nextLink, a token endpoint refusing from
/// the start, a token refresh refused mid-listing — each during a delta cycle over 120 changed
/// mailboxes (pages of 50): each fault fires as many times as the rule says (exo-sim's fault
/// and request counters); the faulted cycle exits as documented; when it breaks off, mailboxes
/// are left unprocessed and the watermark is behind every one of them; when it rides the fault
/// out, every mailbox is written and the watermark moves; once the faults stop the agent
/// converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_online_faults_never_move_the_watermark_past_unprocessed_mailboxes() {
    const USERS: u32 = 120;
    // Three tries per request (the default is 5): the same paths, shorter back-off waits.
    const TRIES: u32 = 3;
    let lab = Lab::start(USERS).await;
    lab.write_config_with("", &format!("max_attempts = {TRIES}"), "");
    let first = lab.run(&["sync", "--json"]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    // Pages of 50: 120 mailboxes are 3 InvokeCommand requests; a sync process gets one token.
    const PAGES: u64 = 3;
    let rounds = vec![
        Round {
            name: "429 storm",
            rules: vec![rule(
                Endpoint::Invoke,
                FaultKind::TooManyRequests {
                    retry_after_secs: 0.1,
                },
                Some(6),
                1,
            )],
            fired: vec![6],
            token_requests: 1,
            invoke_requests: PAGES + 6,
            exit: 0,
            quarantined: false,
        },
        Round {
            name: "503",
            rules: vec![rule(
                Endpoint::NextLink,
                FaultKind::ServiceUnavailable,
                Some(40),
                0,
            )],
            fired: vec![TRIES],
            token_requests: 1,
            invoke_requests: 1 + u64::from(TRIES),
            exit: 2,
            quarantined: false,
        },
        Round {
            name: "500",
            rules: vec![rule(
                Endpoint::NextLink,
                FaultKind::InternalServerError,
                Some(2),
                0,
            )],
            fired: vec![2],
            token_requests: 1,
            invoke_requests: PAGES + 2,
            exit: 0,
            quarantined: false,
        },
        Round {
            name: "reset",
            rules: vec![rule(
                Endpoint::NextLink,
                FaultKind::ResetConnection,
                Some(40),
                1,
            )],
            fired: vec![TRIES],
            token_requests: 1,
            invoke_requests: 2 + u64::from(TRIES),
            exit: 2,
            quarantined: false,
        },
        Round {
            name: "truncated JSON",
            rules: vec![rule(
                Endpoint::NextLink,
                FaultKind::TruncatedJson,
                Some(40),
                0,
            )],
            // A whole body (its Content-Length matches) that is not a whole page: not a
            // transient failure, not sent again.
            fired: vec![1],
            token_requests: 1,
            invoke_requests: 2,
            exit: 2,
            quarantined: false,
        },
        Round {
            name: "malformed JSON",
            rules: vec![rule(
                Endpoint::NextLink,
                FaultKind::MalformedJson,
                Some(1),
                0,
            )],
            fired: vec![1],
            token_requests: 1,
            invoke_requests: 2,
            exit: 2,
            quarantined: false,
        },
        Round {
            name: "expired token",
            rules: vec![rule(
                Endpoint::NextLink,
                FaultKind::ExpiredToken,
                Some(1),
                0,
            )],
            fired: vec![1],
            token_requests: 2,
            invoke_requests: PAGES + 1,
            exit: 0,
            quarantined: false,
        },
        Round {
            name: "broken nextLink",
            rules: vec![rule(
                Endpoint::Invoke,
                FaultKind::BrokenNextLink,
                Some(1),
                1,
            )],
            fired: vec![1],
            token_requests: 1,
            invoke_requests: 3,
            exit: 2,
            quarantined: false,
        },
        Round {
            // No token at all: the cycle fails before reading any mailbox, a quarantine cause
            // (docs/RELIABILITY.md).
            name: "token endpoint refuses",
            rules: vec![rule(
                Endpoint::Token,
                FaultKind::ServiceUnavailable,
                Some(40),
                0,
            )],
            fired: vec![TRIES],
            token_requests: u64::from(TRIES),
            invoke_requests: 0,
            exit: 2,
            quarantined: true,
        },
        Round {
            // The first page read, then the token refused as expired and its refresh refused:
            // the listing breaks off after mailboxes were read, no quarantine.
            name: "token refresh refused",
            rules: vec![
                rule(Endpoint::Token, FaultKind::ServiceUnavailable, Some(40), 1),
                rule(Endpoint::NextLink, FaultKind::ExpiredToken, Some(1), 0),
            ],
            fired: vec![TRIES, 1],
            token_requests: 1 + u64::from(TRIES),
            invoke_requests: 2,
            exit: 2,
            quarantined: false,
        },
    ];
    let mut outcomes = Vec::new();
    let mut checked_unprocessed = 0;
    for (round, r) in rounds.into_iter().enumerate() {
        let round = round as u32 + 1;
        let name = r.name;
        let previous = lab.store().watermark().expect("read").expect("a watermark");
        // Every mailbox changes; the sim's clock moves so WhenChangedUTC are distinct.
        lab.sim.state().advance_clock(2);
        for i in 1..=USERS {
            lab.update(i, |m| m.set_custom_attribute(3, &format!("round-{round}")));
        }
        let ids: Vec<u64> = r
            .rules
            .iter()
            .map(|rule| lab.sim.state().add_fault(rule.clone()))
            .collect();
        lab.make_retry_due();
        let (tokens, invokes) = (
            lab.sim.state().request_count(Endpoint::Token),
            lab.sim.state().request_count(Endpoint::Invoke),
        );
        let faulted = lab.run(&["sync", "--json"]).await;
        let fired: Vec<u32> = ids.iter().map(|&id| lab.sim.state().fired(id)).collect();
        let requests = (
            lab.sim.state().request_count(Endpoint::Token) - tokens,
            lab.sim.state().request_count(Endpoint::Invoke) - invokes,
        );
        lab.sim.state().clear_faults();
        let written = serde_json::from_str::<Value>(&faulted.stdout)
            .ok()
            .and_then(|v| v["counts"]["written"].as_u64());
        outcomes.push(format!(
            "{name}: exit {} written {written:?} fired {fired:?} requests (token, invoke) {requests:?}",
            faulted.code
        ));
        assert_eq!(fired, r.fired, "{name}: faults fired");
        assert_eq!(
            requests,
            (r.token_requests, r.invoke_requests),
            "{name}: (token, InvokeCommand) requests of the faulted cycle"
        );
        assert_eq!(
            faulted.code, r.exit,
            "{name}: exit status\n{}\n{}",
            faulted.stdout, faulted.stderr
        );
        let unprocessed = unprocessed_behind_the_watermark(&lab, round, USERS).await;
        let now = lab.store().watermark().expect("read").expect("a watermark");
        if r.exit == 0 {
            // Ridden out: every mailbox written, the watermark moved on.
            assert_eq!(
                written,
                Some(u64::from(USERS)),
                "{name}: {}",
                faulted.stderr
            );
            assert_eq!(unprocessed, 0, "{name}");
            assert!(
                now.changed_since > previous.changed_since,
                "{name}: {now:?}"
            );
        } else {
            // Broken off: mailboxes are left, and the watermark (checked against each of them
            // above) stayed.
            assert!(
                unprocessed > 0,
                "{name}: nothing left to check the watermark against"
            );
            assert_eq!(now, previous, "{name}: the watermark moved");
            checked_unprocessed += unprocessed;
        }
        let quarantined = matches!(lab.job_state(), JobState::Quarantine { .. });
        assert_eq!(quarantined, r.quarantined, "{name}: {:?}", lab.job_state());
        if let JobState::Quarantine { reason, .. } = lab.job_state() {
            assert!(reason.contains("token"), "{name}: {reason}");
        }

        lab.make_retry_due();
        let clean = lab.run(&["sync", "--json"]).await;
        assert_eq!(
            clean.code, 0,
            "after {name}: {}\n{}",
            clean.stdout, clean.stderr
        );
        assert_eq!(
            unprocessed_behind_the_watermark(&lab, round, USERS).await,
            0,
            "after {name}"
        );
        assert_eq!(lab.job_state(), JobState::Active, "after {name}");
    }
    eprintln!("{}", outcomes.join("\n"));
    eprintln!(
        "SOAK exo_faults: users={USERS} rules={} unprocessed_checked={checked_unprocessed} watermark_violations=0 converged=yes",
        outcomes.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Single objects the DC refuses
// ---------------------------------------------------------------------------------------------

/// One object whose value breaks a schema constraint goes to escrow with an actionable
/// message, all others are written. (An object the bind account may not write: rights.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_objects_the_dc_refuses_go_to_escrow_and_all_others_are_written() {
    const USERS: u32 = 12;
    let lab = Lab::start(USERS).await;
    let before = lab.all_users().await;
    // A constraint violation: longer than extensionAttribute1's rangeUpper (1024).
    lab.update(4, |m| m.set_custom_attribute(1, &"z".repeat(1500)));
    let r = lab.run(&["sync", "--json"]).await;
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let report = r.json();
    assert_eq!(report["counts"]["failed"], 1, "{report}");
    assert_eq!(report["counts"]["written"], USERS - 1, "{report}");
    let store = lab.store();
    let escrow = store.escrow().expect("escrow");
    assert_eq!(escrow.len(), 1);
    let message = escrow[0].error.message.to_string();
    assert!(
        escrow[0].cloud_id == edoid(4) && !escrow[0].error.recommended_action.is_empty(),
        "{:?}",
        escrow[0]
    );
    assert!(message.contains("extensionAttribute1"), "{message}");
    assert_eq!(
        mapped(&lab.user(4).await),
        mapped(&before[&4]),
        "nothing partial"
    );
    for i in (1..=USERS).filter(|&i| i != 4) {
        assert_matches_cloud(i, &lab.user(i).await, &lab.mailbox(i), &before[&i]);
    }
    assert_eq!(lab.job_state(), JobState::Active);
}
