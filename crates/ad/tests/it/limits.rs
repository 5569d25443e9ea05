//! Windows' server limits on long scans (KB 315071), answered by winad as Windows answers, and
//! connections a firewall drops (testlab's TcpProxy): each ends in a complete result or an
//! error that names the limit — never "AD unreachable" for a DC that answers.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use exo_writeback_ad::domain::Purpose;
use exo_writeback_ad::{AdConfig, AdConnection, AdError, SearchScope};
use exo_writeback_core::secret::Secret;
use exo_writeback_testlab::TcpProxy;
use exo_writeback_winad::{Entry, ForestSpec, WinAd, text_attr};

use crate::forest_routing::{PASSWORD, config};

const OU: &str = "CN=Users,DC=corp,DC=example";

/// The forest with `n` users in the root domain's CN=Users.
fn many_users(n: usize) -> ForestSpec {
    let mut spec = ForestSpec::root_and_child(PASSWORD);
    for i in 0..n {
        spec.objects.push(Entry {
            dn: format!("CN=user{i:05},{OU}"),
            attrs: vec![
                text_attr("objectClass", &["top", "person", "user"]),
                text_attr("mail", &[&format!("user{i:05}@corp.example")]),
            ],
        });
    }
    spec
}

async fn connect(
    winad: &WinAd,
    tmp: &tempfile::TempDir,
    tune: impl FnOnce(&mut AdConfig),
) -> AdConnection {
    let mut config = config(winad, tmp);
    tune(&mut config);
    AdConnection::connect(&config, Secret::new(PASSWORD))
        .await
        .expect("bind to winad")
}

/// Every user of the OU through `search_pages`, checking that none comes twice.
async fn scan(conn: &AdConnection) -> Result<(usize, usize), AdError> {
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    conn.search_pages(
        OU,
        SearchScope::OneLevel,
        "(objectClass=user)",
        &["mail"],
        |page| {
            for o in page {
                if !seen.insert(o.dn) {
                    duplicates += 1;
                }
            }
            Ok(())
        },
    )
    .await?;
    Ok((seen.len(), duplicates))
}

#[tokio::test]
async fn a_page_ended_by_max_query_duration_resumes_from_its_cookie() {
    let winad = WinAd::start(many_users(1500)).await.expect("winad");
    // Each entry costs 1 s of the DC's 120 s MaxQueryDuration: pages end after 120 entries.
    winad
        .faults()
        .cost_per_entry_secs
        .store(1, Ordering::Relaxed);
    let tmp = tempfile::tempdir().expect("tempdir");
    let conn = connect(&winad, &tmp, |c| c.page_size = 1000).await;
    let (users, duplicates) = scan(&conn).await.expect("the scan completes");
    assert_eq!((users, duplicates), (1501, 0), "every user (and svc) once");
    assert!(conn.stats().time_limited_pages >= 12, "{:?}", conn.stats());
}

#[tokio::test]
async fn a_discarded_paging_cookie_starts_the_search_again_without_duplicates() {
    let winad = WinAd::start(many_users(1000)).await.expect("winad");
    let tmp = tempfile::tempdir().expect("tempdir");
    let conn = connect(&winad, &tmp, |c| c.page_size = 100).await;
    let mut pages = 0;
    let mut seen = HashSet::new();
    conn.search_pages(
        OU,
        SearchScope::OneLevel,
        "(objectClass=user)",
        &["mail"],
        |page| {
            pages += 1;
            if pages == 3 {
                // Other clients filled the DC's cookie pool: this search's state is discarded.
                winad.evict_paging_cookies();
            }
            for o in page {
                assert!(seen.insert(o.dn.clone()), "{} delivered twice", o.dn);
            }
            Ok(())
        },
    )
    .await
    .expect("the search starts again and completes");
    assert_eq!(seen.len(), 1001);
    assert_eq!(conn.stats().search_restarts, 1);
}

#[tokio::test]
async fn a_notice_of_disconnection_mid_scan_reconnects_and_resumes() {
    let winad = WinAd::start(many_users(1000)).await.expect("winad");
    // After its 2nd page, the DC sends the unsolicited Notice of Disconnection and closes.
    winad
        .faults()
        .disconnect_after_pages
        .store(2, Ordering::Relaxed);
    let tmp = tempfile::tempdir().expect("tempdir");
    let conn = connect(&winad, &tmp, |c| c.page_size = 100).await;
    let (users, duplicates) = scan(&conn).await.expect("the scan completes");
    assert_eq!((users, duplicates), (1001, 0));
    assert_eq!(winad.notices_sent(), 1);
    let stats = conn.stats();
    assert!(stats.connects >= 2, "reconnected: {stats:?}");
}

#[tokio::test]
async fn a_slow_query_is_reported_as_slow_not_as_an_unreachable_dc() {
    let winad = WinAd::start(many_users(10)).await.expect("winad");
    let tmp = tempfile::tempdir().expect("tempdir");
    let conn = connect(&winad, &tmp, |c| c.timeout_secs = 1).await;
    conn.schema()
        .await
        .expect("schema (before the DC gets slow)");
    winad
        .faults()
        .search_delay_ms
        .store(1500, Ordering::Relaxed);
    let err = conn
        .search(OU, SearchScope::OneLevel, "(objectClass=user)", &["mail"])
        .await
        .expect_err("no answer within 1 s");
    assert!(matches!(err, AdError::SlowQuery { .. }), "{err:?}");
    assert!(!err.is_connection_lost() && !err.is_dc_failure(Purpose::Write));
    let text = err.to_string();
    assert!(
        text.contains("reachable") && text.contains("ad.timeout_secs"),
        "{text}"
    );
}

/// winad behind a TcpProxy (a firewall), a first search done through it.
async fn behind_a_firewall(
    idle_reconnect_secs: u64,
    timeout_secs: u64,
) -> (WinAd, tempfile::TempDir, TcpProxy, AdConnection) {
    let winad = WinAd::start(many_users(10)).await.expect("winad");
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = winad.dc("dc1.corp.example").ldaps;
    let proxy = TcpProxy::start(root).expect("proxy");
    let conn = connect(&winad, &tmp, |c| {
        c.url = format!("ldaps://{}", proxy.addr);
        c.idle_reconnect_secs = idle_reconnect_secs;
        c.timeout_secs = timeout_secs;
    })
    .await;
    conn.search(OU, SearchScope::OneLevel, "(objectClass=user)", &["mail"])
        .await
        .expect("first search");
    (winad, tmp, proxy, conn)
}

#[tokio::test]
async fn a_connection_a_firewall_dropped_is_replaced_instead_of_waited_on() {
    let (_winad, _tmp, proxy, conn) = behind_a_firewall(1, 30).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // The firewall's idle time-out: the flow is gone, nothing is closed.
    proxy.freeze_open_connections();
    let found = tokio::time::timeout(
        Duration::from_secs(10),
        conn.search(OU, SearchScope::OneLevel, "(objectClass=user)", &["mail"]),
    )
    .await
    .expect("not sent into the dead connection (it would wait 30 s)")
    .expect("second search on a new connection");
    assert_eq!(found.len(), 11);
    assert_eq!(conn.stats().idle_reconnects, 1);
}

#[tokio::test]
async fn a_request_sent_into_a_silently_dropped_connection_is_sent_again_on_a_new_one() {
    let (_winad, _tmp, proxy, conn) = behind_a_firewall(0, 2).await;
    proxy.freeze_open_connections();
    let found = conn
        .search(OU, SearchScope::OneLevel, "(objectClass=user)", &["mail"])
        .await
        .expect("answered on a new connection, not reported as a timeout");
    assert_eq!(found.len(), 11);
    assert_eq!(conn.stats().slow_retries, 1);
}

#[tokio::test]
async fn values_beyond_max_val_range_are_fetched_in_ranges() {
    let mut spec = ForestSpec::root_and_child(PASSWORD);
    let members: Vec<String> = (0..3200).map(|i| format!("CN=m{i:04},{OU}")).collect();
    let refs: Vec<&str> = members.iter().map(String::as_str).collect();
    spec.objects.push(Entry {
        dn: format!("CN=big,{OU}"),
        attrs: vec![
            text_attr("objectClass", &["top", "group"]),
            text_attr("member", &refs),
        ],
    });
    let winad = WinAd::start(spec).await.expect("winad");
    let tmp = tempfile::tempdir().expect("tempdir");
    let conn = connect(&winad, &tmp, |_| {}).await;
    let group = conn
        .read_by_dn(&format!("CN=big,{OU}"), &["member"])
        .await
        .expect("read")
        .expect("the group");
    assert_eq!(group.attributes.get("member").len(), 3200);
    assert_eq!(conn.stats().range_requests, 2, "1500 + 1500 + 200");
}
