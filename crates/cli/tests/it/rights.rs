//! Insufficient rights on one protected object (issue 6), end to end: the real binary binds
//! as a least-privilege service account holding exactly the rights of
//! docs/least-privilege.md; one user is protected the way AdminSDHolder protects accounts
//! (adminCount=1, inheritance disabled, so the OU's grants do not reach it). A sync in which
//! every mailbox changes fails that object alone — into escrow, with a message that names
//! it, its attributes, the missing Write Property right and AdminSDHolder — and writes every
//! other object.

use std::collections::BTreeMap;

use exo_writeback_ad::{AdConfig, AdConnection, AdError};
use exo_writeback_core::directory::{AttrChange, ModOp, ObjectModify};
use exo_writeback_core::profile_attrs::PROFILES;
use exo_writeback_core::provisioning::JobState;
use exo_writeback_core::secret::Secret;
use exo_writeback_store_sqlite::prelude::*;
use exo_writeback_testlab::MAILBOXES_OU;

use crate::harness::{Lab, assert_matches_cloud, cn, dn, edoid, mapped, texts};

/// schemaIDGUID of the class `user`.
const USER_CLASS: &str = "bf967aba-0de6-11d0-a285-00aa003049e2";

/// The `(attribute, schemaIDGUID)` rows of docs/least-privilege.md's table for the
/// cloud-managed profile (the profile this test's agent runs).
fn documented_cloud_managed_rights() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/least-privilege.md");
    let doc = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let (_, profile) = PROFILES
        .iter()
        .find(|(name, _)| *name == "cloud-managed")
        .expect("cloud-managed profile");
    let rows: Vec<(String, String)> = doc
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let unquote = |i: usize| {
                cells
                    .get(i)
                    .and_then(|c| c.strip_prefix('`'))
                    .and_then(|c| c.strip_suffix('`'))
                    .map(str::to_string)
            };
            let (attribute, guid) = (unquote(1)?, unquote(2)?);
            (guid.len() == 36 && profile.iter().any(|a| a.eq_ignore_ascii_case(&attribute)))
                .then_some((attribute, guid))
        })
        .collect();
    assert_eq!(rows.len(), profile.len(), "the document's table: {rows:?}");
    rows
}

/// Creates the service account, grants it exactly the documented rights on the mailboxes'
/// OU, and returns `(DN, password)`.
async fn least_privilege_account(lab: &Lab) -> (String, String) {
    let sam = "svc-exowb";
    let svc_dn = format!("CN={sam},CN=Users,{}", lab.dc.base_dn);
    let password = crate::check_identity::create_account(&lab.ad, &svc_dn, sam).await;
    let sid = lab.dc.object_sid(sam).expect("the service account's SID");
    // The documented grant: List/Read on the OU and below, one inherit-only Read + Write
    // Property ACE per attribute for user objects.
    let mut sddl = format!("(A;CI;RPLCLO;;;{sid})");
    for (_, guid) in documented_cloud_managed_rights() {
        sddl.push_str(&format!("(OA;CIIO;RPWP;{guid};{USER_CLASS};{sid})"));
    }
    lab.dc
        .admin_tool(
            "samba-tool",
            &[
                "dsacl",
                "set",
                &format!("--objectdn={MAILBOXES_OU}"),
                &format!("--sddl={sddl}"),
            ],
            None,
        )
        .expect("grant the documented rights");
    (svc_dn, password)
}

/// Protects user `i` as SDProp does with AdminSDHolder's descriptor: adminCount=1 and a DACL
/// with inheritance disabled (`P`) that holds no ACE for the service account — Domain Admins
/// and SYSTEM full control, Authenticated Users read (as AdminSDHolder grants).
fn protect(lab: &Lab, i: u32) {
    let ldif = lab.dir.path().join("protect.ldif");
    std::fs::write(
        &ldif,
        format!(
            "dn: {}\nchangetype: modify\nreplace: nTSecurityDescriptor\n\
             nTSecurityDescriptor: O:DAG:DAD:P(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;DA)\
             (A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;SY)(A;;RPLCLORC;;;AU)\n-\n\
             replace: adminCount\nadminCount: 1\n-\n",
            dn(i)
        ),
    )
    .expect("write the LDIF");
    lab.dc
        .admin_tool("ldbmodify", &[], Some(&ldif))
        .expect("protect the object");
    let sd = lab
        .dc
        .admin_tool(
            "samba-tool",
            &["dsacl", "get", &format!("--objectdn={}", dn(i))],
            None,
        )
        .expect("read the object's security descriptor");
    assert!(sd.contains("D:P("), "inheritance not disabled: {sd}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_object_the_service_account_may_not_write_fails_alone_into_escrow() {
    const USERS: u32 = 8;
    const PROTECTED: u32 = 3;
    let lab = Lab::start(USERS).await;
    let (svc_dn, svc_password) = least_privilege_account(&lab).await;
    protect(&lab, PROTECTED);
    let before = lab.all_users().await;

    // The denial is real: a direct modify as the service account is refused with
    // insufficientAccessRights (50) on the protected object, and allowed on another.
    let mut svc_config = AdConfig::new(lab.dc.url.clone(), svc_dn.clone());
    svc_config.ca_file = Some(lab.dc.ca_file.clone());
    svc_config.base_dn = Some(lab.dc.base_dn.clone());
    let svc_password_file = lab.dir.path().join("svc-password");
    std::fs::write(&svc_password_file, &svc_password).expect("password file");
    svc_config.password_file = Some(svc_password_file);
    let svc = AdConnection::connect(&svc_config, Secret::new(svc_password.clone()))
        .await
        .expect("bind as the service account");
    let probe = |i: u32| ObjectModify {
        dn: dn(i),
        changes: vec![AttrChange {
            op: ModOp::Replace,
            attribute: "extensionAttribute1".into(),
            values: before[&i].attributes.get("extensionAttribute1").to_vec(),
        }],
    };
    let denied = svc
        .modify(&probe(PROTECTED))
        .await
        .expect_err("the protected object is not writable");
    assert!(
        matches!(&denied, AdError::InsufficientAccess { dn: d, .. } if *d == dn(PROTECTED)),
        "{denied:?}"
    );
    svc.modify(&probe(1))
        .await
        .expect("an unprotected object is writable");

    // The agent binds as the service account; every mailbox has a change.
    lab.bind_agent_as(&svc_dn, &svc_password);
    for i in 1..=USERS {
        lab.update(i, |m| m.set_custom_attribute(2, &format!("rights-{i}")));
    }
    let r = lab.run(&["sync", "--json"]).await;
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(!r.stderr.contains(&svc_password), "{}", r.stderr);
    let report = r.json();
    assert_eq!(report["counts"]["failed"], 1, "{report}");
    assert_eq!(report["counts"]["written"], USERS - 1, "{report}");

    // Escrow: that object alone, with an actionable message.
    let store = lab.store();
    let escrow = store.escrow().expect("escrow");
    assert_eq!(escrow.len(), 1, "{escrow:?}");
    let entry = &escrow[0];
    assert_eq!(entry.cloud_id, edoid(PROTECTED));
    let message = &entry.error.message;
    for needed in [
        dn(PROTECTED).as_str(),
        "extensionAttribute2",
        "LDAP result 50",
        "service account",
        "Write Property",
        "adminCount=1",
        "AdminSDHolder",
        "docs/least-privilege.md",
    ] {
        assert!(message.contains(needed), "{needed:?} missing in: {message}");
    }
    assert!(!entry.error.recommended_action.is_empty(), "{entry:?}");
    eprintln!("escrow message: {message}");

    // The provisioning log has the same Failure entry.
    let failures = crate::harness::failure_entries(&store);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(
        failures[0]
            .target
            .dn
            .as_deref()
            .map(str::to_ascii_lowercase),
        Some(dn(PROTECTED).to_ascii_lowercase())
    );
    let logged = failures[0].reason.as_ref().expect("reason");
    assert!(logged.message.contains("AdminSDHolder"), "{logged:?}");
    let shown = lab.run(&["logs", "--status", "failure"]).await;
    assert!(
        shown.stdout.contains(&cn(PROTECTED)) && shown.stdout.contains("AdminSDHolder"),
        "{}",
        shown.stdout
    );

    // Nothing of the protected object changed; every other object holds its cloud values.
    assert_eq!(
        mapped(&lab.user(PROTECTED).await),
        mapped(&before[&PROTECTED]),
        "nothing partial"
    );
    assert_eq!(
        texts(&lab.user(PROTECTED).await, "adminCount"),
        ["1".to_string()]
    );
    let after: BTreeMap<u32, _> = lab.all_users().await;
    for i in (1..=USERS).filter(|&i| i != PROTECTED) {
        assert_matches_cloud(i, &after[&i], &lab.mailbox(i), &before[&i]);
    }
    assert_eq!(lab.job_state(), JobState::Active);
}
