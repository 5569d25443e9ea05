//! Attributes the service account cannot read, on the lab forest: `svc-noread` is denied Read
//! Property on extensionAttribute15 domain-wide (an inherited deny ACE). AD then leaves the
//! attribute out of its answers without an error — the check must see it anyway.

use exo_writeback_ad::{AdConfig, AdConnection, SearchScope};
use exo_writeback_core::directory::{AttrChange, AttrValue, ModOp, ObjectModify};
use exo_writeback_core::secret::Secret;
use exo_writeback_testlab::{ForestMember, ForestOptions, LabForest};

const USERS: &str = "CN=Users,DC=lab,DC=example,DC=test";
const PLAINUSER: &str = "CN=plainuser,CN=Users,DC=lab,DC=example,DC=test";

async fn as_account(forest: &LabForest, account: &str) -> AdConnection {
    let mut config = AdConfig::new(
        format!("ldaps://{}", forest.addr(ForestMember::Dc1)),
        LabForest::upn(account),
    );
    config.ca_file = Some(forest.ca_file());
    config.password_env = Some("UNUSED".into());
    AdConnection::connect(
        &config,
        Secret::new(forest.account_password(account).expect("password")),
    )
    .await
    .expect("bind")
}

#[tokio::test]
async fn an_attribute_the_account_may_not_read_is_found_although_ad_says_nothing() {
    let forest = LabForest::start(ForestOptions::default()).expect("the forest starts");
    let admin = crate::connect(forest.dc(ForestMember::Dc1).expect("dc1")).await;
    admin
        .modify(&ObjectModify {
            dn: PLAINUSER.into(),
            changes: vec![AttrChange {
                op: ModOp::Replace,
                attribute: "extensionAttribute15".into(),
                values: vec![AttrValue::Text("set by the admin".into())],
            }],
        })
        .await
        .expect("the administrator sets a value");

    // What the agent saw so far: no value, and no error.
    let noread = as_account(&forest, "svc-noread").await;
    let seen = noread
        .search(
            PLAINUSER,
            SearchScope::Base,
            "(objectClass=*)",
            &["extensionAttribute15", "sAMAccountName"],
        )
        .await
        .expect("a read that succeeds");
    assert!(seen[0].attributes.get("extensionAttribute15").is_empty());
    assert!(!seen[0].attributes.get("sAMAccountName").is_empty());

    // The check finds it, names the ACE, and lets the rest through.
    let report = noread
        .readable_attributes(
            USERS,
            "user",
            &[
                "extensionAttribute15",
                "mail",
                "sAMAccountName",
                "noSuchAttr",
            ],
            20,
        )
        .await
        .expect("the readability check");
    assert!(!report.samples.is_empty());
    let verdict = |name: &str| {
        report
            .attributes
            .iter()
            .find(|a| a.attribute == name)
            .expect("a verdict for every attribute")
            .clone()
    };
    let denied = verdict("extensionAttribute15");
    assert!(!denied.readable, "{denied:?}");
    assert!(
        denied.evidence.contains("denies Read Property") && denied.evidence.contains("inherited"),
        "{denied:?}"
    );
    assert!(verdict("mail").readable, "{:?}", verdict("mail"));
    assert!(verdict("sAMAccountName").readable);
    assert!(!verdict("noSuchAttr").readable);
    let problems = report.problems(noread.bind_identity());
    assert!(
        problems
            .iter()
            .any(|p| p.contains("cannot read extensionAttribute15")
                && p.contains("without an error")),
        "{problems:?}"
    );

    // The agent's own account (read everywhere) may read all of them.
    let agent = as_account(&forest, "svc-agent").await;
    let report = agent
        .readable_attributes(USERS, "user", &["extensionAttribute15", "mail"], 20)
        .await
        .expect("the readability check");
    assert!(report.unreadable().is_empty(), "{report:?}");
}

/// The samples a delta gives, by objectGUID: the one object evaluated finds the deny as the
/// per-base sampling does; an object the sampling excludes (AdminSDHolder-protected) or that
/// is not below the base is no sample, and no sample says so ("no object to check on").
#[tokio::test]
async fn samples_given_by_object_guid_find_the_deny_and_keep_the_exclusions() {
    let forest = LabForest::start(ForestOptions::default()).expect("the forest starts");
    let admin = crate::connect(forest.dc(ForestMember::Dc1).expect("dc1")).await;
    let guid = |dn: &'static str| {
        let admin = &admin;
        async move {
            admin
                .read_by_dn(dn, &["objectGUID"])
                .await
                .expect("read")
                .expect("exists")
                .object_guid
        }
    };
    let plain = guid(PLAINUSER).await;
    let administrator = guid("CN=Administrator,CN=Users,DC=lab,DC=example,DC=test").await;
    let noread = as_account(&forest, "svc-noread").await;
    let attributes = ["extensionAttribute15", "mail"];

    let report = noread
        .readable_attributes_of(USERS, "user", &attributes, &[plain, administrator])
        .await
        .expect("the readability check");
    assert_eq!(report.samples, [PLAINUSER], "{report:?}");
    let denied = &report.attributes[0];
    assert!(
        !denied.readable && denied.evidence.contains("denies Read Property"),
        "{denied:?}"
    );
    assert_eq!(denied.sample_dn.as_deref(), Some(PLAINUSER));
    assert!(report.attributes[1].readable, "{report:?}");

    for (base, guids) in [
        (USERS, vec![administrator]),
        (
            "OU=Domain Controllers,DC=lab,DC=example,DC=test",
            vec![plain],
        ),
        (USERS, vec![]),
    ] {
        let report = noread
            .readable_attributes_of(base, "user", &attributes, &guids)
            .await
            .expect("the readability check");
        assert!(report.samples.is_empty(), "{base} {guids:?}: {report:?}");
        assert!(
            report
                .attributes
                .iter()
                .all(|a| a.readable && a.evidence.contains("to check on")),
            "{report:?}"
        );
    }
}
