//! `scale`'s figures against issue 15's targets, and its rounds (`--rounds`): the sizes run
//! again in turn, and the round of median wall ratio reported.

use serde_json::{Value, json};

use crate::memdir::Modifies;

/// One of a size's cycle I/O counters per object, in KB.
pub(super) fn per_object_kb(row: &Value, counter: &str) -> f64 {
    let bytes = row["cycle_io"][counter].as_f64().unwrap_or(f64::NAN);
    bytes / 1000.0 / row["size"].as_f64().unwrap_or(f64::NAN)
}

/// Issue 15's targets of this benchmark.
const TARGET_COST_RATIO: f64 = 1.1;
const TARGET_WRITTEN_KB: f64 = 8.0;
const TARGET_AGENT_MIB: f64 = 512.0;

/// The ratios against issue 15's targets, one line each: per-object cost of the largest size
/// against the smallest (wall and CPU), state DB bytes written per object and the agent's
/// memory at each size.
pub(super) fn against_targets(rows: &[Value], modifies: Modifies) -> Vec<String> {
    let f = |r: &Value, k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    let mut lines = Vec::new();
    if let (Some(small), Some(large)) = (rows.first(), rows.last())
        && rows.len() > 1
    {
        lines.push(format!(
            "per-object cost at {} / at {}: wall {:.2}×, CPU {:.2}× (target ≤ {TARGET_COST_RATIO}×)",
            large["size"],
            small["size"],
            f(large, "us_per_object") / f(small, "us_per_object"),
            f(large, "cpu_us_per_object") / f(small, "cpu_us_per_object"),
        ));
        lines.push(format!(
            "  of which the agent's (the process's CPU less the in-memory directory's, which a \
             DC spends in its own process): {:.1} / {:.1} µs per object = {:.2}×; the \
             directory's: {:.1} / {:.1} µs per object",
            f(large, "agent_cpu_us_per_object"),
            f(small, "agent_cpu_us_per_object"),
            f(large, "agent_cpu_us_per_object") / f(small, "agent_cpu_us_per_object"),
            f(large, "directory_cpu_secs") * 1e6 / f(large, "imported"),
            f(small, "directory_cpu_secs") * 1e6 / f(small, "imported"),
        ));
        for phase in ["read_phase", "write_phase"] {
            let g = |r: &Value, k: &str| r[phase][k].as_f64().unwrap_or(f64::NAN);
            lines.push(format!(
                "  {phase}: agent CPU {:.1} / {:.1} µs per object = {:.2}× (directory {:.1} / \
                 {:.1})",
                g(large, "agent_cpu_us_per_object"),
                g(small, "agent_cpu_us_per_object"),
                g(large, "agent_cpu_us_per_object") / g(small, "agent_cpu_us_per_object"),
                g(large, "directory_cpu_us_per_object"),
                g(small, "directory_cpu_us_per_object"),
            ));
        }
    }
    for r in rows {
        let kb = per_object_kb(r, "write_bytes");
        let stored = f(r, "state_db_bytes") / 1000.0 / f(r, "size");
        lines.push(format!(
            "state DB written at {}: {kb:.1} KB per object = {:.2} of the {TARGET_WRITTEN_KB} KB \
             target (the database holds {stored:.1} KB per object)",
            r["size"],
            kb / TARGET_WRITTEN_KB,
        ));
    }
    for r in rows {
        let mib = f(r, "agent_peak_kib") / 1024.0;
        let line = match modifies {
            Modifies::Count => format!(
                "agent memory at {} (peak RSS above the directory built before the cycle): \
                 {mib:.0} MiB = {:.2} of the {TARGET_AGENT_MIB} MiB target",
                r["size"],
                mib / TARGET_AGENT_MIB,
            ),
            Modifies::Apply => format!(
                "peak RSS above the directory built before the cycle at {}: {mib:.0} MiB — \
                 includes the directory's growth by the applied modifies (not the agent's \
                 memory: run with --modifies count)",
                r["size"],
            ),
        };
        lines.push(line);
    }
    lines
}

/// The largest size's per-object cost against the smallest's in one round: wall, CPU, and
/// the agent's CPU (less the in-memory directory's).
fn ratios(round: &[Value]) -> (f64, f64, f64) {
    let f = |r: &Value, k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    match (round.first(), round.last()) {
        (Some(small), Some(large)) if round.len() > 1 => {
            let r = |k: &str| f(large, k) / f(small, k);
            (
                r("us_per_object"),
                r("cpu_us_per_object"),
                r("agent_cpu_us_per_object"),
            )
        }
        _ => (f64::NAN, f64::NAN, f64::NAN),
    }
}

/// The round whose wall ratio is the median (the lower middle for an even count).
pub(super) fn median(rounds: &[Vec<Value>]) -> usize {
    let walls: Vec<f64> = rounds.iter().map(|r| ratios(r).0).collect();
    crate::util::median_index(&walls)
}

/// One line per round: its ratios and each size's cost per object.
pub(super) fn round_line(i: usize, round: &[Value]) -> String {
    let (wall, cpu, agent) = ratios(round);
    let sizes: Vec<String> = round
        .iter()
        .map(|r| {
            format!(
                "{} {:.1} µs ({:.1} CPU)",
                r["size"],
                r["us_per_object"].as_f64().unwrap_or(f64::NAN),
                r["cpu_us_per_object"].as_f64().unwrap_or(f64::NAN)
            )
        })
        .collect();
    format!(
        "round {}: wall {wall:.2}×, CPU {cpu:.2}×, agent CPU {agent:.2}× ({})",
        i + 1,
        sizes.join(", ")
    )
}

/// The `rounds` object of the results: each round's ratios and sizes' costs, the range, and
/// which round the rest of the results are of.
pub(super) fn rounds_json(rounds: &[Vec<Value>], reported: usize) -> Value {
    let each: Vec<Value> = rounds
        .iter()
        .map(|round| {
            let (wall, cpu, agent) = ratios(round);
            let sizes: Vec<Value> = round
                .iter()
                .map(|r| {
                    json!({"size": r["size"], "us_per_object": r["us_per_object"],
                           "cpu_us_per_object": r["cpu_us_per_object"],
                           "agent_cpu_us_per_object": r["agent_cpu_us_per_object"],
                           "loadavg_before_cycle": r["loadavg_before_cycle"]})
                })
                .collect();
            json!({"wall_ratio": wall, "cpu_ratio": cpu, "agent_cpu_ratio": agent, "sizes": sizes})
        })
        .collect();
    let walls: Vec<f64> = rounds.iter().map(|r| ratios(r).0).collect();
    json!({
        "method": "the sizes run again in turn; the round of median wall ratio is the one reported",
        "reported": reported + 1,
        "wall_ratio_min": walls.iter().copied().fold(f64::INFINITY, f64::min),
        "wall_ratio_max": walls.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        "each": each,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(small: f64, large: f64) -> Vec<Value> {
        [(100, small), (1000, large)]
            .iter()
            .map(|&(size, us)| {
                json!({"size": size, "us_per_object": us, "cpu_us_per_object": us / 2.0,
                       "agent_cpu_us_per_object": us / 4.0})
            })
            .collect()
    }

    #[test]
    fn the_round_of_median_wall_ratio_is_reported() {
        let rounds = vec![
            round(100.0, 130.0),
            round(100.0, 105.0),
            round(100.0, 112.0),
        ];
        assert_eq!(median(&rounds), 2);
        assert_eq!(median(&rounds[..2]), 1, "the lower middle of an even count");
        let v = rounds_json(&rounds, 2);
        assert_eq!(v["reported"], 3);
        assert!((v["wall_ratio_min"].as_f64().unwrap() - 1.05).abs() < 1e-9);
        assert!((v["wall_ratio_max"].as_f64().unwrap() - 1.30).abs() < 1e-9);
        assert_eq!(
            round_line(0, &rounds[0]),
            "round 1: wall 1.30×, CPU 1.30×, agent CPU 1.30× (100 100.0 µs (50.0 CPU), 1000 130.0 µs (65.0 CPU))"
        );
    }
}
