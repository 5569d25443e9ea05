//! The agent's directory (`AdDirectory`) over a forest of two domains that Samba cannot show,
//! served by winad as Windows answers (MS-ADTS; crates/winad/README.md): `corp.example` (root,
//! a global catalog) and `child.corp.example`, whose nearest DC is read-only. A user of the
//! child domain is found below a search base of its domain and written on a writable DC of
//! its domain — never on the read-only one; the duplicate-address guard finds a holder
//! anywhere in the forest (a contact of the other domain, outside the search bases); the DCs
//! in use are recorded for `status`.

use exo_writeback_ad::AdConfig;
use exo_writeback_ad::forest_directory::ForestDirectory;
use exo_writeback_agent::ad::AdDirectory;
use exo_writeback_agent::dc_status;
use exo_writeback_core::directory::{AttrChange, AttrValue, ModOp, ObjectModify};
use exo_writeback_core::secret::Secret;
use exo_writeback_engine::Directory;
use exo_writeback_winad::{DcSpec, Entry, ForestSpec, WinAd, text_attr};

const PASSWORD: &str = "Winad-Pa55";
const ALICE: &str = "CN=Alice,CN=Users,DC=child,DC=corp,DC=example";
const BOB: &str = "CN=Bob,CN=Users,DC=corp,DC=example";
/// A contact of the child domain, outside every search base.
const CONTACT: &str = "CN=Old Sales,OU=Contacts,DC=child,DC=corp,DC=example";
const RODC: &str = "rodc1.child.corp.example";

fn entry(dn: &str, class: &[&str], attrs: &[(&str, &str)]) -> Entry {
    let mut out = vec![text_attr("objectClass", class)];
    out.extend(attrs.iter().map(|(a, v)| text_attr(a, &[v])));
    Entry {
        dn: dn.into(),
        attrs: out,
    }
}

fn spec() -> ForestSpec {
    let mut spec = ForestSpec::root_and_child(PASSWORD);
    spec.dcs.push(DcSpec {
        host: RODC.into(),
        domain: "child.corp.example".into(),
        gc: false,
        read_only: true,
    });
    let user = ["top", "person", "user"];
    spec.objects.push(entry(
        ALICE,
        &user,
        &[
            ("mail", "alice@corp.example"),
            ("proxyAddresses", "SMTP:alice@corp.example"),
            ("userPrincipalName", "alice@child.corp.example"),
        ],
    ));
    spec.objects.push(entry(
        BOB,
        &user,
        &[
            ("mail", "bob@corp.example"),
            ("proxyAddresses", "SMTP:bob@corp.example"),
        ],
    ));
    let mut contact = entry(CONTACT, &["top", "person", "contact"], &[]);
    contact.attrs.push(text_attr(
        "proxyAddresses",
        &[
            "smtp:sales@corp.example",
            "X500:/o=Corp/cn=Recipients/cn=sales",
        ],
    ));
    spec.objects.push(contact);
    spec
}

/// `[ad]`: the root DC by URL; the child domain's DCs in order, the read-only one first (the
/// nearest); the search bases in both domains, the contacts' OU in neither.
fn config(winad: &WinAd, dir: &std::path::Path) -> AdConfig {
    let ca = dir.join("winad-ca.pem");
    std::fs::write(&ca, winad.ca_pem()).expect("write the CA");
    let root = winad.dc("dc1.corp.example");
    let mut config = AdConfig::new(format!("ldaps://{}", root.ldaps), "svc@corp.example");
    config.ca_file = Some(ca);
    config.password_env = Some("UNUSED".into());
    config.base_dn = Some("DC=corp,DC=example".into());
    config.timeout_secs = 5;
    config.search_bases = Some(vec![
        "CN=Users,DC=corp,DC=example".into(),
        "CN=Users,DC=child,DC=corp,DC=example".into(),
    ]);
    config.domain_dcs.insert(
        "child.corp.example".into(),
        vec![
            winad.dc(RODC).ldaps.to_string(),
            winad.dc("dc1.child.corp.example").ldaps.to_string(),
        ],
    );
    config.gc_servers = vec![root.gc_ldaps.expect("root DC is a GC").to_string()];
    config
}

#[tokio::test]
async fn a_child_domain_user_is_found_and_written_on_a_writable_dc_of_its_domain() {
    let winad = WinAd::start(spec()).await.expect("winad");
    let tmp = tempfile::tempdir().expect("tempdir");
    let forest = ForestDirectory::open(&config(&winad, tmp.path()), Secret::new(PASSWORD))
        .await
        .expect("open the forest");
    let dir = AdDirectory::new(forest, Some(tmp.path().to_path_buf())).await;

    // Found below the search base of the child domain (the root DC would answer a referral).
    let attrs = vec!["mail".to_string(), "userPrincipalName".to_string()];
    let found = dir
        .find_by_attribute(
            "mail",
            &AttrValue::Text("alice@corp.example".into()),
            &attrs,
        )
        .await
        .expect("search every base in its own domain");
    assert_eq!(
        found.iter().map(|o| o.dn.as_str()).collect::<Vec<_>>(),
        [ALICE]
    );
    let alice_guid = found[0].object_guid;
    // By objectGUID: through the global catalog, then read in its domain.
    let by_guid = dir
        .read_by_guid(&alice_guid, &attrs)
        .await
        .expect("read by GUID")
        .expect("Alice");
    assert_eq!(by_guid.dn, ALICE);

    // Written on the child domain's writable DC; the read-only one (listed first) is skipped.
    dir.modify(&ObjectModify {
        dn: ALICE.into(),
        changes: vec![AttrChange {
            op: ModOp::Replace,
            attribute: "description".into(),
            values: vec![AttrValue::Text("written by the agent".into())],
        }],
    })
    .await
    .expect("a write in the child domain");
    assert_eq!(
        winad.modifies(),
        [("dc1.child.corp.example".to_string(), ALICE.to_string())]
    );

    // The guard: holders anywhere in the forest, outside the search bases and in the other
    // domain included, for SMTP and X500 addresses alike.
    let holders = dir
        .address_holders(&[
            "sales@corp.example".to_string(),
            "X500:/o=Corp/cn=Recipients/cn=sales".to_string(),
            "nobody@corp.example".to_string(),
        ])
        .await
        .expect("forest-wide look-up");
    let mut held: Vec<(String, String)> = holders
        .into_iter()
        .map(|(a, dn)| (a.to_lowercase(), dn))
        .collect();
    held.sort();
    assert_eq!(
        held,
        [
            ("smtp:sales@corp.example".to_string(), CONTACT.to_string()),
            (
                "x500:/o=corp/cn=recipients/cn=sales".to_string(),
                CONTACT.to_string()
            ),
        ]
    );

    // What `status` shows: each domain's DC, the read-only one passed over.
    let recorded = dc_status::read(tmp.path()).expect("dc-status.json");
    let child = recorded
        .domains
        .iter()
        .find(|d| d.domain == "child.corp.example")
        .expect("the child domain is recorded once connected");
    assert_eq!(child.dc, "dc1.child.corp.example");
    assert!(!child.read_only);
    assert!(
        child
            .skipped
            .iter()
            .any(|s| s.starts_with(RODC) && s.contains("read-only")),
        "{:?}",
        child.skipped
    );
    assert!(recorded.last_failover.is_none());
}

/// A whole cycle of the engine over the winad forest: Alice's mailbox (no ImmutableId, as is
/// common) is matched in the child domain by her key, corroborated by her UPN, and her new alias
/// — held by a contact of the child domain outside every search base — blocks her, naming the
/// contact; Bob's mailbox in the root domain is written on the root's DC.
#[tokio::test]
async fn a_cycle_over_two_domains_writes_each_on_its_own_dc_and_an_address_held_elsewhere_blocks() {
    use exo_writeback_core::mailbox::Mailbox;
    use exo_writeback_core::settings::WritebackSettings;
    use exo_writeback_engine::testing::FakeSource;
    use exo_writeback_engine::{CycleMode, Engine, EngineOptions};
    use exo_writeback_store_sqlite::SqliteStore;
    use exo_writeback_store_sqlite::prelude::*;

    let mut spec = spec();
    for (dn, id) in [(ALICE, 1), (BOB, 2)] {
        let entry = spec.objects.iter_mut().find(|e| e.dn == dn).expect("user");
        entry.attrs.push(text_attr(
            "msDS-ExternalDirectoryObjectId",
            &[&format!("User_00000000-0000-0000-0000-{id:012}")],
        ));
    }
    if let Some(bob) = spec.objects.iter_mut().find(|e| e.dn == BOB) {
        bob.attrs
            .push(text_attr("userPrincipalName", &["bob@corp.example"]));
    }
    let winad = WinAd::start(spec).await.expect("winad");
    let tmp = tempfile::tempdir().expect("tempdir");
    let forest = ForestDirectory::open(&config(&winad, tmp.path()), Secret::new(PASSWORD))
        .await
        .expect("open the forest");
    let dir = AdDirectory::new(forest, Some(tmp.path().to_path_buf())).await;
    let mailbox = |id: u32, upn: &str, addresses: &[&str]| {
        let mut m = Mailbox {
            external_directory_object_id: Some(format!("00000000-0000-0000-0000-{id:012}")),
            user_principal_name: Some(upn.into()),
            primary_smtp_address: Some(addresses[0].trim_start_matches("SMTP:").into()),
            email_addresses: addresses.iter().map(|a| a.to_string()).collect(),
            recipient_type_details: "UserMailbox".into(),
            is_dir_synced: true,
            is_exchange_cloud_managed: true,
            when_changed_utc: Some(jiff::Timestamp::now()),
            ..Mailbox::default()
        };
        m.custom_attributes[0] = Some(format!("ca1-{id}"));
        m
    };
    let source = FakeSource::default();
    source.set(mailbox(
        1,
        "alice@child.corp.example",
        &["SMTP:alice@corp.example", "smtp:sales@corp.example"],
    ));
    source.set(mailbox(2, "bob@corp.example", &["SMTP:bob@corp.example"]));
    // winad's schema holds mail, proxyAddresses and extensionAttribute1 of the profile's
    // attributes: the others are left out.
    let kept = ["mail", "proxyAddresses", "extensionAttribute1"];
    let disabled_attributes = exo_writeback_core::profile_attrs::PROFILES[0]
        .1
        .iter()
        .filter(|a| !kept.contains(a))
        .map(|a| a.to_string())
        .collect();
    let settings = WritebackSettings {
        hide_from_address_lists: false,
        disabled_attributes,
        ..WritebackSettings::default()
    }
    .resolve()
    .expect("settings");
    let mut engine = Engine::new(
        source,
        dir,
        SqliteStore::open_in(&tmp.path().join("state")).expect("store"),
        settings,
        EngineOptions::default(),
    );
    let report = engine.run_cycle(CycleMode::Auto).await.expect("a cycle");
    let logs = engine
        .store
        .query_logs(&exo_writeback_store_sqlite::LogQuery::default())
        .expect("logs");
    let of = |id: u32| {
        logs.iter()
            .find(|e| {
                e.source.external_directory_object_id.as_deref()
                    == Some(format!("00000000-0000-0000-0000-{id:012}").as_str())
            })
            .unwrap_or_else(|| panic!("no entry for {id}: {logs:?}"))
    };
    let alice = of(1);
    let reason = alice
        .reason
        .as_ref()
        .map(|r| (r.code.as_str(), r.message.as_str()));
    assert_eq!(
        reason.map(|r| r.0),
        Some("ProxyAddressConflict"),
        "{alice:?}"
    );
    assert!(
        reason.is_some_and(|r| r.1.contains(CONTACT)),
        "the holder is named: {alice:?}"
    );
    assert_eq!(alice.target.dn.as_deref(), Some(ALICE));
    assert!(
        alice
            .steps
            .matching
            .details
            .contains("corroborated by userPrincipalName"),
        "{:?}",
        alice.steps.matching
    );
    let bob = of(2);
    assert_eq!(
        bob.reason.as_ref().map(|r| r.code.as_str()),
        None,
        "{bob:?}"
    );
    assert_eq!(report.counts.written, 1, "{report:?}");
    assert_eq!(
        winad.modifies(),
        [("dc1.corp.example".to_string(), BOB.to_string())],
        "nothing was written for Alice"
    );
}
