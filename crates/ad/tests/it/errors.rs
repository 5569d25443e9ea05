use exo_writeback_ad::{AdConfig, AdConnection, AdError};
use exo_writeback_core::directory::{AttrChange, AttrValue, Attributes, ModOp, ObjectModify};
use exo_writeback_core::secret::Secret;
use exo_writeback_testlab::LabDc;
use tokio::net::{TcpListener, TcpStream};

use crate::{connect, lab_config, new_contact, text, unique};

async fn connect_err(config: &AdConfig, password: &str) -> AdError {
    AdConnection::connect(config, Secret::new(password))
        .await
        .expect_err("connect should fail")
}

#[tokio::test]
async fn wrong_password_names_the_bind_identity_and_not_the_password() {
    let dc = LabDc::shared();
    let err = connect_err(&lab_config(dc), "Wrong-Passw0rd-123").await;
    let msg = err.to_string();
    assert!(matches!(err, AdError::InvalidCredentials { .. }), "{err:?}");
    assert!(
        msg.contains("invalid credentials for Administrator@lab.example.test"),
        "{msg}"
    );
    assert!(msg.contains("52e"), "{msg}");
    assert!(!msg.contains("Wrong-Passw0rd-123") && !format!("{err:?}").contains("Wrong-Passw0rd"));
}

#[tokio::test]
async fn bind_identity_forms_upn_domain_user_and_dn() {
    let dc = LabDc::shared();
    for identity in [
        "Administrator@lab.example.test".to_string(),
        "LAB\\Administrator".to_string(),
        format!("CN=Administrator,CN=Users,{}", dc.base_dn),
    ] {
        let mut config = lab_config(dc);
        config.bind_dn = identity.clone();
        let conn = AdConnection::connect(&config, Secret::new(dc.password()))
            .await
            .unwrap_or_else(|e| panic!("bind as {identity}: {e}"));
        assert_eq!(conn.base_dn(), dc.base_dn);
    }
}

#[tokio::test]
async fn untrusted_certificate_says_unknown_issuer_and_ca_file() {
    let dc = LabDc::shared();
    let mut config = lab_config(dc);
    config.ca_file = None; // the system store does not know the lab CA
    let err = connect_err(&config, &dc.password()).await;
    let msg = err.to_string();
    assert!(matches!(err, AdError::Certificate { .. }), "{err:?}");
    assert!(
        msg.contains("unknown issuer") && msg.contains("ca_file"),
        "{msg}"
    );
}

#[tokio::test]
async fn wrong_ca_file_is_reported() {
    let dc = LabDc::shared();
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("ca.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let mut config = lab_config(dc);
    config.ca_file = Some(bogus.clone());
    let msg = connect_err(&config, &dc.password()).await.to_string();
    assert!(
        msg.contains(&bogus.display().to_string()) && msg.contains("ca_file"),
        "{msg}"
    );
    config.ca_file = Some(dir.path().join("missing.pem"));
    let msg = connect_err(&config, &dc.password()).await.to_string();
    assert!(msg.contains("missing.pem"), "{msg}");
}

/// Forward 127.0.0.1:<port> to the DC: the DC's certificate names its own address, not
/// 127.0.0.1, so connecting through the forwarder is a name mismatch.
#[tokio::test]
async fn certificate_name_mismatch_is_reported() {
    let dc = LabDc::shared();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = format!("{}:636", dc.addr);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    let mut config = lab_config(dc);
    config.url = format!("ldaps://127.0.0.1:{port}");
    let err = connect_err(&config, &dc.password()).await;
    let msg = err.to_string();
    assert!(matches!(err, AdError::Certificate { .. }), "{err:?}");
    assert!(
        msg.contains("name mismatch") && msg.contains("127.0.0.1"),
        "{msg}"
    );
}

#[tokio::test]
async fn unreachable_dc_names_address_and_timeout() {
    let dc = LabDc::shared();
    // Nothing listens on port 1.
    let mut config = lab_config(dc);
    config.url = "ldaps://127.0.0.1:1".into();
    config.timeout_secs = 3;
    let err = connect_err(&config, &dc.password()).await;
    let msg = err.to_string();
    assert!(matches!(err, AdError::Unreachable { .. }), "{err:?}");
    assert!(
        msg.contains("127.0.0.1:1") && msg.contains("timeout 3 s"),
        "{msg}"
    );

    // A server that accepts but never answers: the connect timeout fires.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    config.url = format!("ldaps://127.0.0.1:{port}");
    config.timeout_secs = 1;
    let err = connect_err(&config, &dc.password()).await;
    let msg = err.to_string();
    assert!(matches!(err, AdError::Unreachable { .. }), "{err:?}");
    assert!(
        msg.contains(&port.to_string()) && msg.contains("timeout 1 s"),
        "{msg}"
    );
    hold.abort();
}

#[tokio::test]
async fn plain_ldap_is_refused_unless_allowed() {
    let dc = LabDc::shared();
    let mut config = lab_config(dc);
    config.url = format!("ldap://{}", dc.addr);
    let err = connect_err(&config, &dc.password()).await;
    assert!(matches!(err, AdError::InsecureRefused { .. }), "{err:?}");
    assert!(err.to_string().contains("allow_insecure_ldap"));

    // Allowed, the plain connection is made; the lab DC (Samba's default) then refuses a
    // simple bind without TLS, and the error says so.
    config.allow_insecure_ldap = true;
    let err = connect_err(&config, &dc.password()).await;
    match &err {
        AdError::BindRefused { code: 8, .. } => {
            let text = err.to_string();
            assert!(
                text.contains("strongerAuthRequired")
                    && text.contains("use ldaps://")
                    && text.contains("ad.auth = \"kerberos\""),
                "{text}"
            )
        }
        other => panic!("unexpected {other:?}"),
    }
    config.allow_insecure_ldap = false;

    // StartTLS on the same port is verified TLS.
    config.starttls = true;
    let conn = AdConnection::connect(&config, Secret::new(dc.password()))
        .await
        .unwrap();
    assert_eq!(conn.transport(), exo_writeback_ad::Transport::StartTls);
}

/// unicodePwd for an add over LDAPS: the quoted password in UTF-16LE.
fn unicode_pwd(password: &str) -> AttrValue {
    AttrValue::Bytes(
        format!("\"{password}\"")
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect(),
    )
}

async fn new_user(admin: &AdConnection, name: &str, password: &str, uac: &str) -> String {
    let dn = format!("CN={name},CN=Users,{}", admin.base_dn());
    let mut attrs = Attributes::new();
    attrs.insert("objectClass", vec![text("user")]);
    attrs.insert("sAMAccountName", vec![text(&name[..name.len().min(20)])]);
    attrs.insert("unicodePwd", vec![unicode_pwd(password)]);
    attrs.insert("userAccountControl", vec![text(uac)]);
    admin.add(&dn, &attrs).await.expect("create test user");
    dn
}

#[tokio::test]
async fn insufficient_access_names_object_attribute_and_right() {
    let dc = LabDc::shared();
    let admin = connect(dc).await;
    let password = "Lab-Passw0rd!x";
    let name = unique("lowpriv");
    let user_dn = new_user(&admin, &name, password, "512").await;
    let target = new_contact(&admin, &unique("protected"), &[]).await;

    let mut config = lab_config(dc);
    config.bind_dn = user_dn.clone();
    let low = AdConnection::connect(&config, Secret::new(password))
        .await
        .unwrap();
    let err = low
        .modify(&ObjectModify {
            dn: target.clone(),
            changes: vec![AttrChange {
                op: ModOp::Replace,
                attribute: "extensionAttribute7".into(),
                values: vec![text("x")],
            }],
        })
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, AdError::InsufficientAccess { .. }), "{err:?}");
    assert!(
        msg.contains(&target)
            && msg.contains("extensionAttribute7")
            && msg.contains("Write Property"),
        "{msg}"
    );
    admin.delete(&target).await.unwrap();
    admin.delete(&user_dn).await.unwrap();
}

#[tokio::test]
async fn disabled_account_is_named() {
    let dc = LabDc::shared();
    let admin = connect(dc).await;
    let password = "Lab-Passw0rd!y";
    let user_dn = new_user(&admin, &unique("disabled"), password, "514").await;
    let mut config = lab_config(dc);
    config.bind_dn = user_dn.clone();
    let err = connect_err(&config, password).await;
    let msg = err.to_string();
    assert!(matches!(err, AdError::AccountUnusable { .. }), "{err:?}");
    assert!(msg.contains("disabled") && msg.contains(&user_dn), "{msg}");
    assert!(!msg.contains(password));
    admin.delete(&user_dn).await.unwrap();
}
