//! `exo-sim`: an Exchange Online emulator for tests, demos and benchmarks.
//!
//! One listener serves:
//! - the Entra ID token endpoint `{base}/{tenant}/oauth2/v2.0/token` (client credentials with
//!   a secret or a certificate assertion);
//! - the admin API `{base}/adminapi/beta/{tenant}/InvokeCommand` (Get-Mailbox, Set-Mailbox);
//! - a control API under `{base}/_sim/` (seed, mailboxes, clock, faults, stats).
//!
//! Request and response shapes, and where each comes from, are listed in `PROTOCOL.md`.
//!
//! Architecture invariant: the protocol logic (`invoke`, `auth`, `opath`, `mailbox`, `routing`)
//! works on plain data; only this file, `fault_layer` and `control` know about HTTP, and only
//! `faults` about sockets.

pub mod auth;
pub mod cloud;
pub mod control;
pub mod errors;
mod fault_layer;
pub mod faults;
pub mod invoke;
pub mod mailbox;
pub mod opath;
pub mod recipient;
pub mod routing;
pub mod seed;
pub mod seed_ad;
pub mod skiptoken;
pub mod state;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::post;

pub use cloud::SimCloud;
pub use faults::{Endpoint, FaultKind, FaultRule};
pub use mailbox::{RecipientKind, SimMailbox};
pub use recipient::{RecipientDetails, SimRecipient};
pub use seed::SeedSpec;
pub use state::{SimState, StateError};

use crate::auth::{AadError, BearerError, TrustedCert};
use crate::errors::InvokeError;
use crate::fault_layer::{HandlerFault, json_error_body};
use crate::faults::{ConnInfo, KillableListener};
use crate::invoke::{InvokeContext, ODATA_JSON};

/// How to run the emulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The tenant's initial domain (`contoso.onmicrosoft.com`). Clients address the tenant
    /// (token endpoint and API path, case-insensitive) by it or by `tenant_id`.
    pub tenant: String,
    /// The tenant id (GUID); `None`: one derived from `tenant` (UUIDv5), stable across runs.
    pub tenant_id: Option<uuid::Uuid>,
    /// The Microsoft cloud: which token scope is accepted and the audience of tokens.
    pub cloud: SimCloud,
    /// The application (client) id tokens are issued to.
    pub client_id: String,
    /// The accepted client secret (`None`: secrets are refused).
    pub client_secret: Option<String>,
    /// The PEM certificate whose key signs client assertions (`None`: assertions refused).
    pub client_cert_pem: Option<String>,
    /// Lifetime of issued access tokens, in simulated seconds.
    pub token_lifetime_secs: u64,
    /// The largest page InvokeCommand returns (and the default page size).
    pub page_size_max: usize,
    /// Mailboxes to generate at start.
    pub seed: Option<SeedSpec>,
    /// Where to listen (default `127.0.0.1:0`, an ephemeral port).
    pub listen: SocketAddr,
    /// Seed of the RNG behind probabilistic fault rules.
    pub fault_seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            tenant: "contoso.onmicrosoft.com".into(),
            tenant_id: None,
            cloud: SimCloud::Worldwide,
            client_id: "6a5d0c4b-2f0e-4c57-9c36-3b1e2d7f8a90".into(),
            client_secret: None,
            client_cert_pem: None,
            token_lifetime_secs: 3599,
            page_size_max: 1000,
            seed: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            fault_seed: 0,
        }
    }
}

impl SimConfig {
    /// The domain used where the service writes the tenant's domain (addresses, OU).
    pub fn tenant_domain(&self) -> String {
        if self.tenant.contains('.') {
            self.tenant.to_ascii_lowercase()
        } else {
            format!("{}.onmicrosoft.com", self.tenant.to_ascii_lowercase())
        }
    }

    /// The tenant id: `tenant_id`, or a UUIDv5 of the initial domain.
    pub fn tenant_guid(&self) -> uuid::Uuid {
        self.tenant_id.unwrap_or_else(|| {
            uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_DNS, self.tenant_domain().as_bytes())
        })
    }
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the client certificate cannot be used: {0}")]
    Certificate(#[from] auth::CertError),
    #[error("seeding failed: {0}")]
    Seed(#[from] StateError),
    #[error("the configuration is invalid: {0}")]
    Config(String),
}

pub(crate) struct AppInner {
    pub state: SimState,
    pub config: SimConfig,
    pub cert: Option<TrustedCert>,
    pub base_url: String,
    pub tenant_domain: String,
    pub tenant_id: String,
}

impl AppInner {
    /// Whether a path segment names this tenant (initial domain or id, any case).
    fn is_tenant(&self, segment: &str) -> bool {
        segment.eq_ignore_ascii_case(&self.tenant_domain)
            || segment.eq_ignore_ascii_case(&self.tenant_id)
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub(crate) struct App(Arc<AppInner>);

impl std::ops::Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// A running emulator.
pub struct SimHandle {
    addr: SocketAddr,
    state: SimState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`: the base of the token endpoint, the API and `/_sim/`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The emulator's state (shared with the server).
    pub fn state(&self) -> SimState {
        self.state.clone()
    }

    /// The token endpoint URL (also the `aud` client assertions must carry).
    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.base_url())
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts the emulator on `config.listen`.
pub async fn spawn(config: SimConfig) -> Result<SimHandle, SimError> {
    if config.page_size_max == 0 {
        return Err(SimError::Config("page_size_max must be at least 1".into()));
    }
    if uuid::Uuid::parse_str(&config.tenant).is_ok() {
        return Err(SimError::Config(
            "tenant is the initial domain (contoso.onmicrosoft.com); give the GUID as tenant_id"
                .into(),
        ));
    }
    let cert = match &config.client_cert_pem {
        Some(pem) => Some(auth::trusted_cert_from_pem(pem)?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| SimError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| SimError::Bind {
        addr: config.listen,
        source,
    })?;
    let state = SimState::new(config.fault_seed);
    if let Some(spec) = &config.seed {
        let spec = spec.clone();
        let st = state.clone();
        tokio::task::spawn_blocking(move || st.add_mailboxes(seed::generate(&spec)))
            .await
            .map_err(|e| SimError::Config(format!("seeding task failed: {e}")))??;
    }
    let app = App(Arc::new(AppInner {
        state: state.clone(),
        tenant_domain: config.tenant_domain(),
        tenant_id: config.tenant_guid().to_string(),
        config,
        cert,
        base_url: format!("http://{addr}"),
    }));
    let router = router(app);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let listener = KillableListener { inner: listener };
    let task = tokio::spawn(async move {
        let serve = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<ConnInfo>(),
        )
        .with_graceful_shutdown(async move {
            let _ = rx.await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "server stopped");
        }
    });
    tracing::info!(%addr, "exo-sim listening");
    Ok(SimHandle {
        addr,
        state,
        shutdown: Some(tx),
        task: Some(task),
    })
}

fn router(app: App) -> Router {
    let exchange = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route(
            "/adminapi/beta/{tenant}/InvokeCommand",
            post(invoke_command),
        )
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            fault_layer::exchange_faults,
        ));
    Router::new()
        .merge(exchange)
        .merge(control::routes())
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found") })
        .with_state(app)
}

/// The "server" named in not-found messages.
pub(crate) const SERVER: &str = "EXOSIM01DC001.EMULATOR.PROD.OUTLOOK.COM";

fn base_from_headers(app: &App, headers: &HeaderMap) -> String {
    match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        Some(host) if !host.is_empty() => format!("http://{host}"),
        _ => app.base_url.clone(),
    }
}

async fn token(
    State(app): State<App>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let base = base_from_headers(&app, &headers);
    let mut audiences = Vec::new();
    for b in [&base, &app.base_url] {
        for t in [&tenant, &app.tenant_domain, &app.tenant_id] {
            audiences.push(format!("{b}/{t}/oauth2/v2.0/token"));
        }
    }
    let wall_now = jiff::Timestamp::now().as_second();
    let scope = app.config.cloud.scope();
    let policy = auth::TokenPolicy {
        tenant_names: [&app.tenant_domain, &app.tenant_id],
        tenant: &app.tenant_domain,
        scope: &scope,
        client_id: &app.config.client_id,
        client_secret: app.config.client_secret.as_deref(),
        cert: app.cert.as_ref(),
        audiences,
        wall_now,
    };
    let json_ct = [(header::CONTENT_TYPE, "application/json; charset=utf-8")];
    match auth::check_token_request(&tenant, &form, &policy) {
        Ok(()) => {
            let lifetime = app.config.token_lifetime_secs;
            let token = auth::issue_access_token(
                &app.state.inner.secret,
                app.config.cloud.resource(),
                &app.tenant_id,
                &app.config.client_id,
                app.state.now().as_second(),
                lifetime,
            );
            let body = serde_json::json!({
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": token,
            });
            (StatusCode::OK, json_ct, body.to_string()).into_response()
        }
        Err(e) => aad_error(&app, &base, e),
    }
}

fn aad_error(app: &App, base: &str, e: AadError) -> Response {
    tracing::info!(code = e.code, error = e.error, "token request refused");
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        e.body(app.state.now(), base).to_string(),
    )
        .into_response()
}

fn unauthorized(base: &str, why: BearerError) -> Response {
    let description = match why {
        BearerError::Missing => "No bearer token was presented",
        BearerError::Invalid => "The access token is invalid",
        BearerError::Expired => "The access token has expired",
    };
    let mut value = format!(
        "Bearer client_id=\"00000002-0000-0ff1-ce00-000000000000\", authorization_uri=\"{base}/common/oauth2/authorize\""
    );
    if why != BearerError::Missing {
        value.push_str(&format!(
            ", error=\"invalid_token\", error_description=\"{description}\""
        ));
    }
    let mut resp = (StatusCode::UNAUTHORIZED, "").into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// `odata.maxpagesize=N` from `Prefer` or `X-Prefer`.
fn max_page_size(headers: &HeaderMap) -> Option<usize> {
    for name in ["prefer", "x-prefer"] {
        for v in headers.get_all(name) {
            let Ok(s) = v.to_str() else { continue };
            for pref in s.split(',') {
                if let Some((k, val)) = pref.trim().split_once('=')
                    && k.trim().eq_ignore_ascii_case("odata.maxpagesize")
                    && let Ok(n) = val.trim().trim_matches('"').parse::<usize>()
                    && n > 0
                {
                    return Some(n);
                }
            }
        }
    }
    None
}

async fn invoke_command(
    State(app): State<App>,
    Path(tenant): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    fault: Option<axum::Extension<HandlerFault>>,
    body: Bytes,
) -> Response {
    let base = base_from_headers(&app, &headers);
    if !app.is_tenant(&tenant) {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, ODATA_JSON)],
            json_error_body(
                "NotFound",
                &format!("The tenant '{tenant}' is not served here."),
            ),
        )
            .into_response();
    }
    let fault = fault.map(|f| f.0);
    if matches!(fault, Some(HandlerFault::ForceExpired)) {
        return unauthorized(&base, BearerError::Expired);
    }
    let auth_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    if let Err(why) = auth::check_bearer(
        auth_header,
        &app.state.inner.secret,
        app.state.now().as_second(),
    ) {
        return unauthorized(&base, why);
    }
    let page_size = max_page_size(&headers)
        .unwrap_or(app.config.page_size_max)
        .min(app.config.page_size_max);
    let skiptoken = query.get("$skiptoken").cloned();
    let select = query.get("$select").cloned();
    let break_next_link = matches!(fault, Some(HandlerFault::BreakNextLink));
    let admin_api_errors = match fault {
        Some(HandlerFault::AdminApiErrors(e)) => Some(e),
        _ => None,
    };
    let anchor = headers
        .get("x-anchormailbox")
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let app2 = app.clone();
    let tenant2 = tenant.clone();
    let base2 = base.clone();
    let result = tokio::task::spawn_blocking(move || {
        let tenant_id = uuid::Uuid::parse_str(&app2.tenant_id).unwrap_or_default();
        let route = routing::resolve(
            anchor.as_deref(),
            &routing::Tenant {
                id: tenant_id,
                initial_domain: &app2.tenant_domain,
            },
            &app2.state,
        );
        let ctx = InvokeContext {
            state: &app2.state,
            base: &base2,
            tenant: &tenant2,
            tenant_domain: &app2.tenant_domain,
            page_size,
            skiptoken: skiptoken.as_deref(),
            select: select.as_deref(),
            break_next_link,
            route,
            admin_api_errors: admin_api_errors.as_deref(),
            server: SERVER,
        };
        invoke::invoke(&ctx, &body)
    })
    .await;
    let server = SERVER;
    let mut resp = match result {
        Ok(Ok(ok)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, ODATA_JSON)],
            ok.body,
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::info!(status = %e.status(), "InvokeCommand refused");
            e.into_response(server)
        }
        Err(e) => InvokeError::Cmdlet {
            error_id: "Ex000000",
            exception: "System.Exception",
            message: format!("internal emulator failure: {e}"),
        }
        .into_response(server),
    };
    let h = resp.headers_mut();
    h.insert("odata-version", HeaderValue::from_static("4.0"));
    h.insert(
        "preference-applied",
        HeaderValue::from_static("odata.include-annotations=\"*\""),
    );
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        h.insert("request-id", v);
    }
    resp
}
