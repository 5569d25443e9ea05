//! Item 8 of issue 11: the date literal of the change-polling filter is a form Microsoft
//! documents (`M/d/yyyy h:mm:ss tt`); the emulator refuses undocumented forms such as ISO 8601
//! with `Z`.

use exo_sim::SimCloud;
use futures::StreamExt;

use crate::support::*;

#[test]
fn the_filter_uses_the_documented_en_us_date_form() {
    let t: jiff::Timestamp = "2017-08-01T14:00:00.9Z".parse().expect("ts");
    assert_eq!(
        exo_writeback_exo::filter::when_changed_filter(t),
        "WhenChangedUTC -ge '8/1/2017 2:00:00 PM'"
    );
    let t: jiff::Timestamp = "2024-12-31T00:05:09Z".parse().expect("ts");
    assert_eq!(
        exo_writeback_exo::filter::when_changed_filter(t),
        "WhenChangedUTC -ge '12/31/2024 12:05:09 AM'"
    );
}

#[tokio::test]
async fn change_polling_is_accepted_by_the_emulators_strict_filter() {
    let sim = spawn(tenant(40, SimCloud::Worldwide, None)).await;
    let c = client(&section(&sim.base_url(), TENANT_ID, ""));
    let state = sim.state();
    state.advance_clock(3600);
    let since = state.now();
    state.advance_clock(2);
    let target = state.mailboxes_after(None, 1)[0].guid.to_string();
    state
        .update_mailbox(&target, |m| m.set_custom_attribute(4, "polled"))
        .expect("update");
    let mut stream = c.changed_since(since, jiff::SignedDuration::ZERO);
    let mut seen = Vec::new();
    while let Some(item) = stream.next().await {
        seen.push(item.expect("the filter is accepted"));
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].custom_attributes[3].as_deref(), Some("polled"));
}
