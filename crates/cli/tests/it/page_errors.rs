//! `@adminapi.errors` in a successful Exchange Online page (issue 11, item 5), end to end: the
//! real binary, a lab Samba DC and exo-sim. The records of the page (and of the pages before
//! it) are written; the error is logged with the service's text — a Failure entry of the
//! provisioning log and the cycle's summary; the listing stops there, so the watermark stays
//! where it was and the next clean poll reads the rest again.

use exo_sim::{Endpoint, FaultKind, FaultRule};
use exo_writeback_core::outcome::OutcomeCode;
use exo_writeback_core::provisioning::LogStatus;
use exo_writeback_store_sqlite::LogQuery;
use exo_writeback_store_sqlite::prelude::*;
use serde_json::Value;

use crate::harness::{Lab, cn, texts};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_in_a_200_page_write_its_records_log_the_text_and_keep_the_watermark() {
    // Three pages: 30, 30, 20 mailboxes. The second page carries the errors.
    const USERS: u32 = 80;
    const PAGE: u32 = 30;
    let lab = Lab::start_paged(USERS, PAGE).await;
    let first = lab.run(&["sync", "--json"]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let before = lab.store().watermark().expect("read").expect("a watermark");

    lab.sim.state().advance_clock(2);
    for i in 1..=USERS {
        lab.update(i, |m| m.set_custom_attribute(3, "after-errors"));
    }
    let text = "The operation couldn't be performed because object 'mbx00042' couldn't be read from the directory.";
    let fault = lab.sim.state().add_fault(FaultRule::times(
        Endpoint::NextLink,
        FaultKind::AdminApiErrors {
            errors: vec![text.into()],
        },
        1,
    ));
    let pages_before = lab.sim.state().request_count(Endpoint::Invoke);
    let faulted = lab.run(&["sync", "--json"]).await;
    assert_eq!(
        lab.sim.state().fired(fault),
        1,
        "the errors were sent with a page"
    );
    assert_eq!(
        lab.sim.state().request_count(Endpoint::Invoke) - pages_before,
        2,
        "the listing stops at the page with errors: no third page is read"
    );
    // The cycle ran and failed: exit 1 (objects or the cycle failed), not 2 (no cycle ran).
    assert_eq!(faulted.code, 1, "{}\n{}", faulted.stdout, faulted.stderr);
    let report = faulted.json();
    let status = report["status"].as_str().unwrap_or_default();
    assert!(
        status.starts_with("Failed") && status.contains(text),
        "the cycle summary carries the service's text: {report}"
    );
    // The records of the first two pages were written in this cycle; those of the third page
    // (never read) were not.
    assert_eq!(report["counts"]["written"], 2 * PAGE, "{report}");
    let mut written = 0;
    for i in 1..=USERS {
        if texts(&lab.user(i).await, "extensionAttribute3") == ["after-errors"] {
            written += 1;
        }
    }
    assert_eq!(written, 2 * PAGE, "objects written by the faulted cycle");
    // The error is in the provisioning log, with its text and what to do.
    let cycle = report["cycle"].as_i64().expect("cycle id");
    let failures: Vec<_> = lab
        .store()
        .query_logs(&LogQuery {
            statuses: vec![LogStatus::Failure],
            ..LogQuery::default()
        })
        .expect("logs")
        .into_iter()
        .filter(|e| e.cycle.0 == cycle)
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    let reason = failures[0].reason.as_ref().expect("a reason");
    assert_eq!(
        reason.code,
        OutcomeCode::ServiceReportedErrors,
        "{reason:?}"
    );
    assert!(reason.message.contains(text), "{reason:?}");
    assert!(!reason.recommended_action.is_empty(), "{reason:?}");
    let logs = lab.run(&["logs", "--status", "failure"]).await;
    assert!(
        logs.stdout.contains("ServiceReportedErrors") && logs.stdout.contains("mbx00042"),
        "{}",
        logs.stdout
    );
    // The watermark does not pass the poll.
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
    assert!(last.starts_with("Failed") && last.contains(text), "{last}");

    let clean = lab.run(&["sync", "--json"]).await;
    assert_eq!(clean.code, 0, "{}\n{}", clean.stdout, clean.stderr);
    assert_eq!(
        clean.json()["counts"]["written"],
        USERS - 2 * PAGE,
        "the next poll writes the rest"
    );
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
