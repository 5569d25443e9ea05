//! Reads of many objects at once, for the engine's initial and full cycles: the objects of a
//! batch of objectGUIDs, and the addresses of the whole forest.

use exo_writeback_core::directory::{AttrValue, DirectoryObject};
use exo_writeback_core::guid::object_guid_bytes;
use uuid::Uuid;

use super::{ForestDirectory, subtree};
use crate::connection::SearchScope;
use crate::connection::UsnMark;
use crate::connection::{any_of_filter, present_filter};
use crate::error::AdError;

/// objectGUIDs per search: a bounded filter (servers bound request sizes).
pub(crate) const GUIDS_PER_SEARCH: usize = 100;

/// `(|(objectGUID=…)…)` of `guids`, the values escaped (objectGUID is indexed on every DC).
pub(crate) fn any_object_guid_filter(guids: &[Uuid]) -> Result<String, AdError> {
    let equalities: Vec<(&str, AttrValue)> = guids
        .iter()
        .map(|g| {
            (
                "objectGUID",
                AttrValue::Bytes(object_guid_bytes(g).to_vec()),
            )
        })
        .collect();
    any_of_filter(&equalities)
}

/// The attributes of the address guard's scan.
const ADDRESS_ATTRIBUTES: [&str; 2] = ["proxyAddresses", "mail"];

impl ForestDirectory {
    /// The objects of `guids` that exist, with `attributes`: in a forest of one domain one
    /// subtree search `(|(objectGUID=…)…)` per 100 from the domain's naming context
    /// (objectGUID is indexed on every DC); in a larger forest one read each (an object is
    /// read on a DC of its own domain).
    pub async fn read_by_guids(
        &self,
        guids: &[Uuid],
        attributes: &[&str],
    ) -> Result<Vec<DirectoryObject>, AdError> {
        let mut out = Vec::with_capacity(guids.len());
        let [domain] = self.forest.domains.as_slice() else {
            for guid in guids {
                out.extend(self.read_by_guid(guid, attributes).await?);
            }
            return Ok(out);
        };
        for chunk in guids.chunks(GUIDS_PER_SEARCH) {
            let filter = any_object_guid_filter(chunk)?;
            out.extend(subtree(&self.home, &domain.nc, &filter, attributes).await?);
        }
        Ok(out)
    }

    /// The change mark of the DC the scan of the search scope reads from
    /// ([`AdConnection::usn_mark`]), in a forest of one domain: there every search base is
    /// searched on that domain's DC. `None` in a larger forest — the scan reads each domain on
    /// its own DC, whose USNs a single mark cannot order — where the engine reads every
    /// object fresh. Its `session` counts the domain's failovers too (a failover and back
    /// opens a new connection whose connects start again).
    ///
    /// [`AdConnection::usn_mark`]: crate::AdConnection::usn_mark
    pub async fn usn_mark(&self) -> Result<Option<UsnMark>, AdError> {
        let [_] = self.forest.domains.as_slice() else {
            return Ok(None);
        };
        let failovers = self.home.failover_count();
        let mut mark = self.home.connection().await.usn_mark().await?;
        mark.session.0 = failovers;
        Ok(Some(mark))
    }

    /// Of `guids`, those changed, moved or deleted since `mark`, searched from the domain's
    /// naming context on the DC in use, which must be the mark's
    /// ([`AdConnection::changed_since`]).
    ///
    /// [`AdConnection::changed_since`]: crate::AdConnection::changed_since
    pub async fn changed_since(
        &self,
        mark: &UsnMark,
        guids: &[Uuid],
    ) -> Result<Vec<Uuid>, AdError> {
        let [domain] = self.forest.domains.as_slice() else {
            return Err(AdError::InvalidInput {
                what: "a change mark".into(),
                problem: "a forest of several domains has no single change mark".into(),
            });
        };
        self.home
            .connection()
            .await
            .changed_since(mark, &domain.nc, guids)
            .await
    }

    /// Every object of the forest holding proxyAddresses or mail, with those two, handed
    /// over page by page — the scope of [`ForestDirectory::find_any_forest_wide`]: the
    /// domain's naming context in a forest of one domain, else the global catalog from the
    /// forest root when its partial attribute set holds both, else each domain in turn.
    pub async fn scan_addresses(
        &self,
        on_page: &mut (dyn FnMut(Vec<DirectoryObject>) -> Result<(), AdError> + Send),
    ) -> Result<(), AdError> {
        let attrs = ADDRESS_ATTRIBUTES;
        let filter = present_filter(&attrs)?;
        if let [domain] = self.forest.domains.as_slice() {
            return self
                .home
                .search_pages(&domain.nc, SearchScope::Subtree, &filter, &attrs, on_page)
                .await;
        }
        let gc = self.global_catalog().await?;
        if gc.check_holds(attrs).is_ok() {
            return gc
                .connection()
                .search_pages("", SearchScope::Subtree, &filter, &attrs, on_page)
                .await;
        }
        for domain in &self.forest.domains {
            let conn = self.domain(domain).await?;
            conn.search_pages(&domain.nc, SearchScope::Subtree, &filter, &attrs, on_page)
                .await?;
        }
        Ok(())
    }
}
