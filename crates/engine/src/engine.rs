//! The engine over its ports and store, and what every operation shares: the schema, the next
//! cycle's kind, the reconciliation of intents left by a stopped process, and the writer.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use exo_writeback_core::mailbox::RecipientKind;
use exo_writeback_core::provisioning::{
    CycleCounts, CycleId, CycleKind, CycleStatus, JobState, ObjectOutcome, Watermark,
};
use exo_writeback_core::schema::Schema;
use exo_writeback_core::settings::WritebackPlanSettings;
use exo_writeback_expr::EvalContext;
use exo_writeback_store::{CycleStore, JobStore, JoinStore, OutcomeStore, PauseStore};
use futures::StreamExt;
use jiff::Timestamp;

use crate::error::EngineError;
use crate::options::{CycleMode, EngineOptions, Progress};
use crate::ports::{Directory, MailboxSource, MailboxStream, Unfenced, WriteFence};
use crate::write::{Chunk, Stop, WriteItem, Writer};

/// The engine over its ports and store. Each operation lives in its own module (`cycle`,
/// `preview`, `approve`, `undo`, `provision`); the state of one cycle is a `CycleRun`, not
/// the engine's.
pub struct Engine<S, D, St> {
    pub source: S,
    pub directory: D,
    pub store: St,
    pub settings: WritebackPlanSettings,
    pub options: EngineOptions,
    pub(crate) cancel: Arc<AtomicBool>,
    pub(crate) progress: Box<dyn Fn(Progress) + Send + Sync>,
    /// Who runs the commands (recorded with pins and rejections).
    pub(crate) operator: String,
    /// The attributes the account may not read, as the last probe found (`read_rights.rs`).
    pub(crate) unreadable: std::sync::RwLock<Vec<String>>,
    /// Asked before each chunk of modifies and each modify: whether this process may still
    /// write ([`WriteFence`]; [`Unfenced`] unless a shared state sets one).
    pub(crate) fence: Arc<dyn WriteFence>,
}

impl<S, D, St> Engine<S, D, St> {
    pub fn new(
        source: S,
        directory: D,
        store: St,
        settings: WritebackPlanSettings,
        options: EngineOptions,
    ) -> Self {
        Engine {
            source,
            directory,
            store,
            settings,
            options,
            cancel: Arc::new(AtomicBool::new(false)),
            progress: Box::new(|_| {}),
            operator: "an unnamed operator".into(),
            unreadable: std::sync::RwLock::new(Vec::new()),
            fence: Arc::new(Unfenced),
        }
    }

    /// Check this fence before every modify (a state several agents share: the writer lease).
    pub fn set_fence(&mut self, fence: Arc<dyn WriteFence>) {
        self.fence = fence;
    }

    /// Who runs this engine's commands (an administrator's account name): recorded with the
    /// pins an undo sets.
    pub fn set_operator(&mut self, who: impl Into<String>) {
        self.operator = who.into();
    }

    /// Set to true (e.g. on SIGTERM) to stop after the current object. The watermark never
    /// passes unfinished work.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    /// Stop on this flag instead of the engine's own (one flag for a whole agent).
    pub fn set_cancel_flag(&mut self, flag: Arc<AtomicBool>) {
        self.cancel = flag;
    }

    pub fn on_progress(&mut self, f: impl Fn(Progress) + Send + Sync + 'static) {
        self.progress = Box::new(f);
    }

    pub(crate) fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    pub(crate) fn ctx(&self) -> EvalContext {
        EvalContext {
            now: Timestamp::now(),
            seed: 0,
        }
    }
}

impl<S: MailboxSource, D: Directory, St: JobStore> Engine<S, D, St> {
    /// The kind of the next cycle, and the watermark it starts from.
    pub(crate) fn next_kind(
        &self,
        mode: CycleMode,
    ) -> Result<(CycleKind, Option<Watermark>), EngineError> {
        let previous = self.store.watermark()?;
        let kind = match (mode, &previous) {
            (_, None) => CycleKind::Initial,
            (CycleMode::Full, Some(_)) => CycleKind::FullReconcile,
            (CycleMode::Auto, Some(_)) => CycleKind::Delta,
        };
        Ok((kind, previous))
    }

    /// The records a cycle of `kind` reads: those changed since the watermark (delta), or
    /// all of them — the mailboxes when a mailbox profile is enabled, then the groups and the
    /// mail contacts when their profiles are (issue 17), one after the other.
    pub(crate) fn stream_for(
        &self,
        kind: CycleKind,
        previous: Option<&Watermark>,
    ) -> MailboxStream {
        let changed = match (kind, previous) {
            (CycleKind::Delta, Some(w)) => Some((w.changed_since, self.options.overlap)),
            _ => None,
        };
        let kinds: BTreeSet<RecipientKind> =
            self.settings.profiles.iter().map(|p| p.kind()).collect();
        let mut streams: Vec<MailboxStream> = Vec::new();
        if kinds.contains(&RecipientKind::Mailbox) {
            streams.push(match changed {
                Some((since, overlap)) => self.source.changed_since(since, overlap),
                None => self.source.all(),
            });
        }
        for other in [RecipientKind::Group, RecipientKind::Contact] {
            if kinds.contains(&other) {
                streams.push(self.source.recipients(other, changed));
            }
        }
        futures::stream::iter(streams).flatten().boxed()
    }
}

impl<S, D, St: JobStore + PauseStore> Engine<S, D, St> {
    /// Whether the job may run a cycle now: not paused, held or quarantined.
    pub(crate) fn check_job(&self) -> Result<(), EngineError> {
        if let Some(pause) = self.store.pause()? {
            return Err(EngineError::Paused(pause));
        }
        match self.store.job_state()? {
            JobState::ThresholdExceeded { cycle } => Err(EngineError::Held { cycle }),
            state => crate::quarantine::check(&state, Timestamp::now())
                .map_err(|(reason, next_retry)| EngineError::Quarantined { reason, next_retry }),
        }
    }
}

impl<S, D: Directory, St> Engine<S, D, St> {
    /// The cached schema, read again when the cache fails.
    pub(crate) async fn schema(&self) -> Result<Arc<Schema>, EngineError> {
        match self.directory.schema().await {
            Ok(s) => Ok(s),
            Err(_) => self
                .directory
                .refresh_schema()
                .await
                .map_err(EngineError::Directory),
        }
    }
}

impl<S, D: Directory, St: OutcomeStore + JoinStore> Engine<S, D, St> {
    /// Writes one chunk through the one write path (`write.rs`), with the engine's retry
    /// policy and stop flag.
    pub(crate) async fn write_chunk(
        &mut self,
        items: Vec<WriteItem>,
        with: Vec<(String, ObjectOutcome)>,
    ) -> Result<Chunk, EngineError> {
        let writer = Writer::new(
            &self.directory,
            &self.options,
            &self.cancel,
            self.fence.as_ref(),
        );
        Ok(writer.write(&mut self.store, items, with).await?)
    }

    /// Before anything else a cycle (or approve, undo, provision) does: reconciles the intents
    /// a stopped process left (`crate::intents`; `by` names the cycle doing it). Directory
    /// errors keep the intents and do not stop the caller.
    pub(crate) async fn reconcile_intents(
        &mut self,
        by: Option<CycleId>,
    ) -> Result<(), EngineError> {
        crate::intents::reconcile(&self.directory, &mut self.store, by).await?;
        Ok(())
    }
}

impl<S, D, St: CycleStore> Engine<S, D, St> {
    /// Ends the cycle of an approve, undo or provision on demand: `Completed` with its counts
    /// when `result` is `Ok`, else `Failed` with the error (best effort: the error is what the
    /// caller reports). The result is passed on.
    pub(crate) fn close<T>(
        &mut self,
        cycle: CycleId,
        counts: &CycleCounts,
        result: Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        let now = Timestamp::now();
        match result {
            Ok(value) => {
                self.store
                    .finish_cycle(cycle, now, counts, &CycleStatus::Completed)?;
                Ok(value)
            }
            Err(e) => {
                let status = CycleStatus::Failed {
                    reason: e.to_string(),
                };
                if let Err(store) = self.store.finish_cycle(cycle, now, counts, &status) {
                    tracing::warn!(%cycle, error = %store, "cannot record the end of the cycle");
                }
                Err(e)
            }
        }
    }
}

/// A chunk's stop as the error of the operation writing it.
pub(crate) fn stopped(cycle: CycleId, stop: Stop) -> EngineError {
    let reason = match stop {
        Stop::Cancelled => "a stop was requested".to_string(),
        Stop::Unreachable(e) => format!("AD stayed unreachable ({e})"),
        Stop::Fenced(why) => format!("this agent may no longer write ({why})"),
    };
    EngineError::Stopped { cycle, reason }
}
