//! Faults end to end (issue 6): the real binary against a lab Samba DC and the in-process
//! Exchange Online emulator — quarantine, kill -9 at random instants, the DC stopped
//! mid-cycle, Exchange Online faults while paging and refreshing tokens, and single objects
//! the DC refuses. The helpers here are shared with `hostile.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use exo_sim::{Endpoint, FaultKind, FaultRule, SimConfig, SimHandle};
use exo_writeback_ad::{AdConfig, AdConnection, SearchScope};
use exo_writeback_core::directory::{AttrValue, DirectoryObject};
use exo_writeback_core::mailbox::Mailbox;
use exo_writeback_core::provisioning::{
    Action, JobState, LogStatus, ObjectRef, ProvisioningLogEntry,
};
use exo_writeback_core::secret::Secret;
use exo_writeback_store_sqlite::prelude::*;
use exo_writeback_store_sqlite::{LogQuery, SqliteStore};
use exo_writeback_testlab::{LabDc, LabOptions, MAILBOXES_OU};
use serde_json::Value;

pub(crate) const SECRET: &str = "sim-client-secret-for-fault-tests";
pub(crate) const DOMAIN: &str = "contoso.example";

pub(crate) struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }
}

pub(crate) async fn exo_writeback(config: &Path, args: &[&str]) -> Run {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_exo-writeback"));
    cmd.args(args)
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG");
    let Output {
        status,
        stdout,
        stderr,
    } = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run exo-writeback");
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

pub(crate) fn cn(i: u32) -> String {
    format!("mbx{i:05}")
}

pub(crate) fn dn(i: u32) -> String {
    format!("CN={},{MAILBOXES_OU}", cn(i))
}

pub(crate) fn edoid(i: u32) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, cn(i).as_bytes()).to_string()
}

pub(crate) fn texts(obj: &DirectoryObject, attr: &str) -> Vec<String> {
    let mut v: Vec<String> = obj
        .attributes
        .get(attr)
        .iter()
        .map(|v| match v {
            AttrValue::Text(t) => t.clone(),
            AttrValue::Bytes(b) => format!("{b:02x?}"),
        })
        .collect();
    v.sort();
    v
}

/// A number from the environment (scripts/soak), else `default`.
pub(crate) fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small xorshift generator (instants of kills); the seed is printed for repetition.
pub(crate) struct Rng(u64);

impl Rng {
    pub fn from_time() -> Rng {
        let seed = std::env::var("FAULTS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("fault instants: FAULTS_SEED={seed}");
        Rng(seed | 1)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

pub(crate) struct Lab {
    pub dc: LabDc,
    pub sim: SimHandle,
    pub ad: AdConnection,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Lab {
    /// A lab DC with `users` mailbox users and an emulator seeded from them.
    pub async fn start(users: u32) -> Lab {
        let dc = LabDc::start(LabOptions::default().with_users(users)).expect("lab DC");
        let sim = exo_sim::spawn(SimConfig {
            client_secret: Some(SECRET.into()),
            page_size_max: 50,
            ..SimConfig::default()
        })
        .await
        .expect("exo-sim");
        let mut ad_config = AdConfig::new(dc.url.clone(), dc.bind_dn.clone());
        ad_config.ca_file = Some(dc.ca_file.clone());
        ad_config.base_dn = Some(dc.base_dn.clone());
        ad_config.password_file = Some(dc.password_file.clone());
        let ad = AdConnection::connect(&ad_config, Secret::new(dc.password()))
            .await
            .expect("connect to the lab DC");
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("exo-writeback.toml");
        let lab = Lab {
            dc,
            sim,
            ad,
            dir,
            config,
        };
        lab.write_config("", "");
        let found = lab.all_users().await;
        assert_eq!(found.len() as u32, users, "lab users");
        for (&i, obj) in &found {
            lab.sim
                .state()
                .add_mailbox(mailbox_for(i, obj))
                .expect("seed mailbox");
        }
        lab
    }

    /// The configuration file: `ad_extra` lines go into `[ad]`, `writeback` into
    /// `[writeback]`. The password file holds the DC's password unless overwritten.
    pub fn write_config(&self, ad_extra: &str, writeback: &str) {
        let secret_file = self.dir.path().join("client-secret");
        std::fs::write(&secret_file, SECRET).expect("secret");
        let password_file = self.password_file();
        if !password_file.exists() {
            self.set_password(&self.dc.password());
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
        let text = format!(
            r#"[ad]
url = "{url}"
ca_file = "{ca}"
bind_dn = "{bind}"
password_file = "{pw}"
base_dn = "{base}"
{ad_extra}

[exo]
tenant = "contoso.onmicrosoft.com"
client_id = "{client}"
client_secret_file = "{secret}"
login_base = "{sim}"
api_base = "{sim}"
allow_insecure_http = true
page_size = 50

[writeback]
{writeback}

[sync]
state_dir = "{state}"
interval = "5s"
"#,
            url = self.dc.url,
            ca = self.dc.ca_file.display(),
            bind = self.dc.bind_dn,
            pw = password_file.display(),
            base = self.dc.base_dn,
            client = SimConfig::default().client_id,
            secret = secret_file.display(),
            sim = self.sim.base_url(),
            state = self.state_dir().display(),
        );
        std::fs::write(&self.config, text).expect("config");
    }

    pub fn password_file(&self) -> PathBuf {
        self.dir.path().join("ad-password")
    }

    pub fn set_password(&self, password: &str) {
        use std::os::unix::fs::PermissionsExt;
        let f = self.password_file();
        std::fs::write(&f, password).expect("password");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn store(&self) -> SqliteStore {
        SqliteStore::open_in(&self.state_dir()).expect("store")
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        exo_writeback(&self.config, args).await
    }

    pub async fn all_users(&self) -> BTreeMap<u32, DirectoryObject> {
        let found = self
            .ad
            .search(
                MAILBOXES_OU,
                SearchScope::OneLevel,
                "(objectClass=user)",
                &["*"],
            )
            .await
            .expect("read users");
        found
            .into_iter()
            .filter_map(|o| {
                let n = o.dn.get(6..11)?.parse::<u32>().ok()?;
                Some((n, o))
            })
            .collect()
    }

    pub async fn user(&self, i: u32) -> DirectoryObject {
        self.ad
            .read_by_dn(&dn(i), &["*"])
            .await
            .expect("read")
            .expect("user exists")
    }

    pub fn mailbox(&self, i: u32) -> Mailbox {
        self.sim
            .state()
            .mailbox(&edoid(i))
            .expect("mailbox in the sim")
            .to_core()
    }

    pub fn update(&self, i: u32, f: impl FnOnce(&mut exo_sim::SimMailbox)) {
        self.sim
            .state()
            .update_mailbox(&edoid(i), f)
            .expect("update mailbox");
    }

    /// Every mailbox's object holds its cloud values.
    pub async fn assert_converged(&self, before: &BTreeMap<u32, DirectoryObject>) {
        let after = self.all_users().await;
        assert_eq!(after.len(), before.len());
        for (&i, obj) in &after {
            assert_matches_cloud(i, obj, &self.mailbox(i), &before[&i]);
        }
    }

    /// The job state as the store has it.
    pub fn job_state(&self) -> JobState {
        self.store().job_state().expect("job state")
    }

    /// Make a quarantine's next retry due now (as if its back-off had elapsed).
    pub fn make_retry_due(&self) {
        let mut store = self.store();
        if let JobState::Quarantine { reason, since, .. } = store.job_state().expect("state") {
            store
                .set_job_state(&JobState::Quarantine {
                    reason,
                    since,
                    next_retry: jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1),
                })
                .expect("set state");
        }
    }
}

/// The cloud side of lab user `i`, as directory sync would have created it.
pub(crate) fn mailbox_for(i: u32, obj: &DirectoryObject) -> Mailbox {
    let c = cn(i);
    let mut m = Mailbox {
        external_directory_object_id: Some(edoid(i)),
        immutable_id: Some(exo_writeback_core::guid::immutable_id(&obj.object_guid)),
        user_principal_name: Some(format!("{c}@lab.example.test")),
        primary_smtp_address: Some(format!("{c}@{DOMAIN}")),
        windows_email_address: Some(format!("{c}@{DOMAIN}")),
        display_name: Some(c.clone()),
        alias: Some(c.clone()),
        email_addresses: vec![
            format!("SMTP:{c}@{DOMAIN}"),
            format!("smtp:{c}.alias@{DOMAIN}"),
        ],
        recipient_type_details: "UserMailbox".into(),
        is_dir_synced: true,
        is_exchange_cloud_managed: true,
        ..Mailbox::default()
    };
    m.custom_attributes[0] = Some(format!("Dept {i}"));
    m.custom_attributes[4] = Some(format!("five-{i}"));
    m
}

/// The object holds the mailbox's values (extension attributes, mail, proxyAddresses with
/// the X500 values it had before kept).
pub(crate) fn assert_matches_cloud(
    i: u32,
    obj: &DirectoryObject,
    m: &Mailbox,
    before: &DirectoryObject,
) {
    for k in 0..15 {
        let want: Vec<String> = m.custom_attributes[k].iter().cloned().collect();
        assert_eq!(
            texts(obj, &format!("extensionAttribute{}", k + 1)),
            want,
            "{} extensionAttribute{}",
            cn(i),
            k + 1
        );
    }
    assert_eq!(
        texts(obj, "mail"),
        m.windows_email_address.iter().cloned().collect::<Vec<_>>(),
        "{} mail",
        cn(i)
    );
    let mut want: Vec<String> = m.email_addresses.clone();
    want.extend(
        texts(before, "proxyAddresses")
            .into_iter()
            .filter(|p| p.to_ascii_lowercase().starts_with("x500:")),
    );
    want.sort();
    assert_eq!(
        texts(obj, "proxyAddresses"),
        want,
        "{} proxyAddresses",
        cn(i)
    );
}

fn rule(endpoint: Endpoint, kind: FaultKind, count: Option<u32>, skip: u32) -> FaultRule {
    FaultRule {
        endpoint,
        kind,
        count,
        probability: None,
        skip,
    }
}

/// The Failure entries of the provisioning log (at most 100, newest first).
pub(crate) fn failure_entries(store: &SqliteStore) -> Vec<ProvisioningLogEntry> {
    store
        .query_logs(&LogQuery {
            statuses: vec![LogStatus::Failure],
            limit: 100,
            ..LogQuery::default()
        })
        .expect("logs")
}

/// Successful Update entries per target DN (lower case), over every cycle.
pub(crate) fn applied_per_dn(store: &SqliteStore) -> BTreeMap<String, u32> {
    let entries = store
        .query_logs(&LogQuery {
            statuses: vec![LogStatus::Success],
            limit: 1_000_000,
            ..LogQuery::default()
        })
        .expect("logs");
    let mut out = BTreeMap::new();
    for e in entries {
        if e.action == Action::Update
            && let Some(dn) = &e.target.dn
        {
            *out.entry(dn.to_ascii_lowercase()).or_default() += 1;
        }
    }
    out
}

async fn wait_exit(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(started.elapsed() < limit, "the agent did not stop in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
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

/// `sync` killed with SIGKILL at random instants of an initial cycle, several times — even
/// kills at a random instant of the (stretched) read phase, odd kills once a random number of
/// objects are written (surely mid-write) — then a clean run: every object holds its cloud values,
/// and every object whose values changed has exactly one success entry recording the change as
/// applied (never only "found in sync", never twice), with journal records for it (so `undo`
/// could restore it). Changes a killed cycle applied before logging them are logged by the next
/// cycle from the write-ahead intents (docs/RELIABILITY.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_instants_of_an_initial_cycle_loses_nothing() {
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
    let mut killed = 0;
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
        killed >= kills.min(3),
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

/// Lower-cased mapped attributes of the cloud-managed profile.
pub(crate) fn mapped(obj: &DirectoryObject) -> BTreeMap<String, Vec<String>> {
    exo_writeback_core::profile::Profile::CloudManaged
        .target_attributes()
        .iter()
        .map(|a| (a.to_string(), texts(obj, a)))
        .collect()
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
/// cycle's writes, then comes back: the cycle ends (objects it could not write go to escrow,
/// or the cycle fails), no object is half-written (each is entirely as before the cycle or
/// entirely as the cloud has it), and the next cycle completes with everything in sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dc_stopped_mid_cycle_leaves_nothing_half_written_and_the_next_cycle_completes() {
    dc_outage_mid_cycle(DcOutage::Hang).await;
}

/// The same with a real DC restart mid-cycle: the agent's connection is reset and the DC is
/// unreachable for a moment; the cycle ends by itself, nothing is half-written, and the next
/// cycle completes with everything in sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dc_restarted_mid_cycle_leaves_nothing_half_written_and_the_next_cycle_completes() {
    dc_outage_mid_cycle(DcOutage::Restart).await;
}

async fn dc_outage_mid_cycle(outage: DcOutage) {
    let users = env_u32("FAULTS_DC_USERS", 60);
    let mut lab = Lab::start(users).await;
    // Every object loses a stale value in its first cycle: keep the change threshold out of
    // the way at soak sizes.
    lab.write_config("timeout_secs = 1", "threshold = 1000000");
    let before = lab.all_users().await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_exo-writeback"))
        .args(["sync", "--json", "--config"])
        .arg(&lab.config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let started = std::time::Instant::now();
    while written_count(&lab).await < 10 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    match outage {
        DcOutage::Hang => {
            signal_dc(&lab, "STOP");
            tokio::time::sleep(Duration::from_millis(3500)).await;
            signal_dc(&lab, "CONT");
        }
        DcOutage::Restart => {
            let old_pid = lab.dc.pid;
            lab.dc
                .restart(Duration::from_millis(1500))
                .expect("restart the DC");
            assert_ne!(lab.dc.pid, old_pid, "samba was not started again");
        }
    }
    let status = wait_exit(&mut child, Duration::from_secs(120)).await;
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        use std::io::Read;
        let _ = o.read_to_string(&mut out);
    }
    eprintln!("cycle with the DC stopped: {status} {out}");
    let counts = serde_json::from_str::<Value>(&out)
        .map(|v| v["counts"].clone())
        .unwrap_or_default();
    // An outage is not the objects' fault: modifies are sent again once the DC answers (or, if
    // it stays away, the rest waits for the next cycle); no object fails for it.
    assert_eq!(counts["failed"], 0, "objects failed for the outage: {out}");
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
    assert!(whole >= 10, "only {whole} objects written");
    // The next cycle (after a quarantine's back-off, if the stop quarantined the job).
    lab.make_retry_due();
    let next = lab.run(&["sync", "--json"]).await;
    assert_eq!(next.code, 0, "{}\n{}", next.stdout, next.stderr);
    lab.assert_converged(&before).await;
    assert_eq!(lab.store().escrow_count().expect("escrow"), 0);
    assert_eq!(lab.job_state(), JobState::Active);
    let tag = match outage {
        DcOutage::Hang => "dc_stop",
        DcOutage::Restart => "dc_restart",
    };
    eprintln!(
        "SOAK {tag}: users={users} stopped_cycle_exit={} written={} failed={} whole_objects={whole} half_written=0 next_cycle=converged",
        status.code().unwrap_or(-1),
        counts["written"],
        counts["failed"]
    );
}

// ---------------------------------------------------------------------------------------------
// Exchange Online faults
// ---------------------------------------------------------------------------------------------

/// The watermark never passes a mailbox whose change is not yet in AD.
async fn assert_watermark_behind_unprocessed(lab: &Lab, round: u32, users: u32) {
    let Some(w) = lab.store().watermark().expect("watermark") else {
        return;
    };
    for i in 1..=users {
        let obj = lab.user(i).await;
        if texts(&obj, "extensionAttribute3") != [format!("round-{round}")] {
            let changed = lab.mailbox(i).when_changed_utc.expect("WhenChangedUTC");
            assert!(
                w.changed_since <= changed,
                "watermark {} passed unprocessed {} (changed {changed})",
                w.changed_since,
                cn(i)
            );
        }
    }
}

/// Faults while paging and refreshing the token — a 429 storm, 503s, resets, truncated
/// JSON, malformed JSON, an expired token, a broken nextLink, a refusing token endpoint —
/// each during a delta cycle over changed mailboxes: the watermark never passes an
/// unprocessed mailbox, and once the faults stop the agent converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_online_faults_never_move_the_watermark_past_unprocessed_mailboxes() {
    const USERS: u32 = 120;
    let lab = Lab::start(USERS).await;
    let before = lab.all_users().await;
    let first = lab.run(&["sync", "--json"]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let faults: Vec<(&str, Vec<FaultRule>)> = vec![
        (
            "429 storm",
            vec![rule(
                Endpoint::Invoke,
                FaultKind::TooManyRequests {
                    retry_after_secs: 0.1,
                },
                Some(6),
                1,
            )],
        ),
        (
            "503",
            vec![rule(
                Endpoint::NextLink,
                FaultKind::ServiceUnavailable,
                Some(40),
                0,
            )],
        ),
        (
            "500",
            vec![rule(
                Endpoint::NextLink,
                FaultKind::InternalServerError,
                Some(2),
                0,
            )],
        ),
        (
            "reset",
            vec![rule(
                Endpoint::NextLink,
                FaultKind::ResetConnection,
                Some(40),
                1,
            )],
        ),
        (
            "truncated JSON",
            vec![rule(
                Endpoint::NextLink,
                FaultKind::TruncatedJson,
                Some(40),
                0,
            )],
        ),
        (
            "malformed JSON",
            vec![rule(
                Endpoint::NextLink,
                FaultKind::MalformedJson,
                Some(1),
                0,
            )],
        ),
        (
            "expired token",
            vec![rule(
                Endpoint::NextLink,
                FaultKind::ExpiredToken,
                Some(1),
                0,
            )],
        ),
        (
            "broken nextLink",
            vec![rule(
                Endpoint::Invoke,
                FaultKind::BrokenNextLink,
                Some(1),
                1,
            )],
        ),
        (
            "token endpoint refuses",
            vec![
                rule(Endpoint::Token, FaultKind::ServiceUnavailable, Some(40), 0),
                rule(Endpoint::Invoke, FaultKind::ExpiredToken, Some(1), 0),
            ],
        ),
    ];
    let mut outcomes = Vec::new();
    for (round, (name, rules)) in faults.into_iter().enumerate() {
        let round = round as u32 + 1;
        // Every mailbox changes; the sim's clock moves so WhenChangedUTC are distinct.
        lab.sim.state().advance_clock(2);
        for i in 1..=USERS {
            lab.update(i, |m| m.set_custom_attribute(3, &format!("round-{round}")));
        }
        for r in rules {
            lab.sim.state().add_fault(r);
        }
        lab.make_retry_due();
        let faulted = lab.run(&["sync", "--json"]).await;
        let written = serde_json::from_str::<Value>(&faulted.stdout)
            .ok()
            .and_then(|v| v["counts"]["written"].as_u64());
        outcomes.push(format!("{name}: exit {} written {written:?}", faulted.code));
        if name == "429 storm" {
            // Throttling is waited out (Retry-After honoured) without using up the tries.
            assert_eq!(
                (faulted.code, written),
                (0, Some(u64::from(USERS))),
                "a 429 storm must be ridden out: {}",
                faulted.stderr
            );
        }
        assert_watermark_behind_unprocessed(&lab, round, USERS).await;
        lab.sim.state().clear_faults();
        lab.make_retry_due();
        let clean = lab.run(&["sync", "--json"]).await;
        assert_eq!(
            clean.code, 0,
            "after {name}: {}\n{}",
            clean.stdout, clean.stderr
        );
        assert_watermark_behind_unprocessed(&lab, round, USERS).await;
        for i in 1..=USERS {
            assert_eq!(
                texts(&lab.user(i).await, "extensionAttribute3"),
                [format!("round-{round}")],
                "after {name}: {}",
                cn(i)
            );
        }
    }
    eprintln!("{}", outcomes.join("\n"));
    eprintln!(
        "SOAK exo_faults: users={USERS} rules={} watermark_violations=0 converged=yes",
        outcomes.len()
    );
    let _ = before;
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
