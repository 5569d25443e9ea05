//! The InvokeCommand client: requests with retries, paging as a stream, typed helpers.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use exo_writeback_core::mailbox::Mailbox;
use futures::stream::{BoxStream, StreamExt};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use url::Url;

use crate::config::{ExoConfig, ExoSettings};
use crate::error::{ExoError, ServiceError};
use crate::filter::when_changed_filter;
use crate::safelist::JunkEmailConfiguration;
use crate::token::TokenSource;
use crate::wire::{
    MAILBOX_PROPERTIES, MailboxRecord, mailbox_from_raw, mailbox_from_record, record_identity,
    record_value,
};

mod paging;
mod recipients;
mod send;

use paging::Paging;

pub use send::ANSWER_TIMEOUT_TRIES;

/// A stream of results that holds at most one result page in memory.
pub type ResultStream<T> = BoxStream<'static, Result<T, ExoError>>;

/// Counters of what the client sent, for diagnostics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientStats {
    /// InvokeCommand requests sent (every try counts).
    pub api_requests: u64,
    /// Token endpoint requests sent (every try counts).
    pub token_requests: u64,
}

/// Client of the Exchange Online admin API (`/adminapi/beta/{tenant}/InvokeCommand`), as used
/// by the ExchangeOnlineManagement v3 module. Cheap to clone.
#[derive(Clone)]
pub struct ExoClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    settings: ExoSettings,
    endpoint: Url,
    tokens: TokenSource,
    connection_id: String,
    api_requests: AtomicU64,
    observer: std::sync::OnceLock<crate::observe::ExoObserver>,
}

impl std::fmt::Debug for ExoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExoClient")
            .field("tenant", &self.inner.settings.tenant)
            .field("endpoint", &self.inner.endpoint.as_str())
            .finish_non_exhaustive()
    }
}

/// A human description of a transport failure (no URL query, no headers).
pub(crate) fn describe_transport(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "connection broke while reading the response"
    } else if e.is_request() {
        "request failed"
    } else {
        "network error"
    };
    let mut chain = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    if chain.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {}", chain.join(": "))
    }
}

impl ExoClient {
    /// Builds a client from the `[exo]` section (reads the credential files).
    pub fn from_config(config: &ExoConfig) -> Result<Self, ExoError> {
        Self::new(config.settings()?)
    }

    /// Builds a client from validated settings. TLS certificates are always verified.
    pub fn new(settings: ExoSettings) -> Result<Self, ExoError> {
        crate::config::validate_tenant(&settings.tenant)?;
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(15)))
            .user_agent(concat!("exo-writeback/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ExoError::HttpClient(e.to_string()))?;
        let base = settings.api_base.as_str().trim_end_matches('/');
        let endpoint = Url::parse(&format!(
            "{base}/adminapi/beta/{}/InvokeCommand",
            settings.tenant
        ))
        .map_err(|e| ExoError::HttpClient(format!("cannot form the API endpoint: {e}")))?;
        let plain: Vec<&str> = [
            ("login_base", &settings.login_base),
            ("api_base", &settings.api_base),
        ]
        .into_iter()
        .filter(|(_, u)| u.scheme() == "http")
        .map(|(k, _)| k)
        .collect();
        if !plain.is_empty() {
            tracing::warn!(
                keys = %plain.join(", "),
                "plain http to a loopback address (allow_insecure_http): only for a local emulator"
            );
        }
        for warning in settings.warnings(jiff::Timestamp::now()) {
            tracing::warn!("{warning}");
        }
        let tokens = TokenSource::new(http.clone(), &settings)?;
        Ok(ExoClient {
            inner: Arc::new(Inner {
                http,
                settings,
                endpoint,
                tokens,
                connection_id: uuid::Uuid::new_v4().to_string(),
                api_requests: AtomicU64::new(0),
                observer: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Reports every request attempt and throttling wait to `observer` (metrics). Set once;
    /// a second observer is ignored.
    pub fn set_observer(&self, observer: crate::observe::ExoObserver) {
        let _ = self.inner.observer.set(observer);
    }

    pub(crate) fn observe(&self, event: crate::observe::ExoEvent) {
        if let Some(o) = self.inner.observer.get() {
            o(&event);
        }
    }

    pub fn settings(&self) -> &ExoSettings {
        &self.inner.settings
    }

    /// `POST` target: `{api_base}/adminapi/beta/{tenant}/InvokeCommand`.
    pub fn endpoint(&self) -> &Url {
        &self.inner.endpoint
    }

    pub fn stats(&self) -> ClientStats {
        ClientStats {
            api_requests: self.inner.api_requests.load(Ordering::Relaxed),
            token_requests: self.inner.tokens.fetches.load(Ordering::Relaxed),
        }
    }

    /// Obtains (or reuses) an access token; proves the credential works.
    pub async fn check_token(&self) -> Result<(), ExoError> {
        self.inner.tokens.get().await.map(|_| ())
    }

    /// Runs any cmdlet and streams the raw records of every result page, following
    /// `@odata.nextLink`. At most one page is held in memory.
    pub fn invoke(&self, cmdlet: &str, parameters: Map<String, Value>) -> ResultStream<Value> {
        self.invoke_selecting(cmdlet, parameters, None)
    }

    fn invoke_selecting(
        &self,
        cmdlet: &str,
        parameters: Map<String, Value>,
        select: Option<&[&str]>,
    ) -> ResultStream<Value> {
        let request = format!("{cmdlet} (a result page)");
        self.invoke_raw(cmdlet, parameters, select)
            .map(move |r| {
                r.and_then(|raw| {
                    record_value(&raw).map_err(|problem| ExoError::MalformedPage {
                        request: request.clone(),
                        problem,
                    })
                })
            })
            .boxed()
    }

    /// [`ExoClient::invoke`]'s records as their JSON text, for a listing that decodes them
    /// straight into its type (Get-Mailbox: `wire/mailbox.rs`).
    fn invoke_raw(
        &self,
        cmdlet: &str,
        parameters: Map<String, Value>,
        select: Option<&[&str]>,
    ) -> ResultStream<Box<RawValue>> {
        let valid_name = !cmdlet.is_empty()
            && cmdlet.len() <= 100
            && cmdlet
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid_name {
            let e = ExoError::InvalidRequest(format!(
                "{cmdlet:?} is not a cmdlet name (Verb-Noun, letters, digits and '-')"
            ));
            return futures::stream::once(async move { Err(e) }).boxed();
        }
        let mut first = self.inner.endpoint.clone();
        if let Some(props) = select {
            first
                .query_pairs_mut()
                .append_pair("$select", &props.join(","));
        }
        Paging::start(self.clone(), cmdlet, parameters, first)
    }

    /// One mailbox by identity (GUID, UPN, address, alias…). `Ok(None)` when Exchange Online
    /// says it does not exist.
    pub async fn get_mailbox(&self, identity: &str) -> Result<Option<Mailbox>, ExoError> {
        self.get_one("Get-Mailbox", identity, MAILBOX_PROPERTIES)
            .await?
            .map(to_mailbox)
            .transpose()
    }

    /// The record of `cmdlet -Identity <identity>` (`$select`ing `select`); `Ok(None)` when
    /// Exchange Online says it does not exist.
    pub(crate) async fn get_one(
        &self,
        cmdlet: &str,
        identity: &str,
        select: &[&str],
    ) -> Result<Option<Value>, ExoError> {
        let mut params = Map::new();
        params.insert("Identity".into(), Value::String(identity.to_owned()));
        let mut stream = self.invoke_selecting(cmdlet, params, Some(select));
        // Every item of the (one-page) answer: errors reported beside the record count too.
        let mut found = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(record) if found.is_none() => found = Some(record),
                Ok(_) => {}
                Err(e)
                    if found.is_none()
                        && e.service_error()
                            .is_some_and(ServiceError::is_object_not_found) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }

    /// All mailboxes matching an optional OPATH filter (`-ResultSize Unlimited`). A malformed
    /// record yields an [`ExoError::MalformedRecord`] item and the stream goes on; any other
    /// error ends it.
    pub fn mailboxes(&self, filter: Option<&str>) -> ResultStream<Mailbox> {
        let mut params = Map::new();
        params.insert("ResultSize".into(), Value::String("Unlimited".into()));
        if let Some(f) = filter {
            params.insert("Filter".into(), Value::String(f.to_owned()));
        }
        self.invoke_raw("Get-Mailbox", params, Some(MAILBOX_PROPERTIES))
            .map(|r| r.and_then(|raw| read_mailbox(mailbox_from_raw(&raw))))
            .boxed()
    }

    /// Mailboxes changed since `watermark - overlap` (`WhenChangedUTC -ge '…'`), each at most
    /// once per poll (by ExternalDirectoryObjectId, else Guid, else Identity).
    pub fn changed_since(
        &self,
        watermark: jiff::Timestamp,
        overlap: jiff::SignedDuration,
    ) -> ResultStream<Mailbox> {
        let since = watermark
            .checked_sub(overlap.abs())
            .unwrap_or(jiff::Timestamp::MIN);
        let mut params = Map::new();
        params.insert("ResultSize".into(), Value::String("Unlimited".into()));
        params.insert("Filter".into(), Value::String(when_changed_filter(since)));
        let mut seen: HashSet<String> = HashSet::new();
        self.invoke_raw("Get-Mailbox", params, Some(MAILBOX_PROPERTIES))
            .filter_map(move |r| {
                let r = r.map(|raw| mailbox_from_raw(&raw));
                let keep = match &r {
                    Ok(record) => record.key.as_ref().is_none_or(|k| seen.insert(k.clone())),
                    Err(_) => true,
                };
                futures::future::ready(keep.then(|| r.and_then(read_mailbox)))
            })
            .boxed()
    }

    /// Runs `Set-Mailbox -Identity <identity>` with the given parameters (e.g.
    /// `{"CustomAttribute1": "x"}` or `{"EmailAddresses": {"@odata.type":
    /// "#Exchange.GenericHashTable", "Add": […]}}`).
    pub async fn set_mailbox(
        &self,
        identity: &str,
        parameters: Map<String, Value>,
    ) -> Result<(), ExoError> {
        let mut params = parameters;
        params.insert("Identity".into(), Value::String(identity.to_owned()));
        let mut stream = self.invoke("Set-Mailbox", params);
        while let Some(item) = stream.next().await {
            item?;
        }
        Ok(())
    }

    /// The junk email lists of a mailbox (`Get-MailboxJunkEmailConfiguration`), the source of
    /// the safelist hashes. `Ok(None)` when the mailbox does not exist.
    pub async fn junk_email_configuration(
        &self,
        identity: &str,
    ) -> Result<Option<JunkEmailConfiguration>, ExoError> {
        let mut params = Map::new();
        params.insert("Identity".into(), Value::String(identity.to_owned()));
        let mut stream = self.invoke("Get-MailboxJunkEmailConfiguration", params);
        let record = match stream.next().await {
            None => return Ok(None),
            Some(Ok(r)) => r,
            Some(Err(e))
                if e.service_error()
                    .is_some_and(ServiceError::is_object_not_found) =>
            {
                return Ok(None);
            }
            Some(Err(e)) => return Err(e),
        };
        junk_email_from_record(identity, &record).map(Some)
    }

    /// Fills the hybrid profile's safelist hashes of `mailbox` from its junk email
    /// configuration (one extra request per mailbox). A mailbox without a configuration (never
    /// opened in Outlook) keeps `None`. See PROTOCOL.md §5: the hash format is not confirmed by
    /// Microsoft's public documentation.
    pub async fn fill_safelist_hashes(&self, mailbox: &mut Mailbox) -> Result<(), ExoError> {
        let Some(identity) = mailbox
            .external_directory_object_id
            .clone()
            .or_else(|| mailbox.primary_smtp_address.clone())
            .or_else(|| mailbox.user_principal_name.clone())
        else {
            return Ok(());
        };
        if let Some(junk) = self.junk_email_configuration(&identity).await? {
            mailbox.safe_senders_hash = junk.safe_senders_hash();
            mailbox.blocked_senders_hash = junk.blocked_senders_hash();
            mailbox.safe_recipients_hash = junk.safe_recipients_hash();
        }
        Ok(())
    }

    fn next_link(&self, link: &str, request: &str) -> Result<Url, ExoError> {
        check_next_link(&self.inner.endpoint, link).map_err(|problem| ExoError::UnsafeNextLink {
            request: request.to_owned(),
            problem,
        })
    }
}

/// Checks that a nextLink stays on the API endpoint's origin (scheme, host, port): the
/// bearer token goes with it. Relative links are resolved against the endpoint.
pub fn check_next_link(endpoint: &Url, link: &str) -> Result<Url, String> {
    let url = Url::parse(link)
        .or_else(|_| endpoint.join(link))
        .map_err(|e| format!("{link:?} is not a URL ({e})"))?;
    if url.origin() != endpoint.origin() {
        return Err(format!(
            "it points to {}, not to the API host {}; the access token is not sent elsewhere",
            url.origin().ascii_serialization(),
            endpoint.origin().ascii_serialization()
        ));
    }
    Ok(url)
}

/// Reads the lists of a `Get-MailboxJunkEmailConfiguration` record.
pub fn junk_email_from_record(
    identity: &str,
    record: &Value,
) -> Result<JunkEmailConfiguration, ExoError> {
    let list = |key: &str| -> Result<Vec<String>, ExoError> {
        match record.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items
                .iter()
                .filter_map(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned)
                .collect()),
            Some(_) => Err(ExoError::MalformedRecord {
                mailbox: identity.to_owned(),
                problem: format!("{key} is not a list"),
                external_directory_object_id: None,
                primary_smtp_address: None,
            }),
        }
    };
    Ok(JunkEmailConfiguration {
        trusted_senders_and_domains: list("TrustedSendersAndDomains")?,
        blocked_senders_and_domains: list("BlockedSendersAndDomains")?,
        trusted_recipients_and_domains: list("TrustedRecipientsAndDomains")?,
    })
}

fn read_mailbox(record: MailboxRecord) -> Result<Mailbox, ExoError> {
    record.mailbox.map_err(|p| ExoError::MalformedRecord {
        mailbox: p.name,
        problem: p.problem,
        external_directory_object_id: p.external_directory_object_id,
        primary_smtp_address: p.primary_smtp_address,
    })
}

fn to_mailbox(record: Value) -> Result<Mailbox, ExoError> {
    mailbox_from_record(&record).map_err(|e| record_error(&record, e))
}

/// A record that could not be read: `(name, problem)` with the ids still readable in it.
fn record_error(record: &Value, (mailbox, problem): (String, String)) -> ExoError {
    let (external_directory_object_id, primary_smtp_address) = record_identity(record);
    ExoError::MalformedRecord {
        mailbox,
        problem,
        external_directory_object_id,
        primary_smtp_address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn junk_email_records() {
        let rec = json!({
            "Identity": "x",
            "TrustedSendersAndDomains@odata.type": "#Collection(String)",
            "TrustedSendersAndDomains": ["a@b.com", "contoso.com", ""],
            "BlockedSendersAndDomains": null
        });
        let j = junk_email_from_record("x", &rec).expect("lists");
        assert_eq!(
            j.trusted_senders_and_domains,
            vec!["a@b.com", "contoso.com"]
        );
        assert!(j.blocked_senders_and_domains.is_empty());
        assert_eq!(j.safe_senders_hash().map(|h| h.len()), Some(8));
        assert_eq!(j.blocked_senders_hash(), None);
        let bad = json!({"TrustedSendersAndDomains": "a@b.com"});
        let err = junk_email_from_record("x@y", &bad).expect_err("not a list");
        assert!(err.to_string().contains("x@y"), "{err}");
    }

    #[test]
    fn next_links_must_stay_on_the_api_origin() {
        let ep =
            Url::parse("https://outlook.office365.com/adminapi/beta/t/InvokeCommand").expect("url");
        let ok = [
            "https://outlook.office365.com/adminapi/beta/t/InvokeCommand?%24skiptoken=abc",
            "https://OUTLOOK.office365.com:443/adminapi/beta/t/InvokeCommand?x=1",
            "/adminapi/beta/t/InvokeCommand?%24skiptoken=rel",
        ];
        for link in ok {
            assert!(check_next_link(&ep, link).is_ok(), "{link}");
        }
        let bad = [
            "https://evil.example/adminapi/beta/t/InvokeCommand",
            "http://outlook.office365.com/adminapi/beta/t/InvokeCommand",
            "https://outlook.office365.com:8443/x",
            "//evil.example/x",
        ];
        for link in bad {
            let err = check_next_link(&ep, link).expect_err(link);
            assert!(err.contains("not sent elsewhere"), "{err}");
        }
    }
}
