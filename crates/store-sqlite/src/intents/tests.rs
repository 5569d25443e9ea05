use super::*;
use exo_writeback_core::directory::AttrValue;
use exo_writeback_core::provisioning::{CycleId, ModifiedProperty};
use exo_writeback_store::testing::fixtures::{at, cloud_id, success};

/// The intent of fixture object `n`: its log entry lists two of its journal's records (in
/// another order) and a property no record holds.
fn intent(n: u64) -> WriteIntent {
    let mut o = success(CycleId(4), n, at(3));
    let j = &o.journal;
    o.log.modified = vec![
        ModifiedProperty {
            attribute: j[2].attribute.clone(),
            old: j[2].previous.clone(),
            new: j[2].new.clone(),
        },
        ModifiedProperty {
            attribute: "description".into(),
            old: vec![AttrValue::Text("only in the entry".into())],
            new: vec![],
        },
        ModifiedProperty {
            attribute: j[1].attribute.clone(),
            old: j[1].previous.clone(),
            new: j[1].new.clone(),
        },
    ];
    WriteIntent::from_success(&cloud_id(n), &o).expect("an intent")
}

/// An intent is stored without its repetitions and read back exactly; one stored whole (before
/// migration 7) reads as it is.
#[test]
fn intents_are_stored_compactly_and_read_back_exactly() {
    let path = Path::new("state.db");
    let mut i = intent(5);
    // A journal record of another object (a group's member), at another time.
    let mut other = i.journal[0].clone();
    other.object_guid = uuid::Uuid::from_u128(77);
    other.dn = "CN=Group,OU=Staff,DC=lab,DC=example".into();
    other.time = at(9);
    i.journal.push(other);
    let whole = serde_json::to_string(&i).expect("json");
    let text = encode(path, &i).expect("encode");
    assert!(
        text.len() * 10 < whole.len() * 7,
        "{} of {}",
        text.len(),
        whole.len()
    );
    assert_eq!(text.matches("ünïcödé").count(), 1, "{text}");
    assert_eq!(
        text.matches(&i.dn).count(),
        2,
        "the intent's DN and the log target's: {text}"
    );
    assert_eq!(decode(path, &text).expect("decode"), i);
    assert_eq!(decode(path, &whole).expect("decode"), i);

    // No join, no journal: nothing to shorten, still exact.
    let mut bare = intent(6);
    bare.join = None;
    bare.journal.clear();
    let text = encode(path, &bare).expect("encode");
    assert_eq!(decode(path, &text).expect("decode"), bare);
}
