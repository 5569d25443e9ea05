//! Bad input never panics: arbitrary bodies, records and error texts.

use exo_writeback_exo::error::ServiceError;
use exo_writeback_exo::filter::quote;
use exo_writeback_exo::wire::{decode_page, mailbox_from_record, parse_timestamp};
use proptest::prelude::*;
use serde_json::Value;

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("EmailAddresses".to_owned()),
                    Just("WhenChangedUTC".to_owned()),
                    Just("IsDirSynced".to_owned()),
                    Just("CustomAttribute1".to_owned()),
                    Just("ExtensionCustomAttribute2".to_owned()),
                    Just("value".to_owned()),
                    Just("@odata.nextLink".to_owned()),
                    Just("error".to_owned()),
                    Just("details".to_owned()),
                    Just("message".to_owned()),
                    Just("innererror".to_owned()),
                    Just("internalexception".to_owned()),
                    "[A-Za-z@.]{1,10}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_page(&bytes);
        let e = ServiceError::parse(&bytes);
        prop_assert!(!e.message.is_empty());
    }

    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        let _ = mailbox_from_record(&v);
        let text = v.to_string();
        let _ = decode_page(text.as_bytes());
        let e = ServiceError::parse(text.as_bytes());
        prop_assert!(!e.message.is_empty());
        // A page whose body is cut anywhere is an error, never a shorter page.
        if decode_page(text.as_bytes()).is_ok() {
            for cut in 0..text.len() {
                prop_assert!(decode_page(&text.as_bytes()[..cut]).is_err(), "cut at {}", cut);
            }
        }
    }

    #[test]
    fn every_truncation_of_a_page_is_an_error(records in prop::collection::vec(arb_json(), 0..4)) {
        let text = serde_json::json!({"@odata.context": "x", "value": records}).to_string();
        let page = decode_page(text.as_bytes()).expect("whole page");
        prop_assert_eq!(page.records.len(), records.len());
        for cut in 0..text.len() {
            prop_assert!(decode_page(&text.as_bytes()[..cut]).is_err(), "cut at {}", cut);
        }
    }

    #[test]
    fn quoting_round_trips(s in ".{0,40}") {
        let q = quote(&s);
        prop_assert!(q.starts_with('\'') && q.ends_with('\''));
        let inner = &q[1..q.len() - 1];
        // No lone quote inside: every quote is doubled.
        prop_assert!(!inner.replace("''", "").contains('\''));
        prop_assert_eq!(inner.replace("''", "'"), s);
    }

    #[test]
    fn timestamps_never_panic(s in ".{0,40}") {
        let _ = parse_timestamp(&s);
    }
}
