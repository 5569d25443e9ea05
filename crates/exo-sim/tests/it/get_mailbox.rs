use std::collections::HashSet;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::{Value, json};

use crate::common::*;

/// An object with its keys in document order.
struct Ordered(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Ordered, A::Error> {
                let mut v = Vec::new();
                while let Some(e) = m.next_entry::<String, Value>()? {
                    v.push(e);
                }
                Ok(Ordered(v))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(serde::Deserialize)]
struct Records {
    value: Vec<Ordered>,
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../exo/tests/fixtures/exo-real/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn envelope_keys(text: &str) -> Vec<String> {
    let o: Ordered = serde_json::from_str(text).unwrap();
    o.0.into_iter().map(|(k, _)| k).collect()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_exchange_date(s: &str, z: bool) -> bool {
    if z {
        regex_like(s, "Z")
    } else {
        regex_like(s, "+00:00")
    }
}

/// `YYYY-MM-DDTHH:MM:SS.fffffff<suffix>`
fn regex_like(s: &str, suffix: &str) -> bool {
    let Some(body) = s.strip_suffix(suffix) else {
        return false;
    };
    let b = body.as_bytes();
    b.len() == 27
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && b[20..].iter().all(u8::is_ascii_digit)
}

#[tokio::test]
async fn a_record_has_the_shape_of_the_real_capture() {
    let sim = start(40).await;
    let token = sim.token().await;
    let m = sim.handle.state().mailboxes_after(None, 1).remove(0);
    let r = sim
        .invoke_at(
            &sim.invoke_url(),
            &token,
            "get-mailbox",
            json!({"Identity": m.primary_smtp_address()}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        ct.starts_with("application/json;odata.metadata=minimal"),
        "{ct}"
    );
    let text = r.text().await.unwrap();
    let real = fixture("invokecommand_get-mailbox_full-response-body_burp-vdbdx_2024-05-22.json");
    assert_eq!(envelope_keys(&text), envelope_keys(&real));
    let env: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        env["@odata.context"],
        format!(
            "{}/adminapi/beta/{TENANT}/$metadata#Collection(Exchange.GenericHashTable)",
            sim.base()
        )
    );
    assert_eq!(env["@adminapi.warnings"], json!([]));

    let ours = serde_json::from_str::<Records>(&text)
        .unwrap()
        .value
        .remove(0)
        .0;
    let theirs = serde_json::from_str::<Records>(&real)
        .unwrap()
        .value
        .remove(0)
        .0;
    let mut expected_keys: Vec<String> = Vec::new();
    for (k, _) in &theirs {
        expected_keys.push(k.clone());
        if k == "IsDirSynced" {
            expected_keys.push("IsExchangeCloudManaged".into());
        }
    }
    let our_keys: Vec<String> = ours.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(our_keys, expected_keys, "same keys in the same order");
    // Same value kinds and identical annotations, except where our mailbox legitimately
    // differs from the captured one (no forwarding address, not a resource).
    let differs: HashSet<&str> = [
        "ForwardingSmtpAddress",
        "ResourceType",
        "RoomMailboxAccountEnabled",
    ]
    .into();
    for (k, theirs_v) in &theirs {
        let ours_v = &ours.iter().find(|(o, _)| o == k).unwrap().1;
        if k.contains('@') {
            assert_eq!(ours_v, theirs_v, "annotation {k}");
        } else if !differs.contains(k.as_str()) {
            assert_eq!(
                kind(ours_v),
                kind(theirs_v),
                "{k}: ours {ours_v} theirs {theirs_v}"
            );
        }
    }
    let get = |k: &str| ours.iter().find(|(o, _)| o == k).unwrap().1.clone();
    assert!(is_exchange_date(
        get("WhenChangedUTC").as_str().unwrap(),
        true
    ));
    assert!(is_exchange_date(
        get("WhenChanged").as_str().unwrap(),
        false
    ));
    assert_eq!(get("PrimarySmtpAddress"), m.primary_smtp_address());
    assert_eq!(get("Guid"), m.guid.to_string());
    assert_eq!(get("ExchangeGuid"), m.exchange_guid.to_string());
}

#[tokio::test]
async fn a_truncated_page_has_the_captured_envelope() {
    let sim = start(5).await;
    let token = sim.token().await;
    let r = sim
        .invoke_at(
            &sim.invoke_url(),
            &token,
            "Get-Mailbox",
            json!({"ResultSize": "Unlimited"}),
            Some(2),
        )
        .await;
    let text = r.text().await.unwrap();
    let real = fixture("invokecommand_get-mailbox_envelope-truncated_graph2otel.json");
    assert_eq!(envelope_keys(&text), envelope_keys(&real));
    let ours: Value = serde_json::from_str(&text).unwrap();
    let theirs: Value = serde_json::from_str(&real).unwrap();
    assert_eq!(ours["@adminapi.warnings"], theirs["@adminapi.warnings"]);
    let link = ours["@odata.nextLink"].as_str().unwrap();
    let prefix = format!(
        "{}/adminapi/beta/{TENANT}/InvokeCommand?%24skiptoken=",
        sim.base()
    );
    assert!(link.starts_with(&prefix), "{link}");
    assert_eq!(ours["value"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn paging_returns_each_mailbox_once_while_mailboxes_change() {
    let sim = start(2500).await;
    let state = sim.handle.state();
    let token = sim.token().await;
    let params = json!({"ResultSize": "Unlimited"});
    let mut url = format!("{}?$select=PrimarySmtpAddress", sim.invoke_url());
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let r = sim
            .invoke_at(&url, &token, "Get-Mailbox", params.clone(), Some(1000))
            .await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        pages += 1;
        for rec in v["value"].as_array().unwrap() {
            seen.push(rec["Guid"].as_str().unwrap().to_string());
        }
        if pages == 1 {
            // Change mailboxes between pages: edits and removals must not disturb paging.
            let all = state.mailboxes_after(None, 2500);
            for m in all.iter().step_by(50) {
                state
                    .update_mailbox(&m.guid.to_string(), |m| {
                        m.set_custom_attribute(9, "changed")
                    })
                    .unwrap();
            }
        }
        match v["@odata.nextLink"].as_str() {
            Some(n) => url = n.to_string(),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 2500);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), 2500);
}

#[tokio::test]
async fn result_size_caps_the_total() {
    let sim = start(2500).await;
    let token = sim.token().await;
    // Default ResultSize is 1000: one full page, the warning, no nextLink.
    let r = sim
        .invoke_at(
            &format!("{}?$select=Alias", sim.invoke_url()),
            &token,
            "Get-Mailbox",
            json!({}),
            None,
        )
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["value"].as_array().unwrap().len(), 1000);
    assert!(v.get("@odata.nextLink").is_none());
    assert_eq!(v["@adminapi.warnings"].as_array().unwrap().len(), 1);
    // ResultSize 5 over pages of 2: 2 + 2 + 1.
    let (all, pages) = sim.get_all(&token, json!({"ResultSize": 5}), 2).await;
    assert_eq!((all.len(), pages), (5, 3));
    // Bad ResultSize values
    for bad in [json!(0), json!("lots"), json!(true)] {
        let (status, v) = sim
            .invoke(&token, "Get-Mailbox", json!({"ResultSize": bad}))
            .await;
        assert_eq!(status, 400, "{v}");
        assert!(
            v["error"]["innererror"]["internalexception"]["type"]
                .as_str()
                .unwrap()
                .ends_with("ParameterTransformationException")
        );
    }
}

#[tokio::test]
async fn identity_matches_every_documented_key() {
    let sim = start(30).await;
    let token = sim.token().await;
    let m = sim
        .handle
        .state()
        .mailboxes_after(None, 30)
        .into_iter()
        .find(|m| m.email_addresses.len() > 2)
        .unwrap();
    let secondary = m
        .email_addresses
        .iter()
        .find_map(|a| a.strip_prefix("smtp:"))
        .unwrap()
        .to_uppercase();
    for id in [
        m.external_directory_object_id.clone(),
        m.user_principal_name.to_uppercase(),
        m.primary_smtp_address().to_string(),
        secondary,
        m.alias.clone(),
        m.guid.to_string(),
    ] {
        let (status, v) = sim
            .invoke(&token, "Get-Mailbox", json!({"Identity": id}))
            .await;
        assert_eq!(status, 200, "{id}: {v}");
        assert_eq!(v["value"][0]["Guid"], m.guid.to_string(), "{id}");
    }
    let (status, v) = sim
        .invoke(
            &token,
            "Get-Mailbox",
            json!({"Identity": "nobody@contoso.com"}),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(v["error"]["code"], "NotFound");
    let detail = v["error"]["details"][0]["message"].as_str().unwrap();
    assert!(detail.starts_with("Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|The operation couldn't be performed because object 'nobody@contoso.com' couldn't be found on '"), "{detail}");
}

#[tokio::test]
async fn filters_select_what_they_say() {
    let sim = start(300).await;
    let state = sim.handle.state();
    let token = sim.token().await;
    let all = state.mailboxes_after(None, 1000);
    // Filter literals are to the second (the documented en-US form).
    let cutoff = {
        let mut dates: Vec<_> = all.iter().map(|m| m.when_changed).collect();
        dates.sort();
        jiff::Timestamp::from_second(dates[200].as_second()).unwrap()
    };
    let cutoff_text = en_us(cutoff);
    let cases: Vec<(String, usize)> = vec![
        (
            "IsExchangeCloudManaged -eq $true".into(),
            all.iter().filter(|m| m.is_exchange_cloud_managed).count(),
        ),
        (
            "IsExchangeCloudManaged -eq $false".into(),
            all.iter().filter(|m| !m.is_exchange_cloud_managed).count(),
        ),
        (
            "IsDirSynced -ne $true".into(),
            all.iter().filter(|m| !m.is_dir_synced).count(),
        ),
        (
            format!("WhenChangedUTC -ge '{cutoff_text}'"),
            all.iter().filter(|m| m.when_changed >= cutoff).count(),
        ),
        (
            format!("WhenChangedUTC -lt '{cutoff_text}'"),
            all.iter().filter(|m| m.when_changed < cutoff).count(),
        ),
        (
            format!(
                "(WhenChangedUTC -gt '{cutoff_text}') -and (IsDirSynced -eq $true) -and (RecipientTypeDetails -eq 'SharedMailbox')"
            ),
            all.iter()
                .filter(|m| {
                    m.when_changed > cutoff
                        && m.is_dir_synced
                        && m.kind == exo_sim::RecipientKind::Shared
                })
                .count(),
        ),
        (
            "RecipientTypeDetails -ne 'UserMailbox'".into(),
            all.iter()
                .filter(|m| m.kind != exo_sim::RecipientKind::User)
                .count(),
        ),
    ];
    for (filter, expected) in cases {
        assert!(expected > 0, "{filter} selects something");
        let (records, _) = sim
            .get_all(
                &token,
                json!({"Filter": filter, "ResultSize": "Unlimited"}),
                100,
            )
            .await;
        assert_eq!(records.len(), expected, "{filter}");
    }
    let (status, v) = sim
        .invoke(
            &token,
            "Get-Mailbox",
            json!({"Filter": "Department -eq 'x'"}),
        )
        .await;
    assert_eq!(status, 400);
    let detail = v["error"]["details"][0]["message"].as_str().unwrap();
    assert!(
        detail.contains("ParameterBindingException|Cannot bind parameter 'Filter'"),
        "{detail}"
    );
}

#[tokio::test]
async fn select_keeps_the_properties_plus_identity() {
    let sim = start(3).await;
    let token = sim.token().await;
    let r = sim
        .invoke_at(
            &format!(
                "{}?$select=customattribute1,EmailAddresses",
                sim.invoke_url()
            ),
            &token,
            "Get-Mailbox",
            json!({}),
            None,
        )
        .await;
    let text = r.text().await.unwrap();
    let rec = serde_json::from_str::<Records>(&text)
        .unwrap()
        .value
        .remove(0)
        .0;
    let keys: Vec<&str> = rec.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "CustomAttribute1",
            "EmailAddresses@odata.type",
            "EmailAddresses",
            "ExternalDirectoryObjectId",
            "Identity",
            "Guid@data.type",
            "Guid@odata.type",
            "Guid"
        ]
    );
    let r = sim
        .invoke_at(
            &format!("{}?$select=NoSuchThing", sim.invoke_url()),
            &token,
            "Get-Mailbox",
            json!({}),
            None,
        )
        .await;
    assert_eq!(r.status(), 400);
    // Get-Mailbox has no Properties parameter (that is Get-EXOMailbox): the service's
    // unknown-parameter error (capture C2's shape).
    let (status, v) = sim
        .invoke(&token, "Get-Mailbox", json!({"Properties": ["Alias"]}))
        .await;
    assert_eq!(status, 400, "{v}");
    let detail = v["error"]["details"][0]["message"].as_str().unwrap();
    assert!(
        detail.contains("Invalid cmdlet parameters specified. Properties"),
        "{detail}"
    );
}

#[tokio::test]
async fn skiptokens_expire_after_thirty_minutes() {
    let sim = start(10).await;
    let token = sim.token().await;
    let params = json!({"ResultSize": "Unlimited"});
    let first: Value = sim
        .invoke_at(
            &sim.invoke_url(),
            &token,
            "Get-Mailbox",
            params.clone(),
            Some(4),
        )
        .await
        .json()
        .await
        .unwrap();
    let link = first["@odata.nextLink"].as_str().unwrap().to_string();
    // still valid after 29 minutes
    sim.handle.state().advance_clock(29 * 60);
    let token = sim.token().await;
    let r = sim
        .invoke_at(&link, &token, "Get-Mailbox", params.clone(), Some(4))
        .await;
    assert_eq!(r.status(), 200);
    sim.handle.state().advance_clock(2 * 60);
    let r = sim
        .invoke_at(&link, &token, "Get-Mailbox", params.clone(), Some(4))
        .await;
    assert_eq!(r.status(), 400);
    let ours: Value = r.json().await.unwrap();
    let theirs: Value = serde_json::from_str(&fixture(
        "error_400_expired-pagination_ms-qa-1023619_2022-09-21.json",
    ))
    .unwrap();
    assert_eq!(ours, theirs);
    // a link reused with another body, or a forged token, is refused the same way
    let first: Value = sim
        .invoke_at(
            &sim.invoke_url(),
            &token,
            "Get-Mailbox",
            params.clone(),
            Some(4),
        )
        .await
        .json()
        .await
        .unwrap();
    let link = first["@odata.nextLink"].as_str().unwrap().to_string();
    let r = sim
        .invoke_at(
            &link,
            &token,
            "Get-Mailbox",
            json!({"ResultSize": 7}),
            Some(4),
        )
        .await;
    assert_eq!(r.status(), 400);
    let forged = format!("{}?%24skiptoken=ADZmViMTYwMGZl", sim.invoke_url());
    let r = sim
        .invoke_at(&forged, &token, "Get-Mailbox", params, Some(4))
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn unknown_parameters_and_cmdlets_get_the_service_errors() {
    let sim = start(1).await;
    let token = sim.token().await;
    let (status, ours) = sim
        .invoke(&token, "Get-Mailbox", json!({"BogusParameter": 1}))
        .await;
    assert_eq!(status, 400);
    let theirs: Value =
        serde_json::from_str(&fixture("error_400_unknown-parameter_graph2otel.json")).unwrap();
    assert_eq!(ours, theirs);
    let (status, v) = sim.invoke(&token, "Get-QuarantineMessage", json!({})).await;
    assert_eq!(status, 400);
    assert!(
        v["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("CommandNotFoundException")
    );
    let r = sim
        .http
        .post(sim.invoke_url())
        .bearer_auth(&token)
        .body("{\"CmdletInput\":")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "BadRequest");
}
