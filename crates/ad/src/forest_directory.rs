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

mod bulk;
pub(crate) use bulk::{GUIDS_PER_SEARCH, any_object_guid_filter};

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
        let mut domain = config.domain_name().unwrap_or_default();
        let list = candidates(
            config,
            locator.as_ref().filter(|_| !domain.is_empty()),
            &domain,
            true,
        )
        .await?;
        let home = match DomainConnection::connect(
            config,
            password.clone(),
            &domain,
            list,
            Purpose::Write,
        )
        .await
        {
            Ok(home) => home,
            // ad.url names a DC that cannot take writes (a read-only DC, the nearest) and the
            // domain is not configured: learn it from that DC, then ask the locator.
            Err(AdError::NoDomainController { .. }) if domain.is_empty() && locator.is_some() => {
                let probe = crate::AdConnection::connect(config, password.clone()).await?;
                domain = probe
                    .root_dse()
                    .default_naming_context
                    .as_deref()
                    .and_then(crate::config::dns_name_of_nc)
                    .unwrap_or_default();
                drop(probe);
                let list = candidates(config, locator.as_ref(), &domain, true).await?;
                DomainConnection::connect(config, password.clone(), &domain, list, Purpose::Write)
                    .await?
            }
            Err(e) => return Err(e),
        };
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
        if self.forest.domains.len() <= 1 {
            // One domain: its DC holds every object; no global catalog needed.
            return self
                .home
                .run(|c| async move { c.read_by_guid(guid, attributes).await })
                .await;
        }
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
        if let [domain] = self.forest.domains.as_slice() {
            // One domain: its naming context holds every object of the forest.
            let filter = crate::connection::any_of_filter(equalities)?;
            return subtree(&self.home, &domain.nc, &filter, attributes).await;
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
        let mut out = Vec::new();
        for domain in &self.forest.domains {
            let conn = self.domain(domain).await?;
            out.extend(subtree(&conn, &domain.nc, &filter, attributes).await?);
        }
        Ok(out)
    }

    /// The containers searched for objects: `ad.search_bases`, else the configured domain's
    /// base DN. A base may lie in any domain of the forest; it is searched on a DC of its own.
    pub async fn search_bases(&self) -> Vec<String> {
        self.home.connection().await.search_bases()
    }

    /// `dn` lies within one of the search bases.
    pub async fn in_search_bases(&self, dn: &str) -> bool {
        self.home.connection().await.in_search_bases(dn)
    }

    /// The schema (the forest's: read on the configured domain's DC, with failover).
    pub async fn schema(&self) -> Result<Arc<exo_writeback_core::schema::Schema>, AdError> {
        self.home.run(|c| async move { c.schema().await }).await
    }

    /// Use `schema` (kept by an earlier process) until a refresh finds the DC's `schemaInfo`
    /// differs from its tag; every domain connected later adopts it.
    pub async fn adopt_schema(&self, schema: Arc<exo_writeback_core::schema::Schema>) {
        self.home.connection().await.adopt_schema(schema.clone());
        for conn in self.others.lock().await.values() {
            conn.connection().await.adopt_schema(schema.clone());
        }
    }

    /// Read the schema again if it changed (`AdConnection::refresh_schema`); every connected
    /// domain adopts it.
    pub async fn refresh_schema(&self) -> Result<Arc<exo_writeback_core::schema::Schema>, AdError> {
        let schema = self
            .home
            .run(|c| async move { c.refresh_schema().await })
            .await?;
        for conn in self.others.lock().await.values() {
            conn.connection().await.adopt_schema(schema.clone());
        }
        Ok(schema)
    }

    /// Objects below the search bases matching `filter`: one subtree search per base, each on
    /// a writable DC of the base's domain (with failover).
    async fn search_bases_for(
        &self,
        filter: &str,
        attributes: &[&str],
    ) -> Result<Vec<DirectoryObject>, AdError> {
        let mut found = Vec::new();
        for base in self.search_bases().await {
            let conn = self.route(&base).await?;
            found.extend(subtree(&conn, &base, filter, attributes).await?);
        }
        Ok(found)
    }

    /// Objects below the search bases whose `attribute` equals `value` (escaped), whichever
    /// domain each base lies in.
    pub async fn find_by_attribute(
        &self,
        attribute: &str,
        value: &AttrValue,
        attributes: &[&str],
    ) -> Result<Vec<DirectoryObject>, AdError> {
        let filter = crate::connection::equality_filter(attribute, value)?;
        self.search_bases_for(&filter, attributes).await
    }

    /// Every object below the search bases holding one of `attributes` (see
    /// [`AdConnection::scan_present`]), page by page, each base on a DC of its domain; a DC
    /// that fails mid-way is left for the next one without handing an entry over twice.
    ///
    /// [`AdConnection::scan_present`]: crate::AdConnection::scan_present
    pub async fn scan_present(
        &self,
        attributes: &[&str],
        on_page: &mut (dyn FnMut(Vec<DirectoryObject>) -> Result<(), AdError> + Send),
    ) -> Result<(), AdError> {
        self.scan_search_scope(attributes, attributes, on_page)
            .await
            .map(|_| ())
    }

    /// Every object below the search bases holding one of `present`, with `attributes`, page
    /// by page (as [`ForestDirectory::scan_present`]). Returns whether that scope was the
    /// whole forest's — one domain, searched from its naming context, the scope of
    /// [`ForestDirectory::scan_addresses`] — so that a scan with proxyAddresses and mail in
    /// `present` and `attributes` also read every address of the forest.
    pub async fn scan_search_scope(
        &self,
        present: &[&str],
        attributes: &[&str],
        on_page: &mut (dyn FnMut(Vec<DirectoryObject>) -> Result<(), AdError> + Send),
    ) -> Result<bool, AdError> {
        if present.is_empty() {
            return Ok(false);
        }
        let filter = crate::connection::present_filter(present)?;
        let bases = self.search_bases().await;
        for base in &bases {
            let conn = self.route(base).await?;
            conn.search_pages(base, SearchScope::Subtree, &filter, attributes, on_page)
                .await?;
        }
        Ok(match (self.forest.domains.as_slice(), bases.as_slice()) {
            ([domain], [base]) => base.eq_ignore_ascii_case(&domain.nc),
            _ => false,
        })
    }

    /// How many connections are open: the configured domain's, the other domains' opened so
    /// far, and the global catalog's once used.
    pub async fn connections(&self) -> usize {
        1 + self.others.lock().await.len() + usize::from(self.gc.get().is_some())
    }

    /// How many times any connection of the forest (its domains', the GC's) moved to another
    /// DC so far: the agent records the status when it grows.
    pub async fn failover_count(&self) -> usize {
        let mut n = self.home.failover_count();
        for conn in self.others.lock().await.values() {
            n += conn.failover_count();
        }
        if let Some(gc) = self.gc.get() {
            n += gc.connection().failover_count();
        }
        n
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

/// One subtree search of `base` on `conn`'s DC (with its failover).
async fn subtree(
    conn: &DomainConnection,
    base: &str,
    filter: &str,
    attributes: &[&str],
) -> Result<Vec<DirectoryObject>, AdError> {
    conn.run(|c| async move {
        c.search(base, SearchScope::Subtree, filter, attributes)
            .await
    })
    .await
}
