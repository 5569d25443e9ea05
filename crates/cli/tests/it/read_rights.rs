//! Attributes the service account cannot read (issue 12, item 6), end to end: AD leaves an
//! attribute the bind account may not read out of every answer, without an error. The account
//! here is a `svc-noread` with the ACEs of the lab forest template (lab/forest.sh): its inherited
//! deny of Read Property on extensionAttribute15, plus the Read and Write Property on every
//! object that the template gives `svc-agent` (so that it may write the rest). Before the fix
//! the planner saw the attribute empty, wrote it, journaled an empty "previous value" and
//! rewrote it every cycle. The second test probes the template's own accounts on its dc1.

use exo_writeback_core::provisioning::ObjectRef;
use exo_writeback_store_sqlite::prelude::*;

use crate::harness::{Lab, texts};

/// The lab user holding `extensionAttribute15: lab-seed` (every fourth, lab/users-ldif).
const HOLDER: u32 = 4;
/// schemaIDGUID of extensionAttribute15 (lab/exchange-schema.ldif), as lab/forest.sh denies it.
const EXTENSION_ATTRIBUTE_15: &str = "167757fa-47f3-11d1-a9c3-0000f80367c1";

/// `svc-noread` with lab/forest.sh's deny and svc-agent's grant, and the agent bound as it.
async fn bind_as_svc_noread(lab: &Lab) -> String {
    let dn = format!("CN=svc-noread,CN=Users,{}", lab.dc.base_dn);
    let password = crate::check_identity::create_account(&lab.ad, &dn, "svc-noread").await;
    let sid = lab.dc.object_sid("svc-noread").expect("the account's SID");
    for ace in [
        format!("(A;CI;RPWP;;;{sid})"),
        format!("(OD;CI;RP;{EXTENSION_ATTRIBUTE_15};;{sid})"),
    ] {
        dsacl(lab, &lab.dc.base_dn, &ace);
    }
    lab.bind_agent_as(&dn, &password);
    dn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attribute_the_account_cannot_read_is_refused_not_rewritten_blindly() {
    let lab = Lab::start(4).await;
    let held = texts(&lab.user(HOLDER).await, "extensionAttribute15");
    assert_eq!(held, ["lab-seed"], "the lab user holds the attribute");
    let account = bind_as_svc_noread(&lab).await;
    // The cloud has another value for it.
    lab.update(HOLDER, |m| m.set_custom_attribute(15, "cloud-15"));

    let first = lab.run(&["sync", "--json"]).await;
    let second = lab.run(&["sync", "--full", "--json"]).await;

    // No write may journal a "previous value" the account could not see.
    let store = lab.store();
    let holder_guid = lab.user(HOLDER).await.object_guid;
    let journal = store
        .journal_for_object(&ObjectRef::Guid(holder_guid))
        .expect("journal");
    let ea15: Vec<_> = journal
        .iter()
        .filter(|j| j.attribute.eq_ignore_ascii_case("extensionAttribute15"))
        .collect();
    assert!(
        ea15.is_empty(),
        "extensionAttribute15 was written blind, journaled as {:?} (AD held \"lab-seed\")\nfirst: {}\nsecond: {}",
        ea15.iter()
            .map(|j| (j.cycle, j.previous.clone()))
            .collect::<Vec<_>>(),
        first.stdout,
        second.stdout
    );
    // The other attributes are written as usual, and nothing is rewritten by the second cycle.
    let first_report = first.json();
    assert_eq!(first_report["counts"]["written"], 4, "{first_report}");
    assert_eq!(second.json()["counts"]["written"], 0, "{}", second.stdout);
    assert_eq!(
        texts(&lab.user(HOLDER).await, "extensionAttribute1").len(),
        1,
        "written"
    );

    // The refusal is actionable: which attribute, which account, the command to grant it.
    for needed in [
        "extensionAttribute15",
        account.as_str(),
        "Read Property",
        "dsacls",
        "RP;extensionAttribute15;user",
        "deny",
    ] {
        assert!(
            first.stderr.contains(needed),
            "{needed:?} in the sync's log:\n{}",
            first.stderr
        );
    }
    let unreadable = &first_report["unreadable_attributes"];
    assert_eq!(
        unreadable[0]["attribute"], "extensionAttribute15",
        "{first_report}"
    );

    // `check` says so too, and fails.
    let check = lab.run(&["check", "--only", "ad"]).await;
    assert_eq!(check.code, 1, "{}\n{}", check.stdout, check.stderr);
    for needed in ["extensionAttribute15", account.as_str(), "dsacls"] {
        assert!(
            check.stdout.contains(needed),
            "{needed:?} in:\n{}",
            check.stdout
        );
    }
    let json = lab.run(&["check", "--only", "ad", "--json"]).await.json();
    assert_eq!(
        json["ad"]["read_rights"]["unreadable"][0]["attribute"], "extensionAttribute15",
        "{json}"
    );
}

/// The forest template's own `svc-noread` (lab/forest.sh) against its `svc-agent`, on dc1: the
/// probe finds exactly the attribute the template denies, and nothing for the other account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_finds_what_the_forest_denies_svc_noread() {
    use exo_writeback_ad::{AdConfig, AdConnection};
    use exo_writeback_agent::read_rights::probe;
    use exo_writeback_core::secret::Secret;
    use exo_writeback_testlab::{ForestMember, ForestOptions, LabForest};

    let forest = LabForest::start(ForestOptions::default()).expect("the lab forest");
    let dc1 = forest.dc(ForestMember::Dc1).expect("dc1 runs");
    let attributes: Vec<String> = ["extensionAttribute1", "extensionAttribute15", "mail"]
        .map(String::from)
        .to_vec();
    let mut found = Vec::new();
    for account in ["svc-noread", "svc-agent"] {
        let password = forest.account_password(account).expect("password");
        let mut config = AdConfig::new(dc1.url.clone(), LabForest::upn(account));
        config.ca_file = Some(forest.ca_file());
        config.base_dn = Some(dc1.base_dn.clone());
        let password_file = forest.dir.join(format!("{account}-probe-password"));
        std::fs::write(&password_file, &password).expect("password file");
        config.password_file = Some(password_file);
        let conn = AdConnection::connect(&config, Secret::new(password))
            .await
            .expect("bind");
        let rights = probe(&conn, &attributes).await.expect("probe");
        assert_eq!(rights.unverified, None, "{account}: {rights:?}");
        assert!(!rights.samples.is_empty(), "{account}: {rights:?}");
        found.push(
            rights
                .unreadable
                .iter()
                .map(|u| u.attribute.clone())
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(found[0], ["extensionAttribute15"], "svc-noread");
    assert!(found[1].is_empty(), "svc-agent: {:?}", found[1]);
}

/// samba-tool dsacl set: `ace` on `dn`.
fn dsacl(lab: &Lab, dn: &str, ace: &str) {
    lab.dc
        .admin_tool(
            "samba-tool",
            &[
                "dsacl",
                "set",
                &format!("--objectdn={dn}"),
                &format!("--sddl={ace}"),
            ],
            None,
        )
        .expect("samba-tool dsacl set");
}

/// A new account `name` with Read and Write Property on every object of the domain, and the
/// agent bound as it: its DN, password and SID.
async fn bind_as_granted(lab: &Lab, name: &str) -> (String, String, String) {
    let account = format!("CN={name},CN=Users,{}", lab.dc.base_dn);
    let password = crate::check_identity::create_account(&lab.ad, &account, name).await;
    let sid = lab.dc.object_sid(name).expect("the account's SID");
    dsacl(lab, &lab.dc.base_dn, &format!("(A;CI;RPWP;;;{sid})"));
    lab.bind_agent_as(&account, &password);
    (account, password, sid)
}

/// A lab user that the probe's old sampling — the first users of the search base, a search of
/// the whole scope — leaves out, as the account sees them.
async fn a_user_outside_the_per_base_samples(
    lab: &Lab,
    account: &str,
    password: &str,
    users: u32,
) -> u32 {
    use exo_writeback_ad::{AdConfig, AdConnection};
    use exo_writeback_agent::read_rights::probe;
    use exo_writeback_core::secret::Secret;

    let mut config = AdConfig::new(lab.dc.url.clone(), account.to_string());
    config.ca_file = Some(lab.dc.ca_file.clone());
    config.base_dn = Some(lab.dc.base_dn.clone());
    config.password_file = Some(lab.password_file());
    let conn = AdConnection::connect(&config, Secret::new(password.to_string()))
        .await
        .expect("bind as the agent's account");
    let sampled = probe(&conn, &["extensionAttribute15".to_string()])
        .await
        .expect("probe")
        .samples;
    (1..=users)
        .find(|&i| !sampled.contains(&crate::harness::dn(i)))
        .expect("a user outside the per-base samples")
}

/// An administrator sets extensionAttribute15 on lab user `i` in AD.
async fn set_in_ad(lab: &Lab, i: u32) {
    use exo_writeback_core::directory::{AttrChange, AttrValue, ModOp, ObjectModify};
    lab.ad
        .modify(&ObjectModify {
            dn: crate::harness::dn(i),
            changes: vec![AttrChange {
                op: ModOp::Replace,
                attribute: "extensionAttribute15".into(),
                values: vec![AttrValue::Text("set in AD".into())],
            }],
        })
        .await
        .expect("the administrator sets a value");
}

/// Of the lab's 24 users, one outside the old per-base samples: extensionAttribute15 set there
/// in AD, Read Property on it denied to the account `sid` on that object alone, and another
/// value for it in the cloud. Its number.
async fn revoke_on_a_user_outside_the_samples(
    lab: &Lab,
    account: &str,
    password: &str,
    sid: &str,
) -> u32 {
    let target = a_user_outside_the_per_base_samples(lab, account, password, 24).await;
    set_in_ad(lab, target).await;
    dsacl(
        lab,
        &crate::harness::dn(target),
        &format!("(OD;;RP;{EXTENSION_ATTRIBUTE_15};;{sid})"),
    );
    lab.update(target, |m| m.set_custom_attribute(15, "cloud-15"));
    target
}

/// After `sync`: extensionAttribute15 of lab user `target` was neither written (nor journaled)
/// nor planned, and the report and the log name it.
async fn refused_not_written(lab: &Lab, target: u32, sync: &crate::harness::Run, what: &str) {
    assert_eq!(sync.code, 0, "{what}: {}{}", sync.stdout, sync.stderr);
    let guid = lab.user(target).await.object_guid;
    let written: Vec<_> = lab
        .store()
        .journal_for_object(&ObjectRef::Guid(guid))
        .expect("journal")
        .into_iter()
        .filter(|j| j.attribute.eq_ignore_ascii_case("extensionAttribute15"))
        .map(|j| (j.cycle, j.previous))
        .collect();
    assert!(
        written.is_empty(),
        "{what} wrote extensionAttribute15 blind, journaled as {written:?} (AD held \
         \"set in AD\")\n{}\n{}",
        sync.stdout,
        sync.stderr
    );
    assert_eq!(
        texts(&lab.user(target).await, "extensionAttribute15"),
        ["set in AD"],
        "{what}"
    );
    let report = sync.json();
    assert_eq!(
        report["unreadable_attributes"][0]["attribute"], "extensionAttribute15",
        "{what}: {report}"
    );
    assert!(
        sync.stderr.contains(&crate::harness::dn(target)),
        "{what}: the error names the object where it is unreadable:\n{}",
        sync.stderr
    );
}

/// A right revoked after the initial cycle on the one object a delta then writes: a deny of Read
/// Property on extensionAttribute15 on that user alone, which the probe's few samples per search
/// base need not include. A delta probes the objects it evaluates (their stored joins, by
/// objectGUID), so the very next delta that evaluates the object finds it, and the attribute is
/// not planned (docs/windows-ad.md: the bound on finding a revoked right).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_revoked_on_the_object_a_delta_writes_is_found_by_that_delta() {
    let lab = Lab::start(24).await;
    let (account, password, sid) = bind_as_granted(&lab, "svc-delta").await;
    let initial = lab.run(&["sync", "--json"]).await;
    assert_eq!(initial.code, 0, "{}{}", initial.stdout, initial.stderr);
    assert!(
        initial.json()["unreadable_attributes"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "{}",
        initial.stdout
    );

    // A user the per-base sampling leaves out, holding a value set in AD after the initial
    // cycle, the right revoked there alone; the cloud then changes the attribute there.
    let target = revoke_on_a_user_outside_the_samples(&lab, &account, &password, &sid).await;

    let delta = lab.run(&["sync", "--json"]).await;
    refused_not_written(&lab, target, &delta, "the delta").await;
}

/// A right denied on one object of the scope, not among the first users of the search base
/// (which the probe of initial and full cycles sampled, a search of the whole scope): the
/// initial cycle and a full reconcile probe the objects their own scan hands over first (by
/// objectGUID), so each finds it and plans no blind write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_denied_on_an_object_a_full_cycle_scans_is_found_by_that_cycle() {
    let lab = Lab::start(24).await;
    let (account, password, sid) = bind_as_granted(&lab, "svc-full").await;
    let target = revoke_on_a_user_outside_the_samples(&lab, &account, &password, &sid).await;

    let initial = lab.run(&["sync", "--json"]).await;
    refused_not_written(&lab, target, &initial, "the initial cycle").await;
    lab.update(target, |m| m.set_custom_attribute(15, "cloud-15, changed"));
    let full = lab.run(&["sync", "--full", "--json"]).await;
    refused_not_written(&lab, target, &full, "the full reconcile").await;
}
