//! Match-key spoofing (issue 12, item 5), end to end on the real lab: on Windows
//! msDS-ExternalDirectoryObjectId is in the Personal-Information property set, which SELF may
//! write (the lab schema gives it the same attributeSecurityGUID), so any user can put
//! `User_<someone else's id>` on their own account. The attacker here is an ordinary mailbox
//! user who binds with their own password and writes the victim's id on their own object over
//! LDAP; the agent must keep matching the victim by its immutable anchor, leave the attacker's
//! object with the attacker's own values, and report the attempt as a security event.

use exo_writeback_ad::{AdConfig, AdConnection};
use exo_writeback_core::directory::{AttrChange, AttrValue, ModOp, ObjectModify};
use exo_writeback_core::provisioning::LogStatus;
use exo_writeback_core::secret::Secret;
use exo_writeback_store_sqlite::prelude::*;

use crate::harness::{DOMAIN, Lab, assert_matches_cloud, cn, dn, edoid, texts};

const VICTIM: u32 = 1;
const ATTACKER: u32 = 2;
const USERS: u32 = 4;

/// Gives lab user `i` a password and enables it (as an administrator does for a new
/// employee); returns the password.
async fn enable_user(lab: &Lab, i: u32) -> String {
    let password = format!("User-{}-Passw0rd", uuid::Uuid::new_v4().simple());
    let quoted: Vec<u8> = format!("\"{password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    lab.ad
        .modify(&ObjectModify {
            dn: dn(i),
            changes: vec![
                AttrChange {
                    op: ModOp::Replace,
                    attribute: "unicodePwd".into(),
                    values: vec![AttrValue::Bytes(quoted)],
                },
                AttrChange {
                    op: ModOp::Replace,
                    attribute: "userAccountControl".into(),
                    values: vec![AttrValue::Text("512".into())],
                },
            ],
        })
        .await
        .expect("set the user's password and enable it");
    password
}

/// Binds as lab user `i` with its own password.
async fn bind_as(lab: &Lab, i: u32, password: &str) -> AdConnection {
    let mut config = AdConfig::new(lab.dc.url.clone(), dn(i));
    config.ca_file = Some(lab.dc.ca_file.clone());
    config.base_dn = Some(lab.dc.base_dn.clone());
    let password_file = lab.dir.path().join(format!("{}-password", cn(i)));
    std::fs::write(&password_file, password).expect("password file");
    config.password_file = Some(password_file);
    AdConnection::connect(&config, Secret::new(password.to_string()))
        .await
        .expect("the user binds with its own password")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_writes_another_users_external_directory_object_id_on_itself_gets_nothing() {
    let lab = Lab::start(USERS).await;
    let before = lab.all_users().await;

    // The attack: an ordinary user writes the victim's key on their own object, with their own
    // rights (SELF, Personal-Information), through LDAP.
    let password = enable_user(&lab, ATTACKER).await;
    let attacker = bind_as(&lab, ATTACKER, &password).await;
    let spoofed = format!("User_{}", edoid(VICTIM));
    attacker
        .modify(&ObjectModify {
            dn: dn(ATTACKER),
            changes: vec![AttrChange {
                op: ModOp::Replace,
                attribute: "msDS-ExternalDirectoryObjectId".into(),
                values: vec![AttrValue::Text(spoofed.clone())],
            }],
        })
        .await
        .expect("a user may write msDS-ExternalDirectoryObjectId on itself");
    assert_eq!(
        texts(&lab.user(ATTACKER).await, "msDS-ExternalDirectoryObjectId"),
        std::slice::from_ref(&spoofed)
    );
    // And may not write it on the victim (so the victim cannot be made to look like a
    // duplicate by writing on it).
    assert!(
        attacker
            .modify(&ObjectModify {
                dn: dn(VICTIM),
                changes: vec![AttrChange {
                    op: ModOp::Replace,
                    attribute: "msDS-ExternalDirectoryObjectId".into(),
                    values: vec![AttrValue::Text(format!("User_{}", edoid(ATTACKER)))],
                }],
            })
            .await
            .is_err()
    );

    // First cycle, then the victim's addresses change and a delta cycle runs: the stage where,
    // with the spoofable key first, the attacker's object received the victim's addresses.
    let first = lab.run(&["sync", "--json"]).await;
    let first_report = first.json();
    lab.update(VICTIM, |m| {
        m.email_addresses = vec![
            format!("SMTP:ada.renamed@{DOMAIN}"),
            format!("smtp:{}.alias@{DOMAIN}", cn(VICTIM)),
        ];
        m.windows_email_address = format!("ada.renamed@{DOMAIN}");
        m.set_custom_attribute(3, "victim only");
    });
    let second = lab.run(&["sync", "--json"]).await;

    // The attacker's object holds the attacker's own values, never the victim's.
    let after = lab.all_users().await;
    let attacker_obj = &after[&ATTACKER];
    assert_matches_cloud(
        ATTACKER,
        attacker_obj,
        &lab.mailbox(ATTACKER),
        &before[&ATTACKER],
    );
    for (attr, victim_value) in [
        ("mail", format!("ada.renamed@{DOMAIN}")),
        ("extensionAttribute3", "victim only".into()),
        ("extensionAttribute1", format!("Dept {VICTIM}")),
    ] {
        assert!(
            !texts(attacker_obj, attr).contains(&victim_value),
            "the attacker's object received the victim's {attr}: {:?}\nfirst cycle: {}\nsecond: {}",
            texts(attacker_obj, attr),
            first.stdout,
            second.stdout
        );
    }
    // The key the attacker wrote is theirs to keep; the agent does not write it.
    assert_eq!(
        texts(attacker_obj, "msDS-ExternalDirectoryObjectId"),
        [spoofed]
    );
    // The victim is written correctly, in both cycles.
    assert_matches_cloud(
        VICTIM,
        &after[&VICTIM],
        &lab.mailbox(VICTIM),
        &before[&VICTIM],
    );
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert_eq!(first_report["counts"]["failed"], 0, "{first_report}");
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);

    // The join of the victim's mailbox is the victim's object.
    let store = lab.store();
    let join = store
        .join(&edoid(VICTIM))
        .expect("read the join")
        .expect("the victim is joined");
    assert_eq!(join.object_guid, before[&VICTIM].object_guid);

    // The security event: its own outcome code in the provisioning log, naming the attacker's
    // object and the key, on the victim's entry (which is still written).
    let logs = lab
        .run(&["logs", "--identity", &edoid(VICTIM), "--format", "json"])
        .await;
    let events: Vec<serde_json::Value> = logs
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .filter(|e: &serde_json::Value| e["reason"]["code"] == "SpoofedMatchKey")
        .collect();
    assert_eq!(events.len(), 1, "{}", logs.stdout);
    let event = &events[0];
    assert_eq!(event["status"], LogStatus::Warning.as_str(), "{event}");
    assert_eq!(event["action"], "Update", "{event}");
    let message = event["reason"]["message"].as_str().unwrap_or_default();
    for needed in [
        dn(ATTACKER).as_str(),
        "msDS-ExternalDirectoryObjectId",
        "not followed",
        "Personal-Information",
    ] {
        assert!(
            message.to_lowercase().contains(&needed.to_lowercase()),
            "{needed:?} in {message}"
        );
    }
    assert!(
        event["target"]["dn"]
            .as_str()
            .is_some_and(|d| d.eq_ignore_ascii_case(&dn(VICTIM))),
        "{event}"
    );
    let table = lab.run(&["logs", "--status", "warning"]).await;
    assert!(table.stdout.contains("SpoofedMatchKey"), "{}", table.stdout);

    // Counted by the cycle and shown by `status`.
    assert_eq!(
        first_report["counts"]["security_events"], 1,
        "{first_report}"
    );
    let status = lab.run(&["status"]).await;
    assert!(
        status.stdout.contains("security:") && status.stdout.contains("SpoofedMatchKey"),
        "{}",
        status.stdout
    );
    let status = lab.run(&["status", "--json"]).await.json();
    assert_eq!(status["security_events"]["count"], 1, "{status}");
}
