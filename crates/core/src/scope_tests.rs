//! Unit tests of scope: which mailboxes are written back, and the container scope.

use super::*;
use crate::settings::WritebackSettings;

fn in_scope_mailbox() -> Mailbox {
    Mailbox {
        is_dir_synced: true,
        is_exchange_cloud_managed: true,
        recipient_type_details: "UserMailbox".into(),
        ..Mailbox::default()
    }
}

fn settings(json: serde_json::Value) -> WritebackPlanSettings {
    serde_json::from_value::<WritebackSettings>(json)
        .expect("deserializes")
        .resolve()
        .expect("resolves")
}

/// (mailbox change, expected: None = in scope, Some(reason text)).
#[test]
fn cloud_managed_scope_names_the_failed_condition() {
    type Edit = fn(&mut Mailbox);
    let cases: Vec<(Edit, Option<&str>)> = vec![
        (|_| {}, None),
        (
            |m| m.is_exchange_cloud_managed = false,
            Some("NotInScope: IsExchangeCloudManaged is False"),
        ),
        (
            |m| m.is_dir_synced = false,
            Some("NotInScope: IsDirSynced is False"),
        ),
        (
            |m| m.recipient_type_details = "DiscoveryMailbox".into(),
            Some(
                "NotInScope: RecipientTypeDetails is \"DiscoveryMailbox\", not one of UserMailbox, RoomMailbox, EquipmentMailbox, SharedMailbox",
            ),
        ),
        (|m| m.recipient_type_details = "SharedMailbox".into(), None),
        (|m| m.recipient_type_details = "RoomMailbox".into(), None),
        (
            |m| m.recipient_type_details = "EquipmentMailbox".into(),
            None,
        ),
        (
            |m| {
                m.is_dir_synced = false;
                m.is_exchange_cloud_managed = false
            },
            Some("NotInScope: IsDirSynced is False; IsExchangeCloudManaged is False"),
        ),
    ];
    let s = WritebackPlanSettings::default();
    for (edit, expected) in cases {
        let mut m = in_scope_mailbox();
        edit(&mut m);
        let got = evaluate_scope(&s, &m).map_err(|e| e.to_string()).err();
        assert_eq!(got.as_deref(), expected, "{m:?}");
    }
}

#[test]
fn hybrid_scope_and_both_profiles() {
    let s = settings(serde_json::json!({"profiles": ["cloud-managed", "hybrid"]}));
    let mut m = in_scope_mailbox();
    m.is_exchange_cloud_managed = false;
    let scope = evaluate_scope(&s, &m).expect("hybrid applies");
    assert!(scope.includes(Profile::Hybrid));
    assert!(!scope.includes(Profile::CloudManaged));
    m.recipient_type_details = "MailUser".into();
    let err = evaluate_scope(&s, &m).unwrap_err();
    assert_eq!(
        err.to_string(),
        "NotInScope: cloud-managed: IsExchangeCloudManaged is False; cloud-managed: RecipientTypeDetails is \"MailUser\", not one of UserMailbox, RoomMailbox, EquipmentMailbox, SharedMailbox; hybrid: mailbox is not in Exchange Online (RecipientTypeDetails is \"MailUser\")"
    );
    assert_eq!(err.outcome().code, OutcomeCode::NotInScope);
}

/// (operator, value, mailbox CustomAttribute1 / ExtensionCustomAttribute1, holds).
#[test]
fn operators() {
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>, bool);
    let cases: Vec<Case> = vec![
        ("CustomAttribute1", "EQUALS", Some("Sales"), None, false),
        (
            "CustomAttribute1",
            "EQUALS",
            Some("Sales"),
            Some("Sales"),
            true,
        ),
        (
            "CustomAttribute1",
            "EQUALS",
            Some("sales"),
            Some("Sales"),
            false,
        ),
        (
            "CustomAttribute1",
            "NOT EQUALS",
            Some("Sales"),
            Some("Sales"),
            false,
        ),
        ("CustomAttribute1", "NOT EQUALS", Some("Sales"), None, true),
        ("CustomAttribute1", "IS NULL", None, None, true),
        ("CustomAttribute1", "IS NULL", None, Some("x"), false),
        ("CustomAttribute1", "IS NOT NULL", None, Some("x"), true),
        ("CustomAttribute1", "IS TRUE", None, Some("true"), true),
        ("CustomAttribute1", "IS FALSE", None, Some("true"), false),
        ("CustomAttribute1", "IS FALSE", None, Some("False"), true),
        (
            "CustomAttribute1",
            "REGEX MATCH",
            Some("^S.l"),
            Some("Sales"),
            true,
        ),
        (
            "CustomAttribute1",
            "REGEX MATCH",
            Some("^s"),
            Some("Sales"),
            false,
        ),
        (
            "CustomAttribute1",
            "NOT REGEX MATCH",
            Some("^s"),
            Some("Sales"),
            true,
        ),
        (
            "CustomAttribute1",
            "Greater_Than",
            Some("10"),
            Some("11"),
            true,
        ),
        (
            "CustomAttribute1",
            "Greater_Than",
            Some("10"),
            Some("10"),
            false,
        ),
        (
            "CustomAttribute1",
            "Greater_Than",
            Some("10"),
            Some("ten"),
            false,
        ),
        (
            "CustomAttribute1",
            "Greater_Than_OR_EQUALS",
            Some("10"),
            Some("10"),
            true,
        ),
        (
            "CustomAttribute1",
            "ENDS_WITH",
            Some("@contoso.com"),
            Some("a@contoso.com"),
            true,
        ),
        (
            "CustomAttribute1",
            "ENDS_WITH",
            Some("@contoso.com"),
            Some("a@fabrikam.com"),
            false,
        ),
        (
            "CustomAttribute1",
            "Includes",
            Some("ale"),
            Some("Sales"),
            true,
        ),
        (
            "ExtensionCustomAttribute1",
            "Includes",
            Some("b"),
            Some("b"),
            true,
        ),
        (
            "ExtensionCustomAttribute1",
            "Includes",
            Some("c"),
            Some("b"),
            false,
        ),
        ("IsDirSynced", "IS TRUE", None, None, true),
    ];
    for (property, op, value, attr, holds) in cases {
        let operator = ScopeOperator::try_from(op.to_string()).expect("known operator");
        let clause = CompiledClause::new(property, operator, value).expect("valid clause");
        let mut m = in_scope_mailbox();
        m.custom_attributes[0] = attr.map(String::from);
        m.extension_custom_attributes[0] = attr.map(String::from).into_iter().collect();
        assert_eq!(
            clause.evaluate(&m).is_ok(),
            holds,
            "{property} {op} {value:?} on {attr:?}"
        );
    }
}

#[test]
fn filters_are_ored_and_clauses_anded() {
    let s = settings(serde_json::json!({"scoping_filters": [
        {"clauses": [
            {"property": "CustomAttribute1", "operator": "EQUALS", "value": "Sales"},
            {"property": "CustomAttribute2", "operator": "IS NOT NULL"}]},
        {"clauses": [{"property": "CustomAttribute3", "operator": "EQUALS", "value": "VIP"}]}
    ]}));
    let mut m = in_scope_mailbox();
    m.custom_attributes[0] = Some("Sales".into());
    let err = evaluate_scope(&s, &m).unwrap_err().to_string();
    assert_eq!(
        err,
        "NotInScope: scoping filter 1: CustomAttribute2 IS NOT NULL (is empty); scoping filter 2: CustomAttribute3 EQUALS \"VIP\" (is empty)"
    );
    m.custom_attributes[1] = Some("x".into());
    assert!(evaluate_scope(&s, &m).is_ok());
    m.custom_attributes[0] = None;
    m.custom_attributes[2] = Some("VIP".into());
    assert!(evaluate_scope(&s, &m).is_ok());
}

#[test]
fn container_scope() {
    let s = settings(serde_json::json!({"container_scope": ["OU=Staff, DC=corp,DC=example"]}));
    assert!(check_container_scope(&s, "CN=Ann,ou=staff,DC=Corp,DC=Example").is_ok());
    assert!(check_container_scope(&s, "OU=Staff,DC=corp,DC=example").is_ok());
    assert!(check_container_scope(&s, "CN=Bob\\, Jr,OU=Staff,DC=corp,DC=example").is_ok());
    let err = check_container_scope(&s, "CN=Eve,OU=Guests,DC=corp,DC=example").unwrap_err();
    assert_eq!(
        err.to_string(),
        "OutsideContainerScope: CN=Eve,OU=Guests,DC=corp,DC=example is not under OU=Staff, DC=corp,DC=example"
    );
    assert_eq!(err.outcome().code, OutcomeCode::OutsideContainerScope);
    // A value that merely ends like the base is not under it.
    assert!(check_container_scope(&s, "CN=X,OU=NotStaff,DC=corp,DC=example").is_err());
    assert!(check_container_scope(&WritebackPlanSettings::default(), "CN=X").is_ok());
}
