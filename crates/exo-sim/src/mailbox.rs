//! The emulator's mailbox model; its wire rendering is in `mailbox/render.rs`.
//!
//! A [`SimMailbox`] keeps only what varies between mailboxes (the properties the writeback
//! reads, plus the identity and date properties). Everything else in a Get-Mailbox record is
//! rendered from a template: the real capture in `mailbox/template_mailbox.json` (fixture A1
//! of `shared/fixtures/exo-real`), in its key order and with its annotations, so the
//! emulator's records look like the real service's without storing 250 properties per mailbox.

use exo_writeback_core::mailbox::Mailbox;
use jiff::Timestamp;
use uuid::Uuid;

mod render;

pub(crate) use render::json_str;
pub use render::{canonical_property, format_exchange_date, property_names};

/// The four recipient types the writeback handles, with the `Type` parameter of Set-Mailbox
/// that selects each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecipientKind {
    User,
    Shared,
    Room,
    Equipment,
}

impl RecipientKind {
    /// `RecipientTypeDetails` as Exchange Online writes it.
    pub fn details(self) -> &'static str {
        match self {
            RecipientKind::User => "UserMailbox",
            RecipientKind::Shared => "SharedMailbox",
            RecipientKind::Room => "RoomMailbox",
            RecipientKind::Equipment => "EquipmentMailbox",
        }
    }

    /// From `RecipientTypeDetails` (case-insensitive).
    pub fn from_details(s: &str) -> Option<Self> {
        [Self::User, Self::Shared, Self::Room, Self::Equipment]
            .into_iter()
            .find(|k| k.details().eq_ignore_ascii_case(s))
    }

    /// From Set-Mailbox's `-Type` value (`Regular`, `Shared`, `Room`, `Equipment`).
    pub fn from_set_type(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "regular" => Some(Self::User),
            "shared" => Some(Self::Shared),
            "room" => Some(Self::Room),
            "equipment" => Some(Self::Equipment),
            _ => None,
        }
    }
}

/// `PrimarySmtpAddress` of an address list: its `SMTP:` entry, without the prefix.
pub(crate) fn primary_smtp_address(addresses: &[String]) -> &str {
    addresses
        .iter()
        .find_map(|a| a.strip_prefix("SMTP:"))
        .unwrap_or("")
}

/// CustomAttribute`n` of a sparse list; `""` when unset.
pub(crate) fn custom_attribute(list: &[(u8, String)], n: u8) -> &str {
    list.iter()
        .find(|(i, _)| *i == n)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

pub(crate) fn set_custom_attribute(list: &mut Vec<(u8, String)>, n: u8, value: &str) {
    list.retain(|(i, _)| *i != n);
    if !value.is_empty() {
        list.push((n, value.to_string()));
        list.sort_by_key(|(i, _)| *i);
    }
}

/// ExtensionCustomAttribute`n` of a sparse list; empty when unset.
pub(crate) fn extension_custom_attribute(list: &[(u8, Vec<String>)], n: u8) -> &[String] {
    list.iter()
        .find(|(i, _)| *i == n)
        .map(|(_, v)| v.as_slice())
        .unwrap_or(&[])
}

pub(crate) fn set_extension_custom_attribute(
    list: &mut Vec<(u8, Vec<String>)>,
    n: u8,
    values: Vec<String>,
) {
    list.retain(|(i, _)| *i != n);
    let values: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
    if !values.is_empty() {
        list.push((n, values));
        list.sort_by_key(|(i, _)| *i);
    }
}

/// One mailbox of the emulator.
#[derive(Debug, Clone, PartialEq)]
pub struct SimMailbox {
    /// `Guid`: the stable key; paging is ordered by it.
    pub guid: Uuid,
    pub exchange_guid: Uuid,
    /// `None` = no archive (`ArchiveStatus: "None"`, zero `ArchiveGuid`).
    pub archive_guid: Option<Uuid>,
    /// `""` for mailboxes without an Entra object (discovery mailboxes).
    pub external_directory_object_id: String,
    /// base64 of the on-premises objectGUID for synchronised users, `""` otherwise.
    pub immutable_id: String,
    pub user_principal_name: String,
    pub windows_email_address: String,
    pub display_name: String,
    pub alias: String,
    /// `Name` (and `Identity` when there is no ExternalDirectoryObjectId).
    pub name: String,
    /// `SMTP:` (primary), `smtp:`, `SIP:`, `SPO:`, `X500:` … in the service's order.
    pub email_addresses: Vec<String>,
    /// CustomAttribute1..15, sparse: (number 1..=15, value), sorted, no empty values.
    pub custom_attributes: Vec<(u8, String)>,
    /// ExtensionCustomAttribute1..5, sparse: (number 1..=5, values), sorted, no empty lists.
    pub extension_custom_attributes: Vec<(u8, Vec<String>)>,
    pub hidden_from_address_lists_enabled: bool,
    pub kind: RecipientKind,
    pub is_dir_synced: bool,
    pub is_exchange_cloud_managed: bool,
    /// `None` renders the usual `/o=ExchangeLabs/…/cn=<guid>-<alias>` form.
    pub legacy_exchange_dn: Option<String>,
    pub in_place_holds: Vec<String>,
    pub when_created: Timestamp,
    pub when_changed: Timestamp,
}

impl SimMailbox {
    /// A user mailbox with one primary address; the rest takes plain defaults.
    pub fn new(guid: Uuid, alias: &str, primary_smtp: &str, now: Timestamp) -> Self {
        SimMailbox {
            guid,
            exchange_guid: Uuid::from_u128(guid.as_u128().rotate_left(64)),
            archive_guid: None,
            external_directory_object_id: guid.to_string(),
            immutable_id: String::new(),
            user_principal_name: primary_smtp.to_string(),
            windows_email_address: primary_smtp.to_string(),
            display_name: alias.to_string(),
            alias: alias.to_string(),
            name: alias.to_string(),
            email_addresses: vec![format!("SMTP:{primary_smtp}")],
            custom_attributes: Vec::new(),
            extension_custom_attributes: Vec::new(),
            hidden_from_address_lists_enabled: false,
            kind: RecipientKind::User,
            is_dir_synced: false,
            is_exchange_cloud_managed: true,
            legacy_exchange_dn: None,
            in_place_holds: Vec::new(),
            when_created: now,
            when_changed: now,
        }
    }

    /// `PrimarySmtpAddress`: the `SMTP:` entry of EmailAddresses (without its prefix).
    pub fn primary_smtp_address(&self) -> &str {
        primary_smtp_address(&self.email_addresses)
    }

    /// `Identity`: the Entra object id when there is one (as the service shows it since
    /// 2025, fixture A5), else `Name`.
    pub fn identity(&self) -> &str {
        if self.external_directory_object_id.is_empty() {
            &self.name
        } else {
            &self.external_directory_object_id
        }
    }

    pub fn custom_attribute(&self, n: u8) -> &str {
        custom_attribute(&self.custom_attributes, n)
    }

    pub fn set_custom_attribute(&mut self, n: u8, value: &str) {
        set_custom_attribute(&mut self.custom_attributes, n, value)
    }

    pub fn extension_custom_attribute(&self, n: u8) -> &[String] {
        extension_custom_attribute(&self.extension_custom_attributes, n)
    }

    pub fn set_extension_custom_attribute(&mut self, n: u8, values: Vec<String>) {
        set_extension_custom_attribute(&mut self.extension_custom_attributes, n, values)
    }

    pub fn legacy_exchange_dn(&self) -> String {
        match &self.legacy_exchange_dn {
            Some(dn) => dn.clone(),
            None => format!(
                "/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn={}-{}",
                self.guid.simple(),
                self.alias
            ),
        }
    }

    pub fn archive_status(&self) -> &'static str {
        if self.archive_guid.is_some() {
            "Active"
        } else {
            "None"
        }
    }

    /// Every string by which Get-Mailbox -Identity finds this mailbox (lower-cased).
    pub fn identity_keys(&self) -> Vec<String> {
        let mut keys = self.index_keys();
        keys.push(self.guid.to_string());
        keys
    }

    /// The identity keys but the Guid (which the store finds without an index).
    pub(crate) fn index_keys(&self) -> Vec<String> {
        let mut keys = Vec::with_capacity(self.email_addresses.len() + 5);
        let mut push = |s: &str| {
            if !s.is_empty() {
                let k = s.to_lowercase();
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        };
        push(&self.external_directory_object_id);
        push(&self.user_principal_name);
        push(&self.alias);
        push(&self.name);
        for a in &self.email_addresses {
            if let Some((prefix, addr)) = a.split_once(':')
                && prefix.eq_ignore_ascii_case("smtp")
            {
                push(addr);
            }
        }
        keys
    }

    /// True when `key` (any case) identifies this mailbox.
    pub fn is_identified_by(&self, key: &str) -> bool {
        let k = key.to_lowercase();
        self.identity_keys().contains(&k)
    }

    /// The core's view of this mailbox.
    pub fn to_core(&self) -> Mailbox {
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let mut custom: [Option<String>; 15] = Default::default();
        for (i, v) in &self.custom_attributes {
            if let Some(slot) = custom.get_mut(usize::from(*i).wrapping_sub(1)) {
                *slot = Some(v.clone());
            }
        }
        let mut ext: [Vec<String>; 5] = Default::default();
        for (i, v) in &self.extension_custom_attributes {
            if let Some(slot) = ext.get_mut(usize::from(*i).wrapping_sub(1)) {
                *slot = v.clone();
            }
        }
        Mailbox {
            external_directory_object_id: non_empty(&self.external_directory_object_id),
            immutable_id: non_empty(&self.immutable_id),
            user_principal_name: non_empty(&self.user_principal_name),
            primary_smtp_address: non_empty(self.primary_smtp_address()),
            windows_email_address: non_empty(&self.windows_email_address),
            display_name: non_empty(&self.display_name),
            alias: non_empty(&self.alias),
            email_addresses: self.email_addresses.clone(),
            custom_attributes: custom,
            extension_custom_attributes: ext,
            hidden_from_address_lists_enabled: self.hidden_from_address_lists_enabled,
            recipient_type_details: self.kind.details().to_string(),
            is_dir_synced: self.is_dir_synced,
            is_exchange_cloud_managed: self.is_exchange_cloud_managed,
            legacy_exchange_dn: Some(self.legacy_exchange_dn()),
            archive_status: Some(self.archive_status().to_string()),
            in_place_holds: self.in_place_holds.clone(),
            when_changed_utc: Some(self.when_changed),
            ..Mailbox::default()
        }
    }

    /// A mailbox from the core's view. `guid` is the new mailbox's Guid; `now` fills the
    /// dates the core mailbox does not carry.
    pub fn from_core(m: &Mailbox, guid: Uuid, now: Timestamp) -> Self {
        let primary = m
            .primary_smtp_address
            .clone()
            .or_else(|| {
                m.email_addresses
                    .iter()
                    .find_map(|a| a.strip_prefix("SMTP:").map(str::to_string))
            })
            .unwrap_or_default();
        let alias = m
            .alias
            .clone()
            .unwrap_or_else(|| primary.split('@').next().unwrap_or("").to_string());
        let mut s = SimMailbox::new(guid, &alias, &primary, now);
        if let Some(id) = &m.external_directory_object_id {
            s.external_directory_object_id = id.clone();
        }
        s.immutable_id = m.immutable_id.clone().unwrap_or_default();
        s.user_principal_name = m.user_principal_name.clone().unwrap_or(primary.clone());
        s.windows_email_address = m.windows_email_address.clone().unwrap_or(primary.clone());
        if let Some(d) = &m.display_name {
            s.display_name = d.clone();
        }
        if !m.email_addresses.is_empty() {
            s.email_addresses = m.email_addresses.clone();
        }
        for (i, v) in m.custom_attributes.iter().enumerate() {
            if let Some(v) = v {
                s.set_custom_attribute(i as u8 + 1, v);
            }
        }
        for (i, v) in m.extension_custom_attributes.iter().enumerate() {
            s.set_extension_custom_attribute(i as u8 + 1, v.clone());
        }
        s.hidden_from_address_lists_enabled = m.hidden_from_address_lists_enabled;
        s.kind =
            RecipientKind::from_details(&m.recipient_type_details).unwrap_or(RecipientKind::User);
        s.is_dir_synced = m.is_dir_synced;
        s.is_exchange_cloud_managed = m.is_exchange_cloud_managed;
        s.legacy_exchange_dn = m.legacy_exchange_dn.clone();
        s.in_place_holds = m.in_place_holds.clone();
        if let Some(t) = m.when_changed_utc {
            s.when_changed = t;
            if s.when_created > t {
                s.when_created = t;
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_round_trip_keeps_the_writeback_properties() {
        let now: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let mut m = SimMailbox::new(Uuid::from_u128(7), "jdoe", "j.doe@contoso.com", now);
        m.email_addresses
            .insert(0, "smtp:jdoe@contoso.onmicrosoft.com".into());
        m.set_custom_attribute(3, "three");
        m.set_extension_custom_attribute(2, vec!["a".into(), "b".into()]);
        m.kind = RecipientKind::Room;
        let core = m.to_core();
        assert_eq!(
            core.primary_smtp_address.as_deref(),
            Some("j.doe@contoso.com")
        );
        assert_eq!(core.custom_attributes[2].as_deref(), Some("three"));
        assert_eq!(core.recipient_type_details, "RoomMailbox");
        let back = SimMailbox::from_core(&core, m.guid, now);
        assert_eq!(back.email_addresses, m.email_addresses);
        assert_eq!(back.custom_attributes, m.custom_attributes);
        assert_eq!(
            back.extension_custom_attributes,
            m.extension_custom_attributes
        );
        assert_eq!(back.kind, RecipientKind::Room);
    }
}
