//! The attributes the directory account may not read: AD leaves them out of its answers
//! without an error, so a plan would see them empty, rewrite them every cycle and journal a
//! wrong previous value. Probed at the start of every cycle, preview and provision
//! ([`Directory::unreadable_attributes`]); they are not planned (`PlanInput::unreadable`), each
//! is logged as an error naming the account and the grant, and the cycle's report lists them.
//!
//! Which objects the probe evaluates: a delta's, those its first mailboxes are joined to
//! (`take.rs`); an initial or full cycle's (and a preview of one), the first objects its own
//! scan hands over ([`ScanSamples`]) — both found by objectGUID, a search whose cost does not
//! grow with the directory. With none (a scan that fails or finds nothing) the directory
//! samples objects of its own, a search of its whole scope.

use std::sync::{Arc, Mutex};

use futures::channel::oneshot;
use uuid::Uuid;

use crate::engine::Engine;
use crate::ports::{Directory, UnreadableAttribute};

impl<S, D: Directory, St> Engine<S, D, St> {
    /// Probe the attributes the plans read — on `samples` where given (the objects about to
    /// be evaluated, `Directory::unreadable_attributes`); remember those the account may not
    /// read. A probe that cannot decide (no sample object, a DACL the account may not read)
    /// plans every attribute, with a warning.
    pub(crate) async fn probe_read_rights(&self, samples: &[Uuid]) -> Vec<UnreadableAttribute> {
        let attributes = self.settings.required_ad_attributes();
        tracing::debug!(samples = samples.len(), "probing the read rights");
        let found = match self
            .directory
            .unreadable_attributes(&attributes, samples)
            .await
        {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "cannot verify that the bind account may read the attributes the plans need");
                Vec::new()
            }
        };
        for u in &found {
            tracing::error!(attribute = %u.attribute, "not planned: {}", u.message);
        }
        if let Ok(mut names) = self.unreadable.write() {
            *names = found.iter().map(|u| u.attribute.clone()).collect();
        }
        found
    }

    /// The probe of an initial or full cycle: on the objects its scan hands over first (see
    /// [`ScanSamples`]); none — the scan failed before its first sample, found none or never
    /// ran — lets the directory sample objects of its own.
    pub(crate) async fn probe_scan_samples(
        &self,
        samples: SampledObjects,
    ) -> Vec<UnreadableAttribute> {
        let samples = samples.take().await;
        self.probe_read_rights(&samples).await
    }

    /// The attributes not planned (the last probe's).
    pub(crate) fn unreadable_names(&self) -> Vec<String> {
        self.unreadable
            .read()
            .map(|n| n.clone())
            .unwrap_or_default()
    }
}

/// Objects a directory's probe by objectGUID takes at most (`exo_writeback_ad`'s
/// `MAX_GUID_SAMPLES`: one bounded filter).
pub(crate) const SCAN_SAMPLES: usize = 100;

/// The scan's side of its read-rights samples: the objectGUIDs of the first objects it hands
/// over that may be written (at most [`SCAN_SAMPLES`]; `scan.rs` chooses). The probe is woken
/// by the first, and takes what is there when it runs: the scan and the probe are polled in one
/// task, so that is when the scan waits for its next page — the whole first page is there, and
/// the probe runs beside the rest of the scan. A scan that fails before its first sample, or
/// never runs, gives none.
pub(crate) struct ScanSamples {
    guids: Arc<Mutex<Vec<Uuid>>>,
    ready: Option<oneshot::Sender<()>>,
    /// Samples given so far: past [`SCAN_SAMPLES`] the scan no longer looks for any.
    added: usize,
}

/// The probe's side of [`ScanSamples`].
pub(crate) struct SampledObjects {
    guids: Arc<Mutex<Vec<Uuid>>>,
    ready: oneshot::Receiver<()>,
}

/// A scan's samples and where the probe takes them.
pub(crate) fn scan_samples() -> (ScanSamples, SampledObjects) {
    let guids = Arc::default();
    let (ready, woken) = oneshot::channel();
    (
        ScanSamples {
            guids: Arc::clone(&guids),
            ready: Some(ready),
            added: 0,
        },
        SampledObjects {
            guids,
            ready: woken,
        },
    )
}

impl ScanSamples {
    /// Whether another sample is wanted: the scan checks its objects only until there are
    /// [`SCAN_SAMPLES`] (a scan of a million objects need not look at every one).
    pub(crate) fn wants(&self) -> bool {
        self.added < SCAN_SAMPLES
    }

    /// An object of the scan that may be written.
    pub(crate) fn add(&mut self, guid: Uuid) {
        if !self.wants() {
            return;
        }
        self.added += 1;
        if let Ok(mut guids) = self.guids.lock() {
            guids.push(guid);
        }
        self.wake();
    }

    /// The scan's end (with an object or not, completed or not): the probe goes on with what
    /// it has.
    pub(crate) fn end(mut self) {
        self.wake();
    }

    fn wake(&mut self) {
        if let Some(ready) = self.ready.take() {
            // The probe gone (its cycle stopped): nobody to wake.
            let _ = ready.send(());
        }
    }
}

impl SampledObjects {
    /// The samples, once the scan has handed over its first (or ended).
    async fn take(self) -> Vec<Uuid> {
        // Cancelled: the scan never ran.
        let _ = self.ready.await;
        self.guids
            .lock()
            .map(|mut g| std::mem::take(&mut *g))
            .unwrap_or_default()
    }
}
