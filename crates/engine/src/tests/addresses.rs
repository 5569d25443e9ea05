//! The duplicate-address guard within one cycle: two mailboxes that add the same new address
//! in the same cycle — AD holds it on neither yet, so no search can see the clash.

use super::*;

/// Mailboxes 1 and 2 both add `smtp:shared@contoso.com` (Exchange Online would refuse the
/// second; a stale or hand-edited record can still carry it).
fn both_add_the_same_address(f: &Fixture, when: Timestamp) {
    for n in [1, 2] {
        let mut m = mailbox(n, when);
        m.email_addresses.push("smtp:Shared@contoso.com".into());
        f.source.set(m);
    }
}

async fn check_only_the_first_gets_it(f: &mut Fixture, r: &crate::CycleReport) {
    assert_eq!(r.counts.failed, 1, "{r:?}");
    let holders: Vec<usize> = (0..2)
        .filter(|i| {
            f.dir
                .values(&f.guids[*i], "proxyAddresses")
                .iter()
                .any(|v| v.eq_ignore_ascii_case("smtp:shared@contoso.com"))
        })
        .collect();
    assert_eq!(holders, [0], "the address is written to one object only");
    let logs = failures(&f.engine.store);
    let reason = logs[0].reason.clone().expect("reason");
    assert_eq!(reason.code, "ProxyAddressConflict");
    assert!(
        reason.message.contains(&f.dir.get(&f.guids[0]).dn),
        "names the object that takes the address: {reason:?}"
    );
}

#[tokio::test]
async fn two_mailboxes_adding_the_same_address_in_an_initial_cycle_the_second_is_refused() {
    let mut f = fixture(3, 500);
    let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
    both_add_the_same_address(&f, t0);
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("cycle");
    assert_eq!(r.kind, CycleKind::Initial);
    check_only_the_first_gets_it(&mut f, &r).await;
}

#[tokio::test]
async fn two_mailboxes_adding_the_same_address_in_a_delta_the_second_is_refused() {
    let mut f = fixture(3, 500);
    f.engine.run_cycle(CycleMode::Auto).await.expect("initial");
    let later: Timestamp = "2026-01-01T01:00:00Z".parse().expect("ts");
    both_add_the_same_address(&f, later);
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("delta");
    assert_eq!(r.kind, CycleKind::Delta);
    check_only_the_first_gets_it(&mut f, &r).await;
}
