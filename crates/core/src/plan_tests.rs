//! Data-driven planning tests: a mailbox (Get-Mailbox-shaped JSON over an in-sync baseline),
//! an AD snapshot (overrides of an in-sync baseline) → the expected LDAP modifications, one
//! line per attribute change (`replace mail: a@x`, `delete proxyAddresses: smtp:b@x`,
//! `delete msExchArchiveStatus`) or `FAIL <code>: <reason>`.

use super::*;
use crate::directory::Attributes;
use crate::mapping::{Condition, MappingKind, WhenEmpty};
use crate::profile::Profile;
use crate::schema::Syntax;

use crate::scope::evaluate_scope;
use crate::settings::WritebackSettings;
use proptest::prelude::*;
use serde_json::{Value as Json, json};

const DN: &str = "CN=Ann Lee,OU=Staff,DC=corp,DC=example";
const EDOID: &str = "5a1b2c3d-0000-4000-8000-00000000abcd";

// ---------------------------------------------------------------------------------------------
// fixtures
// ---------------------------------------------------------------------------------------------

fn lab_schema() -> Schema {
    crate::schema::exchange_lab_schema()
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("test hex"))
        .collect()
}

fn opt(v: &Json) -> Option<String> {
    match v {
        Json::String(s) if !s.is_empty() => Some(s.clone()),
        Json::Null | Json::String(_) => None,
        other => panic!("expected a string, got {other}"),
    }
}

fn list(v: &Json) -> Vec<String> {
    match v {
        Json::Array(items) => items
            .iter()
            .map(|i| i.as_str().expect("string items").to_string())
            .collect(),
        Json::Null => Vec::new(),
        other => panic!("expected a list, got {other}"),
    }
}

/// An in-scope cloud-managed user mailbox, in sync with [`baseline_ad`], with the given
/// Get-Mailbox properties overridden. Binary hashes are given in hex.
fn mailbox(overrides: Json) -> Mailbox {
    let mut m = Mailbox {
        external_directory_object_id: Some(EDOID.into()),
        immutable_id: Some("AAECAwQFBgcICQoLDA0ODw==".into()),
        user_principal_name: Some("ann@contoso.com".into()),
        primary_smtp_address: Some("ann@contoso.com".into()),
        windows_email_address: Some("ann@contoso.com".into()),
        email_addresses: vec!["SMTP:ann@contoso.com".into()],
        recipient_type_details: "UserMailbox".into(),
        is_dir_synced: true,
        is_exchange_cloud_managed: true,
        ..Mailbox::default()
    };
    let Json::Object(map) = overrides else {
        panic!("mailbox overrides are an object")
    };
    for (key, v) in map {
        let lower = key.to_ascii_lowercase();
        if let Some(n) = lower.strip_prefix("extensioncustomattribute") {
            let i: usize = n.parse().expect("index");
            m.extension_custom_attributes[i - 1] = list(&v);
            continue;
        }
        if let Some(n) = lower.strip_prefix("customattribute") {
            let i: usize = n.parse().expect("index");
            m.custom_attributes[i - 1] = opt(&v);
            continue;
        }
        let bytes = |v: &Json| opt(v).map(|h| hex(&h));
        match lower.as_str() {
            "externaldirectoryobjectid" => m.external_directory_object_id = opt(&v),
            "immutableid" => m.immutable_id = opt(&v),
            "windowsemailaddress" => m.windows_email_address = opt(&v),
            "primarysmtpaddress" => m.primary_smtp_address = opt(&v),
            "emailaddresses" => m.email_addresses = list(&v),
            "hiddenfromaddresslistsenabled" => {
                m.hidden_from_address_lists_enabled = v.as_bool().expect("bool")
            }
            "recipienttypedetails" => m.recipient_type_details = opt(&v).unwrap_or_default(),
            "isdirsynced" => m.is_dir_synced = v.as_bool().expect("bool"),
            "isexchangecloudmanaged" => m.is_exchange_cloud_managed = v.as_bool().expect("bool"),
            "legacyexchangedn" => m.legacy_exchange_dn = opt(&v),
            "archivestatus" => m.archive_status = opt(&v),
            "inplaceholds" => m.in_place_holds = list(&v),
            "safesendershash" => m.safe_senders_hash = bytes(&v),
            "blockedsendershash" => m.blocked_senders_hash = bytes(&v),
            "saferecipientshash" => m.safe_recipients_hash = bytes(&v),
            "ucvoicemailsettings" => m.uc_voice_mail_settings = list(&v),
            "alias" => m.alias = opt(&v),
            other => panic!("unknown mailbox property in test: {other}"),
        }
    }
    m
}

/// The AD object in sync with the baseline mailbox.
fn baseline_ad() -> Vec<(&'static str, Vec<String>)> {
    vec![
        ("proxyAddresses", vec!["SMTP:ann@contoso.com".into()]),
        ("mail", vec!["ann@contoso.com".into()]),
        ("msExchRecipientTypeDetails", vec!["2147483648".into()]),
        ("msExchRecipientDisplayType", vec!["-2147483642".into()]),
        ("msExchHideFromAddressLists", vec!["FALSE".into()]),
        (
            "msDS-ExternalDirectoryObjectId",
            vec![format!("User_{EDOID}")],
        ),
    ]
}

/// The baseline AD object with attributes overridden (an empty list removes one). Values of
/// binary attributes are given in hex.
fn ad(overrides: &[(&str, &[&str])]) -> DirectoryObject {
    let schema = lab_schema();
    let mut attributes = Attributes::new();
    let mut all: Vec<(String, Vec<String>)> = baseline_ad()
        .into_iter()
        .map(|(a, v)| (a.to_string(), v))
        .collect();
    for (attr, values) in overrides {
        all.retain(|(a, _)| !a.eq_ignore_ascii_case(attr));
        all.push((
            attr.to_string(),
            values.iter().map(|s| s.to_string()).collect(),
        ));
    }
    for (attr, values) in all {
        if values.is_empty() {
            continue;
        }
        let binary = schema.get(&attr).is_some_and(|s| s.syntax.is_binary());
        attributes.insert(
            &attr,
            values
                .iter()
                .map(|v| {
                    if binary {
                        AttrValue::Bytes(hex(v))
                    } else {
                        AttrValue::Text(v.clone())
                    }
                })
                .collect(),
        );
    }
    DirectoryObject {
        dn: DN.into(),
        object_guid: uuid::Uuid::from_bytes_le(
            hex("000102030405060708090a0b0c0d0e0f")
                .try_into()
                .expect("16"),
        ),
        attributes,
    }
}

fn settings(json: Json) -> WritebackPlanSettings {
    serde_json::from_value::<WritebackSettings>(json)
        .expect("deserializes")
        .resolve()
        .expect("resolves")
}

fn cloud() -> WritebackPlanSettings {
    WritebackPlanSettings::default()
}

fn ctx() -> EvalContext {
    EvalContext {
        now: "2026-11-23T12:00:00Z".parse().expect("timestamp"),
        seed: 7,
    }
}

fn render_value(v: &AttrValue) -> String {
    match v {
        AttrValue::Text(t) => t.clone(),
        AttrValue::Bytes(b) => format!(
            "0x{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        ),
    }
}

fn render_modify(m: &ObjectModify) -> String {
    m.changes
        .iter()
        .map(|c| {
            let op = match c.op {
                ModOp::Add => "add",
                ModOp::Delete => "delete",
                ModOp::Replace => "replace",
            };
            if c.values.is_empty() {
                format!("{op} {}", c.attribute)
            } else {
                let vals: Vec<String> = c.values.iter().map(render_value).collect();
                format!("{op} {}: {}", c.attribute, vals.join(" | "))
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn plan_with(
    s: &WritebackPlanSettings,
    schema: &Schema,
    m: &Mailbox,
    current: &DirectoryObject,
) -> Result<ObjectPlan, PlanFailure> {
    let scope = evaluate_scope(s, m).expect("test mailboxes are in scope");
    plan_object(&PlanInput {
        settings: s,
        scope: &scope,
        mailbox: m,
        current,
        schema,
        ctx: &ctx(),
        unreadable: &[],
    })
}

fn render(result: &Result<ObjectPlan, PlanFailure>) -> String {
    match result {
        Ok(p) => p.modify.as_ref().map(render_modify).unwrap_or_default(),
        Err(e) => format!("FAIL {e}"),
    }
}

/// The data-driven check: settings, mailbox overrides, AD overrides → expected lines.
#[track_caller]
fn check(s: &WritebackPlanSettings, m: Json, a: &[(&str, &[&str])], expected: &str) {
    let desc = format!("mailbox {m} AD {a:?}");
    let mb = mailbox(m);
    let current = ad(a);
    let result = plan_with(s, &lab_schema(), &mb, &current);
    assert_eq!(render(&result), expected.trim(), "{desc}");
    // Whatever was planned, planning again over the result changes nothing.
    if let Ok(plan) = &result {
        let applied = apply(&current, plan, &lab_schema());
        let again = plan_with(s, &lab_schema(), &mb, &applied).expect("replans");
        assert!(
            again.is_in_sync(),
            "{desc}: not idempotent: {}",
            render(&Ok(again.clone()))
        );
    }
}

/// Apply a modify the way AD does with the permissive-modify control: adds of present
/// values and deletes of absent ones are no-ops; text values compare case-insensitively.
fn apply(obj: &DirectoryObject, plan: &ObjectPlan, schema: &Schema) -> DirectoryObject {
    let mut out = obj.clone();
    let Some(modify) = &plan.modify else {
        return out;
    };
    for c in &modify.changes {
        let syntax = schema
            .get(&c.attribute)
            .map(|s| s.syntax.clone())
            .unwrap_or(Syntax::Unicode);
        let mut values = out.attributes.get(&c.attribute).to_vec();
        match c.op {
            ModOp::Replace => values = c.values.clone(),
            ModOp::Delete if c.values.is_empty() => values.clear(),
            ModOp::Delete => values.retain(|v| !c.values.iter().any(|d| ad_equal(&syntax, v, d))),
            ModOp::Add => {
                for a in &c.values {
                    if !values.iter().any(|v| ad_equal(&syntax, v, a)) {
                        values.push(a.clone());
                    }
                }
            }
        }
        out.attributes.insert(&c.attribute, values);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// cloud-managed profile, row by row
// ---------------------------------------------------------------------------------------------

#[test]
fn in_sync_mailbox_plans_no_modify() {
    check(&cloud(), json!({}), &[], "");
    // Boolean and integers compare by meaning, not spelling.
    check(
        &cloud(),
        json!({}),
        &[
            ("msExchHideFromAddressLists", &["false"]),
            ("msExchRecipientTypeDetails", &["02147483648"]),
        ],
        "",
    );
}

#[test]
fn custom_attributes_1_to_15() {
    for i in 1..=15 {
        let (prop, attr) = (
            format!("CustomAttribute{i}"),
            format!("extensionAttribute{i}"),
        );
        check(
            &cloud(),
            json!({ prop.clone(): "Sales" }),
            &[],
            &format!("replace {attr}: Sales"),
        );
        check(
            &cloud(),
            json!({ prop.clone(): "Sales" }),
            &[(&attr, &["Sales"])],
            "",
        );
        check(
            &cloud(),
            json!({ prop.clone(): "Sales" }),
            &[(&attr, &["sales"])],
            &format!("replace {attr}: Sales"),
        );
        check(
            &cloud(),
            json!({ prop.clone(): "" }),
            &[(&attr, &["old"])],
            &format!("delete {attr}"),
        );
        check(&cloud(), json!({ prop.clone(): null }), &[], "");
    }
}

#[test]
fn extension_custom_attributes_1_to_5() {
    for i in 1..=5 {
        let (prop, attr) = (
            format!("ExtensionCustomAttribute{i}"),
            format!("msExchExtensionCustomAttribute{i}"),
        );
        check(
            &cloud(),
            json!({ prop.clone(): ["a", "b"] }),
            &[],
            &format!("add {attr}: a | b"),
        );
        check(
            &cloud(),
            json!({ prop.clone(): ["a", "b"] }),
            &[(&attr, &["b", "a"])],
            "",
        );
        check(
            &cloud(),
            json!({ prop.clone(): ["a", "c"] }),
            &[(&attr, &["a", "b"])],
            &format!("delete {attr}: b\nadd {attr}: c"),
        );
        check(
            &cloud(),
            json!({ prop.clone(): ["A"] }),
            &[(&attr, &["a"])],
            &format!("delete {attr}: a\nadd {attr}: A"),
        );
        check(
            &cloud(),
            json!({ prop.clone(): [] }),
            &[(&attr, &["a", "b"])],
            &format!("delete {attr}: a | b"),
        );
        // AD rejects values equal ignoring case: the first one wins.
        check(
            &cloud(),
            json!({ prop.clone(): ["x", "X"] }),
            &[],
            &format!("add {attr}: x"),
        );
    }
}

#[test]
fn mail_from_windows_email_address() {
    check(
        &cloud(),
        json!({"WindowsEmailAddress": "ann.lee@contoso.com"}),
        &[],
        "replace mail: ann.lee@contoso.com",
    );
    check(
        &cloud(),
        json!({"WindowsEmailAddress": "Ann@contoso.com"}),
        &[],
        "replace mail: Ann@contoso.com",
    );
    check(
        &cloud(),
        json!({"WindowsEmailAddress": ""}),
        &[],
        "delete mail",
    );
}

#[test]
fn recipient_type_values_are_the_remote_ones() {
    let cases = [
        ("UserMailbox", "2147483648", "-2147483642"),
        ("RoomMailbox", "8589934592", "-2147481850"),
        ("EquipmentMailbox", "17179869184", "-2147481594"),
        ("SharedMailbox", "34359738368", "-2147483642"),
    ];
    for (rtd, details, display) in cases {
        check(
            &cloud(),
            json!({"RecipientTypeDetails": rtd}),
            &[
                ("msExchRecipientTypeDetails", &[]),
                ("msExchRecipientDisplayType", &[]),
            ],
            &format!(
                "replace msExchRecipientTypeDetails: {details}\nreplace msExchRecipientDisplayType: {display}"
            ),
        );
        check(
            &cloud(),
            json!({"RecipientTypeDetails": rtd}),
            &[
                ("msExchRecipientTypeDetails", &[details]),
                ("msExchRecipientDisplayType", &[display]),
            ],
            "",
        );
    }
    // An on-premises value (UserMailbox = 1) is corrected to the remote one.
    check(
        &cloud(),
        json!({}),
        &[
            ("msExchRecipientTypeDetails", &["1"]),
            ("msExchRecipientDisplayType", &["1073741824"]),
        ],
        "replace msExchRecipientTypeDetails: 2147483648\nreplace msExchRecipientDisplayType: -2147483642",
    );
}

/// Every recipient-type transition of a remote mailbox (User ↔ Room ↔ Equipment ↔ Shared), from
/// each origin `msExchRemoteRecipientType` records: the three type attributes change together
/// in one modify, the provisioned/migrated and archive bits stay, an object without the
/// attribute is not given one, and `targetAddress` is only checked.
#[test]
fn recipient_type_transitions_keep_the_three_attributes_consistent() {
    let types = [
        ("UserMailbox", "2147483648", "-2147483642", 0),
        ("RoomMailbox", "8589934592", "-2147481850", 32),
        ("EquipmentMailbox", "17179869184", "-2147481594", 64),
        ("SharedMailbox", "34359738368", "-2147483642", 96),
    ];
    let routing = "SMTP:ann@contoso.mail.onmicrosoft.com";
    let addresses = json!([
        "SMTP:ann@contoso.com",
        "smtp:ann@contoso.mail.onmicrosoft.com"
    ]);
    // (origin bits held, or none)
    for origin in [Some(1i64), Some(4), Some(6), Some(0x14), None] {
        for (from, from_details, from_display, from_bits) in types {
            for (to, to_details, to_display, to_bits) in types {
                let held_remote = origin.map(|o| (o | from_bits).to_string());
                let mut ad_values: Vec<(&str, Vec<String>)> = vec![
                    (
                        "proxyAddresses",
                        vec![
                            "SMTP:ann@contoso.com".into(),
                            "smtp:ann@contoso.mail.onmicrosoft.com".into(),
                        ],
                    ),
                    ("msExchRecipientTypeDetails", vec![from_details.into()]),
                    ("msExchRecipientDisplayType", vec![from_display.into()]),
                    ("targetAddress", vec![routing.into()]),
                ];
                ad_values.push((
                    "msExchRemoteRecipientType",
                    held_remote.iter().cloned().collect(),
                ));
                let refs: Vec<Vec<&str>> = ad_values
                    .iter()
                    .map(|(_, v)| v.iter().map(String::as_str).collect())
                    .collect();
                let overrides: Vec<(&str, &[&str])> = ad_values
                    .iter()
                    .zip(&refs)
                    .map(|((a, _), v)| (*a, v.as_slice()))
                    .collect();
                let mut expected = Vec::new();
                if from_details != to_details {
                    expected.push(format!("replace msExchRecipientTypeDetails: {to_details}"));
                }
                if from_display != to_display {
                    expected.push(format!("replace msExchRecipientDisplayType: {to_display}"));
                }
                if let Some(o) = origin
                    && from_bits != to_bits
                {
                    expected.push(format!(
                        "replace msExchRemoteRecipientType: {}",
                        o | to_bits
                    ));
                }
                let m = json!({"RecipientTypeDetails": to, "EmailAddresses": addresses});
                check(&cloud(), m.clone(), &overrides, &expected.join("\n"));
                // The routing address is fine: no warning.
                let plan = plan_with(
                    &cloud(),
                    &lab_schema(),
                    &mailbox(m.clone()),
                    &ad(&overrides),
                )
                .expect("plans");
                assert!(
                    plan.warnings.is_empty(),
                    "{from} → {to}: {:?}",
                    plan.warnings
                );
                // Without targetAddress the same modify, and a warning when the type changed.
                let mut no_target = overrides.clone();
                no_target.retain(|(a, _)| *a != "targetAddress");
                no_target.push(("targetAddress", &[]));
                let plan = plan_with(&cloud(), &lab_schema(), &mailbox(m), &ad(&no_target))
                    .expect("plans");
                assert_eq!(
                    render(&Ok(plan.clone())),
                    expected.join("\n"),
                    "{from} → {to}"
                );
                assert!(
                    !plan.changes.iter().any(|c| c.attribute == "targetAddress"),
                    "targetAddress is never written"
                );
                let codes: Vec<OutcomeCode> = plan.warnings.iter().map(|w| w.code).collect();
                let want = if from == to {
                    vec![]
                } else {
                    vec![OutcomeCode::TargetAddressUnexpected]
                };
                assert_eq!(codes, want, "{from} → {to}, origin {origin:?}");
            }
        }
    }
    // A mailbox written for the first time (no type yet on-premises) gets no targetAddress
    // warning: only a change between remote types is checked.
    let plan = plan_with(
        &cloud(),
        &lab_schema(),
        &mailbox(json!({"RecipientTypeDetails": "SharedMailbox"})),
        &ad(&[
            ("msExchRecipientTypeDetails", &[]),
            ("msExchRecipientDisplayType", &[]),
        ]),
    )
    .expect("plans");
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    // A value that is not a number is left as it is.
    check(
        &cloud(),
        json!({"RecipientTypeDetails": "UserMailbox"}),
        &[("msExchRemoteRecipientType", &["not a number"])],
        "",
    );
}

/// An attribute the account may not read looks empty: it is not planned at all (no blind
/// write, no wrong previous value), whatever the cloud holds.
#[test]
fn unreadable_attributes_are_not_planned() {
    let m = mailbox(json!({"CustomAttribute15": "cloud", "CustomAttribute1": "one"}));
    let current = ad(&[]);
    let scope = evaluate_scope(&cloud(), &m).expect("in scope");
    let plan = |unreadable: &[String]| {
        plan_object(&PlanInput {
            settings: &cloud(),
            scope: &scope,
            mailbox: &m,
            current: &current,
            schema: &lab_schema(),
            ctx: &ctx(),
            unreadable,
        })
        .expect("plans")
    };
    assert_eq!(
        render(&Ok(plan(&[]))),
        "replace extensionAttribute1: one\nreplace extensionAttribute15: cloud"
    );
    let hidden = plan(&["EXTENSIONATTRIBUTE15".to_string()]);
    assert_eq!(
        render(&Ok(hidden.clone())),
        "replace extensionAttribute1: one"
    );
    assert!(
        hidden
            .changes
            .iter()
            .all(|c| c.attribute != "extensionAttribute15")
    );
}

#[test]
fn hide_from_address_lists_and_its_switch() {
    check(
        &cloud(),
        json!({"HiddenFromAddressListsEnabled": true}),
        &[],
        "replace msExchHideFromAddressLists: TRUE",
    );
    check(
        &cloud(),
        json!({"HiddenFromAddressListsEnabled": true}),
        &[("msExchHideFromAddressLists", &["TRUE"])],
        "",
    );
    check(
        &cloud(),
        json!({}),
        &[("msExchHideFromAddressLists", &[])],
        "replace msExchHideFromAddressLists: FALSE",
    );
    let off = settings(json!({"hide_from_address_lists": false}));
    check(
        &off,
        json!({"HiddenFromAddressListsEnabled": true}),
        &[],
        "",
    );
}

#[test]
fn disabled_attributes_are_left_alone() {
    let s = settings(json!({"disabled_attributes": ["extensionAttribute1", "proxyAddresses"]}));
    check(
        &s,
        json!({"CustomAttribute1": "x", "CustomAttribute2": "y", "EmailAddresses": ["SMTP:z@contoso.com"]}),
        &[],
        "replace extensionAttribute2: y",
    );
}

// ---------------------------------------------------------------------------------------------
// proxyAddresses policy
// ---------------------------------------------------------------------------------------------

#[test]
fn proxy_addresses_policy() {
    let s = cloud();
    // alias added in the cloud
    check(
        &s,
        json!({"EmailAddresses": ["SMTP:ann@contoso.com", "smtp:ann.lee@contoso.com"]}),
        &[],
        "add proxyAddresses: smtp:ann.lee@contoso.com",
    );
    // primary not first in the cloud list: order does not matter
    check(
        &s,
        json!({"EmailAddresses": ["smtp:b@contoso.com", "SMTP:ann@contoso.com"]}),
        &[(
            "proxyAddresses",
            &["SMTP:ann@contoso.com", "smtp:b@contoso.com"],
        )],
        "",
    );
    // X500 only in AD survives; other AD-only values are removed
    check(
        &s,
        json!({}),
        &[(
            "proxyAddresses",
            &[
                "SMTP:ann@contoso.com",
                "X500:/o=Contoso/ou=Exchange/cn=Recipients/cn=ann",
                "smtp:old@contoso.com",
                "SIP:ann@contoso.com",
            ],
        )],
        "delete proxyAddresses: smtp:old@contoso.com | SIP:ann@contoso.com",
    );
    // primary change: old primary becomes secondary, new one primary, in one modify
    check(
        &s,
        json!({"EmailAddresses": ["smtp:ann@contoso.com", "SMTP:ann.lee@contoso.com"], "WindowsEmailAddress": "ann.lee@contoso.com"}),
        &[(
            "proxyAddresses",
            &["SMTP:ann@contoso.com", "smtp:ann.lee@contoso.com"],
        )],
        "delete proxyAddresses: SMTP:ann@contoso.com | smtp:ann.lee@contoso.com\nadd proxyAddresses: smtp:ann@contoso.com | SMTP:ann.lee@contoso.com\nreplace mail: ann.lee@contoso.com",
    );
    // case-only change of an address
    check(
        &s,
        json!({"EmailAddresses": ["SMTP:Ann@Contoso.com"]}),
        &[],
        "delete proxyAddresses: SMTP:ann@contoso.com\nadd proxyAddresses: SMTP:Ann@Contoso.com",
    );
    // preserve_prefixes configurable: SIP kept, X500 removed
    let sip = settings(json!({"preserve_prefixes": ["sip"]}));
    check(
        &sip,
        json!({}),
        &[(
            "proxyAddresses",
            &["SMTP:ann@contoso.com", "X500:/o=a", "SIP:ann@contoso.com"],
        )],
        "delete proxyAddresses: X500:/o=a",
    );
}

#[test]
fn invalid_cloud_proxy_addresses_fail_the_object() {
    let s = cloud();
    check(
        &s,
        json!({"EmailAddresses": ["smtp:ann@contoso.com"]}),
        &[],
        "FAIL InvalidProxyAddresses: EmailAddresses has no primary SMTP: address",
    );
    check(
        &s,
        json!({"EmailAddresses": []}),
        &[],
        "FAIL InvalidProxyAddresses: EmailAddresses has no primary SMTP: address",
    );
    check(
        &s,
        json!({"EmailAddresses": ["SMTP:ann@contoso.com", "SMTP:lee@contoso.com"]}),
        &[],
        "FAIL InvalidProxyAddresses: EmailAddresses has 2 primary SMTP: addresses (SMTP:ann@contoso.com, SMTP:lee@contoso.com); exactly one is allowed",
    );
    check(
        &s,
        json!({"EmailAddresses": ["SMTP:ann@contoso.com", "smtp:ann lee@contoso.com"]}),
        &[],
        "FAIL InvalidProxyAddresses: \"smtp:ann lee@contoso.com\" is not a valid SMTP address: character ' ' in the local part",
    );
}

#[test]
fn added_smtp_addresses_and_the_conflict_guard() {
    let s = cloud();
    let m = mailbox(
        json!({"EmailAddresses": ["SMTP:ann@contoso.com", "smtp:sales@contoso.com", "X500:/o=x", "sip:ann@contoso.com"]}),
    );
    let plan = plan_with(&s, &lab_schema(), &m, &ad(&[])).expect("plans");
    assert_eq!(plan.added_smtp_addresses, vec!["sales@contoso.com"]);
    assert!(!plan.removes_values);
    // Held by the object itself: no conflict. Held by another: conflict naming it.
    let own = vec![("SMTP:Sales@contoso.com".to_string(), DN.to_lowercase())];
    assert_eq!(check_address_conflicts(&plan, &own, DN), Ok(()));
    let other = vec![(
        "sales@CONTOSO.com".to_string(),
        "CN=Sales Team,OU=Groups,DC=corp,DC=example".to_string(),
    )];
    let err = check_address_conflicts(&plan, &other, DN).expect_err("conflict");
    assert_eq!(
        err.to_string(),
        "ProxyAddressConflict: sales@contoso.com is already held by CN=Sales Team,OU=Groups,DC=corp,DC=example"
    );
    assert_eq!(err.outcome().code, OutcomeCode::ProxyAddressConflict);
    let unrelated = vec![(
        "smtp:bob@contoso.com".to_string(),
        "CN=Bob,DC=corp,DC=example".to_string(),
    )];
    assert_eq!(check_address_conflicts(&plan, &unrelated, DN), Ok(()));
}

// ---------------------------------------------------------------------------------------------
// binary values, schema constraints
// ---------------------------------------------------------------------------------------------

#[test]
fn binary_values_compare_byte_wise() {
    let s = settings(
        json!({"mappings": [{"target": "msExchSafeSendersHash", "source": "SafeSendersHash", "empty_leaves_alone": true}]}),
    );
    check(
        &s,
        json!({"SafeSendersHash": "0a0b0c0d"}),
        &[],
        "replace msExchSafeSendersHash: 0x0a0b0c0d",
    );
    check(
        &s,
        json!({"SafeSendersHash": "0a0b0c0d"}),
        &[("msExchSafeSendersHash", &["0a0b0c0d"])],
        "",
    );
    check(
        &s,
        json!({"SafeSendersHash": "0a0b0c0d"}),
        &[("msExchSafeSendersHash", &["0A0B0C0E"])],
        "replace msExchSafeSendersHash: 0x0a0b0c0d",
    );
    check(
        &s,
        json!({"SafeSendersHash": null}),
        &[("msExchSafeSendersHash", &["01020304"])],
        "",
    );
}

#[test]
fn schema_violations_fail_the_object_naming_attribute_and_rule() {
    let s = cloud();
    let long = "x".repeat(1025);
    check(
        &s,
        json!({"CustomAttribute1": long}),
        &[],
        "FAIL SchemaConstraint: extensionAttribute1: rangeUpper 1024 exceeded (characters: 1025)",
    );
    // 2048 allowed on extensionAttribute11..15, counted in characters not bytes
    check(
        &s,
        json!({"CustomAttribute11": "é".repeat(2048)}),
        &[],
        &format!("replace extensionAttribute11: {}", "é".repeat(2048)),
    );
    check(
        &s,
        json!({"ExtensionCustomAttribute1": ["ok", "y".repeat(2049)]}),
        &[],
        "FAIL SchemaConstraint: msExchExtensionCustomAttribute1: rangeUpper 2048 exceeded (characters: 2049)",
    );
    // a second value on a single-valued attribute
    let multi = settings(
        json!({"allow_extra_targets": ["info"], "mappings": [{"target": "info", "source": "ExtensionCustomAttribute2"}]}),
    );
    check(
        &multi,
        json!({"ExtensionCustomAttribute2": ["a", "b"]}),
        &[],
        "FAIL SchemaConstraint: info: single-valued, but 2 values are mapped",
    );
    check(
        &multi,
        json!({"ExtensionCustomAttribute2": ["a"]}),
        &[],
        "add msExchExtensionCustomAttribute2: a\nreplace info: a",
    );
    // syntax
    let boolean = settings(
        json!({"mappings": [{"target": "msExchHideFromAddressLists", "constant": "maybe"}]}),
    );
    check(
        &boolean,
        json!({}),
        &[],
        "FAIL SchemaConstraint: msExchHideFromAddressLists: Boolean syntax needs TRUE or FALSE, got \"maybe\"",
    );
    let integer =
        settings(json!({"mappings": [{"target": "msExchArchiveStatus", "constant": "active"}]}));
    check(
        &integer,
        json!({}),
        &[],
        "FAIL SchemaConstraint: msExchArchiveStatus: Integer syntax needs a decimal integer, got \"active\"",
    );
    let big = settings(
        json!({"mappings": [{"target": "msExchArchiveStatus", "constant": "4294967296"}]}),
    );
    check(
        &big,
        json!({}),
        &[],
        "FAIL SchemaConstraint: msExchArchiveStatus: Integer syntax is 32-bit, 4294967296 is out of range",
    );
    // A binary attribute with a rangeLower (as msExchMailboxGuid has; custom mappings may
    // not write that one, so a safe hash attribute stands in with the same bounds).
    let bounded = Schema::new(lab_schema().iter().cloned().map(|a| {
        if a.ldap_display_name == "msExchSafeSendersHash" {
            AttributeSchema {
                range_lower: Some(16),
                range_upper: Some(16),
                ..a
            }
        } else {
            a
        }
    }));
    let bytes = settings(
        json!({"mappings": [{"target": "msExchSafeSendersHash", "source": "SafeSendersHash"}]}),
    );
    assert_eq!(
        render(&plan_with(
            &bytes,
            &bounded,
            &mailbox(json!({"SafeSendersHash": "01020304"})),
            &ad(&[])
        )),
        "FAIL SchemaConstraint: msExchSafeSendersHash: rangeLower 16 not reached (bytes: 4)"
    );
    let text_to_binary =
        settings(json!({"mappings": [{"target": "msExchSafeSendersHash", "source": "Alias"}]}));
    check(
        &text_to_binary,
        json!({"Alias": "ann"}),
        &[],
        "FAIL SchemaConstraint: msExchSafeSendersHash: binary syntax needs bytes, got \"ann\"",
    );
    let text_from_bytes = settings(
        json!({"allow_extra_targets": ["info"], "mappings": [{"target": "info", "source": "SafeSendersHash"}]}),
    );
    check(
        &text_from_bytes,
        json!({"SafeSendersHash": "01"}),
        &[],
        "FAIL SchemaConstraint: info: text syntax cannot hold 1 bytes",
    );
}

#[test]
fn missing_schema_attribute_fails_before_anything_is_planned() {
    let schema = Schema::new(
        lab_schema()
            .iter()
            .filter(|a| a.ldap_display_name != "msExchHideFromAddressLists")
            .cloned(),
    );
    let m = mailbox(json!({"CustomAttribute1": "would be written"}));
    let result = plan_with(&cloud(), &schema, &m, &ad(&[]));
    assert_eq!(
        render(&result),
        "FAIL SchemaConstraint: msExchHideFromAddressLists: attribute not in the AD schema (run Exchange schema preparation)"
    );
}

#[test]
fn missing_attribute_left_alone_is_no_failure() {
    let schema = Schema::new(
        lab_schema()
            .iter()
            .filter(|a| a.ldap_display_name != "msExchUserHoldPolicies")
            .cloned(),
    );
    let h = hybrid();
    let no_holds = mailbox(json!({"ArchiveStatus": "Active"}));
    assert_eq!(
        render(&plan_with(&h, &schema, &no_holds, &ad(&[]))),
        "replace msExchArchiveStatus: 1"
    );
    let holds = mailbox(json!({"InPlaceHolds": ["mbxabc"]}));
    assert_eq!(
        render(&plan_with(&h, &schema, &holds, &ad(&[]))),
        "FAIL SchemaConstraint: msExchUserHoldPolicies: attribute not in the AD schema (run Exchange schema preparation)"
    );
}

// ---------------------------------------------------------------------------------------------
// allow-list and deny-list
// ---------------------------------------------------------------------------------------------

#[test]
fn hostile_mappings_are_refused_at_plan_time() {
    let hostile = |target: &str, origin: MappingOrigin| {
        let mut s = cloud();
        s.mappings.push(Mapping {
            target: target.into(),
            kind: MappingKind::Constant("owned".into()),
            multi_valued: false,
            when_empty: WhenEmpty::Clear,
            policy: ValuePolicy::Authoritative,
            condition: Condition::Always,
            origin,
        });
        s
    };
    check(
        &hostile("unicodePwd", MappingOrigin::Custom),
        json!({"CustomAttribute1": "x"}),
        &[],
        "FAIL AttributeNotAllowed: unicodePwd: on the deny-list; never written",
    );
    check(
        &hostile("USERACCOUNTCONTROL", MappingOrigin::Custom),
        json!({}),
        &[],
        "FAIL AttributeNotAllowed: USERACCOUNTCONTROL: on the deny-list; never written",
    );
    check(
        &hostile("info", MappingOrigin::Profile(Profile::CloudManaged)),
        json!({}),
        &[],
        "FAIL AttributeNotAllowed: info: not an attribute of profile cloud-managed",
    );
    // A custom mapping the settings did not admit (built by hand, past `resolve`): a
    // security-sensitive target, and a target neither safe nor opted in.
    check(
        &hostile("altSecurityIdentities", MappingOrigin::Custom),
        json!({}),
        &[],
        "FAIL AttributeNotAllowed: altSecurityIdentities: never written by a custom mapping: it maps a certificate or key to the account for logon: whoever sets it could log on as the account",
    );
    check(
        &hostile("info", MappingOrigin::Custom),
        json!({}),
        &[],
        "FAIL AttributeNotAllowed: info: not on the custom mapping allow-list and not opted in",
    );
    // A legitimate custom mapping to a safe or an opted-in attribute is written.
    check(
        &hostile("extensionAttribute3", MappingOrigin::Custom),
        json!({}),
        &[],
        "replace extensionAttribute3: owned",
    );
    let mut opted_in = hostile("info", MappingOrigin::Custom);
    opted_in.extra_targets = vec!["info".into()];
    check(&opted_in, json!({}), &[], "replace info: owned");
}

#[test]
fn every_denied_attribute_is_rejected_in_configuration() {
    for denied in crate::target_policy::DENY_LIST {
        let err = serde_json::from_value::<WritebackSettings>(
            json!({"mappings": [{"target": denied, "constant": "x"}]}),
        )
        .expect("deserializes")
        .resolve()
        .expect_err(denied);
        assert!(
            err.to_string()
                .contains(&format!("{denied} is never written by a custom mapping")),
            "{err}"
        );
    }
}

#[test]
fn only_mapped_attributes_are_touched() {
    // Attributes AD holds that no mapping writes are never in the modify.
    check(
        &cloud(),
        json!({"CustomAttribute3": "x"}),
        &[
            ("displayName", &["Ann Lee"]),
            ("department", &["Sales"]),
            ("targetAddress", &["SMTP:ann@contoso.mail.onmicrosoft.com"]),
        ],
        "replace extensionAttribute3: x",
    );
}

// ---------------------------------------------------------------------------------------------
// property changes, threshold
// ---------------------------------------------------------------------------------------------

#[test]
fn property_changes_carry_old_and_new_values() {
    let m = mailbox(
        json!({"CustomAttribute1": "new", "EmailAddresses": ["SMTP:ann@contoso.com", "smtp:a2@contoso.com"]}),
    );
    let plan = plan_with(
        &cloud(),
        &lab_schema(),
        &m,
        &ad(&[("extensionAttribute1", &["old"])]),
    )
    .expect("plans");
    let t = |s: &str| AttrValue::Text(s.into());
    assert_eq!(
        plan.changes,
        vec![
            PropertyChange {
                attribute: "extensionAttribute1".into(),
                old: vec![t("old")],
                new: vec![t("new")]
            },
            PropertyChange {
                attribute: "proxyAddresses".into(),
                old: vec![t("SMTP:ann@contoso.com")],
                new: vec![t("SMTP:ann@contoso.com"), t("smtp:a2@contoso.com")]
            },
        ]
    );
    assert_eq!(plan.dn, DN);
    let logged: crate::provisioning::ModifiedProperty = (&plan.changes[0]).into();
    assert_eq!(logged.old, vec![t("old")]);
    assert_eq!(logged.new, vec![t("new")]);
}

#[test]
fn threshold_counts_objects_that_lose_values() {
    let s = cloud();
    let plan = |m: Json, a: &[(&str, &[&str])]| {
        plan_with(&s, &lab_schema(), &mailbox(m), &ad(a)).expect("plans")
    };
    let clears = plan(json!({}), &[("extensionAttribute1", &["x"])]);
    let removes_alias = plan(
        json!({}),
        &[(
            "proxyAddresses",
            &["SMTP:ann@contoso.com", "smtp:gone@contoso.com"],
        )],
    );
    let case_only = plan(json!({"EmailAddresses": ["SMTP:ANN@contoso.com"]}), &[]);
    let replaces = plan(
        json!({"CustomAttribute1": "y"}),
        &[("extensionAttribute1", &["x"])],
    );
    let adds = plan(json!({"ExtensionCustomAttribute1": ["a"]}), &[]);
    assert!(clears.removes_values);
    assert!(removes_alias.removes_values);
    assert!(
        !case_only.removes_values,
        "a case-only change loses nothing"
    );
    assert!(!replaces.removes_values);
    assert!(!adds.removes_values);
    let plans = [clears, removes_alias, case_only, replaces, adds];
    assert_eq!(count_removing(&plans), 2);
    assert!(exceeds_threshold(&plans, 1));
    assert!(!exceeds_threshold(&plans, 2));
    assert!(exceeds_threshold(&plans, 0));
}

#[test]
fn failures_convert_to_log_outcomes() {
    let f = PlanFailure::SchemaConstraint {
        attribute: "mail".into(),
        rule: "rangeUpper 256 exceeded".into(),
    };
    let o = f.outcome();
    assert_eq!(o.code, OutcomeCode::SchemaConstraint);
    assert_eq!(o.reason, "mail: rangeUpper 256 exceeded");
    assert!(!o.recommended_action.is_empty());
}

// ---------------------------------------------------------------------------------------------
// hybrid profile (expressions: needs the expression language)
// ---------------------------------------------------------------------------------------------

fn hybrid() -> WritebackPlanSettings {
    settings(json!({"profiles": ["hybrid"]}))
}

#[test]
fn hybrid_external_directory_object_id() {
    check(&hybrid(), json!({}), &[], "");
    check(
        &hybrid(),
        json!({}),
        &[("msDS-ExternalDirectoryObjectId", &[])],
        &format!("replace msDS-ExternalDirectoryObjectId: User_{EDOID}"),
    );
    check(
        &hybrid(),
        json!({"ExternalDirectoryObjectId": ""}),
        &[("msDS-ExternalDirectoryObjectId", &["User_keep"])],
        "",
    );
}

#[test]
fn hybrid_x500_from_legacy_exchange_dn() {
    let dn =
        "/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=ann";
    check(
        &hybrid(),
        json!({"LegacyExchangeDN": dn}),
        &[],
        &format!("add proxyAddresses: x500:{dn}"),
    );
    // compared case-insensitively; every other value kept
    check(
        &hybrid(),
        json!({"LegacyExchangeDN": dn}),
        &[(
            "proxyAddresses",
            &[
                "SMTP:ann@contoso.com",
                "smtp:other@contoso.com",
                &format!("X500:{}", dn.to_uppercase()),
            ],
        )],
        "",
    );
    check(
        &hybrid(),
        json!({"LegacyExchangeDN": null}),
        &[("proxyAddresses", &["smtp:only-in-ad@contoso.com"])],
        "",
    );
}

#[test]
fn hybrid_archive_status() {
    check(
        &hybrid(),
        json!({"ArchiveStatus": "Active"}),
        &[],
        "replace msExchArchiveStatus: 1",
    );
    check(
        &hybrid(),
        json!({"ArchiveStatus": "None"}),
        &[],
        "replace msExchArchiveStatus: 0",
    );
    check(
        &hybrid(),
        json!({"ArchiveStatus": "Active"}),
        &[("msExchArchiveStatus", &["1"])],
        "",
    );
    check(
        &hybrid(),
        json!({"ArchiveStatus": "None"}),
        &[("msExchArchiveStatus", &["1"])],
        "replace msExchArchiveStatus: 0",
    );
}

#[test]
fn hybrid_hashes_only_for_mailboxes_in_exchange_online() {
    for (prop, attr) in [
        ("SafeSendersHash", "msExchSafeSendersHash"),
        ("BlockedSendersHash", "msExchBlockedSendersHash"),
        ("SafeRecipientsHash", "msExchSafeRecipientsHash"),
    ] {
        check(
            &hybrid(),
            json!({ prop: "11223344aabbccdd" }),
            &[],
            &format!("replace {attr}: 0x11223344aabbccdd"),
        );
        check(
            &hybrid(),
            json!({ prop: "11223344" }),
            &[(attr, &["11223344"])],
            "",
        );
        check(
            &hybrid(),
            json!({ prop: null }),
            &[(attr, &["11223344"])],
            "",
        );
    }
    // Not in Exchange Online: the mapping leaves AD alone (the hybrid scope also skips it).
    let m = mailbox(json!({"SafeSendersHash": "01020304", "RecipientTypeDetails": "MailUser"}));
    let hash = hybrid()
        .mappings
        .into_iter()
        .find(|m| m.target == "msExchSafeSendersHash")
        .expect("row");
    assert_eq!(hash.evaluate(&m, &ctx()), Ok(Desired::LeaveAlone));
}

#[test]
fn hybrid_voice_mail_settings_and_hold_policies() {
    check(
        &hybrid(),
        json!({"UCVoiceMailSettings": ["ExchangeUM=1"]}),
        &[],
        "add msExchUCVoiceMailSettings: ExchangeUM=1",
    );
    // Exchange Online cannot be read for it, so an empty value is "unknown": AD is left alone
    // instead of losing what on-premises Exchange wrote.
    check(
        &hybrid(),
        json!({"UCVoiceMailSettings": []}),
        &[("msExchUCVoiceMailSettings", &["ExchangeUM=1"])],
        "",
    );
    check(
        &hybrid(),
        json!({"InPlaceHolds": ["mbx1a2b3c"]}),
        &[],
        "add msExchUserHoldPolicies: mbx1a2b3c",
    );
    // empty cloud value leaves AD alone
    check(
        &hybrid(),
        json!({"InPlaceHolds": []}),
        &[("msExchUserHoldPolicies", &["mbx1a2b3c"])],
        "",
    );
    check(
        &hybrid(),
        json!({"InPlaceHolds": ["x".repeat(41)]}),
        &[],
        "FAIL SchemaConstraint: msExchUserHoldPolicies: rangeUpper 40 exceeded (characters: 41)",
    );
}

#[test]
fn both_profiles_policy_then_x500_add() {
    let both = settings(json!({"profiles": ["cloud-managed", "hybrid"]}));
    let dn = "/o=Org/cn=ann";
    check(
        &both,
        json!({"LegacyExchangeDN": dn, "EmailAddresses": ["SMTP:ann@contoso.com"]}),
        &[(
            "proxyAddresses",
            &["SMTP:ann@contoso.com", "smtp:stale@contoso.com"],
        )],
        &format!("delete proxyAddresses: smtp:stale@contoso.com\nadd proxyAddresses: x500:{dn}"),
    );
    // A cloud-managed-out-of-scope mailbox gets only the hybrid rows.
    check(
        &both,
        json!({"IsExchangeCloudManaged": false, "CustomAttribute1": "ignored", "ArchiveStatus": "Active"}),
        &[],
        "replace msExchArchiveStatus: 1",
    );
}

#[test]
fn custom_expression_mapping() {
    let s = settings(
        json!({"allow_extra_targets": ["info"], "mappings": [{"target": "info", "expression": "Join(\",\", [CustomAttribute1], [CustomAttribute2])"}]}),
    );
    check(
        &s,
        json!({"CustomAttribute1": "a", "CustomAttribute2": "b"}),
        &[],
        "replace extensionAttribute1: a\nreplace extensionAttribute2: b\nreplace info: a,b",
    );
}

/// A date-time an expression yields is written to a text attribute as Microsoft's service
/// writes it: `M/d/yyyy h:mm:ss tt`, UTC (the CDate, DateAdd, DateFromNum results in
/// "Reference for writing expressions for attribute mappings in Microsoft Entra ID").
#[test]
fn a_date_time_is_written_to_text_as_microsoft_renders_it() {
    let cases = [
        (
            r#"DateAdd("d", 7, CDate([CustomAttribute5]))"#,
            "2012-03-16-07:00",
            "3/23/2012 7:00:00 AM",
        ),
        (
            r#"CDate([CustomAttribute5])"#,
            "2009-06-15T01:45:30-07:00",
            "6/15/2009 8:45:30 AM",
        ),
        (
            r#"DateFromNum(129699324000000000)"#,
            "x",
            "1/1/2012 11:00:00 PM",
        ),
    ];
    for (expression, input, written) in cases {
        let s = settings(json!({
            "allow_extra_targets": ["info"],
            "mappings": [{"target": "info", "expression": expression}]
        }));
        check(
            &s,
            json!({"CustomAttribute5": input}),
            &[],
            &format!("replace extensionAttribute5: {input}\nreplace info: {written}"),
        );
    }
}

#[test]
fn profile_table_lists_hybrid_expressions() {
    let rows = hybrid().mapping_table();
    assert_eq!(rows.len(), 8);
    assert_eq!(rows[0].target, "msDS-ExternalDirectoryObjectId");
    assert_eq!(rows[0].kind, "Expression");
    assert!(
        rows[0]
            .source
            .contains("\"User_\" & [ExternalDirectoryObjectId]")
    );
    assert!(rows[1].notes.contains("add if missing"));
    assert!(rows[7].notes.contains("empty cloud value leaves AD alone"));
}

// ---------------------------------------------------------------------------------------------
// properties
// ---------------------------------------------------------------------------------------------

fn address() -> impl Strategy<Value = String> {
    ("[a-c]{1,2}", prop::bool::ANY).prop_map(|(local, upper)| {
        let a = format!("{local}@contoso.com");
        if upper { a.to_uppercase() } else { a }
    })
}

fn proxy_value() -> impl Strategy<Value = String> {
    prop_oneof![
        address().prop_map(|a| format!("smtp:{a}")),
        address().prop_map(|a| format!("SMTP:{a}")),
        "[a-c]{1,2}".prop_map(|c| format!("X500:/o=Org/cn={c}")),
        "[a-c]{1,2}".prop_map(|c| format!("SIP:{c}@contoso.com")),
    ]
}

proptest! {
    /// Planning, applying the modify (as AD does) and planning again yields no change, and
    /// AD ends holding the cloud's values under the policy.
    #[test]
    fn plan_apply_replan_converges(
        primary in address(),
        secondaries in prop::collection::vec(address(), 0..4),
        ad_proxies in prop::collection::vec(proxy_value(), 0..6),
        ca1 in prop::option::of("[a-cA-C]{0,3}"),
        ad_ea1 in prop::collection::vec("[a-cA-C]{1,3}", 0..2),
        ext in prop::collection::vec("[a-cA-C]{1,2}", 0..4),
        ad_ext in prop::collection::vec("[a-cA-C]{1,2}", 0..4),
        hidden in prop::bool::ANY,
    ) {
        let mut cloud_list = vec![format!("SMTP:{primary}")];
        cloud_list.extend(secondaries.iter().map(|a| format!("smtp:{a}")));
        let m = mailbox(json!({
            "EmailAddresses": cloud_list,
            "CustomAttribute1": ca1,
            "ExtensionCustomAttribute1": ext,
            "HiddenFromAddressListsEnabled": hidden,
        }));
        // AD never holds values equal ignoring case twice.
        let dedup = |vals: Vec<String>| {
            let mut out: Vec<String> = Vec::new();
            for v in vals { if !out.iter().any(|o| o.to_lowercase() == v.to_lowercase()) { out.push(v) } }
            out
        };
        let ad_proxies = dedup(ad_proxies);
        let ad_ext = dedup(ad_ext);
        let p: Vec<&str> = ad_proxies.iter().map(String::as_str).collect();
        let e: Vec<&str> = ad_ext.iter().map(String::as_str).collect();
        let ea1: Vec<&str> = ad_ea1.iter().take(1).map(String::as_str).collect();
        let current = ad(&[("proxyAddresses", &p), ("msExchExtensionCustomAttribute1", &e), ("extensionAttribute1", &ea1)]);
        let s = cloud();
        let schema = lab_schema();
        let plan = plan_with(&s, &schema, &m, &current).expect("valid cloud data plans");
        let applied = apply(&current, &plan, &schema);
        let again = plan_with(&s, &schema, &m, &applied).expect("replans");
        prop_assert!(again.is_in_sync(), "second plan: {}", render(&Ok(again.clone())));

        let proxies: Vec<String> = applied.attributes.get("proxyAddresses").iter().filter_map(|v| v.as_text().map(String::from)).collect();
        let primaries: Vec<String> = proxies.iter().filter(|v| v.starts_with("SMTP:")).cloned().collect();
        prop_assert_eq!(primaries, vec![format!("SMTP:{primary}")]);
        for v in &cloud_list {
            prop_assert!(proxies.iter().any(|p| p.to_lowercase() == v.to_lowercase()), "{} missing from {:?}", v, proxies);
        }
        for v in &ad_proxies {
            let kept = proxies.iter().any(|p| p.to_lowercase() == v.to_lowercase());
            if v.starts_with("X500:") { prop_assert!(kept, "X500 {} lost", v); }
        }
        for v in &proxies {
            let from_cloud = cloud_list.iter().any(|c| c.to_lowercase() == v.to_lowercase());
            prop_assert!(from_cloud || v.starts_with("X500:"), "{} should have been removed", v);
        }
        let ea1_now: Vec<AttrValue> = applied.attributes.get("extensionAttribute1").to_vec();
        let want: Vec<AttrValue> = ca1.filter(|c| !c.is_empty()).map(AttrValue::Text).into_iter().collect();
        prop_assert_eq!(ea1_now, want);
        prop_assert_eq!(
            applied.attributes.get("msExchHideFromAddressLists").to_vec(),
            vec![AttrValue::Text(if hidden { "TRUE" } else { "FALSE" }.into())]
        );
        // Losing a value is flagged, exactly when AD loses one (ignoring case-only changes).
        let lost = |attr: &str| {
            let after: Vec<String> = applied.attributes.get(attr).iter().filter_map(|v| v.as_text().map(str::to_lowercase)).collect();
            current.attributes.get(attr).iter().filter_map(|v| v.as_text()).any(|v| !after.contains(&v.to_lowercase()))
        };
        let cleared = |attr: &str| {
            !current.attributes.get(attr).is_empty() && applied.attributes.get(attr).is_empty()
        };
        let loses = lost("proxyAddresses") || lost("msExchExtensionCustomAttribute1") || cleared("extensionAttribute1");
        prop_assert_eq!(plan.removes_values, loses);
    }
}

#[test]
fn expression_errors_fail_the_object() {
    let s = settings(
        json!({"allow_extra_targets": ["info"], "mappings": [{"target": "info", "expression": "Error(\"no info for \" & [Alias])"}]}),
    );
    let result = plan_with(
        &s,
        &lab_schema(),
        &mailbox(json!({"Alias": "ann"})),
        &ad(&[]),
    );
    let err = result.expect_err("Error() fails the mapping");
    assert_eq!(err.outcome().code, OutcomeCode::ExpressionError);
    let text = err.to_string();
    assert!(text.starts_with("ExpressionError: info: "), "{text}");
    assert!(text.contains("no info for ann"), "{text}");
}

#[test]
fn expressions_naming_unknown_properties_are_rejected_at_load() {
    let err = serde_json::from_value::<WritebackSettings>(
        json!({"allow_extra_targets": ["info"], "mappings": [{"target": "info", "expression": "Trim([Department])"}]}),
    )
    .expect("deserializes")
    .resolve()
    .expect_err("Department is not a Get-Mailbox property we read");
    assert_eq!(
        err.to_string(),
        "writeback.mappings[0] (target info) expression: unknown Get-Mailbox property Department"
    );
}

/// `exo-writeback profiles --show` for both profiles and a custom mapping.
#[test]
fn effective_mapping_table_snapshot() {
    let s = settings(json!({
        "profiles": ["cloud-managed", "hybrid"],
        "disabled_attributes": ["extensionAttribute15"],
        "allow_extra_targets": ["info"],
        "mappings": [{"target": "info", "constant": "managed in Exchange Online"}]
    }));
    let table: Vec<String> = s
        .mapping_table()
        .iter()
        .map(|r| {
            format!(
                "{:<32} {:<10} {:<7} {:<14} {}{}",
                r.target,
                r.kind,
                r.values,
                r.origin,
                r.source,
                if r.notes.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", r.notes)
                }
            )
        })
        .collect();
    insta::assert_snapshot!(table.join("\n"));
}

proptest! {
    /// Bad input never panics: arbitrary cloud and AD values plan to a modify or a failure,
    /// and any planned modify converges.
    #[test]
    fn arbitrary_input_never_panics(
        addresses in prop::collection::vec(".{0,12}", 0..5),
        ca in prop::collection::vec(prop::option::of(".{0,8}"), 15),
        ext in prop::collection::vec(".{0,6}", 0..3),
        rtd in prop_oneof![Just("UserMailbox".to_string()), Just("SharedMailbox".to_string()), Just("RoomMailbox".to_string())],
        ad_proxies in prop::collection::vec(".{0,12}", 0..4),
        ad_bool in prop::option::of(".{0,5}"),
        ad_int in prop::option::of(".{0,5}"),
    ) {
        let mut m = mailbox(json!({"EmailAddresses": addresses, "RecipientTypeDetails": rtd, "ExtensionCustomAttribute3": ext}));
        for (i, c) in ca.into_iter().enumerate() {
            m.custom_attributes[i] = c;
        }
        let p: Vec<&str> = ad_proxies.iter().map(String::as_str).collect();
        let b: Vec<&str> = ad_bool.iter().map(String::as_str).collect();
        let n: Vec<&str> = ad_int.iter().map(String::as_str).collect();
        let current = ad(&[("proxyAddresses", &p), ("msExchHideFromAddressLists", &b), ("msExchRecipientTypeDetails", &n)]);
        let s = cloud();
        let schema = lab_schema();
        if let Ok(plan) = plan_with(&s, &schema, &m, &current) {
            let applied = apply(&current, &plan, &schema);
            let again = plan_with(&s, &schema, &m, &applied).expect("replans");
            prop_assert!(again.is_in_sync(), "{}", render(&Ok(again.clone())));
        }
    }

    /// Arbitrary scoping-filter values are accepted or rejected with an error, never a panic.
    #[test]
    fn arbitrary_scoping_values_never_panic(value in ".{0,20}", op in 0usize..12) {
        let operator = crate::scope::ScopeOperator::ALL[op];
        let clause = if operator.takes_value() {
            json!({"property": "CustomAttribute1", "operator": operator.as_str(), "value": value})
        } else {
            json!({"property": "CustomAttribute1", "operator": operator.as_str()})
        };
        let parsed: WritebackSettings = serde_json::from_value(json!({"scoping_filters": [{"clauses": [clause]}]})).expect("deserializes");
        if let Ok(s) = parsed.resolve() {
            let mut m = mailbox(json!({}));
            m.custom_attributes[0] = Some(value.clone());
            let _ = evaluate_scope(&s, &m);
        }
    }
}

proptest! {
    /// With both profiles, the x500 of LegacyExchangeDN ends in proxyAddresses exactly once
    /// (ignoring case) alongside the cloud's addresses, and replanning changes nothing.
    #[test]
    fn both_profiles_converge_with_the_x500_add(
        cn in "[a-cA-C]{1,3}",
        ad_proxies in prop::collection::vec(proxy_value(), 0..5),
        secondaries in prop::collection::vec(address(), 0..3),
        archive in prop_oneof![Just(None), Just(Some("None")), Just(Some("Active"))],
    ) {
        let both = settings(json!({"profiles": ["cloud-managed", "hybrid"]}));
        let legacy = format!("/o=Org/cn={cn}");
        let mut cloud_list = vec!["SMTP:ann@contoso.com".to_string()];
        cloud_list.extend(secondaries.iter().map(|a| format!("smtp:{a}")));
        let m = mailbox(json!({"EmailAddresses": cloud_list, "LegacyExchangeDN": legacy, "ArchiveStatus": archive}));
        let mut seen: Vec<String> = Vec::new();
        let ad_proxies: Vec<String> = ad_proxies.into_iter().filter(|v| {
            let fresh = !seen.contains(&v.to_lowercase());
            seen.push(v.to_lowercase());
            fresh
        }).collect();
        let p: Vec<&str> = ad_proxies.iter().map(String::as_str).collect();
        let current = ad(&[("proxyAddresses", &p)]);
        let schema = lab_schema();
        let plan = plan_with(&both, &schema, &m, &current).expect("plans");
        let applied = apply(&current, &plan, &schema);
        let again = plan_with(&both, &schema, &m, &applied).expect("replans");
        prop_assert!(again.is_in_sync(), "{}", render(&Ok(again.clone())));
        let x500 = format!("x500:{legacy}").to_lowercase();
        let proxies: Vec<String> = applied.attributes.get("proxyAddresses").iter().filter_map(|v| v.as_text().map(str::to_lowercase)).collect();
        prop_assert_eq!(proxies.iter().filter(|p| **p == x500).count(), 1);
        let status: Vec<AttrValue> = applied.attributes.get("msExchArchiveStatus").to_vec();
        let want: Vec<AttrValue> = match archive {
            Some("Active") => vec![AttrValue::Text("1".into())],
            Some(_) => vec![AttrValue::Text("0".into())],
            None => vec![],
        };
        prop_assert_eq!(status, want);
    }
}
