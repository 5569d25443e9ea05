//! The agent's loop (`exo-writeback run`): a cycle (initial when there is no watermark, else
//! delta) every `sync.interval`, start to start (a cycle that takes longer than the interval
//! is followed at once by the next: never two at a time, none skipped), a full reconcile every `sync.reconcile_interval`, the log
//! retention purge after each, and — while the job is quarantined — no cycle before its next
//! retry; while it is paused, no cycle at all (each turn says so, and the loop goes on). Each
//! cycle holds the right to write the state ([`State::writer`]: the state lock, or on
//! PostgreSQL the writer lease); between cycles it is free, so `approve`, `undo` and
//! `provision` run beside the agent. On a shared state the loop runs only while this agent
//! leads ([`State::lead`]: a standby waits there). Time comes from a [`Clock`], so the loop
//! runs in tests without waiting.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use exo_writeback_core::provisioning::{CycleId, JobState, Pause};
use exo_writeback_engine::{CycleMode, CycleReport, Directory, Engine, EngineError, MailboxSource};
use exo_writeback_store_sqlite::Store;
use jiff::{SignedDuration, Timestamp};

use crate::config::SyncSettings;
use crate::error::AgentError;
use crate::state::State;

/// The time the loop reads and waits on.
pub trait Clock {
    fn now(&self) -> Timestamp;
    /// Waits until `at`, or until `stop` is set; `true` when asked to stop.
    fn sleep_until(&self, at: Timestamp, stop: &AtomicBool) -> impl Future<Output = bool>;
}

/// The system's clock; a wait wakes every 200 ms to look at the stop flag.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    async fn sleep_until(&self, at: Timestamp, stop: &AtomicBool) -> bool {
        loop {
            if stop.load(Ordering::SeqCst) {
                return true;
            }
            let left = Timestamp::now().duration_until(at);
            let Ok(left) = std::time::Duration::try_from(left) else {
                return false;
            };
            if left.is_zero() {
                return false;
            }
            tokio::time::sleep(left.min(std::time::Duration::from_millis(200))).await;
        }
    }
}

/// When cycles run, from the `[sync]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub interval: SignedDuration,
    pub reconcile_interval: SignedDuration,
    pub log_retention_days: u32,
}

impl Schedule {
    pub fn of(sync: &SyncSettings) -> Schedule {
        Schedule {
            interval: sync.interval,
            reconcile_interval: sync.reconcile_interval,
            log_retention_days: sync.log_retention_days,
        }
    }
}

/// What one turn of the loop came to.
#[derive(Debug)]
pub enum Turn<'a> {
    /// A cycle ran.
    Cycle(&'a CycleReport),
    /// The job is held by the change threshold: nothing ran.
    Held(CycleId),
    /// An administrator paused the job: nothing ran (the agent keeps waiting).
    Paused(&'a Pause),
    /// The job is quarantined until `next_retry`: nothing ran.
    Quarantined {
        reason: &'a str,
        next_retry: Timestamp,
    },
    /// The cycle failed; the next one runs at the next interval.
    Failed(&'a EngineError),
}

/// The agent's loop over an engine.
pub struct Scheduler<C> {
    pub clock: C,
    pub schedule: Schedule,
    /// The state (its writer, and on a shared state the leadership).
    pub state: Arc<State>,
    /// Set (SIGTERM, Ctrl-C) to stop after the current object, or during a wait.
    pub stop: Arc<AtomicBool>,
}

impl<C: Clock> Scheduler<C> {
    /// Runs cycles until asked to stop; `on_turn` hears what each turn came to.
    pub async fn run<S: MailboxSource, D: Directory, St: Store>(
        &self,
        engine: &mut Engine<S, D, St>,
        mut on_turn: impl FnMut(Turn<'_>),
    ) -> Result<(), AgentError> {
        let mut last_full: Option<Timestamp> = None;
        loop {
            let now = self.clock.now();
            let full_due = last_full
                .is_some_and(|t| now.duration_since(t) >= self.schedule.reconcile_interval);
            let mode = if full_due {
                CycleMode::Full
            } else {
                CycleMode::Auto
            };
            if self.state.lead(&self.stop).await? {
                return Ok(());
            }
            let lock = match self.state.writer("exo-writeback run").await {
                Ok(lock) => lock,
                // A shared state's database down: no agent writes; the next turn tries again.
                Err(AgentError::Store(e)) if self.state.is_shared() => {
                    on_turn(Turn::Failed(&EngineError::Store(e)));
                    let wake = self.clock.now() + self.schedule.interval;
                    if self.clock.sleep_until(wake, &self.stop).await {
                        return Ok(());
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            // Cycles start an interval apart, start to start (not interval + cycle time).
            let begun = self.clock.now();
            let started = match interrupt_stale_cycles(engine, now) {
                Ok(()) => engine.run_cycle(mode).await,
                Err(AgentError::Store(e)) if self.state.is_shared() => Err(EngineError::Store(e)),
                Err(e) => return Err(e),
            };
            match started {
                Ok(report) => {
                    if last_full.is_none() || full_due {
                        last_full = Some(now);
                    }
                    on_turn(Turn::Cycle(&report));
                }
                Err(EngineError::Held { cycle }) => on_turn(Turn::Held(cycle)),
                Err(EngineError::Paused(pause)) => on_turn(Turn::Paused(&pause)),
                Err(EngineError::Quarantined { reason, next_retry }) => {
                    on_turn(Turn::Quarantined {
                        reason: &reason,
                        next_retry,
                    });
                }
                Err(e) => on_turn(Turn::Failed(&e)),
            }
            purge_old_logs(
                &mut engine.store,
                self.schedule.log_retention_days,
                self.clock.now(),
            );
            // The next cycle: an interval after this one began — at once when this one took
            // longer (never two at a time, none skipped) — or at the quarantine's next retry
            // when later.
            let mut wake = (begun + self.schedule.interval).max(self.clock.now());
            if let Ok(JobState::Quarantine { next_retry, .. }) = engine.store.job_state() {
                wake = wake.max(next_retry);
            }
            drop(lock);
            if self.clock.sleep_until(wake, &self.stop).await {
                return Ok(());
            }
        }
    }
}

/// Marks cycles a stopped process left `Running` as `Interrupted`. Only the holder of the state
/// lock (or writer lease) may: no other command is writing then.
pub fn interrupt_stale_cycles<S, D, St: Store>(
    engine: &mut Engine<S, D, St>,
    now: Timestamp,
) -> Result<(), AgentError> {
    let interrupted = engine.store.interrupt_running_cycles(now)?;
    if interrupted > 0 {
        tracing::warn!(
            interrupted,
            "found cycles still marked running: the agent stopped in the middle; the next cycle resumes from the watermark"
        );
    }
    Ok(())
}

/// The store's retention purge, per `sync.log_retention_days`.
pub fn purge_old_logs<St: Store>(store: &mut St, days: u32, now: Timestamp) {
    let cutoff = now
        .checked_sub(SignedDuration::from_hours(i64::from(days) * 24))
        .unwrap_or(Timestamp::MIN);
    if let Err(e) = store.purge_older_than(cutoff) {
        tracing::warn!(error = %e, "purging old provisioning logs failed");
    }
}
