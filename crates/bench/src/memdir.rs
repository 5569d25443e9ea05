//! The in-memory LDAP target of `scale`: the engine's own test directory
//! (`exo_writeback_engine::testing::FakeDirectory`, every value indexed as AD indexes its
//! searched attributes, so a lookup costs an indexed search, not a scan), holding one user
//! object per directory-synchronised mailbox of the emulator's generator (matched by
//! objectGUID, as the DC would). Modifies are applied and counted, not kept.

use exo_sim::SimMailbox;
use exo_writeback_core::directory::{AttrValue, Attributes, DirectoryObject};
use exo_writeback_engine::testing::FakeDirectory;

/// The object AD holds for each dir-synced mailbox, before writeback: the primary address
/// only (so every cloud-managed mailbox needs a write).
pub fn directory_of(mailboxes: impl Iterator<Item = SimMailbox>) -> FakeDirectory {
    let directory = FakeDirectory::new();
    directory.forget_modifies();
    for m in mailboxes {
        let Ok(guid) = exo_writeback_core::guid::uuid_from_immutable_id(&m.immutable_id) else {
            continue;
        };
        let mut a = Attributes::new();
        let t = |s: &str| vec![AttrValue::Text(s.to_string())];
        a.insert(
            "objectClass",
            ["top", "person", "organizationalPerson", "user"]
                .iter()
                .map(|s| AttrValue::Text(s.to_string()))
                .collect(),
        );
        a.insert("mail", t(&m.windows_email_address));
        a.insert(
            "proxyAddresses",
            t(&format!("SMTP:{}", m.windows_email_address)),
        );
        a.insert("userPrincipalName", t(&m.user_principal_name));
        a.insert("mailNickname", t(&m.alias));
        directory.insert(DirectoryObject {
            dn: format!("CN={},OU=Mailboxes,DC=lab,DC=example,DC=test", m.alias),
            object_guid: guid,
            attributes: a,
        });
    }
    directory
}
