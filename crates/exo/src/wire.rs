//! The wire shapes of InvokeCommand responses and their translation into the core's
//! [`Mailbox`]. The service returns open property bags (`Exchange.GenericHashTable`), so
//! records are read key by key, tolerating every quirk seen in the real captures.

use std::collections::HashMap;

use exo_writeback_core::mailbox::Mailbox;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The Get-Mailbox properties the writeback profiles read (used for `$select`).
pub const MAILBOX_PROPERTIES: &[&str] = &[
    "Identity",
    "Guid",
    "ExternalDirectoryObjectId",
    "ImmutableId",
    "UserPrincipalName",
    "PrimarySmtpAddress",
    "WindowsEmailAddress",
    "DisplayName",
    "Alias",
    "EmailAddresses",
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
    "HiddenFromAddressListsEnabled",
    "RecipientTypeDetails",
    "IsDirSynced",
    "IsExchangeCloudManaged",
    "LegacyExchangeDN",
    "ArchiveStatus",
    "InPlaceHolds",
    "WhenChangedUTC",
];

/// One decoded result page of InvokeCommand.
#[derive(Debug, Clone)]
pub struct Page {
    /// The readable records, in the page's order, as their JSON text (checked JSON): a
    /// listing decodes each straight into its type (`mailbox.rs`), without a tree of values.
    pub records: Vec<Box<RawValue>>,
    pub next_link: Option<String>,
    pub warnings: Vec<String>,
    /// `@adminapi.errors`: cmdlet errors reported in a successful page. The module writes
    /// each as an error and marks the run failed (PROTOCOL.md §2).
    pub errors: Vec<String>,
    /// Records of the page that carried bytes that are not UTF-8 (not in `records`).
    pub unreadable: Vec<UnreadableRecord>,
}

/// A record of a page that carried invalid UTF-8: it is skipped whole (nothing of it may be
/// written, and a replacement character must never reach AD). Its identity is kept when
/// those properties themselves were clean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableRecord {
    /// Its index in the page's `value` array.
    pub position: usize,
    /// A name for messages (see [`record_name`]), from clean properties only.
    pub name: String,
    pub external_directory_object_id: Option<String>,
    pub primary_smtp_address: Option<String>,
    /// The top-level properties whose name or value held invalid UTF-8.
    pub properties: Vec<String>,
}

impl UnreadableRecord {
    /// What is wrong, for [`crate::ExoError::MalformedRecord`].
    pub fn problem(&self) -> String {
        let what = if self.properties.is_empty() {
            "the record".to_string()
        } else {
            let s = if self.properties.len() == 1 { "" } else { "s" };
            format!("the value{s} of {}", self.properties.join(", "))
        };
        format!(
            "{what} arrived as bytes that are not valid UTF-8 text (the response said charset=utf-8); the record cannot be read safely"
        )
    }
}

/// Stands for each invalid UTF-8 sequence while a page is decoded. A Unicode noncharacter:
/// it is never exchanged as text, and a page that contains it anyway (raw or as a `\u`
/// escape) is refused whole instead, so every marker found comes from an invalid sequence.
const INVALID_UTF8_MARKER: char = '\u{FDD0}';

/// Replaces each invalid UTF-8 sequence of `body` with the marker. `None` when the body
/// already holds the marker (raw, or as a JSON escape in any case).
fn mark_invalid_utf8(body: &[u8]) -> Option<String> {
    let mut raw = [0u8; 4];
    let raw = INVALID_UTF8_MARKER.encode_utf8(&mut raw).as_bytes();
    let escape = format!("\\u{:04x}", u32::from(INVALID_UTF8_MARKER));
    let holds = |needle: &[u8], ignore_case: bool| {
        body.windows(needle.len()).any(|w| {
            if ignore_case {
                w.eq_ignore_ascii_case(needle)
            } else {
                w == needle
            }
        })
    };
    if holds(raw, false) || holds(escape.as_bytes(), true) {
        return None;
    }
    let mut out = String::with_capacity(body.len() + 16);
    for chunk in body.utf8_chunks() {
        out.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            out.push(INVALID_UTF8_MARKER);
        }
    }
    Some(out)
}

fn holds_marker(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains(INVALID_UTF8_MARKER),
        Value::Array(items) => items.iter().any(holds_marker),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.contains(INVALID_UTF8_MARKER) || holds_marker(v)),
        _ => false,
    }
}

/// A clean, non-empty text property of a record.
fn clean_text(record: &Value, key: &str) -> Option<String> {
    record
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty() && !s.contains(INVALID_UTF8_MARKER))
        .map(str::to_owned)
}

fn unreadable(position: usize, record: &Value) -> UnreadableRecord {
    let name = [
        "PrimarySmtpAddress",
        "UserPrincipalName",
        "ExternalDirectoryObjectId",
        "Identity",
        "Guid",
        "Name",
    ]
    .iter()
    .find_map(|key| clean_text(record, key))
    .unwrap_or_else(|| "(a record whose identity is not readable)".to_owned());
    let properties = match record {
        Value::Object(map) => map
            .iter()
            .filter(|(k, v)| k.contains(INVALID_UTF8_MARKER) || holds_marker(v))
            .map(|(k, _)| {
                if k.contains(INVALID_UTF8_MARKER) {
                    "a property whose name is not valid UTF-8".to_owned()
                } else {
                    k.clone()
                }
            })
            .collect(),
        _ => Vec::new(),
    };
    UnreadableRecord {
        position,
        name,
        external_directory_object_id: clean_text(record, "ExternalDirectoryObjectId"),
        primary_smtp_address: clean_text(record, "PrimarySmtpAddress"),
        properties,
    }
}

/// Decodes a response body into a page. A body that is not a complete JSON object with a
/// `value` array is an error (a truncated page must never look like the end of the data).
///
/// A body that is not valid UTF-8 is decoded record by record: each invalid sequence is
/// replaced by a marker that cannot occur in real data, and every record holding a marker
/// goes to `unreadable` (the others are read as usual). Invalid UTF-8 outside the records
/// (in the envelope, the nextLink, or where JSON syntax is expected) fails the page.
pub fn decode_page(body: &[u8]) -> Result<Page, String> {
    if let Err(e) = std::str::from_utf8(body) {
        let at = e.valid_up_to();
        let Some(marked) = mark_invalid_utf8(body) else {
            return Err(format!(
                "the body is not valid UTF-8 (at byte {at}) and already holds U+FDD0, the \
                 marker invalid sequences are read with"
            ));
        };
        let (mut page, envelope_marked) = decode_json_page(marked.as_bytes())
            .map_err(|problem| format!("{problem} (the body is not valid UTF-8 at byte {at})"))?;
        if envelope_marked {
            return Err(format!(
                "the body is not valid UTF-8 (at byte {at}) outside the records"
            ));
        }
        let records = std::mem::take(&mut page.records);
        for (position, record) in records.into_iter().enumerate() {
            // A marker anywhere in a record's text is in one of its names or values (JSON's
            // syntax is ASCII), as `holds_marker` would find it in the parsed record.
            if record.get().contains(INVALID_UTF8_MARKER) {
                let parsed = record_value(&record)?;
                page.unreadable.push(unreadable(position, &parsed));
            } else {
                page.records.push(record);
            }
        }
        return Ok(page);
    }
    decode_json_page(body).map(|(page, _)| page)
}

/// A record's JSON text parsed into a tree (the generic cmdlets' records, and a record that
/// failed the direct decoding, read again for the message).
pub fn record_value(record: &RawValue) -> Result<Value, String> {
    serde_json::from_str(record.get()).map_err(|e| format!("a record cannot be read: {e}"))
}

/// Decodes a page's JSON; also says whether its envelope holds the invalid-UTF-8 marker. The
/// records are kept as their text; everything else is read as before, and a body that is not
/// an object of JSON values is read as a whole for the same error as ever.
fn decode_json_page(body: &[u8]) -> Result<(Page, bool), String> {
    // Duplicate names: the last one counts, as in a parsed object.
    let Ok(mut top) = serde_json::from_slice::<HashMap<String, Box<RawValue>>>(body) else {
        return decode_json_value_page(body);
    };
    let records = match top.remove("value") {
        Some(raw) => match serde_json::from_str::<Vec<Box<RawValue>>>(raw.get()) {
            Ok(records) => records,
            Err(_) => {
                let other = record_value(&raw)?;
                return Err(format!("\"value\" is {} instead of an array", kind(&other)));
            }
        },
        None => return Err("the body has no \"value\" array".into()),
    };
    let mut obj = Map::new();
    for (key, raw) in top {
        obj.insert(key, record_value(&raw)?);
    }
    envelope(records, obj)
}

/// [`decode_json_page`] for a body that is not an object of JSON values: its error.
fn decode_json_value_page(body: &[u8]) -> Result<(Page, bool), String> {
    let json: Value = serde_json::from_slice(body).map_err(|e| {
        if e.is_eof() {
            format!(
                "body ends early after {} bytes (truncated JSON)",
                body.len()
            )
        } else {
            format!("invalid JSON: {e}")
        }
    })?;
    let Value::Object(mut obj) = json else {
        return Err("the body is JSON but not an object".into());
    };
    let records = match obj.remove("value") {
        Some(Value::Array(v)) => v,
        Some(other) => {
            return Err(format!("\"value\" is {} instead of an array", kind(&other)));
        }
        None => return Err("the body has no \"value\" array".into()),
    };
    let records = records
        .iter()
        .map(serde_json::value::to_raw_value)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("a record cannot be read: {e}"))?;
    envelope(records, obj)
}

/// The page around its records: the next link, the warnings and errors, and whether the
/// envelope holds the invalid-UTF-8 marker.
fn envelope(records: Vec<Box<RawValue>>, obj: Map<String, Value>) -> Result<(Page, bool), String> {
    let next_link = match obj.get("@odata.nextLink") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(format!("\"@odata.nextLink\" is {}", kind(other))),
    };
    let warnings = obj
        .get("@adminapi.warnings")
        .and_then(Value::as_array)
        .map(|w| {
            w.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let errors = match obj.get("@adminapi.errors") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|e| match e {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Some(other) => vec![match other {
            Value::String(s) => s.clone(),
            o => o.to_string(),
        }],
    };
    // Whether the envelope (everything but the records) holds the invalid-UTF-8 marker.
    let marked = obj
        .iter()
        .any(|(k, v)| k.contains(INVALID_UTF8_MARKER) || holds_marker(v));
    Ok((
        Page {
            records,
            next_link,
            warnings,
            errors,
            unreadable: Vec::new(),
        },
        marked,
    ))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A short name for a record in error messages: the first non-empty identifying property.
pub fn record_name(record: &Value) -> String {
    for key in [
        "PrimarySmtpAddress",
        "UserPrincipalName",
        "ExternalDirectoryObjectId",
        "Identity",
        "Guid",
        "Name",
    ] {
        if let Some(s) = record.get(key).and_then(Value::as_str)
            && !s.trim().is_empty()
        {
            return s.trim().to_owned();
        }
    }
    "(unnamed record)".to_owned()
}

/// `(ExternalDirectoryObjectId, PrimarySmtpAddress)` of a record, each when it is
/// non-empty readable text (for logging a record that cannot be decoded).
pub fn record_identity(record: &Value) -> (Option<String>, Option<String>) {
    (
        clean_text(record, "ExternalDirectoryObjectId"),
        clean_text(record, "PrimarySmtpAddress"),
    )
}

/// The identity used to de-duplicate records within one poll: ExternalDirectoryObjectId,
/// else Guid, else ExchangeGuid, else Identity (lower-cased).
pub fn record_key(record: &Value) -> Option<String> {
    for key in [
        "ExternalDirectoryObjectId",
        "Guid",
        "ExchangeGuid",
        "Identity",
    ] {
        if let Some(s) = record.get(key).and_then(Value::as_str)
            && !s.trim().is_empty()
        {
            return Some(format!("{key}:{}", s.trim().to_ascii_lowercase()));
        }
    }
    None
}

struct Reader<'a> {
    obj: &'a Map<String, Value>,
}

impl Reader<'_> {
    fn string(&self, key: &str) -> Result<Option<String>, String> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(other) => Err(format!("{key} is {} where text was expected", kind(other))),
        }
    }

    fn bool(&self, key: &str) -> Result<bool, String> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" | "" => Ok(false),
                _ => Err(format!("{key} is {s:?} where true/false was expected")),
            },
            Some(Value::Number(n)) => Ok(n.as_f64().is_some_and(|f| f != 0.0)),
            Some(other) => Err(format!(
                "{key} is {} where true/false was expected",
                kind(other)
            )),
        }
    }

    fn list(&self, key: &str) -> Result<Vec<String>, String> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|item| match item {
                    Value::Null => None,
                    Value::String(s) if s.is_empty() => None,
                    Value::String(s) => Some(Ok(s.clone())),
                    Value::Number(n) => Some(Ok(n.to_string())),
                    other => Some(Err(format!(
                        "{key} contains {} where text was expected",
                        kind(other)
                    ))),
                })
                .collect(),
            Some(other) => Err(format!("{key} is {} instead of a list", kind(other))),
        }
    }

    fn timestamp(&self, key: &str) -> Result<Option<jiff::Timestamp>, String> {
        match self.string(key)? {
            None => Ok(None),
            Some(s) => parse_timestamp(&s)
                .map(Some)
                .ok_or_else(|| format!("{key} {s:?} is not a date and time")),
        }
    }
}

/// Parses the service's date forms: ISO 8601 with up to 7 fractional digits and `Z` or an
/// offset, and the legacy `/Date(ms)/` form.
pub fn parse_timestamp(text: &str) -> Option<jiff::Timestamp> {
    let t = text.trim();
    if let Some(inner) = t.strip_prefix("/Date(").and_then(|r| r.strip_suffix(")/")) {
        let digits: String = inner
            .chars()
            .enumerate()
            .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && *c == '-'))
            .map(|(_, c)| c)
            .collect();
        let ms: i64 = digits.parse().ok()?;
        return jiff::Timestamp::from_millisecond(ms).ok();
    }
    t.parse::<jiff::Timestamp>().ok()
}

/// Translates one Get-Mailbox record. Unknown properties and annotations are ignored;
/// explicit nulls and `""` become `None`; a property of the wrong shape fails this record
/// with an error naming the mailbox.
pub fn mailbox_from_record(record: &Value) -> Result<Mailbox, (String, String)> {
    let name = record_name(record);
    let Value::Object(obj) = record else {
        return Err((
            name,
            format!("the record is {}, not an object", kind(record)),
        ));
    };
    convert(&Reader { obj }).map_err(|problem| (name, problem))
}

/// The names in [`MAILBOX_PROPERTIES`] that start with `prefix`, in its order (the custom
/// attributes' keys, not formatted per record).
fn numbered(prefix: &'static str) -> impl Iterator<Item = &'static str> {
    MAILBOX_PROPERTIES
        .iter()
        .copied()
        .filter(move |p| p.starts_with(prefix))
}

fn convert(r: &Reader<'_>) -> Result<Mailbox, String> {
    let mut custom_attributes: [Option<String>; 15] = Default::default();
    for (slot, name) in custom_attributes
        .iter_mut()
        .zip(numbered("CustomAttribute"))
    {
        *slot = r.string(name)?;
    }
    let mut extension_custom_attributes: [Vec<String>; 5] = Default::default();
    for (slot, name) in extension_custom_attributes
        .iter_mut()
        .zip(numbered("ExtensionCustomAttribute"))
    {
        *slot = r.list(name)?;
    }
    Ok(Mailbox {
        external_directory_object_id: r.string("ExternalDirectoryObjectId")?,
        immutable_id: r.string("ImmutableId")?,
        user_principal_name: r.string("UserPrincipalName")?,
        primary_smtp_address: r.string("PrimarySmtpAddress")?,
        windows_email_address: r.string("WindowsEmailAddress")?,
        display_name: r.string("DisplayName")?,
        alias: r.string("Alias")?,
        email_addresses: r.list("EmailAddresses")?,
        custom_attributes,
        extension_custom_attributes,
        hidden_from_address_lists_enabled: r.bool("HiddenFromAddressListsEnabled")?,
        recipient_type_details: r.string("RecipientTypeDetails")?.unwrap_or_default(),
        is_dir_synced: r.bool("IsDirSynced")?,
        is_exchange_cloud_managed: r.bool("IsExchangeCloudManaged")?,
        legacy_exchange_dn: r.string("LegacyExchangeDN")?,
        archive_status: r.string("ArchiveStatus")?,
        in_place_holds: r.list("InPlaceHolds")?,
        when_changed_utc: r.timestamp("WhenChangedUTC")?,
        safe_senders_hash: None,
        blocked_senders_hash: None,
        safe_recipients_hash: None,
        uc_voice_mail_settings: Vec::new(),
        ..Mailbox::default()
    })
}

mod mailbox;
mod recipients;

pub use mailbox::{MailboxRecord, RecordProblem, mailbox_from_raw};

pub use recipients::{
    MEMBER_PROPERTIES, contact_properties, group_properties, member_from_record,
    recipient_from_record,
};

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
