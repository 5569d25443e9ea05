//! The scans of an initial or full cycle (and of a preview of one): one paged read of the
//! search scope that brings the match keys, every attribute the plans read and — when the
//! search scope is the whole forest — the addresses of the address guard, so that no object is
//! read again to decide that it is in sync. A forest the search scope does not cover gets its
//! own address scan, as before.

use exo_writeback_core::directory::DirectoryObject;
use exo_writeback_core::matching::WITNESS_ATTRIBUTES;
use exo_writeback_store::JoinStore;
use futures::channel::mpsc::UnboundedSender;

use crate::address_index::AddressIndex;
use crate::bulk::candidate_attributes;
use crate::engine::Engine;
use crate::match_index::MatchIndex;
use crate::ports::{Directory, ScanScope};
use crate::read_rights::ScanSamples;

impl<S, D: Directory, St: JoinStore> Engine<S, D, St> {
    /// The match index and the address index of an initial or full cycle; with `keep` (a
    /// full reconcile: its mailboxes have joins) the index keeps the objects of the scan, up
    /// to `scan_cache_bytes` — an initial cycle has no join to find them by. Either index is
    /// `None` when the directory cannot list it: matching, or the address guard, then searches
    /// per mailbox. `samples`: where the first objects' GUIDs go, for the read-rights probe
    /// (`read_rights.rs`'s `ScanSamples`).
    pub(crate) async fn load_scans(
        &self,
        keep: bool,
        samples: Option<ScanSamples>,
    ) -> (Option<MatchIndex>, Option<AddressIndex>) {
        let budget = if keep {
            self.options.scan_cache_bytes
        } else {
            0
        };
        let (index, addresses) = self.scan_search_scope(true, budget, None, samples).await;
        let addresses = match addresses {
            Some(a) => Some(a),
            None => self.load_address_index().await,
        };
        (index, addresses)
    }

    /// The match index alone (see [`Engine::load_scans`]).
    #[cfg(test)]
    pub(crate) async fn load_match_index(&self) -> Option<MatchIndex> {
        self.scan_search_scope(false, self.options.scan_cache_bytes, None, None)
            .await
            .0
    }

    /// One paged read of the search scope: the match index, and with `with_addresses` the
    /// address index when the scope was the whole forest. With `tap`, a copy of each object
    /// the index keeps is handed on as it arrives (a full reconcile evaluates on them during
    /// the scan: `settle.rs`); the sender is dropped when the scan ends. With `samples`, the
    /// GUIDs of the first objects that may be written go to the read-rights probe
    /// (`ScanSamples`): those holding a witness (a UPN, mail or proxy addresses) — an object
    /// without one is not written (`UncorroboratedMatchKey`), and with objectGUID among the
    /// match keys the scan lists every object of the scope, containers and system objects
    /// first.
    pub(crate) async fn scan_search_scope(
        &self,
        with_addresses: bool,
        budget: usize,
        tap: Option<UnboundedSender<DirectoryObject>>,
        mut samples: Option<ScanSamples>,
    ) -> (Option<MatchIndex>, Option<AddressIndex>) {
        let rules = &self.settings.match_rules;
        if rules.is_empty() {
            if let Some(s) = samples {
                s.end();
            }
            return (None, None);
        }
        let started = std::time::Instant::now();
        let mut index = MatchIndex::keeping(rules, budget);
        let mut present = MatchIndex::attributes(rules);
        // What a candidate is read with, and the keys.
        let mut attributes = candidate_attributes(self.settings.required_ad_attributes());
        let mut want = present.clone();
        if with_addresses {
            want.extend(AddressIndex::ATTRIBUTES);
            for a in AddressIndex::ATTRIBUTES {
                if !present.iter().any(|p| p.eq_ignore_ascii_case(a)) {
                    present.push(a);
                }
            }
        }
        for a in want {
            if !attributes.iter().any(|have| have.eq_ignore_ascii_case(a)) {
                attributes.push(a.to_string());
            }
        }
        let mut addresses = AddressIndex::default();
        let scanned = self
            .directory
            .scan_match_keys(&present, &attributes, &mut |o| {
                if with_addresses {
                    addresses.add(&o);
                }
                let guid = o.object_guid;
                if let Some(s) = samples.as_mut()
                    && s.wants()
                    && WITNESS_ATTRIBUTES
                        .iter()
                        .any(|a| !o.attributes.get(a).is_empty())
                {
                    s.add(guid);
                }
                let kept = index.kept();
                index.add_kept(o);
                if let Some(tap) = &tap
                    && index.kept() > kept
                    && let Some(o) = index.cached(&guid)
                {
                    // The receiver gone (it stopped at an error): nothing more to hand on.
                    let _ = tap.unbounded_send(o.clone());
                }
            })
            .await;
        if let Some(s) = samples {
            s.end();
        }
        match scanned {
            Ok(scope) => {
                let addresses = (with_addresses && scope == ScanScope::Forest).then(|| {
                    addresses.seal();
                    addresses
                });
                tracing::info!(
                    objects = index.len(),
                    kept = index.kept(),
                    addresses = addresses.as_ref().map(AddressIndex::len),
                    secs = started.elapsed().as_secs_f64(),
                    "read the search scope: match keys, the attributes the plans read{}",
                    if addresses.is_some() {
                        ", the addresses of the forest"
                    } else {
                        ""
                    }
                );
                (Some(index), addresses)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the match keys at once; matching searches per mailbox");
                (None, None)
            }
        }
    }
}
