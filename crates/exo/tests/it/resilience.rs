//! Items 4, 6 and 7 of issue 11: a slow first page, the module's named transient back-end
//! exceptions, and what "not found" means.

use std::time::{Duration, Instant};

use exo_sim::{Endpoint, FaultKind, SimCloud};
use serde_json::{Map, Value, json};

use crate::support::*;

#[test]
fn the_default_timeout_is_the_modules_960_seconds() {
    let s = settings(&section("http://127.0.0.1:9", TENANT_ID, "")).expect("valid");
    assert_eq!(s.timeout, Duration::from_secs(960));
}

#[tokio::test]
async fn a_first_page_slower_than_the_timeout_is_asked_at_most_twice() {
    let sim = spawn(tenant(5, SimCloud::Worldwide, None)).await;
    let config = section(
        &sim.base_url(),
        TENANT_ID,
        "timeout_secs = 1\nmax_attempts = 5",
    );
    let c = client(&config);
    c.check_token().await.expect("token");
    fault(
        &sim,
        Endpoint::FirstPage,
        FaultKind::Delay { ms: 2500 },
        None,
    );
    let started = Instant::now();
    let (mailboxes, errors) = drain(c.mailboxes(None)).await;
    assert!(mailboxes.is_empty());
    assert_eq!(errors.len(), 1, "{errors:?}");
    let text = errors[0].to_string();
    assert!(text.contains("did not answer within 1 s"), "{text}");
    assert!(text.contains("timeout_secs"), "{text}");
    let asked = sim.state().request_count(Endpoint::FirstPage);
    assert!(asked <= 2, "the expensive query was sent {asked} times");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_refused_connection_is_still_retried() {
    // Nothing listens on the port: connection failures are cheap and retried (max_attempts).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let c = client(&section(&base, TENANT_ID, "max_attempts = 3"));
    let err = c
        .check_token()
        .await
        .expect_err("nobody listens")
        .to_string();
    assert!(err.contains("3 tries"), "{err}");
}

#[tokio::test]
async fn the_modules_transient_exceptions_are_retried_whatever_the_status() {
    for (exception, status) in [
        (
            "Microsoft.Exchange.Data.Directory.DCOverloadedException",
            400,
        ),
        (
            "Microsoft.Exchange.Data.Directory.SuitabilityDirectoryException",
            400,
        ),
        ("Microsoft.Exchange.Data.Storage.ServerInMMException", 500),
        (
            "Microsoft.Exchange.Data.Directory.ADServerSettingsChangedException",
            400,
        ),
        (
            "Microsoft.Exchange.Data.Storage.StorageTransientException",
            404,
        ),
    ] {
        let sim = spawn(tenant(3, SimCloud::Worldwide, None)).await;
        let c = client(&section(&sim.base_url(), TENANT_ID, ""));
        c.check_token().await.expect("token");
        fault(
            &sim,
            Endpoint::Invoke,
            FaultKind::TransientException {
                exception: exception.into(),
                status,
            },
            Some(2),
        );
        let (mailboxes, errors) = drain(c.mailboxes(None)).await;
        assert!(errors.is_empty(), "{exception}: {errors:?}");
        assert_eq!(mailboxes.len(), 3, "{exception}");
        assert_eq!(
            sim.state().request_count(Endpoint::Invoke),
            3,
            "{exception}"
        );
    }
}

#[tokio::test]
async fn a_real_client_error_is_not_retried() {
    let sim = spawn(tenant(3, SimCloud::Worldwide, None)).await;
    let c = client(&section(&sim.base_url(), TENANT_ID, ""));
    let mut params = Map::new();
    params.insert("BogusParameter".into(), json!(1));
    let mut stream = c.invoke("Get-Mailbox", params);
    let first: Option<Result<Value, _>> = futures::StreamExt::next(&mut stream).await;
    let err = first
        .expect("an item")
        .expect_err("unknown parameter")
        .to_string();
    assert!(err.contains("BogusParameter"), "{err}");
    assert_eq!(sim.state().request_count(Endpoint::Invoke), 1);
}

#[tokio::test]
async fn not_found_only_when_the_service_says_the_object_was_not_found() {
    // The token comes from this tenant's Entra ID, but the admin API answering is another
    // tenant's: the path's tenant segment is wrong there (HTTP 404, code NotFound). That must
    // not read as "this mailbox does not exist".
    let ours = spawn(tenant(1, SimCloud::Worldwide, None)).await;
    let elsewhere = spawn(exo_sim::SimConfig {
        tenant: "fabrikam.onmicrosoft.com".into(),
        tenant_id: None,
        ..tenant(1, SimCloud::Worldwide, None)
    })
    .await;
    let mut config = section(&ours.base_url(), TENANT_ID, "");
    config.api_base = Some(elsewhere.base_url());
    let c = client(&config);
    let err = c
        .get_mailbox("someone@contoso.com")
        .await
        .expect_err("a wrong tenant segment is an error, not an absent mailbox")
        .to_string();
    assert!(err.contains("404"), "{err}");
    // A mailbox the right tenant does not have is still "not found".
    let c = client(&section(&ours.base_url(), TENANT_ID, ""));
    assert!(
        c.get_mailbox("nobody@contoso.com")
            .await
            .expect("answer")
            .is_none()
    );
}
