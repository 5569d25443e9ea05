//! The plain variant (no Exchange schema) and the variant seeded with mailbox users.

use exo_writeback_testlab::{BASE_DN, LabDc, LabOptions, MAILBOXES_OU, processes_in};

use crate::support::{ldapmodify, ldapmodify_ok, ok, process_alive, search, values};

const SCHEMA_DN: &str = "CN=Schema,CN=Configuration,DC=lab,DC=example,DC=test";

#[test]
fn the_plain_variant_lacks_the_exchange_attributes() {
    let dc = LabDc::start(LabOptions::plain()).expect("a plain lab DC starts");
    for name in [
        "msExchHideFromAddressLists",
        "extensionAttribute1",
        "msDS-ExternalDirectoryObjectId",
        "msExchCustomAttributes",
    ] {
        let found = search(
            &dc,
            SCHEMA_DN,
            "one",
            &format!("(lDAPDisplayName={name})"),
            &["cn"],
        );
        assert!(
            found.trim().is_empty(),
            "{name} exists in the plain schema:\n{found}"
        );
    }
    // What the base schema has is there.
    for name in ["proxyAddresses", "mail", "mS-DS-ConsistencyGuid"] {
        let found = search(
            &dc,
            SCHEMA_DN,
            "one",
            &format!("(lDAPDisplayName={name})"),
            &["cn"],
        );
        assert_eq!(
            values(&found, "cn").len(),
            1,
            "{name} missing from the base schema"
        );
    }
    let user = format!("CN=plain1,CN=Users,{BASE_DN}");
    ldapmodify_ok(
        &dc,
        &format!("dn: {user}\nchangetype: add\nobjectClass: user\nsAMAccountName: plain1\n"),
    );
    let refused = ldapmodify(
        &dc,
        &format!(
            "dn: {user}\nchangetype: modify\nreplace: extensionAttribute1\nextensionAttribute1: x\n-\n"
        ),
    );
    assert!(
        !refused.status.success(),
        "extensionAttribute1 was accepted without the Exchange schema"
    );

    let (dir, pid) = (dc.dir.clone(), dc.pid);
    dc.stop().expect("lab/down succeeds");
    assert!(!dir.exists(), "lab/down removes {}", dir.display());
    assert!(!process_alive(pid), "samba {pid} survived lab/down");
    assert_eq!(processes_in(&dir), Vec::<u32>::new());
}

#[test]
fn the_users_variant_holds_deterministic_mailboxes() {
    let dc =
        LabDc::start(LabOptions::default().with_users(25)).expect("a lab DC with users starts");
    // A paged search, as a client must do against Windows AD.
    let all = ok(dc
        .ldap_tool("ldapsearch")
        .args([
            "-LLL",
            "-o",
            "ldif-wrap=no",
            "-E",
            "pr=10/noprompt",
            "-b",
            MAILBOXES_OU,
        ])
        .args([
            "(&(objectClass=user)(objectCategory=person))",
            "sAMAccountName",
            "objectGUID",
        ]));
    let mut names = values(&all, "sAMAccountName");
    names.sort();
    let expected: Vec<String> = (1..=25).map(|i| format!("mbx{i:05}")).collect();
    assert_eq!(names, expected);
    assert_eq!(
        values(&all, "objectGUID").len(),
        25,
        "every user has an objectGUID"
    );

    let fifth = search(
        &dc,
        MAILBOXES_OU,
        "one",
        "(sAMAccountName=mbx00005)",
        &["*"],
    );
    assert_eq!(
        values(&fifth, "userPrincipalName"),
        ["mbx00005@lab.example.test"]
    );
    assert_eq!(values(&fifth, "mail"), ["mbx00005@contoso.example"]);
    assert_eq!(values(&fifth, "mailNickname"), ["mbx00005"]);
    let proxies = values(&fifth, "proxyAddresses");
    assert_eq!(proxies.len(), 3, "{proxies:?}");
    assert!(
        proxies.contains(&"SMTP:mbx00005@contoso.example".to_string()),
        "{proxies:?}"
    );
    assert!(
        proxies.iter().any(|p| p.starts_with("smtp:")),
        "{proxies:?}"
    );
    assert!(
        proxies
            .iter()
            .any(|p| p.starts_with("X500:/o=ExchangeLabs/") && p.ends_with("-mbx00005")),
        "{proxies:?}"
    );
    assert_eq!(values(&fifth, "extensionAttribute1").len(), 1);
    for field in ["givenName", "sn", "displayName"] {
        assert_eq!(values(&fifth, field).len(), 1, "{field}");
    }

    let first = search(
        &dc,
        MAILBOXES_OU,
        "one",
        "(sAMAccountName=mbx00001)",
        &["proxyAddresses"],
    );
    assert_eq!(
        values(&first, "proxyAddresses").len(),
        2,
        "only every 5th user has an X500 address"
    );
}
