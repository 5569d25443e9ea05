//! Groups and mail contacts written back (issue 17, item 2), end to end on the lab DC's
//! template (OU=Groups: sg-finance, dl-sales, dl-all; OU=Contacts: three mail contacts) and
//! exo-sim over HTTP: an administrator changes a distribution list and a contact through the
//! emulator's control API, `exo-writeback sync` writes the change to AD, `undo` restores the
//! group exactly; an on-premises edit of a group's written attribute is reported, then
//! corrected; with the profile off nothing of a group is touched; a user holding a group's
//! `Group_<id>` key on their own account receives none of its values.

use std::collections::BTreeMap;

use exo_writeback_ad::SearchScope;
use exo_writeback_core::directory::{AttrChange, AttrValue, DirectoryObject, ModOp, ObjectModify};
use serde_json::{Value, json};

use crate::harness::{Lab, dn, texts};

const PROFILES: &str = "profiles = [\"cloud-managed-groups\", \"cloud-managed-contacts\"]\n\
                        assume_cloud_managed_recipients = true";

/// The attributes the group profile writes, as `undo` must restore them.
const GROUP_ATTRIBUTES: [&str; 5] = [
    "mail",
    "mailNickname",
    "proxyAddresses",
    "extensionAttribute1",
    "msExchHideFromAddressLists",
];

fn group_dn(lab: &Lab, cn: &str) -> String {
    format!("CN={cn},OU=Groups,{}", lab.dc.base_dn)
}

fn contact_dn(lab: &Lab, cn: &str) -> String {
    format!("CN={cn},OU=Contacts,{}", lab.dc.base_dn)
}

async fn read(lab: &Lab, dn: &str) -> DirectoryObject {
    lab.ad
        .read_by_dn(dn, &["*"])
        .await
        .expect("read")
        .expect("object exists")
}

fn values(obj: &DirectoryObject) -> BTreeMap<&'static str, Vec<String>> {
    GROUP_ATTRIBUTES
        .iter()
        .map(|a| (*a, texts(obj, a)))
        .collect()
}

/// One control API call on the emulator; the answer's status and body.
async fn control(lab: &Lab, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .request(method, format!("{}/_sim/{path}", lab.sim.base_url()))
        .json(&body)
        .send()
        .await
        .expect("control API");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Exchange Online's side of the lab's groups and contacts, directory-synced, as an
/// administrator would find them after the SOA conversion: created over the control API.
async fn seed_cloud(lab: &Lab) -> String {
    let (s, dl) = control(
        lab,
        reqwest::Method::POST,
        "groups",
        json!({
            "Alias": "dl-sales",
            "DisplayName": "Sales",
            "EmailAddresses": ["SMTP:dl-sales@contoso.example", "smtp:sales@contoso.example"],
            "CustomAttribute1": "Sales",
            "IsDirSynced": true,
        }),
    )
    .await;
    assert_eq!(s, 201, "{dl}");
    let (s, sg) = control(
        lab,
        reqwest::Method::POST,
        "groups",
        json!({
            "Alias": "sg-finance",
            "RecipientTypeDetails": "MailUniversalSecurityGroup",
            "EmailAddresses": ["SMTP:sg-finance@contoso.example"],
            "CustomAttribute1": "Finance",
            "IsDirSynced": true,
        }),
    )
    .await;
    assert_eq!(s, 201, "{sg}");
    let (s, ct) = control(
        lab,
        reqwest::Method::POST,
        "contacts",
        json!({
            "Alias": "ct-partner-a",
            "ExternalEmailAddress": "ann.partner@fabrikam.example",
            "IsDirSynced": true,
        }),
    )
    .await;
    assert_eq!(s, 201, "{ct}");
    dl["ExternalDirectoryObjectId"]
        .as_str()
        .expect("the DL's id")
        .to_string()
}

async fn sync(lab: &Lab, args: &[&str]) -> Value {
    let mut all = vec!["sync", "--json"];
    all.extend_from_slice(args);
    let r = lab.run(&all).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    r.json()
}

/// The log entries of `cycle` (all of them, in sync too), as JSON.
async fn entries(lab: &Lab, cycle: &Value) -> Vec<Value> {
    lab.log_lines(&["--all", "--cycle", &cycle.to_string()])
        .await
}

async fn edit_on_premises(lab: &Lab, dn: &str, attribute: &str, value: &str) {
    lab.ad
        .modify(&ObjectModify {
            dn: dn.to_string(),
            changes: vec![AttrChange {
                op: ModOp::Replace,
                attribute: attribute.into(),
                values: vec![AttrValue::Text(value.into())],
            }],
        })
        .await
        .expect("an administrator edits the attribute on-premises");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloud_change_to_a_dl_and_a_contact_reaches_ad_and_undo_restores_the_group() {
    let lab = Lab::start(3).await;
    lab.write_config("", PROFILES);
    seed_cloud(&lab).await;
    let dl = group_dn(&lab, "dl-sales");
    let contact = contact_dn(&lab, "ct-partner-a");

    let first = sync(&lab, &[]).await;
    assert_eq!(first["counts"]["failed"], 0, "{first}");
    let logged = entries(&lab, &first["cycle"]).await;
    let dl_entry = logged
        .iter()
        .find(|e| e["target"]["dn"].as_str() == Some(dl.as_str()))
        .unwrap_or_else(|| panic!("dl-sales matched: {logged:?}"));
    assert_eq!(dl_entry["source"]["kind"], "group", "{dl_entry}");
    assert!(
        logged
            .iter()
            .any(|e| e["target"]["dn"].as_str() == Some(contact.as_str())
                && e["source"]["kind"] == "contact"),
        "{logged:?}"
    );
    assert!(
        !logged.iter().any(|e| e["source"]["kind"].is_null()),
        "the group profiles read no mailbox: {logged:?}"
    );
    let before = values(&read(&lab, &dl).await);

    // An administrator renames the DL (its alias drives the new primary address), changes a
    // custom attribute and hides it; the contact's mail now goes elsewhere.
    let (s, g) = control(
        &lab,
        reqwest::Method::PATCH,
        "groups/dl-sales",
        json!({
            "Alias": "sales-team",
            "PrimarySmtpAddress": "sales-team@contoso.example",
            "CustomAttribute1": "Sales EMEA",
            "HiddenFromAddressListsEnabled": true,
        }),
    )
    .await;
    assert_eq!(s, 200, "{g}");
    let (s, c) = control(
        &lab,
        reqwest::Method::PATCH,
        "contacts/ct-partner-a",
        json!({ "ExternalEmailAddress": "ann@tailspin.example" }),
    )
    .await;
    assert_eq!(s, 200, "{c}");

    let delta = sync(&lab, &[]).await;
    assert_eq!(delta["kind"], "Delta", "{delta}");
    assert_eq!(delta["counts"]["written"], 2, "{delta}");
    let after = read(&lab, &dl).await;
    assert_eq!(texts(&after, "mail"), ["sales-team@contoso.example"]);
    assert_eq!(texts(&after, "mailNickname"), ["sales-team"]);
    assert_eq!(
        texts(&after, "proxyAddresses"),
        [
            "SMTP:sales-team@contoso.example",
            "smtp:dl-sales@contoso.example",
            "smtp:sales@contoso.example"
        ]
    );
    assert_eq!(texts(&after, "extensionAttribute1"), ["Sales EMEA"]);
    assert_eq!(texts(&after, "msExchHideFromAddressLists"), ["TRUE"]);
    let ct = read(&lab, &contact).await;
    assert_eq!(texts(&ct, "targetAddress"), ["SMTP:ann@tailspin.example"]);
    assert_eq!(
        texts(&ct, "proxyAddresses"),
        [
            "SMTP:ann@tailspin.example",
            "smtp:ann.partner@fabrikam.example"
        ]
    );
    assert_eq!(texts(&ct, "mail"), ["ann@tailspin.example"]);
    // The other group was not changed in the cloud: left as it is.
    let logged = entries(&lab, &delta["cycle"]).await;
    assert!(
        !logged.iter().any(|e| e["target"]["dn"].as_str()
            == Some(group_dn(&lab, "sg-finance").as_str())
            && e["action"] == "Update"),
        "{logged:?}"
    );

    // undo restores the group exactly.
    let u = lab.run(&["undo", "--object", &dl]).await;
    assert_eq!(u.code, 0, "{}{}", u.stdout, u.stderr);
    assert_eq!(values(&read(&lab, &dl).await), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_premises_edit_of_a_group_is_reported_then_corrected() {
    let lab = Lab::start(3).await;
    lab.write_config("", PROFILES);
    seed_cloud(&lab).await;
    let dl = group_dn(&lab, "dl-sales");
    sync(&lab, &[]).await;
    let (s, g) = control(
        &lab,
        reqwest::Method::PATCH,
        "groups/dl-sales",
        json!({ "CustomAttribute1": "Sales EMEA" }),
    )
    .await;
    assert_eq!(s, 200, "{g}");
    let r = sync(&lab, &[]).await;
    assert_eq!(r["counts"]["written"], 1, "{r}");

    edit_on_premises(&lab, &dl, "extensionAttribute1", "edited on-premises").await;
    let r = sync(&lab, &["--full"]).await;
    assert_eq!(r["counts"]["written"], 0, "{r}");
    assert_eq!(r["counts"]["drift_detected"], 1, "{r}");
    assert_eq!(
        texts(&read(&lab, &dl).await, "extensionAttribute1"),
        ["edited on-premises"],
        "report mode writes nothing"
    );
    let logged = entries(&lab, &r["cycle"]).await;
    let drift = logged
        .iter()
        .find(|e| e["reason"]["code"] == "DriftDetected")
        .unwrap_or_else(|| panic!("{logged:?}"));
    assert_eq!(drift["target"]["dn"].as_str(), Some(dl.as_str()), "{drift}");
    assert_eq!(drift["source"]["kind"], "group", "{drift}");

    lab.write_config("", &format!("{PROFILES}\ndrift = \"correct\""));
    let r = sync(&lab, &["--full"]).await;
    assert_eq!(r["counts"]["drift_corrected"], 1, "{r}");
    assert_eq!(
        texts(&read(&lab, &dl).await, "extensionAttribute1"),
        ["Sales EMEA"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_wait_for_their_profile_and_a_users_group_key_steers_nothing() {
    let lab = Lab::start(3).await;
    let dl_id = seed_cloud(&lab).await;
    let dl = group_dn(&lab, "dl-sales");
    let (s, g) = control(
        &lab,
        reqwest::Method::PATCH,
        "groups/dl-sales",
        json!({ "CustomAttribute1": "Sales EMEA", "CustomAttribute2": "steered?" }),
    )
    .await;
    assert_eq!(s, 200, "{g}");
    // A user writes the DL's key on their own account (every user may:
    // msDS-ExternalDirectoryObjectId is in the Personal-Information property set).
    let spoofer = dn(1);
    edit_on_premises(
        &lab,
        &spoofer,
        "msDS-ExternalDirectoryObjectId",
        &format!("Group_{dl_id}"),
    )
    .await;

    // --- the default profile (mailboxes only): the DL is not touched ----------------------
    let group_before = read(&lab, &dl).await;
    let r = sync(&lab, &[]).await;
    assert_eq!(read(&lab, &dl).await, group_before, "{r}");
    let logged = entries(&lab, &r["cycle"]).await;
    assert!(
        logged.iter().all(|e| e["source"]["kind"].is_null()),
        "only mailboxes: {logged:?}"
    );
    let user_before = lab.user(1).await;

    // --- the groups profile: the DL's own object receives its values, the spoofer none ----
    lab.write_config(
        "",
        "profiles = [\"cloud-managed\", \"cloud-managed-groups\"]\n\
         assume_cloud_managed_recipients = true",
    );
    let r = sync(&lab, &["--full"]).await;
    let after = read(&lab, &dl).await;
    assert_eq!(texts(&after, "extensionAttribute1"), ["Sales EMEA"], "{r}");
    assert_eq!(texts(&after, "extensionAttribute2"), ["steered?"]);
    let user_after = lab.user(1).await;
    for attribute in [
        "extensionAttribute1",
        "extensionAttribute2",
        "mail",
        "proxyAddresses",
    ] {
        assert_eq!(
            texts(&user_after, attribute),
            texts(&user_before, attribute),
            "the spoofer received the DL's {attribute}"
        );
    }
    let logged = entries(&lab, &r["cycle"]).await;
    let event = logged
        .iter()
        .find(|e| e["target"]["dn"].as_str() == Some(dl.as_str()))
        .unwrap_or_else(|| panic!("{logged:?}"));
    assert_eq!(event["reason"]["code"], "SpoofedMatchKey", "{event}");
    let message = event["reason"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&spoofer), "{message}");

    // A group whose address no group in AD holds is not followed to the key's holder.
    let (s, ghost) = control(
        &lab,
        reqwest::Method::POST,
        "groups",
        json!({
            "Alias": "dl-ghost",
            "EmailAddresses": ["SMTP:dl-ghost@contoso.example"],
            "CustomAttribute3": "ghost",
            "IsDirSynced": true,
        }),
    )
    .await;
    assert_eq!(s, 201, "{ghost}");
    let ghost_id = ghost["ExternalDirectoryObjectId"].as_str().expect("id");
    edit_on_premises(
        &lab,
        &spoofer,
        "msDS-ExternalDirectoryObjectId",
        &format!("Group_{ghost_id}"),
    )
    .await;
    // The cycle ends with one failure: the ghost group's key not followed.
    let r = lab.run(&["sync", "--json", "--full"]).await.json();
    assert_eq!(r["counts"]["failed"], 1, "{r}");
    assert!(
        texts(&lab.user(1).await, "extensionAttribute3").is_empty(),
        "the key alone is not followed: {r}"
    );
    let logged = entries(&lab, &r["cycle"]).await;
    assert!(
        logged
            .iter()
            .any(|e| e["reason"]["code"] == "UncorroboratedMatchKey"
                && e["source"]["kind"] == "group"),
        "{logged:?}"
    );
    // The lab's search scope holds the groups: checked, not assumed.
    let groups = lab
        .ad
        .search(
            &lab.dc.base_dn,
            SearchScope::Subtree,
            "(objectClass=group)",
            &["cn"],
        )
        .await
        .expect("search");
    assert!(groups.iter().any(|g| g.dn == dl));
}
