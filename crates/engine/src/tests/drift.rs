//! Drift: an on-premises edit of an attribute the agent wrote, reported or corrected.

use exo_writeback_core::directory::AttrValue;
use exo_writeback_core::drift::{DriftMode, DriftSetting};
use exo_writeback_core::provisioning::{CycleId, ProvisioningLogEntry};
use exo_writeback_core::settings::WritebackSettings;

use super::decisions::assert_adds_up;
use super::*;

fn edit(f: &Fixture, i: usize, attribute: &str, value: &str) {
    f.dir
        .set(&f.guids[i], attribute, vec![AttrValue::Text(value.into())]);
}

fn entries(f: &Fixture, cycle: CycleId) -> Vec<ProvisioningLogEntry> {
    f.engine
        .store
        .query_logs(&LogQuery {
            cycle: Some(cycle),
            ..LogQuery::default()
        })
        .expect("logs")
}

/// The log entry of user `i + 1` in `cycle`.
fn entry(f: &Fixture, cycle: CycleId, i: usize) -> ProvisioningLogEntry {
    entries(f, cycle)
        .into_iter()
        .find(|e| e.target.object_guid == Some(f.guids[i]))
        .expect("entry")
}

fn with_drift(f: &mut Fixture, mode: DriftMode) {
    f.engine.settings = WritebackSettings {
        drift: DriftSetting::All(mode),
        ..WritebackSettings::default()
    }
    .resolve()
    .expect("settings");
}

#[tokio::test]
async fn by_default_an_on_premises_edit_is_reported_and_left_as_it_is() {
    let mut f = fixture(2, 500);
    f.engine.run_cycle(CycleMode::Auto).await.expect("initial");
    edit(&f, 0, "extensionAttribute1", "edited on-prem");
    let r = f.engine.run_cycle(CycleMode::Full).await.expect("full");
    assert_eq!(r.kind, CycleKind::FullReconcile);
    assert_eq!(
        f.dir.values(&f.guids[0], "extensionAttribute1"),
        ["edited on-prem"],
        "report mode changes nothing"
    );
    assert_eq!(
        (
            r.counts.written,
            r.counts.drift_reported,
            r.counts.drift_detected,
            r.counts.drift_corrected
        ),
        (0, 1, 1, 0),
        "{:?}",
        r.counts
    );
    assert_adds_up("report", &r);
    let logs = entries(&f, r.cycle);
    let drifted: Vec<_> = logs
        .iter()
        .filter(|e| e.status == LogStatus::Warning)
        .collect();
    assert_eq!(drifted.len(), 1, "{logs:?}");
    let reason = drifted[0].reason.as_ref().expect("reason");
    assert_eq!(reason.code, "DriftDetected");
    assert!(
        reason
            .message
            .contains("extensionAttribute1: \"ca1-1\" → \"edited on-prem\" (written by cycle 1"),
        "{}",
        reason.message
    );
    assert!(drifted[0].modified.is_empty(), "nothing written");

    // A cloud change of another attribute is written; the edit is still left and reported.
    let later: Timestamp = "2026-01-01T02:00:00Z".parse().expect("ts");
    let mut m = mailbox(1, later);
    m.custom_attributes[1] = Some("new in the cloud".into());
    f.source.set(m);
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("delta");
    assert_eq!((r.counts.written, r.counts.drift_detected), (1, 1));
    assert_eq!(
        f.dir.values(&f.guids[0], "extensionAttribute2"),
        ["new in the cloud"]
    );
    assert_eq!(
        f.dir.values(&f.guids[0], "extensionAttribute1"),
        ["edited on-prem"]
    );
    let written = entry(&f, r.cycle, 0);
    assert_eq!(
        written.reason.as_ref().map(|r| r.code.as_str()),
        Some("DriftDetected")
    );

    // A new cloud value is not drift: it is written over the edit.
    let mut m = mailbox(1, "2026-01-01T03:00:00Z".parse().expect("ts"));
    m.custom_attributes[0] = Some("changed in the cloud".into());
    m.custom_attributes[1] = Some("new in the cloud".into());
    f.source.set(m);
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("delta");
    assert_eq!((r.counts.written, r.counts.drift_detected), (1, 0));
    assert_eq!(
        f.dir.values(&f.guids[0], "extensionAttribute1"),
        ["changed in the cloud"]
    );
}

#[tokio::test]
async fn with_drift_correct_the_cloud_value_is_written_back_and_undo_restores_the_edit() {
    let mut f = fixture(2, 500);
    with_drift(&mut f, DriftMode::Correct);
    f.engine.run_cycle(CycleMode::Auto).await.expect("initial");
    edit(&f, 0, "extensionAttribute1", "edited on-prem");
    let r = f.engine.run_cycle(CycleMode::Full).await.expect("full");
    assert_eq!(f.dir.values(&f.guids[0], "extensionAttribute1"), ["ca1-1"]);
    assert_eq!(
        (
            r.counts.written,
            r.counts.drift_detected,
            r.counts.drift_corrected
        ),
        (1, 1, 1)
    );
    assert_adds_up("correct", &r);
    let logged = entry(&f, r.cycle, 0);
    let reason = logged.reason.as_ref().expect("reason");
    assert_eq!(reason.code, "DriftCorrected");
    assert!(
        reason.message.contains("\"ca1-1\" → \"edited on-prem\""),
        "{}",
        reason.message
    );
    // Journaled: undo puts the on-premises edit back.
    f.engine
        .undo(UndoTarget::Cycle(r.cycle))
        .await
        .expect("undo");
    assert_eq!(
        f.dir.values(&f.guids[0], "extensionAttribute1"),
        ["edited on-prem"]
    );
}

#[tokio::test]
async fn a_delta_that_reads_the_object_sees_the_edit_too() {
    // Not only the full reconcile: any cycle that evaluates the object compares with the
    // journal.
    let mut f = fixture(1, 500);
    with_drift(&mut f, DriftMode::Correct);
    f.engine.run_cycle(CycleMode::Auto).await.expect("initial");
    edit(&f, 0, "extensionAttribute1", "edited on-prem");
    let mut m = mailbox(1, "2026-01-01T02:00:00Z".parse().expect("ts"));
    m.custom_attributes[1] = Some("new".into());
    f.source.set(m);
    let r = f.engine.run_cycle(CycleMode::Auto).await.expect("delta");
    assert_eq!(r.kind, CycleKind::Delta);
    assert_eq!((r.counts.drift_detected, r.counts.drift_corrected), (1, 1));
    assert_eq!(f.dir.values(&f.guids[0], "extensionAttribute1"), ["ca1-1"]);
    assert_eq!(f.dir.values(&f.guids[0], "extensionAttribute2"), ["new"]);
}
