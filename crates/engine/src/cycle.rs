//! One cycle: import → scope → match → plan → guard (`read.rs`) → threshold (`hold.rs`) →
//! write → record → watermark. A [`CycleRun`] carries the cycle's state from its start to its
//! report.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;

use exo_writeback_core::outcome::OutcomeCode;
use exo_writeback_core::provisioning::{
    CloudIdSet, CycleCounts, CycleId, CycleKind, CycleStatus, JobState, LogStatus, ObjectOutcome,
    PinCount, Watermark, WatermarkTracker,
};
use exo_writeback_store::Store;
use jiff::Timestamp;

use crate::address_index::{AddressIndex, Claims};
use crate::edge::Edge;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::evaluate::Processed;
use crate::mark::ScanMark;
use crate::match_index::MatchIndex;
use crate::options::{CycleMode, Progress};
use crate::pipeline::Pipeline;
use crate::ports::{Directory, DirectoryError, MailboxSource, SourceError, UnreadableAttribute};
use crate::read::ReadAhead;
use crate::settle::Settled;
use crate::spill::Spill;
use crate::write::{Chunk, Stop, Writer};

/// What a cycle did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleReport {
    pub cycle: CycleId,
    pub kind: CycleKind,
    pub counts: CycleCounts,
    pub status: CycleStatus,
    /// The watermark stored at the end (`None`: not advanced).
    pub watermark: Option<Watermark>,
    /// Objects whose plans remove values (the threshold's count).
    pub removing: u64,
    /// Failed objects by outcome code (`LdapError`, `SchemaConstraint` …).
    pub failure_causes: BTreeMap<OutcomeCode, u64>,
    /// Mailboxes not in scope by outcome code (`NotInScope`, `TargetNotFound`,
    /// `OutsideContainerScope`); they add up to `counts.skipped`.
    pub skipped_causes: BTreeMap<OutcomeCode, u64>,
    /// Pins the cycle set (undo, reject): attributes left as they are until their Exchange
    /// Online value changes.
    pub pins_set: PinCount,
    /// Pins the cycle released (an undo of an undo).
    pub pins_released: u64,
    /// Attributes the directory account may not read: not planned by this cycle.
    pub unreadable_attributes: Vec<UnreadableAttribute>,
}

impl CycleReport {
    /// The report of a cycle that is not a sync cycle (approve, reject, undo): no watermark,
    /// no threshold count, no quarantine input.
    pub(crate) fn of(cycle: CycleId, kind: CycleKind, counts: CycleCounts) -> CycleReport {
        CycleReport {
            cycle,
            kind,
            counts,
            status: CycleStatus::Completed,
            watermark: None,
            removing: 0,
            failure_causes: BTreeMap::new(),
            skipped_causes: BTreeMap::new(),
            pins_set: PinCount::default(),
            pins_released: 0,
            unreadable_attributes: Vec::new(),
        }
    }
}

/// One cycle's state.
pub(crate) struct CycleRun {
    pub id: CycleId,
    pub kind: CycleKind,
    /// The watermark the cycle starts from.
    pub previous: Option<Watermark>,
    pub started: Timestamp,
    /// The match keys of the search scope (initial and full cycles).
    pub index: Option<MatchIndex>,
    /// The addresses held in the forest (initial and full cycles).
    pub addresses: Option<AddressIndex>,
    /// The DC's change mark from before the scan, when it still stands (`mark.rs`): a
    /// candidate the scan kept and unchanged since is not read again.
    pub mark: Option<ScanMark>,
    /// Mailboxes a full reconcile found in sync while it scanned (`settle.rs`), by cloud id:
    /// taken in the read phase without being evaluated again, their outcomes recorded then
    /// unless recorded during the scan.
    pub settled: HashMap<String, Settled>,
    /// The addresses this cycle's plans add, by the object that gets them.
    pub claims: Claims,
    /// Mailboxes taken (each once per cycle), by cloud id, compact (16 bytes per GUID id).
    pub seen: CloudIdSet,
    pub tracker: WatermarkTracker,
    /// What the previous watermark's edge lets a delta pass over, and the edge this cycle
    /// builds (`edge.rs`).
    pub edge: Edge,
    pub counts: CycleCounts,
    /// Mailboxes read from the stream (a failure before any is a quarantine cause).
    pub streamed: u64,
    /// Outcomes waiting for the next commit, with their mailbox's id.
    pub batch: Vec<(String, ObjectOutcome)>,
    /// Planned objects waiting for the threshold decision.
    pub to_write: Vec<Processed>,
    /// Plans beyond `max_plans_in_memory`, in a temporary file until the threshold decision
    /// (memory stays bounded; nothing is read or planned twice).
    pub spill: Option<Spill>,
    /// Objects whose plans remove values (the threshold's count).
    pub removing: u64,
    /// Objects planned for writing, and those whose write came to an end (written or refused
    /// by AD): the rest is pending when the cycle stops early.
    pub planned: u64,
    pub sent: u64,
    /// Mailboxes not in scope, by outcome code.
    pub skipped_causes: BTreeMap<OutcomeCode, u64>,
    /// Failures by outcome code, and one reason of each (the quarantine decision's input).
    pub failure_causes: BTreeMap<OutcomeCode, u64>,
    pub failure_examples: BTreeMap<OutcomeCode, String>,
    /// Set when the writes stopped early (a stop request, AD unreachable): the cycle writes
    /// nothing more.
    pub stopped: Option<Stop>,
    /// Attributes the directory account may not read (not planned).
    pub unreadable: Vec<UnreadableAttribute>,
    /// Whether the read rights were probed for this cycle: beside the scan (initial and full
    /// cycles), before the first mailbox a delta evaluates (`take.rs`) — a delta with nothing
    /// to evaluate does not probe.
    pub probed: bool,
    /// Errors the source reported beside a result page: the read ended there (the mailboxes
    /// before them are written; the watermark waits), and the cycle fails with their text.
    pub reported: Option<SourceError>,
}

impl CycleRun {
    fn new(id: CycleId, kind: CycleKind, previous: Option<Watermark>) -> CycleRun {
        let floor = match (&previous, kind) {
            (Some(w), CycleKind::Delta | CycleKind::FullReconcile) => w.changed_since,
            _ => Timestamp::MIN,
        };
        CycleRun {
            id,
            kind,
            previous,
            started: Timestamp::now(),
            index: None,
            addresses: None,
            mark: None,
            settled: HashMap::new(),
            claims: Claims::default(),
            seen: CloudIdSet::new(),
            tracker: WatermarkTracker::new(floor),
            edge: Edge::default(),
            counts: CycleCounts::default(),
            streamed: 0,
            batch: Vec::new(),
            to_write: Vec::new(),
            spill: None,
            removing: 0,
            planned: 0,
            sent: 0,
            skipped_causes: BTreeMap::new(),
            failure_causes: BTreeMap::new(),
            failure_examples: BTreeMap::new(),
            stopped: None,
            unreadable: Vec::new(),
            probed: false,
            reported: None,
        }
    }

    /// A chunk of the write phase whose outcomes the store committed: its writes counted, its
    /// stop (if any) ends the writes.
    fn written(&mut self, chunk: Chunk) {
        self.counts.written += chunk.written;
        self.counts.failed += chunk.failed;
        self.sent += chunk.written + chunk.failed;
        if chunk.stopped.is_some() {
            self.stopped = chunk.stopped.clone();
        }
        self.committed(&chunk);
    }

    /// Outcomes the store committed: their failures counted, their mailboxes durable for the
    /// watermark.
    pub(crate) fn committed(&mut self, chunk: &Chunk) {
        for o in &chunk.outcomes {
            if o.log.status != LogStatus::Failure
                && o.log.reason.as_ref().map(|r| r.code) == Some(OutcomeCode::DriftCorrected)
            {
                self.counts.drift_corrected += 1;
            }
            if o.log.status == LogStatus::Failure
                && let Some(r) = &o.log.reason
            {
                *self.failure_causes.entry(r.code).or_default() += 1;
                self.failure_examples
                    .entry(r.code)
                    .or_insert_with(|| r.message.clone());
            }
        }
        for id in &chunk.ids {
            self.tracker.durable(id);
        }
    }

    /// The cycle's report.
    pub(crate) fn report(&self, status: CycleStatus, watermark: Option<Watermark>) -> CycleReport {
        CycleReport {
            cycle: self.id,
            kind: self.kind,
            counts: self.counts,
            status,
            watermark,
            removing: self.removing,
            failure_causes: self.failure_causes.clone(),
            skipped_causes: self.skipped_causes.clone(),
            pins_set: PinCount::default(),
            pins_released: 0,
            unreadable_attributes: self.unreadable.clone(),
        }
    }

    /// Whether a mailbox changed at `when_changed` is read again only because of a delta's
    /// overlap window: not changed since the watermark the delta started from.
    pub(crate) fn rereads(&self, when_changed: Option<Timestamp>) -> bool {
        match (self.kind, &self.previous, when_changed) {
            (CycleKind::Delta, Some(w), Some(t)) => t <= w.changed_since,
            _ => false,
        }
    }

    /// Why a cycle that read every mailbox found none in scope, naming each condition and
    /// what to check; `None` when some mailbox was in scope (or none was read).
    fn nothing_in_scope(&self) -> Option<String> {
        let reads_all = matches!(self.kind, CycleKind::Initial | CycleKind::FullReconcile);
        if !reads_all || self.counts.imported == 0 || self.counts.in_scope > 0 {
            return None;
        }
        let causes = self
            .skipped_causes
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut check = Vec::new();
        for code in self.skipped_causes.keys() {
            check.push(match code {
                OutcomeCode::NotInScope => {
                    "the scoping filters and the profiles' scope (IsExchangeCloudManaged, \
                     IsDirSynced)"
                }
                OutcomeCode::OutsideContainerScope => "writeback.container_scope",
                OutcomeCode::TargetNotFound => {
                    "ad.base_dn and ad.search_bases (and that the users are synced from this \
                     forest)"
                }
                _ => "the provisioning log",
            });
        }
        Some(format!(
            "none of the {} mailboxes read is in scope ({causes}): check {} — \
             `exo-writeback check` verifies the containers. Nothing was written and the \
             watermark did not move",
            self.counts.imported,
            check.join("; ")
        ))
    }
}

impl<S: MailboxSource, D: Directory, St: Store> Engine<S, D, St> {
    /// Run one cycle: import → scope → match → plan → guard → threshold → write → record →
    /// watermark.
    pub async fn run_cycle(&mut self, mode: CycleMode) -> Result<CycleReport, EngineError> {
        self.check_job()?;
        let (kind, previous) = self.next_kind(mode)?;
        let id = self.store.begin_cycle(kind, Timestamp::now())?;
        let mut run = CycleRun::new(id, kind, previous);
        run.edge = Edge::new(
            run.previous.as_ref(),
            kind == CycleKind::Delta,
            self.options.overlap,
        );
        let result = match self.reconcile_intents(Some(id)).await {
            Ok(()) => self.cycle_body(&mut run).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(report) => Ok(report),
            Err(e) => {
                self.end_failed(&run, &e);
                Err(e)
            }
        }
    }

    /// A cycle that failed as a whole: recorded as failed — or, when it failed before reading
    /// any mailbox (cannot bind, DC unreachable, token refused), quarantined. A cycle the body
    /// already ended keeps its counts and status.
    fn end_failed(&mut self, run: &CycleRun, e: &EngineError) {
        let running = matches!(
            self.store.cycle(run.id),
            Ok(Some(c)) if c.status == CycleStatus::Running
        );
        if !running {
            return;
        }
        let before_any =
            run.streamed == 0 && matches!(e, EngineError::Directory(_) | EngineError::Source(_));
        let now = Timestamp::now();
        let status = if before_any {
            CycleStatus::Quarantined {
                reason: e.to_string(),
            }
        } else {
            CycleStatus::Failed {
                reason: e.to_string(),
            }
        };
        let _ = self
            .store
            .finish_cycle(run.id, now, &CycleCounts::default(), &status);
        if before_any {
            let _ = crate::quarantine::enter(&mut self.store, &e.to_string(), now);
        }
    }

    async fn cycle_body(&mut self, run: &mut CycleRun) -> Result<CycleReport, EngineError> {
        // Full cycles re-read the schema (picking up an extension without a restart) and probe
        // the read rights beside the one scan of the directory, while the listing of Exchange
        // Online starts (read ahead, bounded); a full reconcile evaluates the mailboxes read
        // ahead on the scan's objects as they arrive (`settle.rs`). Deltas use the cached
        // schema, which a schema-like write error refreshes, and probe the read rights only
        // when they have a mailbox to evaluate (`take.rs`): the probe searches sample objects
        // of the search scope, which a DC may answer by evaluating every object in it (Samba
        // does, under the paged results control), so a delta with nothing changed would cost
        // in proportion to the directory.
        let full = matches!(run.kind, CycleKind::Initial | CycleKind::FullReconcile);
        let mut ahead = None;
        let schema = if full {
            let stream = self.stream_for(run.kind, run.previous.as_ref());
            let keep = run.kind == CycleKind::FullReconcile;
            let (tap, mailboxes) = if keep {
                let (tap, mailboxes) = futures::channel::mpsc::unbounded();
                (Some(tap), Some(mailboxes))
            } else {
                (None, None)
            };
            let (start, read) = ReadAhead::during(
                self.start_scans(keep, mailboxes, run.id),
                stream,
                self.options.read_ahead,
                tap,
            )
            .await;
            ahead = Some(read);
            run.unreadable = start.unreadable;
            run.probed = true;
            run.index = start.index;
            run.addresses = start.addresses;
            run.mark = start.mark;
            run.settled = start.settled;
            start.schema.map_err(EngineError::Directory)?
        } else {
            self.schema().await?
        };
        let read = self.read_phase(run, &schema, ahead).await;
        // What only the read phase uses, freed before the writes (an initial cycle of a
        // million mailboxes holds a million of each).
        run.index = None;
        run.addresses = None;
        run.mark = None;
        run.settled = HashMap::new();
        run.claims = Claims::default();
        run.seen = CloudIdSet::new();
        let stream_complete = read?;
        // The threshold guards whatever is about to be written, also the part of a listing
        // read before the service reported errors.
        let to_decide = stream_complete || run.reported.is_some();
        if to_decide && run.removing > u64::from(self.settings.threshold) {
            return self.hold(run);
        }
        let complete = self.write_phase(run).await? && stream_complete;
        self.end(run, stream_complete, complete)
    }

    /// Write: one modify per object, in chunks (planned in memory, then read back from the
    /// spill file) through one [`Pipeline`]: a chunk's outcomes are committed while the next
    /// chunk's modifies are in flight. Objects left unwritten by a stop have no outcome: the
    /// watermark stays before them. Returns whether every planned object was written (or
    /// refused).
    async fn write_phase(&mut self, run: &mut CycleRun) -> Result<bool, EngineError> {
        let total = (run.to_write.len() as u64) + run.spill.as_ref().map_or(0, Spill::len);
        let mut done = 0u64;
        let mut planned = std::mem::take(&mut run.to_write).into_iter();
        let mut spilled = match run.spill.take() {
            Some(spill) => Some(spill.read().map_err(EngineError::Spill)?),
            None => None,
        };
        let writer = Writer::new(
            &self.directory,
            &self.options,
            &self.cancel,
            self.fence.as_ref(),
        );
        let mut pipeline = Pipeline::new(&writer);
        let size = self.options.batch.max(1);
        let mut queue = Vec::with_capacity(size.min(total as usize));
        loop {
            let next = match planned.next() {
                Some(p) => Some(p),
                None => match spilled.as_mut() {
                    Some(reader) => reader
                        .next_object()
                        .map_err(EngineError::Spill)?
                        .map(|(p, _)| p),
                    None => None,
                },
            };
            if pipeline.stopped() || run.stopped.is_some() {
                break;
            }
            if self.cancel.load(Ordering::SeqCst) {
                if next.is_some() || !queue.is_empty() {
                    run.stopped = Some(Stop::Cancelled);
                }
                break;
            }
            let Some(p) = next else {
                if !queue.is_empty() {
                    let with = std::mem::take(&mut run.batch);
                    let items = std::mem::take(&mut queue);
                    for chunk in pipeline.feed(&mut self.store, items, with).await? {
                        run.written(chunk);
                    }
                }
                break;
            };
            queue.push(p.into_write(run.id));
            done += 1;
            if done.is_multiple_of(50) || done == total {
                (self.progress)(Progress::Writing { done, total });
            }
            if queue.len() >= size || run.batch.len() >= size {
                let with = std::mem::take(&mut run.batch);
                let items = std::mem::replace(&mut queue, Vec::with_capacity(size));
                for chunk in pipeline.feed(&mut self.store, items, with).await? {
                    run.written(chunk);
                }
            }
        }
        for chunk in pipeline.finish(&mut self.store).await? {
            run.written(chunk);
        }
        self.flush(run)?;
        Ok(run.stopped.is_none())
    }

    /// Commits the outcomes waiting in the batch (nothing is written).
    pub(crate) fn flush(&mut self, run: &mut CycleRun) -> Result<(), EngineError> {
        if run.batch.is_empty() {
            return Ok(());
        }
        let mut chunk = Chunk::default();
        for (id, outcome) in std::mem::take(&mut run.batch) {
            chunk.ids.push(id);
            chunk.outcomes.push(outcome);
        }
        self.store.record_outcomes(&chunk.outcomes)?;
        run.committed(&chunk);
        Ok(())
    }

    /// The end of a cycle that was not held: the watermark (when every mailbox was read), the
    /// quarantine decision, the cycle's status.
    fn end(
        &mut self,
        run: &mut CycleRun,
        stream_complete: bool,
        complete: bool,
    ) -> Result<CycleReport, EngineError> {
        let now = Timestamp::now();
        run.counts.pending = run.planned.saturating_sub(run.sent);
        if complete && let Some(reason) = run.nothing_in_scope() {
            // Most likely a scope that matches nothing: keep the watermark, so the cycle after
            // the fix reads the same mailboxes again.
            tracing::warn!(cycle = %run.id, "{reason}");
            let status = CycleStatus::NothingInScope { reason };
            self.store.finish_cycle(run.id, now, &run.counts, &status)?;
            return Ok(run.report(status, None));
        }
        let watermark = if stream_complete {
            // Everything read has a durable outcome or stays pending (cancelled writes):
            // the tracker never passes a pending object.
            let mut wm = run.tracker.watermark(run.id, self.options.overlap);
            if wm.changed_since == Timestamp::MIN {
                // A full read that saw no mailbox: everything changed before it began is
                // processed (there was nothing); the overlap covers clock skew.
                wm.changed_since = run.started;
            }
            // The edge of a cycle that wrote everything it planned; after a stop the next
            // delta processes the whole overlap again.
            if complete {
                wm.edge = run.edge.for_watermark(&wm, &run.tracker);
            }
            self.store.set_watermark(&wm)?;
            Some(wm)
        } else {
            None
        };
        let quarantine = if complete {
            crate::quarantine::dominant_cause(
                &run.counts,
                &run.failure_causes,
                &run.failure_examples,
            )
        } else {
            None
        };
        let quarantine = quarantine.or_else(|| match &run.stopped {
            Some(Stop::Unreachable(e)) => Some(unreachable_reason(e)),
            _ => None,
        });
        let status = if let Some(reason) = &quarantine {
            CycleStatus::Quarantined {
                reason: reason.clone(),
            }
        } else if let Some(e) = &run.reported {
            CycleStatus::Failed {
                reason: format!(
                    "reading Exchange Online stopped at errors the service reported: {e}; the \
                     mailboxes read before them were processed, the watermark stays"
                ),
            }
        } else if complete {
            CycleStatus::Completed
        } else if let Some(Stop::Fenced(why)) = &run.stopped {
            CycleStatus::Failed {
                reason: format!(
                    "this agent lost the right to write ({why}); the objects not yet written stay \
                     pending for the agent that writes now"
                ),
            }
        } else {
            CycleStatus::Failed {
                reason:
                    "stopped before the end (signal); the next cycle resumes from the watermark"
                        .into(),
            }
        };
        self.store.finish_cycle(run.id, now, &run.counts, &status)?;
        if let Some(reason) = &quarantine {
            crate::quarantine::enter(&mut self.store, reason, now)?;
        } else if complete {
            // A good cycle: clears a quarantine.
            self.store.set_job_state(&JobState::Active)?;
        }
        Ok(run.report(status, watermark))
    }
}

/// Why a cycle stopped writing when AD became unreachable.
fn unreachable_reason(e: &DirectoryError) -> String {
    format!(
        "AD became unreachable while writing ({e}); the objects not yet written stay pending \
         for the next cycle"
    )
}
