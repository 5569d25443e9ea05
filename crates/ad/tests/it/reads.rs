use std::process::Command;

use exo_writeback_ad::SearchScope;
use exo_writeback_core::directory::AttrValue;
use exo_writeback_core::schema::Syntax;
use exo_writeback_testlab::LabDc;
use uuid::Uuid;

use crate::{connect, new_contact, text, unique};

#[tokio::test]
async fn connects_and_reads_root_dse_identity_and_schema() {
    let dc = LabDc::shared();
    let conn = connect(dc).await;
    // Samba does not implement WhoAmI: the configured bind identity is reported.
    assert_eq!(conn.bind_identity(), dc.bind_dn);
    assert_eq!(conn.base_dn(), dc.base_dn);
    let root = conn.root_dse();
    assert_eq!(
        root.default_naming_context.as_deref(),
        Some(dc.base_dn.as_str())
    );
    assert!(root.naming_contexts.iter().any(|n| n == &dc.base_dn));
    assert!(
        root.schema_naming_context
            .as_deref()
            .is_some_and(|s| s.starts_with("CN=Schema"))
    );
    assert_eq!(root.dns_host_name.as_deref(), Some("dc1.lab.example.test"));
    assert!(
        root.supported_controls
            .iter()
            .any(|c| c == "1.2.840.113556.1.4.319")
    );

    assert_eq!(conn.search_bases(), vec![dc.base_dn.clone()]);
    assert!(conn.in_search_bases(&format!("cn=X,CN=Users,{}", dc.base_dn.to_lowercase())));
    assert!(!conn.in_search_bases("CN=X,DC=elsewhere,DC=test"));

    let schema = conn.schema().await.unwrap();
    assert!(schema.len() > 1000, "{} attributes", schema.len());
    let guid = schema.get("objectguid").unwrap();
    assert_eq!(guid.syntax, Syntax::OctetString);
    assert!(guid.single_valued);
    let ext1 = schema.get("extensionAttribute1").unwrap();
    assert_eq!(ext1.syntax, Syntax::Unicode);
    assert_eq!(ext1.range_upper, Some(1024));
    assert!(!schema.get("proxyAddresses").unwrap().single_valued);
    assert_eq!(schema.get("objectSid").unwrap().syntax, Syntax::Sid);
    assert_eq!(
        schema.get("msExchRecipientTypeDetails").unwrap().syntax,
        Syntax::LargeInteger
    );
}

#[tokio::test]
async fn object_guid_byte_order_matches_samba_string_form() {
    let dc = LabDc::shared();
    let conn = connect(dc).await;
    let dn = format!("CN=Administrator,CN=Users,{}", dc.base_dn);
    let obj = conn
        .read_by_dn(&dn, &["cn"])
        .await
        .unwrap()
        .expect("Administrator exists");

    // ldbsearch prints objectGUID in its string form, read from the DC's own database.
    let out = Command::new("ldbsearch")
        .arg("-H")
        .arg(dc.dir.join("private/sam.ldb"))
        .args(["-b", &dn, "-s", "base", "objectGUID"])
        .output()
        .expect("run ldbsearch");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let shown = stdout
        .lines()
        .find_map(|l| l.strip_prefix("objectGUID: "))
        .unwrap_or_else(|| panic!("no objectGUID in ldbsearch output: {stdout}"));
    assert_eq!(obj.object_guid, Uuid::parse_str(shown.trim()).unwrap());

    // The raw attribute is the little-endian layout of that GUID.
    assert_eq!(
        obj.attributes.get("objectGUID"),
        &[AttrValue::Bytes(obj.object_guid.to_bytes_le().to_vec())]
    );
    // And the object is found again by GUID, both ways.
    let by_guid = conn
        .read_by_guid(&obj.object_guid, &["cn"])
        .await
        .unwrap()
        .unwrap();
    assert!(exo_writeback_core::ldap_text::dn_eq(&by_guid.dn, &dn));
    let by_filter = conn
        .find_by_attribute(
            "objectGUID",
            &AttrValue::Bytes(obj.object_guid.to_bytes_le().to_vec()),
            &["cn"],
        )
        .await
        .unwrap();
    assert_eq!(by_filter.len(), 1);
    assert_eq!(by_filter[0].object_guid, obj.object_guid);
    assert!(
        conn.read_by_guid(&Uuid::new_v4(), &["cn"])
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn filter_values_are_escaped() {
    let dc = LabDc::shared();
    let conn = connect(dc).await;
    let tricky = format!("{}*)(cn=\\", unique("esc"));
    let dn = new_contact(
        &conn,
        &unique("esc-contact"),
        &[("displayName", vec![text(&tricky)])],
    )
    .await;

    let found = conn
        .find_by_attribute("displayName", &text(&tricky), &["displayName"])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert!(exo_writeback_core::ldap_text::dn_eq(&found[0].dn, &dn));
    assert_eq!(found[0].attributes.get("displayName"), &[text(&tricky)]);

    // A value "*" is a literal asterisk, not a presence filter.
    let star = conn
        .find_by_attribute("displayName", &text("*"), &["cn"])
        .await
        .unwrap();
    assert!(
        star.is_empty(),
        "{} objects matched a literal '*'",
        star.len()
    );
    // An attribute name cannot smuggle filter syntax either.
    assert!(
        conn.find_by_attribute("cn)(x", &text("a"), &["cn"])
            .await
            .is_err()
    );
    conn.delete(&dn).await.unwrap();
}

#[tokio::test]
async fn values_are_decoded_by_syntax() {
    let dc = LabDc::shared();
    let conn = connect(dc).await;
    let dn = format!("CN=Administrator,CN=Users,{}", dc.base_dn);
    let found = conn
        .search(
            &dn,
            SearchScope::Base,
            "(objectClass=*)",
            &["objectSid", "sAMAccountName", "whenCreated"],
        )
        .await
        .unwrap();
    let admin = &found[0];
    assert!(matches!(admin.attributes.get("objectSid"), [AttrValue::Bytes(b)] if b.len() == 28));
    assert_eq!(
        admin.attributes.get("sAMAccountName"),
        &[text("Administrator")]
    );
    assert!(matches!(
        admin.attributes.get("whenCreated"),
        [AttrValue::Text(_)]
    ));
}

#[tokio::test]
async fn reconnects_after_a_dropped_connection() {
    let dc = LabDc::shared();
    let conn = connect(dc).await;
    let dn = new_contact(&conn, &unique("reconnect"), &[]).await;
    assert_eq!(conn.stats().connects, 1);

    conn.simulate_connection_loss().await;
    let obj = conn.read_by_dn(&dn, &["cn"]).await.unwrap();
    assert!(obj.is_some());
    assert_eq!(conn.stats().connects, 2);

    conn.simulate_connection_loss().await;
    conn.modify(&exo_writeback_core::directory::ObjectModify {
        dn: dn.clone(),
        changes: vec![exo_writeback_core::directory::AttrChange {
            op: exo_writeback_core::directory::ModOp::Replace,
            attribute: "description".into(),
            values: vec![text("after reconnect")],
        }],
    })
    .await
    .unwrap();
    assert_eq!(conn.stats().connects, 3);
    let obj = conn
        .read_by_dn(&dn, &["description"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        obj.attributes.get("description"),
        &[text("after reconnect")]
    );
    conn.delete(&dn).await.unwrap();
}

#[tokio::test]
async fn subtree_search_from_the_domain_root_skips_referrals() {
    let dc = LabDc::shared();
    let conn = connect(dc).await;
    // The domain root holds references to other partitions (e.g. DomainDnsZones/
    // Configuration); they are not chased and do not break the search.
    let found = conn
        .search(
            &dc.base_dn,
            SearchScope::Subtree,
            "(sAMAccountName=Administrator)",
            &["cn"],
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].attributes.get("cn"), &[text("Administrator")]);
}

#[tokio::test]
async fn find_by_attribute_stays_within_the_search_bases() {
    let dc = LabDc::shared();
    let admin = connect(dc).await;
    let marker = unique("scoped");
    let ou = format!("OU={},{}", unique("scope-ou"), dc.base_dn);
    let mut attrs = exo_writeback_core::directory::Attributes::new();
    attrs.insert("objectClass", vec![text("organizationalUnit")]);
    admin.add(&ou, &attrs).await.unwrap();
    let inside = format!("CN=inside,{ou}");
    let mut contact = exo_writeback_core::directory::Attributes::new();
    contact.insert("objectClass", vec![text("contact")]);
    contact.insert("description", vec![text(&marker)]);
    admin.add(&inside, &contact).await.unwrap();
    let outside = new_contact(
        &admin,
        &unique("outside"),
        &[("description", vec![text(&marker)])],
    )
    .await;

    assert_eq!(
        admin
            .find_by_attribute("description", &text(&marker), &["cn"])
            .await
            .unwrap()
            .len(),
        2
    );

    let mut config = crate::lab_config(dc);
    config.search_bases = Some(vec![ou.clone()]);
    let scoped = exo_writeback_ad::AdConnection::connect(
        &config,
        exo_writeback_core::secret::Secret::new(dc.password()),
    )
    .await
    .unwrap();
    let found = scoped
        .find_by_attribute("description", &text(&marker), &["cn"])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert!(exo_writeback_core::ldap_text::dn_eq(&found[0].dn, &inside));
    assert!(scoped.in_search_bases(&inside) && !scoped.in_search_bases(&outside));
    admin.delete(&inside).await.unwrap();
    admin.delete(&ou).await.unwrap();
    admin.delete(&outside).await.unwrap();
}

/// A real drop: the DC is stopped and started again on the same address (lab/down, lab/up).
/// The connection object notices on its next operation and reconnects by itself.
#[tokio::test]
async fn reconnects_after_the_dc_restarts() {
    let dc = LabDc::start(exo_writeback_testlab::LabOptions::default()).expect("start a DC");
    let conn = connect(&dc).await;
    let dn = format!("CN=Administrator,CN=Users,{}", dc.base_dn);
    assert!(conn.read_by_dn(&dn, &["cn"]).await.unwrap().is_some());

    let lab = LabDc::repo_root().join("lab");
    let down = Command::new(lab.join("down"))
        .arg(&dc.dir)
        .output()
        .unwrap();
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let err = conn.read_by_dn(&dn, &["cn"]).await.unwrap_err();
    assert!(
        matches!(err, exo_writeback_ad::AdError::Unreachable { .. }),
        "while the DC is down: {err:?}"
    );
    let up = Command::new(lab.join("up"))
        .args(["--max-runtime", "600", "--watch-pid"])
        .arg(std::process::id().to_string())
        .arg(&dc.dir)
        .arg(&dc.addr)
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );

    let before = conn.stats().connects;
    assert!(conn.read_by_dn(&dn, &["cn"]).await.unwrap().is_some());
    assert_eq!(conn.stats().connects, before + 1);
}
