//! Recipient-type consistency (issue 12, item 8), end to end on the lab DC: a remote mailbox
//! converted in Exchange Online (Set-Mailbox -Type) gets its three on-premises type attributes
//! written together — msExchRemoteRecipientType keeping its migrated/provisioned and archive
//! bits — and its targetAddress checked, never written.

use exo_sim::RecipientKind;
use exo_writeback_core::directory::{AttrChange, AttrValue, ModOp, ObjectModify};

use crate::harness::{Lab, dn, edoid, texts};

const MIGRATED: u32 = 1;
const PROVISIONED_NO_ROUTING: u32 = 2;

fn text(s: &str) -> Vec<AttrValue> {
    vec![AttrValue::Text(s.into())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_change_in_exchange_online_writes_the_three_type_attributes_together() {
    let lab = Lab::start(2).await;
    // Both are remote user mailboxes on-premises: mbx00001 migrated with an archive (6) and its
    // routing address; mbx00002 provisioned (1) without a targetAddress.
    for (i, remote, target) in [
        (
            MIGRATED,
            "6",
            Some("SMTP:mbx00001@contoso.mail.onmicrosoft.com"),
        ),
        (PROVISIONED_NO_ROUTING, "1", None),
    ] {
        let mut changes = vec![
            AttrChange {
                op: ModOp::Replace,
                attribute: "msExchRecipientTypeDetails".into(),
                values: text("2147483648"),
            },
            AttrChange {
                op: ModOp::Replace,
                attribute: "msExchRecipientDisplayType".into(),
                values: text("-2147483642"),
            },
            AttrChange {
                op: ModOp::Replace,
                attribute: "msExchRemoteRecipientType".into(),
                values: text(remote),
            },
        ];
        if let Some(t) = target {
            changes.push(AttrChange {
                op: ModOp::Replace,
                attribute: "targetAddress".into(),
                values: text(t),
            });
        }
        lab.ad
            .modify(&ObjectModify { dn: dn(i), changes })
            .await
            .expect("make the user a remote mailbox");
        lab.update(i, |m| {
            m.email_addresses
                .push(format!("smtp:mbx{i:05}@contoso.mail.onmicrosoft.com"));
        });
    }
    let first = lab.run(&["sync", "--json"]).await;
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);

    // Exchange Online converts both to shared mailboxes.
    for i in [MIGRATED, PROVISIONED_NO_ROUTING] {
        lab.update(i, |m| m.kind = RecipientKind::Shared);
    }
    let r = lab.run(&["sync", "--json"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.json()["counts"]["written"], 2, "{}", r.stdout);

    let migrated = lab.user(MIGRATED).await;
    assert_eq!(
        texts(&migrated, "msExchRecipientTypeDetails"),
        ["34359738368"]
    );
    assert_eq!(
        texts(&migrated, "msExchRecipientDisplayType"),
        ["-2147483642"]
    );
    // 6 = Migrated | ProvisionArchive, plus SharedMailbox (96): 102.
    assert_eq!(texts(&migrated, "msExchRemoteRecipientType"), ["102"]);
    let provisioned = lab.user(PROVISIONED_NO_ROUTING).await;
    assert_eq!(texts(&provisioned, "msExchRemoteRecipientType"), ["97"]);
    assert!(
        texts(&provisioned, "targetAddress").is_empty(),
        "targetAddress is never invented"
    );

    // The migrated one routes correctly: a plain success. The other is written and warned.
    let entries = |i: u32| {
        let lab = &lab;
        async move {
            lab.run(&["logs", "--identity", &edoid(i), "--format", "json"])
                .await
                .stdout
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON"))
                .collect::<Vec<_>>()
        }
    };
    let latest = &entries(MIGRATED).await[0];
    assert_eq!(latest["status"], "success", "{latest}");
    let latest = &entries(PROVISIONED_NO_ROUTING).await[0];
    assert_eq!(latest["status"], "warning", "{latest}");
    assert_eq!(
        latest["reason"]["code"], "TargetAddressUnexpected",
        "{latest}"
    );
    let message = latest["reason"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("has no targetAddress")
            && message.contains("SMTP:mbx00002@contoso.mail.onmicrosoft.com"),
        "{message}"
    );
    let modified: Vec<&str> = latest["modified"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["attribute"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        modified,
        ["msExchRecipientTypeDetails", "msExchRemoteRecipientType"],
        "one modify; DisplayType is the same for user and shared"
    );

    // And back to a user mailbox: the type bits go, the rest stays.
    lab.update(MIGRATED, |m| m.kind = RecipientKind::User);
    let r = lab.run(&["sync", "--json"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        texts(&lab.user(MIGRATED).await, "msExchRemoteRecipientType"),
        ["6"]
    );
}
