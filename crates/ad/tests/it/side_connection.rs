//! The reads of a cycle's start — the schema and the read-rights probe — go over a second
//! connection to the same DC, which a prefork Samba (and Windows, one thread per request)
//! serves beside the scan instead of between its pages; and the schema is read once when
//! several callers ask for it at once.

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

    // Asked for again later (a schema extension, a write refused for the schema): read again.
    conn.refresh_schema().await.expect("refresh");
    assert_eq!(conn.side().stats().search_requests, 2 * one_read);
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
