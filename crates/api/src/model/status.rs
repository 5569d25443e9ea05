//! The job's status, read through the store's read-only roles.

use exo_writeback_core::provisioning::{CycleRecord, CycleStatus, JobState};
use exo_writeback_store_sqlite::{
    CycleStore, EscrowStore, JobStore, PauseStore, PinStore, StagingStore, StoreError,
};
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
    /// Attributes left alone until their Exchange Online value changes (undo, reject).
    pub pinned_attributes: u64,
    pub pinned_objects: u64,
    /// Held cycles whose changes wait for approval, oldest first.
    pub pending_approval: Vec<i64>,
    /// When the next cycle runs, or why it does not.
    pub next_run: String,
    /// This agent.
    pub agent: Agent,
    /// The agent answering. One agent serves a state directory at a time (the cycle lock);
    /// the agents sharing a PostgreSQL state are in `cluster`.
    pub agents: Vec<Agent>,
    /// On a PostgreSQL state several agents share: who leads, who writes, every agent seen
    /// and the last takeover (`None` on a SQLite state).
    pub cluster: Option<ClusterView>,
}

/// The agents sharing one PostgreSQL state, as `exo-writeback status` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    /// The agent running cycles (`None`: none, or its lease lapsed).
    pub leader: Option<LeaseHolder>,
    /// Who writes the state and AD at this instant (a cycle, a command), if anyone.
    pub writer: Option<LeaseHolder>,
    /// Every agent seen renewing within the last three lease times, oldest first; those that
    /// do not lead stand by.
    pub agents: Vec<ClusterAgent>,
    /// The latest change of leader.
    pub last_takeover: Option<TakeoverView>,
    /// How many changes of leader the state has seen.
    pub takeovers: u64,
}

/// The holder of a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeaseHolder {
    pub host: String,
    pub pid: u32,
    pub command: String,
    pub since: String,
    pub expires_at: String,
    /// The fencing epoch: it grows with every takeover.
    pub epoch: i64,
}

/// An agent of a shared state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterAgent {
    pub host: String,
    pub pid: u32,
    pub command: String,
    pub started_at: String,
    pub seen_at: String,
    pub leader: bool,
}

/// A change of leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TakeoverView {
    pub at: String,
    pub epoch: i64,
    pub host: String,
    pub pid: u32,
    pub command: String,
    /// The leader before (`host pid N`), if there was one.
    pub previous: Option<String>,
    pub reason: String,
}

impl From<&exo_writeback_agent::state::Cluster> for ClusterView {
    fn from(c: &exo_writeback_agent::state::Cluster) -> ClusterView {
        let holder = |h: &exo_writeback_agent::state::Holder| LeaseHolder {
            host: h.host.clone(),
            pid: h.pid,
            command: h.command.clone(),
            since: h.since.to_string(),
            expires_at: h.expires_at.to_string(),
            epoch: h.epoch,
        };
        ClusterView {
            leader: c.leader.as_ref().map(holder),
            writer: c.writer.as_ref().map(holder),
            agents: c
                .agents
                .iter()
                .map(|a| ClusterAgent {
                    host: a.host.clone(),
                    pid: a.pid,
                    command: a.command.clone(),
                    started_at: a.started_at.to_string(),
                    seen_at: a.seen_at.to_string(),
                    leader: a.leader,
                })
                .collect(),
            last_takeover: c.last_takeover.as_ref().map(|t| TakeoverView {
                at: t.at.to_string(),
                epoch: t.epoch,
                host: t.host.clone(),
                pid: t.pid,
                command: t.command.clone(),
                previous: t.previous.clone(),
                reason: t.reason.clone(),
            }),
            takeovers: c.takeovers,
        }
    }
}

/// The job's state (PRODUCT.md §8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// `NotRun`, `Active`, `ThresholdExceeded` or `Quarantine` (a pause is beside it).
    pub state: String,
    /// Who paused the job, when and why; no cycle runs while it is paused.
    pub paused: Option<PauseView>,
    /// The cycle held by the change threshold.
    pub held_cycle: Option<i64>,
    pub quarantine: Option<Quarantine>,
}

/// A pause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PauseView {
    pub by: String,
    pub since: String,
    pub reason: Option<String>,
}

impl From<&exo_writeback_core::provisioning::Pause> for PauseView {
    fn from(p: &exo_writeback_core::provisioning::Pause) -> PauseView {
        PauseView {
            by: p.by.clone(),
            since: p.since.to_string(),
            reason: p.reason.clone(),
        }
    }
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

impl Job {
    /// The job's state and pause as the API shows them.
    pub fn of(state: &JobState, pause: Option<&exo_writeback_core::provisioning::Pause>) -> Job {
        Job {
            state: state.name().to_string(),
            paused: pause.map(Into::into),
            held_cycle: match state {
                JobState::ThresholdExceeded { cycle } => Some(cycle.0),
                _ => None,
            },
            quarantine: match state {
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
        }
    }

    /// The agent library's job state back (`None`: not one this version knows).
    pub fn job_state(&self) -> Option<JobState> {
        Some(match self.state.as_str() {
            "NotRun" => JobState::NotRun,
            "Active" => JobState::Active,
            "ThresholdExceeded" => JobState::ThresholdExceeded {
                cycle: exo_writeback_core::provisioning::CycleId(self.held_cycle?),
            },
            "Quarantine" => {
                let q = self.quarantine.as_ref()?;
                JobState::Quarantine {
                    reason: q.reason.clone(),
                    since: q.since.parse().ok()?,
                    next_retry: q.next_retry.parse().ok()?,
                }
            }
            _ => return None,
        })
    }
}

fn is_sync(c: &CycleRecord) -> bool {
    c.kind.is_scheduled()
}

/// The status from the store; `interval` is `sync.interval`.
pub fn status_of<
    S: JobStore + CycleStore + EscrowStore + StagingStore + PauseStore + PinStore + ?Sized,
>(
    store: &S,
    interval: SignedDuration,
    agent: Agent,
    now: Timestamp,
) -> Result<Status, StoreError> {
    let state = store.job_state()?;
    let pause = store.pause()?;
    let pins = store.pin_count()?;
    let cycles = store.recent_cycles(50)?;
    let last = cycles.first();
    let last_success = cycles
        .iter()
        .find(|c| is_sync(c) && c.status == CycleStatus::Completed);
    let watermark = store.watermark()?;
    let next_run = match (&state, cycles.iter().find(|c| is_sync(c))) {
        _ if pause.is_some() => "paused: no cycle runs until the job is resumed".into(),
        (JobState::ThresholdExceeded { cycle }, _) => {
            format!("held until cycle {cycle} is approved or rejected")
        }
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
        job: Job::of(&state, pause.as_ref()),
        last_cycle: last.map(Into::into),
        last_successful_cycle: last_success.map(Into::into),
        watermark_lag_seconds: watermark
            .as_ref()
            .map(|w| now.duration_since(w.changed_since).as_secs()),
        watermark: watermark.map(|w| w.changed_since.to_string()),
        escrow: store.escrow_count()?,
        pinned_attributes: pins.attributes,
        pinned_objects: pins.objects,
        pending_approval: store.pending_staged_cycles()?.iter().map(|c| c.0).collect(),
        next_run,
        agents: vec![agent.clone()],
        agent,
        cluster: None,
    })
}
