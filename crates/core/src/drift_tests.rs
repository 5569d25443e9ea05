use uuid::Uuid;

use super::*;
use crate::directory::{AttrChange, ModOp, ObjectModify};
use crate::plan::PropertyChange;
use crate::settings::WritebackSettings;

fn text(v: &str) -> AttrValue {
    AttrValue::Text(v.into())
}

fn texts(vs: &[&str]) -> Vec<AttrValue> {
    vs.iter().map(|v| text(v)).collect()
}

fn at(s: &str) -> Timestamp {
    s.parse().expect("ts")
}

/// A plan setting extensionAttribute1 (AD holds `ea1_ad`, the cloud maps to `ea1_cloud`) and
/// removing one stale proxy address.
fn plan(ea1_ad: &str, ea1_cloud: &str) -> ObjectPlan {
    ObjectPlan {
        dn: "CN=a,DC=x".into(),
        modify: Some(ObjectModify {
            dn: "CN=a,DC=x".into(),
            changes: vec![
                AttrChange {
                    op: ModOp::Replace,
                    attribute: "extensionAttribute1".into(),
                    values: texts(&[ea1_cloud]),
                },
                AttrChange {
                    op: ModOp::Delete,
                    attribute: "proxyAddresses".into(),
                    values: texts(&["smtp:stale@x"]),
                },
            ],
        }),
        changes: vec![
            PropertyChange {
                attribute: "extensionAttribute1".into(),
                old: texts(&[ea1_ad]),
                new: texts(&[ea1_cloud]),
            },
            PropertyChange {
                attribute: "proxyAddresses".into(),
                old: texts(&["SMTP:a@x", "smtp:stale@x"]),
                new: texts(&["SMTP:a@x"]),
            },
        ],
        removes_values: true,
        added_smtp_addresses: vec![],
        warnings: vec![],
    }
}

fn record(
    cycle: i64,
    time: &str,
    attribute: &str,
    previous: &[&str],
    new: &[&str],
) -> JournalRecord {
    JournalRecord {
        cycle: CycleId(cycle),
        time: at(time),
        object_guid: Uuid::nil(),
        dn: "CN=a,DC=x".into(),
        attribute: attribute.into(),
        previous: texts(previous),
        new: texts(new),
    }
}

fn detect(plan: &ObjectPlan, journal: &[JournalRecord], mode: DriftMode) -> Vec<Drift> {
    detect_drift(plan, journal, |_| None, |_| mode)
}

#[test]
fn an_attribute_the_agent_never_wrote_is_not_drift() {
    let p = plan("edited", "cloud");
    assert!(detect(&p, &[], DriftMode::Report).is_empty());
    let other = [record(
        2,
        "2026-01-01T00:00:00Z",
        "extensionAttribute2",
        &[],
        &["x"],
    )];
    assert!(detect(&p, &other, DriftMode::Report).is_empty());
}

#[test]
fn an_on_premises_edit_of_an_unchanged_cloud_value_is_drift() {
    let p = plan("edited on-prem", "cloud");
    let journal = [
        // Newest first: the latest write of the attribute decides.
        record(
            5,
            "2026-01-02T00:00:00Z",
            "extensionAttribute1",
            &["older"],
            &["cloud"],
        ),
        record(
            2,
            "2026-01-01T00:00:00Z",
            "extensionAttribute1",
            &[],
            &["older"],
        ),
    ];
    let d = detect(&p, &journal, DriftMode::Report);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].attribute, "extensionAttribute1");
    assert_eq!(d[0].written, texts(&["cloud"]));
    assert_eq!(d[0].found, texts(&["edited on-prem"]));
    assert_eq!(d[0].written_by, CycleId(5));
    assert_eq!(
        d[0].describe(),
        "extensionAttribute1: \"cloud\" → \"edited on-prem\" (written by cycle 5 at \
         2026-01-02T00:00:00Z; the DC does not say when or where)"
    );
}

#[test]
fn a_new_cloud_value_is_an_update_not_drift() {
    // The agent wrote "cloud"; Exchange Online now maps to "newer": an ordinary update, even
    // though AD was edited too.
    let p = plan("edited on-prem", "newer");
    let journal = [record(
        5,
        "2026-01-02T00:00:00Z",
        "extensionAttribute1",
        &[],
        &["cloud"],
    )];
    assert!(detect(&p, &journal, DriftMode::Report).is_empty());
}

#[test]
fn an_attribute_cleared_on_premises_is_drift() {
    let mut p = plan("x", "cloud");
    p.changes[0].old.clear();
    let journal = [record(
        5,
        "2026-01-02T00:00:00Z",
        "extensionAttribute1",
        &[],
        &["cloud"],
    )];
    let d = detect(&p, &journal, DriftMode::Report);
    assert_eq!(d.len(), 1);
    assert!(d[0].found.is_empty());
}

#[test]
fn report_takes_the_drifted_attribute_out_of_the_plan_and_correct_keeps_it() {
    let journal = [
        record(
            5,
            "2026-01-02T00:00:00Z",
            "extensionAttribute1",
            &[],
            &["cloud"],
        ),
        record(
            5,
            "2026-01-02T00:00:00Z",
            "proxyAddresses",
            &[],
            &["SMTP:a@x"],
        ),
    ];
    // Both attributes drifted (the stale address was added on-premises).
    let mut reported = plan("edited", "cloud");
    let drifts = detect(&reported, &journal, DriftMode::Report);
    assert_eq!(drifts.len(), 2);
    let out = apply_drift(&mut reported, &drifts).expect("drift");
    assert_eq!(out.detail.code, OutcomeCode::DriftDetected);
    assert_eq!((out.reported, out.corrected), (2, 0));
    assert!(reported.is_in_sync(), "{reported:?}");
    assert!(reported.changes.is_empty());
    assert!(!reported.removes_values, "nothing is removed any more");

    let mut corrected = plan("edited", "cloud");
    let drifts = detect(&corrected, &journal, DriftMode::Correct);
    let out = apply_drift(&mut corrected, &drifts).expect("drift");
    assert_eq!(out.detail.code, OutcomeCode::DriftCorrected);
    assert_eq!(
        corrected,
        plan("edited", "cloud"),
        "the plan is written as made"
    );
    assert!(
        out.detail.reason.contains("\"cloud\" → \"edited\""),
        "{}",
        out.detail.reason
    );
}

#[test]
fn report_keeps_the_other_changes_of_the_object() {
    // Only extensionAttribute1 drifted; the address removal is an ordinary change.
    let journal = [record(
        5,
        "2026-01-02T00:00:00Z",
        "extensionAttribute1",
        &[],
        &["cloud"],
    )];
    let mut p = plan("edited", "cloud");
    let drifts = detect(&p, &journal, DriftMode::Report);
    let out = apply_drift(&mut p, &drifts).expect("drift");
    assert_eq!(out.detail.code, OutcomeCode::DriftDetected);
    let modify = p.modify.as_ref().expect("still a write");
    assert_eq!(modify.changes.len(), 1);
    assert_eq!(modify.changes[0].attribute, "proxyAddresses");
    assert_eq!(p.changes.len(), 1);
    assert!(p.removes_values);
    assert!(apply_drift(&mut p, &[]).is_none());
}

#[test]
fn the_setting_is_one_mode_or_one_per_profile() {
    let parse = |t: &str| -> Result<DriftPolicy, String> {
        let s: WritebackSettings = serde_json::from_str(t).map_err(|e| e.to_string())?;
        let r = s.resolve().map_err(|e| e.to_string())?;
        Ok(r.drift)
    };
    let default = parse("{}").expect("default");
    assert_eq!(
        default.mode_of(MappingOrigin::Profile(Profile::CloudManaged)),
        DriftMode::Report
    );
    let all = parse(r#"{"drift": "correct"}"#).expect("all");
    assert_eq!(
        all.mode_of(MappingOrigin::Profile(Profile::Hybrid)),
        DriftMode::Correct
    );
    assert_eq!(all.mode_of(MappingOrigin::Custom), DriftMode::Correct);
    let per = parse(r#"{"drift": {"cloud-managed": "correct"}}"#).expect("per profile");
    assert_eq!(
        per.mode_of(MappingOrigin::Profile(Profile::CloudManaged)),
        DriftMode::Correct
    );
    assert_eq!(
        per.mode_of(MappingOrigin::Profile(Profile::Hybrid)),
        DriftMode::Report
    );
    assert_eq!(per.mode_of(MappingOrigin::Custom), DriftMode::Report);
    let e = parse(r#"{"drift": {"cloud-manged": "correct"}}"#).expect_err("unknown profile");
    assert!(
        e.contains("writeback.drift: \"cloud-manged\" is not a profile"),
        "{e}"
    );
    assert!(parse(r#"{"drift": "fix"}"#).is_err());
}

#[test]
fn repl_attribute_metadata_says_when_and_on_which_dc() {
    // The XML form of one msDS-ReplAttributeMetaData value (DS_REPL_ATTR_META_DATA).
    let xml = "<DS_REPL_ATTR_META_DATA>\n\t<pszAttributeName>extensionAttribute1</pszAttributeName>\n\
               \t<dwVersion>3</dwVersion>\n\t<ftimeLastOriginatingChange>2026-12-03T09:14:07Z</ftimeLastOriginatingChange>\n\
               \t<uuidLastOriginatingDsaInvocationID>6c5e3d3b-6f0c-4a57-9a43-2b4a0f6f3e11</uuidLastOriginatingDsaInvocationID>\n\
               \t<usnOriginatingChange>41233</usnOriginatingChange>\n\t<usnLocalChange>41233</usnLocalChange>\n\
               \t<pszLastOriginatingDsaDN>CN=NTDS Settings,CN=DC2,CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,DC=corp,DC=example</pszLastOriginatingDsaDN>\n\
               </DS_REPL_ATTR_META_DATA>\n\0";
    let o = parse_repl_attr_metadata(xml).expect("parsed");
    assert_eq!(o.attribute, "extensionAttribute1");
    assert_eq!(o.version, Some(3));
    assert_eq!(o.time, Some(at("2026-12-03T09:14:07Z")));
    assert_eq!(o.to_string(), "changed at 2026-12-03T09:14:07Z on DC2");
    assert!(
        parse_repl_attr_metadata("<DS_REPL_ATTR_META_DATA></DS_REPL_ATTR_META_DATA>").is_none()
    );
    assert!(parse_repl_attr_metadata("not xml").is_none());
}
