use serde_json::{Value, json};

use crate::common::*;

async fn record(sim: &Sim, token: &str, id: &str) -> Value {
    let (status, v) = sim
        .invoke(token, "Get-Mailbox", json!({"Identity": id}))
        .await;
    assert_eq!(status, 200, "{v}");
    v["value"][0].clone()
}

#[tokio::test]
async fn each_set_mailbox_variant_changes_the_mailbox_and_when_changed() {
    let sim = start(20).await;
    let state = sim.handle.state();
    let token = sim.token().await;
    let m = state
        .mailboxes_after(None, 20)
        .into_iter()
        .find(|m| m.kind == exo_sim::RecipientKind::User && m.is_exchange_cloud_managed)
        .unwrap();
    let id = m.external_directory_object_id.clone();
    type Check = Box<dyn Fn(&Value) -> bool>;
    let cases: Vec<(Value, Check)> = vec![
        (
            json!({"CustomAttribute5": "Finance"}),
            Box::new(|r: &Value| r["CustomAttribute5"] == "Finance"),
        ),
        (
            json!({"CustomAttribute5": null}),
            Box::new(|r: &Value| r["CustomAttribute5"] == ""),
        ),
        (
            json!({"ExtensionCustomAttribute2": ["a", "b"]}),
            Box::new(|r: &Value| r["ExtensionCustomAttribute2"] == json!(["a", "b"])),
        ),
        (
            json!({"ExtensionCustomAttribute2": {"@odata.type": "#Exchange.GenericHashTable", "Add": ["c"], "Remove": ["a"]}}),
            Box::new(|r: &Value| r["ExtensionCustomAttribute2"] == json!(["b", "c"])),
        ),
        (
            json!({"HiddenFromAddressListsEnabled": true}),
            Box::new(|r: &Value| r["HiddenFromAddressListsEnabled"] == true),
        ),
        (
            json!({"Type": "Shared"}),
            Box::new(|r: &Value| {
                r["RecipientTypeDetails"] == "SharedMailbox" && r["IsShared"] == true
            }),
        ),
        (
            json!({"Type": "Room"}),
            Box::new(|r: &Value| {
                r["RecipientTypeDetails"] == "RoomMailbox" && r["ResourceType"] == "Room"
            }),
        ),
        (
            json!({"Type": "Regular"}),
            Box::new(|r: &Value| r["RecipientTypeDetails"] == "UserMailbox"),
        ),
        (
            json!({"EmailAddresses": {"@odata.type": "#Exchange.GenericHashTable", "Add": ["smtp:extra@contoso.com", "X500:/o=Old/cn=x"], "Remove": []}}),
            Box::new(|r: &Value| {
                let a = r["EmailAddresses"].as_array().unwrap();
                a.contains(&json!("smtp:extra@contoso.com"))
                    && a.contains(&json!("X500:/o=Old/cn=x"))
            }),
        ),
        (
            json!({"EmailAddresses": {"@odata.type": "#Exchange.GenericHashTable", "Remove": ["smtp:extra@contoso.com"]}}),
            Box::new(|r: &Value| {
                !r["EmailAddresses"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("smtp:extra@contoso.com"))
            }),
        ),
        (
            json!({"WindowsEmailAddress": "new.primary@contoso.com"}),
            Box::new(|r: &Value| {
                r["WindowsEmailAddress"] == "new.primary@contoso.com"
                    && r["PrimarySmtpAddress"] == "new.primary@contoso.com"
                    && r["EmailAddresses"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|a| a.as_str().unwrap().starts_with("SMTP:"))
                        .count()
                        == 1
            }),
        ),
        (
            json!({"EmailAddresses": ["SMTP:only@contoso.com", "SIP:only@contoso.com"]}),
            Box::new(|r: &Value| {
                r["EmailAddresses"] == json!(["SMTP:only@contoso.com", "SIP:only@contoso.com"])
                    && r["PrimarySmtpAddress"] == "only@contoso.com"
                    && r["WindowsEmailAddress"] == "only@contoso.com"
            }),
        ),
    ];
    let mut last_changed = record(&sim, &token, &id).await["WhenChangedUTC"]
        .as_str()
        .unwrap()
        .to_string();
    for (params, check) in cases {
        state.advance_clock(10);
        let mut p = params.as_object().unwrap().clone();
        p.insert("Identity".into(), json!(id));
        let (status, v) = sim.invoke(&token, "Set-Mailbox", Value::Object(p)).await;
        assert_eq!(status, 200, "{params}: {v}");
        assert_eq!(v["value"], json!([]));
        assert_eq!(v["@adminapi.warnings"], json!([]), "{params}");
        let r = record(&sim, &token, &id).await;
        assert!(check(&r), "{params}: {r}");
        let changed = r["WhenChangedUTC"].as_str().unwrap().to_string();
        assert!(
            changed > last_changed,
            "{params}: {changed} after {last_changed}"
        );
        last_changed = changed.clone();
        // the change is visible to change polling
        let (status, v) = sim
            .invoke(&token, "Get-Mailbox", json!({"Filter": format!("WhenChangedUTC -ge '{}'", en_us(changed.parse().unwrap())), "ResultSize": "Unlimited"}))
            .await;
        assert_eq!(status, 200);
        assert_eq!(v["value"].as_array().unwrap().len(), 1, "{params}");
    }
    // A change that changes nothing: a warning, and WhenChanged stays.
    state.advance_clock(10);
    let (status, v) = sim
        .invoke(
            &token,
            "Set-Mailbox",
            json!({"Identity": id, "HiddenFromAddressListsEnabled": true}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        v["@adminapi.warnings"][0]
            .as_str()
            .unwrap()
            .contains("no settings of")
    );
    assert_eq!(
        record(&sim, &token, &id).await["WhenChangedUTC"],
        last_changed.as_str()
    );
}

#[tokio::test]
async fn invalid_changes_are_refused_and_change_nothing() {
    let sim = start(10).await;
    let state = sim.handle.state();
    let token = sim.token().await;
    let all: Vec<_> = state
        .mailboxes_after(None, 10)
        .into_iter()
        .filter(|m| m.is_exchange_cloud_managed)
        .collect();
    let (a, b) = (&all[0], &all[1]);
    let before = state.mailbox(&a.guid.to_string()).unwrap();
    let taken = b.primary_smtp_address().to_string();
    let cases = vec![
        (
            json!({"Identity": a.guid.to_string(), "CustomAttribute1": "x", "EmailAddresses": {"Add": [format!("smtp:{taken}")]}}),
            "ProxyAddressExistsException",
        ),
        (
            json!({"Identity": a.guid.to_string(), "WindowsEmailAddress": taken.to_uppercase()}),
            "ProxyAddressExistsException",
        ),
        (
            json!({"Identity": a.guid.to_string(), "EmailAddresses": ["SMTP:a@x.com", "SMTP:b@x.com"]}),
            "multiple primary SMTP addresses",
        ),
        (
            json!({"Identity": a.guid.to_string(), "EmailAddresses": ["not an address"]}),
            "DataValidationException",
        ),
        (
            json!({"Identity": a.guid.to_string(), "HiddenFromAddressListsEnabled": "maybe"}),
            "ParameterTransformationException",
        ),
        (
            json!({"Identity": a.guid.to_string(), "Type": "Robot"}),
            "ParameterTransformationException",
        ),
        (
            json!({"Identity": a.guid.to_string(), "CustomAttribute1": 5}),
            "ParameterTransformationException",
        ),
        (
            json!({"Identity": a.guid.to_string(), "Department": "x"}),
            "AmbiguousParameterSetException",
        ),
        (
            json!({"CustomAttribute1": "x"}),
            "missing mandatory parameters: Identity",
        ),
        (
            json!({"Identity": "ghost@contoso.com", "CustomAttribute1": "x"}),
            "ManagementObjectNotFoundException",
        ),
    ];
    for (params, expect) in cases {
        let (status, v) = sim.invoke(&token, "Set-Mailbox", params.clone()).await;
        assert!(status == 400 || status == 404, "{params}: {status}");
        assert!(v.to_string().contains(expect), "{params}: {v}");
    }
    assert_eq!(state.mailbox(&a.guid.to_string()).unwrap(), before);
}

#[tokio::test]
async fn mailboxes_managed_on_premises_refuse_synced_attributes() {
    let sim = start(60).await;
    let state = sim.handle.state();
    let token = sim.token().await;
    let m = state
        .mailboxes_after(None, 60)
        .into_iter()
        .find(|m| m.is_dir_synced && !m.is_exchange_cloud_managed)
        .expect("the seed has on-premises-managed mailboxes");
    let id = m.guid.to_string();
    let (status, v) = sim
        .invoke(
            &token,
            "Set-Mailbox",
            json!({"Identity": id, "CustomAttribute1": "x"}),
        )
        .await;
    assert_eq!(status, 400);
    let detail = v["error"]["details"][0]["message"].as_str().unwrap();
    assert!(
        detail.contains("being synchronized from your on-premises organization"),
        "{detail}"
    );
    assert!(detail.contains("'CustomAttribute1'"), "{detail}");
    assert_eq!(state.mailbox(&id).unwrap(), m);
    // Type is not a synchronised attribute; making the mailbox cloud-managed unlocks the rest.
    let (status, _) = sim
        .invoke(
            &token,
            "Set-Mailbox",
            json!({"Identity": id, "IsExchangeCloudManaged": true, "CustomAttribute1": "x"}),
        )
        .await;
    assert_eq!(status, 200);
    let after = state.mailbox(&id).unwrap();
    assert!(after.is_exchange_cloud_managed);
    assert_eq!(after.custom_attribute(1), "x");
}
