//! The connection to a domain controller: TLS, bind, reconnect, and the LDAP operations.

mod error_map;
mod modify;
mod paging;
mod schema;
mod search;
mod session;
mod side;
mod usn;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use exo_writeback_core::schema::Schema;
use exo_writeback_core::secret::Secret;
use ldap3::{Ldap, Scope};
use rustls::ClientConfig;
use tokio::task::JoinHandle;

use crate::config::{AdConfig, AuthMethod, Transport};
use crate::error::AdError;

pub use schema::decode;
pub(crate) use search::{any_of_filter, check_attribute_name, equality_filter, present_filter};
use session::tls_config;
pub(crate) use session::{host_of, port_of};
pub use usn::{DcIdentity, SHOW_DELETED_OID, UsnMark};

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
    /// `supportedCapabilities` (an RODC of Windows lists 1.2.840.113556.1.4.1920).
    pub supported_capabilities: Vec<String>,
    /// The DN of the DC's NTDS Settings object (its `msDS-isRODC` says read-only).
    pub ds_service_name: Option<String>,
    /// The forest root domain's naming context.
    pub root_domain_naming_context: Option<String>,
    /// `isGlobalCatalogReady`: the DC serves the global catalog (ports 3268/3269).
    pub global_catalog_ready: bool,
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
    /// Connections closed and reopened because they had been idle past
    /// `ad.idle_reconnect_secs`.
    pub idle_reconnects: u64,
    /// Pages the DC ended early with timeLimitExceeded (MaxQueryDuration), resumed from their
    /// cookie.
    pub time_limited_pages: u64,
    /// Paged searches started again from the first page (cookie discarded, connection closed
    /// or gone silent mid-search).
    pub search_restarts: u64,
    /// Operations sent again on a new connection after getting no answer in time.
    pub slow_retries: u64,
}

#[derive(Default)]
struct Counters {
    connects: AtomicU64,
    search_requests: AtomicU64,
    pages: AtomicU64,
    range_requests: AtomicU64,
    modifies: AtomicU64,
    idle_reconnects: AtomicU64,
    time_limited_pages: AtomicU64,
    search_restarts: AtomicU64,
    slow_retries: AtomicU64,
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
    /// The schema, shared with the side connection.
    schema: Arc<RwLock<Option<Arc<Schema>>>>,
    /// One schema read at a time, shared with the side connection (`schema.rs`).
    schema_reads: Arc<schema::SchemaReads>,
    /// The second connection to the same DC for the start of a cycle (`side.rs`); `None` on
    /// the side connection itself.
    side: Option<std::sync::OnceLock<Box<AdConnection>>>,
    value_range: Option<u32>,
    /// Addresses to connect to instead of resolving the URL's host (from the DC locator).
    dial: Vec<IpAddr>,
    /// When the connection was last used (idle reconnect).
    last_used: std::sync::Mutex<Instant>,
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
        Self::connect_via(config, password, Vec::new()).await
    }

    /// [`AdConnection::connect`] to the URL's host at `addrs` (the DC locator's answer) instead
    /// of the system resolver's: the URL's host still names the DC for TLS verification and
    /// its Kerberos principal.
    pub async fn connect_via(
        config: &AdConfig,
        password: Secret,
        addrs: Vec<IpAddr>,
    ) -> Result<AdConnection, AdError> {
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
            schema: Arc::new(RwLock::new(None)),
            schema_reads: Arc::default(),
            side: Some(std::sync::OnceLock::new()),
            value_range: None,
            dial: addrs,
            last_used: std::sync::Mutex::new(Instant::now()),
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
            idle_reconnects: c.idle_reconnects.load(Ordering::Relaxed),
            time_limited_pages: c.time_limited_pages.load(Ordering::Relaxed),
            search_restarts: c.search_restarts.load(Ordering::Relaxed),
            slow_retries: c.slow_retries.load(Ordering::Relaxed),
        }
    }

    /// Counts a search request sent outside `search_once`.
    pub(crate) fn note_search_request(&self) {
        self.counters
            .search_requests
            .fetch_add(1, Ordering::Relaxed);
    }

    /// How long since the connection was last used, and mark it used now.
    fn touch(&self) -> Duration {
        match self.last_used.lock() {
            Ok(mut last) => {
                let idle = last.elapsed();
                *last = Instant::now();
                idle
            }
            Err(_) => Duration::ZERO,
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
}
