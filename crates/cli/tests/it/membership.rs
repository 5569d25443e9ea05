//! Group membership (issue 17 item 3, `write_membership = true`), end to end: the real binary
//! against the lab DC and exo-sim seeded from it (users, groups, contacts — as directory
//! synchronisation shows them). A member added and one removed in the cloud reach `member`; a
//! member that resolves to no AD object is reported, not guessed; a mass removal is held until
//! `approve`; `undo` puts the list back exactly; the 5,000-member group changes by single values.

use std::collections::BTreeSet;

use exo_sim::seed_ad::{AdSeedOptions, seed_from_ad};
use exo_sim::{RecipientDetails, SimMailbox};
use exo_writeback_core::directory::{AttrChange, AttrValue, Attributes, ModOp, ObjectModify};
use exo_writeback_testlab::MAILBOXES_OU;
use serde_json::Value;
use uuid::Uuid;

use crate::harness::Lab;

const GROUPS_OU: &str = "OU=Groups,DC=lab,DC=example,DC=test";
const CONTACTS_OU: &str = "OU=Contacts,DC=lab,DC=example,DC=test";
const WRITEBACK: &str = "profiles = [\"cloud-managed\", \"cloud-managed-groups\", \"cloud-managed-contacts\"]\nassume_cloud_managed_recipients = true\nwrite_membership = true\n";

fn group_dn(cn: &str) -> String {
    format!("CN={cn},{GROUPS_OU}")
}

fn user_dn(i: u32) -> String {
    format!("CN=mbx{i:05},{MAILBOXES_OU}")
}

/// A lab whose emulator holds the DC's users, groups and contacts as directory sync shows them.
async fn lab(users: u32, writeback: &str) -> Lab {
    let lab = Lab::empty(users, 500).await;
    let added = seed_from_ad(
        &lab.sim.state(),
        &lab.config,
        &AdSeedOptions {
            tenant_domain: "contoso.onmicrosoft.com".into(),
            not_cloud_managed: 0.0,
        },
    )
    .await
    .expect("seed the emulator from the DC");
    assert_eq!(added.mailboxes as u32, users, "{added:?}");
    lab.write_config("", writeback);
    lab
}

/// The group's `member` values, lower case, sorted.
async fn members(lab: &Lab, cn: &str) -> Vec<String> {
    let obj = lab
        .ad
        .read_by_dn(&group_dn(cn), &["member"])
        .await
        .expect("read the group")
        .expect("the group exists");
    let mut m: Vec<String> = obj
        .attributes
        .get("member")
        .iter()
        .map(|v| v.as_text().expect("a DN").to_lowercase())
        .collect();
    m.sort();
    m
}

fn lower(dns: &[String]) -> Vec<String> {
    let mut m: Vec<String> = dns.iter().map(|d| d.to_lowercase()).collect();
    m.sort();
    m
}

/// A user with no mailbox (so no join) created in AD and added to `group` there; its DN.
async fn add_onprem_member(lab: &Lab, cn: &str, group: &str) -> String {
    let dn = format!("CN={cn},{MAILBOXES_OU}");
    let mut attrs = Attributes::new();
    attrs.insert("objectClass", vec![AttrValue::Text("user".into())]);
    lab.ad.add(&dn, &attrs).await.expect("an on-premises user");
    lab.ad
        .modify(&ObjectModify {
            dn: group_dn(group),
            changes: vec![AttrChange {
                op: ModOp::Add,
                attribute: "member".into(),
                values: vec![AttrValue::Text(dn.clone())],
            }],
        })
        .await
        .expect("add the on-premises member");
    dn
}

/// The emulator's Guid of a mailbox (by alias).
fn mailbox_guid(lab: &Lab, alias: &str) -> Uuid {
    lab.sim
        .state()
        .mailbox(alias)
        .unwrap_or_else(|| panic!("no mailbox {alias}"))
        .guid
}

/// Changes the cloud membership of `group` (by alias) as an administrator would.
fn set_cloud_members(lab: &Lab, group: &str, f: impl FnOnce(&mut BTreeSet<Uuid>)) {
    lab.sim
        .state()
        .update_recipient(group, true, |r| {
            if let RecipientDetails::Group { members, .. } = &mut r.details {
                f(members)
            }
        })
        .expect("update the group");
}

async fn sync(lab: &Lab, args: &[&str]) -> Value {
    let mut all = vec!["sync", "--json"];
    all.extend_from_slice(args);
    let r = lab.run(&all).await;
    // 0, or 1 when the cycle is held or an object failed (the report says which).
    assert!(r.code == 0 || r.code == 1, "{}{}", r.stdout, r.stderr);
    r.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_membership_reaches_member_unresolved_members_are_reported_and_undo_restores() {
    let lab = lab(12, WRITEBACK).await;
    let before = members(&lab, "dl-sales").await;
    assert_eq!(
        before,
        lower(&[
            user_dn(1),
            user_dn(2),
            format!("CN=ct-partner-a,{CONTACTS_OU}")
        ])
    );
    // The first cycle matches every mailbox, group and contact; the second finds the
    // membership in sync (every member resolves through the joins the first one stored).
    sync(&lab, &[]).await;
    let r = sync(&lab, &["--full"]).await;
    assert_eq!(r["counts"]["written"], 0, "{r}");
    assert_eq!(members(&lab, "dl-sales").await, before);

    // In the cloud: mbx00002 leaves, mbx00004 joins, and a cloud-only mailbox (no AD
    // object) joins.
    let cloud_only = SimMailbox::new(
        Uuid::from_u128(0xc10d),
        "cloudonly",
        "cloudonly@contoso.example",
        lab.sim.state().now(),
    );
    let cloud_only_guid = lab
        .sim
        .state()
        .add_mailbox(cloud_only)
        .expect("a cloud-only mailbox");
    // Over the emulator's control API, as an administrator changes a group.
    let http = reqwest::Client::new();
    let members_url = format!("{}/_sim/groups/dl-sales/members", lab.sim.base_url());
    for joining in ["mbx00004".to_string(), cloud_only_guid.to_string()] {
        let r = http
            .post(&members_url)
            .json(&serde_json::json!({ "Member": joining }))
            .send()
            .await
            .expect("add a member");
        assert!(r.status().is_success(), "{:?}", r.text().await);
    }
    let r = http
        .delete(format!("{members_url}/mbx00002"))
        .send()
        .await
        .expect("remove a member");
    assert!(r.status().is_success(), "{:?}", r.text().await);
    // An on-premises-only member (no mailbox, no join) added in AD: never removed.
    let onprem = add_onprem_member(&lab, "svc-onprem", "dl-sales").await;
    let before_change = members(&lab, "dl-sales").await;
    // Provision on demand, dry: who would leave and who would join, nothing written.
    let dry = lab
        .run(&["provision", "--dry-run", "dl-sales@contoso.example"])
        .await;
    assert!(
        dry.stdout.contains("member: 4 → 4 members: −1 (") && dry.stdout.contains("+1 ("),
        "{}{}",
        dry.stdout,
        dry.stderr
    );
    assert!(
        dry.stdout.contains("cloudonly@contoso.example"),
        "the unresolved member is named: {}",
        dry.stdout
    );
    assert_eq!(members(&lab, "dl-sales").await, before_change);

    let r = sync(&lab, &["--full"]).await;
    assert_eq!(r["counts"]["written"], 1, "only dl-sales changes: {r}");
    assert_eq!(
        members(&lab, "dl-sales").await,
        lower(&[
            user_dn(1),
            user_dn(4),
            format!("CN=ct-partner-a,{CONTACTS_OU}"),
            onprem.clone(),
        ]),
        "mbx00002 removed, mbx00004 added, the on-premises member kept, the cloud-only one not guessed"
    );
    let cycle = r["cycle"].to_string();
    let e = lab.log_lines(&["--cycle", &cycle]).await;
    let sales = e
        .iter()
        .find(|e| {
            e["target"]["dn"]
                .as_str()
                .is_some_and(|d| d.eq_ignore_ascii_case(&group_dn("dl-sales")))
        })
        .unwrap_or_else(|| panic!("no entry for dl-sales: {e:?}"));
    assert_eq!(sales["reason"]["code"], "MemberNotResolved", "{sales}");
    let reason = sales["reason"]["message"].as_str().unwrap_or_default();
    assert!(
        reason.contains("cloudonly@contoso.example"),
        "the unresolved member is named: {reason}"
    );

    // Undo puts the list back exactly (single values, the on-premises member untouched).
    let u = lab.run(&["undo", "--cycle", &cycle, "--json"]).await;
    assert_eq!(u.code, 0, "{}{}", u.stdout, u.stderr);
    assert_eq!(members(&lab, "dl-sales").await, before_change);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_membership_removal_is_held_until_approved() {
    let lab = lab(12, &format!("{WRITEBACK}threshold = 2\n")).await;
    sync(&lab, &[]).await;
    let r = sync(&lab, &["--full"]).await;
    assert_eq!(r["status"], "Completed", "{r}");
    let before = members(&lab, "dl-all").await;
    assert_eq!(before.len(), 3, "{before:?}");
    // Every member of dl-all leaves in the cloud: three removals from one group, above the
    // threshold of 2 — though only one object changes.
    set_cloud_members(&lab, "dl-all", |m| m.clear());
    let r = sync(&lab, &["--full"]).await;
    assert_eq!(r["status"], "ThresholdExceeded", "{r}");
    assert_eq!(r["removing"], 3, "{r}");
    assert_eq!(
        members(&lab, "dl-all").await,
        before,
        "held: nothing written"
    );
    let held = r["cycle"].as_i64().expect("cycle");
    let a = lab
        .run(&["approve", &held.to_string(), "--json"])
        .await
        .json();
    assert_eq!(a["counts"]["written"], 1, "{a}");
    assert!(members(&lab, "dl-all").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_5000_member_group_changes_by_single_values() {
    let lab = lab(5000, &format!("{WRITEBACK}threshold = 100000\n")).await;
    sync(&lab, &[]).await;
    let before = members(&lab, "dl-big").await;
    assert_eq!(before.len(), 5000);
    // An on-premises-only member: a replace with the cloud's list would drop it.
    let onprem = add_onprem_member(&lab, "svc-big", "dl-big").await;
    // Ten leave in the cloud.
    let leaving: Vec<Uuid> = (1..=10)
        .map(|i| mailbox_guid(&lab, &format!("mbx{i:05}")))
        .collect();
    set_cloud_members(&lab, "dl-big", |m| {
        for g in &leaving {
            m.remove(g);
        }
    });
    let r = sync(&lab, &["--full"]).await;
    assert_eq!(r["counts"]["written"], 1, "{r}");
    assert_eq!(r["removing"], 10, "each removed member counts: {r}");
    let after = members(&lab, "dl-big").await;
    assert_eq!(after.len(), 4991, "5,000 − 10 + the on-premises member");
    assert!(after.contains(&onprem.to_lowercase()));
    for i in 1..=10 {
        assert!(!after.contains(&user_dn(i).to_lowercase()), "mbx{i:05}");
    }
    assert!(after.contains(&user_dn(11).to_lowercase()));
}
