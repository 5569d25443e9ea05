//! The duplicate-address guard within one cycle, end to end: a listing is not a snapshot, so
//! an address that moves from one mailbox to another while a cycle reads the pages reaches the
//! agent on both mailboxes — AD holds it on neither yet, and AD itself does not refuse a
//! second holder of a proxy address. Only the first mailbox read may take it.

use exo_sim::{Endpoint, FaultKind, FaultRule};

use crate::harness::{Lab, dn, edoid, texts};

const MOVED: &str = "smtp:moving@contoso.example";

fn holds(values: &[String]) -> bool {
    values.iter().any(|v| v.eq_ignore_ascii_case(MOVED))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_moving_between_mailboxes_during_the_listing_is_written_to_one_object() {
    // Four mailboxes, two per page: `a` on the first page, `b` on the second.
    let lab = Lab::start_paged(4, 2).await;
    let state = lab.sim.state();
    let first_page: Vec<uuid::Uuid> = state
        .mailboxes_after(None, 2)
        .iter()
        .map(|m| m.guid)
        .collect();
    let on_first = |i: u32| {
        let m = state.mailbox(&edoid(i)).expect("mailbox");
        first_page.contains(&m.guid)
    };
    let a = (1..=4).find(|&i| on_first(i)).expect("a mailbox on page 1");
    let b = (1..=4)
        .find(|&i| !on_first(i))
        .expect("a mailbox on page 2");
    lab.update(a, |m| m.email_addresses.push(MOVED.into()));
    // The second page is served 5 s after it is asked for: the address moves from `a` to `b`
    // in between, as an administrator's change during a cycle would.
    state.add_fault(FaultRule {
        endpoint: Endpoint::NextLink,
        kind: FaultKind::Delay { ms: 5000 },
        count: Some(1),
        probability: None,
        skip: 0,
    });
    let sync = tokio::spawn({
        let config = lab.config.clone();
        async move { crate::harness::exo_writeback(&config, &["sync", "--json"]).await }
    });
    let asked = std::time::Instant::now();
    while state.request_count(Endpoint::NextLink) == 0 {
        assert!(
            asked.elapsed().as_secs() < 120,
            "the second page was never asked for"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    lab.update(a, |m| m.email_addresses.retain(|x| x != MOVED));
    lab.update(b, |m| m.email_addresses.push(MOVED.into()));
    let r = sync.await.expect("sync");
    let report = r.json();
    assert_eq!(report["kind"], "Initial", "{}", r.stdout);
    assert_eq!(report["counts"]["failed"], 1, "{}", r.stdout);
    assert_eq!(
        report["failure_causes"],
        serde_json::json!({"ProxyAddressConflict": 1}),
        "{}",
        r.stdout
    );
    // AD: the address on the first mailbox's object only.
    let on_a = holds(&texts(&lab.user(a).await, "proxyAddresses"));
    let on_b = holds(&texts(&lab.user(b).await, "proxyAddresses"));
    assert!(on_a && !on_b, "a: {on_a}, b: {on_b}");
    // The refusal names the object that took the address.
    let logs = lab
        .run(&["logs", "--format", "json", "--status", "failure"])
        .await;
    assert!(
        logs.stdout.contains("ProxyAddressConflict"),
        "{}",
        logs.stdout
    );
    assert!(logs.stdout.contains(&dn(a)), "{}", logs.stdout);
}
