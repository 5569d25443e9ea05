//! The AD schema kept between processes: one snapshot, replaced whole, not part of a copy.

use exo_writeback_core::schema::{AttributeSchema, Syntax, exchange_lab_schema};

use crate::prelude::*;
use crate::testing::Backend;
use crate::{SchemaSnapshot, StateCopy};

fn snapshot(revision: u8) -> SchemaSnapshot {
    let mut attributes: Vec<AttributeSchema> = exchange_lab_schema().iter().cloned().collect();
    attributes.push(AttributeSchema {
        ldap_display_name: format!("labAttribute{revision}"),
        attribute_id: "1.2.840.113556.1.4.7000.999.1".into(),
        syntax: Syntax::OtherBinary("2.5.5.7".into()),
        single_valued: false,
        range_lower: Some(0),
        range_upper: Some(u64::MAX),
    });
    // 0xFF, a revision, an invocationId: with bytes that are not UTF-8.
    let mut schema_info = vec![0xFF, 0, 0, 0, revision];
    schema_info.extend([0x9A, 0x00, 0xC3, 0x28, 0xFE, 0x01, 0x02, 0x03]);
    schema_info.extend([0x10; 8]);
    SchemaSnapshot {
        schema_info,
        attributes,
    }
}

pub fn a_schema_snapshot_is_kept_and_replaced(b: &impl Backend) {
    let mut store = b.open();
    assert_eq!(store.schema_snapshot().expect("read"), None);
    let first = snapshot(0x23);
    store.put_schema_snapshot(&first).expect("keep");
    // The next process finds it, byte for byte.
    let other = b.reopen(&store);
    assert_eq!(other.schema_snapshot().expect("read"), Some(first));
    let second = snapshot(0x24);
    store.put_schema_snapshot(&second).expect("replace");
    assert_eq!(
        b.reopen(&store).schema_snapshot().expect("read"),
        Some(second)
    );
}

pub fn a_schema_snapshot_is_not_copied<B: Backend>(b: &B)
where
    B::Store: StateCopy,
{
    let mut source = b.open();
    source.put_schema_snapshot(&snapshot(0x23)).expect("keep");
    let mut target = b.open();
    target.import_from(&*source).expect("import");
    assert_eq!(
        target.schema_snapshot().expect("read"),
        None,
        "a cache: the new state reads the schema from AD"
    );
}
