//! Fixtures of the store's tests: objects numbered `n`, with awkward values.

use exo_writeback_core::directory::AttrValue;
use exo_writeback_core::outcome::OutcomeCode;
use exo_writeback_core::provisioning::{
    Action, CycleId, EscrowFailure, EscrowUpdate, Join, JoinUpdate, JournalRecord, LogEntryId,
    LogStatus, ModifiedProperty, ObjectOutcome, ProvisioningLogEntry, Reason, SourceIdentity, Step,
    StepStatus, Steps, TargetIdentity,
};
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

pub fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamp")
}

/// The base instant of the fixtures.
pub fn t0() -> Timestamp {
    ts("2026-03-01T08:00:00Z")
}

/// `t0 + secs`.
pub fn at(secs: i64) -> Timestamp {
    t0() + SignedDuration::from_secs(secs)
}

/// The objectGUID of fixture object `n`.
pub fn guid(n: u64) -> Uuid {
    Uuid::from_u128(0xA000_0000_0000_0000_0000_0000_0000_0000 | u128::from(n))
}

pub fn cloud_id(n: u64) -> String {
    format!("0000aaaa-0000-0000-0000-{n:012}")
}

pub fn smtp(n: u64) -> String {
    format!("User{n}@Contoso.com")
}

pub fn dn(n: u64) -> String {
    format!("CN=User {n},OU=Staff,DC=lab,DC=example")
}

pub fn reason(code: &str) -> Reason {
    Reason {
        code: OutcomeCode::parse(code).expect("an outcome code"),
        message: format!("{code} happened"),
        recommended_action: format!("fix {code}"),
    }
}

fn step(status: StepStatus, details: &str) -> Step {
    Step {
        status,
        details: details.into(),
    }
}

/// A log entry for object `n` in `cycle`, at `time`, with `status`.
pub fn log_entry(
    cycle: CycleId,
    n: u64,
    time: Timestamp,
    status: LogStatus,
) -> ProvisioningLogEntry {
    let (action, reason) = match status {
        LogStatus::Success => (Action::Update, None),
        LogStatus::Skipped => (Action::Skip, Some(reason("NotInScope"))),
        LogStatus::Failure => (Action::Update, Some(reason("SchemaConstraint"))),
        LogStatus::Warning => (Action::Other, Some(reason("DriftCorrected"))),
        LogStatus::Held => (Action::Skip, Some(reason("Held"))),
    };
    ProvisioningLogEntry {
        id: LogEntryId(Uuid::from_u128(
            (u128::from(cycle.0 as u64) << 64) | u128::from(n),
        )),
        cycle,
        time,
        duration: SignedDuration::from_millis(3),
        source: SourceIdentity {
            kind: Default::default(),
            external_directory_object_id: Some(cloud_id(n)),
            primary_smtp_address: Some(smtp(n)),
            user_principal_name: Some(format!("Upn{n}@Corp.Example")),
        },
        target: TargetIdentity {
            dn: Some(dn(n)),
            object_guid: Some(guid(n)),
        },
        action,
        status,
        reason,
        steps: Steps {
            import: step(StepStatus::Success, "read from Exchange Online"),
            scoping: step(StepStatus::Success, "in scope"),
            matching: step(
                StepStatus::Success,
                "matched by msDS-ExternalDirectoryObjectId",
            ),
            export: step(StepStatus::Success, "1 attribute"),
        },
        modified: vec![ModifiedProperty {
            attribute: "extensionAttribute1".into(),
            old: vec![],
            new: vec![AttrValue::Text(format!("v{n}"))],
        }],
    }
}

/// Binary values that would not survive a text round trip.
pub fn awkward_bytes(n: u64) -> Vec<u8> {
    let mut b: Vec<u8> = (0..=255u8).collect();
    b.extend_from_slice(&[0xff, 0xfe, 0x00, 0xc3, 0x28]); // invalid UTF-8
    b.extend_from_slice(&n.to_le_bytes());
    b
}

/// The journal of fixture object `n`: three attributes, one of them binary.
pub fn journal(cycle: CycleId, n: u64, time: Timestamp) -> Vec<JournalRecord> {
    let rec = |attribute: &str, previous: Vec<AttrValue>, new: Vec<AttrValue>| JournalRecord {
        cycle,
        time,
        object_guid: guid(n),
        dn: dn(n),
        attribute: attribute.into(),
        previous,
        new,
    };
    vec![
        rec(
            "proxyAddresses",
            vec![
                AttrValue::Text(format!("SMTP:{}", smtp(n))),
                AttrValue::Text("X500:/o=Org/cn=x".into()),
            ],
            vec![
                AttrValue::Text(format!("SMTP:{}", smtp(n))),
                AttrValue::Text(format!("smtp:alias{n}@contoso.com")),
                AttrValue::Text("X500:/o=Org/cn=x".into()),
            ],
        ),
        rec(
            "msExchSafeSendersHash",
            vec![AttrValue::Bytes(awkward_bytes(n))],
            vec![AttrValue::Bytes(vec![])],
        ),
        rec(
            "extensionAttribute1",
            vec![],
            vec![AttrValue::Text(format!("v{n} ✓ ünïcödé"))],
        ),
    ]
}

pub fn join(n: u64, time: Timestamp) -> Join {
    Join {
        cloud_id: cloud_id(n),
        object_guid: guid(n),
        dn: dn(n),
        updated_at: time,
    }
}

pub fn failure(n: u64) -> EscrowFailure {
    EscrowFailure {
        cloud_id: cloud_id(n),
        source: SourceIdentity {
            kind: Default::default(),
            external_directory_object_id: Some(cloud_id(n)),
            primary_smtp_address: Some(smtp(n)),
            user_principal_name: None,
        },
        target: TargetIdentity {
            dn: Some(dn(n)),
            object_guid: Some(guid(n)),
        },
        error: reason("LdapError"),
    }
}

/// A successful outcome for object `n`: log, journal, join set, escrow cleared.
pub fn success(cycle: CycleId, n: u64, time: Timestamp) -> ObjectOutcome {
    ObjectOutcome {
        log: log_entry(cycle, n, time, LogStatus::Success),
        journal: journal(cycle, n, time),
        join: JoinUpdate::Set(join(n, time)),
        escrow: EscrowUpdate::Clear {
            cloud_id: cloud_id(n),
        },
        pins: Default::default(),
    }
}

/// An outcome of object `n` found already in sync: its log entry, no journal, the join kept,
/// its escrow entry (if any) cleared.
pub fn in_sync(cycle: CycleId, n: u64, time: Timestamp) -> ObjectOutcome {
    let mut log = log_entry(cycle, n, time, LogStatus::Success);
    log.action = Action::Other;
    log.reason = Some(reason("AlreadyInSync"));
    log.modified = Vec::new();
    ObjectOutcome {
        log,
        journal: vec![],
        join: JoinUpdate::Keep,
        escrow: EscrowUpdate::Clear {
            cloud_id: cloud_id(n),
        },
        pins: Default::default(),
    }
}

/// A failed outcome for object `n`: log, no journal, escrow failure.
pub fn failed(cycle: CycleId, n: u64, time: Timestamp) -> ObjectOutcome {
    ObjectOutcome {
        log: log_entry(cycle, n, time, LogStatus::Failure),
        journal: vec![],
        join: JoinUpdate::Keep,
        escrow: EscrowUpdate::Failed {
            failure: failure(n),
            failed_at: time,
        },
        pins: Default::default(),
    }
}
