//! The DC locator, read-only DCs and failover, against the lab forest (dc1 with the realm's DNS,
//! dc2, rodc1): SRV answers as Windows registers them, a write connection that never uses the
//! read-only DC, and a DC stopped mid-way.

use exo_writeback_ad::domain::{DomainConnection, Purpose, candidates};
use exo_writeback_ad::locator::{DcLocator, DcSource};
use exo_writeback_ad::{AdConfig, AdConnection, AdError, SearchScope};
use exo_writeback_core::directory::{AttrChange, AttrValue, ModOp, ObjectModify};
use exo_writeback_core::secret::Secret;
use exo_writeback_testlab::{ForestMember, ForestOptions, LabForest};

const DOMAIN: &str = "lab.example.test";
const SITE: &str = "Default-First-Site-Name";
const TARGET: &str = "CN=plainuser,CN=Users,DC=lab,DC=example,DC=test";

/// svc-agent (read and write everywhere in the domain) over LDAPS, CA verified, at `host`.
fn agent_config(forest: &LabForest, host: &str) -> AdConfig {
    let mut config = AdConfig::new(format!("ldaps://{host}"), LabForest::upn("svc-agent"));
    config.ca_file = Some(forest.ca_file());
    config.password_env = Some("UNUSED".into());
    config.timeout_secs = 10;
    config.site = Some(SITE.into());
    config.dns_server = Some(forest.dns_server().to_string());
    config
}

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

async fn description_on(forest: &LabForest, member: ForestMember, password: &str) -> String {
    let conn = AdConnection::connect(
        &agent_config(forest, forest.addr(member)),
        Secret::new(password),
    )
    .await
    .expect("a direct connection");
    let found = conn
        .search(
            TARGET,
            SearchScope::Base,
            "(objectClass=*)",
            &["description"],
        )
        .await
        .expect("read back");
    found[0]
        .attributes
        .get("description")
        .first()
        .and_then(|v| v.as_text())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn the_locator_skips_the_rodc_for_writes_and_fails_over_when_a_dc_stops() {
    let mut forest = LabForest::start(ForestOptions::all()).expect("the forest starts");
    let password = forest.account_password("svc-agent").expect("password");
    let locator = DcLocator::new(Some(forest.dns_server())).expect("locator");

    // The SRV answers: the domain-wide record names the writable DCs only, the site's record
    // the read-only DC too; each target with the address this forest runs it on.
    let domain_wide = locator
        .domain_controllers(DOMAIN, None)
        .await
        .expect("SRV lookup");
    let mut hosts: Vec<&str> = domain_wide.iter().map(|c| c.host.as_str()).collect();
    hosts.sort();
    assert_eq!(hosts, ["dc1.lab.example.test", "dc2.lab.example.test"]);
    assert!(domain_wide.iter().all(|c| c.source == DcSource::Domain));
    let with_site = locator
        .domain_controllers(DOMAIN, Some(SITE))
        .await
        .expect("SRV lookup with a site");
    assert_eq!(with_site.len(), 3, "{with_site:?}");
    assert!(
        with_site
            .iter()
            .all(|c| c.source == DcSource::Site(SITE.into()))
    );
    for member in ForestMember::ALL {
        let c = with_site
            .iter()
            .find(|c| c.host == member.fqdn())
            .expect("every member");
        assert_eq!(
            c.addrs,
            vec![forest.addr(member).parse::<std::net::IpAddr>().unwrap()]
        );
    }
    assert_eq!(
        locator
            .global_catalogs(DOMAIN, None)
            .await
            .expect("GC lookup")
            .len(),
        2
    );

    // A write connection over the located DCs, the read-only one put first: it is recognised
    // (Samba's RODC by msDS-isRODC) and passed over.
    let config = agent_config(&forest, "unused.invalid");
    let mut list = candidates(&config, Some(&locator), DOMAIN, false)
        .await
        .expect("candidates");
    list.sort_by_key(|c| match c.host.split('.').next() {
        Some("rodc1") => 0,
        Some("dc2") => 1,
        _ => 2,
    });
    let writer = DomainConnection::connect(
        &config,
        Secret::new(password.clone()),
        DOMAIN,
        list.clone(),
        Purpose::Write,
    )
    .await
    .expect("a writable DC");
    let status = writer.status().await;
    assert_eq!(status.dc, "dc2.lab.example.test", "{status}");
    assert!(!status.read_only);
    assert_eq!(status.skipped.len(), 1, "{status:?}");
    assert!(
        status.skipped[0].0 == "rodc1.lab.example.test"
            && status.skipped[0].1.contains("read-only"),
        "{status:?}"
    );
    // Reads may use the read-only DC.
    let reader = DomainConnection::connect(
        &config,
        Secret::new(password.clone()),
        DOMAIN,
        list.clone(),
        Purpose::Read,
    )
    .await
    .expect("any DC for reads");
    let status = reader.status().await;
    assert!(
        status.dc == "rodc1.lab.example.test" && status.read_only,
        "{status}"
    );
    // A write sent to the read-only DC itself is refused with a referral said by name.
    let rodc = reader.connection().await;
    let err = rodc
        .modify(&describe("sent to the RODC"))
        .await
        .expect_err("an RODC refers writes");
    match &err {
        AdError::Referral {
            same_object: true, ..
        } => assert_eq!(
            err.referral_host().as_deref(),
            Some("dc1.lab.example.test"),
            "{err}"
        ),
        other => panic!("not a referral: {other:?}"),
    }
    assert!(err.to_string().contains("writable DC"), "{err}");

    writer
        .run(|c| async move { c.modify(&describe("written on dc2")).await })
        .await
        .expect("write on dc2");
    assert_eq!(
        description_on(&forest, ForestMember::Dc2, &password).await,
        "written on dc2"
    );
    assert_ne!(
        description_on(&forest, ForestMember::Rodc1, &password).await,
        "written on dc2",
        "nothing reaches the read-only DC (the lab does not replicate)"
    );

    // dc2 stops: the next write goes to dc1 (not the RODC), and the move is reported.
    forest.stop_member(ForestMember::Dc2).expect("stop dc2");
    writer
        .run(|c| async move { c.modify(&describe("written after failover")).await })
        .await
        .expect("the write fails over");
    let status = writer.status().await;
    assert_eq!(status.dc, "dc1.lab.example.test", "{status}");
    assert_eq!(status.failovers.len(), 1, "{status:?}");
    let failover = &status.failovers[0];
    assert_eq!(
        (failover.from.as_str(), failover.to.as_str()),
        ("dc2.lab.example.test", "dc1.lab.example.test")
    );
    assert!(
        failover.reason.contains("dc2.lab.example.test"),
        "the reason names the failed DC: {failover}"
    );
    assert!(
        status.to_string().contains("1 failover(s)"),
        "status says it: {status}"
    );
    assert_eq!(
        description_on(&forest, ForestMember::Dc1, &password).await,
        "written after failover"
    );
}
