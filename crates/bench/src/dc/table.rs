//! The `dc` benchmark's printed table, read from its result (the JSON it writes), so that what
//! it prints is what it saved.

use serde_json::Value;

/// The rows of the table, in print order.
pub fn rows(r: &Value) -> Vec<Vec<String>> {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let (raw, engine) = (&r["raw"], &r["engine_initial"]);
    let (nochange, delta) = (&r["delta_no_change"], &r["delta_1pct"]);
    let (prop, full) = (&r["propagation"], &r["full_no_change"]);
    let mut rows = vec![
        vec!["mailboxes".into(), r["mailboxes"].to_string()],
        vec![
            "raw DC limit (1 connection, best of)".into(),
            format!(
                "{:.0} objects/s ({} in {:.2} s)",
                f(&raw["objects_per_sec"]),
                raw["objects"],
                f(&raw["secs"])
            ),
        ],
        vec![
            "  raw, one at a time".into(),
            format!(
                "{:.0} objects/s ({:.2} s)",
                f(&raw["sequential"]["objects_per_sec"]),
                f(&raw["sequential"]["secs"])
            ),
        ],
        vec![
            format!("  raw, {} in flight", raw["pipelined"]["in_flight"]),
            format!(
                "{:.0} objects/s ({:.2} s)",
                f(&raw["pipelined"]["objects_per_sec"]),
                f(&raw["pipelined"]["secs"])
            ),
        ],
        vec![
            "engine initial cycle".into(),
            format!(
                "{:.0} objects/s ({} written in {:.2} s)",
                f(&engine["objects_per_sec"]),
                engine["objects"],
                f(&engine["secs"])
            ),
        ],
        vec![
            "engine / raw".into(),
            format!("{:.2}", f(&r["ratio_engine_to_raw"])),
        ],
    ];
    // After "engine / raw": where the initial cycle's time and CPU went.
    rows.extend(phase_rows(
        &r["engine_initial_phases"],
        &r["cpu"],
        f(&r["ceiling_read_then_write"]["ratio"]),
    ));
    rows.extend([
        vec![
            "delta, no change".into(),
            format!(
                "{:.3} s ({:.2} % of initial)",
                f(&nochange["secs"]),
                100.0 * f(&nochange["fraction_of_initial"])
            ),
        ],
        vec![
            "delta, 1 % changed".into(),
            format!(
                "{:.3} s for {} ({:.2} ms/change)",
                f(&delta["secs"]),
                delta["changed"],
                f(&delta["ms_per_change"])
            ),
        ],
        vec![
            format!(
                "propagation ({}/s, interval {} s)",
                f(&prop["rate_per_sec"]),
                prop["interval_secs"]
            ),
            format!(
                "p50 {:.2} s  p95 {:.2} s  p99 {:.2} s  ({} measured, {} missing)",
                f(&prop["p50_secs"]),
                f(&prop["p95_secs"]),
                f(&prop["p99_secs"]),
                prop["measured"],
                prop["missing"]
            ),
        ],
        vec![
            "  run's delta cycles".into(),
            run_cycles_text(&prop["run_cycles"]),
        ],
        vec![
            "full reconcile, nothing to change".into(),
            format!(
                "{:.2} s = {:.2} x a raw paged read ({} objects, {:.2} s)",
                f(&full["secs"]),
                f(&full["ratio_to_raw_read"]),
                full["raw_paged_read"]["objects"],
                f(&full["raw_paged_read"]["secs"])
            ),
        ],
        vec![
            "  DC CPU: all / busiest process".into(),
            format!(
                "{:.2} / {:.2} s (the raw read: {:.2} s)",
                f(&full["dc_cpu_secs"]),
                f(&full["dc_busiest_process_cpu_secs"]),
                f(&r["cpu"]["dc_raw_paged_read_secs"])
            ),
        ],
    ]);
    // Runs before the pairs were measured have no such row.
    if let Some(pairs) = pairs_text(&full["pairs"]) {
        let at = rows
            .iter()
            .position(|r| r[0] == "full reconcile, nothing to change")
            .map_or(rows.len(), |i| i + 1);
        rows.insert(at, vec!["  the pair of median ratio, of".into(), pairs]);
    }
    // Runs before the agent's CPU was saved have no such row.
    if let Some(agent) = full["agent_cpu_secs"].as_f64() {
        rows.push(vec![
            "  agent CPU".into(),
            format!("{agent:.2} s (user + system, the whole process)"),
        ]);
    }
    rows.extend([vec![
        "agent peak RSS".into(),
        format!("{:.1} MiB", f(&r["agent_peak_rss_mib"])),
    ]]);
    rows
}

/// Each pair's ratio, in the order measured (results saved before the pairs: none).
fn pairs_text(pairs: &Value) -> Option<String> {
    let pairs = pairs.as_array().filter(|p| !p.is_empty())?;
    Some(
        pairs
            .iter()
            .map(|p| {
                let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
                format!(
                    "{:.2}x ({:.2} / {:.2} s)",
                    f(&p["ratio_to_raw_read"]),
                    f(&p["secs"]),
                    f(&p["raw_read_secs"])
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// The table rows of the initial cycle's phases, CPU per object and the read-then-write
/// ceiling.
fn phase_rows(phases: &Value, cpu: &Value, ceiling: f64) -> Vec<Vec<String>> {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let ms = &cpu["ms_per_object"];
    vec![
        vec![
            "  engine phases: start-up / read / write / end".into(),
            format!(
                "{:.2} / {:.2} / {:.2} / {:.2} s",
                f(&phases["startup_secs"]),
                f(&phases["read_secs"]),
                f(&phases["write_secs"]),
                f(&phases["end_secs"])
            ),
        ],
        vec![
            "  CPU per object: agent / its DC".into(),
            format!(
                "{:.3} / {:.3} ms (DC in the raw replays: {:.3} one at a time, {:.3} in flight)",
                f(&ms["agent_initial"]),
                f(&ms["dc_initial"]),
                f(&ms["dc_raw_sequential"]),
                f(&ms["dc_raw_pipelined"])
            ),
        ],
        vec![
            "  ceiling: raw / (raw paged read + raw)".into(),
            format!(
                "{ceiling:.2} ({:.2} s read, DC CPU {:.2} s)",
                f(&cpu["raw_paged_read_secs"]),
                f(&cpu["dc_raw_paged_read_secs"])
            ),
        ],
    ]
}

/// The text of the `run` cycles' row.
fn run_cycles_text(c: &Value) -> String {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    format!(
        "{} cycles, p50 {:.2} s, max {:.2} s, start to start {:.2} s, {:.0} written each",
        c["cycles"],
        f(&c["secs_p50"]),
        f(&c["secs_max"]),
        f(&c["start_to_start_mean_secs"]),
        f(&c["written_mean"])
    )
}

#[cfg(test)]
mod tests {
    /// The printed row after the one that starts with `prefix`.
    fn row_after(result: &serde_json::Value, prefix: &str) -> String {
        let rows: Vec<String> = super::rows(result).iter().map(|r| r.join(" | ")).collect();
        let at = rows
            .iter()
            .position(|r| r.starts_with(prefix))
            .unwrap_or_else(|| panic!("no row {prefix:?}"));
        rows[at + 1].clone()
    }

    /// A result file the bench wrote (the 22:39 UTC run of 2026-12-03).
    fn saved() -> serde_json::Value {
        serde_json::from_str(include_str!(
            "../../../../bench-results/dc-10000-session5-20261203.json"
        ))
        .expect("result JSON")
    }

    /// The table read back from a result file the bench wrote (the 22:39 UTC run of
    /// 2026-12-03) gives the rows that run printed when the table was built from its own
    /// variables.
    #[test]
    fn the_table_of_a_saved_result_is_what_its_run_printed() {
        let result = saved();
        let printed = [
            "mailboxes | 10000",
            "raw DC limit (1 connection, best of) | 1333 objects/s (10000 in 7.50 s)",
            "  raw, one at a time | 1155 objects/s (8.66 s)",
            "  raw, 16 in flight | 1333 objects/s (7.50 s)",
            "engine initial cycle | 848 objects/s (10000 written in 11.79 s)",
            "engine / raw | 0.64",
            "  engine phases: start-up / read / write / end | 1.92 / 2.20 / 7.48 / 0.19 s",
            "  CPU per object: agent / its DC | 0.391 / 1.057 ms (DC in the raw replays: 0.788 one at a time, 0.750 in flight)",
            "  ceiling: raw / (raw paged read + raw) | 0.85 (1.37 s read, DC CPU 1.28 s)",
            "delta, no change | 0.296 s (2.51 % of initial)",
            "delta, 1 % changed | 0.744 s for 100 (7.44 ms/change)",
            "propagation (5/s, interval 5 s) | p50 2.98 s  p95 5.19 s  p99 5.39 s  (150 measured, 0 missing)",
            "  run's delta cycles | 8 cycles, p50 0.24 s, max 0.28 s, start to start 5.00 s, 19 written each",
            "full reconcile, nothing to change | 2.65 s = 1.93 x a raw paged read (10205 objects, 1.37 s)",
            "  DC CPU: all / busiest process | 1.69 / 1.30 s (the raw read: 1.28 s)",
            "agent peak RSS | 110.8 MiB",
        ];
        let rows: Vec<String> = super::rows(&result).iter().map(|r| r.join(" | ")).collect();
        assert_eq!(rows, printed);
    }

    /// A result with the full reconcile's pairs prints each pair's ratio under the median's.
    #[test]
    fn the_full_reconciles_pairs_are_printed_under_the_median() {
        let mut result = saved();
        result["full_no_change"]["pairs"] = serde_json::json!([
            {"ratio_to_raw_read": 1.5, "secs": 2.1, "raw_read_secs": 1.4},
            {"ratio_to_raw_read": 1.25, "secs": 2.0, "raw_read_secs": 1.6},
        ]);
        assert_eq!(
            row_after(&result, "full reconcile, nothing to change |"),
            "  the pair of median ratio, of | 1.50x (2.10 / 1.40 s), 1.25x (2.00 / 1.60 s)"
        );
    }

    /// A result that saved the full reconcile's agent CPU prints it after the DC's.
    #[test]
    fn the_full_reconciles_agent_cpu_is_printed_when_saved() {
        let mut result = saved();
        result["full_no_change"]["agent_cpu_secs"] = serde_json::json!(1.234);
        assert_eq!(
            row_after(&result, "  DC CPU: all / busiest process"),
            "  agent CPU | 1.23 s (user + system, the whole process)"
        );
    }
}
