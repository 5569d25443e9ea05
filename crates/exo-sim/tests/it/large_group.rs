//! The lab's large group (issue 17): a DC with 5,000 users holds dl-big, a distribution list of
//! all of them. Its `member` is read by ranges as Windows AD hands it out, the emulator seeded
//! from the DC lists every member, and Get-DistributionGroupMember hands them out in pages of
//! 1,000 followed by `@odata.nextLink`.

use std::collections::BTreeSet;

use exo_writeback_ad::{AdConfig, AdConnection};
use exo_writeback_core::secret::Secret;
use serde_json::json;

use crate::common::*;

const MEMBERS: &str = "Get-DistributionGroupMember";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_5000_member_group_is_seeded_and_paged() {
    let (dc, sim, added) = seeded_from_lab(5000).await;
    assert_eq!(added.recipients, 7, "4 groups and 3 contacts: {added:?}");

    // The DC's own view, read 1,500 values at a time as Windows does above MaxValRange.
    let mut cfg = AdConfig::new(dc.url.clone(), dc.bind_dn.clone());
    cfg.ca_file = Some(dc.ca_file.clone());
    cfg.password_file = Some(dc.password_file.clone());
    let mut conn = AdConnection::connect(&cfg, Secret::new(dc.password()))
        .await
        .unwrap();
    conn.set_value_range(Some(1500));
    let before = conn.stats().range_requests;
    let big = conn
        .read_by_dn(&format!("CN=dl-big,OU=Groups,{}", dc.base_dn), &["member"])
        .await
        .unwrap()
        .expect("dl-big exists");
    assert_eq!(big.attributes.get("member").len(), 5000);
    assert_eq!(
        conn.stats().range_requests - before,
        3,
        "1,500 + 3 more ranges (1500-2999, 3000-4499, 4500-5999)"
    );

    let token = sim.token().await;
    let params = json!({"Identity": "dl-big@contoso.example", "ResultSize": "Unlimited"});
    let (members, pages) = sim.get_all_of(&token, MEMBERS, params, 1000).await;
    assert_eq!(pages, 5, "pages of 1,000 followed by @odata.nextLink");
    let mut aliases = BTreeSet::new();
    for m in &members {
        assert_eq!(m["RecipientTypeDetails"], "UserMailbox", "{m}");
        assert!(
            aliases.insert(m["Alias"].as_str().unwrap().to_string()),
            "twice: {m}"
        );
    }
    let expected: BTreeSet<String> = (1..=5000).map(|i| format!("mbx{i:05}")).collect();
    assert_eq!(aliases, expected);
}
