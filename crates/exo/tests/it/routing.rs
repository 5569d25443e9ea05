//! Item 1 of issue 11: the routing anchor. A result page's skiptoken names the back-end server
//! that produced it; the emulator serves a follow-up page only when its `X-AnchorMailbox`
//! resolves to that server (PROTOCOL.md §2, "Routing anchor").

use exo_sim::{Endpoint, SimCloud};

use crate::support::*;

#[tokio::test]
async fn a_guid_tenant_lists_2500_mailboxes_through_anchor_bound_paging() {
    let sim = spawn(tenant(2500, SimCloud::Worldwide, None)).await;
    let c = client(&section(&sim.base_url(), TENANT_ID, ""));
    assert_eq!(
        c.settings().anchor_mailbox,
        format!("APP:SystemMailbox{{bb558c35-97f1-4cb9-8ff7-d53741dc928c}}@{TENANT_ID}")
    );
    let (mailboxes, errors) = drain(c.mailboxes(None)).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(mailboxes.len(), 2500);
    let mut ids: Vec<_> = mailboxes
        .iter()
        .map(|m| m.external_directory_object_id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2500, "each mailbox once");
    assert_eq!(sim.state().request_count(Endpoint::Invoke), 3);
    assert_eq!(sim.state().request_count(Endpoint::NextLink), 2);
}

#[tokio::test]
async fn an_initial_domain_tenant_anchors_on_the_system_mailbox_upn() {
    let sim = spawn(tenant(1200, SimCloud::Worldwide, None)).await;
    let c = client(&section(&sim.base_url(), INITIAL_DOMAIN, ""));
    assert_eq!(
        c.settings().anchor_mailbox,
        format!("UPN:SystemMailbox{{bb558c35-97f1-4cb9-8ff7-d53741dc928c}}@{INITIAL_DOMAIN}")
    );
    let (mailboxes, errors) = drain(c.mailboxes(None)).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(mailboxes.len(), 1200);
}

#[tokio::test]
async fn an_anchor_that_resolves_to_no_mailbox_breaks_paging_in_the_emulator() {
    // The emulator's side of the rule: the listing starts, and its second page fails with the
    // captured C3 error, which the client reports as an incomplete listing.
    let sim = spawn(tenant(1500, SimCloud::Worldwide, None)).await;
    let c = client(&section(
        &sim.base_url(),
        TENANT_ID,
        "anchor_mailbox = \"UPN:nobody@contoso.onmicrosoft.com\"",
    ));
    let (mailboxes, errors) = drain(c.mailboxes(None)).await;
    assert_eq!(mailboxes.len(), 1000, "the first page is served");
    assert_eq!(errors.len(), 1, "{errors:?}");
    let text = errors[0].to_string();
    assert!(
        text.contains("Expired or Invalid pagination request"),
        "{text}"
    );
    assert!(text.contains("incomplete"), "{text}");
}

#[tokio::test]
async fn a_custom_domain_tenant_is_refused_with_the_fix() {
    let sim = spawn(tenant(3, SimCloud::Worldwide, None)).await;
    let err = settings(&section(&sim.base_url(), "contoso.com", ""))
        .expect_err("a custom domain cannot anchor app-only requests")
        .to_string();
    assert!(err.contains("tenant"), "{err}");
    assert!(err.contains("onmicrosoft.com"), "{err}");
    assert!(err.contains("tenant ID") || err.contains("GUID"), "{err}");
    assert_eq!(sim.state().request_count(Endpoint::Any), 0);
}
