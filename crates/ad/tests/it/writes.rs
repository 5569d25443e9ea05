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

/// A group's membership is written as single `member` values added and deleted (issue 17),
/// never a replace of the list: deletes of values the group holds and adds of values it lacks,
/// planned from the list just read, in one modify — the exact list results.
///
/// `member` is a linked attribute, which Samba handles apart from other attributes (its
/// repl_meta_data link code), and the lab's Samba does **not** honour the permissive-modify
/// control for it: adding a member the group already has fails the whole modify with
/// entryAlreadyExists (68), deleting one it lacks with unwillingToPerform (53) — where Windows,
/// with the control, succeeds (MS-ADTS 3.1.1.3.4.1.8 LDAP_SERVER_PERMISSIVE_MODIFY_OID). The
/// lab is the stricter of the two, so the agent must send exactly the difference from a fresh
/// read, never a blind add or delete; this test pins both facts.
#[tokio::test]
async fn member_values_are_added_and_deleted_one_by_one() {
    let dc = LabDc::shared();
    let conn = connect(dc).await;
    let a = new_contact(&conn, &unique("mem-a"), &[]).await;
    let b = new_contact(&conn, &unique("mem-b"), &[]).await;
    let c = new_contact(&conn, &unique("mem-c"), &[]).await;
    let group = format!("CN={},CN=Users,{}", unique("mem-group"), conn.base_dn());
    let mut attrs = exo_writeback_core::directory::Attributes::new();
    attrs.insert("objectClass", vec![text("group")]);
    attrs.insert("member", vec![text(&a), text(&b)]);
    conn.add(&group, &attrs).await.expect("create test group");
    let members = || async {
        let obj = conn.read_by_dn(&group, &["member"]).await.unwrap().unwrap();
        let mut m: Vec<String> = obj
            .attributes
            .get("member")
            .iter()
            .map(|v| v.as_text().unwrap().to_lowercase())
            .collect();
        m.sort();
        m
    };

    // b leaves, c joins: the difference from what the group holds.
    conn.modify(&ObjectModify {
        dn: group.clone(),
        changes: vec![
            change(ModOp::Delete, "member", vec![text(&b)]),
            change(ModOp::Add, "member", vec![text(&c)]),
        ],
    })
    .await
    .expect("incremental member modify");
    let mut want = vec![a.to_lowercase(), c.to_lowercase()];
    want.sort();
    assert_eq!(members().await, want);

    // The same modify again (a retry after the first one reached the DC): refused whole,
    // nothing changed — a stale plan fails, it never half-applies.
    let again = conn
        .modify(&ObjectModify {
            dn: group.clone(),
            changes: vec![
                change(ModOp::Delete, "member", vec![text(&b)]),
                change(ModOp::Add, "member", vec![text(&c)]),
            ],
        })
        .await
        .expect_err("Samba refuses deleting an absent member even with permissive modify");
    assert!(
        matches!(&again, AdError::Ldap { code: 53, .. }),
        "{again:?}"
    );
    let present = conn
        .modify(&ObjectModify {
            dn: group.clone(),
            changes: vec![change(ModOp::Add, "member", vec![text(&a)])],
        })
        .await
        .expect_err("Samba refuses adding a present member even with permissive modify");
    assert!(
        matches!(&present, AdError::Ldap { code: 68, .. }),
        "{present:?}"
    );
    assert_eq!(members().await, want);
    for dn in [&group, &a, &b, &c] {
        conn.delete(dn).await.unwrap();
    }
}
