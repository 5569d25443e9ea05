use std::collections::BTreeSet;

use exo_writeback_ad::{AdConnection, SearchScope};
use exo_writeback_core::directory::AttrValue;
use exo_writeback_core::secret::Secret;
use exo_writeback_testlab::{LabDc, LabOptions, MAILBOXES_OU};

use crate::{connect, lab_config, new_contact, text, unique};

/// A connection to the shared lab DC with pages of `page_size`, and the schema naming context
/// (its ~1,500 attributeSchema objects: many pages).
async fn paged_schema_reader(page_size: u32) -> (AdConnection, String) {
    let dc = LabDc::shared();
    let mut config = lab_config(dc);
    config.page_size = page_size;
    let conn = AdConnection::connect(&config, Secret::new(dc.password()))
        .await
        .unwrap();
    let schema_nc = conn.root_dse().schema_naming_context.clone().unwrap();
    (conn, schema_nc)
}

/// Samba does not cap unpaged searches, so the only proof of paging is what the client sent:
/// with page size 100, the ~1,500 attributeSchema objects must arrive in ceil(n/100) pages.
#[tokio::test]
async fn searches_page_over_more_than_1000_entries() {
    let (conn, schema_nc) = paged_schema_reader(100).await;
    conn.schema().await.unwrap(); // itself a paged search; count only the next one
    let before = conn.stats();

    let mut page_sizes = Vec::new();
    let mut dns = BTreeSet::new();
    conn.search_pages(
        &schema_nc,
        SearchScope::OneLevel,
        "(objectClass=attributeSchema)",
        &["lDAPDisplayName"],
        |page| {
            page_sizes.push(page.len());
            dns.extend(page.into_iter().map(|o| o.dn));
            Ok(())
        },
    )
    .await
    .unwrap();
    let after = conn.stats();

    let total: usize = page_sizes.iter().sum();
    assert!(total > 1000, "only {total} entries");
    assert_eq!(dns.len(), total, "a page repeated entries");
    let expected_pages = total.div_ceil(100) as u64;
    assert_eq!(after.pages - before.pages, expected_pages);
    assert_eq!(
        after.search_requests - before.search_requests,
        expected_pages
    );
    assert!(page_sizes.iter().all(|n| *n <= 100), "{page_sizes:?}");

    // The collecting search returns the same entries.
    let all = conn
        .search(
            &schema_nc,
            SearchScope::OneLevel,
            "(objectClass=attributeSchema)",
            &["lDAPDisplayName"],
        )
        .await
        .unwrap();
    assert_eq!(all.len(), total);
}

#[tokio::test]
async fn large_multi_valued_attributes_come_back_whole_through_ranges() {
    let dc = LabDc::shared();
    let mut conn = connect(dc).await;
    let name = unique("ranged");
    let values: Vec<AttrValue> = (0..2000)
        .map(|i| text(&format!("smtp:{name}-{i:04}@example.test")))
        .collect();
    let dn = new_contact(&conn, &name, &[("proxyAddresses", values.clone())]).await;
    let want: BTreeSet<AttrValue> = values.into_iter().collect();

    // Like Windows AD's MaxValRange, but asked for by the client (Samba returns all values
    // unless a range is requested): 2,000 values in ranges of 500 → 3 follow-up requests.
    conn.set_value_range(Some(500));
    let before = conn.stats().range_requests;
    let obj = conn
        .read_by_dn(&dn, &["proxyAddresses", "cn"])
        .await
        .unwrap()
        .unwrap();
    let got: BTreeSet<AttrValue> = obj
        .attributes
        .get("proxyAddresses")
        .iter()
        .cloned()
        .collect();
    assert_eq!(obj.attributes.get("proxyAddresses").len(), 2000);
    assert_eq!(got, want);
    assert_eq!(conn.stats().range_requests - before, 3);
    assert_eq!(obj.attributes.get("cn"), &[text(&name)]);

    // With the server's own default, all values arrive too. Samba 4.17 advertises
    // MaxValRange=1500 but sends all 2,000 values at once (no follow-up range request);
    // Windows AD would send `proxyAddresses;range=0-1499` and the same code follows it.
    conn.set_value_range(None);
    let before = conn.stats().range_requests;
    let obj = conn
        .read_by_dn(&dn, &["proxyAddresses"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(obj.attributes.get("proxyAddresses").len(), 2000);
    assert_eq!(conn.stats().range_requests, before);
    conn.delete(&dn).await.unwrap();
}

/// The same proof over ordinary directory objects: a DC seeded (offline, by lab/up) with
/// 1,500 mailbox users, page size 100 → 15 pages (16 requests if the server only notices the
/// end on an extra, empty page).
#[tokio::test]
async fn pages_over_1500_users() {
    let dc =
        LabDc::start(LabOptions::default().with_users(1500)).expect("start a DC with 1,500 users");
    let mut config = lab_config(&dc);
    config.page_size = 100;
    let conn = AdConnection::connect(&config, Secret::new(dc.password()))
        .await
        .unwrap();
    conn.schema().await.unwrap();
    let before = conn.stats();
    let mut largest_page = 0;
    let mut found = Vec::new();
    conn.search_pages(
        MAILBOXES_OU,
        SearchScope::Subtree,
        "(objectClass=user)",
        &["userPrincipalName"],
        |page| {
            largest_page = largest_page.max(page.len());
            found.extend(page);
            Ok(())
        },
    )
    .await
    .unwrap();
    let after = conn.stats();
    assert_eq!(found.len(), 1500);
    let upns: BTreeSet<String> = found
        .iter()
        .filter_map(|o| {
            o.attributes
                .get("userPrincipalName")
                .first()?
                .as_text()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(upns.len(), 1500);
    assert!(
        upns.contains("mbx01500@lab.example.test"),
        "{:?}",
        upns.last()
    );
    assert_eq!(largest_page, 100);
    let requests = after.search_requests - before.search_requests;
    assert!((15..=16).contains(&requests), "{requests} requests");
    assert_eq!(after.pages - before.pages, requests);
}

/// The next page's request goes out before a page is handed over, so that the DC produces it
/// while the caller decodes and indexes this one; pages still arrive one at a time, in order,
/// each entry once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_pages_request_goes_out_before_a_page_is_handed_over() {
    let (conn, schema_nc) = paged_schema_reader(100).await;
    conn.schema().await.unwrap();
    let before = conn.stats().search_requests;
    // For each page handed over: the requests sent by then, and the page's entries.
    let mut seen = Vec::new();
    let mut dns = BTreeSet::new();
    conn.search_pages(
        &schema_nc,
        SearchScope::OneLevel,
        "(objectClass=attributeSchema)",
        &["lDAPDisplayName"],
        |page| {
            seen.push(conn.stats().search_requests - before);
            dns.extend(page.into_iter().map(|o| o.dn));
            Ok(())
        },
    )
    .await
    .unwrap();
    let pages = seen.len() as u64;
    assert!(pages > 10, "{pages} pages");
    assert!(dns.len() > 1000, "each entry once: {}", dns.len());
    let want: Vec<u64> = (1..=pages).map(|i| (i + 1).min(pages)).collect();
    assert_eq!(
        seen, want,
        "when page i was handed over, the request for page i + 1 had gone out"
    );
    assert_eq!(conn.stats().search_requests - before, pages);
}
