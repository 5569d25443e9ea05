//! Item 3 of issue 11: national clouds. Each preset asks Entra ID for its own cloud's Exchange
//! Online scope; the emulator, set to a cloud, issues tokens only for that scope (and refuses
//! another with AADSTS500011, as Entra ID refuses an unknown resource).

use exo_sim::{Endpoint, SimCloud};

use crate::support::*;

#[tokio::test]
async fn every_cloud_preset_gets_a_token_for_its_own_exchange_resource() {
    let cases = [
        ("worldwide", SimCloud::Worldwide),
        ("gcc-high", SimCloud::GccHigh),
        ("dod", SimCloud::Dod),
        ("china", SimCloud::China),
    ];
    for (preset, cloud) in cases {
        let sim = spawn(tenant(2, cloud, None)).await;
        let c = client(&section(
            &sim.base_url(),
            TENANT_ID,
            &format!("cloud = \"{preset}\""),
        ));
        assert_eq!(c.settings().scope, cloud.scope(), "{preset}");
        c.check_token()
            .await
            .unwrap_or_else(|e| panic!("{preset}: {e}"));
        let (mailboxes, errors) = drain(c.mailboxes(None)).await;
        assert!(errors.is_empty(), "{preset}: {errors:?}");
        assert_eq!(mailboxes.len(), 2, "{preset}");
    }
}

#[tokio::test]
async fn another_clouds_scope_is_refused_as_an_unknown_resource() {
    let sim = spawn(tenant(2, SimCloud::Dod, None)).await;
    let c = client(&section(&sim.base_url(), TENANT_ID, "cloud = \"gcc-high\""));
    let err = c
        .check_token()
        .await
        .expect_err("a GCC High scope in a DoD tenant")
        .to_string();
    assert!(err.contains("AADSTS500011"), "{err}");
    assert!(err.contains("https://outlook.office365.us"), "{err}");
    assert_eq!(sim.state().request_count(Endpoint::Invoke), 0);
}
