//! The lab forest (dc1, dc2, rodc1) and the Windows facts the lab reproduces: the DC locator's
//! SRV records in the realm's DNS, a read-only DC that refers writes, the KDC with a keytab,
//! a user writing msDS-ExternalDirectoryObjectId on itself, an attribute a service account
//! cannot read.

use std::process::{Command, Output, Stdio};

use exo_writeback_testlab::{ForestMember, ForestOptions, LabDc, LabForest, LabOptions};

use crate::support::{ok, output, unique, values, with_stdin};

/// `dig +short` of `name`/`kind` at the forest's DNS server (dc1:53), sorted.
fn dig(forest: &LabForest, kind: &str, name: &str) -> Vec<String> {
    let out = ok(Command::new("dig")
        .arg(format!("@{}", forest.dns_server()))
        .args(["+short", "+time=2", "+tries=2", kind, name]));
    let mut lines: Vec<String> = out.lines().map(|l| l.trim().to_string()).collect();
    lines.sort();
    lines
}

/// An OpenLDAP tool bound as `account` (a simple bind over LDAPS, CA verified) to `addr`.
fn tool_as(forest: &LabForest, tool: &str, addr: &str, account: &str) -> Command {
    let password_file = forest.dir.join(format!("{account}-password"));
    let mut cmd = Command::new(tool);
    cmd.env("LDAPTLS_CACERT", forest.ca_file())
        .env("LDAPTLS_REQCERT", "demand")
        .args(["-x", "-H", &format!("ldaps://{addr}")])
        .args(["-D", &LabForest::upn(account), "-y"])
        .arg(password_file)
        .stdin(Stdio::null());
    cmd
}

fn modify_as(forest: &LabForest, addr: &str, account: &str, ldif: &str) -> Output {
    with_stdin(&mut tool_as(forest, "ldapmodify", addr, account), ldif)
}

fn describe(dn: &str, value: &str) -> String {
    format!("dn: {dn}\nchangetype: modify\nreplace: description\ndescription: {value}\n")
}

#[test]
fn the_forest_serves_locator_records_and_its_rodc_refers_writes() {
    let forest = LabForest::start(ForestOptions::all()).expect("forest starts");
    let (a1, a2, a3) = (
        forest.addr(ForestMember::Dc1).to_string(),
        forest.addr(ForestMember::Dc2).to_string(),
        forest.addr(ForestMember::Rodc1).to_string(),
    );

    // The DC locator's records (MS-ADTS 6.3.6 / 6.3.2.3): writable DCs register the
    // domain-wide record, every DC (the RODC too) the site-specific one; the A records name the
    // addresses this instance runs on, not the template's.
    let srv = |name: &str| dig(&forest, "SRV", name);
    assert_eq!(
        srv("_ldap._tcp.dc._msdcs.lab.example.test"),
        vec![
            "0 100 389 dc1.lab.example.test.",
            "0 100 389 dc2.lab.example.test."
        ]
    );
    assert_eq!(
        srv("_ldap._tcp.Default-First-Site-Name._sites.dc._msdcs.lab.example.test"),
        vec![
            "0 100 389 dc1.lab.example.test.",
            "0 100 389 dc2.lab.example.test.",
            "0 100 389 rodc1.lab.example.test."
        ]
    );
    assert_eq!(srv("_gc._tcp.lab.example.test").len(), 2);
    for (host, addr) in [("dc1", &a1), ("dc2", &a2), ("rodc1", &a3)] {
        assert_eq!(
            dig(&forest, "A", &format!("{host}.lab.example.test")),
            vec![addr.clone()],
            "{host}"
        );
        // No AAAA record: the build host's IPv6 address, registered at provisioning, is not
        // one the lab DCs listen on (a client would try it first).
        assert_eq!(
            dig(&forest, "AAAA", &format!("{host}.lab.example.test")),
            Vec::<String>::new(),
            "{host}"
        );
    }

    // rodc1 is read-only: its NTDS Settings say so, a read answers, a write is referred to a
    // writable DC (LDAP referral, 10); the same write on dc2 succeeds.
    let root = ok(tool_as(&forest, "ldapsearch", &a3, "svc-agent").args([
        "-LLL",
        "-o",
        "ldif-wrap=no",
        "-b",
        "",
        "-s",
        "base",
        "dsServiceName",
    ]));
    let ntds = values(&root, "dsServiceName");
    assert_eq!(ntds.len(), 1, "{root}");
    let settings = ok(tool_as(&forest, "ldapsearch", &a3, "svc-agent").args([
        "-LLL",
        "-b",
        &ntds[0],
        "-s",
        "base",
        "msDS-isRODC",
    ]));
    assert_eq!(values(&settings, "msDS-isRODC"), vec!["TRUE"]);
    let target = "CN=plainuser,CN=Users,DC=lab,DC=example,DC=test";
    let refused = modify_as(&forest, &a3, "svc-agent", &describe(target, "via rodc1"));
    let text = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(10), "{text}");
    assert!(
        text.contains("ldap://dc1.lab.example.test/CN=plainuser"),
        "{text}"
    );
    let written = modify_as(&forest, &a2, "svc-agent", &describe(target, "via dc2"));
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
}

#[test]
fn the_kdc_issues_a_ticket_for_the_exported_keytab() {
    let forest = LabForest::start(ForestOptions::default()).expect("forest starts");
    let cache = forest.dir.join("ccache-test");
    let kinit = |keytab: &std::path::Path| {
        output(
            Command::new("kinit")
                .env("KRB5_CONFIG", forest.krb5_conf())
                .env("KRB5CCNAME", format!("FILE:{}", cache.display()))
                .arg("-k")
                .arg("-t")
                .arg(keytab)
                .arg("svc-kerberos@LAB.EXAMPLE.TEST")
                .stdin(Stdio::null()),
        )
    };
    let got = kinit(&forest.keytab());
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    let tickets = ok(Command::new("klist")
        .env("KRB5_CONFIG", forest.krb5_conf())
        .env("KRB5CCNAME", format!("FILE:{}", cache.display())));
    assert!(
        tickets.contains("krbtgt/LAB.EXAMPLE.TEST@LAB.EXAMPLE.TEST"),
        "{tickets}"
    );
    // A keytab of another key does not get one.
    let empty = forest.dir.join("empty.keytab");
    std::fs::write(&empty, [0x05, 0x02]).unwrap();
    assert!(!kinit(&empty).status.success());
    let _ = std::fs::remove_file(&cache);
    let _ = std::fs::remove_file(&empty);
}

#[test]
fn a_service_account_denied_read_sees_no_value_and_no_error() {
    let forest = LabForest::start(ForestOptions::default()).expect("forest starts");
    let a1 = forest.addr(ForestMember::Dc1).to_string();
    let target = "CN=plainuser,CN=Users,DC=lab,DC=example,DC=test";
    let set = modify_as(
        &forest,
        &a1,
        "svc-agent",
        &format!(
            "dn: {target}\nchangetype: modify\nreplace: extensionAttribute15\nextensionAttribute15: hidden-from-svc-noread\n"
        ),
    );
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let read = |account: &str| {
        ok(tool_as(&forest, "ldapsearch", &a1, account).args([
            "-LLL",
            "-b",
            target,
            "-s",
            "base",
            "extensionAttribute15",
            "cn",
        ]))
    };
    assert_eq!(
        values(&read("svc-agent"), "extensionAttribute15"),
        vec!["hidden-from-svc-noread"]
    );
    // AD omits an attribute the caller may not read, without an error.
    let hidden = read("svc-noread");
    assert!(
        values(&hidden, "extensionAttribute15").is_empty(),
        "{hidden}"
    );
    assert_eq!(values(&hidden, "cn"), vec!["plainuser"]);
}

/// Windows puts msDS-ExternalDirectoryObjectId in the Personal-Information property set, which
/// SELF may write (the Windows Server 2016 schema's attributeSecurityGUID): so does the lab.
#[test]
fn a_plain_user_may_write_its_own_external_directory_object_id_only() {
    let dc = LabDc::start(LabOptions::default()).expect("DC starts");
    let (me, other) = (unique("selfwriter"), unique("victim"));
    let password = "Lab-Passw0rd!z";
    // unicodePwd: the quoted password in UTF-16LE, given to ldapmodify from a file.
    let pwd_file = dc.dir.join(format!("{me}.pwd"));
    let pwd: Vec<u8> = format!("\"{password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    std::fs::write(&pwd_file, pwd).unwrap();
    for name in [&me, &other] {
        crate::support::ldapmodify_ok(
            &dc,
            &format!(
                "dn: CN={name},CN=Users,{}\nchangetype: add\nobjectClass: user\nsAMAccountName: {}\nuserAccountControl: 512\nunicodePwd:< file://{}\n",
                dc.base_dn,
                &name[..name.len().min(20)],
                pwd_file.display()
            ),
        );
    }
    let as_me = |dn: &str| {
        with_stdin(
            Command::new("ldapmodify")
                .env("LDAPTLS_CACERT", &dc.ca_file)
                .env("LDAPTLS_REQCERT", "demand")
                .args(["-x", "-H", &dc.url, "-D"])
                .arg(format!("CN={me},CN=Users,{}", dc.base_dn))
                .args(["-w", password]),
            &format!(
                "dn: {dn}\nchangetype: modify\nreplace: msDS-ExternalDirectoryObjectId\nmsDS-ExternalDirectoryObjectId: User_0f0e0d0c-0b0a-0908-0706-050403020100\n"
            ),
        )
    };
    let own = format!("CN={me},CN=Users,{}", dc.base_dn);
    let written = as_me(&own);
    assert!(
        written.status.success(),
        "a user may write msDS-ExternalDirectoryObjectId on itself: {}",
        String::from_utf8_lossy(&written.stderr)
    );
    let read = crate::support::search(
        &dc,
        &own,
        "base",
        "(objectClass=*)",
        &["msDS-ExternalDirectoryObjectId"],
    );
    assert_eq!(
        values(&read, "msDS-ExternalDirectoryObjectId"),
        vec!["User_0f0e0d0c-0b0a-0908-0706-050403020100"]
    );
    let refused = as_me(&format!("CN={other},CN=Users,{}", dc.base_dn));
    assert_eq!(
        refused.status.code(),
        Some(50),
        "but not on another user: {}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
