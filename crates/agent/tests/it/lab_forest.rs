//! The agent's directory against the real lab forest (Samba: dc1, dc2, the read-only rodc1,
//! DNS SRV records; lab/README.md): configured with the read-only DC as its URL (the nearest)
//! and the locator, it writes on a writable DC; when that DC stops mid-run the next write
//! moves to the other writable DC — never the read-only one — and the move is recorded for
//! `status` (`dc-status.json`).

use exo_writeback_ad::AdConfig;
use exo_writeback_ad::forest_directory::ForestDirectory;
use exo_writeback_agent::ad::AdDirectory;
use exo_writeback_agent::dc_status;
use exo_writeback_core::directory::{AttrChange, AttrValue, ModOp, ObjectModify};
use exo_writeback_core::secret::Secret;
use exo_writeback_engine::Directory;
use exo_writeback_testlab::{ForestMember, ForestOptions, LabForest};

const TARGET: &str = "CN=plainuser,CN=Users,DC=lab,DC=example,DC=test";

fn describe(value: &str) -> ObjectModify {
    ObjectModify {
        dn: TARGET.into(),
        changes: vec![AttrChange {
            op: ModOp::Replace,
            attribute: "description".into(),
            values: vec![AttrValue::Text(value.into())],
        }],
    }
}

fn member_of(host: &str) -> ForestMember {
    ForestMember::ALL
        .into_iter()
        .find(|m| m.fqdn() == host)
        .unwrap_or_else(|| panic!("{host} is no member of the lab forest"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_skip_the_nearest_rodc_and_a_dc_stopped_mid_run_is_failed_over_and_recorded() {
    let mut forest = LabForest::start(ForestOptions::all()).expect("the lab forest");
    let password = forest.account_password("svc-agent").expect("password");
    let mut config = AdConfig::new(
        format!("ldaps://{}", forest.addr(ForestMember::Rodc1)),
        LabForest::upn("svc-agent"),
    );
    config.ca_file = Some(forest.ca_file());
    config.password_env = Some("UNUSED".into());
    config.timeout_secs = 10;
    config.locate = true;
    config.site = Some("Default-First-Site-Name".into());
    config.dns_server = Some(forest.dns_server().to_string());
    config.search_bases = Some(vec!["CN=Users,DC=lab,DC=example,DC=test".into()]);
    let state = tempfile::tempdir().expect("tempdir");
    let ad = ForestDirectory::open(&config, Secret::new(password))
        .await
        .expect("open the forest");
    let dir = AdDirectory::new(ad, Some(state.path().to_path_buf())).await;

    let recorded = dc_status::read(state.path()).expect("recorded at start");
    let first = recorded.domains[0].clone();
    assert!(!first.read_only, "{first:?}");
    assert_ne!(first.dc, ForestMember::Rodc1.fqdn());
    assert!(
        first
            .skipped
            .iter()
            .any(|s| s.contains("read-only DC") && s.contains("rodc1")),
        "the nearest DC, read-only, is passed over for writes: {first:?}"
    );

    // Reads and writes on the writable DC (affinity: one DC for the cycle).
    let attrs = vec!["description".to_string()];
    assert!(
        dir.read_by_dn(TARGET, &attrs)
            .await
            .expect("read")
            .is_some()
    );
    dir.modify(&describe("before the failover"))
        .await
        .expect("write");

    // The DC in use stops mid-run: the next write moves to the other writable DC.
    forest
        .stop_member(member_of(&first.dc))
        .expect("stop the DC in use");
    dir.modify(&describe("after the failover"))
        .await
        .expect("the write fails over");
    let recorded = dc_status::read(state.path()).expect("recorded after the failover");
    let now = &recorded.domains[0];
    assert!(
        now.dc != first.dc && now.dc != ForestMember::Rodc1.fqdn() && !now.read_only,
        "{recorded:?}"
    );
    let failover = recorded.last_failover.expect("the failover is recorded");
    assert_eq!(
        (failover.from.as_str(), failover.to.as_str()),
        (first.dc.as_str(), now.dc.as_str())
    );
    assert!(!failover.reason.is_empty());
    let read = dir
        .read_by_dn(TARGET, &attrs)
        .await
        .expect("read on the new DC")
        .expect("plainuser");
    assert_eq!(
        read.attributes
            .get("description")
            .first()
            .and_then(|v| v.as_text()),
        Some("after the failover"),
        "read back on the DC written (the lab does not replicate)"
    );
}

/// Set in the child process that runs a Kerberos test with the lab's krb5.conf: MIT Kerberos
/// reads `KRB5_CONFIG`, a process-wide variable a multi-threaded test binary must not set.
const KERBEROS_CHILD: &str = "EXO_AGENT_KERBEROS_CHILD";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_the_forest_its_dc_and_kerberos_sealed_ldap() {
    const NAME: &str = "lab_forest::check_reports_the_forest_its_dc_and_kerberos_sealed_ldap";
    let Ok(facts) = std::env::var(KERBEROS_CHILD) else {
        let forest = LabForest::start(ForestOptions::default()).expect("the lab forest");
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env(
                KERBEROS_CHILD,
                format!(
                    "{}|{}|{}",
                    forest.addr(ForestMember::Dc1),
                    forest.keytab().display(),
                    forest.ca_file().display()
                ),
            )
            .env("KRB5_CONFIG", forest.krb5_conf())
            .env("KRB5CCNAME", "MEMORY:unused")
            .output()
            .expect("the test binary runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
        return;
    };
    let [addr, keytab, ca]: [&str; 3] = facts
        .split('|')
        .collect::<Vec<_>>()
        .try_into()
        .expect("three facts");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("exo-writeback.toml");
    // Plain ldap:// on port 389, where the DC refuses simple binds: Kerberos signs and seals.
    // No password: the keytab is the credential.
    std::fs::write(
        &path,
        format!(
            "[ad]\nurl = \"ldap://{addr}\"\nbind_dn = \"svc-kerberos@LAB.EXAMPLE.TEST\"\n\
             auth = \"kerberos\"\nkeytab = \"{keytab}\"\nca_file = \"{ca}\"\ntimeout_secs = 10\n\
             [sync]\nstate_dir = \"{}\"\n",
            dir.path().join("state").display()
        ),
    )
    .expect("config");
    let config = exo_writeback_agent::config::Config::load(&path).expect("config loads");
    let report =
        exo_writeback_agent::check::check(&config, Some(exo_writeback_agent::check::Side::Ad))
            .await
            .expect("check");
    let ad = report.ad.expect("the AD section");
    assert_eq!(ad.error, None, "{ad:?}");
    assert_eq!(
        ad.transport,
        Some("Kerberos-sealed LDAP (SASL GSSAPI signing and sealing)")
    );
    let forest = ad.forest.expect("the forest section");
    assert_eq!(forest.domains.len(), 1, "{forest:?}");
    assert!(
        forest.domains[0].starts_with("lab.example.test (LAB) DC=lab,DC=example,DC=test")
            && forest.domains[0].ends_with("[forest root]"),
        "{forest:?}"
    );
    let dc = &forest.domain_controllers[0];
    assert_eq!(dc.error, None, "{dc:?}");
    assert_eq!(
        dc.line(),
        "dc1.lab.example.test (configured; writable, global catalog)"
    );
    assert!(forest.global_catalog.is_none(), "one domain: no GC needed");
}
