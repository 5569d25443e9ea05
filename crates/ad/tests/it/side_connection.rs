//! The reads of a cycle's start — the schema and the read-rights probe — go over a second
//! connection to the same DC, which a prefork Samba (and Windows, one thread per request)
//! serves beside the scan instead of between its pages; and the schema is read once when
//! several callers ask for it at once.

use exo_writeback_ad::{AdConnection, SearchScope};
use exo_writeback_core::directory::AttrValue;
use exo_writeback_core::secret::Secret;
use exo_writeback_testlab::LabDc;

const BASE: &str = "DC=lab,DC=example,DC=test";

#[tokio::test]
async fn schema_reads_asked_at_once_are_read_once_and_not_on_the_main_connection() {
    let dc = LabDc::shared();
    // What one schema read costs in requests.
    let alone = crate::connect(dc).await;
    let main_before = alone.stats().search_requests;
    alone.refresh_schema().await.expect("the schema");
    assert_eq!(alone.stats().search_requests, main_before);
    let one_read = alone.side().stats().search_requests;
    assert!(one_read >= 1);

    // The start of a fresh process's cycle: it refreshes the schema while the scan's decoding
    // and the rights probe's lookups ask for it.
    let conn = crate::connect(dc).await;
    let before = conn.stats().search_requests;
    let (b, a, c) = futures::join!(conn.refresh_schema(), conn.schema(), conn.schema());
    let (a, b, c) = (a.expect("schema"), b.expect("refresh"), c.expect("schema"));
    assert!(a.len() > 1000 && b.len() == a.len() && c.len() == a.len());
    assert_eq!(
        conn.stats().search_requests,
        before,
        "the schema is read on the side connection, not between the scan's pages"
    );
    assert_eq!(
        conn.side().stats().search_requests,
        one_read,
        "three callers at once, one read of the schema"
    );

    // Asked for again later (a schema extension, a write refused for the schema): checked
    // again on the side connection — the schema NC head's schemaInfo, one search; the
    // attributeSchema objects are read again only when it changed (`schema_info.rs`).
    conn.refresh_schema().await.expect("refresh");
    assert_eq!(conn.side().stats().search_requests, one_read + 1);
}

#[tokio::test]
async fn a_connection_used_once_reads_the_schema_itself() {
    // The global catalog's, another domain's: no side connection opened for the first read.
    let dc = LabDc::shared();
    let conn = crate::connect(dc).await;
    conn.schema().await.expect("the schema");
    assert_eq!(conn.stats().connects, 1);
    assert_eq!(conn.side().stats().connects, 0);
}

#[tokio::test]
async fn the_read_rights_probe_runs_on_the_side_connection() {
    let dc = LabDc::shared();
    let conn = crate::connect(dc).await;
    let before = conn.stats().search_requests;
    let found = conn
        .readable_attributes(BASE, "user", &["mail", "proxyAddresses"], 5)
        .await
        .expect("the probe");
    assert!(!found.samples.is_empty());
    assert!(found.unreadable().is_empty());
    assert_eq!(conn.stats().search_requests, before);
    assert!(conn.side().stats().search_requests >= 3);
}

#[tokio::test]
async fn a_lost_side_connection_is_opened_again() {
    let dc = LabDc::shared();
    let conn = crate::connect(dc).await;
    conn.refresh_schema().await.expect("the schema");
    conn.side().simulate_connection_loss().await;
    conn.refresh_schema()
        .await
        .expect("read again on a new side connection");
    assert_eq!(conn.side().stats().connects, 2);
    assert_eq!(conn.stats().connects, 1);
}

#[tokio::test]
async fn the_scans_first_page_request_is_sent_while_the_schema_is_read() {
    // A fresh process's full cycle: the refresh reads the schema on the side connection while
    // the scan starts. The scan's request does not need the schema (only its decoding does),
    // so it goes out at once; its pages wait for the schema, then are decoded by it.
    let dc = LabDc::shared();
    let conn = crate::connect(dc).await;
    assert!(conn.cached_schema().is_none(), "a fresh connection");
    let before = conn.stats().search_requests;
    let refresh = async {
        let schema = conn.refresh_schema().await;
        // What the main connection had sent when the schema read ended.
        (schema, conn.stats().search_requests)
    };
    let mut objects = Vec::new();
    let scan = conn.search_pages(
        BASE,
        SearchScope::Subtree,
        "(&(objectClass=user)(sAMAccountName=Administrator))",
        &["mail", "sAMAccountName", "objectSid"],
        |page| {
            objects.extend(page);
            Ok(())
        },
    );
    let ((schema, sent_then), scanned) = futures::join!(refresh, scan);
    schema.expect("the schema");
    scanned.expect("the scan");
    assert!(
        sent_then > before,
        "the scan's first page request went out before the schema read ended"
    );
    // Decoded by the schema all the same: text as text, a SID as bytes.
    let [admin] = objects.as_slice() else {
        panic!("one Administrator, found {}", objects.len());
    };
    assert_eq!(
        admin.attributes.get("sAMAccountName"),
        &[AttrValue::Text("Administrator".into())]
    );
    assert!(matches!(
        admin.attributes.get("objectSid"),
        [AttrValue::Bytes(_)]
    ));
}

#[tokio::test]
async fn pages_that_arrive_before_the_schema_are_decoded_by_it_in_order() {
    // Many pages: whichever arrive before the schema are kept, decoded when it comes, and
    // handed over in the scan's order, each entry once.
    let dc = LabDc::shared();
    let mut config = crate::lab_config(dc);
    config.page_size = 2;
    let conn = AdConnection::connect(&config, Secret::new(dc.password()))
        .await
        .expect("connect");
    let mut pages = Vec::new();
    let (schema, scanned) = futures::join!(
        conn.refresh_schema(),
        conn.search_pages(
            BASE,
            SearchScope::Subtree,
            "(objectClass=user)",
            &["sAMAccountName"],
            |page| {
                pages.push(page);
                Ok(())
            },
        )
    );
    schema.expect("the schema");
    scanned.expect("the scan");
    let names: Vec<_> = pages
        .iter()
        .flatten()
        .map(|o| match o.attributes.get("sAMAccountName") {
            [AttrValue::Text(t)] => t.to_ascii_lowercase(),
            other => panic!("not decoded as text: {other:?}"),
        })
        .collect();
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "each entry once");
    assert!(
        names.len() >= 3 && pages.len() >= 2,
        "{} pages",
        pages.len()
    );
    assert!(
        pages.iter().all(|p| p.len() <= 2),
        "the pages as the DC sent them"
    );
    // The same entries, in the same order, as a scan with the schema already at hand.
    let mut again = Vec::new();
    conn.search_pages(
        BASE,
        SearchScope::Subtree,
        "(objectClass=user)",
        &["sAMAccountName"],
        |page| {
            again.extend(page.into_iter().map(|o| o.dn));
            Ok(())
        },
    )
    .await
    .expect("the scan again");
    let dns: Vec<_> = pages.iter().flatten().map(|o| o.dn.clone()).collect();
    assert_eq!(dns, again);
}
