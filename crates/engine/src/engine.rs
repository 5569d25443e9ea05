//! The engine over its ports and store: what every operation shares.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use exo_writeback_core::outcome::OutcomeCode;
use exo_writeback_core::settings::WritebackPlanSettings;
use exo_writeback_expr::EvalContext;
use exo_writeback_store::prelude::*;
use jiff::Timestamp;
use uuid::Uuid;

use crate::match_index::MatchIndex;
use crate::ports::{Directory, DirectoryError, MailboxSource};

use crate::evaluate::Processed;
use crate::options::EngineOptions;
use crate::options::Progress;

/// The engine over its ports and store.
pub struct Engine<S, D, St> {
    pub source: S,
    pub directory: D,
    pub store: St,
    pub settings: WritebackPlanSettings,
    pub options: EngineOptions,
    pub(crate) cancel: Arc<AtomicBool>,
    pub(crate) progress: Box<dyn Fn(Progress) + Send + Sync>,
    /// Failures of the running cycle by outcome code (input of the quarantine decision).
    pub(crate) failure_causes: BTreeMap<OutcomeCode, u64>,
    /// One failure reason per outcome code of the running cycle (for the quarantine reason).
    pub(crate) failure_examples: BTreeMap<OutcomeCode, String>,
    /// Mailboxes the running cycle has read (a failure before any is a quarantine cause).
    pub(crate) cycle_imported: u64,
    /// Objects waiting to be written as the next chunk (intents → modifies → outcomes).
    pub(crate) write_queue: Vec<Processed>,
    /// Set when AD stayed unreachable through a modify's retries: the running cycle writes
    /// nothing more (see `EngineOptions::reconnect_waits`).
    pub(crate) ad_unreachable: Option<DirectoryError>,
    /// Intents of the chunk being written, deleted by the next [`Engine::flush`] together with
    /// the chunk's outcomes.
    pub(crate) intents_to_clear: Vec<Uuid>,
    /// The match keys of the directory, read at the start of an initial or full cycle (or
    /// preview); `None` in deltas and when the directory cannot list them.
    pub(crate) match_index: Option<MatchIndex>,
}

impl<S: MailboxSource, D: Directory, St: Store> Engine<S, D, St> {
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
            failure_causes: BTreeMap::new(),
            failure_examples: BTreeMap::new(),
            cycle_imported: 0,
            write_queue: Vec::new(),
            ad_unreachable: None,
            intents_to_clear: Vec::new(),
            match_index: None,
        }
    }

    /// Set to true (e.g. on SIGTERM) to stop after the current object. The watermark never
    /// passes unfinished work.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
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
