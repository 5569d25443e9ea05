//! The wire shapes of InvokeCommand responses and their translation into the core's
//! [`Mailbox`]. The service returns open property bags (`Exchange.GenericHashTable`), so
//! records are read key by key, tolerating every quirk seen in the real captures.

use exo_writeback_core::mailbox::Mailbox;
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
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The readable records, in the page's order.
    pub records: Vec<Value>,
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
            if holds_marker(&record) {
                page.unreadable.push(unreadable(position, &record));
            } else {
                page.records.push(record);
            }
        }
        return Ok(page);
    }
    decode_json_page(body).map(|(page, _)| page)
}

/// Decodes a page's JSON; also says whether its envelope holds the invalid-UTF-8 marker.
fn decode_json_page(body: &[u8]) -> Result<(Page, bool), String> {
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

fn convert(r: &Reader<'_>) -> Result<Mailbox, String> {
    let mut custom_attributes: [Option<String>; 15] = Default::default();
    for (i, slot) in custom_attributes.iter_mut().enumerate() {
        *slot = r.string(&format!("CustomAttribute{}", i + 1))?;
    }
    let mut extension_custom_attributes: [Vec<String>; 5] = Default::default();
    for (i, slot) in extension_custom_attributes.iter_mut().enumerate() {
        *slot = r.list(&format!("ExtensionCustomAttribute{}", i + 1))?;
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps() {
        let cases = [
            ("2024-04-10T08:56:22.0000000Z", Some("2024-04-10T08:56:22Z")),
            (
                "2024-04-10T08:56:22.0000000+00:00",
                Some("2024-04-10T08:56:22Z"),
            ),
            (
                "2026-07-22T08:58:01.4564204+00:00",
                Some("2026-07-22T08:58:01.4564204Z"),
            ),
            ("2024-04-10T10:56:22+02:00", Some("2024-04-10T08:56:22Z")),
            ("/Date(1708000000000)/", Some("2024-02-15T12:26:40Z")),
            ("yesterday", None),
            ("2024-04-10", None),
        ];
        for (text, want) in cases {
            let got = parse_timestamp(text).map(|t| t.to_string());
            assert_eq!(got.as_deref(), want, "{text}");
        }
    }

    #[test]
    fn quirks_are_tolerated() {
        let rec = json!({
            "PrimarySmtpAddress": "a@contoso.com",
            "ExternalDirectoryObjectId": "",
            "CustomAttribute1": "",
            "CustomAttribute2": 42,
            "CustomAttribute3": null,
            "ExtensionCustomAttribute1@odata.type": "#Collection(String)",
            "ExtensionCustomAttribute1": [],
            "ExtensionCustomAttribute2": null,
            "EmailAddresses@odata.type": "#Collection(String)",
            "EmailAddresses": ["smtp:b@contoso.com", "SMTP:a@contoso.com"],
            "HiddenFromAddressListsEnabled": "True",
            "IsDirSynced": false,
            "WhenChangedUTC@data.type": "System.DateTime",
            "WhenChangedUTC": "2024-04-10T08:56:22.0000000Z",
            "SomethingNew": {"nested": true}
        });
        let m = mailbox_from_record(&rec).expect("decodes");
        assert_eq!(m.external_directory_object_id, None);
        assert_eq!(m.custom_attributes[0], None);
        assert_eq!(m.custom_attributes[1].as_deref(), Some("42"));
        assert_eq!(m.email_addresses[1], "SMTP:a@contoso.com");
        assert!(m.hidden_from_address_lists_enabled);
        assert_eq!(
            m.when_changed_utc.map(|t| t.to_string()).as_deref(),
            Some("2024-04-10T08:56:22Z")
        );
    }

    #[test]
    fn malformed_record_names_the_mailbox() {
        let cases = [
            (
                json!({"PrimarySmtpAddress": "x@c.com", "EmailAddresses": "SMTP:x@c.com"}),
                "EmailAddresses is a string instead of a list",
            ),
            (
                json!({"PrimarySmtpAddress": "x@c.com", "IsDirSynced": "maybe"}),
                "IsDirSynced",
            ),
            (
                json!({"PrimarySmtpAddress": "x@c.com", "WhenChangedUTC": "soon"}),
                "WhenChangedUTC",
            ),
            (
                json!({"PrimarySmtpAddress": "x@c.com", "CustomAttribute4": ["a"]}),
                "CustomAttribute4 is a list",
            ),
        ];
        for (rec, want) in cases {
            let (name, problem) = mailbox_from_record(&rec).expect_err("malformed");
            assert_eq!(name, "x@c.com");
            assert!(problem.contains(want), "{problem}");
        }
        let (name, _) = mailbox_from_record(&json!(7)).expect_err("not an object");
        assert_eq!(name, "(unnamed record)");
    }

    #[test]
    fn pages() {
        assert!(
            decode_page(br#"{"value":[{"a":1}"#)
                .expect_err("eof")
                .contains("truncated")
        );
        assert!(decode_page(br#"{"value":{}}"#).is_err());
        assert!(decode_page(br#"{"@odata.context":"x"}"#).is_err());
        assert!(decode_page(b"[]").is_err());
        assert!(decode_page(b"").is_err());
        let p = decode_page(br#"{"value":[],"@odata.nextLink":null}"#).expect("ok");
        assert_eq!(p.next_link, None);
    }

    /// `text` with `bad` spliced in place of each `~` (raw bytes, possibly not UTF-8).
    fn splice(text: &str, bad: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, part) in text.split('~').enumerate() {
            if i > 0 {
                out.extend_from_slice(bad);
            }
            out.extend_from_slice(part.as_bytes());
        }
        out
    }

    #[test]
    fn invalid_utf8_fails_only_its_record() {
        // "M\xFCnchen": Latin-1, not UTF-8.
        let body = splice(
            r#"{"@odata.context":"x","value":[
                {"PrimarySmtpAddress":"a@c.com","ExternalDirectoryObjectId":"id-a","CustomAttribute2":"ok"},
                {"PrimarySmtpAddress":"b@c.com","ExternalDirectoryObjectId":"id-b","CustomAttribute2":"M~nchen","EmailAddresses":["SMTP:b@c.com","smtp:x~y@c.com"]},
                {"PrimarySmtpAddress":"c@c.com","CustomAttribute2":"Zürich"}
            ],"@odata.nextLink":"https://h/next"}"#,
            &[0xFC],
        );
        assert!(std::str::from_utf8(&body).is_err());
        let page = decode_page(&body).expect("the page decodes");
        assert_eq!(page.next_link.as_deref(), Some("https://h/next"));
        let names: Vec<String> = page.records.iter().map(record_name).collect();
        assert_eq!(names, ["a@c.com", "c@c.com"]);
        let zurich = mailbox_from_record(&page.records[1]).expect("clean record");
        assert_eq!(zurich.custom_attributes[1].as_deref(), Some("Zürich"));
        assert_eq!(
            page.unreadable,
            [UnreadableRecord {
                position: 1,
                name: "b@c.com".into(),
                external_directory_object_id: Some("id-b".into()),
                primary_smtp_address: Some("b@c.com".into()),
                properties: vec!["CustomAttribute2".into(), "EmailAddresses".into()],
            }]
        );
        let problem = page.unreadable[0].problem();
        assert!(
            problem.contains("CustomAttribute2, EmailAddresses") && problem.contains("UTF-8"),
            "{problem}"
        );
        // No replacement character and no marker anywhere in what is handed on.
        let clean = serde_json::to_string(&page.records).expect("json");
        assert!(!clean.contains('\u{FFFD}') && !clean.contains(INVALID_UTF8_MARKER));
    }

    #[test]
    fn the_fuzz_seed_with_invalid_utf8_takes_the_per_record_path() {
        let body = include_bytes!(
            "../../../fuzz/corpus/exo_decode/invalid-utf8_get-mailbox_latin1-bytes-in-two-records.json"
        );
        assert!(body.utf8_chunks().any(|c| !c.invalid().is_empty()));
        let page = decode_page(body).expect("page");
        assert_eq!(page.records.len(), 1);
        let names: Vec<&str> = page.unreadable.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["b@contoso.com", "c@contoso.com"]);
    }

    #[test]
    fn invalid_utf8_in_identity_properties_is_not_used_as_the_name() {
        let body = splice(
            r#"{"value":[{"PrimarySmtpAddress":"b~","UserPrincipalName":"upn@contoso.com","ExternalDirectoryObjectId":"x~"}]}"#,
            &[0xC3, 0x28],
        );
        let page = decode_page(&body).expect("page");
        assert!(page.records.is_empty());
        let u = &page.unreadable[0];
        assert_eq!(u.name, "upn@contoso.com");
        assert_eq!(u.primary_smtp_address, None);
        assert_eq!(u.external_directory_object_id, None);
        assert_eq!(
            u.properties,
            ["ExternalDirectoryObjectId", "PrimarySmtpAddress"]
        );
        // Nothing readable at all.
        let body = splice(
            r#"{"value":[{"PrimarySmtpAddress":"~"}, "~", {"~":1}]}"#,
            &[0xFF],
        );
        let page = decode_page(&body).expect("page");
        assert_eq!(page.unreadable.len(), 3);
        assert_eq!(
            page.unreadable[0].name,
            "(a record whose identity is not readable)"
        );
        assert!(page.unreadable[1].problem().starts_with("the record "));
        assert_eq!(
            page.unreadable[2].properties,
            ["a property whose name is not valid UTF-8"]
        );
    }

    #[test]
    fn invalid_utf8_outside_records_or_with_the_marker_present_fails_the_page() {
        let cases: [(&str, &[u8], &str); 6] = [
            (
                r#"{"value":[],"@odata.nextLink":"https://h/~"}"#,
                &[0xFF],
                "outside the records",
            ),
            (
                r#"{"value":[],"@adminapi.warnings":["~"]}"#,
                &[0xFF],
                "outside the records",
            ),
            (r#"{"value":[{"a":1}]~}"#, &[0xFF], "invalid JSON"),
            (r#"{"value":[{"a":"~"}"#, &[0xFF], "truncated"),
            (r#"{"value":[{"a":"~","b":"\uFDD0"}]}"#, &[0xFF], "U+FDD0"),
            (r#"{"value":[{"a":"~","b":"\ufdd0"}]}"#, &[0xFF], "U+FDD0"),
        ];
        for (text, bad, want) in cases {
            let err = decode_page(&splice(text, bad)).expect_err(text);
            assert!(err.contains(want) && err.contains("UTF-8"), "{text}: {err}");
        }
        let raw = splice("{\"value\":[{\"a\":\"~\",\"b\":\"\u{FDD0}\"}]}", &[0xFF]);
        assert!(
            decode_page(&raw)
                .expect_err("raw marker")
                .contains("U+FDD0")
        );
        // A page that is valid UTF-8 is read as before, noncharacters included.
        let page = decode_page("{\"value\":[{\"a\":\"\u{FDD0}\"}]}".as_bytes()).expect("ok");
        assert_eq!(page.records.len(), 1);
        assert!(page.unreadable.is_empty());
        // A multi-byte character cut by the end of the body is still a truncated page.
        let cut = &"{\"value\":[{\"a\":\"ü\"}]}".as_bytes()[..15];
        assert!(decode_page(cut).is_err());
    }

    #[test]
    fn record_keys() {
        assert_eq!(
            record_key(&json!({"ExternalDirectoryObjectId": "ABC", "Guid": "g"})).as_deref(),
            Some("ExternalDirectoryObjectId:abc")
        );
        assert_eq!(
            record_key(&json!({"ExternalDirectoryObjectId": "", "Guid": "G1"})).as_deref(),
            Some("Guid:g1")
        );
        assert_eq!(record_key(&json!({})), None);
    }
}
