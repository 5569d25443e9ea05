//! Searches: one request, paging, ranged retrieval of large multi-valued attributes, and the
//! lookups built on them.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use exo_writeback_core::directory::{AttrValue, DirectoryObject};
use exo_writeback_core::guid::guid_dn;
use exo_writeback_core::ldap_text::{escape_filter_bytes, escape_filter_value};
use exo_writeback_core::schema::Schema;
use ldap3::Ldap;
use ldap3::controls::{PagedResults, RawControl};
use uuid::Uuid;

use super::{AdConnection, PAGED_RESULTS_OID, SearchScope, decode};
use crate::error::AdError;
use crate::wire::{RangeEnd, RawEntry, parse_entry, parse_paged_cookie, split_range};

impl AdConnection {
    // ---- searches ----

    /// One search request (one page if `cookie` is Some), entries parsed, references skipped.
    pub(super) async fn search_once(
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
        // timeLimitExceeded (3): the DC's MaxQueryDuration (120 s by default, KB 315071) ended
        // the page; on a paged search Windows returns the entries found so far with a cookie
        // to resume from, and the search goes on from there.
        let time_limited = result.rc == 3;
        if result.rc != 0 && !(time_limited && paged) {
            if time_limited {
                return Err(self.time_limit_error(OP, base, &result.text));
            }
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
        if time_limited {
            if cookie.is_empty() {
                return Err(self.time_limit_error(OP, base, &result.text));
            }
            self.counters
                .time_limited_pages
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                base,
                entries = entries.len(),
                "the DC's time limit (MaxQueryDuration) ended a page early; resuming from its cookie"
            );
        }
        Ok((entries, Some(cookie)))
    }

    fn time_limit_error(&self, operation: &'static str, base: &str, diagnostic: &str) -> AdError {
        AdError::ServerLimit {
            operation,
            dn: base.to_string(),
            address: self.config.url.clone(),
            limit: "MaxQueryDuration",
            problem: format!(
                "the DC ended the search with timeLimitExceeded and no cookie to resume from ({diagnostic}); the search is too expensive for the DC's MaxQueryDuration (120 s by default): narrow ad.search_bases, or ask the AD team to index the attributes searched on"
            ),
        }
    }

    pub(crate) async fn raw_search(
        &self,
        base: &str,
        scope: SearchScope,
        filter: &str,
        attrs: &[String],
    ) -> Result<Vec<RawEntry>, AdError> {
        let mut all = Vec::new();
        self.raw_search_pages(
            base,
            scope,
            filter,
            attrs,
            &mut HashSet::new(),
            &mut |page| {
                all.extend(page);
                Ok(())
            },
        )
        .await?;
        Ok(all)
    }

    /// Replace `attr;range=0-1499` by all values of `attr`, fetching the further ranges.
    pub(super) async fn complete_ranges(&self, entry: RawEntry) -> Result<RawEntry, AdError> {
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

    pub(super) fn request_attrs(&self, attributes: &[&str], schema: &Schema) -> Vec<String> {
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

    /// Search with paging, handing each page to `on_page` as it arrives (each entry once,
    /// also when the search had to start again; see `paging.rs`).
    pub async fn search_pages(
        &self,
        base: &str,
        scope: SearchScope,
        filter: &str,
        attributes: &[&str],
        mut on_page: impl FnMut(Vec<DirectoryObject>) -> Result<(), AdError> + Send,
    ) -> Result<(), AdError> {
        self.search_pages_resumable(
            base,
            scope,
            filter,
            attributes,
            &mut HashSet::new(),
            &mut on_page,
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
        self.search_every_base(&any_of_filter(equalities)?, attributes)
            .await
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
        let filter = present_filter(attributes)?;
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
}

/// An attribute name safe to put into a filter (letters, digits, `-`, `.`).
pub(crate) fn check_attribute_name(attribute: &str) -> Result<(), AdError> {
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

/// `(attribute=value)` with the attribute name checked and the value escaped (RFC 4515).
pub(crate) fn equality_filter(attribute: &str, value: &AttrValue) -> Result<String, AdError> {
    check_attribute_name(attribute)?;
    let escaped = match value {
        AttrValue::Text(t) => escape_filter_value(t),
        AttrValue::Bytes(b) => escape_filter_bytes(b),
    };
    Ok(format!("({attribute}={escaped})"))
}

/// `(|(a=*)(b=*)…)`: objects holding any of `attributes` (names checked).
pub(crate) fn present_filter(attributes: &[&str]) -> Result<String, AdError> {
    let mut filter = String::from("(|");
    for attribute in attributes {
        check_attribute_name(attribute)?;
        filter.push_str(&format!("({attribute}=*)"));
    }
    filter.push(')');
    Ok(filter)
}

/// `(|(a=v)(b=w)…)`: every equality escaped (see [`equality_filter`]).
pub(crate) fn any_of_filter(equalities: &[(&str, AttrValue)]) -> Result<String, AdError> {
    let mut filter = String::from("(|");
    for (attribute, value) in equalities {
        filter.push_str(&equality_filter(attribute, value)?);
    }
    filter.push(')');
    Ok(filter)
}
