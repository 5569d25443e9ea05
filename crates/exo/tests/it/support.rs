//! Helpers for the tests of what a real tenant needs: an emulator configured like a tenant,
//! and a client built the way the agent builds it, from an `[exo]` section.

use std::time::Duration;

use exo_sim::{FaultKind, FaultRule, SeedSpec, SimCloud, SimConfig, SimHandle};
use exo_writeback_core::mailbox::Mailbox;
use exo_writeback_exo::{ExoClient, ExoConfig, ExoError, ExoSettings, RetryPolicy};
use futures::StreamExt;

pub const INITIAL_DOMAIN: &str = "contoso.onmicrosoft.com";
pub const TENANT_ID: &str = "4b8c18bd-2f9f-4227-af55-9f1061cf9c32";
pub const CLIENT_ID: &str = "6a5d0c4b-2f0e-4c57-9c36-3b1e2d7f8a90";
pub const SECRET: &str = "real-tenant-secret-Qw3~value";

/// An emulated tenant (initial domain [`INITIAL_DOMAIN`], id [`TENANT_ID`]) with `count`
/// mailboxes, a client secret and optionally a trusted certificate.
pub fn tenant(count: usize, cloud: SimCloud, cert_pem: Option<String>) -> SimConfig {
    SimConfig {
        tenant: INITIAL_DOMAIN.into(),
        tenant_id: Some(TENANT_ID.parse().expect("guid")),
        cloud,
        client_id: CLIENT_ID.into(),
        client_secret: Some(SECRET.into()),
        client_cert_pem: cert_pem,
        seed: (count > 0).then(|| SeedSpec {
            count,
            ..SeedSpec::default()
        }),
        ..SimConfig::default()
    }
}

pub async fn spawn(config: SimConfig) -> SimHandle {
    exo_sim::spawn(config).await.expect("emulator starts")
}

/// The `[exo]` section an administrator would write for the emulator at `base`, with
/// `tenant` and any `extra` keys; the client secret comes from the environment.
pub fn section(base: &str, tenant: &str, extra: &str) -> ExoConfig {
    let text = format!(
        "tenant = \"{tenant}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret_env = \"EXO_TEST_SECRET\"\n\
         login_base = \"{base}\"\napi_base = \"{base}\"\nallow_insecure_http = true\n{extra}"
    );
    toml::from_str(&text).unwrap_or_else(|e| panic!("{text}\n{e}"))
}

/// The settings of a section (the secret supplied), with quick retries for tests.
pub fn settings(config: &ExoConfig) -> Result<ExoSettings, exo_writeback_exo::ConfigError> {
    let mut s = config.settings_with_env(|n| (n == "EXO_TEST_SECRET").then(|| SECRET.into()))?;
    s.retry = RetryPolicy {
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        retry_after_cap: Duration::from_secs(10),
        throttle_budget: Duration::from_secs(30),
        ..s.retry
    };
    Ok(s)
}

pub fn client(config: &ExoConfig) -> ExoClient {
    ExoClient::new(settings(config).expect("valid section")).expect("client")
}

pub fn fault(sim: &SimHandle, endpoint: exo_sim::Endpoint, kind: FaultKind, count: Option<u32>) {
    sim.state().add_fault(FaultRule {
        endpoint,
        kind,
        count,
        probability: None,
        skip: 0,
    });
}

/// Every item of a mailbox stream: the mailboxes, and the errors in order.
pub async fn drain(
    mut stream: exo_writeback_exo::ResultStream<Mailbox>,
) -> (Vec<Mailbox>, Vec<ExoError>) {
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(m) => ok.push(m),
            Err(e) => errors.push(e),
        }
    }
    (ok, errors)
}
