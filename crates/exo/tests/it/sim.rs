//! The connector against the `exo-sim` emulator: authentication, paging, and every fault kind.

use std::time::{Duration, Instant};

use crate::certs::make_certificate;
use crate::support::fault;
use exo_sim::{Endpoint, FaultKind, SeedSpec, SimConfig, SimHandle};
use exo_writeback_core::secret::Secret;
use exo_writeback_exo::{
    Cloud, Credentials, ExoClient, ExoConfig, ExoError, ExoSettings, RetryPolicy,
};
use futures::StreamExt;
use serde_json::{Map, Value, json};
use url::Url;

const TENANT: &str = "contoso.onmicrosoft.com";
const CLIENT_ID: &str = "6a5d0c4b-2f0e-4c57-9c36-3b1e2d7f8a90";
const SECRET: &str = "sim-client-secret-Xq7~value";

async fn start(count: usize, cert_pem: Option<String>) -> SimHandle {
    exo_sim::spawn(SimConfig {
        tenant: TENANT.into(),
        client_id: CLIENT_ID.into(),
        client_secret: Some(SECRET.into()),
        client_cert_pem: cert_pem,
        token_lifetime_secs: 3599,
        seed: (count > 0).then(|| SeedSpec {
            count,
            ..SeedSpec::default()
        }),
        ..SimConfig::default()
    })
    .await
    .expect("emulator starts")
}

fn settings(sim: &SimHandle, credentials: Credentials, page_size: u32) -> ExoSettings {
    let base = Url::parse(&sim.base_url()).expect("base url");
    ExoSettings {
        tenant: TENANT.into(),
        client_id: CLIENT_ID.into(),
        credentials,
        login_base: base.clone(),
        api_base: base,
        scope: Cloud::Worldwide.scope(),
        page_size,
        assertion: exo_writeback_exo::CertificateAssertion::default(),
        anchor_mailbox: exo_writeback_exo::config::default_anchor_mailbox(TENANT),
        certificate: None,
        certificate_file: None,
        timeout: Duration::from_secs(10),
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            retry_after_cap: Duration::from_secs(10),
            throttle_budget: Duration::from_secs(30),
        },
    }
}

fn secret() -> Credentials {
    Credentials::ClientSecret(Secret::new(SECRET))
}

fn client(sim: &SimHandle, page_size: u32) -> ExoClient {
    ExoClient::new(settings(sim, secret(), page_size)).expect("client")
}

async fn collect_all(
    client: &ExoClient,
) -> (Vec<exo_writeback_core::mailbox::Mailbox>, Vec<ExoError>) {
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    let mut stream = client.mailboxes(None);
    while let Some(item) = stream.next().await {
        match item {
            Ok(m) => ok.push(m),
            Err(e) => errors.push(e),
        }
    }
    (ok, errors)
}

#[tokio::test]
async fn secret_auth_pages_through_every_mailbox_with_one_token() {
    let sim = start(25, None).await;
    let c = client(&sim, 10);
    let (mailboxes, errors) = collect_all(&c).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(mailboxes.len(), 25);
    let mut ids: Vec<_> = mailboxes
        .iter()
        .filter_map(|m| m.external_directory_object_id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 25, "no duplicates, none lost");
    assert!(mailboxes.iter().all(|m| m.primary_smtp_address.is_some()));
    assert!(
        mailboxes
            .iter()
            .all(|m| m.email_addresses.iter().any(|a| a.starts_with("SMTP:")))
    );
    assert_eq!(sim.state().request_count(Endpoint::Invoke), 3);
    assert_eq!(sim.state().request_count(Endpoint::NextLink), 2);
    assert_eq!(c.stats().token_requests, 1, "the token is cached");
}

#[tokio::test]
async fn a_config_file_section_drives_the_client() {
    let sim = start(3, None).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).expect("write");
    let text = format!(
        "tenant = \"{TENANT}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret_file = {:?}\nlogin_base = \"{b}\"\napi_base = \"{b}\"\nallow_insecure_http = true\npage_size = 2\n",
        secret_file.display().to_string(),
        b = sim.base_url()
    );
    let config: ExoConfig = toml::from_str(&text).expect("toml");
    let c = ExoClient::from_config(&config).expect("client");
    let (mailboxes, errors) = collect_all(&c).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(mailboxes.len(), 3);
    assert_eq!(sim.state().request_count(Endpoint::Invoke), 2);
}

#[tokio::test]
async fn certificate_auth_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = make_certificate(dir.path());
    let sim = start(2, Some(cert.clone())).await;
    let creds = Credentials::Certificate {
        certificate_pem: cert,
        private_key_pem: Secret::new(key),
    };
    let c = ExoClient::new(settings(&sim, creds, 100)).expect("client");
    c.check_token()
        .await
        .expect("token with a client assertion");
    let (mailboxes, errors) = collect_all(&c).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(mailboxes.len(), 2);
}

#[tokio::test]
async fn a_wrong_certificate_is_refused_without_leaking_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).expect("mkdir");
    std::fs::create_dir_all(&b).expect("mkdir");
    let (trusted, _) = make_certificate(&a);
    let (other_cert, other_key) = make_certificate(&b);
    let sim = start(1, Some(trusted)).await;
    let creds = Credentials::Certificate {
        certificate_pem: other_cert,
        private_key_pem: Secret::new(other_key.clone()),
    };
    let c = ExoClient::new(settings(&sim, creds, 100)).expect("client");
    let err = c.check_token().await.expect_err("untrusted certificate");
    assert!(matches!(err, ExoError::TokenRefused { .. }), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    assert!(
        !text.contains(other_key.lines().nth(1).unwrap_or("-")),
        "{text}"
    );
    assert!(!text.contains("eyJ"), "no JWT in errors: {text}");
}

#[tokio::test]
async fn a_wrong_secret_is_refused_and_never_printed() {
    let sim = start(1, None).await;
    let wrong = "wrong-secret-Zk3~do-not-print";
    let c = ExoClient::new(settings(
        &sim,
        Credentials::ClientSecret(Secret::new(wrong)),
        100,
    ))
    .expect("client");
    let err = c.get_mailbox("anyone").await.expect_err("refused");
    assert!(
        matches!(
            err,
            ExoError::TokenRefused {
                status: 401 | 400,
                ..
            }
        ),
        "{err:?}"
    );
    let text = format!("{err} {err:?} {c:?}");
    assert!(!text.contains(wrong), "{text}");
    assert!(!text.contains(SECRET), "{text}");
}

#[tokio::test]
async fn get_mailbox_finds_one_and_unknown_is_none() {
    let sim = start(5, None).await;
    let c = client(&sim, 100);
    let (all, _) = collect_all(&c).await;
    let upn = all[2].user_principal_name.clone().expect("upn");
    let m = c.get_mailbox(&upn).await.expect("read").expect("exists");
    assert_eq!(
        m.external_directory_object_id,
        all[2].external_directory_object_id
    );
    let none = c
        .get_mailbox("nobody-here@contoso.com")
        .await
        .expect("unknown identity is not an error");
    assert_eq!(none, None);
}

#[tokio::test]
async fn set_mailbox_then_changed_since_sees_only_the_changes() {
    let sim = start(20, None).await;
    let c = client(&sim, 7);
    let (all, _) = collect_all(&c).await;
    sim.state().advance_clock(3600);
    let watermark = sim.state().now();
    sim.state().advance_clock(60);
    for m in &all[..3] {
        let mut p = Map::new();
        p.insert("CustomAttribute7".into(), json!("changed by test"));
        c.set_mailbox(m.primary_smtp_address.as_deref().expect("smtp"), p)
            .await
            .expect("set");
    }
    let mut changed = Vec::new();
    let mut stream = c.changed_since(watermark, jiff::SignedDuration::from_secs(30));
    while let Some(item) = stream.next().await {
        changed.push(item.expect("mailbox"));
    }
    assert_eq!(changed.len(), 3, "{changed:?}");
    assert!(
        changed
            .iter()
            .all(|m| m.custom_attributes[6].as_deref() == Some("changed by test"))
    );
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let sim = start(3, None).await;
    let c = client(&sim, 100);
    c.check_token().await.expect("token");
    fault(
        &sim,
        Endpoint::Invoke,
        FaultKind::TooManyRequests {
            retry_after_secs: 1.2,
        },
        Some(1),
    );
    let started = Instant::now();
    let (mailboxes, errors) = collect_all(&c).await;
    let elapsed = started.elapsed();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(mailboxes.len(), 3);
    assert!(
        elapsed >= Duration::from_millis(1200),
        "waited only {elapsed:?}"
    );
    assert_eq!(sim.state().request_count(Endpoint::Invoke), 2);
}

#[tokio::test]
async fn a_429_storm_is_waited_out_without_using_up_the_tries() {
    // Twelve 429s in a row (three times max_attempts): the service asks to slow down, it is
    // not failing; every one is waited out and the listing completes.
    let sim = start(3, None).await;
    let c = client(&sim, 100);
    fault(
        &sim,
        Endpoint::Invoke,
        FaultKind::TooManyRequests {
            retry_after_secs: 0.05,
        },
        Some(12),
    );
    let started = Instant::now();
    let (mailboxes, errors) = collect_all(&c).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(mailboxes.len(), 3);
    assert_eq!(sim.state().request_count(Endpoint::Invoke), 13);
    assert!(started.elapsed() >= Duration::from_millis(600));
}

#[tokio::test]
async fn throttling_beyond_its_budget_counts_as_failed_tries() {
    // A budget of 2 s (each wait charged at least 1 s): two 429s are free, then every 429
    // counts, so a permanent 429 ends after 2 + max_attempts requests with a clear error.
    let sim = start(3, None).await;
    let mut s = settings(&sim, secret(), 100);
    s.retry.throttle_budget = Duration::from_secs(2);
    let c = ExoClient::new(s).expect("client");
    fault(
        &sim,
        Endpoint::Invoke,
        FaultKind::TooManyRequests {
            retry_after_secs: 0.01,
        },
        None,
    );
    let (_, errors) = collect_all(&c).await;
    assert_eq!(errors.len(), 1);
    match &errors[0] {
        ExoError::RetriesExhausted { attempts, last, .. } => {
            assert_eq!(*attempts, 4);
            assert!(last.contains("429"), "{last}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(sim.state().request_count(Endpoint::Invoke), 6);
}

#[tokio::test]
async fn a_permanent_503_gives_up_after_max_attempts() {
    let sim = start(3, None).await;
    let c = client(&sim, 100);
    fault(&sim, Endpoint::Invoke, FaultKind::ServiceUnavailable, None);
    let (_, errors) = collect_all(&c).await;
    assert_eq!(errors.len(), 1);
    match &errors[0] {
        ExoError::RetriesExhausted { attempts, last, .. } => {
            assert_eq!(*attempts, 4);
            assert!(last.contains("503"), "{last}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = errors[0].to_string();
    assert!(
        text.contains("after 4 tries") && text.contains("Get-Mailbox"),
        "{text}"
    );
    assert_eq!(sim.state().request_count(Endpoint::Invoke), 4);
}

#[tokio::test]
async fn transient_failures_are_retried() {
    let kinds = [
        FaultKind::InternalServerError,
        FaultKind::ServiceUnavailable,
        FaultKind::ResetConnection,
    ];
    for kind in kinds {
        let sim = start(4, None).await;
        let c = client(&sim, 2);
        fault(&sim, Endpoint::NextLink, kind.clone(), Some(2));
        let (mailboxes, errors) = collect_all(&c).await;
        assert!(errors.is_empty(), "{kind:?}: {errors:?}");
        assert_eq!(mailboxes.len(), 4, "{kind:?}");
        assert_eq!(sim.state().request_count(Endpoint::Invoke), 4, "{kind:?}");
    }
}

/// An answer slower than `timeout` is given up at the time-out (not waited out) and the
/// request is sent once more, which is answered: two requests, the first held by the fault.
#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried() {
    const TIMEOUT: Duration = Duration::from_millis(500);
    const SLOW: Duration = Duration::from_secs(30);
    let sim = start(2, None).await;
    let mut s = settings(&sim, secret(), 100);
    s.timeout = TIMEOUT;
    let c = ExoClient::new(s).expect("client");
    c.check_token().await.expect("token");
    let rule = sim.state().add_fault(exo_sim::FaultRule::times(
        Endpoint::Invoke,
        FaultKind::Delay {
            ms: SLOW.as_millis() as u64,
        },
        1,
    ));
    let started = std::time::Instant::now();
    let (mailboxes, errors) = collect_all(&c).await;
    let elapsed = started.elapsed();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(mailboxes.len(), 2);
    assert_eq!(sim.state().fired(rule), 1, "the slow answer was met");
    assert_eq!(
        sim.state().request_count(Endpoint::Invoke),
        2,
        "the timed-out request and the one sent again"
    );
    // Not a speed figure: the bounds say the client waited for the time-out and then gave the
    // slow answer up instead of waiting it out.
    assert!(
        elapsed >= TIMEOUT && elapsed < SLOW,
        "{elapsed:?}: waited for {TIMEOUT:?}, not for {SLOW:?}"
    );
}

#[tokio::test]
async fn a_truncated_or_malformed_page_is_an_error_not_an_end() {
    for kind in [FaultKind::TruncatedJson, FaultKind::MalformedJson] {
        let sim = start(30, None).await;
        let c = client(&sim, 10);
        fault(&sim, Endpoint::NextLink, kind.clone(), Some(1));
        let mut stream = c.mailboxes(None);
        let mut read = 0;
        let mut error = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(_) => read += 1,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        assert_eq!(read, 10, "{kind:?}: the first page is delivered");
        let error = error.unwrap_or_else(|| panic!("{kind:?}: the stream ended silently"));
        assert!(
            matches!(error, ExoError::MalformedPage { .. }),
            "{kind:?}: {error:?}"
        );
        assert!(error.to_string().contains("page 2"), "{error}");
        assert!(stream.next().await.is_none(), "nothing after the error");
    }
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once() {
    let sim = start(3, None).await;
    let c = client(&sim, 100);
    c.check_token().await.expect("token");
    fault(&sim, Endpoint::Invoke, FaultKind::ExpiredToken, Some(1));
    let (mailboxes, errors) = collect_all(&c).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(mailboxes.len(), 3);
    assert_eq!(c.stats().token_requests, 2);
    assert_eq!(sim.state().request_count(Endpoint::Token), 2);
}

#[tokio::test]
async fn a_token_refused_twice_is_an_error_after_one_refresh() {
    let sim = start(3, None).await;
    let c = client(&sim, 100);
    fault(&sim, Endpoint::Invoke, FaultKind::ExpiredToken, None);
    let err = c.get_mailbox("anyone").await.expect_err("unauthorized");
    assert!(matches!(err, ExoError::Unauthorized { .. }), "{err:?}");
    assert_eq!(c.stats().token_requests, 2, "exactly one refresh");
    assert_eq!(sim.state().request_count(Endpoint::Invoke), 2);
}

#[tokio::test]
async fn an_expiring_token_is_replaced_before_use() {
    let sim = exo_sim::spawn(SimConfig {
        tenant: TENANT.into(),
        client_id: CLIENT_ID.into(),
        client_secret: Some(SECRET.into()),
        token_lifetime_secs: 1,
        seed: Some(SeedSpec {
            count: 1,
            ..SeedSpec::default()
        }),
        ..SimConfig::default()
    })
    .await
    .expect("sim");
    let c = client(&sim, 100);
    c.check_token().await.expect("token");
    c.check_token().await.expect("cached");
    assert_eq!(c.stats().token_requests, 1);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (mailboxes, errors) = collect_all(&c).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(mailboxes.len(), 1);
    assert_eq!(c.stats().token_requests, 2, "renewed in the refresh margin");
}

#[tokio::test]
async fn a_broken_next_link_is_an_error_not_an_end() {
    let sim = start(25, None).await;
    let c = client(&sim, 10);
    fault(&sim, Endpoint::Invoke, FaultKind::BrokenNextLink, Some(1));
    let (mailboxes, errors) = collect_all(&c).await;
    assert_eq!(mailboxes.len(), 10, "the first page is delivered");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        matches!(errors[0], ExoError::BrokenNextLink { .. }),
        "{:?}",
        errors[0]
    );
}

#[tokio::test]
async fn ten_thousand_mailboxes_page_through_holding_one_page() {
    let sim = start(10_000, None).await;
    let c = client(&sim, 1000);
    let mut stream = c.mailboxes(None);
    let mut count = 0usize;
    let mut max_requests_ahead = 0i64;
    while let Some(item) = stream.next().await {
        item.expect("mailbox");
        count += 1;
        // Pages fetched so far can exceed the pages needed for `count` items by at most one
        // (the page being consumed): nothing is read ahead or buffered beyond it.
        let requests = c.stats().api_requests as i64;
        let needed = count.div_ceil(1000) as i64;
        max_requests_ahead = max_requests_ahead.max(requests - needed);
    }
    assert_eq!(count, 10_000);
    assert_eq!(max_requests_ahead, 0);
    assert_eq!(sim.state().request_count(Endpoint::Invoke), 10);

    // Stopping early stops the requests.
    let c2 = client(&sim, 1000);
    let taken: Vec<_> = c2.mailboxes(None).take(1500).collect().await;
    assert_eq!(taken.len(), 1500);
    assert_eq!(c2.stats().api_requests, 2);
}

#[tokio::test]
async fn invoke_streams_raw_records_of_any_cmdlet() {
    let sim = start(4, None).await;
    let c = client(&sim, 3);
    let mut params = Map::new();
    params.insert("ResultSize".into(), Value::String("Unlimited".into()));
    let records: Vec<Value> = c
        .invoke("Get-Mailbox", params)
        .map(|r| r.expect("record"))
        .collect()
        .await;
    assert_eq!(records.len(), 4);
    assert!(records.iter().all(|r| r.get("Guid").is_some()));
}

#[tokio::test]
async fn logs_never_carry_secrets_or_tokens() {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sim = start(5, None).await;
    let c = client(&sim, 2);
    fault(&sim, Endpoint::Invoke, FaultKind::ExpiredToken, Some(1));
    fault(
        &sim,
        Endpoint::NextLink,
        FaultKind::ServiceUnavailable,
        Some(1),
    );
    let (mailboxes, errors) = collect_all(&c).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(mailboxes.len(), 5);

    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = make_certificate(dir.path());
    let sim2 = start(1, Some(cert.clone())).await;
    let creds = Credentials::Certificate {
        certificate_pem: cert,
        private_key_pem: Secret::new(key),
    };
    ExoClient::new(settings(&sim2, creds, 10))
        .expect("client")
        .check_token()
        .await
        .expect("token");

    let logs = String::from_utf8(buf.0.lock().expect("lock").clone()).expect("utf8");
    assert!(
        logs.contains("refreshing once"),
        "the log was captured: {logs}"
    );
    assert!(!logs.contains(SECRET), "{logs}");
    assert!(
        !logs.contains("eyJ"),
        "a JWT (token or assertion) was logged: {logs}"
    );
    assert!(!logs.contains("PRIVATE KEY"), "{logs}");
}

#[tokio::test]
async fn a_cmdlet_the_service_rejects_is_a_clear_error() {
    // The emulator implements Get-/Set-Mailbox only, so the junk email configuration (the
    // safelist hash source) is refused the way the service refuses an unknown cmdlet.
    let sim = start(1, None).await;
    let c = client(&sim, 100);
    let (all, _) = collect_all(&c).await;
    let mut m = all[0].clone();
    let err = c
        .fill_safelist_hashes(&mut m)
        .await
        .expect_err("unsupported");
    assert!(
        matches!(
            err,
            ExoError::Service {
                status: 400..=499,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("Get-MailboxJunkEmailConfiguration"),
        "{err}"
    );
    assert_eq!(m.safe_senders_hash, None, "nothing invented");
}
