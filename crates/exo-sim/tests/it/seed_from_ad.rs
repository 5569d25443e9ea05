//! `--seed-from-ad` against a real lab DC (Samba AD, started by lab/up).

use exo_sim::seed_ad::{AdSeedOptions, USER_FILTER, seed_from_ad};
use exo_writeback_ad::{AdConfig, AdConnection, SearchScope};
use exo_writeback_core::guid::uuid_from_immutable_id;
use exo_writeback_core::secret::Secret;
use exo_writeback_testlab::{LabDc, LabOptions};
use serde_json::{Value, json};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailboxes_from_ad_carry_each_users_object_guid() {
    let dc = tokio::task::spawn_blocking(|| LabDc::start(LabOptions::default().with_users(12)))
        .await
        .unwrap()
        .expect("lab DC starts");
    let sim = start(0).await;
    let state = sim.handle.state();
    let options = AdSeedOptions {
        tenant_domain: TENANT.into(),
        not_cloud_managed: 0.25,
    };
    let added = seed_from_ad(&state, &dc.config_file, &options)
        .await
        .expect("seeding from AD");
    assert!(added.mailboxes >= 12, "{added:?}");
    // seeding again adds nothing (the same users give the same mailboxes)
    assert_eq!(
        seed_from_ad(&state, &dc.config_file, &options)
            .await
            .unwrap(),
        Default::default()
    );

    // Read the users independently and compare over the Exchange protocol.
    let mut cfg = AdConfig::new(dc.url.clone(), dc.bind_dn.clone());
    cfg.ca_file = Some(dc.ca_file.clone());
    cfg.password_file = Some(dc.password_file.clone());
    let conn = AdConnection::connect(&cfg, Secret::new(dc.password()))
        .await
        .unwrap();
    let users = conn
        .search(
            &dc.base_dn,
            SearchScope::Subtree,
            USER_FILTER,
            &["mail", "userPrincipalName"],
        )
        .await
        .unwrap();
    let token = sim.token().await;
    let mut checked = 0;
    for u in &users {
        let Some(mail) = u.attributes.get("mail").first().and_then(|v| v.as_text()) else {
            continue;
        };
        let (status, v) = sim
            .invoke(&token, "Get-Mailbox", json!({"Identity": mail}))
            .await;
        assert_eq!(status, 200, "{mail}: {v}");
        let rec: &Value = &v["value"][0];
        let immutable = rec["ImmutableId"].as_str().unwrap();
        assert_eq!(
            uuid_from_immutable_id(immutable).unwrap(),
            u.object_guid,
            "{mail}"
        );
        assert_eq!(rec["IsDirSynced"], true);
        assert!(
            !rec["ExternalDirectoryObjectId"]
                .as_str()
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            rec["PrimarySmtpAddress"].as_str().unwrap().to_lowercase(),
            mail.to_lowercase()
        );
        checked += 1;
    }
    assert!(checked >= 12, "{checked}");

    // The binary's --seed-from-ad gives the same mailboxes.
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_exo-sim"))
        .args(["serve", "--tenant", TENANT, "--client-id", CLIENT_ID])
        .arg("--client-secret-file")
        .arg(&secret_file)
        .arg("--seed-from-ad")
        .arg(&dc.config_file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    let stats: Value = reqwest::get(format!("{base}/_sim/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["mailboxes"], json!(state.mailbox_count()));
    let any = state.mailboxes_after(None, 1).remove(0);
    let doc: Value = reqwest::get(format!(
        "{base}/_sim/mailboxes/{}",
        any.external_directory_object_id
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(doc["ImmutableId"], any.immutable_id.as_str());
    child.kill().unwrap();
    child.wait().unwrap();
}
