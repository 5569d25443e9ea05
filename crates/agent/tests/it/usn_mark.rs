//! An initial cycle against the lab DC (Samba) decides on its scan's copies of the objects
//! unchanged since the DC's USN mark, and reads again only those changed between the scan and
//! their evaluation: a renamed object is written at its new DN, an edited one is planned on
//! its edited value.

use std::sync::{Arc, Mutex};

use exo_writeback_ad::domain::DomainConnection;
use exo_writeback_ad::forest_directory::ForestDirectory;
use exo_writeback_ad::{AdConfig, AdConnection};
use exo_writeback_agent::ad::AdDirectory;
use exo_writeback_core::directory::{AttrValue, Attributes, DirectoryObject, ObjectModify};
use exo_writeback_core::drift::ChangeOrigin;
use exo_writeback_core::schema::Schema;
use exo_writeback_core::secret::Secret;
use exo_writeback_core::settings::WritebackSettings;
use exo_writeback_engine::testing::{FakeSource, mailbox};
use exo_writeback_engine::{
    ChangeMark, CycleMode, CycleReport, Directory, DirectoryError, Engine, EngineOptions,
    ScanScope, UnreadableAttribute,
};
use exo_writeback_store_sqlite::SqliteStore;
use exo_writeback_testlab::LabDc;
use uuid::Uuid;

/// The agent's directory, with an administrator's changes made right after the scan, and the
/// reads by objectGUID and modifies recorded.
struct ChangedAfterScan {
    inner: AdDirectory,
    after_scan: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// The home domain's connection, dropped right after the scan (the next request reconnects).
    lose_after_scan: Option<Arc<DomainConnection>>,
    read: Arc<Mutex<Vec<Uuid>>>,
    checks: Arc<Mutex<usize>>,
    modifies: Arc<Mutex<Vec<ObjectModify>>>,
}

impl Directory for ChangedAfterScan {
    async fn schema(&self) -> Result<Arc<Schema>, DirectoryError> {
        self.inner.schema().await
    }
    async fn refresh_schema(&self) -> Result<Arc<Schema>, DirectoryError> {
        self.inner.refresh_schema().await
    }
    async fn find_by_attribute(
        &self,
        attribute: &str,
        value: &AttrValue,
        attributes: &[String],
    ) -> Result<Vec<DirectoryObject>, DirectoryError> {
        self.inner
            .find_by_attribute(attribute, value, attributes)
            .await
    }
    async fn read_by_guid(
        &self,
        guid: &Uuid,
        attributes: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError> {
        self.read.lock().unwrap().push(*guid);
        self.inner.read_by_guid(guid, attributes).await
    }
    async fn read_by_dn(
        &self,
        dn: &str,
        attributes: &[String],
    ) -> Result<Option<DirectoryObject>, DirectoryError> {
        self.inner.read_by_dn(dn, attributes).await
    }
    async fn read_by_guids(
        &self,
        guids: &[Uuid],
        attributes: &[String],
    ) -> Result<Vec<DirectoryObject>, DirectoryError> {
        self.read.lock().unwrap().extend(guids);
        self.inner.read_by_guids(guids, attributes).await
    }
    async fn modify(&self, modify: &ObjectModify) -> Result<(), DirectoryError> {
        self.modifies.lock().unwrap().push(modify.clone());
        self.inner.modify(modify).await
    }
    async fn address_holders(
        &self,
        addresses: &[String],
    ) -> Result<Vec<(String, String)>, DirectoryError> {
        self.inner.address_holders(addresses).await
    }
    async fn unreadable_attributes(
        &self,
        attributes: &[String],
        samples: &[Uuid],
    ) -> Result<Vec<UnreadableAttribute>, DirectoryError> {
        self.inner.unreadable_attributes(attributes, samples).await
    }
    async fn scan_match_keys(
        &self,
        present: &[&str],
        attributes: &[String],
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<ScanScope, DirectoryError> {
        let scanned = self
            .inner
            .scan_match_keys(present, attributes, on_object)
            .await;
        let action = self.after_scan.lock().unwrap().take();
        if let Some(action) = action {
            action();
        }
        if let Some(home) = &self.lose_after_scan {
            home.connection().await.simulate_connection_loss().await;
        }
        scanned
    }
    async fn scan_addresses(
        &self,
        on_object: &mut (dyn FnMut(DirectoryObject) + Send),
    ) -> Result<(), DirectoryError> {
        self.inner.scan_addresses(on_object).await
    }
    async fn change_mark(&self) -> Result<Option<ChangeMark>, DirectoryError> {
        self.inner.change_mark().await
    }
    async fn changed_since(
        &self,
        mark: &ChangeMark,
        guids: &[Uuid],
    ) -> Result<Vec<Uuid>, DirectoryError> {
        *self.checks.lock().unwrap() += 1;
        self.inner.changed_since(mark, guids).await
    }
    async fn attribute_origins(
        &self,
        dn: &str,
        attributes: &[String],
    ) -> Result<Vec<ChangeOrigin>, DirectoryError> {
        self.inner.attribute_origins(dn, attributes).await
    }
}

/// One cycle (the first: initial) of an engine over `dir`, its state in `state_dir`.
async fn initial_cycle(
    source: FakeSource,
    dir: ChangedAfterScan,
    state_dir: &std::path::Path,
) -> CycleReport {
    let mut engine = Engine::new(
        source,
        dir,
        SqliteStore::open_in(state_dir).expect("store"),
        WritebackSettings::default().resolve().expect("settings"),
        EngineOptions::default(),
    );
    engine.run_cycle(CycleMode::Auto).await.expect("cycle")
}

/// An administrator's connection, three new users in an OU of their own ([`lab_users`]), and
/// the agent's forest directory with that OU as its search scope.
async fn scoped_to_new_users(
    dc: &'static LabDc,
    base: u32,
) -> (
    AdConnection,
    ForestDirectory,
    (String, Vec<Uuid>, Vec<String>, FakeSource),
) {
    let config = lab_config(dc);
    let admin = AdConnection::connect(&config, Secret::new(dc.password()))
        .await
        .expect("connect");
    let users = lab_users(&admin, dc, base).await;
    let mut scoped = config.clone();
    scoped.search_bases = Some(vec![users.0.clone()]);
    let forest = ForestDirectory::open(&scoped, Secret::new(dc.password()))
        .await
        .expect("open");
    (admin, forest, users)
}

/// Three users of their own, in an OU of their own (the search scope), numbered from `base`
/// apart from other tests' (their addresses and keys are unique in the shared DC), and their
/// mailboxes: the OU, the users' objectGUIDs and DNs, the source.
async fn lab_users(
    admin: &AdConnection,
    dc: &LabDc,
    base: u32,
) -> (String, Vec<Uuid>, Vec<String>, FakeSource) {
    let ou = format!("OU=usn-{base},{}", dc.base_dn);
    let mut attrs = Attributes::new();
    attrs.insert("objectClass", vec![text("organizationalUnit")]);
    admin.add(&ou, &attrs).await.expect("the OU");
    let t0 = jiff::Timestamp::now();
    let source = FakeSource::default();
    let mut guids = Vec::new();
    let mut dns = Vec::new();
    for n in base..base + 3 {
        let m = mailbox(n, t0);
        let dn = format!("CN=user{n},{ou}");
        let mut a = Attributes::new();
        a.insert("objectClass", vec![text("user")]);
        a.insert("sAMAccountName", vec![text(&format!("usn{n}"))]);
        a.insert(
            "userPrincipalName",
            vec![text(&format!("user{n}@contoso.com"))],
        );
        a.insert(
            "msDS-ExternalDirectoryObjectId",
            vec![text(&format!(
                "User_{}",
                m.external_directory_object_id.clone().unwrap()
            ))],
        );
        admin.add(&dn, &a).await.expect("a user");
        let o = admin.read_by_dn(&dn, &[]).await.unwrap().expect("created");
        guids.push(o.object_guid);
        dns.push(dn);
        source.set(m);
    }
    (ou, guids, dns, source)
}

/// A reconnect between the mark and the end of the scan (here: the connection dropped as the
/// scan ends) may have brought pages from another DC — a name resolving to several DCs, or a
/// failover and back: the mark is another session's, and every candidate is read fresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_during_the_scan_voids_the_mark() {
    let dc = LabDc::shared();
    let base = 900_000 + std::process::id() % 100_000;
    let (admin, forest, (ou, guids, dns, source)) = scoped_to_new_users(dc, base).await;
    let home = forest.home().clone();
    let dir = ChangedAfterScan {
        inner: AdDirectory::new(forest, None).await,
        after_scan: Mutex::new(None),
        lose_after_scan: Some(home),
        read: Arc::default(),
        checks: Arc::default(),
        modifies: Arc::default(),
    };
    let (read, checks) = (dir.read.clone(), dir.checks.clone());
    let tmp = tempfile::tempdir().unwrap();
    let r = initial_cycle(source, dir, tmp.path()).await;
    assert_eq!((r.counts.written, r.counts.failed), (3, 0), "{r:?}");
    assert_eq!(*checks.lock().unwrap(), 0, "a check on a voided mark");
    let mut read = read.lock().unwrap().clone();
    read.sort();
    read.dedup();
    let mut all = guids.clone();
    all.sort();
    assert_eq!(read, all, "every candidate read fresh");
    for dn in dns.iter().chain([&ou]) {
        admin.delete(dn).await.expect("clean up");
    }
}

fn lab_config(dc: &LabDc) -> AdConfig {
    #[derive(serde::Deserialize)]
    struct File {
        ad: AdConfig,
    }
    let text = std::fs::read_to_string(&dc.config_file).expect("lab config file");
    toml::from_str::<File>(&text).expect("lab config").ad
}

fn text(v: &str) -> AttrValue {
    AttrValue::Text(v.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_initial_cycle_reads_again_only_the_objects_changed_after_its_scan() {
    let dc = LabDc::shared();
    let base = 700_000 + std::process::id() % 100_000;
    let (admin, forest, (ou, guids, dns, source)) = scoped_to_new_users(dc, base).await;
    let (rename_from, edited_dn) = (dns[1].clone(), dns[2].clone());
    let edited_value = format!("ca1-{}", base + 2);
    let after_scan = move || {
        // The engine's scan has ended; its read phase has not begun. An administrator renames
        // one user and sets on another the value the plan would write.
        let ldif = format!(
            "dn: {rename_from}\nchangetype: modrdn\nnewrdn: CN=renamed{base}\ndeleteoldrdn: 1\n\n\
             dn: {edited_dn}\nchangetype: modify\nreplace: extensionAttribute1\n\
             extensionAttribute1: {edited_value}\n-\n"
        );
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), ldif).unwrap();
        let out = dc
            .ldap_tool("ldapmodify")
            .arg("-f")
            .arg(file.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let dir = ChangedAfterScan {
        inner: AdDirectory::new(forest, None).await,
        after_scan: Mutex::new(Some(Box::new(after_scan))),
        lose_after_scan: None,
        read: Arc::default(),
        checks: Arc::default(),
        modifies: Arc::default(),
    };
    let (read, checks, modifies) = (dir.read.clone(), dir.checks.clone(), dir.modifies.clone());
    let tmp = tempfile::tempdir().unwrap();
    let r = initial_cycle(source, dir, tmp.path()).await;
    assert_eq!((r.counts.written, r.counts.failed), (3, 0), "{r:?}");
    assert!(*checks.lock().unwrap() >= 1, "the USN mark was not used");
    let mut read = read.lock().unwrap().clone();
    read.sort();
    read.dedup();
    let mut changed = vec![guids[1], guids[2]];
    changed.sort();
    assert_eq!(
        read, changed,
        "read again: only the objects changed after the scan"
    );
    let modifies = modifies.lock().unwrap().clone();
    let renamed = format!("CN=renamed{base},{ou}");
    assert!(modifies.iter().any(|m| m.dn == renamed), "{modifies:?}");
    assert!(
        modifies.iter().all(|m| m.dn != dns[1]),
        "written at the old DN"
    );
    let edited = modifies.iter().find(|m| m.dn == dns[2]).expect("edited");
    assert!(
        edited
            .changes
            .iter()
            .all(|c| !c.attribute.eq_ignore_ascii_case("extensionAttribute1")),
        "planned on the scan's copy: {edited:?}"
    );
    let first = modifies.iter().find(|m| m.dn == dns[0]).expect("first");
    assert!(
        first
            .changes
            .iter()
            .any(|c| c.attribute.eq_ignore_ascii_case("extensionAttribute1"))
    );
    let now = admin
        .read_by_dn(&renamed, &["extensionAttribute1"])
        .await
        .unwrap()
        .expect("renamed");
    assert_eq!(
        now.attributes.get("extensionAttribute1"),
        [text(&format!("ca1-{}", base + 1))]
    );
    for dn in [&dns[0], &renamed, &dns[2], &ou] {
        admin.delete(dn).await.expect("clean up");
    }
}
