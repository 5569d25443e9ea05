//! The whole forest behind one type: the configured ("home") domain's connection, the other
//! domains' connections opened when first needed, and the global catalog. An object is read
//! and written on a writable DC of **its own** domain (its DN decides, by the forest's
//! partitions); forest-wide lookups go to the global catalog from the forest root when every
//! attribute involved is in the partial attribute set, else to each domain in turn.

use std::collections::HashMap;
use std::sync::Arc;

use exo_writeback_core::directory::{AttrValue, DirectoryObject, ObjectModify};
use exo_writeback_core::secret::Secret;
use uuid::Uuid;

use crate::config::AdConfig;
use crate::connection::SearchScope;
use crate::domain::{DcStatus, DomainConnection, Purpose, candidates};
use crate::error::AdError;
use crate::forest::{Domain, Forest};
use crate::gc::GlobalCatalog;
use crate::locator::DcLocator;

/// Which DC serves each domain, and the global catalog, for `check` and `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForestStatus {
    /// [`Forest::describe`]: one line per domain.
    pub forest: Vec<String>,
    /// The domains connected so far (the home domain first).
    pub domains: Vec<DcStatus>,
    pub global_catalog: Option<DcStatus>,
}

/// See the module documentation.
pub struct ForestDirectory {
    config: AdConfig,
    password: Secret,
    locator: Option<DcLocator>,
    forest: Forest,
    home: Arc<DomainConnection>,
    home_nc: String,
    others: tokio::sync::Mutex<HashMap<String, Arc<DomainConnection>>>,
    gc: tokio::sync::OnceCell<GlobalCatalog>,
}

impl std::fmt::Debug for ForestDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForestDirectory")
            .field("forest", &self.forest)
            .finish_non_exhaustive()
    }
}

impl ForestDirectory {
    /// Connects to a writable DC of the configured domain (`ad.url`, `ad.dcs`, then DNS when
    /// `ad.locate` or `ad.dns_server` is set) and reads the forest's partitions.
    pub async fn open(config: &AdConfig, password: Secret) -> Result<ForestDirectory, AdError> {
        config.validate()?;
        let locator = if config.locate || config.dns_server.is_some() {
            Some(DcLocator::new(config.dns_server.as_deref())?)
        } else {
            None
        };
        let domain = config.domain_name().unwrap_or_default();
        let list = candidates(
            config,
            locator.as_ref().filter(|_| !domain.is_empty()),
            &domain,
            true,
        )
        .await?;
        let home =
            DomainConnection::connect(config, password.clone(), &domain, list, Purpose::Write)
                .await?;
        let conn = home.connection().await;
        let forest = conn.read_forest().await?;
        let home_nc = conn
            .root_dse()
            .default_naming_context
            .clone()
            .unwrap_or_default();
        Ok(ForestDirectory {
            config: config.clone(),
            password,
            locator,
            forest,
            home: Arc::new(home),
            home_nc,
            others: tokio::sync::Mutex::new(HashMap::new()),
            gc: tokio::sync::OnceCell::new(),
        })
    }

    pub fn forest(&self) -> &Forest {
        &self.forest
    }

    /// The configured domain's connection.
    pub fn home(&self) -> &Arc<DomainConnection> {
        &self.home
    }

    /// The connection to `domain` (a writable DC), opened on first use: `ad.domain_dcs` for
    /// it, then DNS SRV records when a locator is configured.
    pub async fn domain(&self, domain: &Domain) -> Result<Arc<DomainConnection>, AdError> {
        if crate::forest::same_dn(&domain.nc, &self.home_nc) {
            return Ok(self.home.clone());
        }
        let key = domain.nc.to_ascii_lowercase();
        let mut others = self.others.lock().await;
        if let Some(conn) = others.get(&key) {
            return Ok(conn.clone());
        }
        let list = candidates(&self.config, self.locator.as_ref(), &domain.dns_name, false).await?;
        if list.is_empty() {
            return Err(AdError::NoDomainController {
                domain: domain.dns_name.clone(),
                tried: vec![(
                    "(none)".into(),
                    format!(
                        "no DC known for this domain of the forest: set ad.domain_dcs.\"{}\" = [\"<dc>\"], \
                         or ad.locate = true (DNS SRV records) with a DNS server that answers for it",
                        domain.dns_name
                    ),
                )],
            });
        }
        let conn = DomainConnection::connect(
            &self.config,
            self.password.clone(),
            &domain.dns_name,
            list,
            Purpose::Write,
        )
        .await?;
        if let Some(schema) = self.home.connection().await.cached_schema() {
            conn.connection().await.adopt_schema(schema);
        }
        let conn = Arc::new(conn);
        others.insert(key, conn.clone());
        Ok(conn)
    }

    /// The connection that serves the object at `dn`: a writable DC of its own domain.
    pub async fn route(&self, dn: &str) -> Result<Arc<DomainConnection>, AdError> {
        match self.forest.domain_of(dn) {
            Some(domain) => self.domain(domain).await,
            None => Err(AdError::InvalidInput {
                what: "DN".into(),
                problem: format!(
                    "{dn} is in no domain of this forest ({}); objects are read and written in \
                     their domain",
                    self.forest
                        .domains
                        .iter()
                        .map(|d| d.dns_name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }

    /// One modify, on a writable DC of the object's domain (with failover).
    pub async fn modify(&self, modify: &ObjectModify) -> Result<(), AdError> {
        let conn = self.route(&modify.dn).await?;
        conn.run(|c| async move { c.modify(modify).await }).await
    }

    /// The object at `dn`, read on a DC of its domain.
    pub async fn read_by_dn(
        &self,
        dn: &str,
        attributes: &[&str],
    ) -> Result<Option<DirectoryObject>, AdError> {
        let conn = self.route(dn).await?;
        conn.run(|c| async move { c.read_by_dn(dn, attributes).await })
            .await
    }

    /// The object with this objectGUID anywhere in the forest: found in the global catalog,
    /// then read whole on a DC of its domain.
    pub async fn read_by_guid(
        &self,
        guid: &Uuid,
        attributes: &[&str],
    ) -> Result<Option<DirectoryObject>, AdError> {
        let gc = self.global_catalog().await?;
        let base = exo_writeback_core::guid::guid_dn(guid);
        let found = gc
            .connection()
            .run(|c| {
                let base = base.clone();
                async move {
                    c.search(&base, SearchScope::Base, "(objectClass=*)", &["objectGUID"])
                        .await
                }
            })
            .await;
        let dn = match found {
            Ok(mut objects) => match objects.pop() {
                Some(o) => o.dn,
                None => return Ok(None),
            },
            Err(AdError::NoSuchObject { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        self.read_by_dn(&dn, attributes).await
    }

    /// The global catalog, connected on first use (see [`GlobalCatalog::connect`]).
    pub async fn global_catalog(&self) -> Result<&GlobalCatalog, AdError> {
        self.gc
            .get_or_try_init(|| async {
                let home = self.home.connection().await;
                let partial = home.partial_attribute_set().await?;
                let info = home.dc_info().await?;
                let home_gc = info
                    .global_catalog
                    .then(|| crate::connection::host_of(&home.config().url));
                let gc = GlobalCatalog::connect(
                    &self.config,
                    self.password.clone(),
                    self.locator.as_ref(),
                    &self.forest,
                    home_gc.as_deref(),
                    partial,
                )
                .await?;
                if let Some(schema) = home.cached_schema() {
                    gc.connection().connection().await.adopt_schema(schema);
                }
                Ok(gc)
            })
            .await
    }

    /// Every object of the forest for which one of the equalities holds: one global-catalog
    /// search from the forest root when every attribute involved is in the partial attribute
    /// set, else one search per domain from its naming context (each on a DC of that domain).
    /// Used by the duplicate-address guard: a holder anywhere in the forest blocks.
    pub async fn find_any_forest_wide(
        &self,
        equalities: &[(&str, AttrValue)],
        attributes: &[&str],
    ) -> Result<Vec<DirectoryObject>, AdError> {
        if equalities.is_empty() {
            return Ok(Vec::new());
        }
        let gc = self.global_catalog().await?;
        let replicated = gc
            .check_holds(
                equalities
                    .iter()
                    .map(|(a, _)| *a)
                    .chain(attributes.iter().copied()),
            )
            .is_ok();
        if replicated {
            return gc.find_any(equalities, attributes).await;
        }
        let filter = crate::connection::any_of_filter(equalities)?;
        let filter = filter.as_str();
        let mut out = Vec::new();
        for domain in &self.forest.domains {
            let conn = self.domain(domain).await?;
            let base = domain.nc.as_str();
            out.extend(
                conn.run(|c| async move {
                    c.search(base, SearchScope::Subtree, filter, attributes)
                        .await
                })
                .await?,
            );
        }
        Ok(out)
    }

    /// The forest, the DC serving each connected domain, and the GC in use.
    pub async fn status(&self) -> ForestStatus {
        let mut domains = vec![self.home.status().await];
        for conn in self.others.lock().await.values() {
            domains.push(conn.status().await);
        }
        let global_catalog = match self.gc.get() {
            Some(gc) => Some(gc.status().await),
            None => None,
        };
        ForestStatus {
            forest: self.forest.describe(),
            domains,
            global_catalog,
        }
    }
}
