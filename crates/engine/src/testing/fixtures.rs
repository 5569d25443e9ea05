//! Fixtures: the mailbox of a numbered synced user, and a directory of such users with their
//! mailboxes.

use exo_writeback_core::mailbox::Mailbox;
use jiff::Timestamp;
use uuid::Uuid;

use super::{FakeDirectory, FakeSource};

/// The mailbox of synced user `n`: ExternalDirectoryObjectId `00000000-…-n`, UPN
/// `user{n}@contoso.com` (as [`FakeDirectory::add_user`]'s object `user{n}`), primary address
/// and WindowsEmailAddress `user{n}@contoso.com` with an onmicrosoft.com alias,
/// CustomAttribute1 `ca1-{n}`, cloud-managed, changed at `changed`.
pub fn mailbox(n: u32, changed: Timestamp) -> Mailbox {
    let mut m = Mailbox {
        external_directory_object_id: Some(format!("00000000-0000-0000-0000-{n:012}")),
        user_principal_name: Some(format!("user{n}@contoso.com")),
        primary_smtp_address: Some(format!("user{n}@contoso.com")),
        windows_email_address: Some(format!("user{n}@contoso.com")),
        email_addresses: vec![
            format!("SMTP:user{n}@contoso.com"),
            format!("smtp:user{n}@contoso.onmicrosoft.com"),
        ],
        recipient_type_details: "UserMailbox".into(),
        is_dir_synced: true,
        is_exchange_cloud_managed: true,
        when_changed_utc: Some(changed),
        ..Mailbox::default()
    };
    m.custom_attributes[0] = Some(format!("ca1-{n}"));
    m
}

/// `n` synced users (`CN=user{i}`, each holding `attrs`) and their mailboxes
/// ([`mailbox`], changed at `changed`).
pub struct Users {
    pub source: FakeSource,
    pub dir: FakeDirectory,
    pub guids: Vec<Uuid>,
    pub dns: Vec<String>,
}

pub fn users(n: u32, changed: Timestamp, attrs: &[(&str, &[&str])]) -> Users {
    let source = FakeSource::default();
    let dir = FakeDirectory::new();
    let (mut guids, mut dns) = (Vec::new(), Vec::new());
    for i in 1..=n {
        let m = mailbox(i, changed);
        let edoid = m.external_directory_object_id.clone().unwrap_or_default();
        let guid = dir.add_user(&format!("user{i}"), &edoid, attrs);
        dns.push(dir.get(&guid).dn);
        guids.push(guid);
        source.set(m);
    }
    Users {
        source,
        dir,
        guids,
        dns,
    }
}
