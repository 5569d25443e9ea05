//! A Get-Mailbox record decoded straight from its JSON text into a [`Mailbox`], without a
//! tree of values: only the properties read are kept (borrowed where the text has no escape),
//! every other property and annotation is skipped unparsed.
//!
//! It applies exactly [`mailbox_from_record`]'s rules, and only decides what those rules
//! accept: a record they would refuse (a property of the wrong shape, a record that is not an
//! object, a property named twice) is read again as a tree by [`mailbox_from_record`], so its
//! error is the same word for word. The two are compared over generated and real records
//! (`wire/mailbox_tests.rs`).

use std::borrow::Cow;
use std::fmt;

use exo_writeback_core::mailbox::Mailbox;
use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Number;
use serde_json::value::RawValue;

use super::{mailbox_from_record, parse_timestamp, record_identity, record_key, record_value};

/// A record read: the identity it is de-duplicated by ([`record_key`]) and the mailbox, or
/// why it cannot be read.
#[derive(Debug, Clone, PartialEq)]
pub struct MailboxRecord {
    pub key: Option<String>,
    pub mailbox: Result<Mailbox, RecordProblem>,
}

/// A record that cannot be read: its name, what is wrong, and the ids still readable in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordProblem {
    pub name: String,
    pub problem: String,
    pub external_directory_object_id: Option<String>,
    pub primary_smtp_address: Option<String>,
}

/// Decodes one Get-Mailbox record from its text (see the module's documentation).
pub fn mailbox_from_raw(raw: &RawValue) -> MailboxRecord {
    // A JSON array would fill the struct by position: only an object is read directly.
    let object = raw.get().trim_start().starts_with('{');
    if object && let Ok(wire) = serde_json::from_str::<Wire<'_>>(raw.get()) {
        let key = wire.key();
        if let Some(mailbox) = wire.convert() {
            return MailboxRecord {
                key,
                mailbox: Ok(mailbox),
            };
        }
    }
    let record = match record_value(raw) {
        Ok(record) => record,
        Err(problem) => {
            return MailboxRecord {
                key: None,
                mailbox: Err(RecordProblem {
                    name: "(unnamed record)".into(),
                    problem,
                    external_directory_object_id: None,
                    primary_smtp_address: None,
                }),
            };
        }
    };
    from_tree(&record)
}

/// A record read as a tree, key by key ([`mailbox_from_record`]): what the direct decoder
/// must agree with, and how a record it would refuse is read.
pub(crate) fn from_tree(record: &serde_json::Value) -> MailboxRecord {
    let (external_directory_object_id, primary_smtp_address) = record_identity(record);
    MailboxRecord {
        key: record_key(record),
        mailbox: mailbox_from_record(record).map_err(|(name, problem)| RecordProblem {
            name,
            problem,
            external_directory_object_id,
            primary_smtp_address,
        }),
    }
}

/// A property's value, whatever its JSON shape (an object's content is skipped).
#[derive(Debug)]
enum Loose<'a> {
    Null,
    Bool(bool),
    Number(Number),
    Text(Cow<'a, str>),
    List(Vec<Loose<'a>>),
    Object,
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Loose::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Loose::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Loose::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Loose::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Loose::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
        // JSON has no NaN or infinity: a parsed number always has a `Number`.
        Ok(Number::from_f64(n).map_or(Loose::Null, Loose::Number))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Loose::Text(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Loose::Text(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Loose::Text(Cow::Owned(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Loose<'de>>()? {
            items.push(item);
        }
        Ok(Loose::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose::Object)
    }
}

type Prop<'a> = Option<Loose<'a>>;

/// The properties a mailbox is read from, and those it is named and keyed by. A property
/// named twice fails the derive (`duplicate field`): the tree reads it then.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow, rename = "ExternalDirectoryObjectId")]
    external_directory_object_id: Prop<'a>,
    #[serde(borrow, rename = "Guid")]
    guid: Prop<'a>,
    #[serde(borrow, rename = "ExchangeGuid")]
    exchange_guid: Prop<'a>,
    #[serde(borrow, rename = "Identity")]
    identity: Prop<'a>,
    #[serde(borrow, rename = "ImmutableId")]
    immutable_id: Prop<'a>,
    #[serde(borrow, rename = "UserPrincipalName")]
    user_principal_name: Prop<'a>,
    #[serde(borrow, rename = "PrimarySmtpAddress")]
    primary_smtp_address: Prop<'a>,
    #[serde(borrow, rename = "WindowsEmailAddress")]
    windows_email_address: Prop<'a>,
    #[serde(borrow, rename = "DisplayName")]
    display_name: Prop<'a>,
    #[serde(borrow, rename = "Alias")]
    alias: Prop<'a>,
    #[serde(borrow, rename = "EmailAddresses")]
    email_addresses: Prop<'a>,
    #[serde(borrow, rename = "CustomAttribute1")]
    ca1: Prop<'a>,
    #[serde(borrow, rename = "CustomAttribute2")]
    ca2: Prop<'a>,
    #[serde(borrow, rename = "CustomAttribute3")]
    ca3: Prop<'a>,
    #[serde(borrow, rename = "CustomAttribute4")]
    ca4: Prop<'a>,
    #[serde(borrow, rename = "CustomAttribute5")]
    ca5: Prop<'a>,
    #[serde(borrow, rename = "CustomAttribute6")]
    ca6: Prop<'a>,
    #[serde(borrow, rename = "CustomAttribute7")]
    ca7: Prop<'a>,
    #[serde(borrow, rename = "CustomAttribute8")]
    ca8: Prop<'a>,
    #[serde(borrow, rename = "CustomAttribute9")]
    ca9: Prop<'a>,
    #[serde(borrow, rename = "CustomAttribute10")]
    ca10: Prop<'a>,
    #[serde(borrow, rename = "CustomAttribute11")]
    ca11: Prop<'a>,
    #[serde(borrow, rename = "CustomAttribute12")]
    ca12: Prop<'a>,
    #[serde(borrow, rename = "CustomAttribute13")]
    ca13: Prop<'a>,
    #[serde(borrow, rename = "CustomAttribute14")]
    ca14: Prop<'a>,
    #[serde(borrow, rename = "CustomAttribute15")]
    ca15: Prop<'a>,
    #[serde(borrow, rename = "ExtensionCustomAttribute1")]
    eca1: Prop<'a>,
    #[serde(borrow, rename = "ExtensionCustomAttribute2")]
    eca2: Prop<'a>,
    #[serde(borrow, rename = "ExtensionCustomAttribute3")]
    eca3: Prop<'a>,
    #[serde(borrow, rename = "ExtensionCustomAttribute4")]
    eca4: Prop<'a>,
    #[serde(borrow, rename = "ExtensionCustomAttribute5")]
    eca5: Prop<'a>,
    #[serde(borrow, rename = "HiddenFromAddressListsEnabled")]
    hidden_from_address_lists_enabled: Prop<'a>,
    #[serde(borrow, rename = "RecipientTypeDetails")]
    recipient_type_details: Prop<'a>,
    #[serde(borrow, rename = "IsDirSynced")]
    is_dir_synced: Prop<'a>,
    #[serde(borrow, rename = "IsExchangeCloudManaged")]
    is_exchange_cloud_managed: Prop<'a>,
    #[serde(borrow, rename = "LegacyExchangeDN")]
    legacy_exchange_dn: Prop<'a>,
    #[serde(borrow, rename = "ArchiveStatus")]
    archive_status: Prop<'a>,
    #[serde(borrow, rename = "InPlaceHolds")]
    in_place_holds: Prop<'a>,
    #[serde(borrow, rename = "WhenChangedUTC")]
    when_changed_utc: Prop<'a>,
}

/// `Reader::string`'s rule; `None` where it fails.
fn text(p: Prop<'_>) -> Option<Option<String>> {
    match p {
        None | Some(Loose::Null) => Some(None),
        Some(Loose::Text(s)) if s.is_empty() => Some(None),
        Some(Loose::Text(s)) => Some(Some(s.into_owned())),
        Some(Loose::Number(n)) => Some(Some(n.to_string())),
        Some(Loose::Bool(b)) => Some(Some(b.to_string())),
        Some(Loose::List(_) | Loose::Object) => None,
    }
}

/// `Reader::bool`'s rule.
fn flag(p: Prop<'_>) -> Option<bool> {
    match p {
        None | Some(Loose::Null) => Some(false),
        Some(Loose::Bool(b)) => Some(b),
        Some(Loose::Text(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" | "" => Some(false),
            _ => None,
        },
        Some(Loose::Number(n)) => Some(n.as_f64().is_some_and(|f| f != 0.0)),
        Some(Loose::List(_) | Loose::Object) => None,
    }
}

/// `Reader::list`'s rule.
fn list(p: Prop<'_>) -> Option<Vec<String>> {
    match p {
        None | Some(Loose::Null) => Some(Vec::new()),
        Some(Loose::List(items)) => items
            .into_iter()
            .filter_map(|item| match item {
                Loose::Null => None,
                Loose::Text(s) if s.is_empty() => None,
                Loose::Text(s) => Some(Some(s.into_owned())),
                Loose::Number(n) => Some(Some(n.to_string())),
                _ => Some(None),
            })
            .collect(),
        Some(_) => None,
    }
}

/// `record_key`'s rule: the first of these that is non-empty text.
fn key_part(name: &str, p: &Prop<'_>) -> Option<String> {
    match p {
        Some(Loose::Text(s)) if !s.trim().is_empty() => {
            Some(format!("{name}:{}", s.trim().to_ascii_lowercase()))
        }
        _ => None,
    }
}

impl Wire<'_> {
    fn key(&self) -> Option<String> {
        key_part(
            "ExternalDirectoryObjectId",
            &self.external_directory_object_id,
        )
        .or_else(|| key_part("Guid", &self.guid))
        .or_else(|| key_part("ExchangeGuid", &self.exchange_guid))
        .or_else(|| key_part("Identity", &self.identity))
    }

    /// The mailbox, as `convert` builds it; `None` where `convert` fails.
    fn convert(self) -> Option<Mailbox> {
        let custom = [
            self.ca1, self.ca2, self.ca3, self.ca4, self.ca5, self.ca6, self.ca7, self.ca8,
            self.ca9, self.ca10, self.ca11, self.ca12, self.ca13, self.ca14, self.ca15,
        ];
        let mut custom_attributes: [Option<String>; 15] = Default::default();
        for (slot, p) in custom_attributes.iter_mut().zip(custom) {
            *slot = text(p)?;
        }
        let extension = [self.eca1, self.eca2, self.eca3, self.eca4, self.eca5];
        let mut extension_custom_attributes: [Vec<String>; 5] = Default::default();
        for (slot, p) in extension_custom_attributes.iter_mut().zip(extension) {
            *slot = list(p)?;
        }
        let when_changed_utc = match text(self.when_changed_utc)? {
            None => None,
            Some(s) => Some(parse_timestamp(&s)?),
        };
        Some(Mailbox {
            external_directory_object_id: text(self.external_directory_object_id)?,
            immutable_id: text(self.immutable_id)?,
            user_principal_name: text(self.user_principal_name)?,
            primary_smtp_address: text(self.primary_smtp_address)?,
            windows_email_address: text(self.windows_email_address)?,
            display_name: text(self.display_name)?,
            alias: text(self.alias)?,
            email_addresses: list(self.email_addresses)?,
            custom_attributes,
            extension_custom_attributes,
            hidden_from_address_lists_enabled: flag(self.hidden_from_address_lists_enabled)?,
            recipient_type_details: text(self.recipient_type_details)?.unwrap_or_default(),
            is_dir_synced: flag(self.is_dir_synced)?,
            is_exchange_cloud_managed: flag(self.is_exchange_cloud_managed)?,
            legacy_exchange_dn: text(self.legacy_exchange_dn)?,
            archive_status: text(self.archive_status)?,
            in_place_holds: list(self.in_place_holds)?,
            when_changed_utc,
            safe_senders_hash: None,
            blocked_senders_hash: None,
            safe_recipients_hash: None,
            uc_voice_mail_settings: Vec::new(),
            ..Mailbox::default()
        })
    }
}

#[cfg(test)]
#[path = "mailbox_tests.rs"]
mod tests;
