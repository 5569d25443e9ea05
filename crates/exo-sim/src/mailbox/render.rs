//! A mailbox as a Get-Mailbox record: every property of the real capture
//! (`template_mailbox.json`), in its order and with its annotations, the modelled ones
//! rendered from the mailbox's fields; and the property names a `$select` may name.

use std::fmt::Write as _;
use std::sync::LazyLock;

use jiff::Timestamp;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;
use uuid::Uuid;

use super::{RecipientKind, SimMailbox};

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
}
