//! Drift (issue 17, item 5), end to end on the real lab DC: an administrator edits, over LDAP,
//! an attribute the agent wrote. With the default `drift = "report"` the next full reconcile
//! logs `DriftDetected` (what the agent wrote → what AD holds) and leaves the edit; `status`
//! counts it. With `drift = "correct"` the cloud value is written back (`DriftCorrected`),
//! journaled, and `undo` puts the edit back.

use exo_writeback_core::directory::{AttrChange, AttrValue, ModOp, ObjectModify};
use serde_json::Value;

use crate::harness::{Lab, dn, texts};

const USERS: u32 = 3;
const EDITED: u32 = 2;

async fn edit_on_premises(lab: &Lab, value: &str) {
    lab.ad
        .modify(&ObjectModify {
            dn: dn(EDITED),
            changes: vec![AttrChange {
                op: ModOp::Replace,
                attribute: "extensionAttribute1".into(),
                values: vec![AttrValue::Text(value.into())],
            }],
        })
        .await
        .expect("an administrator edits the attribute on-premises");
}

/// The warning entries of `cycle`, as JSON lines.
async fn warnings(lab: &Lab, cycle: &str) -> Vec<Value> {
    lab.log_lines(&["--status", "warning", "--cycle", cycle])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_premises_edit_is_reported_by_default_and_corrected_in_correct_mode() {
    let lab = Lab::start(USERS).await;
    let r = lab.run(&["sync", "--json"]).await.json();
    assert_eq!(r["counts"]["written"], USERS, "{r}");
    let written = texts(&lab.user(EDITED).await, "extensionAttribute1");
    assert_eq!(written.len(), 1, "the initial cycle wrote CustomAttribute1");

    // --- report (the default): logged, counted, left as it is -----------------------------
    edit_on_premises(&lab, "edited on-premises").await;
    let r = lab.run(&["sync", "--full", "--json"]).await.json();
    assert_eq!(r["kind"], "FullReconcile", "{r}");
    assert_eq!(r["counts"]["written"], 0, "{r}");
    assert_eq!(r["counts"]["drift_detected"], 1, "{r}");
    assert_eq!(r["counts"]["drift_reported"], 1, "{r}");
    assert_eq!(
        texts(&lab.user(EDITED).await, "extensionAttribute1"),
        ["edited on-premises"],
        "report mode writes nothing"
    );
    let report_cycle = r["cycle"].to_string();
    let w = warnings(&lab, &report_cycle).await;
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0]["reason"]["code"], "DriftDetected", "{w:?}");
    let message = w[0]["reason"]["message"].as_str().unwrap_or_default();
    let expected = format!(
        "extensionAttribute1: {:?} → \"edited on-premises\" (written by cycle 1",
        written[0]
    );
    assert!(message.contains(&expected), "{message}");
    // Samba does not construct msDS-ReplAttributeMetaData: the entry says so, not a guess.
    assert!(
        message.contains("the DC does not say when or where"),
        "{message}"
    );
    // Provision on demand says the same, and writes nothing.
    let provision = lab
        .run(&["provision", &format!("mbx{EDITED:05}@contoso.example")])
        .await;
    assert!(
        provision.stdout.contains("DriftDetected") && provision.stdout.contains(&expected),
        "{}{}",
        provision.stdout,
        provision.stderr
    );
    assert_eq!(
        texts(&lab.user(EDITED).await, "extensionAttribute1"),
        ["edited on-premises"]
    );
    let status = lab.run(&["status", "--json"]).await.json();
    assert_eq!(
        status["drift"]["detected"], 2,
        "the reconcile and the provision: {status}"
    );
    assert_eq!(status["drift"]["corrected"], 0, "{status}");
    let text = lab.run(&["status"]).await;
    assert!(
        text.stdout
            .contains("drift:      2 object(s) edited on-premises"),
        "{}",
        text.stdout
    );

    // --- correct: the cloud value written back, journaled -----------------------------------
    lab.write_config("", "drift = \"correct\"");
    let r = lab.run(&["sync", "--full", "--json"]).await.json();
    assert_eq!(r["counts"]["written"], 1, "{r}");
    assert_eq!(r["counts"]["drift_corrected"], 1, "{r}");
    assert_eq!(
        texts(&lab.user(EDITED).await, "extensionAttribute1"),
        written
    );
    let correct_cycle = r["cycle"].to_string();
    let w = warnings(&lab, &correct_cycle).await;
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0]["reason"]["code"], "DriftCorrected", "{w:?}");
    let sync_text = lab.run(&["sync", "--full"]).await;
    assert!(
        !sync_text.stdout.contains("drift:"),
        "corrected, nothing drifts any more: {}",
        sync_text.stdout
    );

    // --- undo puts the on-premises edit back ------------------------------------------------
    let u = lab.run(&["undo", "--cycle", &correct_cycle]).await;
    assert_eq!(u.code, 0, "{}{}", u.stdout, u.stderr);
    assert_eq!(
        texts(&lab.user(EDITED).await, "extensionAttribute1"),
        ["edited on-premises"]
    );
}
