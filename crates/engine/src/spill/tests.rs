//! The spill file's format: every plan reads back whole, a corrupt or short file is an error
//! naming its directory (never a plan dropped), and a spilled object takes a fraction of its
//! JSON line.

use std::os::unix::fs::FileExt;

use exo_writeback_core::directory::{AttrChange, AttrValue, ModOp, ObjectModify};
use exo_writeback_core::mailbox::RecipientKind;
use exo_writeback_core::outcome::{OutcomeCode, OutcomeDetail};
use exo_writeback_core::plan::{ObjectPlan, PropertyChange};
use exo_writeback_core::provisioning::{
    CycleId, Join, JoinUpdate, Pin, PinCheck, PinOrigin, SourceIdentity, Step, StepStatus, Steps,
    TargetIdentity,
};
use jiff::Timestamp;
use uuid::Uuid;

use super::{BLOCK, HEADER, Spill, SpillReader, Spilled};
use crate::evaluate::{Disposition, Processed};
use crate::staged::StagedObject;

fn text(s: impl Into<String>) -> AttrValue {
    AttrValue::Text(s.into())
}

/// A planned write as a cycle makes them (the lab's attributes, the four steps' texts), with
/// `i` choosing among the optional parts, the join's variants, bytes values and the recipient
/// kinds; `big` adds a value larger than a block.
fn processed(i: u64, big: bool) -> Processed {
    let guid = Uuid::new_v4();
    let cloud = Uuid::new_v4().to_string();
    let name = format!("Üser {i} Ñame");
    let smtp = format!("user{i}@contoso.com");
    let dn = format!("CN={name},OU=Users,OU=Site {},DC=contoso,DC=com", i % 7);
    let at = Timestamp::from_second(1_764_000_000 + i as i64).expect("time");
    let step = |status, details: String| Step { status, details };
    let kind = [
        RecipientKind::Mailbox,
        RecipientKind::Group,
        RecipientKind::Contact,
    ][i as usize % 3];
    let mut modify = vec![
        AttrChange {
            op: ModOp::Replace,
            attribute: "extensionAttribute1".into(),
            values: vec![text(format!("ca1-{i}"))],
        },
        AttrChange {
            op: ModOp::Add,
            attribute: "proxyAddresses".into(),
            values: vec![text(format!("smtp:{i}@contoso.mail.onmicrosoft.com"))],
        },
        AttrChange {
            op: ModOp::Delete,
            attribute: "msExchHideFromAddressLists".into(),
            values: Vec::new(),
        },
    ];
    if i % 4 == 1 {
        let len = if big { BLOCK + 1000 } else { 16 };
        modify.push(AttrChange {
            op: ModOp::Replace,
            attribute: "msExchSafeSendersHash".into(),
            values: vec![AttrValue::Bytes(
                (0..len).map(|k| (k as u64 * 7 + i) as u8).collect(),
            )],
        });
    }
    let changes = modify
        .iter()
        .map(|c| PropertyChange {
            attribute: c.attribute.clone(),
            old: if c.op == ModOp::Add {
                Vec::new()
            } else {
                vec![text(format!("old {i}"))]
            },
            new: c.values.clone(),
        })
        .collect();
    let join = Join {
        cloud_id: cloud.clone(),
        object_guid: guid,
        dn: dn.clone(),
        updated_at: at,
    };
    let detail = |code, why: String| i.is_multiple_of(3).then(|| OutcomeDetail::new(code, why));
    let pin = Pin {
        object_guid: guid,
        dn: dn.clone(),
        cloud_id: Some(cloud.clone()),
        primary_smtp_address: i.is_multiple_of(2).then(|| smtp.clone()),
        attribute: "extensionAttribute2".into(),
        cloud_value: vec![text("pinned"), AttrValue::Bytes(vec![0, 255, 10])],
        origin: if i.is_multiple_of(2) {
            PinOrigin::Undo
        } else {
            PinOrigin::Reject
        },
        cycle: CycleId(i as i64),
        at,
        by: "CONTOSO\\admin".into(),
        note: (i % 2 == 1).then(|| "not this one".into()),
    };
    Processed {
        cloud_id: cloud.clone(),
        when_changed: (!i.is_multiple_of(5)).then_some(at),
        started: at,
        source: SourceIdentity {
            kind,
            external_directory_object_id: Some(cloud.clone()),
            primary_smtp_address: Some(smtp.clone()),
            user_principal_name: i.is_multiple_of(2).then(|| format!("user{i}@contoso.com")),
        },
        target: TargetIdentity {
            dn: Some(dn.clone()),
            object_guid: Some(guid),
        },
        steps: Steps {
            import: step(
                StepStatus::Success,
                format!("read {smtp} from Exchange Online (RecipientTypeDetails UserMailbox)"),
            ),
            scoping: step(
                StepStatus::Success,
                "in scope: IsExchangeCloudManaged".into(),
            ),
            matching: step(
                StepStatus::Success,
                format!("matched {dn} by objectGUID {guid}"),
            ),
            export: step(StepStatus::Skipped, String::new()),
        },
        join: match i % 3 {
            0 => JoinUpdate::Keep,
            1 => JoinUpdate::Set(join.clone()),
            _ => JoinUpdate::Remove {
                cloud_id: cloud.clone(),
            },
        },
        join_if_failed: if i.is_multiple_of(2) {
            JoinUpdate::Set(join)
        } else {
            JoinUpdate::Keep
        },
        security: detail(
            OutcomeCode::SpoofedMatchKey,
            format!("{smtp} matched by UPN"),
        ),
        advisory: detail(OutcomeCode::TargetAddressUnexpected, "targetAddress".into()),
        drift: (i % 4 == 2).then(|| OutcomeDetail::new(OutcomeCode::DriftCorrected, "ca1")),
        disposition: Disposition::Write {
            plan: ObjectPlan {
                dn: dn.clone(),
                modify: Some(ObjectModify {
                    dn,
                    changes: modify,
                }),
                changes,
                removes_values: i % 2 == 1,
                added_smtp_addresses: Vec::new(),
                added_other_proxies: Vec::new(),
                warnings: Vec::new(),
            },
            object_guid: guid,
        },
        pins: if i % 3 == 2 {
            PinCheck {
                kept: vec![pin.clone()],
                released: vec![pin],
            }
        } else {
            PinCheck::default()
        },
    }
}

/// `n` plans (with a value larger than a block if `big`) kept in a spill file in `dir`.
fn spilled(dir: &std::path::Path, n: u64, big: bool) -> (Vec<Processed>, SpillReader) {
    let mut spill = Spill::new(Some(dir)).expect("spill");
    let kept: Vec<Processed> = (0..n).map(|i| processed(i, big)).collect();
    for p in &kept {
        spill.push(p).expect("push");
    }
    assert_eq!(spill.len(), n);
    (kept, spill.read().expect("read"))
}

fn file_bytes(r: &SpillReader) -> Vec<u8> {
    let len = r.file.metadata().expect("metadata").len();
    let mut bytes = vec![0; len as usize];
    r.file.read_exact_at(&mut bytes, 0).expect("read");
    bytes
}

/// Where each block starts, from the headers.
fn block_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        starts.push(at);
        let packed = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4"));
        at += HEADER + packed as usize;
    }
    assert_eq!(at, bytes.len());
    starts
}

#[test]
fn every_plan_reads_back_whole_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (n, big) in [(0, false), (1, false), (700, false), (9, true)] {
        let (kept, mut reader) = spilled(dir.path(), n, big);
        if n >= 700 || big {
            assert!(
                block_starts(&file_bytes(&reader)).len() > 1,
                "{n} in one block"
            );
        }
        for p in &kept {
            let (back, staged) = reader.next_object().expect("next").expect("an object");
            assert_eq!(format!("{back:?}"), format!("{p:?}"));
            assert_eq!(Some(staged), StagedObject::of(p));
        }
        assert!(reader.next_object().expect("the end").is_none());
    }
}

/// Reads to the end: the error, after however many objects.
fn read_error(mut r: SpillReader) -> String {
    loop {
        match r.next_object() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("a damaged file read to its end"),
            Err(e) => return e,
        }
    }
}

#[test]
fn a_corrupt_or_short_file_is_an_error_naming_its_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, reader) = spilled(dir.path(), 700, false);
    let good = file_bytes(&reader);
    let starts = block_starts(&good);
    let second = starts[1];
    let packed0 = second - HEADER;
    let flip = |at: usize| {
        let mut b = good.clone();
        b[at] ^= 0x10;
        b
    };
    let field = |at: usize, delta: i64| {
        let mut b = good.clone();
        let v = u32::from_le_bytes(b[at..at + 4].try_into().expect("4")) as i64 + delta;
        b[at..at + 4].copy_from_slice(&(v as u32).to_le_bytes());
        b
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("cut after a whole block", good[..second].to_vec()),
        (
            "cut after the last whole block",
            good[..starts[starts.len() - 1]].to_vec(),
        ),
        ("cut in a header", good[..second + 5].to_vec()),
        ("cut in a block", good[..good.len() - 1].to_vec()),
        ("a byte of deflate data", flip(HEADER + packed0 / 2)),
        ("the checksum", flip(second - 1)),
        ("the JSON length", field(0, 1)),
        ("the deflated length", field(4, -1)),
        ("one line more", field(8, 1)),
        ("one line less", field(8, -1)),
        (
            "a block too many",
            [good.clone(), good[..second].to_vec()].concat(),
        ),
    ];
    for (what, bytes) in cases {
        let (_, reader) = spilled(dir.path(), 700, false);
        reader.file.set_len(0).expect("truncate");
        reader.file.write_all_at(&bytes, 0).expect("write");
        let e = read_error(reader);
        eprintln!("{what}: {e}");
        assert!(
            e.contains(&dir.path().display().to_string()) && e.contains("max_plans_in_memory"),
            "{what}: {e}"
        );
    }
}

#[test]
fn a_spilled_object_takes_a_fraction_of_its_json_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (kept, reader) = spilled(dir.path(), 2000, false);
    let json: usize = kept
        .iter()
        .map(|p| {
            serde_json::to_vec(&Spilled::of(p).expect("a write"))
                .expect("json")
                .len()
                + 1
        })
        .sum();
    let file = file_bytes(&reader).len();
    let per = |b: usize| b as f64 / kept.len() as f64;
    eprintln!(
        "{:.0} bytes per object, {:.0} as JSON lines",
        per(file),
        per(json)
    );
    assert!(file * 3 < json, "{file} bytes against {json} as JSON lines");
}
