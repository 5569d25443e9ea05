//! `exo-writeback check` warns when the bind identity is privileged (issue 18): a member,
//! directly or through nesting, of Domain Admins, Enterprise Admins, Administrators, the
//! operator groups …, or an account with adminCount=1 — and says nothing of the kind for a
//! least-privilege service account.

use std::os::unix::fs::PermissionsExt;

use exo_writeback_ad::{AdConfig, AdConnection};
use exo_writeback_core::directory::{AttrValue, Attributes};
use exo_writeback_core::secret::Secret;
use exo_writeback_testlab::LabDc;

use crate::check::{check, config_for};

fn text(s: &str) -> AttrValue {
    AttrValue::Text(s.to_string())
}

async fn admin(dc: &LabDc) -> AdConnection {
    let mut config = AdConfig::new(dc.url.clone(), dc.bind_dn.clone());
    config.ca_file = Some(dc.ca_file.clone());
    config.password_file = Some(dc.password_file.clone());
    AdConnection::connect(&config, Secret::new(dc.password()))
        .await
        .expect("bind as the lab administrator")
}

/// Creates an enabled user `sam` at `dn` with a fresh password (returned), through `ad`.
pub(crate) async fn create_account(ad: &AdConnection, dn: &str, sam: &str) -> String {
    let password = format!("Svc-{}-Passw0rd", uuid::Uuid::new_v4().simple());
    let quoted: Vec<u8> = format!("\"{password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let mut attrs = Attributes::new();
    attrs.insert("objectClass", vec![text("user")]);
    attrs.insert("sAMAccountName", vec![text(sam)]);
    attrs.insert("unicodePwd", vec![AttrValue::Bytes(quoted)]);
    attrs.insert("userAccountControl", vec![text("512")]);
    ad.add(dn, &attrs).await.expect("create the account");
    password
}

/// A plain user in CN=Users (no group but Domain Users, no rights granted), as the service
/// account of docs/least-privilege.md starts out. Returns `(DN, password)`.
async fn plain_account(dc: &LabDc, sam: &str) -> (String, String) {
    let dn = format!("CN={sam},CN=Users,{}", dc.base_dn);
    let password = create_account(&admin(dc).await, &dn, sam).await;
    (dn, password)
}

#[tokio::test]
async fn a_privileged_bind_identity_is_warned_about() {
    let dc = LabDc::shared();
    // The lab binds as Administrator: Domain/Enterprise/Schema Admins, Administrators,
    // adminCount=1. A warning, not a failure.
    let run =
        tokio::task::spawn_blocking(|| check(&LabDc::shared().config_file, &["--only", "ad"]))
            .await
            .expect("join");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for needle in [
        "warning: the bind identity is privileged",
        "CN=Administrator,CN=Users,",
        "Domain Admins",
        "Enterprise Admins",
        "Schema Admins",
        "Administrators",
        "adminCount=1",
        "docs/least-privilege.md",
    ] {
        assert!(run.stdout.contains(needle), "{needle:?} in {}", run.stdout);
    }
    let json = tokio::task::spawn_blocking(|| {
        check(&LabDc::shared().config_file, &["--only", "ad", "--json"])
    })
    .await
    .expect("join");
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let account = &v["ad"]["bind_account"];
    assert_eq!(account["privileged"], true, "{v}");
    assert!(
        account["dn"]
            .as_str()
            .is_some_and(|d| d.starts_with("CN=Administrator,CN=Users,")),
        "{v}"
    );
    let reasons = account["reasons"].as_array().expect("reasons");
    assert!(
        reasons.iter().any(|r| r == "member of Domain Admins"),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r == "adminCount=1"), "{reasons:?}");

    // The least-privilege service account: no warning.
    let sam = format!("svc{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let (dn, password) = plain_account(dc, &sam).await;
    let config = config_for(dc, |t, _| {
        t.replace(
            &format!("bind_dn = \"{}\"", dc.bind_dn),
            &format!("bind_dn = \"{dn}\""),
        )
    });
    std::fs::write(&config.password_file, &password).unwrap();
    std::fs::set_permissions(
        &config.password_file,
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let path = config.path.clone();
    let run = tokio::task::spawn_blocking(move || check(&path, &["--only", "ad"]))
        .await
        .expect("join");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains("is privileged"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("bind account: {dn} (not privileged)")),
        "{}",
        run.stdout
    );
    let path = config.path.clone();
    let json = tokio::task::spawn_blocking(move || check(&path, &["--only", "ad", "--json"]))
        .await
        .expect("join");
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["ad"]["bind_account"]["privileged"], false, "{v}");
    assert_eq!(
        v["ad"]["bind_account"]["reasons"],
        serde_json::json!([]),
        "{v}"
    );
}
