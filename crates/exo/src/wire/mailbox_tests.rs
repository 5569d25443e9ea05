//! The direct decoder against the tree's: the same mailbox, key and error for every record,
//! generated or captured.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;
use crate::wire::MAILBOX_PROPERTIES;

/// What the listing did before: the record parsed into a tree, then read key by key.
fn by_tree(text: &str) -> MailboxRecord {
    from_tree(&serde_json::from_str::<Value>(text).expect("JSON"))
}

fn direct(text: &str) -> MailboxRecord {
    let raw = RawValue::from_string(text.to_owned()).expect("JSON");
    mailbox_from_raw(&raw)
}

fn same(text: &str) {
    assert_eq!(direct(text), by_tree(text), "{text}");
}

/// Every JSON object in `v`, itself included.
fn objects(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Object(map) => {
            out.push(v.clone());
            map.values().for_each(|v| objects(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| objects(v, out)),
        _ => {}
    }
}

#[test]
fn the_real_captures_decode_alike() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/exo-real");
    let mut records = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the captures") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).expect("read");
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                objects(&v, &mut records);
            }
        }
    }
    let mailboxes = records
        .iter()
        .filter(|r| r.get("PrimarySmtpAddress").is_some())
        .count();
    assert!(
        mailboxes >= 5,
        "{mailboxes} mailbox records in the captures"
    );
    for record in &records {
        same(&record.to_string());
    }
}

#[test]
fn written_by_hand_decode_alike() {
    let cases = [
        // Escapes: owned text, not borrowed.
        r#"{"PrimarySmtpAddress":"a\u0040b.example","DisplayName":"A \"B\"\/C","Alias":"\u00e9"}"#,
        // A property named twice: the last one counts in the tree.
        r#"{"PrimarySmtpAddress":"a@b","CustomAttribute1":"x","CustomAttribute1":"y"}"#,
        r#"{"PrimarySmtpAddress":"a@b","CustomAttribute1":[],"CustomAttribute1":"y"}"#,
        // Not an object, whatever its length.
        r#"["a","b"]"#,
        r#""text""#,
        "42",
        "null",
        // Whitespace in the record's text.
        " { \"Alias\" : \"x\" , \"IsDirSynced\" : \"True\" } ",
        r#"{"WhenChangedUTC":"/Date(1708000000000)/","Guid":" ABC ","Identity":"x"}"#,
        r#"{"WhenChangedUTC":5}"#,
        r#"{"EmailAddresses":["SMTP:a@b",null,"",7,true]}"#,
        r#"{"HiddenFromAddressListsEnabled":1.5,"IsDirSynced":0.0,"CustomAttribute2":1e3}"#,
        r#"{"ExchangeGuid":"G","Identity":"","CustomAttribute3":{"a":[1,{"b":2}]}}"#,
    ];
    for text in cases {
        same(text);
    }
    // A record a wrong shape fails keeps its message and its readable ids.
    let bad = direct(
        r#"{"PrimarySmtpAddress":"a@b","ExternalDirectoryObjectId":"id","IsDirSynced":"maybe"}"#,
    );
    let problem = bad.mailbox.expect_err("refused");
    assert_eq!(problem.name, "a@b");
    assert_eq!(
        problem.problem,
        r#"IsDirSynced is "maybe" where true/false was expected"#
    );
    assert_eq!(problem.external_directory_object_id.as_deref(), Some("id"));
    assert_eq!(bad.key.as_deref(), Some("ExternalDirectoryObjectId:id"));
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1.0e6..1.0e6f64).prop_map(|n| json!(n)),
        prop_oneof![
            Just(""),
            Just(" "),
            Just("true"),
            Just(" TRUE "),
            Just("False"),
            Just("0"),
            Just("1"),
            Just("2"),
            Just("yes"),
            Just("2024-04-10T08:56:22.0000000Z"),
            Just("2026-07-22T08:58:01.4564204+00:00"),
            Just("/Date(1708000000000)/"),
            Just("2024-04-10"),
            Just("SMTP:a@contoso.example"),
        ]
        .prop_map(|s| json!(s)),
        "[ -~\\n\\t\"\\\\éü\u{1}\u{7f}]{0,12}".prop_map(Value::String),
    ]
}

fn property() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[A-Za-z@.]{1,8}", inner), 0..3)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn record() -> impl Strategy<Value = Value> {
    let names: Vec<&'static str> = MAILBOX_PROPERTIES
        .iter()
        .copied()
        .chain([
            "Name",
            "ExchangeGuid",
            "Unknown",
            "EmailAddresses@odata.type",
        ])
        .collect();
    prop::collection::vec((prop::sample::select(names), property()), 0..20).prop_map(|kv| {
        Value::Object(
            kv.into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect::<Map<_, _>>(),
        )
    })
}

/// Records every rule accepts: each property in a shape of its kind.
fn well_formed() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        Just(Value::Null),
        "[ -~éü\"\\\n]{0,10}".prop_map(Value::String),
        any::<i32>().prop_map(|n| json!(n)),
        any::<bool>().prop_map(Value::Bool),
    ];
    let list = prop_oneof![
        Just(Value::Null),
        prop::collection::vec(
            prop_oneof![
                Just(Value::Null),
                "[ -~é]{0,10}".prop_map(Value::String),
                any::<u16>().prop_map(|n| json!(n)),
            ],
            0..4
        )
        .prop_map(Value::Array),
    ];
    let flag = prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        Just(json!("True")),
        Just(json!(" false ")),
        Just(json!("1")),
        Just(json!("0 ")),
        Just(json!(-2)),
        Just(json!("")),
        Just(json!(0)),
        Just(json!(1.5)),
        Just(Value::Null),
    ];
    let when = prop_oneof![
        Just(Value::Null),
        Just(json!("")),
        Just(json!("2024-04-10T08:56:22.0000000Z")),
        Just(json!("/Date(1708000000000)/")),
    ];
    let lists = ["EmailAddresses", "InPlaceHolds"];
    let flags = [
        "HiddenFromAddressListsEnabled",
        "IsDirSynced",
        "IsExchangeCloudManaged",
    ];
    let present = prop::collection::vec(any::<bool>(), MAILBOX_PROPERTIES.len());
    (
        present,
        prop::collection::vec((text, list, flag, when), MAILBOX_PROPERTIES.len()),
    )
        .prop_map(move |(present, values)| {
            let mut record = Map::new();
            for ((name, keep), (text, list, flag, when)) in
                MAILBOX_PROPERTIES.iter().zip(present).zip(values)
            {
                if !keep {
                    continue;
                }
                let value = if lists.contains(name) || name.starts_with("ExtensionCustom") {
                    list
                } else if flags.contains(name) {
                    flag
                } else if *name == "WhenChangedUTC" {
                    when
                } else {
                    text
                };
                record.insert(format!("{name}@odata.type"), json!("#String"));
                record.insert((*name).to_owned(), value);
            }
            Value::Object(record)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn generated_records_decode_alike(record in record()) {
        let text = record.to_string();
        prop_assert_eq!(direct(&text), by_tree(&text), "{}", text);
    }

    #[test]
    fn well_formed_records_are_decoded_directly_and_alike(record in well_formed()) {
        let text = record.to_string();
        let wire = serde_json::from_str::<Wire<'_>>(&text).expect("the direct decoder reads it");
        prop_assert!(wire.convert().is_some(), "decided without the tree: {}", text);
        prop_assert_eq!(direct(&text), by_tree(&text), "{}", text);
    }

    #[test]
    fn generated_values_decode_alike(value in property()) {
        let text = value.to_string();
        prop_assert_eq!(direct(&text), by_tree(&text), "{}", text);
    }
}
