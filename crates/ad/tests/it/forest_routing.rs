//! A forest of two domains — `corp.example` (root, with a global catalog) and its child
//! `child.corp.example` — which Samba cannot show, served by winad as Windows answers: the
//! partitions read into a Forest, referrals said by name, each object read and written on a DC
//! of its own domain, and forest-wide lookups through the global catalog (only the partial
//! attribute set) or, for attributes the GC does not hold, in every domain.

use exo_writeback_ad::forest_directory::ForestDirectory;
use exo_writeback_ad::{AdConfig, AdConnection, AdError, SearchScope};
use exo_writeback_core::directory::{AttrChange, AttrValue, ModOp, ObjectModify};
use exo_writeback_core::secret::Secret;
use exo_writeback_winad::{Entry, ForestSpec, WinAd, text_attr};

pub const PASSWORD: &str = "Winad-Pa55";
pub const CHILD_USER: &str = "CN=Alice,CN=Users,DC=child,DC=corp,DC=example";
pub const ROOT_USER: &str = "CN=Bob,CN=Users,DC=corp,DC=example";

fn user(dn: &str, mail: &str) -> Entry {
    Entry {
        dn: dn.into(),
        attrs: vec![
            text_attr("objectClass", &["top", "person", "user"]),
            text_attr("mail", &[mail]),
            text_attr("proxyAddresses", &[&format!("SMTP:{mail}")]),
            text_attr("employeeID", &["E-1"]),
        ],
    }
}

/// The forest with Alice in the child domain and Bob in the root; `gc_attributes` added to
/// the partial attribute set.
pub fn spec(gc_attributes: &[&'static str]) -> ForestSpec {
    let mut spec = ForestSpec::root_and_child(PASSWORD);
    spec.objects.push(user(CHILD_USER, "alice@corp.example"));
    spec.objects.push(user(ROOT_USER, "bob@corp.example"));
    spec.gc_attributes = gc_attributes.to_vec();
    spec
}

/// `[ad]` for the root DC of `winad`: LDAPS with its CA, the child's DC and the GC named.
pub fn config(winad: &WinAd, dir: &tempfile::TempDir) -> AdConfig {
    let ca = dir.path().join("winad-ca.pem");
    std::fs::write(&ca, winad.ca_pem()).expect("write the CA");
    let root = winad.dc("dc1.corp.example");
    let child = winad.dc("dc1.child.corp.example");
    let mut config = AdConfig::new(format!("ldaps://{}", root.ldaps), "svc@corp.example");
    config.ca_file = Some(ca);
    config.password_env = Some("UNUSED".into());
    config.base_dn = Some("DC=corp,DC=example".into());
    config.timeout_secs = 5;
    config
        .domain_dcs
        .insert("child.corp.example".into(), vec![child.ldaps.to_string()]);
    config.gc_servers = vec![root.gc_ldaps.expect("root DC is a GC").to_string()];
    config
}

fn describe(dn: &str, value: &str) -> ObjectModify {
    ObjectModify {
        dn: dn.into(),
        changes: vec![AttrChange {
            op: ModOp::Replace,
            attribute: "description".into(),
            values: vec![AttrValue::Text(value.into())],
        }],
    }
}

#[tokio::test]
async fn a_base_in_the_child_domain_is_a_referral_said_by_name() {
    let winad = WinAd::start(spec(&[])).await.expect("winad");
    let tmp = tempfile::tempdir().expect("tempdir");
    let conn = AdConnection::connect(&config(&winad, &tmp), Secret::new(PASSWORD))
        .await
        .expect("bind to the root DC");
    let err = conn
        .search(
            "CN=Users,DC=child,DC=corp,DC=example",
            SearchScope::Subtree,
            "(objectClass=user)",
            &["mail"],
        )
        .await
        .expect_err("the root DC does not hold the child domain");
    match &err {
        AdError::Referral { same_object, .. } => {
            assert_eq!(err.referral_host().as_deref(), Some("child.corp.example"));
            assert!(!same_object);
        }
        other => panic!("not a referral: {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("domain child.corp.example") && text.contains("ad.domain_dcs"),
        "the error names the domain and what to configure: {text}"
    );
    // A subtree search of the root domain skips the child domain (a continuation reference
    // is not chased) and finds the root's own objects.
    let found = conn
        .search(
            "DC=corp,DC=example",
            SearchScope::Subtree,
            "(objectClass=user)",
            &["mail"],
        )
        .await
        .expect("root subtree");
    assert!(found.iter().any(|o| o.dn == ROOT_USER));
    assert!(!found.iter().any(|o| o.dn == CHILD_USER));
}

#[tokio::test]
async fn objects_are_read_and_written_in_their_own_domain_and_found_through_the_gc() {
    let winad = WinAd::start(spec(&[])).await.expect("winad");
    let tmp = tempfile::tempdir().expect("tempdir");
    let forest = ForestDirectory::open(&config(&winad, &tmp), Secret::new(PASSWORD))
        .await
        .expect("open the forest");

    // The partitions: the root first, then the child, each with its NetBIOS name.
    let domains: Vec<(&str, Option<&str>)> = forest
        .forest()
        .domains
        .iter()
        .map(|d| (d.dns_name.as_str(), d.netbios.as_deref()))
        .collect();
    assert_eq!(
        domains,
        [
            ("corp.example", Some("CORP")),
            ("child.corp.example", Some("CHILD"))
        ]
    );
    assert_eq!(
        forest
            .forest()
            .domain_of(CHILD_USER)
            .map(|d| d.dns_name.as_str()),
        Some("child.corp.example")
    );

    // Writes go to the object's own domain.
    forest
        .modify(&describe(CHILD_USER, "child write"))
        .await
        .expect("a write in the child domain");
    forest
        .modify(&describe(ROOT_USER, "root write"))
        .await
        .expect("a write in the root domain");
    assert_eq!(
        winad.modifies(),
        vec![
            ("dc1.child.corp.example".to_string(), CHILD_USER.to_string()),
            ("dc1.corp.example".to_string(), ROOT_USER.to_string()),
        ]
    );
    let alice = forest
        .read_by_dn(CHILD_USER, &["description", "mail"])
        .await
        .expect("read")
        .expect("Alice");
    assert_eq!(
        alice
            .attributes
            .get("description")
            .first()
            .and_then(|v| v.as_text()),
        Some("child write")
    );

    // The global catalog answers across domains, with partial-attribute-set attributes only.
    let gc = forest.global_catalog().await.expect("the GC");
    let found = gc
        .find_any(
            &[("mail", AttrValue::Text("alice@corp.example".into()))],
            &["mail"],
        )
        .await
        .expect("GC search for mail");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].dn, CHILD_USER);
    let err = gc
        .find_any(
            &[("mail", AttrValue::Text("alice@corp.example".into()))],
            &["employeeID"],
        )
        .await
        .expect_err("employeeID is not in the partial attribute set");
    assert!(
        matches!(&err, AdError::NotInGlobalCatalog { attribute } if attribute == "employeeID"),
        "{err:?}"
    );
    // The object found by GUID in the GC, read whole in its domain.
    let by_guid = forest
        .read_by_guid(&alice.object_guid, &["employeeID"])
        .await
        .expect("read by GUID")
        .expect("found");
    assert_eq!(by_guid.dn, CHILD_USER);
    assert_eq!(
        by_guid
            .attributes
            .get("employeeID")
            .first()
            .and_then(|v| v.as_text()),
        Some("E-1"),
        "read on the child's DC, not from the GC's partial replica"
    );

    // proxyAddresses is not in this forest's partial attribute set: the forest-wide lookup
    // searches each domain instead of silently finding nothing in the GC.
    let holders = forest
        .find_any_forest_wide(
            &[(
                "proxyAddresses",
                AttrValue::Text("smtp:alice@corp.example".into()),
            )],
            &["proxyAddresses"],
        )
        .await
        .expect("forest-wide lookup");
    assert_eq!(
        holders.iter().map(|o| o.dn.as_str()).collect::<Vec<_>>(),
        [CHILD_USER]
    );

    // What check and status print: the forest, the DC serving each domain, the GC.
    let status = forest.status().await;
    assert_eq!(status.forest.len(), 2);
    assert!(
        status.forest[0].contains("[forest root]"),
        "{:?}",
        status.forest
    );
    let served: Vec<(&str, &str)> = status
        .domains
        .iter()
        .map(|d| (d.domain.as_str(), d.dc.as_str()))
        .collect();
    assert_eq!(
        served,
        [
            ("corp.example", "dc1.corp.example"),
            ("child.corp.example", "dc1.child.corp.example")
        ]
    );
    assert!(
        status
            .global_catalog
            .is_some_and(|g| g.global_catalog && g.dc == "dc1.corp.example")
    );
}

#[tokio::test]
async fn when_the_gc_holds_proxy_addresses_the_forest_wide_lookup_is_one_gc_search() {
    let winad = WinAd::start(spec(&["proxyAddresses"]))
        .await
        .expect("winad");
    let tmp = tempfile::tempdir().expect("tempdir");
    let forest = ForestDirectory::open(&config(&winad, &tmp), Secret::new(PASSWORD))
        .await
        .expect("open the forest");
    let connections = winad.connections();
    let holders = forest
        .find_any_forest_wide(
            &[
                (
                    "proxyAddresses",
                    AttrValue::Text("smtp:alice@corp.example".into()),
                ),
                (
                    "proxyAddresses",
                    AttrValue::Text("smtp:bob@corp.example".into()),
                ),
            ],
            &["proxyAddresses"],
        )
        .await
        .expect("GC lookup");
    let mut dns: Vec<&str> = holders.iter().map(|o| o.dn.as_str()).collect();
    dns.sort();
    assert_eq!(dns, [CHILD_USER, ROOT_USER]);
    assert_eq!(
        winad.connections() - connections,
        1,
        "one new connection (the GC); the child domain was never contacted"
    );
}
