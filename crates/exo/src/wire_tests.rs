//! Unit tests of the wire shapes: records read key by key as the real captures have them.

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
    let records: Vec<Value> = page
        .records
        .iter()
        .map(|r| record_value(r).expect("JSON"))
        .collect();
    let names: Vec<String> = records.iter().map(record_name).collect();
    assert_eq!(names, ["a@c.com", "c@c.com"]);
    let zurich = mailbox_from_record(&records[1]).expect("clean record");
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

#[test]
fn every_custom_attribute_lands_in_its_own_slot() {
    let mut rec = serde_json::Map::new();
    for i in 1..=15 {
        rec.insert(format!("CustomAttribute{i}"), json!(format!("c{i}")));
    }
    for i in 1..=5 {
        rec.insert(
            format!("ExtensionCustomAttribute{i}"),
            json!([format!("e{i}")]),
        );
    }
    let m = mailbox_from_record(&Value::Object(rec)).expect("decodes");
    for (i, slot) in m.custom_attributes.iter().enumerate() {
        assert_eq!(slot.as_deref(), Some(format!("c{}", i + 1).as_str()));
    }
    for (i, slot) in m.extension_custom_attributes.iter().enumerate() {
        assert_eq!(slot, &vec![format!("e{}", i + 1)]);
    }
}
