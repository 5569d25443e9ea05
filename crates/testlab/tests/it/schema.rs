//! The shared DC: LDAPS with the lab CA, the Exchange schema extension, Exchange attributes on
//! users, contacts and groups.

use std::process::Command;

use exo_writeback_testlab::{BASE_DN, LabDc};

use crate::support::{fails, ldapmodify, ldapmodify_ok, ok, search, unique, values};

const SCHEMA_DN: &str = "CN=Schema,CN=Configuration,DC=lab,DC=example,DC=test";

#[test]
fn root_dse_answers_over_ldaps_with_the_lab_ca() {
    let dc = LabDc::shared();
    assert!(dc.url.starts_with("ldaps://127."), "{}", dc.url);
    // Anonymous rootDSE read, certificate verified against the lab CA only.
    let out = ok(Command::new("ldapsearch")
        .env("LDAPTLS_CACERT", &dc.ca_file)
        .env("LDAPTLS_REQCERT", "demand")
        .args(["-LLL", "-x", "-H", &dc.url, "-b", "", "-s", "base"])
        .args(["defaultNamingContext", "dnsHostName"]));
    assert_eq!(values(&out, "defaultNamingContext"), [BASE_DN]);
    assert_eq!(values(&out, "dnsHostName"), ["dc1.lab.example.test"]);
    // And bound as the administrator with the password file lab/up wrote (Samba has no
    // "who am I" operation: read the administrator's own entry instead).
    let admin = ok(dc.ldap_tool("ldapsearch").args([
        "-LLL",
        "-b",
        &format!("CN=Administrator,CN=Users,{BASE_DN}"),
        "-s",
        "base",
        "userPrincipalName",
        "sAMAccountName",
    ]));
    assert_eq!(
        values(&admin, "sAMAccountName"),
        ["Administrator"],
        "{admin}"
    );
}

#[test]
fn an_unrelated_ca_does_not_verify_the_dc() {
    let dc = LabDc::shared();
    let other = tempfile::tempdir().expect("temp dir");
    let ca = other.path().join("other-ca.pem");
    ok(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=unrelated CA",
            "-keyout",
        ])
        .arg(other.path().join("key.pem"))
        .arg("-out")
        .arg(&ca));
    let err = fails(
        Command::new("ldapsearch")
            .env("LDAPTLS_CACERT", &ca)
            .env("LDAPTLS_REQCERT", "demand")
            .args([
                "-LLL",
                "-x",
                "-H",
                &dc.url,
                "-b",
                "",
                "-s",
                "base",
                "-o",
                "nettimeout=5",
            ]),
    );
    assert!(err.contains("Can't contact LDAP server"), "{err}");
}

#[test]
fn config_files_point_at_the_running_dc() {
    let dc = LabDc::shared();
    let toml = std::fs::read_to_string(&dc.config_file).expect("exo-writeback.toml");
    for line in [
        "[ad]".to_string(),
        format!("url = \"ldaps://{}\"", dc.addr),
        format!("ca_file = \"{}\"", dc.ca_file.display()),
        "bind_dn = \"Administrator@lab.example.test\"".to_string(),
        format!("password_file = \"{}\"", dc.password_file.display()),
        "base_dn = \"DC=lab,DC=example,DC=test\"".to_string(),
    ] {
        assert!(
            toml.lines().any(|l| l == line),
            "missing `{line}` in:\n{toml}"
        );
    }
    assert!(dc.ca_file.is_absolute() && dc.ca_file.is_file());
    use std::os::unix::fs::PermissionsExt;
    for secret in [
        dc.password_file.clone(),
        dc.dir.join("tls/server-key.pem"),
        dc.dir.join("tls/ca-key.pem"),
    ] {
        let mode = std::fs::metadata(&secret)
            .expect("secret file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", secret.display());
    }
    let password = dc.password();
    assert!(
        password.len() >= 16,
        "the admin password is a strong random one"
    );
    assert!(!password.ends_with('\n'));
    let env = std::fs::read_to_string(dc.dir.join("lab.env")).expect("lab.env");
    assert!(env.contains(&format!("LAB_ADDR={}", dc.addr)), "{env}");
    assert!(env.contains(&format!("LAB_PID={}", dc.pid)), "{env}");
}

/// (lDAPDisplayName, attributeID, single-valued), as in exchange-schema.md.
const EXCHANGE_ATTRIBUTES: &[(&str, &str, bool)] = &[
    (
        "msExchHideFromAddressLists",
        "1.2.840.113556.1.4.7000.102.73",
        true,
    ),
    ("extensionAttribute1", "1.2.840.113556.1.2.423", true),
    ("extensionAttribute10", "1.2.840.113556.1.2.432", true),
    ("extensionAttribute11", "1.2.840.113556.1.2.599", true),
    ("extensionAttribute15", "1.2.840.113556.1.2.603", true),
    (
        "msExchExtensionCustomAttribute1",
        "1.2.840.113556.1.4.7000.102.51876",
        false,
    ),
    (
        "msExchExtensionCustomAttribute5",
        "1.2.840.113556.1.4.7000.102.51880",
        false,
    ),
    (
        "msExchArchiveStatus",
        "1.2.840.113556.1.4.7000.102.51602",
        true,
    ),
    (
        "msExchSafeSendersHash",
        "1.2.840.113556.1.4.7000.102.50765",
        true,
    ),
    (
        "msExchBlockedSendersHash",
        "1.2.840.113556.1.4.7000.102.50976",
        true,
    ),
    (
        "msExchSafeRecipientsHash",
        "1.2.840.113556.1.4.7000.102.50766",
        true,
    ),
    (
        "msExchUCVoiceMailSettings",
        "1.2.840.113556.1.4.7000.102.51612",
        false,
    ),
    (
        "msExchUserHoldPolicies",
        "1.2.840.113556.1.4.7000.102.52071",
        false,
    ),
    (
        "msExchRecipientTypeDetails",
        "1.2.840.113556.1.4.7000.102.50855",
        true,
    ),
    (
        "msExchRemoteRecipientType",
        "1.2.840.113556.1.4.7000.102.51611",
        true,
    ),
    (
        "msExchRecipientDisplayType",
        "1.2.840.113556.1.4.7000.102.50730",
        true,
    ),
    ("targetAddress", "1.2.840.113556.1.2.352", true),
    (
        "msExchMailboxGuid",
        "1.2.840.113556.1.4.7000.102.11058",
        true,
    ),
    ("mailNickname", "1.2.840.113556.1.2.447", true),
    (
        "msDS-ExternalDirectoryObjectId",
        "1.2.840.113556.1.4.2310",
        true,
    ),
];

#[test]
fn the_exchange_attributes_are_in_the_schema() {
    let dc = LabDc::shared();
    for &(name, oid, single) in EXCHANGE_ATTRIBUTES {
        let entry = search(
            dc,
            SCHEMA_DN,
            "one",
            &format!("(&(objectClass=attributeSchema)(lDAPDisplayName={name}))"),
            &["attributeID", "isSingleValued"],
        );
        assert_eq!(values(&entry, "attributeID"), [oid], "{name}:\n{entry}");
        let expected = if single { "TRUE" } else { "FALSE" };
        assert_eq!(values(&entry, "isSingleValued"), [expected], "{name}");
    }
    // Every attribute of the committed extension LDIF (34: 15 + 5 custom attributes and 14
    // others) is in the schema.
    let ldif = std::fs::read_to_string(LabDc::repo_root().join("lab/exchange-schema.ldif"))
        .expect("lab/exchange-schema.ldif");
    let names: Vec<&str> = ldif
        .split("\n\n")
        .filter(|entry| entry.contains("objectClass: attributeSchema"))
        .filter_map(|entry| {
            entry
                .lines()
                .find_map(|l| l.strip_prefix("lDAPDisplayName: "))
        })
        .collect();
    assert_eq!(names.len(), 34, "{names:?}");
    let filter: String = names
        .iter()
        .map(|n| format!("(lDAPDisplayName={n})"))
        .collect();
    let all = search(
        dc,
        SCHEMA_DN,
        "one",
        &format!("(|{filter})"),
        &["lDAPDisplayName"],
    );
    let mut found = values(&all, "lDAPDisplayName");
    found.sort();
    let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    expected.sort();
    assert_eq!(found, expected);
    let guid = search(
        dc,
        SCHEMA_DN,
        "one",
        "(lDAPDisplayName=msExchMailboxGuid)",
        &["rangeLower", "rangeUpper", "schemaIDGUID"],
    );
    assert_eq!(values(&guid, "rangeLower"), ["16"]);
    assert_eq!(values(&guid, "rangeUpper"), ["16"]);
    // 9333af48-b09e-11d2-aa06-00c04f8eedd8 in AD's byte order.
    assert_eq!(values(&guid, "schemaIDGUID"), ["SK8zk56w0hGqBgDAT47t2A=="]);
}

#[test]
fn exchange_classes_are_placed_as_exchange_does() {
    let dc = LabDc::shared();
    for class in ["User", "Contact", "Group"] {
        let entry = search(
            dc,
            &format!("CN={class},{SCHEMA_DN}"),
            "base",
            "(objectClass=*)",
            &["auxiliaryClass"],
        );
        assert!(
            values(&entry, "auxiliaryClass")
                .iter()
                .any(|c| c == "msExchCustomAttributes"),
            "{class}: {entry}"
        );
    }
    let custom = search(
        dc,
        &format!("CN=ms-Exch-Custom-Attributes,{SCHEMA_DN}"),
        "base",
        "(objectClass=*)",
        &["mayContain", "objectClassCategory", "governsID"],
    );
    assert_eq!(
        values(&custom, "governsID"),
        ["1.2.840.113556.1.5.7000.62.6"]
    );
    assert_eq!(values(&custom, "objectClassCategory"), ["3"], "auxiliary");
    assert_eq!(values(&custom, "mayContain").len(), 20, "{custom}");
    let recipient = search(
        dc,
        &format!("CN=Mail-Recipient,{SCHEMA_DN}"),
        "base",
        "(objectClass=*)",
        &["mayContain"],
    );
    let may = values(&recipient, "mayContain");
    for name in [
        "msExchHideFromAddressLists",
        "targetAddress",
        "msExchMailboxGuid",
        "msDS-ExternalDirectoryObjectId",
        "mailNickname",
    ] {
        assert!(may.iter().any(|m| m == name), "mailRecipient lacks {name}");
    }
}

#[test]
fn users_contacts_and_groups_carry_exchange_attributes() {
    let dc = LabDc::shared();
    let user = unique("ex-user");
    let contact = unique("ex-contact");
    let group = unique("ex-group");
    let (u, c, g) = (
        format!("CN={user},CN=Users,{BASE_DN}"),
        format!("CN={contact},CN=Users,{BASE_DN}"),
        format!("CN={group},CN=Users,{BASE_DN}"),
    );
    ldapmodify_ok(
        dc,
        &format!(
            "dn: {u}\nchangetype: add\nobjectClass: user\nsAMAccountName: {short}\n\n\
             dn: {c}\nchangetype: add\nobjectClass: contact\n\n\
             dn: {g}\nchangetype: add\nobjectClass: group\nsAMAccountName: {gshort}\n",
            short = &user[..user.len().min(20)],
            gshort = &group[..group.len().min(20)],
        ),
    );
    ldapmodify_ok(
        dc,
        &format!(
            "dn: {u}\nchangetype: modify\n\
             replace: extensionAttribute1\nextensionAttribute1: Engineering\n-\n\
             add: msExchExtensionCustomAttribute1\nmsExchExtensionCustomAttribute1: red\nmsExchExtensionCustomAttribute1: blue\n-\n\
             replace: msExchHideFromAddressLists\nmsExchHideFromAddressLists: TRUE\n-\n\
             replace: msExchMailboxGuid\nmsExchMailboxGuid:: AAECAwQFBgcICQoLDA0ODw==\n-\n\
             replace: msExchRecipientTypeDetails\nmsExchRecipientTypeDetails: 2147483648\n-\n\
             replace: msDS-ExternalDirectoryObjectId\nmsDS-ExternalDirectoryObjectId: User_0f1e2d3c\n-\n\
             add: proxyAddresses\nproxyAddresses: SMTP:{user}@contoso.example\nproxyAddresses: smtp:{user}@contoso.mail.onmicrosoft.example\n-\n\n\
             dn: {c}\nchangetype: modify\nreplace: extensionAttribute7\nextensionAttribute7: contact-7\n-\n\n\
             dn: {g}\nchangetype: modify\nreplace: msExchExtensionCustomAttribute5\nmsExchExtensionCustomAttribute5: group-5\n-\n"
        ),
    );
    let entry = search(dc, &u, "base", "(objectClass=*)", &["*"]);
    assert_eq!(values(&entry, "extensionAttribute1"), ["Engineering"]);
    let mut custom = values(&entry, "msExchExtensionCustomAttribute1");
    custom.sort();
    assert_eq!(custom, ["blue", "red"]);
    assert_eq!(values(&entry, "msExchHideFromAddressLists"), ["TRUE"]);
    assert_eq!(
        values(&entry, "msExchMailboxGuid"),
        ["AAECAwQFBgcICQoLDA0ODw=="]
    );
    assert_eq!(values(&entry, "msExchRecipientTypeDetails"), ["2147483648"]);
    assert_eq!(
        values(&entry, "msDS-ExternalDirectoryObjectId"),
        ["User_0f1e2d3c"]
    );
    assert_eq!(values(&entry, "proxyAddresses").len(), 2, "{entry}");
    let contact_entry = search(dc, &c, "base", "(objectClass=*)", &["extensionAttribute7"]);
    assert_eq!(values(&contact_entry, "extensionAttribute7"), ["contact-7"]);
    let group_entry = search(
        dc,
        &g,
        "base",
        "(objectClass=*)",
        &["msExchExtensionCustomAttribute5"],
    );
    assert_eq!(
        values(&group_entry, "msExchExtensionCustomAttribute5"),
        ["group-5"]
    );

    // The schema's constraints are enforced: a second value on a single-valued attribute and
    // a mailbox GUID shorter than rangeLower are refused, and nothing changes.
    let second = ldapmodify(
        dc,
        &format!(
            "dn: {u}\nchangetype: modify\nadd: extensionAttribute1\nextensionAttribute1: Sales\n-\n"
        ),
    );
    assert!(
        !second.status.success(),
        "a second extensionAttribute1 value was accepted"
    );
    let short = ldapmodify(
        dc,
        &format!(
            "dn: {u}\nchangetype: modify\nreplace: msExchMailboxGuid\nmsExchMailboxGuid:: AAEC\n-\n"
        ),
    );
    assert!(
        !short.status.success(),
        "a 3-byte msExchMailboxGuid was accepted"
    );
    let after = search(
        dc,
        &u,
        "base",
        "(objectClass=*)",
        &["extensionAttribute1", "msExchMailboxGuid"],
    );
    assert_eq!(values(&after, "extensionAttribute1"), ["Engineering"]);
    assert_eq!(
        values(&after, "msExchMailboxGuid"),
        ["AAECAwQFBgcICQoLDA0ODw=="]
    );
}
