use exo_writeback_ad::AdError;
use exo_writeback_core::directory::{AttrChange, AttrValue, ModOp, ObjectModify};
use exo_writeback_testlab::LabDc;

use crate::{connect, new_contact, text, unique};

fn change(op: ModOp, attribute: &str, values: Vec<AttrValue>) -> AttrChange {
    AttrChange {
        op,
        attribute: attribute.into(),
        values,
    }
}

#[tokio::test]
async fn binary_values_round_trip_byte_exact() {
    let dc = LabDc::shared();
    let conn = connect(dc).await;
    let dn = new_contact(&conn, &unique("binary"), &[]).await;
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let reversed: Vec<u8> = (0..=255u8).rev().collect();

    conn.modify(&ObjectModify {
        dn: dn.clone(),
        changes: vec![
            change(
                ModOp::Replace,
                "msExchSafeSendersHash",
                vec![AttrValue::Bytes(all_bytes.clone())],
            ),
            change(
                ModOp::Replace,
                "msExchBlockedSendersHash",
                vec![AttrValue::Bytes(reversed.clone())],
            ),
        ],
    })
    .await
    .unwrap();
    let obj = conn
        .read_by_dn(&dn, &["msExchSafeSendersHash", "msExchBlockedSendersHash"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        obj.attributes.get("msExchSafeSendersHash"),
        &[AttrValue::Bytes(all_bytes)]
    );
    assert_eq!(
        obj.attributes.get("msExchBlockedSendersHash"),
        &[AttrValue::Bytes(reversed)]
    );

    // Printable bytes in an octet-string attribute stay bytes (decoded by syntax, not content).
    conn.modify(&ObjectModify {
        dn: dn.clone(),
        changes: vec![change(
            ModOp::Replace,
            "msExchSafeSendersHash",
            vec![AttrValue::Bytes(b"ABCD".to_vec())],
        )],
    })
    .await
    .unwrap();
    let obj = conn
        .read_by_dn(&dn, &["msExchSafeSendersHash"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        obj.attributes.get("msExchSafeSendersHash"),
        &[AttrValue::Bytes(b"ABCD".to_vec())]
    );

    // Delete with no values removes the attribute.
    conn.modify(&ObjectModify {
        dn: dn.clone(),
        changes: vec![change(ModOp::Delete, "msExchSafeSendersHash", vec![])],
    })
    .await
    .unwrap();
    let obj = conn
        .read_by_dn(&dn, &["msExchSafeSendersHash"])
        .await
        .unwrap()
        .unwrap();
    assert!(obj.attributes.get("msExchSafeSendersHash").is_empty());
    conn.delete(&dn).await.unwrap();
}

#[tokio::test]
async fn text_add_delete_replace_with_permissive_modify() {
    let dc = LabDc::shared();
    let conn = connect(dc).await;
    let name = unique("textmod");
    let dn = new_contact(
        &conn,
        &name,
        &[(
            "proxyAddresses",
            vec![text("smtp:a@x.test"), text("smtp:b@x.test")],
        )],
    )
    .await;

    conn.modify(&ObjectModify {
        dn: dn.clone(),
        changes: vec![
            // already present: permissive modify makes this a success, not error 20
            change(
                ModOp::Add,
                "proxyAddresses",
                vec![text("smtp:a@x.test"), text("x500:/o=Lab/cn=é")],
            ),
            // absent: permissive modify makes this a success, not error 16
            change(
                ModOp::Delete,
                "proxyAddresses",
                vec![text("smtp:b@x.test"), text("smtp:never@x.test")],
            ),
            change(
                ModOp::Replace,
                "extensionAttribute1",
                vec![text("Grüße, \"quoted\" (1)")],
            ),
            change(
                ModOp::Replace,
                "msExchHideFromAddressLists",
                vec![text("TRUE")],
            ),
        ],
    })
    .await
    .unwrap();
    let obj = conn
        .read_by_dn(
            &dn,
            &[
                "proxyAddresses",
                "extensionAttribute1",
                "msExchHideFromAddressLists",
            ],
        )
        .await
        .unwrap()
        .unwrap();
    let mut proxies: Vec<_> = obj.attributes.get("proxyAddresses").to_vec();
    proxies.sort();
    assert_eq!(
        proxies,
        vec![text("smtp:a@x.test"), text("x500:/o=Lab/cn=é")]
    );
    assert_eq!(
        obj.attributes.get("extensionAttribute1"),
        &[text("Grüße, \"quoted\" (1)")]
    );
    assert_eq!(
        obj.attributes.get("msExchHideFromAddressLists"),
        &[text("TRUE")]
    );

    // Replace with no values clears the attribute.
    conn.modify(&ObjectModify {
        dn: dn.clone(),
        changes: vec![change(ModOp::Replace, "extensionAttribute1", vec![])],
    })
    .await
    .unwrap();
    let obj = conn
        .read_by_dn(&dn, &["extensionAttribute1"])
        .await
        .unwrap()
        .unwrap();
    assert!(obj.attributes.get("extensionAttribute1").is_empty());
    conn.delete(&dn).await.unwrap();
}

#[tokio::test]
async fn constraint_errors_name_the_result_code() {
    let dc = LabDc::shared();
    let conn = connect(dc).await;
    let dn = new_contact(&conn, &unique("constraint"), &[]).await;
    let cases = [
        // two values on a single-valued attribute
        change(
            ModOp::Replace,
            "extensionAttribute1",
            vec![text("a"), text("b")],
        ),
        // not a boolean
        change(
            ModOp::Replace,
            "msExchHideFromAddressLists",
            vec![text("maybe")],
        ),
        // longer than rangeUpper 1024
        change(
            ModOp::Replace,
            "extensionAttribute1",
            vec![text(&"x".repeat(1025))],
        ),
    ];
    for c in cases {
        let what = format!("{c:?}");
        let err = conn
            .modify(&ObjectModify {
                dn: dn.clone(),
                changes: vec![c],
            })
            .await
            .expect_err(&what);
        match &err {
            AdError::Ldap { code, .. } => assert!([19, 20, 21].contains(code), "{what}: {err}"),
            other => panic!("{what}: unexpected {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("LDAP result") && msg.contains(&dn), "{msg}");
    }
    let missing = conn
        .modify(&ObjectModify {
            dn: format!("CN={},CN=Users,{}", unique("nobody"), dc.base_dn),
            changes: vec![change(ModOp::Replace, "description", vec![text("x")])],
        })
        .await
        .unwrap_err();
    assert!(
        matches!(missing, AdError::NoSuchObject { .. }),
        "{missing:?}"
    );
    conn.delete(&dn).await.unwrap();
}
