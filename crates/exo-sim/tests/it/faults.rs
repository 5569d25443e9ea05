use std::io::ErrorKind;

use exo_sim::{Endpoint, FaultKind, FaultRule};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

async fn raw_get_mailbox(sim: &Sim, token: &str) -> reqwest::Response {
    sim.invoke_at(&sim.invoke_url(), token, "Get-Mailbox", json!({}), None)
        .await
}

#[tokio::test]
async fn status_faults_are_observable_and_used_up() {
    let sim = start(3).await;
    let state = sim.handle.state();
    let token = sim.token().await;
    state.add_fault(FaultRule::times(
        Endpoint::Invoke,
        FaultKind::TooManyRequests {
            retry_after_secs: 2.0,
        },
        1,
    ));
    let r = raw_get_mailbox(&sim, &token).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    state.add_fault(FaultRule::times(
        Endpoint::Invoke,
        FaultKind::TooManyRequests {
            retry_after_secs: 0.5,
        },
        1,
    ));
    assert_eq!(
        raw_get_mailbox(&sim, &token).await.headers()["retry-after"],
        "0.5"
    );
    state.add_fault(FaultRule::times(
        Endpoint::Invoke,
        FaultKind::InternalServerError,
        1,
    ));
    let r = raw_get_mailbox(&sim, &token).await;
    assert_eq!(r.status(), 500);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "InternalServerError");
    state.add_fault(FaultRule::times(
        Endpoint::Any,
        FaultKind::ServiceUnavailable,
        1,
    ));
    assert_eq!(raw_get_mailbox(&sim, &token).await.status(), 503);
    state.add_fault(FaultRule::times(
        Endpoint::Token,
        FaultKind::ServiceUnavailable,
        1,
    ));
    assert_eq!(
        raw_get_mailbox(&sim, &token).await.status(),
        200,
        "token rules leave the API alone"
    );
    let r = sim
        .token_request(&[("grant_type", "client_credentials")])
        .await;
    assert_eq!(r.status(), 503);
    state.add_fault(FaultRule::times(
        Endpoint::Invoke,
        FaultKind::Delay { ms: 50 },
        1,
    ));
    assert_eq!(raw_get_mailbox(&sim, &token).await.status(), 200);
    assert!(
        state.faults().is_empty(),
        "count-limited rules are removed once used"
    );
    assert_eq!(raw_get_mailbox(&sim, &token).await.status(), 200);
}

#[tokio::test]
async fn damaged_bodies_do_not_parse() {
    let sim = start(3).await;
    let state = sim.handle.state();
    let token = sim.token().await;
    let whole = raw_get_mailbox(&sim, &token).await.bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&whole).is_ok());
    for kind in [FaultKind::TruncatedJson, FaultKind::MalformedJson] {
        state.add_fault(FaultRule::times(Endpoint::Invoke, kind.clone(), 1));
        let r = raw_get_mailbox(&sim, &token).await;
        assert_eq!(r.status(), 200);
        let body = r.bytes().await.unwrap();
        assert!(serde_json::from_slice::<Value>(&body).is_err(), "{kind:?}");
        assert_ne!(body.len(), whole.len(), "{kind:?}");
    }
}

#[tokio::test]
async fn a_reset_drops_the_connection_without_a_response() {
    let sim = start(1).await;
    let state = sim.handle.state();
    let token = sim.token().await;
    state.add_fault(FaultRule::times(
        Endpoint::Invoke,
        FaultKind::ResetConnection,
        1,
    ));
    let mut s = tokio::net::TcpStream::connect(sim.handle.addr())
        .await
        .unwrap();
    let body = r#"{"CmdletInput":{"CmdletName":"Get-Mailbox","Parameters":{}}}"#;
    let req = format!(
        "POST /adminapi/beta/{TENANT}/InvokeCommand HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        sim.handle.addr(),
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let res = s.read_to_end(&mut buf).await;
    assert!(
        buf.is_empty(),
        "no response bytes: {}",
        String::from_utf8_lossy(&buf)
    );
    match res {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset),
        Ok(n) => panic!("connection closed cleanly after {n} bytes instead of a reset"),
    }
    // reqwest sees a transport error, and the next request works
    state.add_fault(FaultRule::times(
        Endpoint::Invoke,
        FaultKind::ResetConnection,
        1,
    ));
    let err = sim
        .http
        .post(sim.invoke_url())
        .bearer_auth(&token)
        .body(body)
        .send()
        .await;
    assert!(err.is_err());
    assert_eq!(raw_get_mailbox(&sim, &token).await.status(), 200);
}

#[tokio::test]
async fn expired_token_and_broken_next_link_faults() {
    let sim = start(10).await;
    let state = sim.handle.state();
    let token = sim.token().await;
    state.add_fault(FaultRule::times(
        Endpoint::Invoke,
        FaultKind::ExpiredToken,
        1,
    ));
    let r = raw_get_mailbox(&sim, &token).await;
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("expired")
    );
    assert_eq!(raw_get_mailbox(&sim, &token).await.status(), 200);

    state.add_fault(FaultRule::times(
        Endpoint::Invoke,
        FaultKind::BrokenNextLink,
        1,
    ));
    let params = json!({"ResultSize": "Unlimited"});
    let v: Value = sim
        .invoke_at(
            &sim.invoke_url(),
            &token,
            "Get-Mailbox",
            params.clone(),
            Some(3),
        )
        .await
        .json()
        .await
        .unwrap();
    let link = v["@odata.nextLink"].as_str().unwrap();
    let r = sim
        .invoke_at(link, &token, "Get-Mailbox", params.clone(), Some(3))
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["error"]["innererror"]["internalexception"]["message"],
        "Expired or Invalid pagination request. Default Expiry time is 00:30:00"
    );
    // nextlink-only rules leave first pages alone
    state.add_fault(FaultRule::times(
        Endpoint::NextLink,
        FaultKind::InternalServerError,
        1,
    ));
    let v: Value = sim
        .invoke_at(
            &sim.invoke_url(),
            &token,
            "Get-Mailbox",
            params.clone(),
            Some(3),
        )
        .await
        .json()
        .await
        .unwrap();
    let link = v["@odata.nextLink"].as_str().unwrap();
    assert_eq!(
        sim.invoke_at(link, &token, "Get-Mailbox", params.clone(), Some(3))
            .await
            .status(),
        500
    );
    assert_eq!(
        sim.invoke_at(link, &token, "Get-Mailbox", params, Some(3))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn probability_and_skip_rules_over_the_control_api() {
    let sim = start(1).await;
    let token = sim.token().await;
    let r = sim
        .http
        .post(format!("{}/_sim/faults", sim.base()))
        .json(&json!([
            {"endpoint": "invoke", "kind": "internal_server_error", "probability": 0.5}
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut failed = 0;
    for _ in 0..60 {
        if raw_get_mailbox(&sim, &token).await.status() == 500 {
            failed += 1;
        }
    }
    assert!(failed > 5 && failed < 55, "{failed} of 60 failed");
    let r = sim
        .http
        .delete(format!("{}/_sim/faults", sim.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    sim.http
        .post(format!("{}/_sim/faults", sim.base()))
        .json(&json!({"endpoint": "invoke", "kind": "too_many_requests", "retry_after_secs": 1, "skip": 1, "count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw_get_mailbox(&sim, &token).await.status(), 200);
    assert_eq!(raw_get_mailbox(&sim, &token).await.status(), 429);
    assert_eq!(raw_get_mailbox(&sim, &token).await.status(), 200);
    let bad = sim
        .http
        .post(format!("{}/_sim/faults", sim.base()))
        .json(&json!({"endpoint": "invoke", "kind": "explode"}))
        .send()
        .await
        .unwrap();
    assert!(bad.status().is_client_error());
    let stats: Value = sim
        .http
        .get(format!("{}/_sim/stats", sim.base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["invoke"], 63);
    assert_eq!(stats["token"], 1);
    assert_eq!(stats["nextlink"], 0);
}

#[tokio::test]
async fn invalid_utf8_sends_one_mailbox_value_in_latin1_on_every_page() {
    let sim = start(3).await;
    let state = sim.handle.state();
    let token = sim.token().await;
    let ids: Vec<String> = state
        .mailboxes_after(None, 10)
        .iter()
        .map(|m| m.guid.to_string())
        .collect();
    for (n, id) in ids.iter().enumerate() {
        state
            .update_mailbox(id, |m| m.set_custom_attribute(2, &format!("München-{n}")))
            .expect("update");
    }
    // A text whose Latin-1 form would still be valid UTF-8 is refused.
    let refused = sim
        .http
        .post(format!("{}/_sim/faults", sim.base()))
        .json(&json!({"endpoint": "invoke", "kind": "invalid_utf8", "text": "plain"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let ok = sim
        .http
        .post(format!("{}/_sim/faults", sim.base()))
        .json(&json!({"endpoint": "invoke", "kind": "invalid_utf8", "text": "München-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    for _ in 0..2 {
        let body = raw_get_mailbox(&sim, &token).await.bytes().await.unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(std::str::from_utf8(&body).is_err(), "{text}");
        assert!(
            text.contains("M\u{FFFD}nchen-1") && text.contains("München-0"),
            "{text}"
        );
        assert!(text.contains("München-2"), "{text}");
    }
}

#[tokio::test]
async fn admin_api_errors_transient_exceptions_and_slow_first_pages() {
    let sim = start(3).await;
    let state = sim.handle.state();
    let token = sim.token().await;
    state.add_fault(FaultRule::times(
        Endpoint::Invoke,
        FaultKind::AdminApiErrors {
            errors: vec!["Something went wrong reading one mailbox.".into()],
        },
        1,
    ));
    let r = raw_get_mailbox(&sim, &token).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["adminapi.errors@odata.type"], "#Collection(String)");
    assert_eq!(
        v["@adminapi.errors"],
        json!(["Something went wrong reading one mailbox."])
    );
    assert_eq!(
        v["value"].as_array().unwrap().len(),
        3,
        "the records are there"
    );
    for status in [400u16, 500] {
        state.add_fault(FaultRule::times(
            Endpoint::Invoke,
            FaultKind::TransientException {
                exception: "Microsoft.Exchange.Data.Directory.DCOverloadedException".into(),
                status,
            },
            1,
        ));
        let r = raw_get_mailbox(&sim, &token).await;
        assert_eq!(r.status().as_u16(), status);
        let v: Value = r.json().await.unwrap();
        let detail = v["error"]["details"][0]["message"].as_str().unwrap();
        assert!(
            detail.contains("|Microsoft.Exchange.Data.Directory.DCOverloadedException|"),
            "{detail}"
        );
    }
    // A rule on first pages delays them, not the pages that follow.
    state.add_fault(FaultRule {
        endpoint: Endpoint::FirstPage,
        kind: FaultKind::Delay { ms: 300 },
        count: None,
        probability: None,
        skip: 0,
    });
    let started = std::time::Instant::now();
    let (all, pages) = sim
        .get_all(&token, json!({"ResultSize": "Unlimited"}), 1)
        .await;
    assert_eq!((all.len(), pages), (3, 3));
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_millis(300), "{took:?}");
    assert!(took < std::time::Duration::from_millis(900), "{took:?}");
    // Four listings were started: the errors page, two transient failures, get_all.
    assert_eq!(state.request_count(Endpoint::FirstPage), 4);
    assert_eq!(state.request_count(Endpoint::NextLink), 2);
}
