//! Paged searches that survive what Windows does to long scans: a page ended early by
//! MaxQueryDuration resumes from its cookie (in `search_once`); a paging cookie the DC
//! discarded (`unavailableCriticalExtension`, "How LDAP server cookies are handled": the client
//! must start again from the first page), a connection closed under the search (a Notice of
//! Disconnection, a reset) or gone silent (a firewall's idle time-out: the page times out) start
//! the search again from the first page on a live connection, skipping the entries already
//! delivered — so every entry reaches the caller exactly once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use exo_writeback_core::directory::DirectoryObject;
use exo_writeback_core::schema::Schema;

use super::{AdConnection, SearchScope, decode};
use crate::error::AdError;
use crate::wire::RawEntry;

/// How often one search may start again before the error is reported.
const MAX_RESTARTS: u32 = 5;

/// The page request failed in a way that starting the search again can cure.
fn restartable(e: &AdError) -> bool {
    match e {
        AdError::ConnectionLost { .. } | AdError::Timeout { .. } => true,
        // The paging cookie is gone from the DC's pool (Windows: 12, "Error processing control").
        AdError::Ldap { code: 12, .. } => true,
        _ => false,
    }
}

impl AdConnection {
    /// A paged search: `on_page` receives each page's entries (ranged attributes completed) as
    /// they arrive, each entry once; `delivered` holds the (lower-case) DNs already handed over
    /// (also across calls: a caller that moves to another DC passes the same set).
    ///
    /// The next page's request goes out before a page is handed over, so that the DC serves
    /// it while the caller works on this one (on a scan of 50,000 users the two took turns:
    /// the DC idle while the agent decoded and indexed a page, the agent idle while the DC
    /// produced the next). Pages are still handed over one at a time, in order.
    pub(super) async fn raw_search_pages(
        &self,
        base: &str,
        scope: SearchScope,
        filter: &str,
        attrs: &[String],
        delivered: &mut HashSet<String>,
        on_page: &mut (dyn FnMut(Vec<RawEntry>) -> Result<(), AdError> + Send),
    ) -> Result<(), AdError> {
        let mut cookie: Vec<u8> = Vec::new();
        let mut restarts = 0u32;
        let mut prefetched = None;
        loop {
            let page = match prefetched.take() {
                Some(page) => page,
                // Boxed, as the prefetch below: a page's future is large, and a debug
                // build's stack is not (the agent's forest test overflowed it).
                None => Box::pin(self.page(base, scope, filter, attrs, &cookie)).await,
            };
            let (entries, next) = match page {
                Ok(page) => page,
                Err(e) if !cookie.is_empty() && restartable(&e) && restarts < MAX_RESTARTS => {
                    restarts += 1;
                    self.counters
                        .search_restarts
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(
                        base,
                        error = %e,
                        delivered = delivered.len(),
                        "the paged search was interrupted; starting it again from the first page, skipping the entries already delivered"
                    );
                    cookie.clear();
                    continue;
                }
                Err(e) if restartable(&e) && !cookie.is_empty() => {
                    return Err(AdError::ServerLimit {
                        operation: "searching",
                        dn: base.to_string(),
                        address: self.config.url.clone(),
                        limit: "MaxResultSetSize / MaxResultSetsPerConn",
                        problem: format!(
                            "the paged search was interrupted {} times, last: {e}; the DC keeps \
                             discarding the search's paging state or closing the connection: check \
                             the DC's LDAP policies (ntdsutil \"ldap policies\") and the network \
                             path's idle time-outs",
                            restarts + 1
                        ),
                    });
                }
                Err(e) => return Err(e),
            };
            let fresh: Vec<RawEntry> = entries
                .into_iter()
                .filter(|e| delivered.insert(e.dn.to_ascii_lowercase()))
                .collect();
            let mut complete = Vec::with_capacity(fresh.len());
            for entry in fresh {
                complete.push(self.complete_ranges(entry).await?);
            }
            let Some(c) = next.filter(|c| !c.is_empty()) else {
                return on_page(complete);
            };
            cookie = c;
            // Polled once, the next page's request is with the connection's driver (its own
            // task) before the caller takes this page; an error here drops it unanswered.
            let mut fetch = Box::pin(self.page(base, scope, filter, attrs, &cookie));
            let early = futures::poll!(fetch.as_mut());
            on_page(complete)?;
            prefetched = Some(match early {
                std::task::Poll::Ready(page) => page,
                std::task::Poll::Pending => fetch.await,
            });
        }
    }

    /// One page: the first (`cookie` empty) on any live connection, the next ones on the
    /// connection that holds the search's paging state. A base-object search names one entry:
    /// there is nothing to page, and Samba answers the rootDSE (the token's read) without the
    /// control, which reads as a server that ignores paging — a warning every cycle on a
    /// healthy DC.
    async fn page(
        &self,
        base: &str,
        scope: SearchScope,
        filter: &str,
        attrs: &[String],
        cookie: &[u8],
    ) -> Result<(Vec<RawEntry>, Option<Vec<u8>>), AdError> {
        let size = self.config.page_size;
        if cookie.is_empty() {
            let first = (scope != SearchScope::Base).then(|| (size, Vec::new()));
            return self
                .run(|ldap| self.search_once(ldap, base, scope, filter, attrs, first.clone()))
                .await;
        }
        let (ldap, generation) = self.handle().await?;
        let page = self
            .search_once(
                ldap,
                base,
                scope,
                filter,
                attrs,
                Some((size, cookie.to_vec())),
            )
            .await;
        if page
            .as_ref()
            .is_err_and(|e| matches!(e, AdError::Timeout { .. }))
        {
            // Silent: maybe half-open. Do not send into it again.
            self.discard(generation).await;
        }
        page
    }

    /// [`AdConnection::search_pages`] that skips the entries whose DNs (lower case) are in
    /// `delivered`, and adds those it hands over: a caller resuming a scan elsewhere (another
    /// DC after a failover) passes the same set, and no entry is handed over twice.
    ///
    /// The request does not wait for the schema when it does not need it (no ranged
    /// retrieval asked for by name): a fresh process's scan goes out while the schema is read
    /// (a DC may compute a whole paged result before its first page — Samba does), and the
    /// pages that arrive before the schema wait for it, then are decoded by it in order.
    pub async fn search_pages_resumable(
        &self,
        base: &str,
        scope: SearchScope,
        filter: &str,
        attributes: &[&str],
        delivered: &mut HashSet<String>,
        on_page: &mut (dyn FnMut(Vec<DirectoryObject>) -> Result<(), AdError> + Send),
    ) -> Result<(), AdError> {
        let ready = match self.cached_schema() {
            Some(schema) => Some(schema),
            None if self.value_range.is_some() => Some(self.schema().await?),
            None => None,
        };
        if let Some(schema) = ready {
            return self
                .raw_search_pages(
                    base,
                    scope,
                    filter,
                    &self.request_attrs(attributes, &schema),
                    delivered,
                    &mut |page| on_page(decode_page(page, &schema)?),
                )
                .await;
        }
        let attrs = self.request_attrs(attributes, &Schema::default());
        let waiting = Mutex::new(Waiting::default());
        let on_page = Mutex::new(on_page);
        let schema = async {
            let schema = self.schema().await?;
            let mut waiting = lock(&waiting);
            for page in std::mem::take(&mut waiting.pages) {
                (lock(&on_page))(decode_page(page, &schema)?)?;
            }
            waiting.schema = Some(schema);
            Ok::<_, AdError>(())
        };
        let mut receive = |page: Vec<RawEntry>| {
            let mut waiting = lock(&waiting);
            match &waiting.schema {
                Some(schema) => (lock(&on_page))(decode_page(page, schema)?),
                None => {
                    waiting.pages.push(page);
                    Ok(())
                }
            }
        };
        // On the heap: both halves at once would make every caller's future (and a debug
        // build's stack) as large as the two together.
        let pages =
            Box::pin(self.raw_search_pages(base, scope, filter, &attrs, delivered, &mut receive));
        futures::try_join!(Box::pin(schema), pages).map(|_| ())
    }
}

/// The schema once it arrived; until then, the pages received, in order.
#[derive(Default)]
struct Waiting {
    schema: Option<Arc<Schema>>,
    pages: Vec<Vec<RawEntry>>,
}

fn decode_page(page: Vec<RawEntry>, schema: &Schema) -> Result<Vec<DirectoryObject>, AdError> {
    page.into_iter().map(|e| decode(e, schema)).collect()
}

/// The lock of state only this search's two halves touch, one at a time in one task (a
/// panic while it was held cannot leave it half-changed for the other).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
