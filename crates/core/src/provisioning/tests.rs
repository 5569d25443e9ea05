//! Tests of the provisioning-log model.

use super::*;
use jiff::SignedDuration;
use proptest::strategy::Strategy as _;

fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamp")
}

#[test]
fn escrow_backoff_follows_the_product_schedule() {
    let cases: &[(u32, Option<i64>)] = &[
        (0, None),
        (1, None),
        (2, Some(60)),
        (3, Some(5 * 60)),
        (4, Some(30 * 60)),
        (5, Some(2 * 3600)),
        (6, Some(4 * 3600)),
        (7, Some(8 * 3600)),
        (8, Some(16 * 3600)),
        (9, Some(24 * 3600)),
        (10, Some(24 * 3600)),
        (u32::MAX, Some(24 * 3600)),
    ];
    for (attempts, secs) in cases {
        let want = match secs {
            None => Backoff::NextCycle,
            Some(s) => Backoff::After(SignedDuration::from_secs(*s)),
        };
        assert_eq!(escrow_backoff(*attempts), want, "attempts {attempts}");
    }
}

#[test]
fn escrow_entries_count_attempts_and_keep_the_first_failure() {
    let failure = EscrowFailure {
        cloud_id: "c1".into(),
        source: SourceIdentity::default(),
        target: TargetIdentity::default(),
        error: Reason {
            code: crate::outcome::OutcomeCode::SchemaConstraint,
            message: "m".into(),
            recommended_action: "r".into(),
        },
    };
    let t0 = ts("2026-01-01T00:00:00Z");
    let first = EscrowEntry::after_failure(None, &failure, t0);
    assert_eq!(first.attempts, 1);
    assert_eq!(first.next_retry, t0, "first retry is the next cycle");
    assert!(first.is_due(t0));
    let t1 = ts("2026-01-01T00:01:00Z");
    let second = EscrowEntry::after_failure(Some(&first), &failure, t1);
    assert_eq!(second.attempts, 2);
    assert_eq!(second.first_failed_at, t0);
    assert_eq!(second.next_retry, ts("2026-01-01T00:02:00Z"));
    assert!(!second.is_due(t1));
    assert_eq!(
        escrow_next_retry(u32::MAX, Timestamp::MAX),
        Timestamp::MAX,
        "saturates"
    );
}

#[test]
fn quarantine_backoff_follows_the_product_schedule() {
    let mins: Vec<i64> = (1..=7)
        .map(|n| quarantine_backoff(n).as_secs() / 60)
        .collect();
    assert_eq!(mins, vec![1, 5, 15, 60, 360, 360, 360]);
}

#[test]
fn watermark_stops_at_the_earliest_unfinished_mailbox() {
    let floor = ts("2026-01-01T00:00:00Z");
    let mut t = WatermarkTracker::new(floor);
    assert_eq!(t.safe_changed_since(), floor);
    t.seen("a", ts("2026-01-01T00:00:10Z"));
    t.seen("b", ts("2026-01-01T00:00:05Z"));
    t.seen("c", ts("2026-01-01T00:00:20Z"));
    assert_eq!(t.safe_changed_since(), ts("2026-01-01T00:00:05Z"));
    t.durable("a");
    t.durable("c");
    assert_eq!(
        t.safe_changed_since(),
        ts("2026-01-01T00:00:05Z"),
        "b is not durable: the watermark may not pass it"
    );
    t.durable("b");
    assert_eq!(t.pending(), 0);
    assert_eq!(t.safe_changed_since(), ts("2026-01-01T00:00:20Z"));
    // Two mailboxes at the same instant: one durable is not enough.
    t.seen("d", ts("2026-01-01T00:00:30Z"));
    t.seen("e", ts("2026-01-01T00:00:30Z"));
    t.durable("d");
    assert_eq!(t.safe_changed_since(), ts("2026-01-01T00:00:30Z"));
    t.seen("f", ts("2026-01-01T00:00:25Z"));
    assert_eq!(t.safe_changed_since(), ts("2026-01-01T00:00:25Z"));
    // Instants before the floor never pull the watermark back.
    let mut late = WatermarkTracker::new(floor);
    late.seen("old", ts("2025-12-31T23:59:00Z"));
    assert_eq!(late.safe_changed_since(), floor);
    let wm = t.watermark(CycleId(3), SignedDuration::from_secs(60));
    assert_eq!(
        wm.query_from(),
        ts("2026-01-01T00:00:25Z") - SignedDuration::from_secs(60)
    );
}

#[test]
fn a_mailbox_seen_twice_keeps_the_earlier_instant() {
    let mut t = WatermarkTracker::new(ts("2026-01-01T00:00:00Z"));
    t.seen("a", ts("2026-01-01T00:00:10Z"));
    t.seen("a", ts("2026-01-01T00:00:40Z"));
    t.seen("a", ts("2026-01-01T00:00:05Z"));
    assert_eq!(t.pending(), 1);
    assert_eq!(t.safe_changed_since(), ts("2026-01-01T00:00:05Z"));
    t.durable("a");
    assert_eq!(t.safe_changed_since(), ts("2026-01-01T00:00:40Z"));
}

#[test]
fn log_entries_round_trip_through_json_with_bytes_exact() {
    let entry = ProvisioningLogEntry {
        id: LogEntryId(Uuid::from_u128(7)),
        cycle: CycleId(2),
        time: ts("2026-01-01T00:00:00.123456789Z"),
        duration: SignedDuration::from_millis(12),
        source: SourceIdentity {
            kind: Default::default(),
            external_directory_object_id: Some("e1".into()),
            primary_smtp_address: Some("a@contoso.com".into()),
            user_principal_name: None,
        },
        target: TargetIdentity {
            dn: Some("CN=A,DC=x".into()),
            object_guid: Some(Uuid::from_u128(9)),
        },
        action: Action::Update,
        status: LogStatus::Success,
        reason: None,
        steps: Steps {
            import: Step {
                status: StepStatus::Success,
                details: "read".into(),
            },
            scoping: Step::not_reached(),
            matching: Step::not_reached(),
            export: Step::not_reached(),
        },
        modified: vec![ModifiedProperty {
            attribute: "msExchSafeSendersHash".into(),
            old: vec![AttrValue::Bytes(vec![0, 255, 10, 13])],
            new: vec![AttrValue::Text("{\"base64\":\"x\"}".into())],
        }],
    };
    let json = serde_json::to_string(&entry).expect("serialize");
    let back: ProvisioningLogEntry = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, entry);
    assert!(json.contains("\"status\":\"success\""), "{json}");
}

proptest::proptest! {
    #[test]
    fn attr_values_round_trip_exactly_through_json(
        values in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::collection::vec(proptest::num::u8::ANY, 0..40).prop_map(AttrValue::Bytes),
                ".{0,20}".prop_map(AttrValue::Text),
            ],
            0..6,
        )
    ) {
        let record = ModifiedProperty { attribute: "a".into(), old: values.clone(), new: vec![] };
        let json = serde_json::to_string(&record).expect("serialize");
        let back: ModifiedProperty = serde_json::from_str(&json).expect("deserialize");
        proptest::prop_assert_eq!(back.old, values);
    }
}

#[test]
fn names_parse_back() {
    for k in CycleKind::ALL {
        assert_eq!(CycleKind::from_name(k.as_str()), Some(k));
    }
    for s in LogStatus::ALL {
        assert_eq!(LogStatus::from_name(&s.as_str().to_uppercase()), Some(s));
    }
    assert_eq!(LogStatus::from_name("ok"), None);
    assert_eq!(
        RestartScope::from_name("Escrow"),
        Some(RestartScope::Escrow)
    );
    assert_eq!(RestartScope::from_name("all"), None);
}

#[test]
fn cycle_counts_written_before_security_events_were_counted_still_read() {
    let old = r#"{"imported":3,"in_scope":3,"written":2,"unchanged":1,"skipped":0,"failed":0}"#;
    let counts: CycleCounts = serde_json::from_str(old).expect("old counts");
    assert_eq!((counts.written, counts.security_events), (2, 0));
}
