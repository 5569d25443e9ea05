//! The full reconcile with nothing to change against a raw paged read of the attributes it
//! reads, measured as adjacent pairs on the same DC (`--pairs`, [`PAIRS`] by default), and the
//! pair of median ratio reported.
//!
//! One pair alone says little on a 2-core machine where the DC, the agent and the Exchange
//! Online emulator share the cores: the same code and template gave ratios from 1.25× to 1.89×
//! (the raw read alone 1.27–1.82 s, the DC's CPU for the same read 1.22–1.76 s). Each pair is
//! a full reconcile and, right after it, the raw read, so that both halves of a ratio see the
//! machine in the same state; the nothing-to-change reconcile leaves the DC as it found it, so
//! the pairs are repeats of one measurement.

use serde_json::{Value, json};

use crate::util::Finished;

/// Pairs measured unless `--pairs` says otherwise (odd: the median is one of them). Five: on
/// this 2-core machine the ratio of one pair ranged 1.29–1.83× for one binary, and three
/// pairs gave medians 1.42–1.72× (docs/performance-history.md).
pub const PAIRS: u64 = 5;

/// One pair: the agent's full reconcile and the raw read after it.
pub struct Pair {
    pub full: Finished,
    /// The agent's JSON report.
    pub report: String,
    /// The DC's CPU during the reconcile: all processes, the busiest.
    pub dc_cpu: (f64, f64),
    pub raw_objects: u64,
    pub raw_secs: f64,
    /// The DC's CPU during the raw read (all processes).
    pub raw_dc_cpu: f64,
}

impl Pair {
    pub fn ratio(&self) -> f64 {
        self.full.elapsed.as_secs_f64() / self.raw_secs
    }
}

/// The pair whose ratio is the median (the lower middle for an even count).
pub fn median(pairs: &[Pair]) -> &Pair {
    let ratios: Vec<f64> = pairs.iter().map(Pair::ratio).collect();
    &pairs[crate::util::median_index(&ratios)]
}

/// The `full_no_change` object of the results: the median pair's figures (as one pair was
/// reported before), every pair, and the ratios' range.
pub fn json(pairs: &[Pair], read_attrs: &[String], counts: Value) -> Value {
    let m = median(pairs);
    let ratios: Vec<f64> = pairs.iter().map(Pair::ratio).collect();
    let runs: Vec<Value> = pairs
        .iter()
        .map(|p| {
            json!({"secs": p.full.elapsed.as_secs_f64(), "raw_read_secs": p.raw_secs, "ratio_to_raw_read": p.ratio(),
                   "agent_cpu_secs": p.full.cpu_secs, "dc_cpu_secs": p.dc_cpu.0, "dc_busiest_process_cpu_secs": p.dc_cpu.1,
                   "raw_read_dc_cpu_secs": p.raw_dc_cpu, "max_rss_kib": p.full.max_rss_kib})
        })
        .collect();
    json!({
        "secs": m.full.elapsed.as_secs_f64(), "counts": counts, "max_rss_kib": m.full.max_rss_kib,
        "agent_cpu_secs": m.full.cpu_secs,
        "dc_cpu_secs": m.dc_cpu.0, "dc_busiest_process_cpu_secs": m.dc_cpu.1,
        "raw_paged_read": {"objects": m.raw_objects, "secs": m.raw_secs, "dc_cpu_secs": m.raw_dc_cpu, "attributes": read_attrs},
        "ratio_to_raw_read": m.ratio(),
        "pairs": runs,
        "ratio_min": ratios.iter().copied().fold(f64::INFINITY, f64::min),
        "ratio_max": ratios.iter().copied().fold(0.0, f64::max),
        "method": format!("{} pairs, each the full reconcile then the raw read on the same DC; the pair of median ratio", pairs.len()),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn pair(full_secs: f64, raw_secs: f64) -> Pair {
        Pair {
            full: Finished {
                code: 0,
                elapsed: Duration::from_secs_f64(full_secs),
                max_rss_kib: 1,
                cpu_secs: 1.0,
                started_at: jiff::Timestamp::UNIX_EPOCH,
                ended_at: jiff::Timestamp::UNIX_EPOCH,
            },
            report: String::new(),
            dc_cpu: (1.0, 1.0),
            raw_objects: 10,
            raw_secs,
            raw_dc_cpu: 1.0,
        }
    }

    #[test]
    fn the_median_is_the_pair_of_middle_ratio_not_the_middle_of_each_half() {
        // Ratios 2.0, 1.2, 1.5: the median pair is the third, whose halves are neither the
        // median reconcile time (2.0) nor the median raw read (1.0).
        let pairs = [pair(2.0, 1.0), pair(3.0, 2.5), pair(1.5, 1.0)];
        let m = median(&pairs);
        assert_eq!(m.full.elapsed, Duration::from_secs_f64(1.5));
        let v = json(&pairs, &["mail".into()], Value::Null);
        assert_eq!(v["ratio_to_raw_read"], 1.5);
        assert_eq!(v["ratio_min"], 1.2);
        assert_eq!(v["ratio_max"], 2.0);
        assert_eq!(v["pairs"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn an_even_count_takes_the_lower_middle() {
        let pairs = [
            pair(4.0, 1.0),
            pair(1.0, 1.0),
            pair(2.0, 1.0),
            pair(3.0, 1.0),
        ];
        assert_eq!(median(&pairs).ratio(), 2.0);
    }
}
