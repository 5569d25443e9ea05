//! The global catalog: one search over every domain of the forest (port 3269 with TLS, 3268
//! without; found at `_gc._tcp.<forest>`, MS-ADTS 6.3.6.1), answered from a partial replica of each domain. Only the
//! attributes of the **partial attribute set** (`isMemberOfPartialAttributeSet: TRUE` in the
//! schema) are there: a GC filter on any other attribute matches nothing and such attributes are
//! never returned, silently. In the Windows Server 2016 schema `mail`, `objectGUID`,
//! `msDS-ExternalDirectoryObjectId` and `userPrincipalName` are in it; `proxyAddresses`,
//! `mS-DS-ConsistencyGuid` and `employeeID` are not (an organisation's schema may add them), so
//! the agent asks the forest's own schema and refuses a GC search it could not answer.

use std::collections::HashSet;

use exo_writeback_core::directory::{AttrValue, DirectoryObject};
use exo_writeback_core::secret::Secret;

use crate::config::{AdConfig, Transport};
use crate::connection::{AdConnection, SearchScope, any_of_filter};
use crate::domain::{DcStatus, DomainConnection, Purpose};
use crate::error::AdError;
use crate::forest::Forest;
use crate::locator::{DcCandidate, DcLocator, DcSource};

/// The GC port for `transport`: 3269 (TLS), 3268 (StartTLS, Kerberos-sealed, plain).
pub fn gc_port(transport: Transport) -> u16 {
    match transport {
        Transport::Ldaps => 3269,
        _ => 3268,
    }
}

impl AdConnection {
    /// The lDAPDisplayNames (lower case) of the partial attribute set: the attributes the
    /// global catalog holds.
    pub async fn partial_attribute_set(&self) -> Result<HashSet<String>, AdError> {
        let base = self
            .root_dse()
            .schema_naming_context
            .clone()
            .unwrap_or_default();
        let entries = self
            .raw_search(
                &base,
                SearchScope::OneLevel,
                "(&(objectClass=attributeSchema)(isMemberOfPartialAttributeSet=TRUE))",
                &["lDAPDisplayName".to_string()],
            )
            .await?;
        Ok(entries
            .into_iter()
            .flat_map(|e| e.attributes)
            .filter(|(n, _)| n.eq_ignore_ascii_case("lDAPDisplayName"))
            .flat_map(|(_, vs)| vs)
            .map(|v| String::from_utf8_lossy(&v).to_ascii_lowercase())
            .collect())
    }
}

/// A connection to a global catalog of the forest, with the forest's partial attribute set.
#[derive(Debug)]
pub struct GlobalCatalog {
    conn: DomainConnection,
    partial: HashSet<String>,
}

impl GlobalCatalog {
    /// Connects to a GC: `ad.gc_servers`, then `_gc._tcp.<forest root>` (with a locator), then
    /// `home_dc` when it is a GC. `partial` is the forest's partial attribute set.
    pub async fn connect(
        config: &AdConfig,
        password: Secret,
        locator: Option<&DcLocator>,
        forest: &Forest,
        home_dc: Option<&str>,
        partial: HashSet<String>,
    ) -> Result<GlobalCatalog, AdError> {
        let transport = config.validate()?;
        let root_dns = forest
            .root()
            .map(|d| d.dns_name.clone())
            .unwrap_or_default();
        let mut candidates: Vec<DcCandidate> = config
            .gc_servers
            .iter()
            .map(|h| DcCandidate::configured(h))
            .collect();
        if let Some(locator) = locator {
            candidates.extend(
                locator
                    .global_catalogs(&root_dns, config.site.as_deref())
                    .await?,
            );
        }
        if let Some(host) = home_dc {
            candidates.push(DcCandidate {
                host: host.to_string(),
                port: None,
                addrs: Vec::new(),
                source: DcSource::Configured,
            });
        }
        let conn = DomainConnection::connect_on_port(
            config,
            password,
            &format!("{root_dns} (global catalog)"),
            candidates,
            Purpose::Read,
            Some(gc_port(transport)),
        )
        .await?;
        Ok(GlobalCatalog { conn, partial })
    }

    /// The attribute is in the partial attribute set (the GC holds it).
    pub fn holds(&self, attribute: &str) -> bool {
        attribute.eq_ignore_ascii_case("objectGUID")
            || attribute.eq_ignore_ascii_case("distinguishedName")
            || self.partial.contains(&attribute.to_ascii_lowercase())
    }

    /// Err naming the first attribute the GC does not hold.
    pub fn check_holds<'a>(
        &self,
        attributes: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), AdError> {
        for attribute in attributes {
            if !self.holds(attribute) {
                return Err(AdError::NotInGlobalCatalog {
                    attribute: attribute.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Every object of the forest for which one of the equalities holds (one search from the
    /// forest root, base ""), with `attributes` — each of which, and each filtered one, must be
    /// in the partial attribute set.
    pub async fn find_any(
        &self,
        equalities: &[(&str, AttrValue)],
        attributes: &[&str],
    ) -> Result<Vec<DirectoryObject>, AdError> {
        if equalities.is_empty() {
            return Ok(Vec::new());
        }
        self.check_holds(equalities.iter().map(|(a, _)| *a))?;
        self.check_holds(attributes.iter().copied())?;
        let filter = any_of_filter(equalities)?;
        let filter = filter.as_str();
        self.conn
            .run(|c| async move { c.search("", SearchScope::Subtree, filter, attributes).await })
            .await
    }

    /// Which GC is in use.
    pub async fn status(&self) -> DcStatus {
        self.conn.status().await
    }

    pub fn connection(&self) -> &DomainConnection {
        &self.conn
    }
}
