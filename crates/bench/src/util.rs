//! Process measurement, percentiles, tables and the SVG chart.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;

/// A `key:  N kB` line of /proc/<pid>/status, in KiB.
pub fn proc_status_kib(pid: Option<u32>, key: &str) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// A finished child: exit code, elapsed time, peak RSS of its own memory (KiB, see
/// [`wait_rusage`]), CPU seconds (user + system), and when it started and ended.
pub struct Finished {
    pub code: i32,
    pub elapsed: Duration,
    pub max_rss_kib: u64,
    pub cpu_secs: f64,
    pub started_at: jiff::Timestamp,
    pub ended_at: jiff::Timestamp,
}

/// How often a child's `VmHWM` is read while it runs.
const HWM_EVERY: Duration = Duration::from_millis(10);

/// Waits for `pid` with wait4 for its CPU time; its peak RSS is the highest `VmHWM` of its
/// /proc status, read every 10 ms until it has exited (`waitid` with `WNOWAIT`: the pid is
/// not reaped, so not reused, while it is read). Not `ru_maxrss`: Linux carries the RSS
/// high-water mark of the memory a process leaves at `execve` into it (`exec_mmap` →
/// `setmax_mm_hiwater_rss`), and `Command::spawn` starts the child with `posix_spawn`, whose
/// child runs in the parent's memory until its `execve` — so a child's `ru_maxrss` is at
/// least the bench's own peak RSS (the Exchange Online emulator with every mailbox, the
/// preview), not the agent's.
pub fn wait_rusage(pid: u32, started: Instant) -> anyhow::Result<Finished> {
    let pid_t = libc::pid_t::try_from(pid).context("pid out of range")?;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let hwm = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut hwm = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if let Some(k) = proc_status_kib(Some(pid), "VmHWM") {
                    hwm = hwm.max(k);
                }
                std::thread::sleep(HWM_EVERY);
            }
            hwm
        });
        let exited = wait_exited(pid_t);
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let hwm = sampler.join().unwrap_or(0);
        exited.map(|()| hwm)
    })?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value that wait4 overwrites.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to locals; pid is our own child that nobody else waits for.
    let r = unsafe { libc::wait4(pid_t, &mut status, 0, &mut usage) };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).context("wait4");
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    let elapsed = started.elapsed();
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let ended_at = jiff::Timestamp::now();
    Ok(Finished {
        code,
        elapsed,
        max_rss_kib: hwm,
        cpu_secs: tv(usage.ru_utime) + tv(usage.ru_stime),
        started_at: ended_at - elapsed,
        ended_at,
    })
}

/// Waits until the child `pid` has exited, leaving it to be reaped.
fn wait_exited(pid: libc::pid_t) -> anyhow::Result<()> {
    let id = libc::id_t::try_from(pid).context("pid out of range")?;
    loop {
        // SAFETY: siginfo_t is plain old data; zeroed is a valid value that waitid overwrites.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: a valid pointer to a local; pid is our own child.
        let r = unsafe { libc::waitid(libc::P_PID, id, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).context("waitid");
        }
    }
}

/// Runs `cmd` to completion with stdout and stderr in files; returns the measurement.
pub fn run_measured(mut cmd: Command, stdout: &Path, stderr: &Path) -> anyhow::Result<Finished> {
    cmd.stdout(std::fs::File::create(stdout)?)
        .stderr(std::fs::File::create(stderr)?);
    let started = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    wait_rusage(child.id(), started)
}

/// Sends SIGTERM to a child.
pub fn terminate(pid: u32) {
    if let Ok(p) = libc::pid_t::try_from(pid) {
        // SAFETY: signalling our own child by its pid.
        unsafe {
            libc::kill(p, libc::SIGTERM);
        }
    }
}

/// The index of the median of `keys` (the lower middle for an even count; the first of equal
/// keys). `keys` must not be empty.
pub fn median_index(keys: &[f64]) -> usize {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
    order[(order.len() - 1) / 2]
}

/// The p-th percentile (0..=100) of sorted values, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            s.push_str(&" ".repeat(widths[i].saturating_sub(c.chars().count()) + 2));
        }
        println!("{}", s.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r.clone());
    }
}

/// The load average line of /proc/loadavg (1, 5, 15 min, runnable/total, last pid).
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|e| format!("unreadable: {e}"))
}

/// What a result was measured on: the commit the benchmark was built from (and whether tracked
/// files differed from it), the machine, the date and the load at the start. Add
/// `load_at_end` when the measurement ends ([`finish`]).
pub fn conditions() -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|x| x.1.trim().to_string())
            })
        })
        .unwrap_or_default();
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")?
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_string())
        .unwrap_or_default();
    serde_json::json!({
        "commit": env!("EXO_BENCH_COMMIT"),
        "tracked_files_modified": env!("EXO_BENCH_DIRTY") == "true",
        "machine": {
            "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "cpu": cpu,
            "mem_gib": mem_kib as f64 / 1024.0 / 1024.0,
            "kernel": kernel,
        },
        "date": jiff::Timestamp::now().to_string(),
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "loadavg_at_start": loadavg(),
    })
}

/// `conditions` with the end of the measurement: its date and load.
pub fn finish(mut conditions: serde_json::Value) -> serde_json::Value {
    conditions["finished"] = serde_json::json!(jiff::Timestamp::now().to_string());
    conditions["loadavg_at_end"] = serde_json::json!(loadavg());
    conditions
}

/// The I/O counters of this process (/proc/self/io): bytes read and written through system
/// calls (`rchar`, `wchar`), from and to the storage layer (`read_bytes`, `write_bytes`), and
/// the calls (`syscr`, `syscw`). An error when the file cannot be read: a figure the bench
/// cannot collect is not reported.
pub fn own_io() -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string("/proc/self/io").context("/proc/self/io")?;
    let mut out = serde_json::Map::new();
    for line in text.lines() {
        if let Some((key, value)) = line.split_once(':')
            && let Ok(n) = value.trim().parse::<u64>()
        {
            out.insert(key.trim().to_string(), serde_json::json!(n));
        }
    }
    for key in ["rchar", "wchar", "read_bytes", "write_bytes"] {
        anyhow::ensure!(out.contains_key(key), "/proc/self/io has no {key}");
    }
    Ok(serde_json::Value::Object(out))
}

/// CPU seconds (user + system) this process has used so far: on a shared machine a steadier
/// measure of the work than elapsed time.
pub fn own_cpu_secs() -> f64 {
    // SAFETY: rusage is plain old data; zeroed is a valid value that getrusage overwrites.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a local; RUSAGE_SELF is always valid.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// One panel of [`svg_chart`]: its label, colour and one value per size.
pub struct Panel<'a> {
    pub label: &'a str,
    pub color: &'a str,
    pub values: Vec<f64>,
}

/// Panels stacked, each a value against size (log x axis).
pub fn svg_chart(sizes: &[u64], panels: &[Panel<'_>], title: &str) -> String {
    let (w, h, pad) = (760.0_f64, 300.0_f64, 60.0_f64);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{}" font-family="sans-serif" font-size="12">
<text x="{}" y="20" text-anchor="middle" font-size="15">{title}</text>
"#,
        panels.len() as f64 * h + 40.0,
        w / 2.0
    );
    let xs: Vec<f64> = sizes.iter().map(|n| (*n as f64).log10()).collect();
    let (xmin, xmax) = (
        xs.iter().cloned().fold(f64::INFINITY, f64::min) - 0.1,
        xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max) + 0.1,
    );
    for (
        panel,
        Panel {
            label,
            color,
            values,
        },
    ) in panels.iter().enumerate()
    {
        let top = 40.0 + panel as f64 * h;
        let ys = values;
        let ymax = ys.iter().cloned().fold(0.0, f64::max) * 1.15 + 1e-9;
        let x_of = |x: f64| pad + (x - xmin) / (xmax - xmin) * (w - 2.0 * pad);
        let y_of = |y: f64| top + h - pad - y / ymax * (h - 2.0 * pad);
        svg.push_str(&format!(
            r#"<line x1="{pad}" y1="{b}" x2="{r}" y2="{b}" stroke="black"/><line x1="{pad}" y1="{t}" x2="{pad}" y2="{b}" stroke="black"/>
<text x="15" y="{m}" transform="rotate(-90 15 {m})" text-anchor="middle">{label}</text>
"#,
            b = top + h - pad,
            r = w - pad,
            t = top + pad / 2.0,
            m = top + h / 2.0,
        ));
        let digits = if ymax < 10.0 { 1 } else { 0 };
        for k in 0..=4 {
            let v = ymax * k as f64 / 4.0;
            svg.push_str(&format!(
                r##"<text x="{}" y="{}" text-anchor="end">{:.digits$}</text><line x1="{pad}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/>
"##,
                pad - 4.0,
                y_of(v) + 4.0,
                v,
                w - pad,
                y = y_of(v)
            ));
        }
        let path: Vec<String> = xs
            .iter()
            .zip(ys)
            .map(|(x, y)| format!("{:.1},{:.1}", x_of(*x), y_of(*y)))
            .collect();
        svg.push_str(&format!(
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>
"#,
            path.join(" ")
        ));
        for ((x, y), n) in xs.iter().zip(ys).zip(sizes) {
            svg.push_str(&format!(
                r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{color}"/><text x="{:.1}" y="{:.1}" text-anchor="middle">{:.digits$}</text><text x="{:.1}" y="{}" text-anchor="middle">{} mailboxes</text>
"#,
                x_of(*x),
                y_of(*y),
                x_of(*x),
                y_of(*y) - 8.0,
                y,
                x_of(*x),
                top + h - pad + 16.0,
                n
            ));
        }
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child's peak RSS is its own, not the bench's: with 256 MiB touched here, a `sleep`
    /// started from this process measures a few MiB (`ru_maxrss` gave at least 256 MiB).
    #[test]
    fn a_childs_peak_rss_is_not_the_parents() {
        let held = vec![1u8; 256 << 20];
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new("sleep");
        cmd.arg("0.3");
        let f = run_measured(cmd, &dir.path().join("out"), &dir.path().join("err"))
            .expect("sleep runs");
        assert_eq!(f.code, 0);
        assert!(f.max_rss_kib > 0, "the child's VmHWM was read");
        assert!(
            f.max_rss_kib < 64 << 10,
            "a sleep's peak RSS is {} KiB with {} MiB held by its parent",
            f.max_rss_kib,
            held.iter().map(|&b| b as usize).sum::<usize>() >> 20
        );
    }
}
