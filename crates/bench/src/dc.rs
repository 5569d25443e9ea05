//! `dc`: the benchmark against a lab Samba DC.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use exo_sim::{SimConfig, SimHandle, SimMailbox};
use exo_writeback_ad::{AdConfig, AdConnection, SearchScope};
use exo_writeback_core::matching::WITNESS_ATTRIBUTES;
use exo_writeback_core::secret::Secret;
use exo_writeback_core::settings::WritebackPlanSettings;
use exo_writeback_testlab::{LabDc, LabOptions, MAILBOXES_OU};
use ldap3::Mod;
use serde_json::{Value, json};

use crate::probe::{self, DcCpu};
use crate::replay::{self, ObjectMods};
use crate::util::{self, Finished};

mod full;
mod table;

const SECRET: &str = "bench-client-secret";
/// Modifies in flight in the pipelined raw replay.
const RAW_IN_FLIGHT: usize = 16;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Users in the lab DC template (OU=Mailboxes).
    #[arg(long, default_value_t = 10_000)]
    users: u32,
    /// Directory for the JSON results (and the agents' logs).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The exo-writeback binary (default: beside this one).
    #[arg(long)]
    agent: Option<PathBuf>,
    /// Load generator: mailbox changes per second during the latency run.
    #[arg(long, default_value_t = 5.0)]
    rate: f64,
    /// How long the load generator runs, seconds.
    #[arg(long, default_value_t = 60)]
    load_secs: u64,
    /// The agent's `sync.interval`, seconds.
    #[arg(long, default_value_t = 5)]
    interval: u64,
    /// Pairs of a full reconcile (nothing to change) and a raw paged read measured on the same
    /// DC; the pair of median ratio is reported (`dc/full.rs`).
    #[arg(long, default_value_t = full::PAIRS, value_parser = clap::value_parser!(u64).range(1..))]
    pairs: u64,
}

fn agent_path(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p);
    }
    let me = std::env::current_exe()?;
    let p = me.with_file_name("exo-writeback");
    if !p.exists() {
        bail!(
            "{} not found: build it first (cargo build --release -p exo-writeback) or give --agent",
            p.display()
        );
    }
    Ok(p)
}

fn write_config(dc: &LabDc, sim: &SimHandle, dir: &Path, interval: u64) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let secret_file = dir.join("client-secret");
    std::fs::write(&secret_file, SECRET)?;
    let password_file = dir.join("ad-password");
    std::fs::write(&password_file, dc.password())?;
    for f in [&secret_file, &password_file] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600))?;
    }
    let config = dir.join("exo-writeback.toml");
    let text = format!(
        r#"[ad]
url = "{url}"
ca_file = "{ca}"
bind_dn = "{bind}"
password_file = "{pw}"
base_dn = "{base}"

[exo]
tenant = "contoso.onmicrosoft.com"
client_id = "{client}"
client_secret_file = "{secret}"
login_base = "{sim}"
api_base = "{sim}"
allow_insecure_http = true
page_size = 1000

[sync]
state_dir = "{state}"
interval = "{interval}s"
"#,
        url = dc.url,
        ca = dc.ca_file.display(),
        bind = dc.bind_dn,
        pw = password_file.display(),
        base = dc.base_dn,
        client = SimConfig::default().client_id,
        secret = secret_file.display(),
        sim = sim.base_url(),
        state = dir.join("state").display(),
    );
    std::fs::write(&config, text)?;
    Ok(config)
}

fn set_custom(m: &mut SimMailbox, n: u8, value: String) {
    m.custom_attributes.retain(|(k, _)| *k != n);
    m.custom_attributes.push((n, value));
    m.custom_attributes.sort();
}

/// Every mailbox id in the emulator.
fn mailbox_ids(sim: &SimHandle) -> Vec<String> {
    let state = sim.state();
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = state.mailboxes_after(after, 1000);
        let Some(last) = page.last() else { break };
        after = Some(last.guid);
        out.extend(page.iter().map(|m| m.guid.to_string()));
    }
    out
}

/// Runs the agent binary once with `args`; stdout/stderr go to `<out>/<name>.{out,err}`.
fn agent(
    bin: &Path,
    config: &Path,
    args: &[&str],
    out: &Path,
    name: &str,
) -> anyhow::Result<(Finished, String)> {
    let mut cmd = std::process::Command::new(bin);
    cmd.args(args)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn");
    let stdout = out.join(format!("{name}.out"));
    let f = util::run_measured(cmd, &stdout, &out.join(format!("{name}.err")))?;
    let text = std::fs::read_to_string(&stdout)?;
    if f.code != 0 && f.code != 2 {
        bail!(
            "exo-writeback {args:?} exited {} (see {})",
            f.code,
            out.join(format!("{name}.err")).display()
        );
    }
    Ok((f, text))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    Ok(tokio::task::spawn_blocking(f).await?)
}

/// The modifications of a preview: (DN, mods) per object that would be written.
fn preview_mods(preview: &Value) -> anyhow::Result<Vec<ObjectMods>> {
    use base64::Engine as _;
    let items = preview["items"]
        .as_array()
        .context("preview has no items")?;
    let mut out = Vec::new();
    for item in items {
        let (Some(dn), Some(changes)) = (item["dn"].as_str(), item["changes"].as_array()) else {
            continue;
        };
        if changes.is_empty() {
            continue;
        }
        let mut mods = Vec::new();
        for c in changes {
            let attr = c["attribute"]
                .as_str()
                .context("change without attribute")?;
            let mut values = HashSet::new();
            for v in c["new"].as_array().context("change without new")? {
                let bytes = match v {
                    Value::String(s) => s.as_bytes().to_vec(),
                    other => base64::engine::general_purpose::STANDARD
                        .decode(other["base64"].as_str().context("bad value")?)?,
                };
                values.insert(bytes);
            }
            mods.push(Mod::Replace(attr.as_bytes().to_vec(), values));
        }
        out.push((dn.to_string(), mods));
    }
    Ok(out)
}

async fn connect(dc: &LabDc) -> anyhow::Result<AdConnection> {
    let mut c = AdConfig::new(dc.url.clone(), dc.bind_dn.clone());
    c.ca_file = Some(dc.ca_file.clone());
    c.base_dn = Some(dc.base_dn.clone());
    c.password_file = Some(dc.password_file.clone());
    Ok(AdConnection::connect(&c, Secret::new(dc.password())).await?)
}

fn cycle_id(report: &str) -> i64 {
    serde_json::from_str::<Value>(report)
        .ok()
        .and_then(|v| v["cycle"].as_i64())
        .unwrap_or(0)
}

fn cycle_counts(report: &str) -> Value {
    serde_json::from_str::<Value>(report)
        .map(|v| v["counts"].clone())
        .unwrap_or(Value::Null)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let bin = agent_path(args.agent.clone())?;
    let out = args.out.clone().unwrap_or_else(crate::default_out);
    std::fs::create_dir_all(&out)?;
    let out = std::fs::canonicalize(&out)?;
    let work = out.join(format!("dc-{}", args.users));
    std::fs::create_dir_all(&work)?;
    let conditions = util::conditions();
    let n = args.users;

    eprintln!("starting two lab DCs from the {n}-user template (built on first use)…");
    let t = Instant::now();
    let dc_a = blocking(move || LabDc::start(LabOptions::default().with_users(n))).await??;
    let template_secs = t.elapsed().as_secs_f64();
    let dc_b = blocking(move || LabDc::start(LabOptions::default().with_users(n))).await??;
    // A third DC of the same template for the pipelined replay: the same modifies, each
    // applied to an object that does not hold its values yet.
    let dc_c = blocking(move || LabDc::start(LabOptions::default().with_users(n))).await??;
    eprintln!("DCs up ({template_secs:.1}s for the first)");

    let sim = exo_sim::spawn(SimConfig {
        client_secret: Some(SECRET.into()),
        page_size_max: 1000,
        ..SimConfig::default()
    })
    .await?;
    let config_a = write_config(&dc_a, &sim, &work.join("raw"), args.interval)?;
    let config_b = write_config(&dc_b, &sim, &work.join("agent"), args.interval)?;
    let seeded = exo_sim::seed_ad::seed_from_ad(&sim.state(), &config_a, &Default::default())
        .await?
        .mailboxes;
    // Cloud-side changes that make every mailbox need a write: a custom attribute and an alias.
    // Stamped in the past, spread over days as an administrator's earlier edits would be
    // (the newest an hour ago): the no-change delta cycle's overlap window then holds none.
    let ids = mailbox_ids(&sim);
    let earlier = sim.state().now() - jiff::SignedDuration::from_hours(1);
    for (i, id) in ids.iter().enumerate() {
        let when = earlier - jiff::SignedDuration::from_mins(10 * i as i64);
        sim.state().update_mailbox_with(id, |m| {
            m.when_changed = when;
            set_custom(m, 1, format!("Bench dept {}", m.alias));
            let domain = m
                .windows_email_address
                .split_once('@')
                .map(|x| x.1.to_string())
                .unwrap_or_else(|| "contoso.example".into());
            let alias = format!("smtp:{}.bench@{domain}", m.alias);
            m.email_addresses.push(alias);
            Ok(())
        })?;
    }
    eprintln!("exo-sim seeded with {seeded} mailboxes from the DC, each changed");

    // (a) raw limit on DC A, with the modifications the engine plans.
    let (_, preview_text) = {
        let (bin, c, w) = (bin.clone(), config_a.clone(), work.clone());
        blocking(move || agent(&bin, &c, &["preview", "--json"], &w, "preview")).await??
    };
    let preview: Value = serde_json::from_str(&preview_text).context("preview --json")?;
    let mods = preview_mods(&preview)?;
    let raw_objects = mods.len();
    let cpu = DcCpu::start(dc_a.pid);
    let sequential = replay::modifies(&dc_a, mods.clone(), 1).await?;
    let sequential_dc_cpu = cpu.secs();
    let cpu = DcCpu::start(dc_c.pid);
    let pipelined = replay::modifies(&dc_c, mods, RAW_IN_FLIGHT).await?;
    let pipelined_dc_cpu = cpu.secs();
    let rate_of = |d: Duration| raw_objects as f64 / d.as_secs_f64();
    let raw = sequential.min(pipelined);
    let raw_rate = rate_of(raw);
    eprintln!(
        "raw: {raw_objects} modifies, one at a time {:.2}s ({:.0}/s), {RAW_IN_FLIGHT} in flight {:.2}s ({:.0}/s)",
        sequential.as_secs_f64(),
        rate_of(sequential),
        pipelined.as_secs_f64(),
        rate_of(pipelined)
    );

    // (b) the engine's initial cycle on DC B.
    let sync = |name: &'static str| {
        let (bin, c, w) = (bin.clone(), config_b.clone(), work.clone());
        blocking(move || agent(&bin, &c, &["sync", "--json"], &w, name))
    };
    let cpu = DcCpu::start(dc_b.pid);
    let (initial, initial_report) = sync("initial").await??;
    let initial_dc_cpu = cpu.secs();
    let initial_counts = cycle_counts(&initial_report);
    let state_dir = work.join("agent").join("state");
    let initial_phases = probe::cycle_phases(
        &state_dir,
        cycle_id(&initial_report),
        initial.started_at,
        initial.ended_at,
    )?;
    let written = initial_counts["written"].as_u64().unwrap_or(0);
    let engine_rate = raw_objects as f64 / initial.elapsed.as_secs_f64();
    eprintln!(
        "engine initial: {:.2}s ({engine_rate:.0}/s, counts {initial_counts})",
        initial.elapsed.as_secs_f64()
    );

    // (c) a delta with no change, then one with 1 % changed.
    let (nochange, nochange_report) = sync("delta-none").await??;
    let k = (ids.len() / 100).max(1);
    for (i, id) in ids.iter().take(k).enumerate() {
        sim.state()
            .update_mailbox(id, |m| set_custom(m, 2, format!("delta {i}")))?;
    }
    let (delta, delta_report) = sync("delta-1pct").await??;
    eprintln!(
        "delta: none {:.3}s, 1% ({k}) {:.3}s",
        nochange.elapsed.as_secs_f64(),
        delta.elapsed.as_secs_f64()
    );

    // (d) a full reconcile with nothing to change, against a raw paged read of the
    // attributes it reads (every attribute the plans and the matching read): `--pairs`
    // pairs, the median reported (`dc/full.rs`).
    let mut read_attrs = WritebackPlanSettings::default().required_ad_attributes();
    for w in WITNESS_ATTRIBUTES {
        if !read_attrs.iter().any(|a| a.eq_ignore_ascii_case(w)) {
            read_attrs.push(w.to_string());
        }
    }
    let mut pairs = Vec::with_capacity(args.pairs as usize);
    for i in 1..=args.pairs {
        let full_cpu = DcCpu::start(dc_b.pid);
        let (finished, report) = {
            let (bin, c, w) = (bin.clone(), config_b.clone(), work.clone());
            let name = format!("full-none-{i}");
            blocking(move || agent(&bin, &c, &["sync", "--full", "--json"], &w, &name)).await??
        };
        let dc_cpu = (full_cpu.secs(), full_cpu.busiest_secs());
        let cpu = DcCpu::start(dc_b.pid);
        let (raw_objects, raw_read) = replay::paged_read(&dc_b, &dc_b.base_dn, &read_attrs).await?;
        let pair = full::Pair {
            full: finished,
            report,
            dc_cpu,
            raw_objects,
            raw_secs: raw_read.as_secs_f64(),
            raw_dc_cpu: cpu.secs(),
        };
        eprintln!(
            "full reconcile {i}/{}, nothing to change: {:.2}s; raw paged read of {raw_objects} objects {:.2}s: {:.2}x",
            args.pairs,
            pair.full.elapsed.as_secs_f64(),
            pair.raw_secs,
            pair.ratio()
        );
        pairs.push(pair);
    }
    let full_median = full::median(&pairs);
    let (full_secs, raw_read_secs, full_rss) = (
        full_median.full.elapsed.as_secs_f64(),
        full_median.raw_secs,
        pairs.iter().map(|p| p.full.max_rss_kib).max().unwrap_or(0),
    );
    let full_json = full::json(&pairs, &read_attrs, cycle_counts(&full_median.report));
    eprintln!(
        "full reconcile, nothing to change, the median of {} pairs: {full_secs:.2}s / {raw_read_secs:.2}s = {:.2}x",
        args.pairs,
        full_median.ratio()
    );

    // (e) propagation latency with `run`.
    let ad = connect(&dc_b).await?;
    let mut dn_of = BTreeMap::new();
    for o in ad
        .search(
            MAILBOXES_OU,
            SearchScope::OneLevel,
            "(objectClass=user)",
            &["objectGUID"],
        )
        .await?
    {
        dn_of.insert(exo_writeback_core::guid::immutable_id(&o.object_guid), o.dn);
    }
    let targets: Vec<(String, String)> = ids
        .iter()
        .filter_map(|id| {
            let m = sim.state().mailbox(id)?;
            Some((id.clone(), dn_of.get(&m.immutable_id)?.clone()))
        })
        .collect();
    let mut cmd = std::process::Command::new(&bin);
    cmd.arg("run")
        .arg("--config")
        .arg(&config_b)
        .env("RUST_LOG", "warn")
        .stdout(std::fs::File::create(work.join("run.out"))?)
        .stderr(std::fs::File::create(work.join("run.err"))?);
    let run_started = Instant::now();
    let run_started_at = jiff::Timestamp::now();
    let child = cmd.spawn()?;
    let run_pid = child.id();
    // Let the agent start its first cycle before load starts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pending: Arc<Mutex<BTreeMap<String, (String, Instant)>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let total = (args.rate * args.load_secs as f64).round() as usize;
    let poller = {
        let (pending, latencies) = (pending.clone(), latencies.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(found) = ad
                    .search(
                        MAILBOXES_OU,
                        SearchScope::OneLevel,
                        "(extensionAttribute3=lat-*)",
                        &["extensionAttribute3"],
                    )
                    .await
                {
                    let now = Instant::now();
                    let mut p = pending.lock().expect("lock");
                    for o in found {
                        let v = o
                            .attributes
                            .get("extensionAttribute3")
                            .first()
                            .and_then(|v| v.as_text())
                            .map(str::to_string);
                        if let Some((want, at)) = p.get(&o.dn)
                            && v.as_deref() == Some(want.as_str())
                        {
                            latencies
                                .lock()
                                .expect("lock")
                                .push((now - *at).as_secs_f64());
                            p.remove(&o.dn);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let period = Duration::from_secs_f64(1.0 / args.rate);
    let mut tick = tokio::time::interval(period);
    for seq in 0..total {
        tick.tick().await;
        let (id, dn) = &targets[seq % targets.len()];
        let value = format!("lat-{seq}");
        let at = Instant::now();
        sim.state()
            .update_mailbox(id, |m| set_custom(m, 3, value.clone()))?;
        pending
            .lock()
            .expect("lock")
            .insert(dn.clone(), (value, at));
    }
    let drain_until = Instant::now() + Duration::from_secs(3 * args.interval + 15);
    while Instant::now() < drain_until && !pending.lock().expect("lock").is_empty() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    poller.abort();
    let run_hwm = util::proc_status_kib(Some(run_pid), "VmHWM").unwrap_or(0);
    util::terminate(run_pid);
    let run_finished = blocking(move || util::wait_rusage(run_pid, run_started)).await??;
    let missing = pending.lock().expect("lock").len();
    let run_cycles = probe::run_cycles(&state_dir, run_started_at)?;
    let mut lat = latencies.lock().expect("lock").clone();
    lat.sort_by(f64::total_cmp);
    let (p50, p95, p99) = (
        util::percentile(&lat, 50.0),
        util::percentile(&lat, 95.0),
        util::percentile(&lat, 99.0),
    );

    let peak_rss_mib = [
        initial.max_rss_kib,
        nochange.max_rss_kib,
        delta.max_rss_kib,
        full_rss,
        run_finished.max_rss_kib,
        run_hwm,
    ]
    .into_iter()
    .max()
    .unwrap_or(0) as f64
        / 1024.0;
    let initial_secs = initial.elapsed.as_secs_f64();
    let raw_secs = raw.as_secs_f64();
    // An engine that must read what it plans from before it writes cannot beat a raw paged
    // read followed by the raw replay.
    let ceiling = raw_secs / (raw_read_secs + raw_secs);
    let per_object_ms = |secs: f64| 1000.0 * secs / raw_objects.max(1) as f64;
    let cpu = json!({
        "raw_paged_read_secs": raw_read_secs,
        "agent_initial_secs": initial.cpu_secs,
        "dc_initial_secs": initial_dc_cpu,
        "dc_raw_sequential_secs": sequential_dc_cpu,
        "dc_raw_pipelined_secs": pipelined_dc_cpu,
        "dc_raw_paged_read_secs": full_median.raw_dc_cpu,
        "ms_per_object": {"agent_initial": per_object_ms(initial.cpu_secs), "dc_initial": per_object_ms(initial_dc_cpu),
                          "dc_raw_sequential": per_object_ms(sequential_dc_cpu), "dc_raw_pipelined": per_object_ms(pipelined_dc_cpu)},
    });
    let result = json!({
        "benchmark": "dc",
        "conditions": util::finish(conditions),
        "users": n,
        "mailboxes": ids.len(),
        "first_dc_start_secs": template_secs,
        "raw": {"objects": raw_objects, "secs": raw.as_secs_f64(), "objects_per_sec": raw_rate, "best_of": "sequential and pipelined",
                "sequential": {"secs": sequential.as_secs_f64(), "objects_per_sec": rate_of(sequential)},
                "pipelined": {"in_flight": RAW_IN_FLIGHT, "secs": pipelined.as_secs_f64(), "objects_per_sec": rate_of(pipelined)}},
        "engine_initial": {"objects": written, "secs": initial_secs, "objects_per_sec": engine_rate, "counts": initial_counts, "max_rss_kib": initial.max_rss_kib},
        "ratio_engine_to_raw": engine_rate / raw_rate,
        "engine_initial_phases": initial_phases,
        "cpu": cpu,
        "ceiling_read_then_write": {"ratio": ceiling, "formula": "raw / (raw paged read + raw)"},
        "delta_no_change": {"secs": nochange.elapsed.as_secs_f64(), "fraction_of_initial": nochange.elapsed.as_secs_f64() / initial_secs, "counts": cycle_counts(&nochange_report)},
        "delta_1pct": {"changed": k, "secs": delta.elapsed.as_secs_f64(), "ms_per_change": delta.elapsed.as_secs_f64() * 1000.0 / k as f64, "counts": cycle_counts(&delta_report)},
        "full_no_change": full_json,
        "propagation": {"run_cycles": run_cycles, "interval_secs": args.interval, "rate_per_sec": args.rate, "changes": total, "measured": lat.len(), "missing": missing, "p50_secs": p50, "p95_secs": p95, "p99_secs": p99, "max_secs": lat.last().copied()},
        "agent_peak_rss_mib": peak_rss_mib,
        "agent": bin.display().to_string(),
        "note": "each agent figure is the exo-writeback binary run as a child process: process start, connections, token and the cycle; raw is modifies only over one already-bound connection (the best of one at a time on DC A and pipelined on DC C, same template); the raw paged read is on DC B",
    });
    let json_path = out.join(format!("dc-{n}.json"));
    std::fs::write(&json_path, serde_json::to_string_pretty(&result)?)?;

    util::print_table(&["measure", "value"], &table::rows(&result));
    eprintln!("wrote {}", json_path.display());
    sim.shutdown().await;
    let _ = blocking(move || {
        let _ = dc_a.stop();
        let _ = dc_b.stop();
        let _ = dc_c.stop();
    })
    .await;
    Ok(())
}
