//! The emulator's mailbox model and its wire rendering.
//!
//! A [`SimMailbox`] keeps only what varies between mailboxes (the properties the writeback
//! reads, plus the identity and date properties). Everything else in a Get-Mailbox record is
//! rendered from a template: the real capture in `template_mailbox.json` (fixture A1 of
//! `shared/fixtures/exo-real`), in its key order and with its annotations, so the emulator's
//! records look like the real service's without storing 250 properties per mailbox.

use std::fmt::Write as _;
use std::sync::LazyLock;

use exo_writeback_core::mailbox::Mailbox;
use jiff::Timestamp;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;
use uuid::Uuid;

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
        self.email_addresses
            .iter()
            .find_map(|a| a.strip_prefix("SMTP:"))
            .unwrap_or("")
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
        self.custom_attributes
            .iter()
            .find(|(i, _)| *i == n)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    pub fn set_custom_attribute(&mut self, n: u8, value: &str) {
        self.custom_attributes.retain(|(i, _)| *i != n);
        if !value.is_empty() {
            self.custom_attributes.push((n, value.to_string()));
            self.custom_attributes.sort_by_key(|(i, _)| *i);
        }
    }

    pub fn extension_custom_attribute(&self, n: u8) -> &[String] {
        self.extension_custom_attributes
            .iter()
            .find(|(i, _)| *i == n)
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    }

    pub fn set_extension_custom_attribute(&mut self, n: u8, values: Vec<String>) {
        self.extension_custom_attributes.retain(|(i, _)| *i != n);
        let values: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        if !values.is_empty() {
            self.extension_custom_attributes.push((n, values));
            self.extension_custom_attributes.sort_by_key(|(i, _)| *i);
        }
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

/// An ISO date with 7 fractional digits: `2024-04-10T08:56:22.0000000Z` (`utc_z`) or
/// `…+00:00`.
pub fn format_exchange_date(t: Timestamp, utc_z: bool) -> String {
    let mut s = t.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let _ = write!(s, ".{:07}", t.subsec_nanosecond().max(0) / 100);
    s.push_str(if utc_z { "Z" } else { "+00:00" });
    s
}

/// How a property is rendered.
#[derive(Debug, Clone)]
enum Slot {
    /// A property the mailbox models; rendered from its fields.
    Dynamic(&'static str),
    /// A fixed property, pre-rendered (`"Key@...":…,"Key":value`).
    Fixed { name: String, rendered: String },
}

/// The properties this emulator models per mailbox, with the annotation each carries.
const DYNAMIC: &[&str] = &[
    "ExchangeGuid",
    "MailboxLocations",
    "SamAccountName",
    "UserPrincipalName",
    "WindowsLiveID",
    "MicrosoftOnlineServicesID",
    "NetID",
    "ArchiveGuid",
    "ArchiveName",
    "ArchiveStatus",
    "ArchiveState",
    "ImmutableId",
    "WhenMailboxCreated",
    "InPlaceHolds",
    "IsDirSynced",
    "IsExchangeCloudManaged",
    "AdministrativeUnits",
    "Alias",
    "CustomAttribute1",
    "CustomAttribute2",
    "CustomAttribute3",
    "CustomAttribute4",
    "CustomAttribute5",
    "CustomAttribute6",
    "CustomAttribute7",
    "CustomAttribute8",
    "CustomAttribute9",
    "CustomAttribute10",
    "CustomAttribute11",
    "CustomAttribute12",
    "CustomAttribute13",
    "CustomAttribute14",
    "CustomAttribute15",
    "ExtensionCustomAttribute1",
    "ExtensionCustomAttribute2",
    "ExtensionCustomAttribute3",
    "ExtensionCustomAttribute4",
    "ExtensionCustomAttribute5",
    "DisplayName",
    "EmailAddresses",
    "ExternalDirectoryObjectId",
    "HiddenFromAddressListsEnabled",
    "LegacyExchangeDN",
    "PrimarySmtpAddress",
    "RecipientType",
    "RecipientTypeDetails",
    "WindowsEmailAddress",
    "Identity",
    "Id",
    "Name",
    "DistinguishedName",
    "WhenChanged",
    "WhenCreated",
    "WhenChangedUTC",
    "WhenCreatedUTC",
    "ExchangeObjectId",
    "Guid",
    "IsResource",
    "IsShared",
    "ResourceType",
    "RoomMailboxAccountEnabled",
    "ForwardingSmtpAddress",
    "EnforcedTimestamps",
    "UMDtmfMap",
    "StsRefreshTokensValidFrom",
];

/// An object read with its keys in document order (serde_json's map would sort them).
struct OrderedObject(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for OrderedObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedObject, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(OrderedObject(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(serde::Deserialize)]
struct TemplateEnvelope {
    value: Vec<OrderedObject>,
}

/// The template: every property of the real capture, in its order, with
/// `IsExchangeCloudManaged` (newer than the capture) inserted after `IsDirSynced`.
static TEMPLATE: LazyLock<Vec<Slot>> = LazyLock::new(|| {
    let text = include_str!("template_mailbox.json");
    // The template is compiled in and checked by the tests; a parse failure is a build bug.
    let envelope: TemplateEnvelope = match serde_json::from_str(text) {
        Ok(e) => e,
        Err(_) => return Vec::new(),
    };
    let Some(record) = envelope.value.into_iter().next() else {
        return Vec::new();
    };
    let mut slots = Vec::new();
    let mut pending_annotations = String::new();
    for (key, value) in record.0 {
        if key.contains('@') {
            let _ = write!(
                pending_annotations,
                "{}:{},",
                json_str(&key),
                serde_json::to_string(&value).unwrap_or_default()
            );
            continue;
        }
        if let Some(d) = DYNAMIC.iter().find(|d| **d == key) {
            slots.push(Slot::Dynamic(d));
            pending_annotations.clear();
        } else {
            let rendered = format!(
                "{pending_annotations}{}:{}",
                json_str(&key),
                serde_json::to_string(&value).unwrap_or_default()
            );
            pending_annotations.clear();
            slots.push(Slot::Fixed {
                name: key.clone(),
                rendered,
            });
        }
        if key == "IsDirSynced" {
            slots.push(Slot::Dynamic("IsExchangeCloudManaged"));
        }
    }
    slots
});

/// Names of every property a rendered record carries, in order.
pub fn property_names() -> Vec<String> {
    TEMPLATE
        .iter()
        .map(|s| match s {
            Slot::Dynamic(n) => n.to_string(),
            Slot::Fixed { name, .. } => name.clone(),
        })
        .collect()
}

/// The canonical spelling of a property name (case-insensitive lookup), if it exists.
pub fn canonical_property(name: &str) -> Option<&'static str> {
    TEMPLATE.iter().find_map(|s| match s {
        Slot::Dynamic(n) if n.eq_ignore_ascii_case(name) => Some(*n),
        Slot::Fixed { name: n, .. } if n.eq_ignore_ascii_case(name) => Some(n.as_str()),
        _ => None,
    })
}

pub(crate) fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_string())
}

const COLLECTION: &str = "#Collection(String)";

impl SimMailbox {
    /// Appends this mailbox as a Get-Mailbox record. `select`: property names to keep
    /// (canonical spelling), or `None` for all.
    pub fn render_into(&self, out: &mut String, select: Option<&[&str]>, tenant_domain: &str) {
        out.push('{');
        let mut first = true;
        for slot in TEMPLATE.iter() {
            let name: &str = match slot {
                Slot::Dynamic(n) => n,
                Slot::Fixed { name, .. } => name,
            };
            if let Some(sel) = select
                && !sel.contains(&name)
            {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            match slot {
                Slot::Fixed { rendered, .. } => out.push_str(rendered),
                Slot::Dynamic(n) => self.render_dynamic(out, n, tenant_domain),
            }
        }
        out.push('}');
    }

    fn render_dynamic(&self, out: &mut String, name: &str, tenant_domain: &str) {
        let s = |out: &mut String, v: &str| {
            let _ = write!(out, "\"{name}\":{}", json_str(v));
        };
        let b = |out: &mut String, v: bool| {
            let _ = write!(out, "\"{name}\":{v}");
        };
        let null = |out: &mut String| {
            let _ = write!(out, "\"{name}\":null");
        };
        let list = |out: &mut String, v: &[String]| {
            let _ = write!(
                out,
                "\"{name}@odata.type\":\"{COLLECTION}\",\"{name}\":{}",
                json_list(v)
            );
        };
        let guid = |out: &mut String, g: Uuid| {
            let _ = write!(
                out,
                "\"{name}@data.type\":\"System.Guid\",\"{name}@odata.type\":\"#Guid\",\"{name}\":\"{g}\""
            );
        };
        let date = |out: &mut String, t: Timestamp, z: bool| {
            let _ = write!(
                out,
                "\"{name}@data.type\":\"System.DateTime\",\"{name}\":\"{}\"",
                format_exchange_date(t, z)
            );
        };
        if let Some(n) = name.strip_prefix("CustomAttribute") {
            let n: u8 = n.parse().unwrap_or(0);
            return s(out, self.custom_attribute(n));
        }
        if let Some(n) = name.strip_prefix("ExtensionCustomAttribute") {
            let n: u8 = n.parse().unwrap_or(0);
            return list(out, self.extension_custom_attribute(n));
        }
        match name {
            "ExchangeGuid" => guid(out, self.exchange_guid),
            "MailboxLocations" => list(
                out,
                &[format!(
                    "1;{};Primary;{};00000000-0000-0000-0000-000000000000",
                    self.exchange_guid, tenant_domain
                )],
            ),
            "SamAccountName" => s(out, &format!("${}", &self.guid.simple().to_string()[..20])),
            "UserPrincipalName" | "WindowsLiveID" | "MicrosoftOnlineServicesID" => {
                s(out, &self.user_principal_name)
            }
            "NetID" => s(out, &format!("{:016X}", (self.guid.as_u128() >> 64) as u64)),
            "ArchiveGuid" => guid(out, self.archive_guid.unwrap_or(Uuid::nil())),
            "ArchiveName" => {
                let names = if self.archive_guid.is_some() {
                    vec![format!("In-Place Archive -{}", self.display_name)]
                } else {
                    Vec::new()
                };
                list(out, &names)
            }
            "ArchiveStatus" => s(out, self.archive_status()),
            "ArchiveState" => s(
                out,
                if self.archive_guid.is_some() {
                    "Local"
                } else {
                    "None"
                },
            ),
            "ImmutableId" => s(out, &self.immutable_id),
            "WhenMailboxCreated" => date(out, self.when_created, false),
            "StsRefreshTokensValidFrom" => date(out, self.when_created, false),
            "InPlaceHolds" => list(out, &self.in_place_holds),
            "IsDirSynced" => b(out, self.is_dir_synced),
            "IsExchangeCloudManaged" => b(out, self.is_exchange_cloud_managed),
            "AdministrativeUnits" | "UMDtmfMap" => list(out, &[]),
            "EnforcedTimestamps" => s(out, "[]"),
            "ForwardingSmtpAddress" => null(out),
            "Alias" => s(out, &self.alias),
            "DisplayName" => s(out, &self.display_name),
            "EmailAddresses" => list(out, &self.email_addresses),
            "ExternalDirectoryObjectId" => s(out, &self.external_directory_object_id),
            "HiddenFromAddressListsEnabled" => b(out, self.hidden_from_address_lists_enabled),
            "LegacyExchangeDN" => s(out, &self.legacy_exchange_dn()),
            "PrimarySmtpAddress" => s(out, self.primary_smtp_address()),
            "RecipientType" => s(out, "UserMailbox"),
            "RecipientTypeDetails" => s(out, self.kind.details()),
            "WindowsEmailAddress" => s(out, &self.windows_email_address),
            "Identity" | "Id" => s(out, self.identity()),
            "Name" => s(out, &self.name),
            "DistinguishedName" => s(
                out,
                &format!(
                    "CN={},OU={},OU=Microsoft Exchange Hosted Organizations,DC=EMULATOR,DC=PROD,DC=OUTLOOK,DC=COM",
                    self.name, tenant_domain
                ),
            ),
            "WhenChanged" => date(out, self.when_changed, false),
            "WhenCreated" => date(out, self.when_created, false),
            "WhenChangedUTC" => date(out, self.when_changed, true),
            "WhenCreatedUTC" => date(out, self.when_created, true),
            "ExchangeObjectId" | "Guid" => guid(out, self.guid),
            "IsResource" => b(
                out,
                matches!(self.kind, RecipientKind::Room | RecipientKind::Equipment),
            ),
            "IsShared" => b(out, self.kind == RecipientKind::Shared),
            "ResourceType" => match self.kind {
                RecipientKind::Room => s(out, "Room"),
                RecipientKind::Equipment => s(out, "Equipment"),
                _ => null(out),
            },
            "RoomMailboxAccountEnabled" => match self.kind {
                RecipientKind::Room => b(out, false),
                _ => null(out),
            },
            _ => null(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_keeps_every_property_of_the_capture() {
        let names = property_names();
        // 256 properties in the capture, plus IsExchangeCloudManaged.
        assert_eq!(names.len(), 257);
        assert_eq!(names[0], "AcceptMessagesOnlyFromWithDisplayNames");
        let synced = names.iter().position(|n| n == "IsDirSynced").unwrap();
        assert_eq!(names[synced + 1], "IsExchangeCloudManaged");
        assert_eq!(canonical_property("whenchangedutc"), Some("WhenChangedUTC"));
        assert_eq!(canonical_property("office"), Some("Office"));
        assert_eq!(canonical_property("nope"), None);
    }

    #[test]
    fn dates_have_seven_fractional_digits() {
        let t: Timestamp = "2024-04-10T08:56:22.1234567Z".parse().unwrap();
        assert_eq!(
            format_exchange_date(t, true),
            "2024-04-10T08:56:22.1234567Z"
        );
        assert_eq!(
            format_exchange_date(t, false),
            "2024-04-10T08:56:22.1234567+00:00"
        );
    }

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
