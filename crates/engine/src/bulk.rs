//! What a cycle reads from AD in bulk instead of per mailbox: the addresses of the forest (one
//! paged scan, initial and full cycles, unless the scan of the search scope covered them:
//! `scan.rs`), the candidates of a batch of mailboxes (one read of all their objectGUIDs, for
//! those the scan's objects do not settle), and the addresses the cycle's own plans take.

use exo_writeback_core::directory::DirectoryObject;
use exo_writeback_core::mailbox::Mailbox;
use exo_writeback_core::matching::{WITNESS_ATTRIBUTES, match_lookups};
use exo_writeback_core::outcome::{OutcomeCode, OutcomeDetail};
use exo_writeback_core::provisioning::{Join, JoinUpdate, PinCheck, StepStatus};
use exo_writeback_core::schema::Schema;
use exo_writeback_store::{JoinStore, JournalStore, PinStore};
use uuid::Uuid;

use crate::address_index::{AddressIndex, Claims};
use crate::engine::Engine;
use crate::evaluate::{Disposition, Processed, cloud_id};
use crate::mark::ScanMark;
use crate::match_index::{Candidates, MatchIndex};
use crate::ports::{Directory, MailboxSource};
use crate::record::step;

/// What the evaluation of a batch of mailboxes may use instead of asking AD again.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bulk<'a> {
    /// The match keys of the search scope (initial and full cycles).
    pub matches: Option<&'a MatchIndex>,
    /// The addresses held in the forest (initial and full cycles).
    pub addresses: Option<&'a AddressIndex>,
    /// The batch's candidate objects, read together when the batch began — or kept by the
    /// scan and unchanged since the DC's change mark, checked then (`mark.rs`): as fresh as the
    /// read per mailbox they replace, and checked the same way (still holding the key, still
    /// holding the anchor).
    pub read: &'a [DirectoryObject],
    /// Whether the objects the match index kept from its scan may be used (a first
    /// evaluation, kept only when it finds nothing to do: [`settled_by_scan`]).
    pub from_scan: bool,
    /// Objects of the scan handed over as they arrived (a full reconcile evaluating during
    /// its scan, `settle.rs`): used as the kept ones, with `from_scan`.
    pub scanned: &'a [DirectoryObject],
    /// What the plans read (`required_ad_attributes`), once per batch; empty: computed per
    /// mailbox.
    pub attributes: &'a [String],
    /// The stored joins of the batch's mailboxes, read together with its candidates (each
    /// under the cloud id it was read by; a mailbox of the batch not listed has none); `None`:
    /// each mailbox reads its own.
    pub joins: Option<&'a [(String, Join)]>,
}

/// What a batch of mailboxes read together before its evaluation: the candidate objects and
/// the stored joins ([`Bulk::read`], [`Bulk::joins`]).
#[derive(Debug, Default)]
pub(crate) struct BatchRead {
    pub objects: Vec<DirectoryObject>,
    pub joins: Option<Vec<(String, Join)>>,
}

impl<'a> Bulk<'a> {
    /// The object `guid` as the cycle's scan read it, when kept and allowed.
    pub fn kept(&self, guid: &Uuid) -> Option<&'a DirectoryObject> {
        if !self.from_scan {
            return None;
        }
        self.scanned
            .iter()
            .find(|o| o.object_guid == *guid)
            .or_else(|| self.matches?.cached(guid))
    }

    /// The stored join of `cloud_id` when the batch read it ([`Bulk::joins`]): `Some(None)`
    /// when it has none; `None` when it was not read.
    pub fn known_join(&self, cloud_id: &str) -> Option<Option<&'a Join>> {
        let joins = self.joins?;
        Some(joins.iter().find(|(id, _)| id == cloud_id).map(|(_, j)| j))
    }
}

/// Whether an evaluation on the scan's objects may stand: nothing to do — in sync, the join
/// kept as it is, nothing to report. Anything else is decided again on objects read fresh.
pub(crate) fn settled_by_scan(p: &Processed) -> bool {
    matches!(p.disposition, Disposition::InSync)
        && p.join == JoinUpdate::Keep
        && p.join_if_failed == JoinUpdate::Keep
        && p.security.is_none()
        && p.advisory.is_none()
        && p.drift.is_none()
        && p.pins == PinCheck::default()
}

/// The attributes a candidate is read with: what the plans read, and the witnesses of a match
/// by key.
pub(crate) fn candidate_attributes(required: Vec<String>) -> Vec<String> {
    let mut attrs = required;
    for witness in WITNESS_ATTRIBUTES {
        if !attrs.iter().any(|a| a.eq_ignore_ascii_case(witness)) {
            attrs.push(witness.to_string());
        }
    }
    attrs
}

impl<S, D: Directory, St: JoinStore> Engine<S, D, St> {
    /// Read every address of the forest into the address index (initial and full cycles,
    /// preview of them). A directory that cannot list them leaves the index off: the guard
    /// then searches per mailbox.
    pub(crate) async fn load_address_index(&self) -> Option<AddressIndex> {
        let started = std::time::Instant::now();
        let mut index = AddressIndex::default();
        match self.directory.scan_addresses(&mut |o| index.add(&o)).await {
            Ok(()) => {
                index.seal();
                tracing::info!(
                    objects = index.objects(),
                    addresses = index.len(),
                    secs = started.elapsed().as_secs_f64(),
                    "read the addresses of the forest"
                );
                Some(index)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the addresses of the forest at once; the address guard searches per mailbox");
                None
            }
        }
    }

    /// The objects the batch's mailboxes will be matched to — their stored joins and the one
    /// candidate the match index names for each lookup — read with one request, and the
    /// stored joins (looked up once: the evaluation takes them from here). With the cycle's
    /// `mark`, a candidate the scan kept and that has not changed since the mark is taken as
    /// kept (what a read now returns: `mark.rs`), the rest read. No objects when there is no
    /// index (deltas read per mailbox; nor are the joins kept) or the read fails (each mailbox
    /// then reads its own, and fails on its own account).
    pub(crate) async fn read_candidates(
        &self,
        mailboxes: &[&Mailbox],
        index: Option<&MatchIndex>,
        mark: Option<&ScanMark>,
    ) -> BatchRead {
        let Some(index) = index else {
            return BatchRead::default();
        };
        let mut guids: Vec<Uuid> = Vec::new();
        let mut joins = Vec::new();
        for m in mailboxes {
            let id = cloud_id(m);
            // An unreadable join counts as none, as in `find_target`.
            if let Ok(Some(join)) = self.store.join(&id) {
                guids.push(join.object_guid);
                joins.push((id, join));
            }
            for l in match_lookups(&self.settings.match_rules, m).all() {
                if let Some(Candidates::One(g)) = index.candidates(l.rule, &l.value) {
                    guids.push(g);
                }
            }
        }
        guids.sort_unstable();
        guids.dedup();
        let joins = Some(joins);
        if guids.is_empty() {
            return BatchRead {
                objects: Vec::new(),
                joins,
            };
        }
        let (mut objects, guids) = self.unchanged_kept(mark, index, guids).await;
        if guids.is_empty() {
            return BatchRead { objects, joins };
        }
        let attrs = candidate_attributes(self.settings.required_ad_attributes());
        match self.directory.read_by_guids(&guids, &attrs).await {
            Ok(read) => objects.extend(read),
            Err(e) => {
                tracing::debug!(error = %e, "reading a batch's candidates at once failed; each is read on its own");
                objects.clear();
            }
        }
        BatchRead { objects, joins }
    }
}

impl<S: MailboxSource, D: Directory, St: JoinStore + PinStore + JournalStore> Engine<S, D, St> {
    /// Evaluates a batch of mailboxes (nothing is written), in order. With a match index that
    /// kept the scan's objects, a mailbox whose stored join names a kept object is first
    /// evaluated on it, reading nothing from AD; that evaluation stands only when it finds
    /// nothing to do ([`settled_by_scan`]). Every other mailbox is evaluated on its candidates
    /// read fresh, together, or kept and unchanged since the cycle's `mark`
    /// ([`Engine::read_candidates`]) — as a write, a new join or a failure always was; `read`:
    /// those candidates, already read after the scan (the read phase reads a batch's while the
    /// batch before is evaluated: `take.rs`).
    pub(crate) async fn evaluate_batch(
        &self,
        mailboxes: &[&Mailbox],
        schema: &Schema,
        matches: Option<&MatchIndex>,
        addresses: Option<&AddressIndex>,
        read: Option<BatchRead>,
        mark: Option<&ScanMark>,
    ) -> Vec<Processed> {
        let mut out: Vec<Option<Processed>> = vec![None; mailboxes.len()];
        let attributes = self.settings.required_ad_attributes();
        if let Some(index) = matches.filter(|ix| ix.kept() > 0) {
            // The stored joins, looked up once: the evaluations take them from here.
            let mut joins = Vec::new();
            let mut on_kept = Vec::new();
            for (i, m) in mailboxes.iter().enumerate() {
                let id = cloud_id(m);
                if let Ok(Some(join)) = self.store.join(&id) {
                    if index.cached(&join.object_guid).is_some() {
                        on_kept.push(i);
                    }
                    joins.push((id, join));
                }
            }
            let bulk = Bulk {
                matches,
                addresses,
                read: &[],
                from_scan: true,
                scanned: &[],
                attributes: &attributes,
                joins: Some(&joins),
            };
            let first = futures::future::join_all(
                on_kept
                    .iter()
                    .map(|&i| self.evaluate_in(mailboxes[i], schema, bulk)),
            )
            .await;
            for (i, p) in on_kept.into_iter().zip(first) {
                if settled_by_scan(&p) {
                    out[i] = Some(p);
                }
            }
        }
        let rest: Vec<&Mailbox> = mailboxes
            .iter()
            .zip(&out)
            .filter(|(_, p)| p.is_none())
            .map(|(m, _)| *m)
            .collect();
        if !rest.is_empty() {
            let read = match read {
                Some(read) => read,
                None => self.read_candidates(&rest, matches, mark).await,
            };
            let bulk = Bulk {
                matches,
                addresses,
                read: &read.objects,
                from_scan: false,
                scanned: &[],
                attributes: &attributes,
                joins: read.joins.as_deref(),
            };
            let fresh =
                futures::future::join_all(rest.iter().map(|m| self.evaluate_in(m, schema, bulk)))
                    .await;
            let mut fresh = fresh.into_iter();
            for slot in out.iter_mut().filter(|p| p.is_none()) {
                *slot = fresh.next();
            }
        }
        out.into_iter().flatten().collect()
    }
}

impl<S, D: Directory, St> Engine<S, D, St> {
    /// The duplicate-address guard within the cycle: a plan adding an address another object
    /// of this cycle already takes fails (`ProxyAddressConflict`, naming that object, read by
    /// objectGUID for its DN); otherwise its plan takes its added addresses. Called in read
    /// order, so the first mailbox wins.
    pub(crate) async fn claim(&self, claims: &mut Claims, p: &mut Processed) {
        let Disposition::Write { plan, object_guid } = &p.disposition else {
            return;
        };
        let added = plan.guarded_addresses();
        if added.is_empty() {
            return;
        }
        let Some((address, other)) = claims.taken(&added, *object_guid) else {
            claims.take(&added, *object_guid);
            return;
        };
        let other = match self.directory.read_by_guid(&other, &[]).await {
            Ok(Some(o)) => o.dn,
            _ => format!("the object with objectGUID {other}"),
        };
        let d = OutcomeDetail::new(
            OutcomeCode::ProxyAddressConflict,
            format!(
                "{address} is also added to {other} by this cycle (another mailbox with the same \
                 address): an address belongs to one recipient only; remove it from one of the \
                 two mailboxes in Exchange Online"
            ),
        );
        p.steps.export = step(StepStatus::Failure, d.to_string());
        p.disposition = Disposition::Failed(d);
    }
}
