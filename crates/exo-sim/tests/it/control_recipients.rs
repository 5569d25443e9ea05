//! The control API's groups and contacts: created, changed and given members over HTTP, each
//! change read back through Get-DistributionGroup / Get-MailContact /
//! Get-DistributionGroupMember, every refusal storing nothing.

use serde_json::{Value, json};

use crate::common::*;

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// How many members Get-DistributionGroupMember lists for `group`.
async fn member_count(sim: &Sim, token: &str, group: &str) -> usize {
    let (s, members) = sim
        .invoke(
            token,
            "Get-DistributionGroupMember",
            json!({ "Identity": group }),
        )
        .await;
    assert_eq!(s, 200, "{members}");
    members["value"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn groups_and_contacts_change_over_http_as_an_administrator_changes_them() {
    let sim = start(2).await;
    let base = sim.base();
    let http = reqwest::Client::new();
    let mailbox = {
        let (s, page) = send(http.get(format!("{base}/_sim/mailboxes?limit=1"))).await;
        assert_eq!(s, 200);
        page["mailboxes"][0]["PrimarySmtpAddress"]
            .as_str()
            .expect("a seeded mailbox")
            .to_string()
    };

    let (s, g) = send(http.post(format!("{base}/_sim/groups")).json(&json!({
        "EmailAddresses": ["SMTP:dl-sales@contoso.example", "smtp:sales@contoso.example"],
        "Alias": "dl-sales",
        "IsDirSynced": true,
        "CustomAttribute1": "Sales",
    })))
    .await;
    assert_eq!(s, 201, "{g}");
    assert_eq!(g["RecipientTypeDetails"], "MailUniversalDistributionGroup");
    // Another recipient's address is refused.
    let (s, _) = send(
        http.post(format!("{base}/_sim/groups"))
            .json(&json!({ "EmailAddresses": ["SMTP:sales@contoso.example"] })),
    )
    .await;
    assert_eq!(s, 409);

    // The alias and a new primary: the old primary stays as a secondary address.
    let (s, g) = send(
        http.patch(format!("{base}/_sim/groups/dl-sales"))
            .json(&json!({
                "Alias": "sales-team",
                "PrimarySmtpAddress": "sales-team@contoso.example",
                "CustomAttribute1": "Sales EMEA",
                "HiddenFromAddressListsEnabled": true,
            })),
    )
    .await;
    assert_eq!(s, 200, "{g}");
    assert_eq!(
        g["EmailAddresses"],
        json!([
            "SMTP:sales-team@contoso.example",
            "smtp:dl-sales@contoso.example",
            "smtp:sales@contoso.example"
        ])
    );
    // Refused changes store nothing.
    for bad in [
        json!({ "ExternalEmailAddress": "x@fabrikam.example" }),
        json!({ "RecipientTypeDetails": "MailUniversalSecurityGroup" }),
        json!({ "Alias": "" }),
        json!({ "NoSuchProperty": 1 }),
    ] {
        let (s, body) = send(
            http.patch(format!("{base}/_sim/groups/sales-team"))
                .json(&bad),
        )
        .await;
        assert_eq!(s, 400, "{bad} → {body}");
    }
    let (s, member) = send(
        http.post(format!("{base}/_sim/groups/sales-team/members"))
            .json(&json!({ "Member": mailbox })),
    )
    .await;
    assert_eq!(s, 200, "{member}");
    let (s, _) = send(
        http.post(format!("{base}/_sim/groups/sales-team/members"))
            .json(&json!({ "Member": "nobody@contoso.example" })),
    )
    .await;
    assert_eq!(s, 404);

    // What Exchange Online's cmdlets now list.
    let token = sim.token().await;
    let (s, listed) = sim
        .invoke(
            &token,
            "Get-DistributionGroup",
            json!({"Identity": "sales-team"}),
        )
        .await;
    assert_eq!(s, 200, "{listed}");
    let record = &listed["value"][0];
    assert_eq!(record["Alias"], "sales-team");
    assert_eq!(record["PrimarySmtpAddress"], "sales-team@contoso.example");
    assert_eq!(record["CustomAttribute1"], "Sales EMEA");
    assert_eq!(record["HiddenFromAddressListsEnabled"], true);
    assert_eq!(member_count(&sim, &token, "sales-team").await, 1);
    let (s, _) =
        send(http.delete(format!("{base}/_sim/groups/sales-team/members/{mailbox}"))).await;
    assert_eq!(s, 200);
    assert_eq!(member_count(&sim, &token, "sales-team").await, 0);

    // A contact: its external address becomes its primary SMTP address.
    let (s, c) = send(http.post(format!("{base}/_sim/contacts")).json(&json!({
        "ExternalEmailAddress": "ann@fabrikam.example",
        "IsDirSynced": true,
    })))
    .await;
    assert_eq!(s, 201, "{c}");
    let (s, c) = send(
        http.patch(format!("{base}/_sim/contacts/ann@fabrikam.example"))
            .json(&json!({ "ExternalEmailAddress": "SMTP:ann@tailspin.example" })),
    )
    .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["ExternalEmailAddress"], "SMTP:ann@tailspin.example");
    let (_, listed) = sim
        .invoke(
            &token,
            "Get-MailContact",
            json!({"Identity": "ann@tailspin.example"}),
        )
        .await;
    let record = &listed["value"][0];
    assert_eq!(record["ExternalEmailAddress"], "SMTP:ann@tailspin.example");
    assert_eq!(record["PrimarySmtpAddress"], "ann@tailspin.example");
    let (s, _) = send(
        http.patch(format!("{base}/_sim/contacts/ann@tailspin.example"))
            .json(&json!({ "ExternalEmailAddress": "not an address" })),
    )
    .await;
    assert_eq!(s, 400);
}
