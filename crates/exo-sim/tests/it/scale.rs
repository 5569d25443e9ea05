//! 100,000 mailboxes: seeding and paging with modest memory.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::common::*;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_mailboxes_seed_and_page() {
    const N: usize = 100_000;
    let before = rss_kib();
    let sim = start(N).await;
    let seeded = rss_kib();
    let token = sim.token().await;
    let mut url = format!(
        "{}?$select=PrimarySmtpAddress,WhenChangedUTC,IsExchangeCloudManaged",
        sim.invoke_url()
    );
    let mut seen = HashSet::with_capacity(N);
    let mut pages = 0;
    let mut peak = seeded;
    let params = json!({"ResultSize": "Unlimited"});
    loop {
        let r = sim
            .invoke_at(&url, &token, "Get-Mailbox", params.clone(), Some(1000))
            .await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        pages += 1;
        for rec in v["value"].as_array().unwrap() {
            assert!(
                seen.insert(rec["Guid"].as_str().unwrap().to_string()),
                "duplicate"
            );
        }
        peak = peak.max(rss_kib());
        match v["@odata.nextLink"].as_str() {
            Some(n) => url = n.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), N);
    assert_eq!(pages, N / 1000);
    let per_mailbox = (seeded.saturating_sub(before)) * 1024 / N as u64;
    eprintln!(
        "scale: {N} mailboxes, rss before {before} KiB, after seeding {seeded} KiB (~{per_mailbox} B/mailbox), peak while paging {peak} KiB, {pages} pages"
    );
    // Memory stays modest: well under 3 KiB per mailbox, and paging adds little.
    assert!(per_mailbox < 3072, "{per_mailbox} bytes per mailbox");
    assert!(
        peak.saturating_sub(seeded) < 200 * 1024,
        "paging grew rss by {} KiB",
        peak - seeded
    );
}
