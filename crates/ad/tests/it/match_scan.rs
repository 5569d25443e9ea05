//! The reads behind the engine's match index and duplicate-address guard: one paged presence
//! scan of the search scope, and one OR search for several equalities.

use exo_writeback_core::directory::{AttrValue, Attributes};
use exo_writeback_core::ldap_text::dn_eq;
use exo_writeback_testlab::LabDc;

use crate::{connect, text, unique};

#[tokio::test]
async fn scan_present_pages_through_the_search_bases_only() {
    let dc = LabDc::shared();
    let admin = connect(dc).await;
    let ou = format!("OU={},{}", unique("scan-ou"), dc.base_dn);
    let mut attrs = Attributes::new();
    attrs.insert("objectClass", vec![text("organizationalUnit")]);
    admin.add(&ou, &attrs).await.unwrap();
    let mut dns = Vec::new();
    for (cn, description) in [("a", Some("key-a")), ("b", Some("key-b")), ("c", None)] {
        let dn = format!("CN={cn},{ou}");
        let mut contact = Attributes::new();
        contact.insert("objectClass", vec![text("contact")]);
        if let Some(d) = description {
            contact.insert("description", vec![text(d)]);
        }
        admin.add(&dn, &contact).await.unwrap();
        dns.push(dn);
    }

    let mut config = crate::lab_config(dc);
    config.search_bases = Some(vec![ou.clone()]);
    config.page_size = 2; // several pages for 4 objects
    let scoped = exo_writeback_ad::AdConnection::connect(
        &config,
        exo_writeback_core::secret::Secret::new(dc.password()),
    )
    .await
    .unwrap();
    let before = scoped.stats().pages;
    let mut seen = Vec::new();
    scoped
        .scan_present(&["description"], |page| {
            seen.extend(page);
            Ok(())
        })
        .await
        .unwrap();
    seen.sort_by_key(|o| o.dn.to_lowercase());
    assert_eq!(
        seen.len(),
        2,
        "{:?}",
        seen.iter().map(|o| &o.dn).collect::<Vec<_>>()
    );
    assert!(dn_eq(&seen[0].dn, &dns[0]) && dn_eq(&seen[1].dn, &dns[1]));
    assert_eq!(seen[0].attributes.get("description"), &[text("key-a")]);
    assert!(!seen[0].object_guid.is_nil());
    // Only the asked attribute (and the objectGUID) is read.
    assert!(seen[0].attributes.get("cn").is_empty());

    // objectGUID is present on every object: the OU and its three contacts, over 2 pages.
    let mut every = Vec::new();
    scoped
        .scan_present(&["description", "objectGUID"], |page| {
            every.extend(page);
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(every.len(), 4);
    assert!(
        scoped.stats().pages - before >= 3,
        "paged: {:?}",
        scoped.stats()
    );
    let by_guid = admin
        .read_by_guid(&every[0].object_guid, &["cn"])
        .await
        .unwrap()
        .expect("the scanned GUID reads back");
    assert!(dn_eq(&by_guid.dn, &every[0].dn));
    // Attribute names cannot carry filter syntax.
    assert!(scoped.scan_present(&["cn=*)(x"], |_| Ok(())).await.is_err());

    for dn in dns.iter().rev() {
        admin.delete(dn).await.unwrap();
    }
    admin.delete(&ou).await.unwrap();
}

#[tokio::test]
async fn find_any_is_one_or_search_with_every_value_escaped() {
    let dc = LabDc::shared();
    let conn = connect(dc).await;
    let tag = unique("any");
    let a = crate::new_contact(
        &conn,
        &unique("any-a"),
        &[("mail", vec![text(&format!("{tag}-a@contoso.com"))])],
    )
    .await;
    let b = crate::new_contact(
        &conn,
        &unique("any-b"),
        &[(
            "proxyAddresses",
            vec![text(&format!("smtp:{tag}-b*)(cn=\\@contoso.com"))],
        )],
    )
    .await;
    conn.schema().await.unwrap();
    let before = conn.stats().search_requests;
    let found = conn
        .find_any(
            &[
                ("mail", text(&format!("{tag}-A@CONTOSO.COM"))),
                (
                    "proxyAddresses",
                    text(&format!("SMTP:{tag}-b*)(cn=\\@contoso.com")),
                ),
                ("mail", text("*")),
            ],
            &["mail", "proxyAddresses"],
        )
        .await
        .unwrap();
    assert_eq!(conn.stats().search_requests - before, 1, "one search");
    let mut got: Vec<&str> = found.iter().map(|o| o.dn.as_str()).collect();
    got.sort_by_key(|d| d.to_lowercase());
    let mut want = [a.as_str(), b.as_str()];
    want.sort_by_key(|d| d.to_lowercase());
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(dn_eq(got[0], want[0]) && dn_eq(got[1], want[1]), "{got:?}");
    // A literal '*' is not a presence filter; nothing asked finds nothing.
    assert!(
        conn.find_any(&[("mail", AttrValue::Text("*".into()))], &["mail"])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(conn.find_any(&[], &["mail"]).await.unwrap().is_empty());
    assert!(
        conn.find_any(&[("mail)(x", text("a"))], &["mail"])
            .await
            .is_err()
    );
    conn.delete(&a).await.unwrap();
    conn.delete(&b).await.unwrap();
}
