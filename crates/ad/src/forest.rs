//! The forest's partitions, read from `CN=Partitions,CN=Configuration,…`: one crossRef per
//! naming context with its `nCName`, `dnsRoot`, `nETBIOSName` and `systemFlags`
//! (FLAG_CR_NTDS_NC 0x1, FLAG_CR_NTDS_DOMAIN 0x2, FLAG_CR_NTDS_NOT_GC_REPLICATED 0x4; MS-ADTS
//! 6.1.1.2.1.1 "Cross-Ref Objects", 3.1.1.5.2.7 "crossRef Requirements"). An object belongs to the domain whose naming context is
//! the longest suffix of its DN — unless a non-domain partition (an application partition such
//! as `DC=DomainDnsZones`) is longer still.

use exo_writeback_core::ldap_text::Dn;

use crate::config::dns_name_of_nc;
use crate::connection::{AdConnection, SearchScope};
use crate::error::AdError;

/// FLAG_CR_NTDS_DOMAIN: the crossRef names a domain.
pub const FLAG_CR_NTDS_DOMAIN: i64 = 0x2;

/// One domain of the forest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Its naming context, `DC=child,DC=corp,DC=example`.
    pub nc: String,
    /// Its DNS name (`dnsRoot`), `child.corp.example`.
    pub dns_name: String,
    /// Its NetBIOS name, `CHILD`.
    pub netbios: Option<String>,
}

/// A naming context of the forest that is not a domain (configuration, schema, application
/// partitions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherPartition {
    pub nc: String,
    pub system_flags: i64,
}

/// The forest as its partitions describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forest {
    /// The forest root domain's naming context.
    pub root_nc: String,
    pub configuration_nc: String,
    pub schema_nc: String,
    /// The forest root domain first, then the others in the order read.
    pub domains: Vec<Domain>,
    pub others: Vec<OtherPartition>,
}

fn parsed(dn: &str) -> Option<Dn> {
    Dn::parse(dn).ok()
}

impl Forest {
    /// The forest root domain.
    pub fn root(&self) -> Option<&Domain> {
        self.domains.first()
    }

    /// The domain holding `dn`, or None (the configuration or schema partition, an application
    /// partition, or outside the forest).
    pub fn domain_of(&self, dn: &str) -> Option<&Domain> {
        let dn = parsed(dn)?;
        let depth = |nc: &str| -> Option<usize> {
            let nc = parsed(nc)?;
            dn.is_within(&nc).then_some(nc.rdns.len())
        };
        let best_domain = self
            .domains
            .iter()
            .filter_map(|d| depth(&d.nc).map(|n| (n, d)))
            .max_by_key(|(n, _)| *n)?;
        let best_other = self
            .others
            .iter()
            .filter_map(|o| depth(&o.nc))
            .max()
            .unwrap_or(0);
        (best_domain.0 > best_other).then_some(best_domain.1)
    }

    /// The domain with this DNS name (case-insensitive).
    pub fn domain_by_dns(&self, dns_name: &str) -> Option<&Domain> {
        let want = dns_name.trim_end_matches('.');
        self.domains
            .iter()
            .find(|d| d.dns_name.eq_ignore_ascii_case(want))
    }

    /// One line per domain, for `check`: `corp.example (CORP) DC=corp,DC=example [root]`.
    pub fn describe(&self) -> Vec<String> {
        self.domains
            .iter()
            .enumerate()
            .map(|(i, d)| {
                format!(
                    "{} ({}) {}{}",
                    d.dns_name,
                    d.netbios.as_deref().unwrap_or("-"),
                    d.nc,
                    if i == 0 { " [forest root]" } else { "" }
                )
            })
            .collect()
    }
}

impl AdConnection {
    /// Reads the forest's partitions from the configuration partition.
    pub async fn read_forest(&self) -> Result<Forest, AdError> {
        const OP: &str = "reading the forest's partitions";
        let root = self.root_dse();
        let missing = |what: &str| AdError::Protocol {
            address: self.config().url.clone(),
            operation: OP,
            problem: format!("the rootDSE names no {what}"),
        };
        let configuration_nc = root
            .configuration_naming_context
            .clone()
            .ok_or_else(|| missing("configurationNamingContext"))?;
        let schema_nc = root
            .schema_naming_context
            .clone()
            .ok_or_else(|| missing("schemaNamingContext"))?;
        let root_nc = root
            .root_domain_naming_context
            .clone()
            .or_else(|| root.default_naming_context.clone())
            .ok_or_else(|| missing("rootDomainNamingContext"))?;
        let attrs: Vec<String> = ["nCName", "dnsRoot", "nETBIOSName", "systemFlags"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let entries = self
            .raw_search(
                &format!("CN=Partitions,{configuration_nc}"),
                SearchScope::OneLevel,
                "(objectClass=crossRef)",
                &attrs,
            )
            .await?;
        let mut domains = Vec::new();
        let mut others = Vec::new();
        for entry in entries {
            let first = |name: &str| entry.first_text(name);
            let Some(nc) = first("nCName") else {
                continue;
            };
            let flags: i64 = first("systemFlags")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if flags & FLAG_CR_NTDS_DOMAIN != 0 {
                let dns_name = first("dnsRoot")
                    .or_else(|| dns_name_of_nc(&nc))
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                domains.push(Domain {
                    nc,
                    dns_name,
                    netbios: first("nETBIOSName"),
                });
            } else {
                others.push(OtherPartition {
                    nc,
                    system_flags: flags,
                });
            }
        }
        if let Some(at) = domains.iter().position(|d| same_dn(&d.nc, &root_nc)) {
            let root_domain = domains.remove(at);
            domains.insert(0, root_domain);
        }
        Ok(Forest {
            root_nc,
            configuration_nc,
            schema_nc,
            domains,
            others,
        })
    }
}

/// Two DNs name the same object (RFC 4514 comparison, case-insensitive).
pub fn same_dn(a: &str, b: &str) -> bool {
    match (parsed(a), parsed(b)) {
        (Some(x), Some(y)) => x.is_within(&y) && y.is_within(&x),
        _ => a.eq_ignore_ascii_case(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forest() -> Forest {
        let domain = |nc: &str, dns: &str| Domain {
            nc: nc.into(),
            dns_name: dns.into(),
            netbios: None,
        };
        Forest {
            root_nc: "DC=corp,DC=example".into(),
            configuration_nc: "CN=Configuration,DC=corp,DC=example".into(),
            schema_nc: "CN=Schema,CN=Configuration,DC=corp,DC=example".into(),
            domains: vec![
                domain("DC=corp,DC=example", "corp.example"),
                domain("DC=child,DC=corp,DC=example", "child.corp.example"),
            ],
            others: vec![
                OtherPartition {
                    nc: "CN=Configuration,DC=corp,DC=example".into(),
                    system_flags: 1,
                },
                OtherPartition {
                    nc: "DC=DomainDnsZones,DC=corp,DC=example".into(),
                    system_flags: 5,
                },
            ],
        }
    }

    #[test]
    fn objects_belong_to_the_deepest_domain() {
        let f = forest();
        let of = |dn: &str| f.domain_of(dn).map(|d| d.dns_name.clone());
        assert_eq!(
            of("CN=u,OU=x,DC=child,DC=corp,DC=example").as_deref(),
            Some("child.corp.example")
        );
        assert_eq!(
            of("cn=u,dc=CORP,dc=example").as_deref(),
            Some("corp.example")
        );
        assert_eq!(of("CN=x,CN=Configuration,DC=corp,DC=example"), None);
        assert_eq!(of("DC=@,DC=DomainDnsZones,DC=corp,DC=example"), None);
        assert_eq!(of("CN=u,DC=other,DC=test"), None);
        assert_eq!(
            f.domain_by_dns("CHILD.corp.example.")
                .map(|d| d.nc.as_str()),
            Some("DC=child,DC=corp,DC=example")
        );
    }
}
