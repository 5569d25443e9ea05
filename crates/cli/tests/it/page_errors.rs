//! `@adminapi.errors` in a successful Exchange Online page (issue 11, item 5), end to end: the
//! real binary, a lab Samba DC and exo-sim. The cycle fails with the service's text in its
//! summary and the watermark stays where it was, so the next clean poll reads those mailboxes
//! again and writes them.

use exo_sim::{Endpoint, FaultKind, FaultRule};
use exo_writeback_store_sqlite::prelude::*;
use serde_json::Value;

use crate::harness::{Lab, cn, texts};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_in_a_200_page_keep_the_watermark_and_the_next_poll_catches_up() {
    const USERS: u32 = 80; // two pages of 50
    let lab = Lab::start(USERS).await;
    let first = lab.run(&["sync", "--json"]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let before = lab.store().watermark().expect("read").expect("a watermark");

    lab.sim.state().advance_clock(2);
    for i in 1..=USERS {
        lab.update(i, |m| m.set_custom_attribute(3, "after-errors"));
    }
    let text = "The operation couldn't be performed because object 'mbx00042' couldn't be read from the directory.";
    lab.sim.state().add_fault(FaultRule::times(
        Endpoint::NextLink,
        FaultKind::AdminApiErrors {
            errors: vec![text.into()],
        },
        1,
    ));
    let faulted = lab.run(&["sync", "--json"]).await;
    assert_ne!(faulted.code, 0, "{}\n{}", faulted.stdout, faulted.stderr);
    assert!(faulted.stderr.contains(text), "{}", faulted.stderr);
    let after = lab.store().watermark().expect("read").expect("a watermark");
    assert_eq!(
        after.changed_since, before.changed_since,
        "the watermark must not pass a poll Exchange Online reported errors for"
    );
    let status = lab.run(&["status", "--json"]).await;
    let v: Value = status.json();
    let last = v["last_cycle"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(last.starts_with("Failed"), "{last}");
    assert!(
        last.contains(text),
        "the cycle summary carries the service's text: {last}"
    );

    let clean = lab.run(&["sync", "--json"]).await;
    assert_eq!(clean.code, 0, "{}\n{}", clean.stdout, clean.stderr);
    for i in 1..=USERS {
        assert_eq!(
            texts(&lab.user(i).await, "extensionAttribute3"),
            ["after-errors"],
            "{}",
            cn(i)
        );
    }
    let done = lab.store().watermark().expect("read").expect("a watermark");
    assert!(done.changed_since > before.changed_since, "{done:?}");
}
