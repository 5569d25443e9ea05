//! The schema is read again only when it changed: a refresh reads the schema NC head's
//! `schemaInfo` (Microsoft Learn, "Schema-Info attribute": a value used to detect schema
//! changes) and keeps the cached schema when it was read under the same value.

use std::process::Command;
use std::sync::Arc;

use exo_writeback_core::schema::Schema;
use exo_writeback_testlab::{LabDc, LabOptions};

#[tokio::test]
async fn a_refresh_under_an_unchanged_schema_does_not_read_the_attribute_schema_again() {
    let dc = LabDc::shared();
    let conn = crate::connect(dc).await;
    let first = conn.refresh_schema().await.expect("the schema");
    let info = first
        .schema_info()
        .expect("the lab DC shows schemaInfo to Administrator")
        .to_vec();
    // MS-DRSR's layout, as Samba writes it: 0xFF, a 4-byte revision, an invocationId.
    assert_eq!((info.len(), info[0]), (21, 0xFF), "{info:02X?}");
    let read = conn.side().stats().search_requests;
    assert!(read > 1, "schemaInfo and the attributeSchema objects");

    let again = conn.refresh_schema().await.expect("refresh");
    assert!(Arc::ptr_eq(&first, &again), "the cached schema is kept");
    assert_eq!(
        conn.side().stats().search_requests,
        read + 1,
        "one base-object search of the schema NC head, the attributeSchema objects not read"
    );
}

#[tokio::test]
async fn an_adopted_schema_is_kept_under_its_schema_info_and_read_again_under_another() {
    // What the agent does with the schema an earlier process kept in the state.
    let dc = LabDc::shared();
    let kept = crate::connect(dc)
        .await
        .refresh_schema()
        .await
        .expect("the schema");

    let conn = crate::connect(dc).await;
    conn.adopt_schema(kept.clone());
    let refreshed = conn.refresh_schema().await.expect("refresh");
    assert!(Arc::ptr_eq(&kept, &refreshed));
    assert_eq!(conn.side().stats().search_requests, 1, "schemaInfo only");

    // Kept under another schemaInfo (the schema changed since): read again.
    let stale =
        Arc::new(Schema::new(kept.iter().cloned()).with_schema_info(Some(vec![0xFF, 0, 0, 0, 1])));
    let conn = crate::connect(dc).await;
    conn.adopt_schema(stale.clone());
    let refreshed = conn.refresh_schema().await.expect("refresh");
    assert!(!Arc::ptr_eq(&stale, &refreshed));
    assert_eq!(refreshed.schema_info(), kept.schema_info());
    assert_eq!(refreshed.len(), kept.len());
    assert!(conn.side().stats().search_requests > 1, "the full read");

    // Kept without a schemaInfo: nothing to compare, read again.
    let untagged = Arc::new(Schema::new(kept.iter().cloned()));
    let conn = crate::connect(dc).await;
    conn.adopt_schema(untagged.clone());
    let refreshed = conn.refresh_schema().await.expect("refresh");
    assert!(!Arc::ptr_eq(&untagged, &refreshed));
    assert_eq!(refreshed.schema_info(), kept.schema_info());
}

/// Adds an attributeSchema to the (own, running) DC's database with Samba's ldb tool: Samba
/// refuses schema changes over LDAP unless the DC runs with `dsdb:schema update allowed`.
fn add_attribute(dc: &LabDc, name: &str) {
    let ldif = dc.dir.join(format!("{name}.ldif"));
    let suffix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() % 1_000_000_000)
        .unwrap_or(0);
    std::fs::write(
        &ldif,
        format!(
            "dn: CN={name},CN=Schema,CN=Configuration,{base}\n\
             objectClass: top\n\
             objectClass: attributeSchema\n\
             cn: {name}\n\
             attributeID: 1.2.840.113556.1.4.7000.999.{suffix}\n\
             attributeSyntax: 2.5.5.12\n\
             oMSyntax: 64\n\
             isSingleValued: TRUE\n\
             lDAPDisplayName: {name}\n\
             searchFlags: 0\n\
             systemOnly: FALSE\n",
            base = dc.base_dn
        ),
    )
    .expect("write the LDIF");
    let out = Command::new("ldbadd")
        .arg("-H")
        .arg(dc.dir.join("private/sam.ldb"))
        .arg(format!(
            "--configfile={}",
            dc.dir.join("etc/smb.conf").display()
        ))
        .arg("--option=dsdb:schema update allowed=true")
        .arg(&ldif)
        .output()
        .expect("run ldbadd");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Added 1 record"),
        "ldbadd: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn after_a_schema_change_the_refresh_reads_the_schema_and_sees_the_new_attribute() {
    // A DC of its own: the schema change must not reach the shared DC's other tests.
    let dc = LabDc::start(LabOptions::default()).expect("start a DC");
    let conn = crate::connect(&dc).await;
    let before = conn.refresh_schema().await.expect("the schema");
    let name = "exoWritebackSchemaInfoTest";
    assert!(!before.contains(name));

    add_attribute(&dc, name);

    let reads = conn.side().stats().search_requests;
    let after = conn.refresh_schema().await.expect("refresh");
    assert!(
        after.contains(name),
        "the new attribute is in the schema read again"
    );
    assert_ne!(after.schema_info(), before.schema_info());
    assert!(
        conn.side().stats().search_requests > reads + 1,
        "the full read"
    );

    // And then unchanged again: kept.
    let reads = conn.side().stats().search_requests;
    let again = conn.refresh_schema().await.expect("refresh");
    assert!(Arc::ptr_eq(&after, &again));
    assert_eq!(conn.side().stats().search_requests, reads + 1);
}
