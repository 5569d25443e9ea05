//! The client against a scripted HTTP server that replays real captures: the request the
//! client sends (headers, body, query) and answers the emulator does not produce (403 with
//! NUL bytes, not-found under 500, a nextLink to another host).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::post;
use exo_writeback_core::secret::Secret;
use exo_writeback_exo::{Cloud, Credentials, ExoClient, ExoError, ExoSettings, RetryPolicy};
use futures::StreamExt;
use serde_json::Value;
use url::Url;

/// An answer: HTTP status and body.
type Answer = (u16, Vec<u8>);
/// A request as received: URI, headers, body.
type Seen = (Uri, HeaderMap, Bytes);

#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn token() -> impl IntoResponse {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        r#"{"token_type":"Bearer","expires_in":3599,"access_token":"tok-1"}"#,
    )
}

async fn invoke(
    State(s): State<Script>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    s.seen.lock().expect("lock").push((uri, headers, body));
    let (status, body) = s
        .answers
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or((500, b"script exhausted".to_vec()));
    (
        StatusCode::from_u16(status).expect("status"),
        [("content-type", "application/json")],
        body,
    )
}

async fn serve(answers: Vec<Answer>) -> (Script, String) {
    let script = Script::default();
    script.answers.lock().expect("lock").extend(answers);
    let app = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/adminapi/beta/{tenant}/InvokeCommand", post(invoke))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (script, base)
}

fn client(base: &str) -> ExoClient {
    let url = Url::parse(base).expect("url");
    ExoClient::new(ExoSettings {
        tenant: "vdbdx.onmicrosoft.com".into(),
        client_id: "app".into(),
        credentials: Credentials::ClientSecret(Secret::new("not-used-by-the-script")),
        login_base: url.clone(),
        api_base: url,
        scope: Cloud::Worldwide.scope(),
        page_size: 1000,
        assertion: exo_writeback_exo::CertificateAssertion::default(),
        anchor_mailbox: exo_writeback_exo::config::default_anchor_mailbox("vdbdx.onmicrosoft.com"),
        certificate: None,
        certificate_file: None,
        timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            retry_after_cap: Duration::from_secs(2),
            throttle_budget: Duration::from_secs(5),
        },
    })
    .expect("client")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/exo-real")
            .join(name),
    )
    .expect("fixture")
}

#[tokio::test]
async fn the_request_is_the_modules_and_the_real_body_decodes() {
    let body = fixture("invokecommand_get-mailbox_full-response-body_burp-vdbdx_2024-05-22.json");
    let (script, base) = serve(vec![(200, body)]).await;
    let c = client(&base);
    let m = c
        .get_mailbox("c@lvin.ie")
        .await
        .expect("read")
        .expect("found");
    assert_eq!(m.primary_smtp_address.as_deref(), Some("C@lvin.ie"));

    let seen = script.seen.lock().expect("lock");
    assert_eq!(seen.len(), 1);
    let (uri, headers, body) = &seen[0];
    assert_eq!(
        uri.path(),
        "/adminapi/beta/vdbdx.onmicrosoft.com/InvokeCommand"
    );
    assert!(
        uri.query()
            .is_some_and(|q| q.contains("%24select=") && q.contains("EmailAddresses")),
        "{uri}"
    );
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    assert_eq!(h("authorization"), "Bearer tok-1");
    assert_eq!(h("x-cmdletname"), "Get-Mailbox");
    assert_eq!(
        h("x-anchormailbox"),
        "UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@vdbdx.onmicrosoft.com"
    );
    assert_eq!(h("prefer"), "odata.maxpagesize=1000");
    assert_eq!(h("x-responseformat"), "json");
    assert_eq!(h("x-serializationlevel"), "Partial");
    let json: Value = serde_json::from_slice(body).expect("json body");
    assert_eq!(json["CmdletInput"]["CmdletName"], "Get-Mailbox");
    assert_eq!(json["CmdletInput"]["Parameters"]["Identity"], "c@lvin.ie");
}

#[tokio::test]
async fn a_403_of_nul_bytes_is_a_clear_forbidden() {
    let (_, base) = serve(vec![(403, vec![0u8; 64])]).await;
    let err = client(&base).get_mailbox("x").await.expect_err("403");
    assert!(matches!(err, ExoError::Forbidden { .. }), "{err:?}");
    assert!(err.to_string().contains("Exchange role"), "{err}");
}

#[tokio::test]
async fn not_found_is_none_even_under_500_and_not_retried() {
    let c7 = fixture("error_notfound_object-not-found_jiechencn-jsontest.json");
    let (script, base) = serve(vec![(500, c7)]).await;
    let found = client(&base).get_mailbox("user2@jichen0107d.com").await;
    assert_eq!(found.expect("not an error"), None);
    assert_eq!(script.seen.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn an_expired_skiptoken_is_a_broken_next_link() {
    let first = br#"{"value":[{"PrimarySmtpAddress":"a@c.com"}],"@odata.nextLink":"/adminapi/beta/vdbdx.onmicrosoft.com/InvokeCommand?%24skiptoken=abc"}"#.to_vec();
    let c3 = fixture("error_400_expired-pagination_ms-qa-1023619_2022-09-21.json");
    let (script, base) = serve(vec![(200, first), (400, c3)]).await;
    let items: Vec<_> = client(&base).mailboxes(None).collect().await;
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok());
    let err = items[1].as_ref().expect_err("broken link");
    assert!(
        matches!(err, ExoError::BrokenNextLink { status: 400, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("Expired or Invalid pagination request"),
        "{err}"
    );
    let seen = script.seen.lock().expect("lock");
    assert_eq!(seen.len(), 2);
    assert!(
        seen[1]
            .0
            .query()
            .is_some_and(|q| q.contains("skiptoken=abc"))
    );
    assert_eq!(
        seen[0].2, seen[1].2,
        "the nextLink is followed with the same body"
    );
}

#[tokio::test]
async fn a_next_link_to_another_host_is_not_followed() {
    let first = br#"{"value":[{"PrimarySmtpAddress":"a@c.com"}],"@odata.nextLink":"https://evil.example/adminapi/beta/t/InvokeCommand?%24skiptoken=x"}"#.to_vec();
    let (script, base) = serve(vec![(200, first)]).await;
    let items: Vec<_> = client(&base).mailboxes(None).collect().await;
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok());
    let err = items[1].as_ref().expect_err("refused");
    assert!(matches!(err, ExoError::UnsafeNextLink { .. }), "{err:?}");
    assert_eq!(script.seen.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn a_malformed_record_is_skipped_with_its_name_and_the_rest_is_read() {
    let page = br#"{"value":[{"PrimarySmtpAddress":"ok1@c.com"},{"PrimarySmtpAddress":"bad@c.com","EmailAddresses":"SMTP:bad@c.com"},{"PrimarySmtpAddress":"ok2@c.com"}]}"#.to_vec();
    let (_, base) = serve(vec![(200, page)]).await;
    let items: Vec<_> = client(&base).mailboxes(None).collect().await;
    assert_eq!(items.len(), 3);
    assert!(items[0].is_ok() && items[2].is_ok());
    let err = items[1].as_ref().expect_err("bad record");
    assert!(err.is_record_error());
    assert!(err.to_string().contains("bad@c.com"), "{err}");
}

#[tokio::test]
async fn a_record_with_invalid_utf8_is_skipped_with_its_name_and_the_rest_is_read() {
    let (script, base) = serve(Vec::new()).await;
    let link = format!("{base}/adminapi/beta/vdbdx.onmicrosoft.com/InvokeCommand?%24skiptoken=2");
    let mut first = br#"{"value":[{"PrimarySmtpAddress":"ok1@c.com"},{"PrimarySmtpAddress":"bad@c.com","ExternalDirectoryObjectId":"id-bad","CustomAttribute3":"M"#
        .to_vec();
    first.push(0xFC); // Latin-1 "ü": not UTF-8
    first.extend_from_slice(
        format!(r#"nchen"}},{{"PrimarySmtpAddress":"ok2@c.com"}}],"@odata.nextLink":"{link}"}}"#)
            .as_bytes(),
    );
    let second =
        r#"{"value":[{"PrimarySmtpAddress":"ok3@c.com","CustomAttribute3":"München"}]}"#.as_bytes();
    script
        .answers
        .lock()
        .expect("lock")
        .extend([(200, first), (200, second.to_vec())]);
    let items: Vec<_> = client(&base).mailboxes(None).collect().await;
    assert_eq!(items.len(), 4, "{items:?}");
    let ok: Vec<_> = items
        .iter()
        .filter_map(|i| i.as_ref().ok())
        .map(|m| m.primary_smtp_address.clone().unwrap_or_default())
        .collect();
    assert_eq!(ok, ["ok1@c.com", "ok2@c.com", "ok3@c.com"]);
    let err = items[1].as_ref().expect_err("bad record");
    assert!(err.is_record_error(), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("bad@c.com")
            && text.contains("CustomAttribute3")
            && text.contains("not valid UTF-8")
            && text.contains("nothing is written to AD"),
        "{text}"
    );
    match err {
        ExoError::MalformedRecord {
            external_directory_object_id,
            primary_smtp_address,
            ..
        } => {
            assert_eq!(external_directory_object_id.as_deref(), Some("id-bad"));
            assert_eq!(primary_smtp_address.as_deref(), Some("bad@c.com"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_next_link_to_the_same_page_stops_with_an_error() {
    // The link must be on the client's own host, so the server is started first.
    let (script, base) = serve(Vec::new()).await;
    let link =
        format!("{base}/adminapi/beta/vdbdx.onmicrosoft.com/InvokeCommand?%24skiptoken=loop");
    let page =
        format!(r#"{{"value":[{{"PrimarySmtpAddress":"a@c.com"}}],"@odata.nextLink":"{link}"}}"#);
    script
        .answers
        .lock()
        .expect("lock")
        .extend([(200, page.clone().into_bytes()), (200, page.into_bytes())]);
    let items: Vec<_> = client(&base).mailboxes(None).collect().await;
    assert_eq!(items.len(), 3, "{items:?}");
    assert!(items[0].is_ok() && items[1].is_ok());
    let err = items[2].as_ref().expect_err("loop detected");
    assert!(err.to_string().contains("never end"), "{err}");
    assert_eq!(script.seen.lock().expect("lock").len(), 2);
}

#[tokio::test]
async fn a_bad_cmdlet_name_is_refused_before_sending() {
    let (script, base) = serve(Vec::new()).await;
    let items: Vec<_> = client(&base)
        .invoke("Get-Mailbox\r\nX: y", serde_json::Map::new())
        .collect()
        .await;
    assert_eq!(items.len(), 1);
    assert!(
        matches!(items[0], Err(ExoError::InvalidRequest(_))),
        "{items:?}"
    );
    assert!(script.seen.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn changed_since_filters_on_when_changed_and_yields_each_mailbox_once() {
    let (script, base) = serve(Vec::new()).await;
    let link = format!("{base}/adminapi/beta/vdbdx.onmicrosoft.com/InvokeCommand?%24skiptoken=p2");
    let a = r#"{"ExternalDirectoryObjectId":"AAAA","PrimarySmtpAddress":"a@c.com"}"#;
    let a_again = r#"{"ExternalDirectoryObjectId":"aaaa","PrimarySmtpAddress":"a@c.com"}"#;
    let b = r#"{"ExternalDirectoryObjectId":"","Guid":"g-b","PrimarySmtpAddress":"b@c.com"}"#;
    let page1 = format!(r#"{{"value":[{a}],"@odata.nextLink":"{link}"}}"#);
    let page2 = format!(r#"{{"value":[{a_again},{b}]}}"#);
    script
        .answers
        .lock()
        .expect("lock")
        .extend([(200, page1.into_bytes()), (200, page2.into_bytes())]);
    let watermark: jiff::Timestamp = "2024-04-10T08:56:22.5Z".parse().expect("ts");
    let items: Vec<_> = client(&base)
        .changed_since(watermark, jiff::SignedDuration::from_mins(5))
        .map(|r| r.expect("mailbox"))
        .collect()
        .await;
    let addresses: Vec<_> = items
        .iter()
        .filter_map(|m| m.primary_smtp_address.as_deref())
        .collect();
    assert_eq!(addresses, ["a@c.com", "b@c.com"]);
    let seen = script.seen.lock().expect("lock");
    let body: Value = serde_json::from_slice(&seen[0].2).expect("json");
    assert_eq!(
        body["CmdletInput"]["Parameters"]["Filter"],
        "WhenChangedUTC -ge '4/10/2024 8:51:22 AM'"
    );
    assert_eq!(body["CmdletInput"]["Parameters"]["ResultSize"], "Unlimited");
}
