//! Every real Exchange Online capture in `tests/fixtures/exo-real` (copied from
//! `shared/fixtures/exo-real`, sources in its SOURCES.md) decodes.

use std::path::PathBuf;

use exo_writeback_exo::config::default_anchor_mailbox;
use exo_writeback_exo::error::ServiceError;
use exo_writeback_exo::wire::{decode_page, mailbox_from_raw, mailbox_from_record};
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/exo-real")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn json(name: &str) -> Value {
    serde_json::from_slice(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_fixture_is_covered_by_a_case() {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .expect("fixture dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 20, "{names:?}");
    for n in &names {
        let covered = ENVELOPES.iter().any(|(f, _)| f == n)
            || RECORDS.contains(&n.as_str())
            || ERRORS.iter().any(|(f, _)| f == n)
            || OTHER.contains(&n.as_str());
        assert!(covered, "fixture {n} has no test case");
    }
}

const ENVELOPES: [(&str, usize); 6] = [
    (
        "invokecommand_get-mailbox_full-response-body_burp-vdbdx_2024-05-22.json",
        1,
    ),
    (
        "invokecommand_get-mailbox_envelope-complete_graph2otel.json",
        3,
    ),
    (
        "invokecommand_get-mailbox_envelope-truncated_graph2otel.json",
        1,
    ),
    (
        "invokecommand_get-antiphishpolicy_full-envelope_graph2otel.json",
        2,
    ),
    (
        "invokecommand_get-eopprotectionpolicyrule_full-envelope_graph2otel.json",
        1,
    ),
    (
        "invokecommand_get-mailbox_records-narrowed_graph2otel.json",
        3,
    ),
];

const RECORDS: [&str; 4] = [
    "invokecommand_get-mailboxauditbypassassociation_record-trimmed_graph2otel.json",
    "invokecommand_get-messagetracev2_record_graph2otel.json",
    "invokecommand_get-quarantinemessage_record_graph2otel.json",
    "rest-entityset_mailbox_default-props_christophwille-sample.json",
];

/// (file, text the parsed message must contain)
const ERRORS: [(&str, &str); 7] = [
    (
        "error_400_expired-pagination_ms-qa-1023619_2022-09-21.json",
        "Expired or Invalid pagination request",
    ),
    ("error_400_invalid-enum_graph2otel.json", "Nonsense"),
    (
        "error_400_unknown-parameter_graph2otel.json",
        "BogusParameter",
    ),
    (
        "error_500_internalservererror_nested-internalexception_ms-support-doc.json",
        "Internal server error",
    ),
    (
        "error_notfound_object-not-found_jiechencn-jsontest.json",
        "couldn't be found",
    ),
    (
        "error_notfound_object-not-found_psws-proxy_2023-08-18.json",
        "couldn't be found",
    ),
    (
        "error_notfound_truncated_m365dsc-issue-2998_2023-03-14.json",
        "Error executing",
    ),
];

const OTHER: [&str; 3] = [
    "invokecommand_get-mailbox_http-exchange-headers_burp-vdbdx_2024-05-22.json",
    "convertto-json_get-exomailbox_xsoar-ews-extension-v3_context-example.json",
    "convertto-json_get-exorecipientpermission_xsoar-ews-extension-v3_context-example.json",
];

#[test]
fn envelopes_decode_and_their_records_become_mailboxes() {
    for (name, count) in ENVELOPES {
        let bytes = read(name);
        let records = if name.contains("records-narrowed") {
            // A bare array of records: wrap it the way the service would.
            let wrapped = format!("{{\"value\":{}}}", String::from_utf8_lossy(&bytes));
            decode_page(wrapped.as_bytes()).expect(name).records
        } else {
            decode_page(&bytes).expect(name).records
        };
        assert_eq!(records.len(), count, "{name}");
        for r in &records {
            mailbox_from_raw(r)
                .mailbox
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
    }
}

#[test]
fn the_full_capture_maps_every_profile_property() {
    let page = decode_page(&read(ENVELOPES[0].0)).expect("page");
    assert_eq!(page.next_link, None);
    assert!(page.warnings.is_empty());
    let m = mailbox_from_raw(&page.records[0]).mailbox.expect("mailbox");
    assert_eq!(
        m.external_directory_object_id.as_deref(),
        Some("7cdbe897-3c7f-4fb6-a369-56408d68081f")
    );
    assert_eq!(m.primary_smtp_address.as_deref(), Some("C@lvin.ie"));
    assert_eq!(m.windows_email_address.as_deref(), Some("C@lvin.ie"));
    assert_eq!(m.immutable_id, None, "\"\" is None");
    assert_eq!(m.recipient_type_details, "UserMailbox");
    assert_eq!(m.archive_status.as_deref(), Some("None"));
    assert!(!m.is_dir_synced);
    assert!(!m.is_exchange_cloud_managed, "explicit null is false");
    assert!(m.custom_attributes.iter().all(Option::is_none));
    assert!(m.extension_custom_attributes.iter().all(Vec::is_empty));
    assert_eq!(m.email_addresses.len(), 5);
    assert_eq!(
        m.email_addresses[4], "SMTP:C@lvin.ie",
        "primary is last, not first"
    );
    assert!(
        m.legacy_exchange_dn
            .as_deref()
            .is_some_and(|d| d.ends_with("-CBergin"))
    );
    assert_eq!(
        m.when_changed_utc.map(|t| t.to_string()).as_deref(),
        Some("2024-04-10T08:56:22Z")
    );
}

#[test]
fn the_truncated_envelope_carries_a_next_link_and_a_warning() {
    let page = decode_page(&read(ENVELOPES[2].0)).expect("page");
    assert!(
        page.next_link
            .as_deref()
            .is_some_and(|l| l.contains("%24skiptoken="))
    );
    assert!(page.warnings[0].contains("more results available"));
}

#[test]
fn the_narrowed_records_keep_empty_ids_as_none() {
    let v = json(ENVELOPES[5].0);
    let arr = v.as_array().expect("array");
    let discovery = mailbox_from_record(&arr[0]).expect("discovery");
    assert_eq!(discovery.recipient_type_details, "DiscoveryMailbox");
    assert_eq!(discovery.external_directory_object_id, None);
    let user = mailbox_from_record(&arr[1]).expect("user");
    assert_eq!(user.recipient_type_details, "UserMailbox");
    assert!(user.external_directory_object_id.is_some());
}

#[test]
fn single_records_decode_without_error() {
    for name in RECORDS {
        let v = json(name);
        mailbox_from_record(&v).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let wrapped = serde_json::json!({"value": [v]}).to_string();
        assert_eq!(
            decode_page(wrapped.as_bytes()).expect(name).records.len(),
            1
        );
    }
    let m = mailbox_from_record(&json(RECORDS[3])).expect("rest entity");
    assert_eq!(m.recipient_type_details, "SharedMailbox");
}

#[test]
fn powershell_renderings_decode() {
    let v = json(OTHER[1]);
    let m = mailbox_from_record(&v["EWS"]["Mailbox"]).expect("xsoar mailbox");
    assert!(
        m.email_addresses
            .contains(&"SMTP:user@example.com".to_owned())
    );
    // The permission object is not a mailbox but must not break the decoder.
    let v = json(OTHER[2]);
    let inner = v["EWS"]
        .as_object()
        .and_then(|o| o.values().next())
        .cloned();
    if let Some(Value::Object(o)) = inner {
        mailbox_from_record(&Value::Object(o)).expect("permission record");
    }
}

/// The error text to parse: the body, or for wrapped captures the reconstructed object or
/// the JSON part of the raw text.
fn error_body(name: &str) -> Vec<u8> {
    let v = json(name);
    if let Some(obj) = v.get("reconstructed_error_object") {
        return obj.to_string().into_bytes();
    }
    if let Some(raw) = v.get("raw_text").and_then(Value::as_str) {
        let start = raw.find('{').unwrap_or(0);
        return raw.as_bytes()[start..].to_vec();
    }
    read(name)
}

#[test]
fn error_bodies_give_useful_messages() {
    for (name, want) in ERRORS {
        let e = ServiceError::parse(&error_body(name));
        assert!(e.to_string().contains(want), "{name}: {e}");
    }
}

#[test]
fn not_found_is_recognised_whatever_the_code() {
    for name in [ERRORS[4].0, ERRORS[5].0] {
        let e = ServiceError::parse(&error_body(name));
        assert!(e.is_object_not_found(), "{name}: {e:?}");
    }
    let e = ServiceError::parse(&error_body(ERRORS[0].0));
    assert!(e.is_expired_pagination());
    assert!(!e.is_object_not_found());
    for (name, _) in &ERRORS[1..3] {
        assert!(
            !ServiceError::parse(&error_body(name)).is_object_not_found(),
            "{name}"
        );
    }
}

#[test]
fn the_captured_request_uses_our_default_anchor_and_headers() {
    let v = json(OTHER[0]);
    let headers = v["request"]["headers"].as_array().expect("headers");
    let get = |name: &str| {
        headers
            .iter()
            .filter_map(Value::as_array)
            .find(|h| h[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .and_then(|h| h[1].as_str())
            .map(str::to_owned)
    };
    assert_eq!(
        get("X-AnchorMailbox").as_deref(),
        Some(default_anchor_mailbox("vdbdx.onmicrosoft.com").as_str())
    );
    assert_eq!(get("X-ResponseFormat").as_deref(), Some("json"));
    assert_eq!(get("X-SerializationLevel").as_deref(), Some("Partial"));
    let body: Value =
        serde_json::from_str(v["request"]["body"].as_str().expect("body")).expect("json");
    assert_eq!(body["CmdletInput"]["Parameters"]["Identity"], "c@lvin.ie");
}
