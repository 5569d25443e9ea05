//! 100,000 mailboxes: seeding and paging with modest memory, measured in exo-sim processes of
//! their own (the `exo-sim` binary), not in this test process that other tests share.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::common::*;

/// A `Vm…:` line of a process's /proc status, in KiB. Panics when it cannot be read: a memory
/// bound that cannot be measured must not pass.
fn status_kib(pid: u32, key: &str) -> u64 {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {path}:\n{text}"))
}

/// Resets a process's peak RSS (VmHWM) to its current RSS (`clear_refs` value 5).
fn reset_peak(pid: u32) {
    let path = format!("/proc/{pid}/clear_refs");
    std::fs::write(&path, "5").unwrap_or_else(|e| panic!("{path}: {e}"));
}

/// The `exo-sim serve` binary seeded with `seed` mailboxes; killed when dropped.
struct SimProcess {
    child: Child,
    base: String,
}

impl SimProcess {
    async fn start(seed: usize) -> SimProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret_file = dir.path().join("secret");
        std::fs::write(&secret_file, SECRET).expect("secret");
        let mut child = Command::new(env!("CARGO_BIN_EXE_exo-sim"))
            .args(["serve", "--tenant", TENANT, "--client-id", CLIENT_ID])
            .args(["--seed", &seed.to_string()])
            .arg("--client-secret-file")
            .arg(&secret_file)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start exo-sim");
        let stdout = child.stdout.take().expect("stdout");
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).expect("read");
            line
        })
        .await
        .expect("join");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("exo-sim printed {line:?}"))
            .to_string();
        SimProcess { child, base }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_mailboxes_seed_and_page_in_modest_memory() {
    const N: usize = 100_000;
    // The same binary with no mailboxes: what the process costs without them.
    let empty = SimProcess::start(0).await;
    let baseline = status_kib(empty.pid(), "VmRSS");
    drop(empty);
    let sim = SimProcess::start(N).await;
    let pid = sim.pid();
    let seeded = status_kib(pid, "VmRSS");
    reset_peak(pid);
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/{TENANT}/oauth2/v2.0/token", sim.base))
        .form(&SECRET_FORM)
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 200);
    let token = r.json::<Value>().await.expect("json")["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let mut url = format!(
        "{}/adminapi/beta/{TENANT}/InvokeCommand?$select=PrimarySmtpAddress,WhenChangedUTC,IsExchangeCloudManaged",
        sim.base
    );
    let mut seen = HashSet::with_capacity(N);
    let mut pages = 0;
    loop {
        let r = http
            .post(&url)
            .bearer_auth(&token)
            .header("X-CmdletName", "Get-Mailbox")
            .header("X-AnchorMailbox", ANCHOR)
            .header("Prefer", "odata.maxpagesize=1000")
            .json(&json!({"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {"ResultSize": "Unlimited"}}}))
            .send()
            .await
            .expect("InvokeCommand");
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.expect("json");
        pages += 1;
        for rec in v["value"].as_array().expect("value") {
            assert!(
                seen.insert(rec["Guid"].as_str().expect("Guid").to_string()),
                "duplicate"
            );
        }
        match v["@odata.nextLink"].as_str() {
            Some(n) => url = n.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), N);
    assert_eq!(pages, N / 1000);
    // The emulator's peak while serving every page (VmHWM since the reset).
    let paging_peak = status_kib(pid, "VmHWM");
    let per_mailbox = seeded.saturating_sub(baseline) * 1024 / N as u64;
    eprintln!(
        "scale: {N} mailboxes in exo-sim (pid {pid}): rss without mailboxes {baseline} KiB, seeded {seeded} KiB (~{per_mailbox} B/mailbox), peak while paging {paging_peak} KiB, {pages} pages"
    );
    assert!(
        seeded > baseline,
        "{seeded} KiB seeded against {baseline} KiB"
    );
    // Memory stays modest: well under 3 KiB per mailbox, and paging adds little.
    assert!(per_mailbox < 3072, "{per_mailbox} bytes per mailbox");
    assert!(
        paging_peak.saturating_sub(seeded) < 200 * 1024,
        "paging grew rss by {} KiB",
        paging_peak - seeded
    );
}
