//! `--seed-from-ad`: mailboxes for the users of a real domain controller, as directory
//! synchronisation (Entra Connect / Cloud Sync) and Exchange Online would create them.
//!
//! For each user: ExternalDirectoryObjectId is a deterministic UUID (v5 of the objectGUID),
//! ImmutableId is base64 of the objectGUID in AD byte order, UPN and addresses come from
//! `userPrincipalName`, `mail` and `proxyAddresses`, and `smtp:<alias>@<tenant domain>` is
//! added like Exchange Online's routing address. Then the mail-enabled groups and mail
//! contacts, with their members (`seed_ad/recipients.rs`).

use std::path::{Path, PathBuf};

use exo_writeback_ad::{AdConfig, AdConnection, SearchScope};
use exo_writeback_core::directory::DirectoryObject;
use exo_writeback_core::guid::immutable_id;
use exo_writeback_core::secret::Secret;
use jiff::Timestamp;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::mailbox::{RecipientKind, SimMailbox};
use crate::state::{SimState, StateError};

mod recipients;

pub use recipients::{
    CONTACT_FILTER, GROUP_FILTER, recipient_attributes, recipient_for, recipients_for, sim_guid,
};

/// Namespace of the ExternalDirectoryObjectIds derived from objectGUIDs.
pub const EDOID_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a7e_0b5d_4e61_9a3c_5e2d_7b10_4c8f);
const GUID_NAMESPACE: Uuid = Uuid::from_u128(0x2d8e_91a4_3c7f_4b02_8e6d_1f5a_9c3b_7e20);
const EXCHANGE_GUID_NAMESPACE: Uuid = Uuid::from_u128(0x9b47_0e3d_6a21_4f8c_b5e9_2c7d_4a16_f3e8);

/// The attributes read from each user.
pub const USER_ATTRIBUTES: &[&str] = &[
    "objectGUID",
    "userPrincipalName",
    "mail",
    "proxyAddresses",
    "sAMAccountName",
    "mailNickname",
    "displayName",
    "cn",
    "legacyExchangeDN",
    "msExchRecipientTypeDetails",
    "msExchHideFromAddressLists",
    "extensionAttribute1",
    "extensionAttribute2",
    "extensionAttribute3",
    "extensionAttribute4",
    "extensionAttribute5",
    "extensionAttribute6",
    "extensionAttribute7",
    "extensionAttribute8",
    "extensionAttribute9",
    "extensionAttribute10",
    "extensionAttribute11",
    "extensionAttribute12",
    "extensionAttribute13",
    "extensionAttribute14",
    "extensionAttribute15",
    "msExchExtensionCustomAttribute1",
    "msExchExtensionCustomAttribute2",
    "msExchExtensionCustomAttribute3",
    "msExchExtensionCustomAttribute4",
    "msExchExtensionCustomAttribute5",
];

/// The users read: people, not the built-in critical accounts.
pub const USER_FILTER: &str =
    "(&(objectCategory=person)(objectClass=user)(!(isCriticalSystemObject=TRUE)))";

/// Options of `--seed-from-ad`.
#[derive(Debug, Clone)]
pub struct AdSeedOptions {
    /// The tenant's routing domain (`<tenant>.onmicrosoft.com`).
    pub tenant_domain: String,
    /// Fraction of users whose mailbox is not cloud-managed (`IsExchangeCloudManaged =
    /// false`); chosen deterministically from the objectGUID.
    pub not_cloud_managed: f64,
}

impl Default for AdSeedOptions {
    fn default() -> Self {
        AdSeedOptions {
            tenant_domain: "contoso.onmicrosoft.com".into(),
            not_cloud_managed: 0.0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdSeedError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} has no valid [ad] section: {message}")]
    Config { path: PathBuf, message: String },
    #[error("the AD password cannot be read: {0}")]
    Password(String),
    #[error("reading users from AD failed: {0}")]
    Ad(#[from] exo_writeback_ad::AdError),
    #[error("a user's mailbox was refused: {0}")]
    State(#[from] StateError),
}

#[derive(Deserialize)]
struct ConfigFile {
    ad: AdConfig,
}

fn text<'a>(o: &'a DirectoryObject, name: &str) -> Option<&'a str> {
    o.attributes
        .get(name)
        .first()
        .and_then(|v| v.as_text())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn texts(o: &DirectoryObject, name: &str) -> Vec<String> {
    o.attributes
        .get(name)
        .iter()
        .filter_map(|v| v.as_text())
        .map(str::to_string)
        .filter(|s| !s.is_empty())
        .collect()
}

/// A deterministic fraction in `[0, 1)` from the objectGUID.
fn fraction(guid: &Uuid) -> f64 {
    let d = Sha256::digest(guid.as_bytes());
    let n = u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
    (n >> 11) as f64 / (1u64 << 53) as f64
}

/// `msExchRecipientTypeDetails` → the cloud mailbox type (remote types included).
fn kind_of(details: Option<&str>) -> RecipientKind {
    match details.and_then(|d| d.parse::<u64>().ok()) {
        Some(16) | Some(8_589_934_592) => RecipientKind::Room,
        Some(32) | Some(17_179_869_184) => RecipientKind::Equipment,
        Some(4) | Some(34_359_738_368) => RecipientKind::Shared,
        _ => RecipientKind::User,
    }
}

/// The mailbox directory synchronisation would give this user, or `None` when the user has
/// no address at all (no mail, proxyAddresses or userPrincipalName).
pub fn mailbox_for_user(
    user: &DirectoryObject,
    options: &AdSeedOptions,
    now: Timestamp,
) -> Option<SimMailbox> {
    let g = user.object_guid;
    let upn = text(user, "userPrincipalName");
    let mail = text(user, "mail");
    let mut addresses = texts(user, "proxyAddresses");
    let has_primary = addresses.iter().any(|a| a.starts_with("SMTP:"));
    if !has_primary {
        let primary = mail.or(upn)?;
        addresses.retain(|a| !a.eq_ignore_ascii_case(&format!("smtp:{primary}")));
        addresses.insert(0, format!("SMTP:{primary}"));
    }
    let alias = text(user, "mailNickname")
        .or(text(user, "sAMAccountName"))
        .map(str::to_string)
        .unwrap_or_else(|| g.simple().to_string());
    let routing = format!("smtp:{alias}@{}", options.tenant_domain);
    if !addresses.iter().any(|a| a.eq_ignore_ascii_case(&routing)) {
        addresses.push(routing);
    }
    if let Some(legacy) = text(user, "legacyExchangeDN") {
        let x500 = format!("X500:{legacy}");
        if !addresses.iter().any(|a| a.eq_ignore_ascii_case(&x500)) {
            addresses.push(x500);
        }
    }
    let guid = sim_guid(&g);
    let mut primary = String::new();
    if let Some(p) = addresses.iter().find_map(|a| a.strip_prefix("SMTP:")) {
        primary = p.to_string();
    }
    let mut m = SimMailbox::new(guid, &alias, &primary, now);
    m.exchange_guid = Uuid::new_v5(&EXCHANGE_GUID_NAMESPACE, g.as_bytes());
    m.external_directory_object_id = Uuid::new_v5(&EDOID_NAMESPACE, g.as_bytes()).to_string();
    m.immutable_id = immutable_id(&g);
    m.user_principal_name = upn.unwrap_or(&primary).to_string();
    m.display_name = text(user, "displayName")
        .or(text(user, "cn"))
        .unwrap_or(&alias)
        .to_string();
    m.name = text(user, "cn").unwrap_or(&alias).to_string();
    m.email_addresses = addresses;
    m.kind = kind_of(text(user, "msExchRecipientTypeDetails"));
    m.hidden_from_address_lists_enabled =
        text(user, "msExchHideFromAddressLists").is_some_and(|v| v.eq_ignore_ascii_case("TRUE"));
    for i in 1..=15u8 {
        if let Some(v) = text(user, &format!("extensionAttribute{i}")) {
            m.set_custom_attribute(i, v);
        }
    }
    for i in 1..=5u8 {
        m.set_extension_custom_attribute(
            i,
            texts(user, &format!("msExchExtensionCustomAttribute{i}")),
        );
    }
    m.is_dir_synced = true;
    m.is_exchange_cloud_managed = fraction(&g) >= options.not_cloud_managed;
    Some(m)
}

/// What [`seed_from_ad`] added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdSeeded {
    pub mailboxes: usize,
    /// Groups and mail contacts.
    pub recipients: usize,
}

/// Reads the `[ad]` section of `config_path`, reads every user and adds their mailboxes, then
/// the mail-enabled groups and mail contacts. Objects already in the emulator are left as
/// they are.
pub async fn seed_from_ad(
    state: &SimState,
    config_path: &Path,
    options: &AdSeedOptions,
) -> Result<AdSeeded, AdSeedError> {
    let text = std::fs::read_to_string(config_path).map_err(|source| AdSeedError::Read {
        path: config_path.to_path_buf(),
        source,
    })?;
    let file: ConfigFile = toml::from_str(&text).map_err(|e| AdSeedError::Config {
        path: config_path.to_path_buf(),
        message: e.to_string(),
    })?;
    let ad = file.ad;
    let relative = |p: &PathBuf| -> PathBuf {
        if p.is_relative() {
            config_path.parent().unwrap_or(Path::new(".")).join(p)
        } else {
            p.clone()
        }
    };
    let password = match (&ad.password_file, &ad.password_env) {
        (Some(f), _) => std::fs::read_to_string(relative(f))
            .map_err(|e| AdSeedError::Password(format!("{}: {e}", f.display())))?
            .trim_end_matches(['\r', '\n'])
            .to_string(),
        (None, Some(var)) => std::env::var(var)
            .map_err(|_| AdSeedError::Password(format!("environment variable {var} is not set")))?,
        (None, None) => {
            return Err(AdSeedError::Password(
                "set ad.password_file or ad.password_env".into(),
            ));
        }
    };
    let mut ad = ad;
    ad.ca_file = ad.ca_file.as_ref().map(relative);
    ad.password_file = ad.password_file.as_ref().map(relative);
    let conn = AdConnection::connect(&ad, Secret::new(password)).await?;
    let now = state.now();
    let mut added = AdSeeded::default();
    let mut known = std::collections::HashMap::new();
    let (mut contacts, mut groups) = (Vec::new(), Vec::new());
    let attrs = recipient_attributes();
    for base in conn.search_bases() {
        let users = conn
            .search(&base, SearchScope::Subtree, USER_FILTER, USER_ATTRIBUTES)
            .await?;
        let mut new: Vec<SimMailbox> = Vec::new();
        for (u, m) in users
            .iter()
            .filter_map(|u| Some((u, mailbox_for_user(u, options, now)?)))
        {
            known.insert(u.dn.to_lowercase(), m.guid);
            if state.mailbox(&m.guid.to_string()).is_none() {
                new.push(m);
            }
        }
        added.mailboxes += state.add_mailboxes(new)?;
        contacts.extend(
            conn.search(&base, SearchScope::Subtree, CONTACT_FILTER, &attrs)
                .await?,
        );
        groups.extend(
            conn.search(&base, SearchScope::Subtree, GROUP_FILTER, &attrs)
                .await?,
        );
    }
    let recipients: Vec<_> = recipients_for(&contacts, &groups, known, options, now)
        .into_iter()
        .filter(|r| state.recipient(&r.guid.to_string(), r.is_group()).is_err())
        .collect();
    added.recipients = state.add_recipients(recipients)?;
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use exo_writeback_core::directory::{AttrValue, Attributes};
    use exo_writeback_core::guid::uuid_from_immutable_id;

    fn user(guid: u128, attrs: &[(&str, &[&str])]) -> DirectoryObject {
        let mut a = Attributes::new();
        for (k, vs) in attrs {
            a.insert(
                k,
                vs.iter().map(|v| AttrValue::Text(v.to_string())).collect(),
            );
        }
        DirectoryObject {
            dn: "CN=x,DC=lab".into(),
            object_guid: Uuid::from_u128(guid),
            attributes: a,
        }
    }

    #[test]
    fn a_user_becomes_the_mailbox_sync_would_make() {
        let opts = AdSeedOptions::default();
        let u = user(
            0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10,
            &[
                ("userPrincipalName", &["ann@lab.example.test"]),
                ("mail", &["ann@lab.example.test"]),
                (
                    "proxyAddresses",
                    &["smtp:a@lab.example.test", "SMTP:ann@lab.example.test"],
                ),
                ("sAMAccountName", &["ann"]),
                ("extensionAttribute4", &["four"]),
                ("msExchRecipientTypeDetails", &["34359738368"]),
            ],
        );
        let m = mailbox_for_user(&u, &opts, Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(
            uuid_from_immutable_id(&m.immutable_id).unwrap(),
            u.object_guid
        );
        assert_eq!(m.primary_smtp_address(), "ann@lab.example.test");
        assert_eq!(m.email_addresses[0], "smtp:a@lab.example.test");
        assert!(
            m.email_addresses
                .contains(&"smtp:ann@contoso.onmicrosoft.com".to_string())
        );
        assert_eq!(m.custom_attribute(4), "four");
        assert_eq!(m.kind, RecipientKind::Shared);
        assert!(m.is_dir_synced && m.is_exchange_cloud_managed);
        let again = mailbox_for_user(&u, &opts, Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(
            again.external_directory_object_id,
            m.external_directory_object_id
        );
        // mail only
        let u2 = user(
            2,
            &[
                ("mail", &["bob@lab.example.test"]),
                ("sAMAccountName", &["bob"]),
            ],
        );
        let m2 = mailbox_for_user(&u2, &opts, Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(m2.email_addresses[0], "SMTP:bob@lab.example.test");
        // no address at all
        assert!(
            mailbox_for_user(
                &user(3, &[("sAMAccountName", &["svc"])]),
                &opts,
                Timestamp::UNIX_EPOCH
            )
            .is_none()
        );
    }

    #[test]
    fn the_not_cloud_managed_fraction_is_deterministic() {
        let opts = AdSeedOptions {
            not_cloud_managed: 0.3,
            ..AdSeedOptions::default()
        };
        let count = |seed: u128| {
            (0..1000u128)
                .filter(|i| {
                    let u = user(seed + i, &[("mail", &["x@y.z"])]);
                    !mailbox_for_user(&u, &opts, Timestamp::UNIX_EPOCH)
                        .unwrap()
                        .is_exchange_cloud_managed
                })
                .count()
        };
        let n = count(1);
        assert_eq!(n, count(1));
        assert!((230..=370).contains(&n), "{n}");
    }
}
