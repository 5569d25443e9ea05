//! The engine's tunables, the cycle modes and progress.

use jiff::SignedDuration;

/// How often outcomes are committed together (one transaction per batch), and how many
/// modifies one transaction of write-ahead intents covers.
pub(crate) const DEFAULT_BATCH: usize = 200;

/// Tunables of the engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Re-read by each delta cycle before the watermark.
    pub overlap: SignedDuration,
    /// Outcomes per store transaction, and objects per chunk of the write phase (intents
    /// committed → modifies → outcomes committed).
    pub batch: usize,
    /// Escrow entries retried per cycle at most.
    pub escrow_per_cycle: usize,
    /// Plans held in memory until the threshold decision; beyond it plans wait in an
    /// anonymous temporary file (in `spill_dir`, about 0.33 KB per object, deflated) so
    /// memory stays bounded on huge cycles.
    pub max_plans_in_memory: usize,
    /// Where that file is created: the agent's state directory (sized for the state), or
    /// `TMPDIR` when `None`.
    pub spill_dir: Option<std::path::PathBuf>,
    /// When a modify fails because AD cannot be reached (connection refused or broken), it is
    /// sent again after each of these waits (a DC restarting comes back within seconds) — in
    /// cycles, approve, undo and provision on demand alike (one write path). If AD is still
    /// unreachable, writing stops: a cycle leaves the objects not yet written pending for the
    /// next cycle (no failure entry, no escrow; the watermark stays before them) and is
    /// quarantined with the error; approve, undo and provision end with an error
    /// (`EngineError::Stopped`: what they wrote is logged; run them again).
    pub reconnect_waits: Vec<std::time::Duration>,
    /// Mailboxes evaluated (matched, planned, guarded: AD reads only) at the same time in
    /// the read phase of a delta; 1 = one after the other (initial and full cycles evaluate
    /// `bulk_read` at once).
    pub evaluate_concurrency: usize,
    /// Modifies in flight at once in the write phase (pipelined on the connection, in order
    /// per object; outcomes committed per chunk behind the chunk's write-ahead intents, while
    /// the next chunk's modifies are in flight — enough of them to keep the DC busy during
    /// the commit); 1 = each modify awaited before the next is sent.
    pub writes_in_flight: usize,
    /// Mailboxes of an initial or full cycle evaluated together: their candidates read with
    /// one request (`Directory::read_by_guids`), their address checks answered by the cycle's
    /// address index.
    pub bulk_read: usize,
    /// What the objects of an initial or full cycle's scan kept whole may take (estimated
    /// bytes): a mailbox whose object is kept and in sync is decided without reading AD again
    /// (`match_index.rs`); beyond it the rest of the directory is read per batch
    /// (`bulk_read`). 0: none is kept.
    pub scan_cache_bytes: usize,
    /// The same for an initial cycle, which keeps its scan's objects only with the DC's
    /// change mark (`mark.rs`: a kept object unchanged since the mark is not read again). Its
    /// whole listing is planned, so it holds more than a full reconcile: this budget keeps the
    /// agent within 512 MiB at a million mailboxes (`scale`). 0: none is kept.
    pub initial_scan_cache_bytes: usize,
    /// Mailbox records an initial or full cycle reads ahead from Exchange Online while it
    /// scans the directory (the two overlap); the rest is read as the cycle goes.
    pub read_ahead: usize,
    /// Outcomes of the read phase that need no write (in sync, skipped, failed before any
    /// write) committed together: one commit — one flush of the write-ahead log to disk — per
    /// this many (at least `batch`). An outcome not yet committed when the process stops is
    /// processed again by the next cycle (the watermark waits for it).
    pub read_batch: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            overlap: SignedDuration::from_mins(5),
            batch: DEFAULT_BATCH,
            escrow_per_cycle: 10_000,
            max_plans_in_memory: 20_000,
            spill_dir: None,
            // At once (a connection the server dropped while idle: the client reconnects), then
            // after 1, 2, 4 and 8 s (a DC restarting).
            reconnect_waits: [0, 1, 2, 4, 8].map(std::time::Duration::from_secs).to_vec(),
            evaluate_concurrency: 8,
            writes_in_flight: 32,
            bulk_read: 100,
            // About 88,000 users' objects of the lab's size (1.5 KB each, estimated): a
            // 50,000-user directory's scan is kept whole (with 64 MiB, 5,828 of its 50,205
            // objects were read again); a larger one keeps this much, the rest compact.
            scan_cache_bytes: 128 << 20,
            // About 22,000 users' objects of the lab's size: a 10,000-user directory is kept
            // whole. Measured at 1M (`scale`, 2026-12-04): 64 MiB took the agent to 522 MiB.
            initial_scan_cache_bytes: 32 << 20,
            // Ten result pages of 1,000.
            read_ahead: 10_000,
            read_batch: 2_000,
        }
    }
}

/// Which cycle to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CycleMode {
    /// Initial when there is no watermark, else delta.
    Auto,
    /// A full reconcile (initial when there is no watermark).
    Full,
}

/// Progress of a running cycle, for a progress bar or logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Mailboxes read so far.
    Imported(u64),
    /// Objects written so far, of a total.
    Writing { done: u64, total: u64 },
}
