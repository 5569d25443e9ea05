//! Where the time of a `dc` step goes: the CPU seconds of the DC's processes while it runs,
//! and the phases of an agent's cycle read back from its state database.

use std::path::Path;

use exo_writeback_core::provisioning::{CycleId, CycleKind};
use exo_writeback_store_sqlite::LogQuery;
use exo_writeback_store_sqlite::SqliteStore;
use exo_writeback_store_sqlite::prelude::*;
use jiff::Timestamp;
use serde_json::{Value, json};

/// CPU seconds (user + system, with reaped children) used so far by each process of a process
/// group, by pid (a lab DC's samba processes share its root's group); empty when /proc cannot
/// be read.
fn group_cpu_by_process(pgid: u32) -> Vec<(u32, f64)> {
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in procs.filter_map(Result::ok) {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The fields after the command (which may hold spaces) start at state (field 3).
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // state ppid pgrp …: pgrp is field 5, utime..cstime fields 14..17.
        if f.get(2).and_then(|g| g.parse::<u32>().ok()) != Some(pgid) || f.len() < 15 {
            continue;
        }
        let ticks = f[11..15]
            .iter()
            .filter_map(|v| v.parse::<u64>().ok())
            .sum::<u64>();
        out.push((pid, ticks as f64 / tick));
    }
    out
}

/// The DC's CPU seconds over a step: call `start` before it and `secs` after.
pub struct DcCpu {
    pgid: u32,
    at_start: Vec<(u32, f64)>,
}

impl DcCpu {
    pub fn start(pgid: u32) -> DcCpu {
        DcCpu {
            pgid,
            at_start: group_cpu_by_process(pgid),
        }
    }

    /// Every process of the DC together.
    pub fn secs(&self) -> f64 {
        self.by_process().iter().sum()
    }

    /// The busiest process of the DC: a DC serves one LDAP connection in one process, so a
    /// step over one connection cannot take less wall time than this.
    pub fn busiest_secs(&self) -> f64 {
        self.by_process().into_iter().fold(0.0, f64::max)
    }

    fn by_process(&self) -> Vec<f64> {
        group_cpu_by_process(self.pgid)
            .into_iter()
            .map(|(pid, now)| {
                let before = self
                    .at_start
                    .iter()
                    .find(|(p, _)| *p == pid)
                    .map_or(0.0, |(_, s)| *s);
                now - before
            })
            .collect()
    }
}

/// The phases of one cycle, from its log entries (each object's start time and duration):
/// start-up (the process's or the cycle's start → the first object's start: bind, token,
/// schema, the scans, the first page), the read phase (first → last object's start: every
/// object read, matched, planned, guarded), the write phase (→ the last object's end: modifies
/// and outcomes) and the rest (→ process exit: watermark, cycle end).
pub fn cycle_phases(
    state_dir: &Path,
    cycle: i64,
    process_start: Timestamp,
    process_end: Timestamp,
) -> anyhow::Result<Value> {
    let store = SqliteStore::open_in(state_dir)?;
    let entries = store.query_logs(&LogQuery {
        cycle: Some(CycleId(cycle)),
        limit: usize::MAX,
        ..LogQuery::default()
    })?;
    let Some(first) = entries.iter().map(|e| e.time).min() else {
        return Ok(json!({"entries": 0}));
    };
    let last_start = entries.iter().map(|e| e.time).max().unwrap_or(first);
    let last_end = entries
        .iter()
        .map(|e| e.time + e.duration)
        .max()
        .unwrap_or(last_start)
        .max(last_start);
    let secs = |a: Timestamp, b: Timestamp| b.duration_since(a).as_secs_f64();
    Ok(json!({
        "entries": entries.len(),
        "startup_secs": secs(process_start, first),
        "read_secs": secs(first, last_start),
        "write_secs": secs(last_start, last_end),
        "end_secs": secs(last_end, process_end),
    }))
}

/// The delta cycles `run` ran while the load generator changed mailboxes: how long each took
/// (from the store's cycle records) and how many objects it wrote.
pub fn run_cycles(state_dir: &Path, since: Timestamp) -> anyhow::Result<Value> {
    let store = SqliteStore::open_in(state_dir)?;
    let mut cycles: Vec<_> = store
        .recent_cycles(10_000)?
        .into_iter()
        .filter(|c| c.kind == CycleKind::Delta && c.started_at >= since)
        .collect();
    cycles.sort_by_key(|c| c.started_at);
    let mut secs = Vec::new();
    let mut written = Vec::new();
    let mut gaps = Vec::new();
    let mut slowest: Option<(f64, i64, u64)> = None;
    for (i, c) in cycles.iter().enumerate() {
        let Some(end) = c.finished_at else { continue };
        let s = end.duration_since(c.started_at).as_secs_f64();
        secs.push(s);
        written.push(c.counts.written);
        if slowest.is_none_or(|(t, _, _)| s > t) {
            slowest = Some((s, c.id.0, c.counts.written));
        }
        if let Some(prev) = i.checked_sub(1).map(|p| &cycles[p]) {
            gaps.push(c.started_at.duration_since(prev.started_at).as_secs_f64());
        }
    }
    let slowest_phases = match slowest {
        Some((_, id, _)) => cycles
            .iter()
            .find(|c| c.id.0 == id)
            .and_then(|c| Some((c.started_at, c.finished_at?)))
            .map(|(a, b)| cycle_phases(state_dir, id, a, b))
            .transpose()?,
        None => None,
    };
    let mut sorted = secs.clone();
    sorted.sort_by(f64::total_cmp);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    Ok(json!({
        "cycles": secs.len(),
        "secs_p50": crate::util::percentile(&sorted, 50.0),
        "secs_max": sorted.last(),
        "written_mean": written.iter().sum::<u64>() as f64 / written.len().max(1) as f64,
        "start_to_start_mean_secs": mean(&gaps),
        "slowest": slowest.map(|(s, id, w)| json!({"secs": s, "cycle": id, "written": w, "phases": slowest_phases})),
    }))
}
