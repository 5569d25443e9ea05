//! The connection to a domain controller: TLS, bind, reconnect, and the LDAP operations.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use exo_writeback_core::directory::{AttrValue, Attributes, DirectoryObject, ModOp, ObjectModify};
use exo_writeback_core::guid::{guid_dn, uuid_from_object_guid};
use exo_writeback_core::ldap_text::{escape_filter_bytes, escape_filter_value};
use exo_writeback_core::schema::{AttributeSchema, Schema, Syntax};
use exo_writeback_core::secret::Secret;
use ldap3::controls::{PagedResults, RawControl};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult, Mod, Scope};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use std::collections::HashSet;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::config::{AdConfig, AuthMethod, Transport};
use crate::error::{
    AdError, SIGNING_REQUIRED_HINT, ad_bind_subcode, ad_bind_subcode_problem,
    insufficient_access_hint, result_code_name,
};
use crate::wire::{RangeEnd, RawEntry, parse_entry, parse_paged_cookie, split_range};

/// The permissive-modify control: adding a present value or deleting an absent one succeeds.
pub const PERMISSIVE_MODIFY_OID: &str = "1.2.840.113556.1.4.1413";
const PAGED_RESULTS_OID: &str = "1.2.840.113556.1.4.319";

/// Search scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchScope {
    Base,
    OneLevel,
    Subtree,
}

impl From<SearchScope> for Scope {
    fn from(s: SearchScope) -> Scope {
        match s {
            SearchScope::Base => Scope::Base,
            SearchScope::OneLevel => Scope::OneLevel,
            SearchScope::Subtree => Scope::Subtree,
        }
    }
}

/// What the rootDSE says about the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootDse {
    pub naming_contexts: Vec<String>,
    pub default_naming_context: Option<String>,
    pub schema_naming_context: Option<String>,
    pub configuration_naming_context: Option<String>,
    pub dns_host_name: Option<String>,
    pub supported_controls: Vec<String>,
    pub supported_extensions: Vec<String>,
}

/// Counters of what the connector sent, for observability and for tests that prove paging.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdStats {
    /// Successful connects + binds (1 after connect, +1 per reconnect).
    pub connects: u64,
    /// Search requests sent (each page of a paged search is one).
    pub search_requests: u64,
    /// Pages received from paged searches.
    pub pages: u64,
    /// Extra requests made to fetch further ranges of large multi-valued attributes.
    pub range_requests: u64,
    /// Modify requests sent.
    pub modifies: u64,
}

#[derive(Default)]
struct Counters {
    connects: AtomicU64,
    search_requests: AtomicU64,
    pages: AtomicU64,
    range_requests: AtomicU64,
    modifies: AtomicU64,
}

struct Live {
    ldap: Ldap,
    driver: JoinHandle<()>,
    generation: u64,
}

/// A bound connection to a domain controller. Cheap operations take `&self`; requests are
/// multiplexed over one LDAP connection, which is re-opened once when it was dropped.
pub struct AdConnection {
    config: AdConfig,
    transport: Transport,
    password: Secret,
    tls: Option<Arc<ClientConfig>>,
    timeout: Duration,
    live: tokio::sync::Mutex<Option<Live>>,
    generation: AtomicU64,
    counters: Counters,
    root_dse: RootDse,
    base_dn: String,
    bind_identity: String,
    schema: RwLock<Option<Arc<Schema>>>,
    value_range: Option<u32>,
}

impl std::fmt::Debug for AdConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdConnection")
            .field("url", &self.config.url)
            .field("bind_identity", &self.bind_identity)
            .field("base_dn", &self.base_dn)
            .finish_non_exhaustive()
    }
}

impl AdConnection {
    /// Connect, bind, and read the rootDSE and the bind identity.
    pub async fn connect(config: &AdConfig, password: Secret) -> Result<AdConnection, AdError> {
        let transport = config.validate()?;
        let tls = match transport {
            Transport::Plain if config.auth == AuthMethod::Kerberos => None,
            Transport::Plain => {
                tracing::warn!(
                    url = %config.url,
                    "plain LDAP without TLS (allow_insecure_ldap = true): the bind password and all data cross the network unencrypted"
                );
                None
            }
            Transport::Ldaps | Transport::StartTls => Some(tls_config(config)?),
        };
        let mut conn = AdConnection {
            config: config.clone(),
            transport,
            password,
            tls,
            timeout: Duration::from_secs(config.timeout_secs),
            live: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
            counters: Counters::default(),
            root_dse: RootDse::default(),
            base_dn: String::new(),
            bind_identity: config.bind_dn.clone(),
            schema: RwLock::new(None),
            value_range: None,
        };
        conn.root_dse = conn.read_root_dse().await?;
        conn.bind_identity = conn.who_am_i().await?;
        conn.base_dn = match (&config.base_dn, &conn.root_dse.default_naming_context) {
            (Some(base), _) => base.clone(),
            (None, Some(default)) => default.clone(),
            (None, None) => {
                return Err(AdError::InvalidConfig {
                    problem: format!(
                        "{} announces no defaultNamingContext; set ad.base_dn",
                        config.url
                    ),
                });
            }
        };
        Ok(conn)
    }

    pub fn config(&self) -> &AdConfig {
        &self.config
    }
    /// The connect and per-operation timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
    pub fn transport(&self) -> Transport {
        self.transport
    }
    pub fn root_dse(&self) -> &RootDse {
        &self.root_dse
    }
    /// The identity the server sees for our bind (WhoAmI; the configured bind DN if the
    /// server does not answer WhoAmI).
    pub fn bind_identity(&self) -> &str {
        &self.bind_identity
    }
    /// The configured base DN, else the rootDSE's defaultNamingContext.
    pub fn base_dn(&self) -> &str {
        &self.base_dn
    }
    /// The containers searched for objects: `search_bases`, else the base DN.
    pub fn search_bases(&self) -> Vec<String> {
        match &self.config.search_bases {
            Some(bases) if !bases.is_empty() => bases.clone(),
            _ => vec![self.base_dn.clone()],
        }
    }
    /// `dn` lies within one of the search bases (case-insensitive DN comparison).
    pub fn in_search_bases(&self, dn: &str) -> bool {
        self.search_bases()
            .iter()
            .any(|base| exo_writeback_core::ldap_text::is_within(dn, base))
    }

    pub fn stats(&self) -> AdStats {
        let c = &self.counters;
        AdStats {
            connects: c.connects.load(Ordering::Relaxed),
            search_requests: c.search_requests.load(Ordering::Relaxed),
            pages: c.pages.load(Ordering::Relaxed),
            range_requests: c.range_requests.load(Ordering::Relaxed),
            modifies: c.modifies.load(Ordering::Relaxed),
        }
    }

    /// Drop the network connection as if the server or network had closed it (for tests of
    /// the reconnect path). The next operation reconnects.
    #[doc(hidden)]
    pub async fn simulate_connection_loss(&self) {
        if let Some(live) = self.live.lock().await.take() {
            live.driver.abort();
        }
    }

    /// Request multi-valued attributes `n` values at a time (`attr;range=0-(n-1)`, then the
    /// following ranges), as Windows AD does by itself above its MaxValRange (1500). Samba
    /// 4.17 announces MaxValRange=1500 but returns every value unless a range is asked for, so
    /// this makes the ranged-retrieval path run against it. `None` (default): ask for all
    /// values and follow whatever ranges the server returns.
    pub fn set_value_range(&mut self, n: Option<u32>) {
        self.value_range = n.filter(|n| *n > 0);
    }

    // ---- connection management ----

    async fn open(&self) -> Result<Live, AdError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.transport == Transport::StartTls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.config.url)
            .await
            .map_err(|e| self.connect_error(e))?;
        let url = self.config.url.clone();
        let driver = tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(url = %url, error = %e, "LDAP connection closed");
            }
        });
        let bound = match self.config.auth {
            AuthMethod::Simple => {
                ldap.with_timeout(self.timeout)
                    .simple_bind(&self.config.bind_dn, self.password.expose())
                    .await
            }
            AuthMethod::Kerberos => match self.kerberos_bind(&mut ldap).await {
                Ok(result) => Ok(result),
                Err(e) => {
                    driver.abort();
                    return Err(e);
                }
            },
        };
        let result = match bound {
            Ok(r) => r,
            Err(e) => {
                driver.abort();
                return Err(match e {
                    LdapError::Timeout { .. } => AdError::Unreachable {
                        address: self.config.url.clone(),
                        timeout_secs: self.config.timeout_secs,
                        reason: "no answer to the bind request".into(),
                    },
                    LdapError::GssapiOperationError(problem) => self.kerberos_error(problem),
                    LdapError::NoGssapiToken => {
                        self.kerberos_error("the DC sent no GSSAPI token".into())
                    }
                    other => self.op_error(other, "binding as", &self.config.bind_dn, ""),
                });
            }
        };
        if result.rc != 0 {
            driver.abort();
            return Err(self.bind_error(result));
        }
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        self.counters.connects.fetch_add(1, Ordering::Relaxed);
        Ok(Live {
            ldap,
            driver,
            generation,
        })
    }

    async fn handle(&self) -> Result<(Ldap, u64), AdError> {
        let mut live = self.live.lock().await;
        if let Some(l) = live.as_ref() {
            if !l.driver.is_finished() {
                return Ok((l.ldap.clone(), l.generation));
            }
            tracing::warn!(url = %self.config.url, "LDAP connection was dropped; reconnecting");
        }
        let fresh = self.open().await?;
        let handle = (fresh.ldap.clone(), fresh.generation);
        if let Some(old) = live.replace(fresh) {
            old.driver.abort();
        }
        Ok(handle)
    }

    async fn discard(&self, generation: u64) {
        let mut live = self.live.lock().await;
        if live.as_ref().is_some_and(|l| l.generation == generation)
            && let Some(old) = live.take()
        {
            old.driver.abort();
        }
    }

    /// Run `op` once on the connection; a connection that turns out to be lost is discarded
    /// (the next operation reconnects) and the error returned: the caller's retry policy
    /// decides whether to send it again (the engine's writer does, for modifies).
    async fn run_once<T, F, Fut>(&self, op: F) -> Result<T, AdError>
    where
        F: FnOnce(Ldap) -> Fut,
        Fut: Future<Output = Result<T, AdError>>,
    {
        let (ldap, generation) = self.handle().await?;
        let result = op(ldap).await;
        if let Err(e) = &result
            && e.is_connection_lost()
        {
            self.discard(generation).await;
        }
        result
    }

    /// Run `op` on the connection; when the connection turns out to be lost, reconnect once
    /// and run it again. Callers only pass reads (safe to repeat); modifies go through
    /// [`AdConnection::run_once`].
    pub(crate) async fn run<T, F, Fut>(&self, op: F) -> Result<T, AdError>
    where
        F: Fn(Ldap) -> Fut,
        Fut: Future<Output = Result<T, AdError>>,
    {
        let (ldap, generation) = self.handle().await?;
        match op(ldap).await {
            Err(e) if e.is_connection_lost() => {
                tracing::warn!(error = %e, "retrying once on a new connection");
                self.discard(generation).await;
                let (ldap, _) = self.handle().await?;
                op(ldap).await
            }
            other => other,
        }
    }

    // ---- error mapping ----

    fn connect_error(&self, e: LdapError) -> AdError {
        let address = self.config.url.clone();
        let timeout_secs = self.config.timeout_secs;
        match e {
            LdapError::Timeout { .. } => AdError::Unreachable {
                address,
                timeout_secs,
                reason: "no connection within the timeout".into(),
            },
            LdapError::Rustls { source } => self.tls_error(&source),
            LdapError::Io { source } => {
                if let Some(tls) = source
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                {
                    return self.tls_error(tls);
                }
                AdError::Unreachable {
                    address,
                    timeout_secs,
                    reason: source.to_string(),
                }
            }
            LdapError::LdapResult { result } => AdError::Tls {
                address,
                reason: format!(
                    "StartTLS refused: LDAP result {} ({}): {}",
                    result.rc,
                    result_code_name(result.rc),
                    result.text
                ),
            },
            LdapError::DNSName { source } => AdError::InvalidConfig {
                problem: format!("ad.url host is not a valid TLS server name: {source}"),
            },
            LdapError::UrlParsing { source } => AdError::InvalidConfig {
                problem: format!("ad.url {:?}: {source}", self.config.url),
            },
            other => AdError::Unreachable {
                address,
                timeout_secs,
                reason: other.to_string(),
            },
        }
    }

    fn tls_error(&self, e: &rustls::Error) -> AdError {
        use rustls::CertificateError as C;
        let address = self.config.url.clone();
        let ca_hint = match &self.config.ca_file {
            Some(path) => format!(
                "ad.ca_file ({}) must hold the CA that issued the DC's certificate",
                path.display()
            ),
            None => "the system trust store does not trust it: set ad.ca_file to the PEM file of the CA that issued the DC's certificate".to_string(),
        };
        let host = host_of(&self.config.url);
        let (problem, hint) = match e {
            rustls::Error::InvalidCertificate(cert) => match cert {
                C::UnknownIssuer => (
                    "unknown issuer (the certificate chain does not lead to a trusted CA)".to_string(),
                    ca_hint,
                ),
                C::NotValidForName | C::NotValidForNameContext { .. } => (
                    format!("name mismatch: the certificate is not valid for {host:?}"),
                    "connect by a name or address that the certificate's subjectAltName lists (ad.url), or reissue the DC certificate; ad.ca_file does not change this".to_string(),
                ),
                C::Expired | C::ExpiredContext { .. } => (
                    "the certificate has expired".to_string(),
                    "renew the DC's certificate".to_string(),
                ),
                C::NotValidYet | C::NotValidYetContext { .. } => (
                    "the certificate is not valid yet".to_string(),
                    "check the clocks of this host and the DC".to_string(),
                ),
                C::BadSignature | C::BadEncoding => (
                    format!("{cert:?}"),
                    ca_hint,
                ),
                other => (format!("{other:?}"), ca_hint),
            },
            other => {
                return AdError::Tls {
                    address,
                    reason: other.to_string(),
                };
            }
        };
        AdError::Certificate {
            address,
            problem,
            hint,
        }
    }

    fn bind_error(&self, result: LdapResult) -> AdError {
        let bind_identity = self.config.bind_dn.clone();
        let diagnostic = result.text.clone();
        if result.rc == 49 {
            let sub = ad_bind_subcode(&diagnostic);
            if let Some(problem) = sub.as_deref().and_then(ad_bind_subcode_problem) {
                return AdError::AccountUnusable {
                    bind_identity,
                    problem,
                    diagnostic,
                };
            }
            return AdError::InvalidCredentials {
                bind_identity,
                diagnostic,
            };
        }
        let signing = result.rc == 8 || diagnostic.starts_with("00002028");
        AdError::BindRefused {
            bind_identity,
            code: result.rc,
            code_name: result_code_name(result.rc),
            diagnostic,
            hint: if signing { SIGNING_REQUIRED_HINT } else { "" },
        }
    }

    pub(crate) fn op_error(
        &self,
        e: LdapError,
        operation: &'static str,
        dn: &str,
        attrs: &str,
    ) -> AdError {
        let address = self.config.url.clone();
        match e {
            LdapError::OpSend { .. }
            | LdapError::ResultRecv { .. }
            | LdapError::IdScrubSend { .. }
            | LdapError::MiscSend { .. }
            | LdapError::EndOfStream
            | LdapError::Io { .. } => AdError::ConnectionLost {
                address,
                operation,
                reason: e.to_string(),
            },
            LdapError::Timeout { .. } => AdError::Timeout {
                address,
                operation,
                timeout_secs: self.config.timeout_secs,
            },
            LdapError::LdapResult { result } => self.result_error(result, operation, dn, attrs),
            other => AdError::Protocol {
                address,
                operation,
                problem: other.to_string(),
            },
        }
    }

    pub(crate) fn result_error(
        &self,
        result: LdapResult,
        operation: &'static str,
        dn: &str,
        attrs: &str,
    ) -> AdError {
        match result.rc {
            32 => AdError::NoSuchObject { dn: dn.to_string() },
            50 => {
                let writing = operation.starts_with("modify");
                AdError::InsufficientAccess {
                    operation,
                    dn: dn.to_string(),
                    attributes: attrs.to_string(),
                    right: if writing {
                        "write these attributes (Write Property)"
                    } else {
                        "read these attributes (Read Property / List Contents)"
                    },
                    hint: insufficient_access_hint(None, writing),
                    diagnostic: result.text,
                }
            }
            code => AdError::Ldap {
                operation,
                dn: dn.to_string(),
                code,
                code_name: result_code_name(code),
                diagnostic: result.text,
            },
        }
    }

    fn protocol(&self, operation: &'static str, problem: String) -> AdError {
        AdError::Protocol {
            address: self.config.url.clone(),
            operation,
            problem,
        }
    }

    // ---- searches ----

    /// One search request (one page if `cookie` is Some), entries parsed, references skipped.
    async fn search_once(
        &self,
        mut ldap: Ldap,
        base: &str,
        scope: SearchScope,
        filter: &str,
        attrs: &[String],
        page: Option<(u32, Vec<u8>)>,
    ) -> Result<(Vec<RawEntry>, Option<Vec<u8>>), AdError> {
        const OP: &str = "searching";
        let paged = page.is_some();
        ldap.with_timeout(self.timeout);
        if let Some((size, cookie)) = page {
            let control: RawControl = PagedResults {
                size: i32::try_from(size).unwrap_or(1000),
                cookie,
            }
            .into();
            ldap.with_controls(vec![control]);
        }
        self.counters
            .search_requests
            .fetch_add(1, Ordering::Relaxed);
        let mut stream = ldap
            .streaming_search(base, scope.into(), filter, attrs.to_vec())
            .await
            .map_err(|e| self.op_error(e, OP, base, ""))?;
        let mut entries = Vec::new();
        loop {
            match stream.next().await {
                Ok(Some(entry)) => {
                    if entry.is_ref() || entry.is_intermediate() {
                        continue; // referrals are not chased
                    }
                    entries.push(parse_entry(entry.0).map_err(|p| self.protocol(OP, p))?);
                }
                Ok(None) => break,
                Err(e) => return Err(self.op_error(e, OP, base, "")),
            }
        }
        let result = stream.finish().await;
        if result.rc != 0 {
            return Err(self.result_error(result, OP, base, &attrs.join(", ")));
        }
        if !paged {
            return Ok((entries, None));
        }
        self.counters.pages.fetch_add(1, Ordering::Relaxed);
        let cookie = match result
            .ctrls
            .iter()
            .find(|c| c.1.ctype == PAGED_RESULTS_OID)
            .map(|c| c.1.val.as_deref())
        {
            Some(Some(value)) => parse_paged_cookie(value).map_err(|p| self.protocol(OP, p))?,
            Some(None) => {
                return Err(self.protocol(OP, "paged results control without value".into()));
            }
            None => {
                tracing::warn!(base, "the server ignored the paged results control");
                Vec::new()
            }
        };
        Ok((entries, Some(cookie)))
    }

    /// A paged search: `on_page` receives each page's entries (with ranged attributes
    /// completed) as they arrive. A connection lost before the first page is retried; a
    /// connection lost later fails the search (paging cookies do not survive a reconnect), and
    /// the caller starts over.
    async fn raw_search_pages(
        &self,
        base: &str,
        scope: SearchScope,
        filter: &str,
        attrs: &[String],
        on_page: &mut (dyn FnMut(Vec<RawEntry>) -> Result<(), AdError> + Send),
    ) -> Result<(), AdError> {
        let size = self.config.page_size;
        let mut cookie: Vec<u8> = Vec::new();
        let mut first = true;
        loop {
            let (entries, next) = if first {
                self.run(|ldap| {
                    self.search_once(ldap, base, scope, filter, attrs, Some((size, Vec::new())))
                })
                .await?
            } else {
                let (ldap, _) = self.handle().await?;
                self.search_once(
                    ldap,
                    base,
                    scope,
                    filter,
                    attrs,
                    Some((size, cookie.clone())),
                )
                .await?
            };
            first = false;
            let mut complete = Vec::with_capacity(entries.len());
            for entry in entries {
                complete.push(self.complete_ranges(entry).await?);
            }
            on_page(complete)?;
            match next {
                Some(c) if !c.is_empty() => cookie = c,
                _ => return Ok(()),
            }
        }
    }

    async fn raw_search(
        &self,
        base: &str,
        scope: SearchScope,
        filter: &str,
        attrs: &[String],
    ) -> Result<Vec<RawEntry>, AdError> {
        let mut all = Vec::new();
        self.raw_search_pages(base, scope, filter, attrs, &mut |page| {
            all.extend(page);
            Ok(())
        })
        .await?;
        Ok(all)
    }

    /// Replace `attr;range=0-1499` by all values of `attr`, fetching the further ranges.
    async fn complete_ranges(&self, entry: RawEntry) -> Result<RawEntry, AdError> {
        const OP: &str = "reading further values of";
        let mut out: Vec<(String, Vec<Vec<u8>>)> = Vec::with_capacity(entry.attributes.len());
        for (description, mut values) in entry.attributes {
            let ranged = split_range(&description).map_err(|p| self.protocol(OP, p))?;
            let name = ranged.name.to_string();
            let mut end = match ranged.range {
                None | Some((_, RangeEnd::Last)) => {
                    out.push((name, values));
                    continue;
                }
                Some((_, RangeEnd::Upto(high))) => high,
            };
            loop {
                let request = vec![match self.value_range {
                    Some(n) => format!("{name};range={}-{}", end + 1, end + u64::from(n)),
                    None => format!("{name};range={}-*", end + 1),
                }];
                self.counters.range_requests.fetch_add(1, Ordering::Relaxed);
                let got = self
                    .run(|ldap| {
                        self.search_once(
                            ldap,
                            &entry.dn,
                            SearchScope::Base,
                            "(objectClass=*)",
                            &request,
                            None,
                        )
                    })
                    .await?;
                let next = got.0.into_iter().flat_map(|e| e.attributes).find(|(d, _)| {
                    split_range(d).is_ok_and(|r| r.name.eq_ignore_ascii_case(&name))
                });
                let Some((d, more)) = next else {
                    // The values vanished between requests (e.g. a concurrent change).
                    break;
                };
                values.extend(more);
                match split_range(&d).map_err(|p| self.protocol(OP, p))?.range {
                    Some((_, RangeEnd::Upto(high))) if high > end => end = high,
                    Some((_, RangeEnd::Upto(_))) => {
                        return Err(self.protocol(
                            OP,
                            format!("range of {name} on {} does not advance", entry.dn),
                        ));
                    }
                    _ => break,
                }
            }
            out.push((name, values));
        }
        Ok(RawEntry {
            dn: entry.dn,
            attributes: out,
        })
    }

    fn request_attrs(&self, attributes: &[&str], schema: &Schema) -> Vec<String> {
        let mut attrs: Vec<String> = attributes
            .iter()
            .map(|a| match self.value_range {
                Some(n) if schema.get(a).is_some_and(|s| !s.single_valued) => {
                    format!("{a};range=0-{}", n - 1)
                }
                _ => a.to_string(),
            })
            .collect();
        if !attrs.iter().any(|a| a.eq_ignore_ascii_case("objectGUID")) {
            attrs.push("objectGUID".into());
        }
        attrs
    }

    /// Search with paging and return every object, values decoded by the schema.
    pub async fn search(
        &self,
        base: &str,
        scope: SearchScope,
        filter: &str,
        attributes: &[&str],
    ) -> Result<Vec<DirectoryObject>, AdError> {
        let schema = self.schema().await?;
        let raw = self
            .raw_search(
                base,
                scope,
                filter,
                &self.request_attrs(attributes, &schema),
            )
            .await?;
        raw.into_iter().map(|e| decode(e, &schema)).collect()
    }

    /// Search with paging, handing each page to `on_page` as it arrives.
    pub async fn search_pages(
        &self,
        base: &str,
        scope: SearchScope,
        filter: &str,
        attributes: &[&str],
        mut on_page: impl FnMut(Vec<DirectoryObject>) -> Result<(), AdError> + Send,
    ) -> Result<(), AdError> {
        let schema = self.schema().await?;
        self.raw_search_pages(
            base,
            scope,
            filter,
            &self.request_attrs(attributes, &schema),
            &mut |page| {
                let objects = page
                    .into_iter()
                    .map(|e| decode(e, &schema))
                    .collect::<Result<Vec<_>, _>>()?;
                on_page(objects)
            },
        )
        .await
    }

    /// The object at `dn`, or None if there is none.
    pub async fn read_by_dn(
        &self,
        dn: &str,
        attributes: &[&str],
    ) -> Result<Option<DirectoryObject>, AdError> {
        match self
            .search(dn, SearchScope::Base, "(objectClass=*)", attributes)
            .await
        {
            Ok(mut found) => Ok(found.pop()),
            Err(AdError::NoSuchObject { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The object with this objectGUID, or None (searched by the `<GUID=…>` DN form).
    pub async fn read_by_guid(
        &self,
        guid: &Uuid,
        attributes: &[&str],
    ) -> Result<Option<DirectoryObject>, AdError> {
        self.read_by_dn(&guid_dn(guid), attributes).await
    }

    /// Objects below the search bases whose `attribute` equals `value` (escaped filter; a
    /// binary value is escaped byte by byte).
    pub async fn find_by_attribute(
        &self,
        attribute: &str,
        value: &AttrValue,
        attributes: &[&str],
    ) -> Result<Vec<DirectoryObject>, AdError> {
        let filter = equality_filter(attribute, value)?;
        self.search_every_base(&filter, attributes).await
    }

    /// One subtree search per search base, results together.
    async fn search_every_base(
        &self,
        filter: &str,
        attributes: &[&str],
    ) -> Result<Vec<DirectoryObject>, AdError> {
        let mut found = Vec::new();
        for base in self.search_bases() {
            found.extend(
                self.search(&base, SearchScope::Subtree, filter, attributes)
                    .await?,
            );
        }
        Ok(found)
    }

    /// Objects below the search bases for which any of the `(attribute, value)` equalities
    /// holds: one search per base with the filter `(|(a=v)(b=w)…)` (every value escaped).
    /// Saves round trips over one [`AdConnection::find_by_attribute`] per pair.
    pub async fn find_any(
        &self,
        equalities: &[(&str, AttrValue)],
        attributes: &[&str],
    ) -> Result<Vec<DirectoryObject>, AdError> {
        if equalities.is_empty() {
            return Ok(Vec::new());
        }
        let mut filter = String::from("(|");
        for (attribute, value) in equalities {
            filter.push_str(&equality_filter(attribute, value)?);
        }
        filter.push(')');
        self.search_every_base(&filter, attributes).await
    }

    /// Every object below the search bases holding at least one of `attributes` (a paged
    /// subtree search per base, filter `(|(a=*)(b=*)…)`), handed to `on_page` page by page
    /// with objectGUID, DN and those attributes only. `objectGUID` among them selects every
    /// object. The engine builds its match index from this once per full cycle.
    pub async fn scan_present(
        &self,
        attributes: &[&str],
        mut on_page: impl FnMut(Vec<DirectoryObject>) -> Result<(), AdError> + Send,
    ) -> Result<(), AdError> {
        if attributes.is_empty() {
            return Ok(());
        }
        let mut filter = String::from("(|");
        for attribute in attributes {
            check_attribute_name(attribute)?;
            filter.push_str(&format!("({attribute}=*)"));
        }
        filter.push(')');
        for base in self.search_bases() {
            self.search_pages(
                &base,
                SearchScope::Subtree,
                &filter,
                attributes,
                &mut on_page,
            )
            .await?;
        }
        Ok(())
    }

    // ---- rootDSE, identity, schema ----

    async fn read_root_dse(&self) -> Result<RootDse, AdError> {
        let attrs: Vec<String> = [
            "namingContexts",
            "defaultNamingContext",
            "schemaNamingContext",
            "configurationNamingContext",
            "dnsHostName",
            "supportedControl",
            "supportedExtension",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let entries = self
            .run(|ldap| {
                self.search_once(ldap, "", SearchScope::Base, "(objectClass=*)", &attrs, None)
            })
            .await?
            .0;
        let entry = entries
            .into_iter()
            .next()
            .ok_or_else(|| self.protocol("reading the rootDSE", "no rootDSE entry".into()))?;
        let texts = |name: &str| -> Vec<String> {
            entry
                .attributes
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .flat_map(|(_, vs)| vs.iter().map(|v| String::from_utf8_lossy(v).into_owned()))
                .collect()
        };
        let first = |name: &str| texts(name).into_iter().next();
        Ok(RootDse {
            naming_contexts: texts("namingContexts"),
            default_naming_context: first("defaultNamingContext"),
            schema_naming_context: first("schemaNamingContext"),
            configuration_naming_context: first("configurationNamingContext"),
            dns_host_name: first("dnsHostName"),
            supported_controls: texts("supportedControl"),
            supported_extensions: texts("supportedExtension"),
        })
    }

    async fn who_am_i(&self) -> Result<String, AdError> {
        let result = self
            .run(|mut ldap| async move {
                ldap.with_timeout(self.timeout);
                ldap.extended(ldap3::exop::WhoAmI)
                    .await
                    .map_err(|e| self.op_error(e, "asking WhoAmI of", "", ""))
            })
            .await?;
        let ldap3::result::ExopResult(exop, res) = result;
        if res.rc != 0 {
            tracing::debug!(rc = res.rc, text = %res.text, "WhoAmI not answered; using the bind DN");
            return Ok(self.config.bind_dn.clone());
        }
        let authzid = exop
            .val
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default();
        let identity = authzid
            .strip_prefix("dn:")
            .or_else(|| authzid.strip_prefix("u:"))
            .unwrap_or(&authzid)
            .to_string();
        if identity.is_empty() {
            return Ok(self.config.bind_dn.clone());
        }
        Ok(identity)
    }

    /// The AD schema (every attributeSchema), read once and cached.
    pub async fn schema(&self) -> Result<Arc<Schema>, AdError> {
        if let Ok(guard) = self.schema.read()
            && let Some(schema) = guard.as_ref()
        {
            return Ok(schema.clone());
        }
        self.refresh_schema().await
    }

    /// Read the schema again (e.g. after an error, or to pick up a schema extension).
    pub async fn refresh_schema(&self) -> Result<Arc<Schema>, AdError> {
        const OP: &str = "reading the schema";
        let base =
            self.root_dse.schema_naming_context.clone().ok_or_else(|| {
                self.protocol(OP, "the rootDSE names no schemaNamingContext".into())
            })?;
        let attrs: Vec<String> = [
            "lDAPDisplayName",
            "attributeID",
            "attributeSyntax",
            "oMSyntax",
            "isSingleValued",
            "rangeLower",
            "rangeUpper",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let entries = self
            .raw_search(
                &base,
                SearchScope::OneLevel,
                "(objectClass=attributeSchema)",
                &attrs,
            )
            .await?;
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let get = |name: &str| -> Option<String> {
                entry
                    .attributes
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .and_then(|(_, vs)| vs.first())
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            };
            let Some(name) = get("lDAPDisplayName") else {
                tracing::warn!(dn = %entry.dn, "attributeSchema without lDAPDisplayName skipped");
                continue;
            };
            let syntax_oid = get("attributeSyntax").unwrap_or_default();
            let om = get("oMSyntax").and_then(|v| v.parse().ok()).unwrap_or(0);
            out.push(AttributeSchema {
                ldap_display_name: name,
                attribute_id: get("attributeID").unwrap_or_default(),
                syntax: Syntax::from_oids(&syntax_oid, om),
                single_valued: get("isSingleValued")
                    .is_some_and(|v| v.eq_ignore_ascii_case("TRUE")),
                range_lower: get("rangeLower").and_then(|v| v.parse().ok()),
                range_upper: get("rangeUpper").and_then(|v| v.parse().ok()),
            });
        }
        let schema = Arc::new(Schema::new(out));
        if let Ok(mut guard) = self.schema.write() {
            *guard = Some(schema.clone());
        }
        Ok(schema)
    }

    // ---- writes ----

    /// Apply one modify (all its changes in one request, so atomically) with the
    /// permissive-modify control.
    ///
    /// Sent once: a dropped connection is returned as [`AdError::ConnectionLost`] (the next
    /// operation reconnects), and the caller's one retry policy sends it again. That is safe:
    /// with permissive modify every change is idempotent (adding a present value or deleting
    /// an absent one succeeds; replace sets the same final values), so sending the same modify
    /// again yields the same object whether or not the first attempt reached the server.
    pub async fn modify(&self, modify: &ObjectModify) -> Result<(), AdError> {
        let mut names: Vec<&str> = Vec::new();
        for c in &modify.changes {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(&c.attribute)) {
                names.push(&c.attribute);
            }
        }
        let attrs = names.join(", ");
        let mut mods: Vec<Mod<Vec<u8>>> = Vec::new();
        for change in &modify.changes {
            let values: HashSet<Vec<u8>> = change
                .values
                .iter()
                .map(|v| v.as_bytes().to_vec())
                .collect();
            mods.push(match change.op {
                ModOp::Add if values.is_empty() => continue, // nothing to add
                ModOp::Add => Mod::Add(change.attribute.as_bytes().to_vec(), values),
                ModOp::Delete => Mod::Delete(change.attribute.as_bytes().to_vec(), values),
                ModOp::Replace => Mod::Replace(change.attribute.as_bytes().to_vec(), values),
            });
        }
        if mods.is_empty() {
            return Ok(());
        }
        let dn = modify.dn.as_str();
        let attrs = attrs.as_str();
        let result = self
            .run_once(|mut ldap| async move {
                self.counters.modifies.fetch_add(1, Ordering::Relaxed);
                ldap.with_timeout(self.timeout);
                ldap.with_controls(vec![RawControl {
                    ctype: PERMISSIVE_MODIFY_OID.to_string(),
                    crit: false,
                    val: None,
                }]);
                ldap.modify(dn, mods)
                    .await
                    .map_err(|e| self.op_error(e, "modifying", dn, attrs))
            })
            .await?;
        if result.rc != 0 {
            let mut error = self.result_error(result, "modifying", dn, attrs);
            if let AdError::InsufficientAccess { hint, .. } = &mut error {
                // An AdminSDHolder-protected object (adminCount=1) does not inherit the OU's
                // grants: say so. Best effort; adminCount is readable by Authenticated Users.
                if let Ok(Some(object)) = self.read_by_dn(dn, &["adminCount"]).await {
                    let admin_count =
                        object
                            .attributes
                            .get("adminCount")
                            .first()
                            .and_then(|v| match v {
                                AttrValue::Text(t) => Some(t.clone()),
                                AttrValue::Bytes(b) => String::from_utf8(b.clone()).ok(),
                            });
                    *hint = insufficient_access_hint(admin_count.as_deref(), true);
                }
            }
            return Err(error);
        }
        Ok(())
    }

    /// Create an object (used by tests and lab tooling; the writeback never creates objects).
    pub async fn add(&self, dn: &str, attributes: &Attributes) -> Result<(), AdError> {
        let attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = attributes
            .iter()
            .map(|(name, values)| {
                (
                    name.as_bytes().to_vec(),
                    values.iter().map(|v| v.as_bytes().to_vec()).collect(),
                )
            })
            .collect();
        let names = attributes
            .iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>()
            .join(", ");
        let (mut ldap, _) = self.handle().await?;
        ldap.with_timeout(self.timeout);
        let result = ldap
            .add(dn, attrs)
            .await
            .map_err(|e| self.op_error(e, "adding", dn, &names))?;
        if result.rc != 0 {
            return Err(self.result_error(result, "adding", dn, &names));
        }
        Ok(())
    }

    /// Delete an object (tests and lab tooling).
    pub async fn delete(&self, dn: &str) -> Result<(), AdError> {
        let (mut ldap, _) = self.handle().await?;
        ldap.with_timeout(self.timeout);
        let result = ldap
            .delete(dn)
            .await
            .map_err(|e| self.op_error(e, "deleting", dn, ""))?;
        if result.rc != 0 {
            return Err(self.result_error(result, "deleting", dn, ""));
        }
        Ok(())
    }
}

/// Decode an entry's values by the schema's syntax: binary syntaxes (octet string, SID, and
/// attributes unknown to the schema) as bytes, text syntaxes as UTF-8 text.
/// An attribute name safe to put into a filter (letters, digits, `-`, `.`).
fn check_attribute_name(attribute: &str) -> Result<(), AdError> {
    if attribute.is_empty()
        || !attribute
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(AdError::InvalidInput {
            what: "attribute name".into(),
            problem: format!("{attribute:?} is not an LDAP attribute name"),
        });
    }
    Ok(())
}

pub fn decode(entry: RawEntry, schema: &Schema) -> Result<DirectoryObject, AdError> {
    let mut attributes = Attributes::new();
    let mut object_guid = None;
    for (name, values) in entry.attributes {
        if name.eq_ignore_ascii_case("objectGUID") {
            object_guid = values.first().and_then(|v| uuid_from_object_guid(v).ok());
        }
        let binary = schema.get(&name).is_none_or(|a| a.syntax.is_binary());
        let decoded = values
            .into_iter()
            .map(|v| {
                if binary {
                    AttrValue::Bytes(v)
                } else {
                    match String::from_utf8(v) {
                        Ok(text) => AttrValue::Text(text),
                        Err(e) => {
                            tracing::warn!(dn = %entry.dn, attribute = %name, "a value of a text attribute is not UTF-8; kept as bytes");
                            AttrValue::Bytes(e.into_bytes())
                        }
                    }
                }
            })
            .collect();
        attributes.insert(&name, decoded);
    }
    let object_guid = object_guid.ok_or_else(|| AdError::MissingObjectGuid {
        dn: entry.dn.clone(),
    })?;
    Ok(DirectoryObject {
        dn: entry.dn,
        object_guid,
        attributes,
    })
}

pub(crate) fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((host, port))
            if port.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(']')
                || authority.starts_with('[') =>
        {
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string()
        }
        _ => authority.to_string(),
    }
}

fn tls_config(config: &AdConfig) -> Result<Arc<ClientConfig>, AdError> {
    let mut roots = RootCertStore::empty();
    match &config.ca_file {
        Some(path) => {
            let ca_error = |reason: String| AdError::CaFile {
                path: path.clone(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| ca_error(e.to_string()))?;
            for cert in certs {
                let cert = cert.map_err(|e| ca_error(e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| ca_error(format!("not a usable CA certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(ca_error("no certificate in the file".into()));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for e in &native.errors {
                tracing::warn!(error = %e, "problem loading the system certificate store");
            }
            let (added, _ignored) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                tracing::warn!("the system certificate store is empty; set ad.ca_file");
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| AdError::Tls {
            address: config.url.clone(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(tls))
}

/// `(attribute=value)` with the attribute name checked and the value escaped (RFC 4515).
fn equality_filter(attribute: &str, value: &AttrValue) -> Result<String, AdError> {
    check_attribute_name(attribute)?;
    let escaped = match value {
        AttrValue::Text(t) => escape_filter_value(t),
        AttrValue::Bytes(b) => escape_filter_bytes(b),
    };
    Ok(format!("({attribute}={escaped})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for (url, host) in [
            ("ldaps://127.0.0.5", "127.0.0.5"),
            ("ldaps://dc1.lab.test:636", "dc1.lab.test"),
            ("ldap://[::1]:389/", "::1"),
            ("ldaps://dc", "dc"),
        ] {
            assert_eq!(host_of(url), host, "{url}");
        }
    }

    fn schema() -> Schema {
        let attr = |name: &str, syntax: Syntax| AttributeSchema {
            ldap_display_name: name.into(),
            attribute_id: String::new(),
            syntax,
            single_valued: false,
            range_lower: None,
            range_upper: None,
        };
        Schema::new([
            attr("objectGUID", Syntax::OctetString),
            attr("mail", Syntax::Unicode),
            attr("objectSid", Syntax::Sid),
            attr("msExchSafeSendersHash", Syntax::OctetString),
        ])
    }

    #[test]
    fn decodes_by_syntax_not_content() {
        let guid = Uuid::parse_str("00112233-4455-6677-8899-aabbccddeeff").unwrap();
        let entry = RawEntry {
            dn: "CN=x".into(),
            attributes: vec![
                ("objectGUID".into(), vec![guid.to_bytes_le().to_vec()]),
                ("mail".into(), vec![b"a@b".to_vec()]),
                // printable bytes in a binary attribute stay bytes
                ("msExchSafeSendersHash".into(), vec![b"ABCD".to_vec()]),
                ("objectSid".into(), vec![vec![1, 5, 0]]),
                ("notInSchema".into(), vec![b"text".to_vec()]),
            ],
        };
        let o = decode(entry, &schema()).unwrap();
        assert_eq!(o.object_guid, guid);
        assert_eq!(o.attributes.get("MAIL"), &[AttrValue::Text("a@b".into())]);
        assert_eq!(
            o.attributes.get("msExchSafeSendersHash"),
            &[AttrValue::Bytes(b"ABCD".to_vec())]
        );
        assert_eq!(
            o.attributes.get("objectSid"),
            &[AttrValue::Bytes(vec![1, 5, 0])]
        );
        assert_eq!(
            o.attributes.get("notInSchema"),
            &[AttrValue::Bytes(b"text".to_vec())]
        );
    }

    #[test]
    fn entry_without_guid_is_an_error() {
        let entry = RawEntry {
            dn: "CN=x".into(),
            attributes: vec![("objectGUID".into(), vec![vec![1, 2]])],
        };
        assert!(matches!(
            decode(entry, &schema()),
            Err(AdError::MissingObjectGuid { .. })
        ));
    }
}
