//! The start of an initial or full cycle: the schema refresh and the read-rights probe run
//! beside the one scan of the search scope (not before it), and a full reconcile evaluates its
//! mailboxes on the scan's objects as they arrive, so the agent's CPU overlaps the DC's
//! reading instead of following it.
//!
//! What is decided during the scan is only what the scan's objects may decide after it
//! (`bulk::settled_by_scan`): a mailbox matched by its stored join to an object of the scan,
//! in sync, the join kept, nothing to report. That needs the mailbox, its joined object and
//! nothing else of the scan — no other object's keys (no match by the rules), no address index
//! (no write, so no guard). Anything else — a write, a new join, a failure, a drift — is left
//! to the read phase, which decides it after the whole scan on objects read fresh, as before.
//! Only mailboxes (not groups or contacts) read ahead while the directory is scanned
//! (`read_ahead`) are evaluated early; the rest is evaluated in the read phase. The outcomes of
//! the mailboxes found in sync are recorded during the scan too, when the store has a log
//! recorder (`recording.rs`).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;

use exo_writeback_core::directory::DirectoryObject;
use exo_writeback_core::mailbox::{Mailbox, RecipientKind};
use exo_writeback_core::provisioning::{CloudIdSet, CycleId, Join};
use exo_writeback_core::schema::Schema;
use exo_writeback_store::{JoinStore, JournalStore, OutcomeStore, PinStore};
use futures::channel::mpsc::{TryRecvError, UnboundedReceiver, unbounded};
use futures::{FutureExt, StreamExt};
use uuid::Uuid;

use crate::address_index::AddressIndex;
use crate::bulk::{Bulk, settled_by_scan};
use crate::engine::Engine;
use crate::evaluate::cloud_id;
use crate::mark::ScanMark;
use crate::match_index::MatchIndex;
use crate::ports::{Directory, DirectoryError, MailboxSource, UnreadableAttribute};
use crate::read_rights::scan_samples;

mod recording;

use recording::Recording;
pub(crate) use recording::Settled;

/// Mailboxes evaluated between two turns of the scan (it sends its next page request).
const PER_TURN: usize = 32;

/// What the start of an initial or full cycle read.
pub(crate) struct Start {
    pub schema: Result<Arc<Schema>, DirectoryError>,
    pub unreadable: Vec<UnreadableAttribute>,
    pub index: Option<MatchIndex>,
    pub addresses: Option<AddressIndex>,
    /// The DC's change mark from before the scan, when it still stands after it (`mark.rs`).
    pub mark: Option<ScanMark>,
    /// Mailboxes found in sync during the scan, by cloud id (the first record of each), with
    /// their outcomes (recorded already, or for the read phase to record).
    pub settled: HashMap<String, Settled>,
}

/// A mailbox read ahead and its stored join (by its cloud id): the evaluation takes the join
/// from here instead of looking it up again.
struct Joined {
    mailbox: Mailbox,
    join: (String, Join),
}

/// Mailboxes and the objects their stored joins name, paired as either arrives.
struct Pairs {
    /// Mailboxes waiting for their joined object, by its objectGUID.
    mailboxes: HashMap<Uuid, Joined>,
    /// Objects of the scan waiting for their mailbox (at most `cap`).
    objects: HashMap<Uuid, DirectoryObject>,
    /// Cloud ids taken (a listing may repeat a mailbox: the first record is the one taken).
    ids: CloudIdSet,
    ready: VecDeque<(Joined, DirectoryObject)>,
    cap: usize,
}

impl Pairs {
    fn object(&mut self, o: DirectoryObject) {
        if let Some(m) = self.mailboxes.remove(&o.object_guid) {
            self.ready.push_back((m, o));
        } else if self.objects.len() < self.cap {
            self.objects.insert(o.object_guid, o);
        }
    }

    fn mailbox(&mut self, m: Joined) {
        let guid = m.join.1.object_guid;
        if let Some(o) = self.objects.remove(&guid) {
            self.ready.push_back((m, o));
        } else {
            // Two mailboxes joined to one object: the second is left to the read phase.
            self.mailboxes.entry(guid).or_insert(m);
        }
    }
}

impl<S: MailboxSource, D: Directory, St: JoinStore + PinStore + JournalStore + OutcomeStore>
    Engine<S, D, St>
{
    /// The schema (read again), the read-rights probe and the scan of the search scope, at
    /// once; with `mailboxes` (a full reconcile: the records read ahead from Exchange Online)
    /// the mailboxes the scan's objects settle are evaluated as the pages arrive, and those in
    /// sync get their outcomes of cycle `cycle` (recorded meanwhile when the store has a log
    /// recorder: `recording.rs`). The DC's
    /// change mark is read before the scan (`mark.rs`); the scan keeps its objects whole up to
    /// `scan_cache_bytes` with `keep` (a full reconcile), else up to
    /// `initial_scan_cache_bytes` when there is a mark (an initial cycle: without one, a kept
    /// object would serve nothing).
    pub(crate) async fn start_scans(
        &self,
        keep: bool,
        mailboxes: Option<UnboundedReceiver<Mailbox>>,
        cycle: CycleId,
    ) -> Start {
        let mark = self.read_mark().await;
        let budget = if keep {
            self.options.scan_cache_bytes
        } else if mark.is_some() {
            self.options.initial_scan_cache_bytes
        } else {
            0
        };
        // The schema refresh is polled before the scan, so that it starts first: the scan's
        // decoding then takes the schema the refresh reads (on the directory's side
        // connection, beside the scan) instead of reading it once more. The read-rights probe
        // waits for the scan's first objects and evaluates them (by objectGUID, beside the
        // rest of the scan: `read_rights.rs`'s `ScanSamples`) — not a sample search of the
        // whole scope, which a DC may answer by evaluating every object in it.
        let (samples, sampled) = scan_samples();
        // Each part boxed: joined inline, their futures outgrew a debug build's 2 MiB test
        // thread stack (the agent's forest test, the CLI's quarantine test).
        let prep = Box::pin(async {
            futures::join!(
                self.directory.refresh_schema(),
                self.probe_scan_samples(sampled)
            )
        });
        let ((index, addresses), (schema, unreadable), mut settled) = match mailboxes {
            Some(mailboxes) if budget > 0 => {
                let (tap, objects) = unbounded();
                let scan = Box::pin(self.scan_search_scope(true, budget, Some(tap), Some(samples)));
                let recorder = self.store.log_recorder().unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "no log recorder: the in-sync outcomes are recorded after the scan");
                    None
                });
                let settle = Box::pin(self.settle_during_scan(
                    prep,
                    objects,
                    mailboxes,
                    Recording::start(recorder),
                    cycle,
                ));
                let ((prep, settled), scans) = futures::join!(settle, scan);
                (scans, prep, settled)
            }
            _ => {
                let scan = Box::pin(self.scan_search_scope(true, budget, None, Some(samples)));
                let (prep, scans) = futures::join!(prep, scan);
                (scans, prep, HashMap::new())
            }
        };
        if index.is_none() {
            // The scan broke off: the read phase decides every mailbox as without a scan — but
            // those whose outcome is recorded already (their objects were read before the
            // break, and found in sync): each mailbox has one outcome per cycle.
            settled.retain(|_, s| s.recorded);
        }
        let mark = match index {
            Some(_) => self.confirm_mark(mark).await,
            None => None,
        };
        let addresses = match addresses {
            Some(a) => Some(a),
            None => self.load_address_index().await,
        };
        if !settled.is_empty() {
            tracing::debug!(
                settled = settled.len(),
                "mailboxes found in sync during the scan"
            );
        }
        Start {
            schema,
            unreadable,
            index,
            addresses,
            mark,
            settled,
        }
    }

    /// Pairs the mailboxes read ahead with the objects of the scan their stored joins name,
    /// and — once `prep` (schema, read rights) is done — evaluates each pair, a few between
    /// two turns of the scan; the evaluations that settle the mailbox go, as outcomes of
    /// `cycle`, to `recording`. Ends with the scan: pairs not evaluated by then are left to the
    /// read phase.
    async fn settle_during_scan(
        &self,
        prep: impl Future<Output = Prepared>,
        mut objects: UnboundedReceiver<DirectoryObject>,
        mut mailboxes: UnboundedReceiver<Mailbox>,
        mut recording: Recording,
        cycle: CycleId,
    ) -> (Prepared, HashMap<String, Settled>) {
        let mut pairs = Pairs {
            mailboxes: HashMap::new(),
            objects: HashMap::new(),
            ids: CloudIdSet::new(),
            ready: VecDeque::new(),
            cap: self.options.read_ahead,
        };
        let attributes = self.settings.required_ad_attributes();
        let prep = prep.fuse();
        futures::pin_mut!(prep);
        let mut prepared: Option<Prepared> = None;
        let mut scan_ended = false;
        loop {
            let schema = prepared
                .as_ref()
                .and_then(|(schema, _)| schema.as_ref().ok().cloned());
            if let Some(schema) = schema
                && !pairs.ready.is_empty()
            {
                for _ in 0..PER_TURN {
                    let Some((m, o)) = pairs.ready.pop_front() else {
                        break;
                    };
                    let bulk = Bulk {
                        from_scan: true,
                        scanned: std::slice::from_ref(&o),
                        joins: Some(std::slice::from_ref(&m.join)),
                        attributes: &attributes,
                        ..Bulk::default()
                    };
                    let p = self.evaluate_in(&m.mailbox, &schema, bulk).await;
                    if settled_by_scan(&p) {
                        recording.push(p.cloud_id.clone(), p.not_written(cycle));
                    }
                }
                // Lets the scan take its next page (and send the request for the one after).
                tokio::task::yield_now().await;
                loop {
                    match objects.try_recv() {
                        Ok(o) => pairs.object(o),
                        Err(TryRecvError::Closed) => {
                            scan_ended = true;
                            break;
                        }
                        Err(TryRecvError::Empty) => break,
                    }
                }
                while let Ok(m) = mailboxes.try_recv() {
                    self.pair_mailbox(&mut pairs, m);
                }
            } else {
                // Nothing to evaluate until the next page: what was found in sync is recorded
                // meanwhile.
                recording.flush();
                futures::select! {
                    out = prep => prepared = Some(out),
                    o = objects.next() => match o {
                        Some(o) => pairs.object(o),
                        None => scan_ended = true,
                    },
                    m = mailboxes.next() => {
                        if let Some(m) = m {
                            self.pair_mailbox(&mut pairs, m);
                        }
                    }
                    complete => scan_ended = true,
                }
            }
            if scan_ended {
                break;
            }
        }
        let prepared = match prepared {
            Some(p) => p,
            None => prep.await,
        };
        (prepared, recording.finish().await)
    }

    /// A mailbox read ahead: paired with its joined object (first record of a cloud id,
    /// mailboxes only — a group's or contact's target is found another way).
    fn pair_mailbox(&self, pairs: &mut Pairs, m: Mailbox) {
        if m.kind != RecipientKind::Mailbox {
            return;
        }
        let id = cloud_id(&m);
        if !pairs.ids.insert(&id) {
            return;
        }
        if let Ok(Some(join)) = self.store.join(&id) {
            pairs.mailbox(Joined {
                mailbox: m,
                join: (id, join),
            });
        }
    }
}

/// What the schema refresh and the read-rights probe give.
type Prepared = (
    Result<Arc<Schema>, DirectoryError>,
    Vec<UnreadableAttribute>,
);

#[cfg(test)]
mod tests;
