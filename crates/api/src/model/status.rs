//! The job's status, read through the store's read-only roles.

use exo_writeback_core::provisioning::{CycleKind, CycleRecord, CycleStatus, JobState};
use exo_writeback_store_sqlite::{CycleStore, EscrowStore, JobStore, StagingStore, StoreError};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::cycle::Cycle;

/// The job, its last cycles and the agents serving it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub job: Job,
    /// The newest cycle of any kind.
    pub last_cycle: Option<Cycle>,
    /// The newest sync cycle (initial, delta, full reconcile) that completed.
    pub last_successful_cycle: Option<Cycle>,
    /// Mailboxes changed after this instant are still to be read (RFC 3339).
    pub watermark: Option<String>,
    /// How far the watermark is behind now, in seconds.
    pub watermark_lag_seconds: Option<i64>,
    /// Objects waiting in escrow for a retry.
    pub escrow: u64,
    /// Held cycles whose changes wait for approval, oldest first.
    pub pending_approval: Vec<i64>,
    /// When the next cycle runs, or why it does not.
    pub next_run: String,
    /// This agent.
    pub agent: Agent,
    /// Every agent serving this state. One agent serves a state directory at a time (the
    /// cycle lock), so this lists the one answering.
    pub agents: Vec<Agent>,
}

/// The job's state (PRODUCT.md §8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// `NotRun`, `Active`, `Paused`, `ThresholdExceeded` or `Quarantine`.
    pub state: String,
    /// The cycle held by the change threshold.
    pub held_cycle: Option<i64>,
    pub quarantine: Option<Quarantine>,
}

/// Why the job is in quarantine and when it retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Quarantine {
    pub reason: String,
    pub since: String,
    pub next_retry: String,
}

/// An agent process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Agent {
    pub version: String,
    pub pid: u32,
    pub host: String,
    pub started_at: String,
    /// The URL it serves the API on.
    pub url: String,
    /// Whether it has started its loop (what `/readyz` answers).
    pub ready: bool,
}

fn is_sync(c: &CycleRecord) -> bool {
    matches!(
        c.kind,
        CycleKind::Initial | CycleKind::Delta | CycleKind::FullReconcile
    )
}

/// The status from the store; `interval` is `sync.interval`.
pub fn status_of<S: JobStore + CycleStore + EscrowStore + StagingStore>(
    store: &S,
    interval: SignedDuration,
    agent: Agent,
    now: Timestamp,
) -> Result<Status, StoreError> {
    let state = store.job_state()?;
    let cycles = store.recent_cycles(50)?;
    let last = cycles.first();
    let last_success = cycles
        .iter()
        .find(|c| is_sync(c) && c.status == CycleStatus::Completed);
    let watermark = store.watermark()?;
    let next_run = match (&state, cycles.iter().find(|c| is_sync(c))) {
        (JobState::ThresholdExceeded { cycle }, _) => {
            format!("held until cycle {cycle} is approved")
        }
        (JobState::Paused, _) => "paused".into(),
        (JobState::Quarantine { next_retry, .. }, _) => next_retry.to_string(),
        (_, Some(c)) => c
            .finished_at
            .unwrap_or(c.started_at)
            .checked_add(interval)
            .map(|t| t.to_string())
            .unwrap_or_default(),
        (_, None) => "now (initial cycle)".into(),
    };
    Ok(Status {
        job: Job {
            state: state.name().to_string(),
            held_cycle: match &state {
                JobState::ThresholdExceeded { cycle } => Some(cycle.0),
                _ => None,
            },
            quarantine: match &state {
                JobState::Quarantine {
                    reason,
                    since,
                    next_retry,
                } => Some(Quarantine {
                    reason: reason.clone(),
                    since: since.to_string(),
                    next_retry: next_retry.to_string(),
                }),
                _ => None,
            },
        },
        last_cycle: last.map(Into::into),
        last_successful_cycle: last_success.map(Into::into),
        watermark_lag_seconds: watermark
            .as_ref()
            .map(|w| now.duration_since(w.changed_since).as_secs()),
        watermark: watermark.map(|w| w.changed_since.to_string()),
        escrow: store.escrow_count()?,
        pending_approval: store.pending_staged_cycles()?.iter().map(|c| c.0).collect(),
        next_run,
        agents: vec![agent.clone()],
        agent,
    })
}
