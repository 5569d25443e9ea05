//! Fuzz the decoding of Exchange Online InvokeCommand responses: a result page (also one that
//! is not valid UTF-8), each record into a mailbox, and an error body. No input may panic; a
//! page that decodes stops decoding when its last byte is cut (a truncated page must never
//! look like a complete one).
#![no_main]

use exo_writeback_exo::ServiceError;
use exo_writeback_exo::wire::{
    decode_page, mailbox_from_raw, mailbox_from_record, record_key, record_name, record_value,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let error = ServiceError::parse(data);
    let _ = error.to_string();
    let _ = (error.is_object_not_found(), error.is_expired_pagination());

    // Also decode the input as a single record (the shape inside "value").
    if let Ok(record) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = mailbox_from_record(&record);
    }

    let Ok(page) = decode_page(data) else {
        return;
    };
    for raw in &page.records {
        let record = record_value(raw).expect("a page's record is JSON");
        let name = record_name(&record);
        assert!(!name.is_empty());
        let key = record_key(&record);
        let tree = mailbox_from_record(&record);
        if let Err((who, problem)) = &tree {
            assert_eq!(who, &name, "a record error names the record");
            assert!(!problem.is_empty(), "a record error says what is wrong");
        }
        // The listing's direct decoder agrees with the tree's, errors included.
        let direct = mailbox_from_raw(raw);
        assert_eq!(direct.key, key);
        match (direct.mailbox, tree) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err((who, problem))) => assert_eq!((a.name, a.problem), (who, problem)),
            (a, b) => panic!("the decoders disagree: {a:?} against {b:?}"),
        }
    }
    // Records with invalid UTF-8 are set aside, each with a name and a problem to report.
    for unreadable in &page.unreadable {
        assert!(!unreadable.name.is_empty());
        assert!(!unreadable.problem().is_empty());
    }
    let trimmed = data.trim_ascii_end();
    if let Some((_, cut)) = trimmed.split_last() {
        assert!(
            decode_page(cut).is_err(),
            "a page without its last byte still decodes"
        );
    }
});
