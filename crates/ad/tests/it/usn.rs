//! The DC's change mark (rootDSE highestCommittedUSN, the NTDS Settings object's invocationId)
//! and the search for objects changed since it: modified, moved out of the search scope and
//! deleted objects are found (from the naming context, with Show Deleted); an unchanged one is
//! not; a mark of another DC identity is refused.

use exo_writeback_ad::{DcIdentity, UsnMark};
use exo_writeback_core::directory::{AttrChange, Attributes, ModOp, ObjectModify};
use exo_writeback_testlab::LabDc;
use uuid::Uuid;

use crate::{connect, text, unique};

#[tokio::test]
async fn changed_since_the_mark_finds_modified_moved_and_deleted_objects_and_not_unchanged_ones() {
    let dc = LabDc::shared();
    let conn = connect(dc).await;
    let mut ou_attrs = Attributes::new();
    ou_attrs.insert("objectClass", vec![text("organizationalUnit")]);
    let scope = format!("OU={},{}", unique("usn-scope"), dc.base_dn);
    let outside = format!("OU={},{}", unique("usn-out"), dc.base_dn);
    conn.add(&scope, &ou_attrs).await.unwrap();
    conn.add(&outside, &ou_attrs).await.unwrap();
    let mut guids = Vec::new();
    for cn in ["unchanged", "modified", "moved", "deleted"] {
        let dn = format!("CN={cn},{scope}");
        let mut contact = Attributes::new();
        contact.insert("objectClass", vec![text("contact")]);
        conn.add(&dn, &contact).await.unwrap();
        let o = conn.read_by_dn(&dn, &[]).await.unwrap().expect("created");
        guids.push(o.object_guid);
    }

    let mark = conn.usn_mark().await.expect("the mark");
    assert_eq!(
        Some(&mark.dc.ds_service_name),
        conn.root_dse().ds_service_name.as_ref()
    );
    assert!(mark.dc.ds_service_name.starts_with("CN=NTDS Settings,"));
    assert_ne!(mark.dc.invocation_id, Uuid::nil());
    assert!(mark.usn > 0);
    // Nothing changed yet.
    let none = conn
        .changed_since(&mark, &dc.base_dn, &guids)
        .await
        .unwrap();
    assert_eq!(none, Vec::<Uuid>::new());

    conn.modify(&ObjectModify {
        dn: format!("CN=modified,{scope}"),
        changes: vec![AttrChange {
            op: ModOp::Replace,
            attribute: "description".into(),
            values: vec![text("changed after the mark")],
        }],
    })
    .await
    .unwrap();
    // Moved out of the search scope (another OU), by the administrator.
    let ldif = format!(
        "dn: CN=moved,{scope}\nchangetype: modrdn\nnewrdn: CN=moved\ndeleteoldrdn: 1\nnewsuperior: {outside}\n"
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), ldif).unwrap();
    let out = dc
        .ldap_tool("ldapmodify")
        .arg("-f")
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    conn.delete(&format!("CN=deleted,{scope}")).await.unwrap();

    let mut changed = conn
        .changed_since(&mark, &dc.base_dn, &guids)
        .await
        .unwrap();
    changed.sort();
    let mut want = guids[1..].to_vec();
    want.sort();
    assert_eq!(changed, want);
    // The mark read now is past them all.
    let later = conn.usn_mark().await.unwrap();
    assert!(later.usn > mark.usn);
    assert_eq!(later.dc, mark.dc);
    let none = conn
        .changed_since(&later, &dc.base_dn, &guids)
        .await
        .unwrap();
    assert_eq!(none, Vec::<Uuid>::new());

    conn.delete(&format!("CN=unchanged,{scope}")).await.unwrap();
    conn.delete(&format!("CN=modified,{scope}")).await.unwrap();
    conn.delete(&format!("CN=moved,{outside}")).await.unwrap();
    conn.delete(&scope).await.unwrap();
    conn.delete(&outside).await.unwrap();
}

#[tokio::test]
async fn a_mark_of_another_dc_or_incarnation_is_refused() {
    let dc = LabDc::shared();
    let conn = connect(dc).await;
    let mark = conn.usn_mark().await.unwrap();
    for other in [
        DcIdentity {
            invocation_id: Uuid::nil(),
            ..mark.dc.clone()
        },
        DcIdentity {
            ds_service_name: "CN=NTDS Settings,CN=DC9,CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,DC=lab,DC=example,DC=test".into(),
            ..mark.dc.clone()
        },
    ] {
        let foreign = UsnMark {
            dc: other,
            ..mark.clone()
        };
        let e = conn
            .changed_since(&foreign, &dc.base_dn, &[Uuid::new_v4()])
            .await
            .expect_err("another DC's mark");
        assert!(e.to_string().contains("mean nothing on another"), "{e}");
    }
}
