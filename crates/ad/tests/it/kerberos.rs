//! Kerberos (SASL GSSAPI with a keytab) against the lab forest's KDC. Over LDAPS and
//! StartTLS; sealed plain `ldap://` is refused by the configuration for now (ldap3 0.12.1's
//! SASL layer can drop messages that share a frame; see `config.rs`).
//!
//! MIT Kerberos reads its krb5.conf from `KRB5_CONFIG`, a process-wide variable that a
//! multi-threaded test binary must not set: each test re-runs itself in a child process with
//! `KRB5_CONFIG` naming the lab's krb5.conf (`in_child`).

use std::process::Command;

use exo_writeback_ad::{AdConfig, AdConnection, AdError, AuthMethod, SearchScope};
use exo_writeback_core::secret::Secret;
use exo_writeback_testlab::{ForestMember, ForestOptions, LabForest};

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
