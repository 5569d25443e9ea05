//! The one harness of the binary's integration tests: the real `exo-writeback` binary run
//! against a lab Samba DC and the in-process Exchange Online emulator (`exo_sim`), seeded from
//! the DC's users as directory sync would have created them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use exo_sim::{SimConfig, SimHandle};
use exo_writeback_ad::{AdConfig, AdConnection, SearchScope};
use exo_writeback_core::directory::{AttrValue, DirectoryObject};
use exo_writeback_core::mailbox::Mailbox;
use exo_writeback_core::provisioning::{Action, JobState, LogStatus, ProvisioningLogEntry};
use exo_writeback_core::secret::Secret;
use exo_writeback_store_sqlite::prelude::*;
use exo_writeback_store_sqlite::{LogQuery, SqliteStore};
use exo_writeback_testlab::{LabDc, LabOptions, MAILBOXES_OU};
use serde_json::Value;

pub(crate) const SECRET: &str = "sim-client-secret-for-tests";
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

/// `exo-writeback <args> --config <config>`, without `RUST_LOG`, to run with [`finish`].
pub(crate) fn command(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_exo-writeback"));
    cmd.args(args)
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG");
    cmd
}

/// Runs `cmd` to its end; it must not panic.
pub(crate) fn finish(mut cmd: Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run exo-writeback");
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

/// `exo-writeback <args> --config <config>`, waiting for it on this thread.
pub(crate) fn exo_writeback_blocking(config: &Path, args: &[&str]) -> Run {
    finish(command(config, args))
}

/// `exo-writeback <args> --config <config>`, waiting for it off the async runtime.
pub(crate) async fn exo_writeback(config: &Path, args: &[&str]) -> Run {
    let cmd = command(config, args);
    tokio::task::spawn_blocking(move || finish(cmd))
        .await
        .expect("join")
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

/// A lab DC with mailbox users, an Exchange Online emulator, and a configuration file for
/// both in a temporary directory (with the state directory beside it).
pub(crate) struct Lab {
    pub dc: LabDc,
    pub sim: SimHandle,
    pub ad: AdConnection,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// Mailboxes per result page, the emulator's largest and the client's.
    pub page_size: u32,
}

impl Lab {
    /// A lab DC with `users` mailbox users and an emulator seeded from them
    /// ([`mailbox_for`]), pages of 50.
    pub async fn start(users: u32) -> Lab {
        Lab::start_paged(users, 50).await
    }

    /// [`Lab::start`] with result pages of `page_size` mailboxes.
    pub async fn start_paged(users: u32, page_size: u32) -> Lab {
        let lab = Lab::empty(users, page_size).await;
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

    /// A lab DC with `users` mailbox users and an empty emulator whose pages hold `page_size`
    /// mailboxes.
    pub async fn empty(users: u32, page_size: u32) -> Lab {
        let dc = LabDc::start(LabOptions::default().with_users(users)).expect("lab DC");
        let sim = exo_sim::spawn(SimConfig {
            client_secret: Some(SECRET.into()),
            page_size_max: page_size as usize,
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
            page_size,
        };
        lab.write_config("", "");
        lab
    }

    /// The configuration file: `ad_extra` lines go into `[ad]`, `writeback` into
    /// `[writeback]`. The password file holds the DC's password unless overwritten.
    pub fn write_config(&self, ad_extra: &str, writeback: &str) {
        self.write_config_with(ad_extra, "", writeback);
    }

    /// [`Lab::write_config`] with `exo_extra` lines in `[exo]`.
    pub fn write_config_with(&self, ad_extra: &str, exo_extra: &str, writeback: &str) {
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
page_size = {page_size}
{exo_extra}

[writeback]
{writeback}

[sync]
state_dir = "{state}"
interval = "5s"

[api]
listen = "127.0.0.1:0"
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
            page_size = self.page_size,
        );
        std::fs::write(&self.config, text).expect("config");
    }

    /// Make the agent bind as `dn` with `password` (the configuration's bind DN and password
    /// file).
    pub fn bind_agent_as(&self, dn: &str, password: &str) {
        self.set_password(password);
        let config = std::fs::read_to_string(&self.config).expect("config");
        let bind_line = format!("bind_dn = \"{}\"", self.dc.bind_dn);
        assert!(config.contains(&bind_line), "{config}");
        std::fs::write(
            &self.config,
            config.replace(&bind_line, &format!("bind_dn = \"{dn}\"")),
        )
        .expect("config");
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

    /// `logs --format json <args>`: the entries, one JSON value a line.
    pub async fn log_lines(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["logs", "--format", "json"];
        all.extend_from_slice(args);
        let out = self.run(&all).await;
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        out.stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect()
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

pub(crate) async fn wait_exit(
    child: &mut std::process::Child,
    limit: Duration,
) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(started.elapsed() < limit, "the agent did not stop in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Lower-cased mapped attributes of the cloud-managed profile.
pub(crate) fn mapped(obj: &DirectoryObject) -> BTreeMap<String, Vec<String>> {
    exo_writeback_core::profile::Profile::CloudManaged
        .target_attributes()
        .iter()
        .map(|a| (a.to_string(), texts(obj, a)))
        .collect()
}
