//! The DC locator: which domain controllers serve a domain, found in DNS as Windows finds them
//! (MS-ADTS 6.3.6.1 "DNS-Based Discovery"): the site's record
//! `_ldap._tcp.<site>._sites.dc._msdcs.<domain>` first when a site is configured, then the
//! domain-wide `_ldap._tcp.dc._msdcs.<domain>`; global catalogs at `_gc._tcp.<site>._sites.
//! <forest>` / `_gc._tcp.<forest>`. Within one answer, targets are ordered as RFC 2782 says
//! (lowest priority first; within a priority, a random order weighted by the weight field).
//!
//! Read-only DCs register only the site-specific records (MS-ADTS 6.3.1.10's DcAtSite, not Dc),
//! so a configured site can list RODCs; [`crate::dc::DcInfo`] tells them apart once connected.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};

use crate::error::AdError;

/// One SRV answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// The target host, without the trailing dot.
    pub target: String,
}

/// Where a candidate DC came from (for the log and `check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DcSource {
    /// `ad.url`'s host or `ad.dcs`.
    Configured,
    /// The site-specific SRV record of this site.
    Site(String),
    /// The domain-wide SRV record.
    Domain,
}

impl std::fmt::Display for DcSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DcSource::Configured => f.write_str("configured"),
            DcSource::Site(site) => write!(f, "DNS SRV of site {site}"),
            DcSource::Domain => f.write_str("DNS SRV of the domain"),
        }
    }
}

/// A domain controller to try: its host name (for TLS and the Kerberos principal) and the
/// addresses DNS gave for it (empty: resolve with the system resolver when connecting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcCandidate {
    pub host: String,
    /// A port of its own (`host:port` in the configuration); None: the URL's port, else the
    /// transport's default.
    pub port: Option<u16>,
    pub addrs: Vec<IpAddr>,
    pub source: DcSource,
}

impl DcCandidate {
    /// A configured DC: `host`, `host:port`, `[v6]:port`.
    pub fn configured(text: &str) -> DcCandidate {
        let text = text.trim();
        let (host, port) = match text.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.ends_with(']') => match p.parse::<u16>() {
                Ok(port) => (h, Some(port)),
                Err(_) => (text, None),
            },
            _ => (text, None),
        };
        DcCandidate {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            addrs: Vec::new(),
            source: DcSource::Configured,
        }
    }

    /// `host` or `host:port` (the candidate's own port).
    pub fn label(&self) -> String {
        match self.port {
            Some(port) if self.host.contains(':') => format!("[{}]:{port}", self.host),
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }
}

/// Orders SRV answers as RFC 2782 ("Usage rules") says: ascending priority; within one
/// priority, repeatedly pick among the remaining records with probability proportional to
/// the weight (weight-0 records kept after the others, as the RFC's running-sum selection
/// gives them only a very small chance). `random(n)` returns a number in `0..=n`.
pub fn order_srv(
    mut records: Vec<SrvRecord>,
    random: &mut impl FnMut(u32) -> u32,
) -> Vec<SrvRecord> {
    records.sort_by_key(|r| r.priority);
    let mut out = Vec::with_capacity(records.len());
    let mut rest = records.as_slice();
    while let Some(first) = rest.first() {
        let same = rest
            .iter()
            .take_while(|r| r.priority == first.priority)
            .count();
        let (group, tail) = rest.split_at(same);
        // RFC 2782: "arrange all SRV RRs (that have not been ordered yet) in any order, except
        // that all those with weight 0 are placed at the beginning of the list", then choose
        // by running sum; zero weights are thus chosen only when the random number is 0.
        let mut pool: Vec<SrvRecord> = group.iter().filter(|r| r.weight == 0).cloned().collect();
        pool.extend(group.iter().filter(|r| r.weight > 0).cloned());
        while !pool.is_empty() {
            let total: u32 = pool.iter().map(|r| u32::from(r.weight)).sum();
            let pick = random(total).min(total);
            let mut running = 0u32;
            let index = pool
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= pick
                })
                .unwrap_or(0);
            out.push(pool.remove(index));
        }
        rest = tail;
    }
    out
}

/// The SRV name of the domain's DCs (`site` given: those of the site).
pub fn dc_srv_name(domain: &str, site: Option<&str>) -> String {
    let domain = domain.trim_end_matches('.');
    match site {
        Some(site) => format!("_ldap._tcp.{site}._sites.dc._msdcs.{domain}"),
        None => format!("_ldap._tcp.dc._msdcs.{domain}"),
    }
}

/// The SRV name of the forest's global catalogs (`site` given: those of the site).
pub fn gc_srv_name(forest: &str, site: Option<&str>) -> String {
    let forest = forest.trim_end_matches('.');
    match site {
        Some(site) => format!("_gc._tcp.{site}._sites.{forest}"),
        None => format!("_gc._tcp.{forest}"),
    }
}

/// Asks DNS for DCs: a given server (`ad.dns_server`, e.g. a DC's address), or the system's
/// resolver (`/etc/resolv.conf`).
#[derive(Clone)]
pub struct DcLocator {
    resolver: TokioResolver,
    server: String,
}

impl std::fmt::Debug for DcLocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DcLocator")
            .field("server", &self.server)
            .finish()
    }
}

impl DcLocator {
    /// `dns_server`: `"10.0.0.1"` or `"10.0.0.1:53"`; None: the system's resolver.
    pub fn new(dns_server: Option<&str>) -> Result<DcLocator, AdError> {
        let invalid = |problem: String| AdError::InvalidConfig { problem };
        let provider = TokioRuntimeProvider::default();
        let (builder, server) = match dns_server {
            Some(text) => {
                let addr: SocketAddr = text
                    .parse()
                    .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| {
                        invalid(format!(
                            "ad.dns_server = {text:?} is not an address (\"10.0.0.1\" or \"10.0.0.1:53\")"
                        ))
                    })?;
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                let config = ResolverConfig::from_name_servers(vec![server]);
                (
                    Resolver::builder_with_config(config, provider),
                    addr.to_string(),
                )
            }
            None => (
                Resolver::builder(provider).map_err(|e| {
                    invalid(format!(
                        "cannot read the system's DNS configuration ({e}); set ad.dns_server"
                    ))
                })?,
                "the system resolver".to_string(),
            ),
        };
        let resolver = builder
            .build()
            .map_err(|e| invalid(format!("cannot set up the DNS resolver: {e}")))?;
        Ok(DcLocator { resolver, server })
    }

    fn dns_error(&self, name: &str, e: impl std::fmt::Display) -> AdError {
        AdError::Locator {
            name: name.to_string(),
            server: self.server.clone(),
            problem: e.to_string(),
        }
    }

    /// The SRV records of `name`, in RFC 2782 order; none when the name does not exist.
    pub async fn srv(&self, name: &str) -> Result<Vec<SrvRecord>, AdError> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let lookup = match self.resolver.lookup(fqdn.as_str(), RecordType::SRV).await {
            Ok(lookup) => lookup,
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => return Ok(Vec::new()),
            Err(e) => return Err(self.dns_error(name, e)),
        };
        let records = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(srv) => Some(SrvRecord {
                    priority: srv.priority,
                    weight: srv.weight,
                    port: srv.port,
                    target: srv.target.to_ascii().trim_end_matches('.').to_string(),
                }),
                _ => None,
            })
            .collect();
        Ok(order_srv(records, &mut |n| rand::random_range(0..=n)))
    }

    /// The addresses of `host` (A and AAAA).
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, AdError> {
        let fqdn = format!("{}.", host.trim_end_matches('.'));
        match self.resolver.lookup_ip(fqdn.as_str()).await {
            Ok(ips) => Ok(ips.iter().collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => Err(self.dns_error(host, e)),
        }
    }

    /// The DCs of `domain`: the site's records first (when `site` is given), then the
    /// domain-wide ones not already listed; each with its addresses. A target without an
    /// address is left out (logged).
    pub async fn domain_controllers(
        &self,
        domain: &str,
        site: Option<&str>,
    ) -> Result<Vec<DcCandidate>, AdError> {
        self.site_then_all(site, |s| dc_srv_name(domain, s)).await
    }

    /// The global catalogs of the forest whose root domain is `forest` (site first when given).
    pub async fn global_catalogs(
        &self,
        forest: &str,
        site: Option<&str>,
    ) -> Result<Vec<DcCandidate>, AdError> {
        self.site_then_all(site, |s| gc_srv_name(forest, s)).await
    }

    /// The SRV answer of `name(Some(site))` (when a site is given), then of `name(None)`.
    async fn site_then_all(
        &self,
        site: Option<&str>,
        name: impl Fn(Option<&str>) -> String,
    ) -> Result<Vec<DcCandidate>, AdError> {
        let mut lists = Vec::new();
        if let Some(site) = site {
            lists.push((
                self.srv(&name(Some(site))).await?,
                DcSource::Site(site.to_string()),
            ));
        }
        lists.push((self.srv(&name(None)).await?, DcSource::Domain));
        self.resolve_all(lists).await
    }

    async fn resolve_all(
        &self,
        lists: Vec<(Vec<SrvRecord>, DcSource)>,
    ) -> Result<Vec<DcCandidate>, AdError> {
        let mut out: Vec<DcCandidate> = Vec::new();
        for (records, source) in lists {
            for record in records {
                if out
                    .iter()
                    .any(|c| c.host.eq_ignore_ascii_case(&record.target))
                {
                    continue;
                }
                let addrs = self.addresses(&record.target).await?;
                if addrs.is_empty() {
                    tracing::warn!(host = %record.target, dns = %self.server, "a DC named by an SRV record has no address; skipped");
                    continue;
                }
                out.push(DcCandidate {
                    host: record.target,
                    port: None,
                    addrs,
                    source: source.clone(),
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srv(priority: u16, weight: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port: 389,
            target: target.into(),
        }
    }

    #[test]
    fn lower_priority_first_then_weighted() {
        let records = vec![srv(10, 100, "c"), srv(0, 0, "b"), srv(0, 100, "a")];
        // random() always answers its maximum: the running sum reaches it at the last record.
        let order = order_srv(records.clone(), &mut |n| n);
        let names: Vec<&str> = order.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(
            names,
            ["a", "b", "c"],
            "weight 100 before weight 0, priority 0 before 10"
        );
        // random() answering 0 selects the first of the pool: the weight-0 record.
        let order = order_srv(records, &mut |_| 0);
        let names: Vec<&str> = order.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(names, ["b", "a", "c"]);
    }

    #[test]
    fn weights_share_the_first_place_in_proportion() {
        let records = vec![srv(0, 90, "heavy"), srv(0, 10, "light")];
        let mut seed = 12345u64;
        let mut next = |n: u32| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % (u64::from(n) + 1)) as u32
        };
        let mut heavy_first = 0;
        for _ in 0..10_000 {
            if order_srv(records.clone(), &mut next)[0].target == "heavy" {
                heavy_first += 1;
            }
        }
        assert!((8_700..=9_300).contains(&heavy_first), "{heavy_first}");
    }

    #[test]
    fn configured_candidates() {
        let c = DcCandidate::configured("127.0.0.1:10636");
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", Some(10636)));
        let c = DcCandidate::configured("dc1.corp.example");
        assert_eq!((c.host.as_str(), c.port), ("dc1.corp.example", None));
        let c = DcCandidate::configured("[::1]:636");
        assert_eq!((c.host.as_str(), c.port), ("::1", Some(636)));
        assert_eq!(c.label(), "[::1]:636");
        let c = DcCandidate::configured("::1");
        assert_eq!((c.host.as_str(), c.port), ("::1", None));
    }

    #[test]
    fn names() {
        assert_eq!(
            dc_srv_name("corp.example.", Some("Paris")),
            "_ldap._tcp.Paris._sites.dc._msdcs.corp.example"
        );
        assert_eq!(
            dc_srv_name("corp.example", None),
            "_ldap._tcp.dc._msdcs.corp.example"
        );
        assert_eq!(gc_srv_name("corp.example", None), "_gc._tcp.corp.example");
        assert_eq!(
            gc_srv_name("corp.example", Some("Paris")),
            "_gc._tcp.Paris._sites.corp.example"
        );
    }
}
