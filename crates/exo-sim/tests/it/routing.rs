//! Paging is bound to the back-end server a request's routing anchor resolves to; the tenant
//! is addressed by its initial domain or its id.

use serde_json::{Value, json};

use crate::common::*;

const SYSTEM: &str = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}";

async fn page(sim: &Sim, url: &str, token: &str, anchor: Option<&str>) -> (u16, Value) {
    let mut req = sim
        .http
        .post(url)
        .bearer_auth(token)
        .header("Prefer", "odata.maxpagesize=10")
        .json(&json!({"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {"ResultSize": "Unlimited"}}}));
    if let Some(a) = anchor {
        req = req.header("X-AnchorMailbox", a);
    }
    let r = req.send().await.expect("answer");
    let status = r.status().as_u16();
    (status, r.json().await.expect("json"))
}

fn expired(v: &Value) -> bool {
    v["error"]["innererror"]["internalexception"]["message"]
        == "Expired or Invalid pagination request. Default Expiry time is 00:30:00"
}

#[tokio::test]
async fn a_follow_up_page_needs_an_anchor_that_resolves_to_the_same_server() {
    let sim = start(25).await;
    let token = sim.token().await;
    let id = sim.handle.state().mailboxes_after(None, 1)[0].clone();
    let tenant_id = exo_sim::SimConfig::default().tenant_guid();
    let app = format!("APP:{SYSTEM}@{tenant_id}");
    let upn = format!("UPN:{SYSTEM}@{TENANT}");
    let user = format!("UPN:{}", id.user_principal_name);
    let unresolvable = format!("UPN:{SYSTEM}@{tenant_id}");
    // The system mailbox by tenant id or by initial domain: the same server, so either anchor
    // continues the other's listing.
    for (first, then) in [(&app, &upn), (&upn, &app), (&app, &app)] {
        let (s, v) = page(&sim, &sim.invoke_url(), &token, Some(first)).await;
        assert_eq!(s, 200, "{v}");
        let next = v["@odata.nextLink"].as_str().expect("more").to_string();
        let (s, v) = page(&sim, &next, &token, Some(then)).await;
        assert_eq!(s, 200, "{first} then {then}: {v}");
    }
    // No anchor, an anchor that finds no mailbox: the first page is served, the next is not.
    for anchor in [None, Some(unresolvable.as_str())] {
        let (s, v) = page(&sim, &sim.invoke_url(), &token, anchor).await;
        assert_eq!(s, 200, "{v}");
        let next = v["@odata.nextLink"].as_str().expect("more").to_string();
        let (s, v) = page(&sim, &next, &token, anchor).await;
        assert_eq!(s, 400, "{anchor:?}");
        assert!(expired(&v), "{v}");
    }
    // An anchor that changes to a mailbox on another server breaks the listing.
    let (_, v) = page(&sim, &sim.invoke_url(), &token, Some(&app)).await;
    let next = v["@odata.nextLink"].as_str().expect("more").to_string();
    let user_backend_differs = {
        let (_, v) = page(&sim, &sim.invoke_url(), &token, Some(&user)).await;
        let n = v["@odata.nextLink"].as_str().expect("more").to_string();
        page(&sim, &n, &token, Some(&app)).await.0 == 400
    };
    let (s, _) = page(&sim, &next, &token, Some(&user)).await;
    assert_eq!(s == 400, user_backend_differs);
}

#[tokio::test]
async fn the_tenant_is_addressed_by_initial_domain_or_id_only() {
    let sim = start(3).await;
    let token = sim.token().await;
    let tenant_id = exo_sim::SimConfig::default().tenant_guid();
    for tenant in [
        TENANT.to_string(),
        TENANT.to_uppercase(),
        tenant_id.to_string(),
    ] {
        let url = format!("{}/adminapi/beta/{tenant}/InvokeCommand", sim.base());
        let (s, v) = page(&sim, &url, &token, Some(ANCHOR)).await;
        assert_eq!(s, 200, "{tenant}: {v}");
        let token_url = format!("{}/{tenant}/oauth2/v2.0/token", sim.base());
        let r = sim
            .http
            .post(token_url)
            .form(&SECRET_FORM)
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), 200, "{tenant}");
    }
    let url = format!("{}/adminapi/beta/contoso.com/InvokeCommand", sim.base());
    let (s, v) = page(&sim, &url, &token, Some(ANCHOR)).await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["error"]["code"], "NotFound");
}
