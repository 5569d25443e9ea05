//! `scale`: the engine in-process against exo-sim (in its own process, seeded by its
//! generator, every mailbox cloud-managed and dir-synced) and an in-memory directory; one
//! fresh process per size so peak RSS is per size.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use exo_sim::{SeedSpec, SimConfig};
use exo_writeback_agent::exo::ExoSource;
use exo_writeback_core::settings::WritebackPlanSettings;
use exo_writeback_engine::{CycleMode, Engine, EngineOptions, Progress};
use exo_writeback_exo::{ExoClient, ExoConfig};
use exo_writeback_store_sqlite::SqliteStore;
use serde_json::{Value, json};

use crate::memdir::{Modifies, bench_directory, directory_of};
use crate::util;

mod targets;
use targets::{against_targets, per_object_kb};

const SECRET: &str = "bench-client-secret";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Mailbox counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100000,600000,1000000")]
    sizes: Vec<usize>,
    /// Directory for the JSON results and the chart.
    #[arg(long)]
    out: Option<PathBuf>,
    /// File name of the JSON results in `--out`.
    #[arg(long, default_value = "scale.json")]
    name: String,
    /// What the in-memory directory does with each modify: `count` (checked and counted, the
    /// directory stays as built, so the memory above it is the agent's) or `apply`.
    #[arg(long, value_enum, default_value = "count")]
    modifies: Modifies,
    /// Runs the sizes this many times, in turn, so that the machine's slower and faster
    /// stretches fall on every size: each round's ratios are printed, and the round of
    /// median wall ratio is the one reported (the same code gave 1.05–1.17× in single rounds).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
}

#[derive(clap::Args, Debug)]
pub struct OneArgs {
    #[arg(long)]
    size: usize,
    /// exo-sim's base URL.
    #[arg(long)]
    url: String,
    /// Where the engine's spill file goes. On tmpfs (the default, `/dev/shm` when present)
    /// its writes do not count in `write_bytes`, which then measures the state database
    /// (database file and write-ahead log) alone.
    #[arg(long)]
    spill_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "count")]
    modifies: Modifies,
    /// Keep the state database here (to inspect it) instead of a temporary directory.
    #[arg(long)]
    state_dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct SimArgs {
    #[arg(long)]
    size: usize,
    /// The base URL is written here once the emulator listens.
    #[arg(long)]
    url_file: PathBuf,
}

fn spec(size: usize) -> SeedSpec {
    SeedSpec {
        count: size,
        not_cloud_managed: 0.0,
        not_dir_synced: 0.0,
        ..SeedSpec::default()
    }
}

/// exo-sim seeded by its generator, until SIGTERM.
pub async fn run_sim(args: SimArgs) -> anyhow::Result<()> {
    let sim = exo_sim::spawn(SimConfig {
        client_secret: Some(SECRET.into()),
        page_size_max: 1000,
        seed: Some(spec(args.size)),
        // Long enough that one token lasts the whole cycle.
        token_lifetime_secs: 24 * 3600,
        ..SimConfig::default()
    })
    .await?;
    let tmp = args.url_file.with_extension("tmp");
    std::fs::write(&tmp, sim.base_url())?;
    std::fs::rename(&tmp, &args.url_file)?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    term.recv().await;
    sim.shutdown().await;
    Ok(())
}

/// One size, in this process: prints one JSON object.
pub async fn run_one(args: OneArgs) -> anyhow::Result<()> {
    let t = Instant::now();
    // Built on its own thread, so that its objects live in their own malloc arena (glibc
    // gives each new thread one): the directory stands for the DC, whose memory is not in
    // the agent's heap, and millions of its objects and of the build's freed temporaries in
    // the arena the cycle allocates from (this thread's) made every allocation of the agent
    // search longer free lists at 1M than at 100k.
    let size = args.size;
    let directory = std::thread::spawn(move || directory_of(exo_sim::seed::generate(&spec(size))))
        .join()
        .map_err(|_| anyhow::anyhow!("building the in-memory directory panicked"))?;
    let objects = directory.len();
    let build_secs = t.elapsed().as_secs_f64();
    let dir = tempfile::tempdir()?;
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, SECRET)?;
    let config: ExoConfig = toml::from_str(&format!(
        r#"tenant = "contoso.onmicrosoft.com"
client_id = "{client}"
client_secret_file = "{secret}"
login_base = "{url}"
api_base = "{url}"
allow_insecure_http = true
page_size = 1000
"#,
        client = SimConfig::default().client_id,
        secret = secret_file.display(),
        url = args.url,
    ))?;
    let client = ExoClient::from_config(&config)?;
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| dir.path().join("state"));
    let store = SqliteStore::open_in(&state_dir)?;
    let baseline_kib = util::proc_status_kib(None, "VmRSS").unwrap_or(0);
    let spill_dir = args.spill_dir.clone().or_else(|| {
        let shm = std::path::Path::new("/dev/shm");
        shm.is_dir().then(|| shm.to_path_buf())
    });
    let options = EngineOptions {
        spill_dir: spill_dir.clone(),
        ..EngineOptions::default()
    };
    let mut engine = Engine::new(
        ExoSource {
            client,
            safelist_hashes: false,
            recipient_kinds: Vec::new(),
        },
        bench_directory(directory, args.modifies),
        store,
        WritebackPlanSettings::default(),
        options,
    );
    // Phases: when the read phase ends (the first write) and the elapsed time, the process's
    // CPU time and the directory's at every 100,000 mailboxes read and objects written, to see
    // which part grows with size.
    let size = args.size as u64;
    let directory_cpu_ns = engine.directory.directory_cpu_ns.clone();
    let directory_cpu =
        move || directory_cpu_ns.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e9;
    let t = Instant::now();
    let marks: Arc<Mutex<Vec<Value>>> = Arc::default();
    {
        let marks = marks.clone();
        let directory_cpu = directory_cpu.clone();
        let last = (0u64, 0u64);
        let last = Mutex::new(last);
        engine.on_progress(move |p| {
            let at = t.elapsed().as_secs_f64();
            let mut last = last.lock().expect("lock");
            let mark = match p {
                // The last mark at the size is the listing's end (the read phase's).
                Progress::Imported(n) if n / 100_000 > last.0 / 100_000 || n >= size => {
                    last.0 = n;
                    json!({"read": n, "secs": at})
                }
                Progress::Writing { done, .. }
                    if done == 0 || done / 100_000 > last.1 / 100_000 =>
                {
                    last.1 = done.max(1);
                    json!({"written": done, "secs": at})
                }
                _ => return,
            };
            let mut mark = mark;
            mark["cpu"] = json!(util::own_cpu_secs());
            mark["directory_cpu"] = json!(directory_cpu());
            marks.lock().expect("lock").push(mark);
        });
    }
    let io_before = util::own_io()?;
    let directory_cpu_before = directory_cpu();
    let cpu_before = util::own_cpu_secs();
    let load_before = util::loadavg();
    let report = engine.run_cycle(CycleMode::Auto).await?;
    let secs = t.elapsed().as_secs_f64();
    let cpu_secs = util::own_cpu_secs() - cpu_before;
    // The in-memory directory stands for the DC, which serves the agent from its own process:
    // its CPU time is measured apart, and the agent's is the rest.
    let directory_cpu_secs = directory_cpu() - directory_cpu_before;
    let agent_cpu_secs = cpu_secs - directory_cpu_secs;
    let load_after = util::loadavg();
    // The cycle's I/O: the SQLite store (database and write-ahead log), and the spill file
    // unless it is on tmpfs.
    let io_after = util::own_io()?;
    let mut io = serde_json::Map::new();
    for (key, after) in io_after.as_object().into_iter().flatten() {
        let before = io_before[key.as_str()].as_u64().unwrap_or(0);
        io.insert(
            key.clone(),
            json!(after.as_u64().unwrap_or(0).saturating_sub(before)),
        );
    }
    let hwm_kib = util::proc_status_kib(None, "VmHWM").unwrap_or(0);
    let modifies = engine
        .directory
        .modifies
        .load(std::sync::atomic::Ordering::Relaxed);
    let store_bytes: u64 = std::fs::read_dir(&state_dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    let phases = std::mem::take(&mut *marks.lock().expect("lock"));
    let n = report.counts.imported;
    let (cpu_end, directory_end) = (
        cpu_before + cpu_secs,
        directory_cpu_before + directory_cpu_secs,
    );
    let out = json!({
        "size": args.size,
        "directory_objects": objects,
        "directory_build_secs": build_secs,
        "cycle_secs": secs,
        "imported": report.counts.imported,
        "written": report.counts.written,
        "unchanged": report.counts.unchanged,
        "skipped": report.counts.skipped,
        "failed": report.counts.failed,
        "modifies_received": modifies,
        "directory_modifies": args.modifies,
        "status": format!("{:?}", report.status),
        "objects_per_sec": report.counts.imported as f64 / secs,
        "us_per_object": secs * 1e6 / report.counts.imported.max(1) as f64,
        "cycle_cpu_secs": cpu_secs,
        "cpu_us_per_object": cpu_secs * 1e6 / report.counts.imported.max(1) as f64,
        "directory_cpu_secs": directory_cpu_secs,
        "agent_cpu_secs": agent_cpu_secs,
        "agent_cpu_us_per_object": agent_cpu_secs * 1e6 / report.counts.imported.max(1) as f64,
        "read_phase": phase_cpu(&phases, cpu_before, directory_cpu_before, true, n),
        "write_phase": phase_cpu(&phases, cpu_end, directory_end, false, n),
        "phases": phases,
        "rss_before_cycle_kib": baseline_kib,
        "peak_rss_kib": hwm_kib,
        "agent_peak_kib": hwm_kib.saturating_sub(baseline_kib),
        "state_db_bytes": store_bytes,
        "spill_dir": spill_dir.map(|d| d.display().to_string()),
        "cycle_io": io,
        "loadavg_before_cycle": load_before,
        "loadavg_after_cycle": load_after,
    });
    println!("{out}");
    Ok(())
}

/// The CPU per object of the read phase (from the cycle's start to the mark of its last
/// 100,000 mailboxes read, at the end of the listing) or the write phase (from there to the
/// end): the process's, the directory's and the agent's (the rest), in µs.
fn phase_cpu(
    marks: &[Value],
    start_cpu: f64,
    start_directory: f64,
    read: bool,
    objects: u64,
) -> Value {
    let read_end = marks.iter().rev().find(|m| m["read"].as_u64().is_some());
    let Some(w) = read_end else {
        return Value::Null;
    };
    let f = |k: &str| w[k].as_f64().unwrap_or(f64::NAN);
    let (cpu, directory) = if read {
        (f("cpu") - start_cpu, f("directory_cpu") - start_directory)
    } else {
        (start_cpu - f("cpu"), start_directory - f("directory_cpu"))
    };
    let per = |x: f64| x * 1e6 / objects.max(1) as f64;
    json!({
        "cpu_us_per_object": per(cpu),
        "directory_cpu_us_per_object": per(directory),
        "agent_cpu_us_per_object": per(cpu - directory),
    })
}

fn wait_for_file(path: &std::path::Path, limit: Duration) -> anyhow::Result<String> {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if let Ok(s) = std::fs::read_to_string(path) {
            return Ok(s);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("exo-sim did not start within {limit:?}")
}

fn one_size(
    me: &std::path::Path,
    size: usize,
    modifies: Modifies,
    out: &std::path::Path,
) -> anyhow::Result<Value> {
    let url_file = out.join(format!("scale-sim-{size}.url"));
    let _ = std::fs::remove_file(&url_file);
    let mut sim = std::process::Command::new(me)
        .args(["sim", "--size", &size.to_string(), "--url-file"])
        .arg(&url_file)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(
            out.join(format!("scale-sim-{size}.err")),
        )?)
        .spawn()?;
    let sim_started = Instant::now();
    let result = (|| {
        let url = wait_for_file(&url_file, Duration::from_secs(1800))?;
        let sim_secs = sim_started.elapsed().as_secs_f64();
        let mut cmd = std::process::Command::new(me);
        cmd.args(["scale-one", "--size", &size.to_string(), "--url", &url]);
        cmd.arg("--modifies").arg(match modifies {
            Modifies::Count => "count",
            Modifies::Apply => "apply",
        });
        let stdout = out.join(format!("scale-{size}.out"));
        let f = util::run_measured(cmd, &stdout, &out.join(format!("scale-{size}.err")))?;
        if f.code != 0 {
            bail!("scale-one {size} exited {} (see scale-{size}.err)", f.code);
        }
        let mut v: Value = serde_json::from_str(std::fs::read_to_string(&stdout)?.trim())
            .context("scale-one output")?;
        v["process_max_rss_kib"] = json!(f.max_rss_kib);
        v["process_secs"] = json!(f.elapsed.as_secs_f64());
        v["sim_seed_secs"] = json!(sim_secs);
        Ok(v)
    })();
    util::terminate(sim.id());
    let _ = sim.wait();
    let _ = std::fs::remove_file(&url_file);
    result
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let out = args.out.clone().unwrap_or_else(crate::default_out);
    std::fs::create_dir_all(&out)?;
    let me = std::env::current_exe()?;
    let conditions = util::conditions();
    let count = args.rounds.max(1);
    let mut rounds: Vec<Vec<Value>> = Vec::new();
    for round in 0..count {
        let mut rows: Vec<Value> = Vec::new();
        for &size in &args.sizes {
            eprintln!("round {}/{count}: size {size}…", round + 1);
            let (me, o, modifies) = (me.clone(), out.clone(), args.modifies);
            let v =
                tokio::task::spawn_blocking(move || one_size(&me, size, modifies, &o)).await??;
            eprintln!("  {v}");
            rows.push(v);
        }
        rounds.push(rows);
    }
    let reported = targets::median(&rounds);
    let mut rows = rounds[reported].clone();
    let base_us = rows
        .first()
        .and_then(|r| r["us_per_object"].as_f64())
        .unwrap_or(f64::NAN);
    let base_cpu = rows
        .first()
        .and_then(|r| r["cpu_us_per_object"].as_f64())
        .unwrap_or(f64::NAN);
    for r in &mut rows {
        let us = r["us_per_object"].as_f64().unwrap_or(f64::NAN);
        r["cost_vs_smallest"] = json!(us / base_us);
        let cpu = r["cpu_us_per_object"].as_f64().unwrap_or(f64::NAN);
        r["cpu_cost_vs_smallest"] = json!(cpu / base_cpu);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
            vec![
                r["size"].to_string(),
                format!("{:.1}", f("cycle_secs")),
                format!("{:.0}", f("objects_per_sec")),
                format!("{:.1}", f("us_per_object")),
                format!("{:.2}", f("cost_vs_smallest")),
                format!("{:.1}", f("cpu_us_per_object")),
                format!("{:.2}", f("cpu_cost_vs_smallest")),
                format!("{:.1}", f("agent_cpu_us_per_object")),
                format!("{:.0}", f("peak_rss_kib") / 1024.0),
                format!("{:.0}", f("agent_peak_kib") / 1024.0),
                r["written"].to_string(),
                format!("{:.1}", per_object_kb(r, "write_bytes")),
                format!("{:.1}", per_object_kb(r, "rchar")),
            ]
        })
        .collect();
    util::print_table(
        &[
            "mailboxes",
            "cycle s",
            "objects/s",
            "µs/object",
            "× smallest",
            "CPU µs/object",
            "CPU × smallest",
            "agent CPU µs/object (less the directory's)",
            "peak RSS MiB",
            "agent (above directory) MiB",
            "written",
            "state DB written KB/object",
            "read (rchar) KB/object",
        ],
        &table,
    );
    if count > 1 {
        for (i, round) in rounds.iter().enumerate() {
            eprintln!("{}", targets::round_line(i, round));
        }
        eprintln!("reported below: round {} (median wall ratio)", reported + 1);
    }
    for line in against_targets(&rows, args.modifies) {
        eprintln!("{line}");
    }
    let sizes: Vec<u64> = rows
        .iter()
        .map(|r| r["size"].as_u64().unwrap_or(0))
        .collect();
    let column = |f: &dyn Fn(&Value) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
    let num = |r: &Value, k: &str| r[k].as_f64().unwrap_or(0.0);
    let panels = [
        util::Panel {
            label: "objects/s",
            color: "#1f77b4",
            values: column(&|r| num(r, "objects_per_sec")),
        },
        util::Panel {
            label: "CPU µs per object",
            color: "#2ca02c",
            values: column(&|r| num(r, "cpu_us_per_object")),
        },
        util::Panel {
            label: "state DB written, KB per object",
            color: "#9467bd",
            values: column(&|r| per_object_kb(r, "write_bytes")),
        },
        util::Panel {
            label: "agent memory (above directory), MiB",
            color: "#d62728",
            values: column(&|r| num(r, "agent_peak_kib") / 1024.0),
        },
    ];
    let svg = args.name.trim_end_matches(".json").to_string() + ".svg";
    std::fs::write(
        out.join(&svg),
        util::svg_chart(
            &sizes,
            &panels,
            "exo-writeback initial cycle against size (no DC)",
        ),
    )?;
    let result = json!({
        "benchmark": "scale",
        "conditions": util::finish(conditions),
        "directory_modifies": args.modifies,
        "sizes": rows,
        "rounds": targets::rounds_json(&rounds, reported),
    });
    std::fs::write(out.join(&args.name), serde_json::to_string_pretty(&result)?)?;
    eprintln!("wrote {}/{} and {svg}", out.display(), args.name);
    Ok(())
}
