//! The connection to one domain: one DC at a time (affinity), the next one when it fails.
//!
//! Multi-valued attributes replicate whole and the last writer wins, so every read and write of
//! a cycle goes to the same DC of a domain; only when that DC fails (unreachable, connection
//! lost and not re-established, a read-only DC that refers a write) does the connection move
//! to the next candidate, and says so: [`DomainConnection::status`] names the DC in use and
//! every move ([`Failover`]) for the log and `status`. A connection for writes never uses a
//! read-only DC (it would refer every write, LDAP result 10).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

use exo_writeback_core::directory::DirectoryObject;

use exo_writeback_core::secret::Secret;

use crate::config::AdConfig;
use crate::connection::{AdConnection, SearchScope, host_of, port_of};
use crate::dc::DcInfo;
use crate::error::AdError;
use crate::locator::{DcCandidate, DcLocator, DcSource};

/// What the connection is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Reads and writes: writable DCs only.
    Write,
    /// Reads only (the global catalog, lookups): any DC, read-only ones included.
    Read,
}

/// The connection moved from one DC to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failover {
    pub at: SystemTime,
    /// The domain's DNS name.
    pub domain: String,
    pub from: String,
    pub to: String,
    /// What went wrong on `from`.
    pub reason: String,
}

impl std::fmt::Display for Failover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "domain {}: moved from DC {} to DC {}: {}",
            self.domain, self.from, self.to, self.reason
        )
    }
}

/// Which DC a domain connection uses, for the log, `check` and `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcStatus {
    /// The domain's DNS name.
    pub domain: String,
    /// The DC in use (its dnsHostName).
    pub dc: String,
    /// How it was found.
    pub source: DcSource,
    pub read_only: bool,
    pub global_catalog: bool,
    /// Candidates passed over, and why (a read-only DC for writes, an unreachable one).
    pub skipped: Vec<(String, String)>,
    /// Every move since the connection was made, oldest first.
    pub failovers: Vec<Failover>,
}

impl std::fmt::Display for DcStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: DC {} ({}", self.domain, self.dc, self.source)?;
        if self.read_only {
            f.write_str(", read-only")?;
        }
        if self.global_catalog {
            f.write_str(", global catalog")?;
        }
        f.write_str(")")?;
        if let Some(last) = self.failovers.last() {
            write!(f, "; {} failover(s), last: {last}", self.failovers.len())?;
        }
        Ok(())
    }
}

/// Why no candidate could be used.
struct NoneUsable {
    /// Each candidate tried and why it was passed over.
    tried: Vec<(String, String)>,
    /// The last connection error.
    last: Option<AdError>,
    /// The account or the configuration was refused (every DC would say the same).
    account: bool,
}

impl NoneUsable {
    /// The error a connection attempt reports: the bind's own when the account was refused or
    /// when there was a single DC to try (as one connection says it), else every DC and why.
    fn into_error(self, domain: &str, candidates: usize) -> AdError {
        match self.last {
            Some(e) if self.account || (candidates == 1 && self.tried.len() == 1) => e,
            _ => AdError::NoDomainController {
                domain: domain.to_string(),
                tried: self.tried,
            },
        }
    }
}

struct Current {
    index: usize,
    conn: Arc<AdConnection>,
    info: DcInfo,
}

/// A connection to one domain with DC affinity and failover. See the module documentation.
pub struct DomainConnection {
    domain: String,
    config: AdConfig,
    password: Secret,
    purpose: Purpose,
    candidates: Vec<DcCandidate>,
    port: Option<u16>,
    current: tokio::sync::RwLock<Current>,
    failovers: std::sync::Mutex<Vec<Failover>>,
    skipped: std::sync::Mutex<Vec<(String, String)>>,
}

impl std::fmt::Debug for DomainConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DomainConnection")
            .field("domain", &self.domain)
            .field("purpose", &self.purpose)
            .field("candidates", &self.candidates)
            .finish_non_exhaustive()
    }
}

/// The DCs to try for `domain`, in order: `ad.url`'s host (when `include_url`), `ad.dcs`, then
/// the DNS SRV answer (site first) when a locator is given; duplicates dropped.
pub async fn candidates(
    config: &AdConfig,
    locator: Option<&DcLocator>,
    domain: &str,
    include_url: bool,
) -> Result<Vec<DcCandidate>, AdError> {
    let mut out: Vec<DcCandidate> = Vec::new();
    if include_url {
        out.push(DcCandidate {
            host: host_of(&config.url),
            port: port_of(&config.url),
            addrs: Vec::new(),
            source: DcSource::Configured,
        });
    }
    let configured = config
        .domain_dcs
        .iter()
        .filter(|(d, _)| d.trim_end_matches('.').eq_ignore_ascii_case(domain))
        .flat_map(|(_, hosts)| hosts.iter())
        .chain(if include_url {
            config.dcs.iter()
        } else {
            [].iter()
        });
    let mut extra: Vec<DcCandidate> = configured.map(|h| DcCandidate::configured(h)).collect();
    if let Some(locator) = locator {
        extra.extend(
            locator
                .domain_controllers(domain, config.site.as_deref())
                .await?,
        );
    }
    for c in extra {
        if !out
            .iter()
            .any(|o| o.host.eq_ignore_ascii_case(&c.host) && o.port == c.port)
        {
            out.push(c);
        }
    }
    Ok(out)
}

/// `config` pointed at `candidate` (same scheme and everything else; the candidate's own port,
/// else `port`, else the URL's).
pub fn config_for(config: &AdConfig, candidate: &DcCandidate, port: Option<u16>) -> AdConfig {
    let scheme = config.url.split_once("://").map_or("ldaps", |(s, _)| s);
    let host = if candidate.host.contains(':') && !candidate.host.starts_with('[') {
        format!("[{}]", candidate.host)
    } else {
        candidate.host.clone()
    };
    let url = match candidate.port.or(port).or_else(|| port_of(&config.url)) {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    };
    // ad.spn_host names the principal of ad.url's DC (given by address); any other DC is
    // named by its host name, its own principal's host.
    let spn_host = if candidate.host.eq_ignore_ascii_case(&host_of(&config.url)) {
        config.spn_host.clone()
    } else {
        None
    };
    AdConfig {
        url,
        spn_host,
        ..config.clone()
    }
}

impl DomainConnection {
    /// Connects to the first usable candidate (for [`Purpose::Write`]: the first writable one).
    pub async fn connect(
        config: &AdConfig,
        password: Secret,
        domain: &str,
        candidates: Vec<DcCandidate>,
        purpose: Purpose,
    ) -> Result<DomainConnection, AdError> {
        Self::connect_on_port(config, password, domain, candidates, purpose, None).await
    }

    /// [`DomainConnection::connect`] on `port` for candidates without a port of their own (the
    /// global catalog: 3269, or 3268 without TLS).
    pub async fn connect_on_port(
        config: &AdConfig,
        password: Secret,
        domain: &str,
        candidates: Vec<DcCandidate>,
        purpose: Purpose,
        port: Option<u16>,
    ) -> Result<DomainConnection, AdError> {
        let mut skipped = Vec::new();
        let first = Self::first_usable(
            config,
            &password,
            &candidates,
            port,
            0,
            purpose,
            &mut skipped,
            None,
        )
        .await
        .map_err(|none| none.into_error(domain, candidates.len()))?;
        // Not configured: the domain of the DC reached.
        let domain = match domain {
            "" => first
                .info
                .domain_nc
                .as_deref()
                .and_then(crate::config::dns_name_of_nc)
                .unwrap_or_default(),
            named => named.to_string(),
        };
        Ok(DomainConnection {
            domain,
            config: config.clone(),
            password,
            purpose,
            candidates,
            port,
            current: tokio::sync::RwLock::new(first),
            failovers: std::sync::Mutex::new(Vec::new()),
            skipped: std::sync::Mutex::new(skipped),
        })
    }

    /// Tries the candidates from `start` on (wrapping around), except `except`; the first that
    /// binds and suits `purpose`. Err: every candidate and why it was passed over.
    #[allow(clippy::too_many_arguments)]
    async fn first_usable(
        config: &AdConfig,
        password: &Secret,
        candidates: &[DcCandidate],
        port: Option<u16>,
        start: usize,
        purpose: Purpose,
        skipped: &mut Vec<(String, String)>,
        except: Option<usize>,
    ) -> Result<Current, NoneUsable> {
        let mut tried = Vec::new();
        let mut last = None;
        let n = candidates.len();
        for k in 0..n {
            let index = (start + k) % n;
            if except == Some(index) {
                continue;
            }
            let candidate = &candidates[index];
            let dc_config = config_for(config, candidate, port);
            let conn = match AdConnection::connect_via(
                &dc_config,
                password.clone(),
                candidate.addrs.clone(),
            )
            .await
            {
                Ok(conn) => conn,
                Err(e) if e.is_bind_failure() && !e.is_dc_specific_bind_failure() => {
                    // The account or the configuration is wrong: every DC would say the same.
                    tried.push((candidate.label(), e.to_string()));
                    return Err(NoneUsable {
                        tried,
                        last: Some(e),
                        account: true,
                    });
                }
                Err(e) => {
                    tracing::warn!(dc = %candidate.label(), error = %e, "DC not usable; trying the next one");
                    tried.push((candidate.label(), e.to_string()));
                    last = Some(e);
                    continue;
                }
            };
            let info = match conn.dc_info().await {
                Ok(info) => info,
                Err(e) => {
                    tried.push((candidate.label(), e.to_string()));
                    continue;
                }
            };
            if purpose == Purpose::Write && info.read_only {
                let why = format!(
                    "read-only DC ({}): it would refer every write; writes go to a writable DC of the domain",
                    info.read_only_evidence.unwrap_or("read-only")
                );
                tracing::info!(dc = %info.host, "{why}");
                skipped.push((info.host.clone(), why.clone()));
                tried.push((info.host.clone(), why));
                continue;
            }
            return Ok(Current {
                index,
                conn: Arc::new(conn),
                info,
            });
        }
        if n == 0 {
            tried.push((
                "(none)".into(),
                "no DC to try: set ad.url, ad.dcs, or ad.locate = true".into(),
            ));
        }
        Err(NoneUsable {
            tried,
            last,
            account: false,
        })
    }

    /// The domain's DNS name.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// The connection to the DC in use.
    pub async fn connection(&self) -> Arc<AdConnection> {
        self.current.read().await.conn.clone()
    }

    /// How many times the connection moved to another DC.
    pub fn failover_count(&self) -> usize {
        self.failovers.lock().map(|f| f.len()).unwrap_or(0)
    }

    /// Which DC is in use, what was skipped, and every failover so far.
    pub async fn status(&self) -> DcStatus {
        let current = self.current.read().await;
        DcStatus {
            domain: self.domain.clone(),
            dc: current.info.host.clone(),
            source: self.candidates[current.index].source.clone(),
            read_only: current.info.read_only,
            global_catalog: current.info.global_catalog,
            skipped: self.skipped.lock().map(|s| s.clone()).unwrap_or_default(),
            failovers: self.failovers.lock().map(|f| f.clone()).unwrap_or_default(),
        }
    }

    /// Runs `op` on the DC in use; a dropped connection is tried once more on the same DC
    /// (affinity); when the DC fails (see [`AdError::is_dc_failure`]), moves to the next usable
    /// candidate, records the [`Failover`], and runs `op` there — until it
    /// succeeds, fails for another reason, or no candidate is left. `op` must be safe to repeat
    /// (reads; modifies with permissive modify).
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, AdError>
    where
        F: Fn(Arc<AdConnection>) -> Fut,
        Fut: std::future::Future<Output = Result<T, AdError>>,
    {
        let mut attempts = 0;
        let mut same_dc_again = true;
        loop {
            let (index, conn) = {
                let current = self.current.read().await;
                (current.index, current.conn.clone())
            };
            match op(conn).await {
                // A dropped connection is not yet a failed DC: once more on the same DC (a new
                // connection; if the DC is gone, that fails with Unreachable and moves on).
                Err(e) if e.is_connection_lost() && same_dc_again => {
                    same_dc_again = false;
                    tracing::warn!(domain = %self.domain, error = %e, "connection lost; once more on the same DC");
                }
                Err(e) if e.is_dc_failure(self.purpose) && attempts < self.candidates.len() => {
                    attempts += 1;
                    same_dc_again = true;
                    self.fail_over(index, &e).await?;
                }
                other => return other,
            }
        }
    }

    /// A paged search on the DC in use, handing each page to `on_page`; when the DC fails
    /// mid-way the search goes on on the next one, and entries already handed over are not
    /// handed over again.
    pub async fn search_pages(
        &self,
        base: &str,
        scope: SearchScope,
        filter: &str,
        attributes: &[&str],
        on_page: &mut (dyn FnMut(Vec<DirectoryObject>) -> Result<(), AdError> + Send),
    ) -> Result<(), AdError> {
        let mut delivered = HashSet::new();
        let mut attempts = 0;
        loop {
            let (index, conn) = {
                let current = self.current.read().await;
                (current.index, current.conn.clone())
            };
            match conn
                .search_pages_resumable(base, scope, filter, attributes, &mut delivered, on_page)
                .await
            {
                Err(e) if e.is_dc_failure(self.purpose) && attempts < self.candidates.len() => {
                    attempts += 1;
                    self.fail_over(index, &e).await?;
                }
                other => return other,
            }
        }
    }

    /// Moves off the DC at `from` (unless another task already did).
    async fn fail_over(&self, from: usize, error: &AdError) -> Result<(), AdError> {
        let mut current = self.current.write().await;
        if current.index != from {
            return Ok(());
        }
        let old_host = current.info.host.clone();
        let mut skipped = Vec::new();
        let next = Self::first_usable(
            &self.config,
            &self.password,
            &self.candidates,
            self.port,
            from + 1,
            self.purpose,
            &mut skipped,
            Some(from),
        )
        .await;
        if let Ok(mut s) = self.skipped.lock() {
            for entry in skipped {
                if !s.contains(&entry) {
                    s.push(entry);
                }
            }
        }
        let next = next.map_err(|none| {
            let mut tried = none.tried;
            tried.insert(0, (old_host.clone(), error.to_string()));
            AdError::NoDomainController {
                domain: self.domain.clone(),
                tried,
            }
        })?;
        // The schema is the forest's: the new DC need not read it again.
        if let Some(schema) = current.conn.cached_schema() {
            next.conn.adopt_schema(schema);
        }
        let failover = Failover {
            at: SystemTime::now(),
            domain: self.domain.clone(),
            from: old_host,
            to: next.info.host.clone(),
            reason: error.to_string(),
        };
        tracing::warn!(domain = %self.domain, from = %failover.from, to = %failover.to, reason = %failover.reason, "DC failover");
        if let Ok(mut f) = self.failovers.lock() {
            f.push(failover);
        }
        *current = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dc_gets_the_scheme_port_and_its_own_principal() {
        let mut config = AdConfig::new("ldaps://10.0.0.5:3269", "svc@CORP.EXAMPLE");
        config.spn_host = Some("dc1.corp.example".into());
        let same = DcCandidate::configured("10.0.0.5");
        let other = DcCandidate::configured("dc2.corp.example");
        let own_port = DcCandidate::configured("127.0.0.1:10636");
        let c = config_for(&config, &same, None);
        assert_eq!(c.url, "ldaps://10.0.0.5:3269");
        assert_eq!(c.spn_host.as_deref(), Some("dc1.corp.example"));
        let c = config_for(&config, &other, None);
        assert_eq!(c.url, "ldaps://dc2.corp.example:3269");
        assert_eq!(c.spn_host, None, "dc2's principal is ldap/dc2.corp.example");
        assert_eq!(
            config_for(&config, &own_port, Some(636)).url,
            "ldaps://127.0.0.1:10636"
        );
        let plain = AdConfig::new("ldaps://dc1.corp.example", "svc@corp.example");
        assert_eq!(
            config_for(&plain, &other, Some(3269)).url,
            "ldaps://dc2.corp.example:3269",
            "the GC port for candidates without one"
        );
    }
}
