//! High availability on PostgreSQL (issue 16): three `exo-writeback run` processes on one
//! PostgreSQL state (a real PostgreSQL 15 from `lab/pg-up`), the lab DC and exo-sim. The SQLite
//! state of a first `sync` is migrated into PostgreSQL first (`state migrate`). Then, in each
//! round, all 300 mailboxes change in the cloud — half before the fault, the other half while
//! it lasts — and, in the middle of a chunk of modifies, the leader is killed with SIGKILL (and
//! its server comes back as a standby), or frozen with SIGSTOP past its lease and woken up, or
//! PostgreSQL itself is restarted as after a crash — twice each. Every
//! change reaches AD, each exactly once in the log with its journal; a standby takes over within
//! two lease times (as `status` sees it); a woken former leader sends no modify.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use exo_writeback_core::provisioning::{Action, LogStatus, ObjectRef};
use exo_writeback_core::secret::Secret;
use exo_writeback_store_postgres::prelude::*;
use exo_writeback_store_postgres::{Fence, LogQuery, PgSettings, PgStore};
use exo_writeback_testlab::{LabDatabase, LabPostgres};

use crate::harness::{Lab, cn, exo_writeback, texts};

const USERS: u32 = 300;
const LEASE_SECS: u64 = 3;

/// One agent process; its log goes to a file (a pipe nobody reads would stop it).
struct Agent {
    name: &'static str,
    child: std::process::Child,
    log: PathBuf,
}

impl Agent {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {}", self.name);
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().expect("wait").is_none()
    }
}

/// The lab's configuration with its own state directory and `[state]` on `db`.
fn agent_config(lab: &Lab, db: &LabDatabase, name: &str) -> PathBuf {
    let pg = LabPostgres::shared();
    let base = std::fs::read_to_string(&lab.config).expect("config");
    let own = lab.dir.path().join(format!("state-{name}"));
    let text = base.replace(
        &format!("state_dir = \"{}\"", lab.state_dir().display()),
        &format!("state_dir = \"{}\"", own.display()),
    ) + &format!(
        "\n[state]\nurl = \"{}\"\npassword_file = \"{}\"\nca_file = \"{}\"\nlease = \"{LEASE_SECS}s\"\n",
        db.url,
        pg.password_file.display(),
        pg.ca_file.display()
    );
    let path = lab.dir.path().join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("agent config");
    path
}

fn spawn_agent(lab: &Lab, config: &Path, name: &'static str) -> Agent {
    let log = lab.dir.path().join(format!("{name}.log"));
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_exo-writeback"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info,exo_writeback_engine=debug")
        .stdout(std::fs::File::create(lab.dir.path().join(format!("{name}.out"))).expect("out"))
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn run");
    Agent { name, child, log }
}

/// `cluster` of `GET /api/v1/status` on agent `name` (its URL from its state directory's
/// `api.json`).
async fn api_cluster(lab: &Lab, name: &str) -> serde_json::Value {
    let url = crate::service::api_url(&lab.dir.path().join(format!("state-{name}"))).await;
    let status: serde_json::Value = reqwest::Client::new()
        .get(format!("{url}/api/v1/status"))
        .bearer_auth(crate::service::READER)
        .send()
        .await
        .expect("GET /api/v1/status")
        .json()
        .await
        .expect("status JSON");
    status["cluster"].clone()
}

/// The pid of the agent that leads, as `status` shows it.
async fn leader(config: &Path) -> Option<u32> {
    let status = exo_writeback(config, &["status", "--json"]).await;
    assert_eq!(status.code, 0, "{}\n{}", status.stdout, status.stderr);
    status.json()["cluster"]["leader"]["pid"]
        .as_u64()
        .map(|p| p as u32)
}

async fn wait_for_leader(config: &Path, among: &[u32], within: Duration) -> (u32, Duration) {
    let started = Instant::now();
    loop {
        if let Some(pid) = leader(config).await
            && among.contains(&pid)
        {
            return (pid, started.elapsed());
        }
        assert!(
            started.elapsed() < within,
            "no agent among {among:?} leads after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The index of the agent that leads, and the pids of the others.
async fn leading(agents: &[Agent], config: &Path, lease: Duration) -> (usize, Vec<u32>) {
    let pids: Vec<u32> = agents.iter().map(Agent::pid).collect();
    let (leader, _) = wait_for_leader(config, &pids, 4 * lease).await;
    let k = agents
        .iter()
        .position(|a| a.pid() == leader)
        .expect("leader");
    let others = pids.into_iter().filter(|p| *p != leader).collect();
    (k, others)
}

/// Waits until the state holds write-ahead intents: a chunk of modifies is being sent.
async fn wait_for_writes(store: &PgStore) {
    let started = Instant::now();
    while store.intents().expect("intents").is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no agent started writing"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until every user's extensionAttribute3 reads `value(i)` in AD.
async fn wait_for_ad(lab: &Lab, value: impl Fn(u32) -> String) {
    let started = Instant::now();
    loop {
        let users = lab.all_users().await;
        let behind: Vec<u32> = users
            .iter()
            .filter(|(i, obj)| texts(obj, "extensionAttribute3") != [value(**i)])
            .map(|(i, _)| *i)
            .collect();
        if behind.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "{} users never got their change, e.g. {}",
            behind.len(),
            cn(behind[0])
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Changes the mailboxes of `range` in the cloud: extensionAttribute3 becomes `"{round} {i}"`.
fn change_mailboxes(lab: &Lab, round: &str, range: std::ops::RangeInclusive<u32>) {
    for i in range {
        lab.update(i, |m| m.set_custom_attribute(3, &format!("{round} {i}")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_on_postgres_survive_kill_freeze_and_restart_with_nothing_lost_or_applied_twice()
 {
    let lab = Lab::start(USERS).await;
    lab.write_config("", "threshold = 1000000");
    let first = lab.run(&["sync"]).await;
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);

    // The SQLite state moves into PostgreSQL, its counts verified.
    let pg = LabPostgres::shared();
    let db = LabPostgres::database().expect("a lab database");
    let password_file = pg.password_file.display().to_string();
    let ca_file = pg.ca_file.display().to_string();
    let migrated = lab
        .run(&[
            "state",
            "migrate",
            "--to",
            &db.url,
            "--password-file",
            &password_file,
            "--ca-file",
            &ca_file,
        ])
        .await;
    assert_eq!(migrated.code, 0, "{}\n{}", migrated.stdout, migrated.stderr);
    assert!(
        migrated.stdout.contains("the counts match"),
        "{}",
        migrated.stdout
    );
    assert!(
        !migrated.stdout.contains(&pg.password()) && !migrated.stderr.contains(&pg.password()),
        "the database password was printed"
    );
    let store = PgStore::open(
        &PgSettings::new(
            db.url.clone(),
            Some(Secret::new(pg.password())),
            Some(pg.ca_file.clone()),
        ),
        Fence::unenforced(),
    )
    .expect("the PostgreSQL state");
    let all = LogQuery {
        limit: 1_000_000,
        ..LogQuery::default()
    };
    assert_eq!(
        store.query_logs(&all).expect("logs").len(),
        lab.store().query_logs(&all).expect("logs").len(),
        "log entries copied"
    );
    let migrated_cycle = store.recent_cycles(1).expect("cycles")[0].id;

    // Three agents: one leads, two stand by. Each serves the API (a reader token for it).
    crate::service::add_tokens(&lab);
    let names = ["a", "b", "c"];
    let configs: Vec<PathBuf> = names.iter().map(|n| agent_config(&lab, &db, n)).collect();
    let mut agents = vec![spawn_agent(&lab, &configs[0], "a")];
    wait_for_leader(&configs[0], &[agents[0].pid()], Duration::from_secs(60)).await;
    agents.push(spawn_agent(&lab, &configs[1], "b"));
    agents.push(spawn_agent(&lab, &configs[2], "c"));
    let started = Instant::now();
    loop {
        let status = exo_writeback(&configs[1], &["status"]).await;
        if status.stdout.matches("standby:").count() == 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the standbys never showed:\n{}",
            status.stdout
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A standby's API shows the cluster as `status` does: three agents, `a` leading.
    let pids: Vec<u32> = agents.iter().map(Agent::pid).collect();
    let cluster = api_cluster(&lab, "b").await;
    assert_eq!(cluster["leader"]["pid"], pids[0], "{cluster}");
    let mut seen: Vec<u64> = cluster["agents"]
        .as_array()
        .unwrap_or_else(|| panic!("no agents: {cluster}"))
        .iter()
        .filter_map(|a| a["pid"].as_u64())
        .collect();
    seen.sort_unstable();
    let mut want: Vec<u64> = pids.iter().map(|&p| u64::from(p)).collect();
    want.sort_unstable();
    assert_eq!(seen, want, "{cluster}");

    let lease = Duration::from_secs(LEASE_SECS);
    let faults = [
        Fault::Kill,
        Fault::Freeze,
        Fault::RestartPostgres,
        Fault::Kill,
        Fault::Freeze,
        Fault::RestartPostgres,
    ];
    let mut takeovers = Vec::new();
    let mut sent_by_fenced = 0;
    for (round, fault) in faults.iter().enumerate() {
        let value = |i: u32| format!("round {round} {i}");
        // The cloud keeps changing through the fault: half of the mailboxes change before it
        // (the leader is writing them when it strikes), the other half while it lasts.
        let label = format!("round {round}");
        change_mailboxes(&lab, &label, 1..=USERS / 2);
        wait_for_writes(&store).await;
        let during = || change_mailboxes(&lab, &label, USERS / 2 + 1..=USERS);
        match fault {
            Fault::Kill => {
                let (k, others) = leading(&agents, &configs[0], lease).await;
                agents[k].signal("-KILL");
                let killed = Instant::now();
                during();
                wait_for_leader(&configs[0], &others, 4 * lease).await;
                takeovers.push(killed.elapsed());
                // The killed agent's server comes back: a new standby.
                let name = agents[k].name;
                agents[k] = spawn_agent(&lab, &configs[k], name);
            }
            Fault::Freeze => {
                let (k, others) = leading(&agents, &configs[0], lease).await;
                agents[k].signal("-STOP");
                let stopped = Instant::now();
                during();
                wait_for_leader(&configs[0], &others, 4 * lease).await;
                takeovers.push(stopped.elapsed());
                tokio::time::sleep(lease).await;
                let before = agents[k].log().len();
                agents[k].signal("-CONT");
                // Once woken it must see its lease is gone before any modify.
                let started = Instant::now();
                let woken = loop {
                    let woken = agents[k].log()[before..].to_string();
                    if woken.contains("lost the leadership") {
                        break woken;
                    }
                    assert!(
                        started.elapsed() < Duration::from_secs(60),
                        "the woken agent never stepped down:\n{woken}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                };
                // Each modify is logged (debug) right after the fence let it through.
                sent_by_fenced += woken.matches("sending a modify").count();
                assert_eq!(
                    woken.matches("sending a modify").count(),
                    0,
                    "agent {} sent modifies after losing its lease:\n{woken}",
                    agents[k].name
                );
            }
            Fault::RestartPostgres => {
                let restart = std::thread::scope(|s| {
                    let restart = s.spawn(|| pg.restart(Duration::from_secs(2), true));
                    during();
                    restart.join()
                });
                restart
                    .expect("the restart thread")
                    .expect("restart PostgreSQL");
            }
        }
        wait_for_ad(&lab, value).await;
    }
    // Let the last cycles finish and log.
    let started = Instant::now();
    while !store.intents().expect("intents").is_empty() {
        assert!(started.elapsed() < Duration::from_secs(60), "intents left");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    let status = exo_writeback(&configs[0], &["status"]).await;
    assert!(status.stdout.contains("takeover:"), "{}", status.stdout);
    for agent in &mut agents {
        assert!(
            agent.alive(),
            "agent {} exited:\n{}",
            agent.name,
            agent.log()
        );
        agent.signal("-TERM");
    }
    for agent in &mut agents {
        let started = Instant::now();
        while agent.alive() {
            assert!(started.elapsed() < Duration::from_secs(60), "no stop");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!agent.log().contains("panicked"), "{}", agent.log());
    }

    // Each change of each round: exactly one applied log entry, with its journal.
    let rounds = faults.len();
    let entries = store.query_logs(&all).expect("logs");
    let users = lab.all_users().await;
    let mut applied: BTreeMap<String, usize> = BTreeMap::new();
    for e in entries.iter().filter(|e| {
        e.cycle > migrated_cycle && e.action == Action::Update && e.status == LogStatus::Success
    }) {
        if let Some(dn) = &e.target.dn {
            *applied.entry(dn.to_ascii_lowercase()).or_default() += 1;
        }
    }
    let count = |obj: &exo_writeback_core::directory::DirectoryObject| {
        applied
            .get(&obj.dn.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    };
    // Changes without their applied entry, and entries beyond one per change.
    let lost: usize = users
        .values()
        .map(|o| rounds.saturating_sub(count(o)))
        .sum();
    let twice: usize = users
        .values()
        .map(|o| count(o).saturating_sub(rounds))
        .sum();
    for (i, obj) in &users {
        assert_eq!(
            count(obj),
            rounds,
            "{}: applied entries over {rounds} rounds",
            cn(*i)
        );
        let journal = store
            .journal_for_object(&ObjectRef::Guid(obj.object_guid))
            .expect("journal");
        let journaled = journal
            .iter()
            .filter(|r| r.cycle > migrated_cycle && r.attribute == "extensionAttribute3")
            .count();
        assert_eq!(
            journaled,
            rounds,
            "{}: journal of extensionAttribute3",
            cn(*i)
        );
    }
    assert!(
        entries.iter().all(|e| e.status != LogStatus::Failure),
        "failures: {:#?}",
        entries.iter().find(|e| e.status == LogStatus::Failure)
    );
    for t in &takeovers {
        assert!(*t <= 2 * lease, "a takeover took {t:?} (lease {lease:?})");
    }
    let mut sorted = takeovers.clone();
    sorted.sort();
    // For scripts/soak (a line it collects into bench-results/).
    println!(
        "SOAK failover users={USERS} rounds={rounds} takeovers={} takeover_p50_ms={} takeover_max_ms={} \
         lease_ms={} pg_restarts=2 lost={lost} applied_twice={twice} fenced_modifies={sent_by_fenced}",
        takeovers.len(),
        sorted[sorted.len() / 2].as_millis(),
        sorted[sorted.len() - 1].as_millis(),
        lease.as_millis()
    );
    eprintln!(
        "failover: {} rounds of {USERS} changes; {} takeovers forced (lease {lease:?}): p50 {:?}, max {:?}; \
         PostgreSQL restarted 2 times; changes lost {lost}, applied twice {twice}, modifies by fenced agents {sent_by_fenced}",
        rounds,
        takeovers.len(),
        sorted[sorted.len() / 2],
        sorted[sorted.len() - 1]
    );
}

/// What each round does to the cluster while the leader writes.
enum Fault {
    /// SIGKILL the leader (its server comes back as a new standby).
    Kill,
    /// SIGSTOP the leader past its lease, then SIGCONT.
    Freeze,
    /// Restart PostgreSQL immediately (as after a crash), 2 s down.
    RestartPostgres,
}
