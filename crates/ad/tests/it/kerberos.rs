//! Kerberos (SASL GSSAPI with a keytab) against the lab forest's KDC: over LDAPS, StartTLS, and
//! plain `ldap://` signed and sealed by Kerberos itself (with the patched SASL decoder of
//! `vendor/ldap3`, see its PATCH.md).
//!
//! MIT Kerberos reads its krb5.conf from `KRB5_CONFIG`, a process-wide variable that a
//! multi-threaded test binary must not set: each test re-runs itself in a child process with
//! `KRB5_CONFIG` naming the lab's krb5.conf (`in_child`).

use std::process::Command;

use std::collections::BTreeSet;

use exo_writeback_ad::{AdConfig, AdConnection, AdError, AuthMethod, SearchScope, Transport};
use exo_writeback_core::secret::Secret;
use exo_writeback_testlab::{ForestMember, ForestOptions, LabForest, TcpProxy};

const CHILD: &str = "EXO_AD_KERBEROS_CHILD";

/// In the parent: starts the forest and runs `test` again in a child process with the lab's
/// krb5.conf, returning None. In the child: the forest facts, to run the test body with.
fn in_child(test: &str) -> Option<ChildEnv> {
    if let Ok(facts) = std::env::var(CHILD) {
        let mut parts = facts.split('|').map(String::from);
        return Some(ChildEnv {
            addr: parts.next().expect("address"),
            keytab: parts.next().expect("keytab"),
            dir: parts.next().expect("dir"),
        });
    }
    let forest = LabForest::start(ForestOptions::default()).expect("the lab forest starts");
    let facts = format!(
        "{}|{}|{}",
        forest.addr(ForestMember::Dc1),
        forest.keytab().display(),
        forest.dir.display()
    );
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, facts)
        .env("KRB5_CONFIG", forest.krb5_conf())
        .env("KRB5CCNAME", "MEMORY:unused")
        .output()
        .expect("the test binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the child run failed:\n{text}");
    assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
    None
}

struct ChildEnv {
    addr: String,
    keytab: String,
    dir: String,
}

fn kerberos_config(env: &ChildEnv, url: String) -> AdConfig {
    let mut config = AdConfig::new(url, "svc-kerberos@LAB.EXAMPLE.TEST");
    config.auth = AuthMethod::Kerberos;
    config.keytab = Some(env.keytab.clone().into());
    config.ca_file = Some(format!("{}/ca.pem", env.dir).into());
    config.timeout_secs = 10;
    config
}

#[tokio::test]
async fn a_keytab_binds_where_simple_binds_without_tls_are_refused() {
    let Some(env) = in_child("kerberos::a_keytab_binds_where_simple_binds_without_tls_are_refused")
    else {
        return;
    };
    // The DC refuses a simple bind on plain LDAP (strongerAuthRequired)...
    let mut simple = AdConfig::new(
        format!("ldap://{}", env.addr),
        "svc-kerberos@lab.example.test",
    );
    simple.allow_insecure_ldap = true;
    simple.password_env = Some("UNUSED".into());
    let err = AdConnection::connect(&simple, Secret::new("any-password"))
        .await
        .expect_err("a simple bind on plain LDAP is refused");
    assert!(
        matches!(err, AdError::BindRefused { code: 8, .. }),
        "{err:?}"
    );

    // ...and accepts Kerberos on the same port after StartTLS. The DC is named by address;
    // its principal ldap/dc1.lab.example.test comes from the rootDSE.
    let conn = AdConnection::connect(
        &kerberos_config(&env, format!("ldaps://{}", env.addr)),
        Secret::new(""),
    )
    .await
    .expect("Kerberos bind with the keytab");
    let found = conn
        .search(
            "CN=Users,DC=lab,DC=example,DC=test",
            SearchScope::OneLevel,
            "(sAMAccountName=svc-kerberos)",
            &["sAMAccountName"],
        )
        .await
        .expect("an authenticated search (the schema read first: ~1,500 entries)");
    assert_eq!(found.len(), 1);

    // Over LDAPS too (the TLS channel bound to the authentication).
    let tls = AdConnection::connect(
        &kerberos_config(&env, format!("ldaps://{}", env.addr)),
        Secret::new(""),
    )
    .await
    .expect("Kerberos bind over LDAPS");
    assert_eq!(tls.base_dn(), "DC=lab,DC=example,DC=test");
}

#[tokio::test]
async fn a_wrong_keytab_or_principal_says_kerberos_and_what_to_check() {
    let Some(env) =
        in_child("kerberos::a_wrong_keytab_or_principal_says_kerberos_and_what_to_check")
    else {
        return;
    };
    let url = format!("ldaps://{}", env.addr);
    let mut other = kerberos_config(&env, url.clone());
    other.bind_dn = "svc-noread@LAB.EXAMPLE.TEST".into(); // not in the keytab
    let err = AdConnection::connect(&other, Secret::new(""))
        .await
        .expect_err("no key for that principal");
    let text = err.to_string();
    assert!(matches!(err, AdError::Kerberos { .. }), "{err:?}");
    assert!(
        text.contains("svc-noread@LAB.EXAMPLE.TEST") && text.contains("klist -k"),
        "{text}"
    );

    let mut missing = kerberos_config(&env, url.clone());
    missing.keytab = Some(format!("{}/no-such.keytab", env.dir).into());
    let err = AdConnection::connect(&missing, Secret::new(""))
        .await
        .expect_err("no keytab");
    assert!(matches!(err, AdError::Kerberos { .. }), "{err:?}");

    let mut wrong_spn = kerberos_config(&env, url);
    wrong_spn.spn_host = Some("nosuchdc.lab.example.test".into());
    let err = AdConnection::connect(&wrong_spn, Secret::new(""))
        .await
        .expect_err("unknown service principal");
    let text = err.to_string();
    assert!(
        matches!(err, AdError::Kerberos { .. }) && text.contains("ldap/nosuchdc.lab.example.test"),
        "{text}"
    );
}

/// Plain `ldap://` with the Kerberos security layer (sign and seal), where the DC refuses binds
/// without signing: a DC packs several LDAP messages into one sealed SASL frame, and the next
/// frame is often already buffered when the first is decrypted. ldap3 0.12.1's decoder then
/// dropped the rest of the decrypted frame — entries vanished, or the search never ended.
#[tokio::test]
async fn kerberos_seals_plain_ldap_and_every_entry_of_a_long_search_arrives() {
    let Some(env) =
        in_child("kerberos::kerberos_seals_plain_ldap_and_every_entry_of_a_long_search_arrives")
    else {
        return;
    };
    let tls = AdConnection::connect(
        &kerberos_config(&env, format!("ldaps://{}", env.addr)),
        Secret::new(""),
    )
    .await
    .expect("Kerberos bind over LDAPS (the reference)");
    // Through a proxy that hands the DC's bytes over in bursts of 64 KiB, as a middlebox or a
    // busy host does: a read then holds the end of one sealed frame and the start of the next.
    let dc: std::net::SocketAddr = format!("{}:389", env.addr).parse().expect("address");
    let proxy = TcpProxy::start(dc).expect("proxy");
    proxy.set_burst(64 * 1024);
    let mut config = kerberos_config(&env, format!("ldap://{}", proxy.addr));
    config.spn_host = Some("dc1.lab.example.test".into());
    config.ca_file = None;
    config.page_size = 1000;
    assert!(config.is_sealed());
    let sealed = AdConnection::connect(&config, Secret::new(""))
        .await
        .expect("Kerberos bind over plain ldap:// with sealing");
    assert_eq!(sealed.transport(), Transport::Plain);
    assert_eq!(sealed.bind_identity(), tls.bind_identity());

    // The schema: ~1,500 attributeSchema entries in pages of 500.
    let want = tls.schema().await.expect("schema over LDAPS");
    let got = sealed.schema().await.expect("schema over sealed LDAP");
    assert!(want.len() > 1000, "{}", want.len());
    assert_eq!(got.len(), want.len(), "every attributeSchema entry arrives");

    // Every entry of the schema partition (classes too).
    let base = tls
        .root_dse()
        .schema_naming_context
        .clone()
        .expect("schemaNamingContext");
    let want = subtree_dns(&tls, &base)
        .await
        .expect("the schema partition over LDAPS");
    let got = subtree_dns(&sealed, &base)
        .await
        .expect("the schema partition over sealed LDAP");
    assert!(want.len() > 1000, "{}", want.len());
    assert_eq!(
        got.len(),
        want.len(),
        "missing: {:?}",
        want.difference(&got).take(5).collect::<Vec<_>>()
    );
    assert_eq!(got, want);
}

/// The (lower-case) DN of every entry below `base`.
async fn subtree_dns(conn: &AdConnection, base: &str) -> Result<BTreeSet<String>, AdError> {
    let objects = conn
        .search(
            base,
            SearchScope::Subtree,
            "(objectClass=*)",
            &["objectClass", "cn"],
        )
        .await?;
    Ok(objects
        .into_iter()
        .map(|o| o.dn.to_ascii_lowercase())
        .collect())
}
