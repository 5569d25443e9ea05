use serde_json::{Value, json};

use crate::common::*;

#[tokio::test]
async fn the_same_seed_gives_the_same_mailboxes() {
    let a = start(50).await;
    let b = start(50).await;
    let (ta, tb) = (a.token().await, b.token().await);
    let (va, _) = a.get_all(&ta, json!({"ResultSize": "Unlimited"}), 20).await;
    let (vb, _) = b.get_all(&tb, json!({"ResultSize": "Unlimited"}), 20).await;
    assert_eq!(va.len(), 50);
    assert_eq!(va, vb);
    let c = start_with(exo_sim::SimConfig {
        seed: Some(exo_sim::SeedSpec {
            count: 50,
            seed: 8,
            ..Default::default()
        }),
        ..config(0)
    })
    .await;
    let tc = c.token().await;
    let (vc, _) = c.get_all(&tc, json!({"ResultSize": "Unlimited"}), 20).await;
    assert_ne!(va, vc);
}

#[tokio::test]
async fn the_control_api_seeds_reads_and_changes_mailboxes() {
    let sim = start(0).await;
    let base = sim.base();
    let http = &sim.http;
    let v: Value = http
        .post(format!("{base}/_sim/seed"))
        .json(&json!({"count": 25, "seed": 3, "domain": "fabrikam.com"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"added": 25, "mailboxes": 25}));
    let v: Value = http
        .get(format!("{base}/_sim/mailboxes?limit=10"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["mailboxes"].as_array().unwrap().len(), 10);
    let next = v["next"].as_str().unwrap();
    let v2: Value = http
        .get(format!("{base}/_sim/mailboxes?limit=100&after={next}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v2["mailboxes"].as_array().unwrap().len(), 15);
    let first = v["mailboxes"][0].clone();
    let primary = first["PrimarySmtpAddress"].as_str().unwrap();
    assert!(primary.ends_with("@fabrikam.com"));

    // create
    let r = http
        .post(format!("{base}/_sim/mailboxes"))
        .json(&json!({"EmailAddresses": ["SMTP:new.person@fabrikam.com", "smtp:np@fabrikam.onmicrosoft.com"], "DisplayName": "New Person", "CustomAttribute3": "x", "IsExchangeCloudManaged": false}))
        .send().await.unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["CustomAttribute3"], "x");
    assert_eq!(created["IsExchangeCloudManaged"], false);
    // duplicate address refused
    let r = http
        .post(format!("{base}/_sim/mailboxes"))
        .json(&json!({"EmailAddresses": ["SMTP:NEW.PERSON@fabrikam.com"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    // patch, with and without WhenChangedUTC
    let r: Value = http
        .patch(format!("{base}/_sim/mailboxes/np@fabrikam.onmicrosoft.com"))
        .json(&json!({"CustomAttribute3": "y", "WhenChangedUTC": "2020-01-02T03:04:05Z"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["CustomAttribute3"], "y");
    assert_eq!(r["WhenChangedUTC"], "2020-01-02T03:04:05.0000000Z");
    let r = http
        .patch(format!("{base}/_sim/mailboxes/np@fabrikam.onmicrosoft.com"))
        .json(&json!({"NoSuchProperty": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // put replaces
    let r: Value = http
        .put(format!("{base}/_sim/mailboxes/new.person@fabrikam.com"))
        .json(&json!({"EmailAddresses": ["SMTP:renamed@fabrikam.com"], "DisplayName": "Renamed"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["CustomAttribute3"], "");
    assert_eq!(r["PrimarySmtpAddress"], "renamed@fabrikam.com");
    assert_eq!(r["Guid"], created["Guid"]);
    // clock
    let before: Value = http
        .get(format!("{base}/_sim/clock"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let after: Value = http
        .post(format!("{base}/_sim/clock"))
        .json(&json!({"advance_secs": 86400}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(after["now"].as_str().unwrap() > before["now"].as_str().unwrap());
    assert!(after["now"].as_str().unwrap()[..10] != before["now"].as_str().unwrap()[..10]);
    // delete
    let r = http
        .delete(format!("{base}/_sim/mailboxes/renamed@fabrikam.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .get(format!("{base}/_sim/mailboxes/renamed@fabrikam.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let stats: Value = http
        .get(format!("{base}/_sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["mailboxes"], 25);
    // replace = true starts over
    let v: Value = http
        .post(format!("{base}/_sim/seed"))
        .json(&json!({"count": 5, "replace": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["mailboxes"], 5);
}

#[tokio::test]
async fn core_mailboxes_can_be_added_directly() {
    let sim = start(0).await;
    let mut m = exo_writeback_core::mailbox::Mailbox {
        external_directory_object_id: Some("0f4b8c1e-1111-2222-3333-444455556666".into()),
        immutable_id: Some("AAECAwQFBgcICQoLDA0ODw==".into()),
        user_principal_name: Some("c.core@contoso.com".into()),
        email_addresses: vec![
            "smtp:cc@contoso.onmicrosoft.com".into(),
            "SMTP:c.core@contoso.com".into(),
        ],
        recipient_type_details: "EquipmentMailbox".into(),
        is_dir_synced: true,
        ..Default::default()
    };
    m.custom_attributes[14] = Some("fifteen".into());
    let guid = sim.handle.state().add_mailbox(m.clone()).unwrap();
    let token = sim.token().await;
    let (status, v) = sim
        .invoke(
            &token,
            "Get-Mailbox",
            json!({"Identity": "0f4b8c1e-1111-2222-3333-444455556666"}),
        )
        .await;
    assert_eq!(status, 200);
    let r = &v["value"][0];
    assert_eq!(r["Guid"], guid.to_string());
    assert_eq!(r["ImmutableId"], "AAECAwQFBgcICQoLDA0ODw==");
    assert_eq!(r["PrimarySmtpAddress"], "c.core@contoso.com");
    assert_eq!(r["RecipientTypeDetails"], "EquipmentMailbox");
    assert_eq!(r["CustomAttribute15"], "fifteen");
    let back = sim
        .handle
        .state()
        .mailbox("c.core@contoso.com")
        .unwrap()
        .to_core();
    assert_eq!(back.email_addresses, m.email_addresses);
    assert_eq!(back.custom_attributes, m.custom_attributes);
}
