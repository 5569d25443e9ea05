//! winad's rules as a plain LDAP client (ldap3) sees them: each test checks one Windows
//! behaviour the crate's README cites.

use std::sync::Arc;

use exo_writeback_winad::{
    AccountState, COOKIE_GONE, Entry, ForestSpec, SIGNING_REQUIRED, WinAd, bind_failure_text,
    text_attr,
};
use ldap3::controls::PagedResults;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};

const PASSWORD: &str = "Winad-Pa55";
const USERS: &str = "CN=Users,DC=corp,DC=example";

fn tls(winad: &WinAd) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let ca = rustls::pki_types::CertificateDer::from_pem_slice(winad.ca_pem().as_bytes())
        .expect("the CA's PEM");
    roots.add(ca).expect("the CA");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

async fn connect(winad: &WinAd, addr: std::net::SocketAddr, ldaps: bool) -> Ldap {
    let settings = LdapConnSettings::new().set_config(tls(winad));
    let url = format!("{}://{addr}", if ldaps { "ldaps" } else { "ldap" });
    let (conn, ldap) = LdapConnAsync::with_settings(settings, &url)
        .await
        .expect("connect");
    ldap3::drive!(conn);
    ldap
}

async fn bound(winad: &WinAd, addr: std::net::SocketAddr) -> Ldap {
    let mut ldap = connect(winad, addr, true).await;
    ldap.simple_bind("svc@corp.example", PASSWORD)
        .await
        .expect("bind")
        .success()
        .expect("bound");
    ldap
}

fn users(n: usize) -> ForestSpec {
    let mut spec = ForestSpec::root_and_child(PASSWORD);
    for i in 0..n {
        spec.objects.push(Entry {
            dn: format!("CN=u{i:05},{USERS}"),
            attrs: vec![text_attr("objectClass", &["top", "person", "user"])],
        });
    }
    spec
}

#[tokio::test]
async fn binds_fail_with_windows_diagnostics() {
    let spec = ForestSpec::root_and_child(PASSWORD).with_account(
        "CN=locked,CN=Users,DC=corp,DC=example",
        "locked@corp.example",
        "Locked-1",
        AccountState::Locked,
    );
    let winad = WinAd::start(spec).await.expect("winad");
    let dc = winad.dc("dc1.corp.example").clone();

    let mut plain = connect(&winad, dc.ldap, false).await;
    let r = plain
        .simple_bind("svc@corp.example", PASSWORD)
        .await
        .expect("answer");
    assert_eq!((r.rc, r.text.as_str()), (8, SIGNING_REQUIRED));

    let mut ldap = connect(&winad, dc.ldaps, true).await;
    let r = ldap
        .simple_bind("svc@corp.example", "wrong")
        .await
        .expect("answer");
    assert_eq!(r.rc, 49);
    assert_eq!(
        r.text,
        "80090308: LdapErr: DSID-0C09041C, comment: AcceptSecurityContext error, data 52e, v4563"
    );
    let r = ldap
        .simple_bind("locked@corp.example", "Locked-1")
        .await
        .expect("answer");
    assert_eq!((r.rc, r.text), (49, bind_failure_text("775")));
    let r = ldap
        .simple_bind("svc@corp.example", PASSWORD)
        .await
        .expect("answer");
    assert_eq!(r.rc, 0);
}

#[tokio::test]
async fn unpaged_searches_stop_at_max_page_size_and_values_are_ranged() {
    let mut spec = users(1200);
    let members: Vec<String> = (0..1600).map(|i| format!("CN=m{i},{USERS}")).collect();
    let refs: Vec<&str> = members.iter().map(String::as_str).collect();
    spec.objects.push(Entry {
        dn: format!("CN=big,{USERS}"),
        attrs: vec![
            text_attr("objectClass", &["top", "group"]),
            text_attr("member", &refs),
        ],
    });
    let winad = WinAd::start(spec).await.expect("winad");
    let mut ldap = bound(&winad, winad.dc("dc1.corp.example").ldaps).await;
    let result = ldap
        .search(USERS, Scope::OneLevel, "(objectClass=user)", vec!["cn"])
        .await
        .expect("answer");
    assert_eq!(
        (result.1.rc, result.0.len()),
        (4, 1000),
        "sizeLimitExceeded after MaxPageSize"
    );

    let (entries, _) = ldap
        .search(
            &format!("CN=big,{USERS}"),
            Scope::Base,
            "(objectClass=*)",
            vec!["member"],
        )
        .await
        .expect("answer")
        .success()
        .expect("success");
    let entry = SearchEntry::construct(entries[0].clone());
    assert_eq!(entry.attrs["member;range=0-1499"].len(), 1500);
    let (entries, _) = ldap
        .search(
            &format!("CN=big,{USERS}"),
            Scope::Base,
            "(objectClass=*)",
            vec!["member;range=1500-*"],
        )
        .await
        .expect("answer")
        .success()
        .expect("success");
    let entry = SearchEntry::construct(entries[0].clone());
    assert_eq!(entry.attrs["member;range=1500-*"].len(), 100);
}

#[tokio::test]
async fn other_domains_are_referrals_and_the_gc_holds_the_partial_attribute_set() {
    let mut spec = ForestSpec::root_and_child(PASSWORD);
    spec.objects.push(Entry {
        dn: "CN=Alice,CN=Users,DC=child,DC=corp,DC=example".into(),
        attrs: vec![
            text_attr("objectClass", &["top", "person", "user"]),
            text_attr("mail", &["alice@corp.example"]),
            text_attr("employeeID", &["E-1"]),
        ],
    });
    let winad = WinAd::start(spec).await.expect("winad");
    let root = winad.dc("dc1.corp.example").clone();
    let mut ldap = bound(&winad, root.ldaps).await;
    let r = ldap
        .search(
            "CN=Users,DC=child,DC=corp,DC=example",
            Scope::Subtree,
            "(objectClass=*)",
            vec!["mail"],
        )
        .await
        .expect("answer");
    assert_eq!(r.1.rc, 10);
    assert_eq!(
        r.1.refs,
        ["ldap://child.corp.example/CN=Users,DC=child,DC=corp,DC=example"]
    );
    assert!(r.1.text.starts_with("0000202B: RefErr"), "{}", r.1.text);

    let mut gc = bound(&winad, root.gc_ldaps.expect("GC")).await;
    let (entries, _) = gc
        .search(
            "",
            Scope::Subtree,
            "(mail=alice@corp.example)",
            vec!["mail", "employeeID"],
        )
        .await
        .expect("answer")
        .success()
        .expect("success");
    assert_eq!(entries.len(), 1);
    let alice = SearchEntry::construct(entries[0].clone());
    assert_eq!(alice.dn, "CN=Alice,CN=Users,DC=child,DC=corp,DC=example");
    assert!(alice.attrs.contains_key("mail"));
    assert!(
        !alice.attrs.contains_key("employeeID"),
        "not in the partial attribute set"
    );
    let (entries, _) = gc
        .search("", Scope::Subtree, "(employeeID=E-1)", vec!["mail"])
        .await
        .expect("answer")
        .success()
        .expect("success");
    assert!(
        entries.is_empty(),
        "the GC cannot filter on what it does not hold"
    );
}

/// The paged-results control of a SearchResultDone.
fn paged_cookie(done: &ldap3::LdapResult) -> PagedResults {
    let raw = done
        .ctrls
        .iter()
        .find(|c| c.1.ctype == "1.2.840.113556.1.4.319")
        .expect("paged control");
    ldap3::controls::ControlParser::parse(raw.1.val.as_deref().expect("value"))
}

#[tokio::test]
async fn discarded_cookies_time_limits_and_the_notice_of_disconnection() {
    let winad = WinAd::start(users(300)).await.expect("winad");
    let dc = winad.dc("dc1.corp.example").clone();
    let mut ldap = bound(&winad, dc.ldaps).await;
    let page = |cookie: Vec<u8>| -> Vec<ldap3::controls::RawControl> {
        vec![PagedResults { size: 100, cookie }.into()]
    };
    let r = ldap
        .with_controls(page(Vec::new()))
        .search(USERS, Scope::OneLevel, "(objectClass=user)", vec!["cn"])
        .await
        .expect("answer");
    assert_eq!((r.1.rc, r.0.len()), (0, 100));
    let parsed = paged_cookie(&r.1);
    winad.evict_paging_cookies();
    let r = ldap
        .with_controls(page(parsed.cookie))
        .search(USERS, Scope::OneLevel, "(objectClass=user)", vec!["cn"])
        .await
        .expect("answer");
    assert_eq!((r.1.rc, r.1.text.as_str()), (12, COOKIE_GONE));

    // 1 s per entry against MaxQueryDuration 120 s: the page ends at 120 with a cookie.
    winad
        .faults()
        .cost_per_entry_secs
        .store(1, std::sync::atomic::Ordering::Relaxed);
    let r = ldap
        .with_controls(vec![
            PagedResults {
                size: 1000,
                cookie: Vec::new(),
            }
            .into(),
        ])
        .search(USERS, Scope::OneLevel, "(objectClass=user)", vec!["cn"])
        .await
        .expect("answer");
    assert_eq!((r.1.rc, r.0.len()), (3, 120));
    let parsed = paged_cookie(&r.1);
    assert!(!parsed.cookie.is_empty(), "a cookie to resume from");

    winad.disconnect_all();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(winad.notices_sent(), 1);
    assert!(
        ldap.search("", Scope::Base, "(objectClass=*)", vec!["dnsHostName"])
            .await
            .is_err(),
        "the connection is closed after the notice"
    );
}
