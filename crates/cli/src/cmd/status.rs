//! `exo-writeback status [--json]`: the job state (and a pause), whether an agent runs, the
//! last scheduled cycle and the last successful one, the last command run by hand, the
//! watermark, escrow, pins, security events of the recent cycles, the next run, the DCs the
//! agent last used with its last failover (`agent::dc_status`), and on a shared (PostgreSQL)
//! state the cluster: who leads, the standbys, the last takeover.

use std::process::ExitCode;

use exo_writeback_core::provisioning::{CycleKind, CycleRecord, JobState, Pause, Pin};
use exo_writeback_engine::describe_pins;
use exo_writeback_store_sqlite::prelude::*;
use jiff::Timestamp;
use serde_json::{Value, json};

use exo_writeback_agent::lock::{Runner, cycle_runner};
use exo_writeback_agent::state::State;
use exo_writeback_agent::{compose, dc_status};

use crate::cmd::ConfigArg;
use crate::logging::init_logging;
use crate::out::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print the status (job state, pause, agent, cycles, watermark, escrow, pins, next run,
    /// opted-in targets) as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Pins listed by `status` (the count says how many there are in all).
const PINS_SHOWN: usize = 20;

const SCHEDULED: [CycleKind; 3] = [
    CycleKind::Initial,
    CycleKind::Delta,
    CycleKind::FullReconcile,
];
const BY_HAND: [CycleKind; 4] = [
    CycleKind::OnDemand,
    CycleKind::Approve,
    CycleKind::Reject,
    CycleKind::Undo,
];

fn cycle_json(c: &CycleRecord) -> Value {
    json!({
        "cycle": c.id.0,
        "kind": c.kind.as_str(),
        "status": crate::cmd::sync::status_text(&c.status),
        "started_at": c.started_at.to_string(),
        "finished_at": c.finished_at.map(|t| t.to_string()),
        "counts": c.counts,
    })
}

fn cycle_line(c: &CycleRecord) -> String {
    format!(
        "{} ({}) {} — started {}",
        c.id,
        c.kind.as_str(),
        crate::cmd::sync::status_text(&c.status),
        c.started_at
    )
}

/// When the agent runs its next cycle: only while `exo-writeback run` runs and the job is
/// neither paused nor held; at the quarantine's next retry when that is later.
fn next_run(
    runner: Option<&Runner>,
    pause: Option<&Pause>,
    state: &JobState,
    last: Option<&CycleRecord>,
    interval: jiff::SignedDuration,
) -> Option<Timestamp> {
    let runner = runner.filter(|r| r.command.ends_with(" run"))?;
    if pause.is_some() || matches!(state, JobState::ThresholdExceeded { .. }) {
        return None;
    }
    let after = last
        .and_then(|c| c.finished_at)
        .unwrap_or(runner.since)
        .checked_add(interval)
        .ok()?;
    Some(match state {
        JobState::Quarantine { next_retry, .. } => after.max(*next_retry),
        _ => after,
    })
}

fn pin_json(p: &Pin) -> Value {
    json!({
        "dn": p.dn,
        "object_guid": p.object_guid.to_string(),
        "mailbox": p.primary_smtp_address,
        "attribute": p.attribute,
        "origin": p.origin.as_str(),
        "cycle": p.cycle.0,
        "at": p.at.to_string(),
        "by": p.by,
        "note": p.note,
    })
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = compose::load_config(&args.config.config)?;
    let shared = State::open(&config, "exo-writeback status")?;
    let cluster = shared.cluster()?;
    let store = shared.store()?;
    let state = store.job_state()?;
    let pause = store.pause()?;
    let runner = cycle_runner(&config.sync.state_dir)?;
    let last = store.last_cycle_of(&SCHEDULED, false)?;
    let last_success = store.last_cycle_of(&SCHEDULED, true)?;
    let last_command = store.last_cycle_of(&BY_HAND, false)?;
    let watermark = store.watermark()?;
    let escrow = store.escrow_count()?;
    let pending = store.pending_staged_cycles()?;
    let pins = store.pin_count()?;
    let pin_list = store.pins(PINS_SHOWN)?;
    let plan = config.writeback_plan()?;
    let drift_modes = plan.drift.describe();
    let extra_targets = plan.extra_targets;
    let cycles = store.recent_cycles(20)?;
    let dcs = dc_status::read(&config.sync.state_dir);
    let agent = runner.as_ref().map(|r| r.as_ref());
    let next = next_run(
        agent.flatten(),
        pause.as_ref(),
        &state,
        last.as_ref(),
        config.sync.interval,
    );
    let job_state = if pause.is_some() {
        "Paused"
    } else {
        state.name()
    };
    // Security events (SpoofedMatchKey) of the recent cycles, and the latest cycle with one.
    let security_count: u64 = cycles.iter().map(|c| c.counts.security_events).sum();
    let security_latest = cycles
        .iter()
        .find(|c| c.counts.security_events > 0)
        .map(|c| c.id);
    // On-premises edits of written attributes (drift) in the recent cycles.
    let drift_found: u64 = cycles.iter().map(|c| c.counts.drift_detected).sum();
    let drift_corrected: u64 = cycles.iter().map(|c| c.counts.drift_corrected).sum();
    let drift_latest = cycles
        .iter()
        .find(|c| c.counts.drift_detected > 0)
        .map(|c| c.id);
    if args.json {
        let v = json!({
            "job_state": job_state,
            "state_under_pause": pause.as_ref().map(|_| state.name()),
            "paused": pause.as_ref().map(|p| json!({
                "by": p.by,
                "since": p.since.to_string(),
                "reason": p.reason,
            })),
            "held_cycle": match &state { JobState::ThresholdExceeded { cycle } => Some(cycle.0), _ => None },
            "quarantine": match &state {
                JobState::Quarantine { reason, since, next_retry } => Some(json!({
                    "reason": reason,
                    "since": since.to_string(),
                    "next_retry": next_retry.to_string(),
                })),
                _ => None,
            },
            "agent": agent.map(|r| match r {
                Some(r) => json!({
                    "command": r.command,
                    "pid": r.pid,
                    "since": r.since.to_string(),
                }),
                None => json!({}),
            }),
            "last_cycle": last.as_ref().map(cycle_json),
            "last_success": last_success.as_ref().map(cycle_json),
            "last_command": last_command.as_ref().map(cycle_json),
            "watermark": watermark.as_ref().map(|w| w.changed_since.to_string()),
            "escrow": escrow,
            "pending_approval": pending.iter().map(|c| c.0).collect::<Vec<_>>(),
            "pins": {
                "attributes": pins.attributes,
                "objects": pins.objects,
                "first": pin_list.iter().map(pin_json).collect::<Vec<_>>(),
            },
            "next_run": next.map(|t| t.to_string()),
            "extra_targets": extra_targets,
            "directory": dcs,
            "cluster": cluster,
            "security_events": {
                "count": security_count,
                "cycles": cycles.len(),
                "latest_cycle": security_latest.map(|c| c.0),
                "code": "SpoofedMatchKey",
            },
            "drift": {
                "detected": drift_found,
                "corrected": drift_corrected,
                "cycles": cycles.len(),
                "latest_cycle": drift_latest.map(|c| c.0),
                "modes": drift_modes,
            },
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let state_text = match &state {
        JobState::ThresholdExceeded { cycle } => format!(
            "ThresholdExceeded (cycle {cycle}: `exo-writeback approve {cycle}` or `exo-writeback reject {cycle}`)"
        ),
        JobState::Quarantine {
            reason, next_retry, ..
        } => format!(
            "Quarantine: {reason} (next retry at {next_retry}; `exo-writeback restart --scope quarantine` retries now)"
        ),
        s => s.name().to_string(),
    };
    match &pause {
        Some(p) => {
            outln!(
                "job state:  Paused by {} since {}{} — `exo-writeback resume` resumes ({state_text} underneath)",
                p.by,
                p.since,
                p.reason
                    .as_deref()
                    .map(|r| format!(" (\"{r}\")"))
                    .unwrap_or_default()
            );
        }
        None => outln!("job state:  {state_text}"),
    }
    if let Some(cluster) = &cluster {
        for line in crate::cmd::cluster::lines(cluster, &shared.location()) {
            outln!("{line}");
        }
    }
    match &agent {
        Some(Some(r)) => outln!(
            "agent:      running (pid {}, `{}` since {})",
            r.pid,
            r.command,
            r.since
        ),
        Some(None) => outln!("agent:      running (a cycle runner holds the cycle lock)"),
        None => outln!("agent:      not running (`exo-writeback run` starts it)"),
    }
    match &last {
        Some(c) => {
            outln!("last cycle: {}", cycle_line(c));
            outln!(
                "            {}",
                crate::cmd::sync::counts_text(&c.counts, &Default::default())
                    + &match c.counts.security_events {
                        0 => String::new(),
                        k => format!(", security events {k}"),
                    }
            );
        }
        None => outln!("last cycle: none"),
    }
    match (&last_success, &last) {
        (Some(s), Some(l)) if s.id == l.id => {}
        (Some(s), _) => outln!(
            "last success: {} ({}) finished {}",
            s.id,
            s.kind.as_str(),
            s.finished_at.map(|t| t.to_string()).unwrap_or_default()
        ),
        (None, Some(_)) => outln!("last success: none"),
        (None, None) => {}
    }
    if let Some(c) = &last_command {
        outln!("by hand:    {}", cycle_line(c));
    }
    outln!(
        "watermark:  {}",
        watermark
            .map(|w| w.changed_since.to_string())
            .unwrap_or_else(|| "none (the next cycle is initial)".into())
    );
    outln!("escrow:     {escrow} object(s) waiting for retry");
    if pins.attributes == 0 {
        outln!("pins:       none");
    } else {
        outln!(
            "pins:       {} left as they are until their Exchange Online value changes (`exo-writeback unpin --object <identity>` or `--all` releases them)",
            describe_pins(pins)
        );
        for p in &pin_list {
            outln!("            {}: {}", p.dn, p.describe());
        }
        if pins.attributes > pin_list.len() as u64 {
            outln!(
                "            … and {} more",
                pins.attributes - pin_list.len() as u64
            );
        }
    }
    let next_text = match (next, &agent, &pause, &state) {
        (Some(t), _, _, _) => t.to_string(),
        (None, _, Some(_), _) => "none while the job is paused".into(),
        (None, _, None, JobState::ThresholdExceeded { cycle }) => {
            format!("none until `exo-writeback approve {cycle}` or `reject {cycle}`")
        }
        (None, Some(_), None, _) => "when the running `exo-writeback sync` is done".into(),
        (None, None, None, _) => "none: no agent is running (`exo-writeback run`)".into(),
    };
    if let Some(latest) = security_latest {
        outln!(
            "security:   {security_count} security event(s) (SpoofedMatchKey: a user-writable match \
             key pointing at another mailbox's object) in the last {} cycles, latest in cycle \
             {latest}: `exo-writeback logs --cycle {} --status warning`",
            cycles.len(),
            latest.0
        );
    }
    if let Some(latest) = drift_latest {
        outln!(
            "drift:      {drift_found} object(s) edited on-premises over written attributes in the \
             last {} cycles, {drift_corrected} corrected ({}), latest in cycle {latest}: \
             `exo-writeback logs --cycle {} --status warning`",
            cycles.len(),
            drift_modes,
            latest.0
        );
    }
    outln!("next run:   {next_text}");
    if let Some(dcs) = &dcs {
        for dc in dcs.domains.iter().chain(dcs.global_catalog.as_ref()) {
            outln!("DC in use:  {dc} (as of {})", dcs.updated_at);
        }
        if let Some(f) = &dcs.last_failover {
            outln!("failover:   {f}");
        }
    }
    if let Some(line) = crate::cmd::check::extra_targets_line(&extra_targets) {
        outln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
