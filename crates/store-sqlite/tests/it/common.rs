//! Fixtures shared by the store's tests.

use exo_writeback_core::directory::AttrValue;
use exo_writeback_core::outcome::OutcomeCode;
use exo_writeback_core::provisioning::{
    Action, CycleId, EscrowFailure, EscrowUpdate, Join, JoinUpdate, JournalRecord, LogEntryId,
    LogStatus, ModifiedProperty, ObjectOutcome, ProvisioningLogEntry, Reason, SourceIdentity, Step,
    StepStatus, Steps, TargetIdentity,
};
use exo_writeback_store_sqlite::SqliteStore;
use jiff::{SignedDuration, Timestamp};
use tempfile::TempDir;
use uuid::Uuid;

/// A fresh store in a temporary state_dir (kept alive by the returned TempDir).
pub fn open_temp() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open_in(dir.path()).expect("open store");
    (dir, store)
}

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

/// Stores an outcome's log entry and journal in a database of schema version 1 to 4, as
/// those versions did (raw SQL: the store's own code writes the current schema).
pub fn insert_as_version_4(path: &std::path::Path, o: &ObjectOutcome) {
    let conn = rusqlite::Connection::open(path).expect("raw open");
    let ns = |t: Timestamp| i64::try_from(t.as_nanosecond()).expect("nanoseconds");
    let log = &o.log;
    let id = log.id.0.hyphenated().to_string();
    conn.execute(
        "INSERT INTO log_entries (id, cycle, time, status, source_id, smtp, dn, guid, entry)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        rusqlite::params![
            id,
            log.cycle.0,
            ns(log.time),
            log.status.as_str(),
            log.source
                .external_directory_object_id
                .as_deref()
                .map(str::to_lowercase),
            log.source
                .primary_smtp_address
                .as_deref()
                .map(str::to_lowercase),
            log.target.dn.as_deref().map(str::to_lowercase),
            log.target.object_guid.map(|g| g.hyphenated().to_string()),
            serde_json::to_string(log).expect("entry"),
        ],
    )
    .expect("insert a version 4 log entry");
    for j in &o.journal {
        conn.execute(
            "INSERT INTO journal (cycle, log_entry, time, object_guid, dn, attribute, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![
                j.cycle.0,
                id,
                ns(j.time),
                j.object_guid.hyphenated().to_string(),
                j.dn.to_lowercase(),
                j.attribute,
                serde_json::to_string(j).expect("record"),
            ],
        )
        .expect("insert a version 4 journal record");
    }
}
