//! Quick measurement of `record_outcome` (one transaction per object) and
//! `record_outcomes_then_watermark` (one per batch), on a temporary state.db.
//!
//! `cargo run --release -p exo-writeback-store-sqlite --example throughput -- [single] [batched] [batch]`
//! (defaults 2000, 200000, 500). Set `STATE_DIR` to measure on a particular disk.
//!
//! Batches are written as the engine writes a chunk: the write-ahead intents committed first
//! (`record_intents`), then the outcomes with the deletion of the intents
//! (`record_outcomes_clearing_intents`); `NO_INTENTS=1` commits the outcomes alone
//! (`record_outcomes_then_watermark`), `NO_JOINS=1` sets no join, `IN_SYNC=1` records
//! "already in sync" outcomes (nothing modified, no journal, the join kept), as a full
//! reconcile does for nearly every object.

use std::time::Instant;

use exo_writeback_core::directory::AttrValue;
use exo_writeback_core::provisioning::{
    Action, CycleId, CycleKind, EscrowUpdate, Join, JoinUpdate, JournalRecord, LogEntryId,
    LogStatus, ModifiedProperty, ObjectOutcome, ObjectRef, ProvisioningLogEntry, SourceIdentity,
    Step, StepStatus, Steps, TargetIdentity, Watermark,
};
use exo_writeback_store_sqlite::prelude::*;
use exo_writeback_store_sqlite::{LogQuery, SqliteStore, WriteIntent};
use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

fn outcome(cycle: CycleId, n: u64, time: Timestamp) -> ObjectOutcome {
    // Random-looking ids, as real objectGUIDs and cloud ids are (a v5 UUID of n).
    let guid = Uuid::new_v5(&Uuid::NAMESPACE_OID, &n.to_le_bytes());
    let cloud_id = Uuid::new_v5(&Uuid::NAMESPACE_URL, &n.to_le_bytes()).to_string();
    let dn = format!("CN=User {n},OU=Staff,DC=lab,DC=example");
    let smtp = format!("user{n}@contoso.com");
    let old = vec![AttrValue::Text(format!("SMTP:{smtp}"))];
    let new = vec![
        AttrValue::Text(format!("SMTP:{smtp}")),
        AttrValue::Text(format!("smtp:alias{n}@contoso.com")),
    ];
    let step = |details: &str| Step {
        status: StepStatus::Success,
        details: details.into(),
    };
    let journal = |attribute: &str, previous: Vec<AttrValue>, new: Vec<AttrValue>| JournalRecord {
        cycle,
        time,
        object_guid: guid,
        dn: dn.clone(),
        attribute: attribute.into(),
        previous,
        new,
    };
    let mut o = ObjectOutcome {
        log: ProvisioningLogEntry {
            id: LogEntryId(Uuid::now_v7()),
            cycle,
            time,
            duration: SignedDuration::from_micros(800),
            source: SourceIdentity {
                kind: Default::default(),
                external_directory_object_id: Some(cloud_id.clone()),
                primary_smtp_address: Some(smtp.clone()),
                user_principal_name: None,
            },
            target: TargetIdentity {
                dn: Some(dn.clone()),
                object_guid: Some(guid),
            },
            action: Action::Update,
            status: LogStatus::Success,
            reason: None,
            steps: Steps {
                import: step("read from Exchange Online"),
                scoping: step("IsDirSynced and IsExchangeCloudManaged are True"),
                matching: step("matched by msDS-ExternalDirectoryObjectId"),
                export: step("2 attributes"),
            },
            modified: vec![
                ModifiedProperty {
                    attribute: "proxyAddresses".into(),
                    old: old.clone(),
                    new: new.clone(),
                },
                ModifiedProperty {
                    attribute: "extensionAttribute1".into(),
                    old: vec![],
                    new: vec![AttrValue::Text(format!("v{n}"))],
                },
            ],
        },
        journal: vec![
            journal("proxyAddresses", old, new),
            journal(
                "extensionAttribute1",
                vec![],
                vec![AttrValue::Text(format!("v{n}"))],
            ),
        ],
        join: if std::env::var_os("NO_JOINS").is_some() {
            JoinUpdate::Keep
        } else {
            JoinUpdate::Set(Join {
                cloud_id: cloud_id.clone(),
                object_guid: guid,
                dn,
                updated_at: time,
            })
        },
        escrow: EscrowUpdate::Clear { cloud_id },
        pins: Default::default(),
    };
    if std::env::var_os("IN_SYNC").is_some() {
        // An "already in sync" outcome, as a full reconcile records for nearly every object.
        o.log.action = Action::Other;
        o.log.duration = SignedDuration::from_micros(80);
        o.log.source.user_principal_name = o.log.source.primary_smtp_address.clone();
        o.log.steps.export = step("already in sync");
        o.log.modified.clear();
        o.journal.clear();
        o.join = JoinUpdate::Keep;
    }
    o
}

/// CPU time (user + system) of this process so far, in seconds: on a shared machine wall time
/// mostly measures the neighbours.
fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return f64::NAN;
    }
    // SAFETY: initialised by the successful call above (and zeroed before).
    let u = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Bytes this process caused to be written to storage so far (`write_bytes`, /proc/self/io).
fn write_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("write_bytes:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let single = arg(1, 2_000);
    let batched = arg(2, 200_000);
    let batch_size = arg(3, 500).max(1);
    let dir = match std::env::var_os("STATE_DIR") {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let mut store = SqliteStore::open_in(dir.path())?;
    let t0: Timestamp = "2026-03-01T08:00:00Z".parse()?;
    let cycle = store.begin_cycle(CycleKind::Initial, t0)?;

    let outcomes: Vec<_> = (0..single).map(|n| outcome(cycle, n, t0)).collect();
    let start = Instant::now();
    let cpu = cpu_seconds();
    for o in &outcomes {
        store.record_outcome(o)?;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    println!(
        "record_outcome, one transaction each: {single} outcomes in {secs:.2} s = {:.0} outcomes/s \
         (CPU {:.0} µs per outcome)",
        single as f64 / secs,
        cpu * 1e6 / single as f64
    );

    let mut built = 0.0;
    let mut built_cpu = 0.0;
    let written_before = write_bytes();
    let start = Instant::now();
    let cpu = cpu_seconds();
    let mut n = single;
    while n < single + batched {
        let end = (n + batch_size).min(single + batched);
        let b = Instant::now();
        let bc = cpu_seconds();
        let batch: Vec<_> = (n..end).map(|i| outcome(cycle, i, t0)).collect();
        built += b.elapsed().as_secs_f64();
        built_cpu += cpu_seconds() - bc;
        if std::env::var_os("NO_INTENTS").is_some() {
            let wm = Watermark {
                changed_since: t0,
                overlap: SignedDuration::from_secs(120),
                cycle,
                edge: Vec::new(),
            };
            store.record_outcomes_then_watermark(&batch, Some(&wm))?;
        } else {
            let intents: Vec<WriteIntent> = batch
                .iter()
                .filter_map(|o| {
                    let cloud_id = o.log.source.external_directory_object_id.as_deref()?;
                    WriteIntent::from_success(cloud_id, o)
                })
                .collect();
            store.record_intents(&intents)?;
            let ids: Vec<Uuid> = intents.iter().map(|i| i.id).collect();
            store.record_outcomes_clearing_intents(&batch, &ids)?;
        }
        n = end;
    }
    let secs = start.elapsed().as_secs_f64() - built;
    let cpu = cpu_seconds() - cpu - built_cpu;
    println!(
        "batches of {batch_size} (intents, then outcomes): {batched} outcomes in {secs:.2} s \
         = {:.0} outcomes/s (CPU {:.0} µs per outcome)",
        batched as f64 / secs,
        cpu * 1e6 / batched as f64
    );

    let written = write_bytes() - written_before;
    println!(
        "state DB written (write_bytes of /proc/self/io) by the batched outcomes: {:.1} KB per outcome",
        written as f64 / 1000.0 / batched as f64
    );

    let start = Instant::now();
    let hits = store.query_logs(&LogQuery {
        identity: Some(format!("user{}@CONTOSO.com", single + batched / 2)),
        ..LogQuery::default()
    })?;
    println!(
        "query_logs by SMTP among {} entries: {} hit(s) in {:.2} ms",
        single + batched,
        hits.len(),
        start.elapsed().as_secs_f64() * 1000.0
    );
    let start = Instant::now();
    let j = store.journal_for_object(&ObjectRef::Dn(format!(
        "cn=user {},ou=staff,dc=lab,dc=example",
        single + 7
    )))?;
    println!(
        "journal_for_object by DN: {} record(s) in {:.2} ms",
        j.len(),
        start.elapsed().as_secs_f64() * 1000.0
    );
    let wal = store.path().with_extension("db-wal");
    let size = std::fs::metadata(store.path())?.len()
        + std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    println!(
        "database size (with WAL): {:.1} MiB ({:.0} bytes per outcome)",
        size as f64 / 1048576.0,
        size as f64 / (single + batched) as f64
    );
    Ok(())
}
