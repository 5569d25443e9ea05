//! docs/least-privilege.md, proved on a lab DC: a service account holding exactly the
//! documented rights — granted with the documented `samba-tool dsacl set` command, with the
//! attribute GUIDs read from the document's table — can write the profile attributes of the
//! users in its OU through the connector, and nothing else.

use std::hash::{DefaultHasher, Hash, Hasher};

use exo_writeback_ad::{AdConnection, AdError, SearchScope};
use exo_writeback_core::directory::{AttrChange, AttrValue, Attributes, ModOp, ObjectModify};
use exo_writeback_core::guid::uuid_from_object_guid;
use exo_writeback_core::ldap_text::{equality_filter, escape_dn_value};
use exo_writeback_core::profile_attrs::PROFILES;
use exo_writeback_core::secret::Secret;
use exo_writeback_testlab::LabDc;

use crate::{connect, lab_config, text, unique};

/// schemaIDGUID of the class `user`, as the document gives it.
const USER_CLASS: &str = "bf967aba-0de6-11d0-a285-00aa003049e2";

/// The `(attribute, schemaIDGUID)` rows of the attribute table in docs/least-privilege.md.
fn documented_attributes() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/least-privilege.md");
    let doc = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    doc.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let unquote = |cell: Option<&&str>| {
                cell.and_then(|c| c.strip_prefix('`'))
                    .and_then(|c| c.strip_suffix('`'))
                    .map(str::to_string)
            };
            let attribute = unquote(cells.get(1))?;
            let guid = unquote(cells.get(2))?;
            let is_guid =
                guid.len() == 36 && guid.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
            is_guid.then_some((attribute, guid))
        })
        .collect()
}

/// A short unique name (sAMAccountName allows 20 characters).
fn short_name(prefix: &str) -> String {
    let mut h = DefaultHasher::new();
    unique(prefix).hash(&mut h);
    format!("{prefix}{:08x}", h.finish() as u32)
}

/// The documented lab command: `samba-tool … -s <lab>/etc/smb.conf -H ldap://<addr> -U
/// Administrator --use-kerberos=off`, the password from `PASSWD_FILE`. Returns stdout.
fn samba_tool(dc: &LabDc, args: &[&str]) -> String {
    dc.admin_tool("samba-tool", args, None)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn replace(attribute: &str, values: Vec<AttrValue>) -> AttrChange {
    AttrChange {
        op: ModOp::Replace,
        attribute: attribute.into(),
        values,
    }
}

async fn schema_guid(conn: &AdConnection, base_dn: &str, name: &str) -> String {
    let found = conn
        .search(
            &format!("CN=Schema,CN=Configuration,{base_dn}"),
            SearchScope::OneLevel,
            &equality_filter("lDAPDisplayName", name),
            &["schemaIDGUID"],
        )
        .await
        .unwrap_or_else(|e| panic!("look {name} up in the schema: {e}"));
    assert_eq!(found.len(), 1, "{name} is not in the lab schema");
    let bytes = found[0].attributes.get("schemaIDGUID");
    let [AttrValue::Bytes(bytes)] = bytes else {
        panic!("schemaIDGUID of {name}: {bytes:?}");
    };
    uuid_from_object_guid(bytes)
        .unwrap_or_else(|e| panic!("schemaIDGUID of {name}: {e}"))
        .to_string()
}

#[tokio::test]
async fn the_documented_rights_allow_exactly_the_profile_writes() {
    let dc = LabDc::shared();
    let admin = connect(dc).await;
    let base = dc.base_dn.clone();

    // The document lists every attribute of both profiles, with the lab schema's GUIDs.
    let rows = documented_attributes();
    for (profile, attributes) in PROFILES {
        for attribute in *attributes {
            assert!(
                rows.iter().any(|(a, _)| a.eq_ignore_ascii_case(attribute)),
                "docs/least-privilege.md does not list {attribute} of profile {profile}"
            );
        }
    }
    assert!(
        rows.iter().all(|(a, _)| PROFILES
            .iter()
            .any(|(_, attrs)| attrs.iter().any(|p| p.eq_ignore_ascii_case(a)))),
        "the document lists an attribute no profile writes: {rows:?}"
    );
    for (attribute, guid) in &rows {
        assert_eq!(
            &schema_guid(&admin, &base, attribute).await,
            guid,
            "schemaIDGUID of {attribute} in docs/least-privilege.md"
        );
    }
    assert_eq!(schema_guid(&admin, &base, "user").await, USER_CLASS);

    // An OU with a mailbox user, a service account, and a user outside the OU.
    let ou = format!("OU={},{base}", escape_dn_value(&unique("lp-ou")));
    let mut attrs = Attributes::new();
    attrs.insert("objectClass", vec![text("organizationalUnit")]);
    admin.add(&ou, &attrs).await.expect("create the OU");

    let new_user = |parent: String, sam: String, extra: Vec<(&'static str, AttrValue)>| {
        let admin = &admin;
        async move {
            let dn = format!("CN={sam},{parent}");
            let mut attrs = Attributes::new();
            attrs.insert("objectClass", vec![text("user")]);
            attrs.insert("sAMAccountName", vec![text(&sam)]);
            attrs.insert("displayName", vec![text("Before")]);
            for (name, value) in extra {
                attrs.insert(name, vec![value]);
            }
            admin.add(&dn, &attrs).await.expect("create a user");
            dn
        }
    };
    // Created before the grant: the inheritable ACEs must reach existing users.
    let inside = new_user(ou.clone(), short_name("lpin"), vec![]).await;
    let outside = new_user(format!("CN=Users,{base}"), short_name("lpout"), vec![]).await;
    let svc_sam = short_name("lpsvc");
    let svc_password = format!("Svc-{}-Passw0rd", short_name("p"));
    let quoted: Vec<u8> = format!("\"{svc_password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let svc_dn = new_user(
        format!("CN=Users,{base}"),
        svc_sam.clone(),
        vec![
            ("unicodePwd", AttrValue::Bytes(quoted)),
            ("userAccountControl", text("512")),
            (
                "userPrincipalName",
                text(&format!("{svc_sam}@lab.example.test")),
            ),
        ],
    )
    .await;

    // Grant exactly the documented rights with the documented commands.
    let sid = dc.object_sid(&svc_sam).expect("the service account's SID");
    assert!(sid.starts_with("S-1-5-21-"), "{sid}");
    let mut sddl = format!("(A;CI;RPLCLO;;;{sid})");
    for (_, guid) in &rows {
        sddl.push_str(&format!("(OA;CIIO;RPWP;{guid};{USER_CLASS};{sid})"));
    }
    samba_tool(
        dc,
        &[
            "dsacl",
            "set",
            &format!("--objectdn={ou}"),
            &format!("--sddl={sddl}"),
        ],
    );

    // Bind as the service account through the connector.
    let mut config = lab_config(dc);
    config.bind_dn = format!("{svc_sam}@lab.example.test");
    let password_file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(password_file.path(), &svc_password).expect("write the password file");
    config.password_file = Some(password_file.path().to_path_buf());
    config.password_env = None;
    let svc = AdConnection::connect(&config, Secret::new(svc_password))
        .await
        .expect("bind as the service account");

    // The DC's change mark (rootDSE, and its NTDS Settings object's invocationId) needs no
    // grant: an authenticated account reads it, and checks its own objects against it.
    let mark = svc
        .usn_mark()
        .await
        .expect("the change mark, read unprivileged");
    assert!(mark.usn > 0);

    // List/Read: it finds the user of its OU.
    let found = svc
        .search(
            &ou,
            SearchScope::Subtree,
            "(objectClass=user)",
            &["proxyAddresses"],
        )
        .await
        .expect("search the OU as the service account");
    assert_eq!(found.len(), 1, "{found:?}");

    // The granted attributes can be written (one modify, as the engine sends them).
    let addresses = vec![
        text("SMTP:lp@contoso.example"),
        text("smtp:lp2@contoso.example"),
    ];
    svc.modify(&ObjectModify {
        dn: inside.clone(),
        changes: vec![
            replace("extensionAttribute1", vec![text("from the cloud")]),
            replace("proxyAddresses", addresses.clone()),
            replace("msExchHideFromAddressLists", vec![text("TRUE")]),
        ],
    })
    .await
    .expect("the service account writes the granted attributes");
    let written = svc
        .read_by_dn(
            &inside,
            &[
                "extensionAttribute1",
                "proxyAddresses",
                "msExchHideFromAddressLists",
            ],
        )
        .await
        .expect("read back")
        .expect("the user exists");
    assert_eq!(
        written.attributes.get("extensionAttribute1"),
        &[text("from the cloud")]
    );
    let mut got = written.attributes.get("proxyAddresses").to_vec();
    got.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(got, addresses);
    assert_eq!(
        written.attributes.get("msExchHideFromAddressLists"),
        &[text("TRUE")]
    );

    // An attribute not granted fails with the connector's error naming object and
    // attribute; in a modify with a granted attribute, nothing of it is written.
    let err = svc
        .modify(&ObjectModify {
            dn: inside.clone(),
            changes: vec![
                replace("extensionAttribute2", vec![text("must not land")]),
                replace("displayName", vec![text("After")]),
            ],
        })
        .await
        .expect_err("displayName is not granted");
    match &err {
        AdError::InsufficientAccess { dn, attributes, .. } => {
            assert_eq!(dn, &inside);
            assert!(attributes.contains("displayName"), "{attributes}");
        }
        other => panic!("expected InsufficientAccess, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&inside) && msg.contains("displayName") && msg.contains("Write Property"),
        "{msg}"
    );
    let after = admin
        .read_by_dn(&inside, &["displayName", "extensionAttribute2"])
        .await
        .expect("read as admin")
        .expect("the user exists");
    assert_eq!(after.attributes.get("displayName"), &[text("Before")]);
    assert!(after.attributes.get("extensionAttribute2").is_empty());

    // An object outside the OU cannot be written, even a granted attribute.
    let err = svc
        .modify(&ObjectModify {
            dn: outside.clone(),
            changes: vec![replace("extensionAttribute1", vec![text("outside")])],
        })
        .await
        .expect_err("the user outside the OU is not writable");
    assert!(
        matches!(&err, AdError::InsufficientAccess { dn, .. } if *dn == outside),
        "{err:?}"
    );
    let untouched = admin
        .read_by_dn(&outside, &["extensionAttribute1"])
        .await
        .expect("read as admin")
        .expect("the user exists");
    assert!(untouched.attributes.get("extensionAttribute1").is_empty());

    for dn in [&inside, &outside, &svc_dn, &ou] {
        admin
            .delete(dn)
            .await
            .unwrap_or_else(|e| panic!("clean up {dn}: {e}"));
    }
}
