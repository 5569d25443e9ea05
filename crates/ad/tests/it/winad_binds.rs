//! Bind failures worded exactly as Windows words them (winad): each AD sub-code named, and
//! the signing requirement on plain LDAP said with what to do.

use exo_writeback_ad::{AdConnection, AdError};
use exo_writeback_core::secret::Secret;
use exo_writeback_winad::{AccountState, ForestSpec, WinAd};

use crate::forest_routing::{PASSWORD, config};

#[tokio::test]
async fn windows_bind_failures_are_named_by_their_sub_code() {
    let mut spec = ForestSpec::root_and_child(PASSWORD);
    for (name, state) in [
        ("locked", AccountState::Locked),
        ("mustchange", AccountState::MustChangePassword),
        ("hours", AccountState::LogonHours),
        ("disabled", AccountState::Disabled),
    ] {
        spec = spec.with_account(
            &format!("CN={name},CN=Users,DC=corp,DC=example"),
            &format!("{name}@corp.example"),
            "Right-Pa55",
            state,
        );
    }
    let winad = WinAd::start(spec).await.expect("winad");
    let tmp = tempfile::tempdir().expect("tempdir");
    for (name, part) in [
        ("locked", "locked out"),
        ("mustchange", "must be changed"),
        ("hours", "logon hours"),
        ("disabled", "disabled"),
    ] {
        let mut c = config(&winad, &tmp);
        c.bind_dn = format!("{name}@corp.example");
        let err = AdConnection::connect(&c, Secret::new("Right-Pa55"))
            .await
            .expect_err("an unusable account");
        assert!(
            matches!(&err, AdError::AccountUnusable { problem, .. } if problem.contains(part)),
            "{name}: {err:?}"
        );
    }
    let err = AdConnection::connect(&config(&winad, &tmp), Secret::new("wrong"))
        .await
        .expect_err("a wrong password");
    assert!(
        matches!(&err, AdError::InvalidCredentials { diagnostic, .. } if diagnostic.contains("data 52e")),
        "{err:?}"
    );
    // LDAP signing required: a simple bind on plain 389 is refused with Windows' 00002028.
    let mut plain = config(&winad, &tmp);
    plain.url = format!("ldap://{}", winad.dc("dc1.corp.example").ldap);
    plain.allow_insecure_ldap = true;
    let err = AdConnection::connect(&plain, Secret::new(PASSWORD))
        .await
        .expect_err("signing required");
    let text = err.to_string();
    assert!(
        matches!(err, AdError::BindRefused { code: 8, .. })
            && text.contains("00002028")
            && text.contains("use ldaps://"),
        "{text}"
    );
}
