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
    pub records: Vec<Value>,
    pub next_link: Option<String>,
    pub warnings: Vec<String>,
}

/// Decodes a response body into a page. A body that is not a complete JSON object with a
/// `value` array is an error (a truncated page must never look like the end of the data).
pub fn decode_page(body: &[u8]) -> Result<Page, String> {
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
    Ok(Page {
        records,
        next_link,
        warnings,
    })
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
