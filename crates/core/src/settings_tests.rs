//! Tests of the `[writeback]` section: parsing, defaults, and the refusals of
//! [`WritebackSettings::resolve`], each naming the entry to fix.

use super::*;

fn parse(json: serde_json::Value) -> Result<WritebackSettings, serde_json::Error> {
    serde_json::from_value(json)
}

#[test]
fn defaults_are_the_documented_ones() {
    let s = parse(serde_json::json!({})).expect("empty section is valid");
    assert_eq!(s, WritebackSettings::default());
    assert_eq!(s.profiles, vec![Profile::CloudManaged]);
    assert!(s.hide_from_address_lists);
    assert_eq!(s.preserve_prefixes, vec!["X500"]);
    assert_eq!(s.threshold, 500);
    assert_eq!(s.match_rules, MatchRule::DEFAULT.to_vec());
    let r = s.resolve().expect("defaults resolve");
    assert_eq!(r.mappings.len(), 26);
    assert!(r.is_allowed("msExchHideFromAddressLists"));
    assert!(!r.is_allowed("msExchArchiveStatus"));
}

#[test]
fn the_self_writable_key_comes_after_the_anchors_or_alone() {
    // The default: anchors first.
    assert_eq!(
        MatchRule::DEFAULT,
        [
            MatchRule::ConsistencyGuid,
            MatchRule::ObjectGuid,
            MatchRule::ExternalDirectoryObjectId
        ]
    );
    for rules in [
        serde_json::json!([
            "objectGUID",
            "mS-DS-ConsistencyGuid",
            "msDS-ExternalDirectoryObjectId"
        ]),
        serde_json::json!(["mS-DS-ConsistencyGuid"]),
        // Alone: the configuration of a forest whose ImmutableId is not an AD GUID.
        serde_json::json!(["msDS-ExternalDirectoryObjectId"]),
        // A repeated rule counts once.
        serde_json::json!(["objectGUID", "msDS-ExternalDirectoryObjectId", "objectGUID"]),
    ] {
        let s = parse(serde_json::json!({ "match_rules": rules.clone() })).expect("parses");
        assert!(s.resolve().is_ok(), "{rules} is accepted");
    }
}

#[test]
fn unknown_fields_are_rejected() {
    let e = parse(serde_json::json!({"treshold": 5})).unwrap_err();
    assert!(e.to_string().contains("treshold"), "{e}");
    let e =
        parse(serde_json::json!({"mappings": [{"target": "x", "sorce": "Alias"}]})).unwrap_err();
    assert!(e.to_string().contains("sorce"), "{e}");
}

#[test]
fn operators_parse_in_microsoft_spelling() {
    let s = parse(serde_json::json!({"scoping_filters": [{"clauses": [
        {"property": "CustomAttribute1", "operator": "NOT EQUALS", "value": "x"},
        {"property": "CustomAttribute2", "operator": "Greater_Than_OR_EQUALS", "value": "3"},
        {"property": "IsDirSynced", "operator": "IS TRUE"},
        {"property": "CustomAttribute3", "operator": "REGEX MATCH", "value": "^a.*"},
    ]}]}))
    .expect("valid");
    let ops: Vec<ScopeOperator> = s.scoping_filters[0]
        .clauses
        .iter()
        .map(|c| c.operator)
        .collect();
    assert_eq!(
        ops,
        vec![
            ScopeOperator::NotEquals,
            ScopeOperator::GreaterThanOrEquals,
            ScopeOperator::IsTrue,
            ScopeOperator::RegexMatch
        ]
    );
    s.resolve().expect("resolves");
    assert!(
        parse(serde_json::json!({"scoping_filters": [{"clauses": [
        {"property": "CustomAttribute1", "operator": "LIKE", "value": "x"}]}]}))
        .is_err()
    );
}

/// Each case: the settings JSON, and a fragment the error message must contain.
#[test]
fn invalid_settings_are_rejected_naming_the_entry() {
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (serde_json::json!({"profiles": []}), "profiles is empty"),
        (
            serde_json::json!({"mappings": [{"target": "unicodePwd", "constant": "x"}]}),
            "unicodePwd is never written by a custom mapping",
        ),
        (
            serde_json::json!({"mappings": [{"target": "SAMACCOUNTNAME", "source": "Alias"}]}),
            "SAMACCOUNTNAME is never written by a custom mapping",
        ),
        (
            serde_json::json!({"mappings": [{"target": "extensionAttribute1"}]}),
            "mappings[0] (target extensionAttribute1): give exactly one",
        ),
        (
            serde_json::json!({"mappings": [{"target": "extensionAttribute2", "source": "Alias", "constant": "x"}]}),
            "give exactly one",
        ),
        (
            serde_json::json!({"mappings": [{"target": "extensionAttribute2", "source": "Shoesize"}]}),
            "unknown Get-Mailbox property Shoesize",
        ),
        (
            serde_json::json!({"mappings": [{"target": "bad name", "constant": "x"}]}),
            "not an LDAP attribute name",
        ),
        (
            serde_json::json!({"mappings": [{"target": "extensionAttribute2", "constant": "x"}, {"target": "ExtensionAttribute2", "constant": "y"}]}),
            "mappings[1]",
        ),
        (
            serde_json::json!({"disabled_attributes": ["extensionAttribute99"]}),
            "extensionAttribute99 is not written by any profile",
        ),
        (
            serde_json::json!({"scoping_filters": [{"clauses": [{"property": "CustomAttribute1", "operator": "EQUALS"}]}]}),
            "scoping_filters[0].clauses[0]: EQUALS needs a value",
        ),
        (
            serde_json::json!({"scoping_filters": [{"clauses": [{"property": "IsDirSynced", "operator": "IS TRUE", "value": "x"}]}]}),
            "IS TRUE takes no value",
        ),
        (
            serde_json::json!({"scoping_filters": [{"clauses": [{"property": "CustomAttribute1", "operator": "REGEX MATCH", "value": "("}]}]}),
            "invalid regular expression",
        ),
        (
            serde_json::json!({"scoping_filters": [{"clauses": [{"property": "CustomAttribute1", "operator": "Greater_Than", "value": "ten"}]}]}),
            "Greater_Than needs an integer value",
        ),
        (
            serde_json::json!({"scoping_filters": [{"clauses": [{"property": "Department", "operator": "IS NULL"}]}]}),
            "unknown Get-Mailbox property Department",
        ),
        (serde_json::json!({"preserve_prefixes": ["X5:00"]}), "X5:00"),
        (
            serde_json::json!({"match_rules": []}),
            "match_rules is empty",
        ),
        (
            // The order of the old default: the key every user may write on itself first.
            serde_json::json!({"match_rules": ["msDS-ExternalDirectoryObjectId", "mS-DS-ConsistencyGuid", "objectGUID"]}),
            "writeback.match_rules: msDS-ExternalDirectoryObjectId is listed before mS-DS-ConsistencyGuid: every user may write msDS-ExternalDirectoryObjectId on their own account (it is in the Personal-Information property set)",
        ),
        (
            serde_json::json!({"match_rules": ["objectGUID", "msDS-ExternalDirectoryObjectId", "mS-DS-ConsistencyGuid"]}),
            "msDS-ExternalDirectoryObjectId is listed before mS-DS-ConsistencyGuid",
        ),
        (
            serde_json::json!({"container_scope": ["not a dn"]}),
            "not a dn",
        ),
        (
            serde_json::json!({"container_scope": ["OU=A,DC=x", "OU=B,,DC=x", "OU=C,DC"]}),
            "writeback.container_scope: DN \"OU=B,,DC=x\": expected an attribute type at byte 5; DN \"OU=C,DC\"",
        ),
    ];
    for (json, expected) in cases {
        let settings = parse(json.clone()).expect("deserializes");
        let err = settings
            .resolve()
            .expect_err(&format!("should be rejected: {json}"));
        assert!(
            err.to_string().contains(expected),
            "{json}: {err} does not contain {expected:?}"
        );
    }
}

#[test]
fn switches_shape_the_effective_table() {
    let s = parse(serde_json::json!({
        "hide_from_address_lists": false,
        "disabled_attributes": ["extensionattribute15"],
        "mappings": [{"target": "extensionAttribute1", "source": "Alias"},
                     {"target": "info", "constant": "managed by exo-writeback"}],
        "allow_extra_targets": ["info"]
    }))
    .expect("valid")
    .resolve()
    .expect("resolves");
    assert!(!s.is_allowed("msExchHideFromAddressLists"));
    assert!(!s.is_allowed("extensionAttribute15"));
    assert!(s.is_allowed("info"));
    let ea1: Vec<&Mapping> = s
        .mappings
        .iter()
        .filter(|m| m.target.eq_ignore_ascii_case("extensionAttribute1"))
        .collect();
    assert_eq!(ea1.len(), 1, "custom overrides the profile row");
    assert_eq!(ea1[0].kind, MappingKind::Direct("Alias".into()));
    assert_eq!(s.mappings.len(), 26 - 2 + 1);
    let table = s.mapping_table();
    assert_eq!(table.last().map(|r| r.origin.as_str()), Some("custom"));
    let required = s.required_ad_attributes();
    for a in [
        "info",
        "proxyAddresses",
        "msDS-ExternalDirectoryObjectId",
        "objectGUID",
        "mS-DS-ConsistencyGuid",
    ] {
        assert!(required.iter().any(|r| r == a), "{a} in {required:?}");
    }
    assert!(!required.iter().any(|r| r == "extensionAttribute15"));
}

#[test]
fn expression_mappings_are_parsed_at_load() {
    let bad = parse(serde_json::json!({"allow_extra_targets": ["info"], "mappings": [{"target": "info", "expression": "Join(\",\", [CustomAttribute1]"}]}))
        .expect("deserializes")
        .resolve()
        .expect_err("unterminated call");
    let text = bad.to_string();
    assert!(text.contains("mappings[0] (target info)"), "{text}");
    assert!(text.contains("position"), "{text}");
}

fn mapping_to(target: &str, extra: &[&str]) -> Result<WritebackPlanSettings, SettingsError> {
    let mut json =
        serde_json::json!({"mappings": [{"target": target, "source": "CustomAttribute1"}]});
    if !extra.is_empty() {
        json["allow_extra_targets"] = serde_json::json!(extra);
    }
    parse(json).expect("deserializes").resolve()
}

/// Custom mappings write only targets safe to fill from cloud-editable values: the Exchange
/// custom and extension attributes and the Exchange attributes the profiles write, without
/// more; anything else only with a named opt-in.
#[test]
fn custom_mapping_targets_come_from_an_allow_list() {
    for safe in [
        "extensionAttribute1",
        "extensionattribute15",
        "msExchExtensionCustomAttribute5",
        "msExchHideFromAddressLists",
        "msExchArchiveStatus",
        "msExchUserHoldPolicies",
    ] {
        let resolved = mapping_to(safe, &[]).unwrap_or_else(|e| panic!("{safe}: {e}"));
        assert!(resolved.is_allowed(safe), "{safe}");
    }
    // Not on the list: refused, naming the reason and the fix.
    for other in [
        "info",
        "description",
        "seeAlso",
        "extensionAttribute16",
        "msExchExtensionAttribute20",
    ] {
        let err = mapping_to(other, &[]).expect_err(other).to_string();
        for needle in [
            "writeback.mappings[0]",
            other,
            "not on the list of attributes safe to fill from Exchange Online",
            &format!("allow_extra_targets = [\"{other}\"]"),
        ] {
            assert!(err.contains(needle), "{needle:?} in {err}");
        }
        // With the named opt-in it is written, and the opt-in is reported.
        let resolved = mapping_to(other, &[other]).unwrap_or_else(|e| panic!("{other}: {e}"));
        assert!(resolved.is_allowed(other), "{other}");
    }
}

/// Security-sensitive attributes can never be mapped, not even with an opt-in: the
/// deny-list of 25 names let every one of these through.
#[test]
fn security_sensitive_targets_can_never_be_opted_in() {
    for target in [
        "altSecurityIdentities",
        "msDS-KeyCredentialLink",
        "userCertificate",
        "scriptPath",
        "homeDirectory",
        "profilePath",
        "msDS-AllowedToDelegateTo",
        "msDS-AllowedToActOnBehalfOfOtherIdentity",
        "servicePrincipalName",
        "msDS-AdditionalDnsHostName",
        "member",
        "managedBy",
        "primaryGroupID",
        "nTSecurityDescriptor",
        "msExchMailboxSecurityDescriptor",
        "userAccountControl",
        "msDS-SupportedEncryptionTypes",
        "mS-DS-ConsistencyGuid",
        "msDS-ExternalDirectoryObjectId",
        "objectGUID",
        "sIDHistory",
        "unicodePwd",
        "ms-Mcs-AdmPwd",
        "msLAPS-EncryptedPassword",
        "targetAddress",
        "proxyAddresses",
        "mail",
        "legacyExchangeDN",
        "msExchMasterAccountSid",
        "publicDelegates",
        "uidNumber",
        "displayName",
    ] {
        let err = mapping_to(target, &[]).expect_err(target).to_string();
        assert!(
            err.contains(&format!("{target} is never written by a custom mapping")),
            "{err}"
        );
        let err = mapping_to(target, &[target]).expect_err(target).to_string();
        assert!(
            err.contains("writeback.allow_extra_targets")
                && err.contains(target)
                && err.contains("can never be opted in"),
            "{err}"
        );
    }
    // The hybrid profile keeps writing its own match key; only custom mappings may not.
    let hybrid = parse(serde_json::json!({"profiles": ["hybrid"]}))
        .expect("deserializes")
        .resolve()
        .expect("resolves");
    assert!(hybrid.is_allowed("msDS-ExternalDirectoryObjectId"));
    assert!(hybrid.is_allowed("proxyAddresses"));
}

#[test]
fn an_opt_in_must_name_a_custom_mapping_target() {
    let err = parse(serde_json::json!({
        "allow_extra_targets": ["infos"],
        "mappings": [{"target": "info", "constant": "x"}],
    }))
    .expect("deserializes")
    .resolve()
    .expect_err("an opt-in no mapping uses")
    .to_string();
    assert!(
        err.contains(
            "writeback.allow_extra_targets: infos is not the target of any custom mapping"
        ),
        "{err}"
    );
}

/// "Did you mean" for misspelt Get-Mailbox properties, as expressions have for functions.
#[test]
fn misspelt_properties_get_a_suggestion() {
    let cases = [
        (
            serde_json::json!({"mappings": [{"target": "extensionAttribute1", "source": "CustomAtribute1"}]}),
            "unknown Get-Mailbox property CustomAtribute1 (did you mean CustomAttribute1?)",
        ),
        (
            serde_json::json!({"mappings": [{"target": "extensionAttribute1", "expression": "Trim([customattribute22])"}]}),
            "unknown Get-Mailbox property customattribute22 (did you mean CustomAttribute2?)",
        ),
        (
            serde_json::json!({"scoping_filters": [{"clauses": [{"property": "HiddenFromAddressListEnabled", "operator": "IS TRUE"}]}]}),
            "(did you mean HiddenFromAddressListsEnabled?)",
        ),
    ];
    for (json, expected) in cases {
        let err = parse(json.clone())
            .expect("deserializes")
            .resolve()
            .expect_err("unknown property")
            .to_string();
        assert!(err.contains(expected), "{json}: {err}");
    }
    // Far from every property: no guess.
    let err = parse(
        serde_json::json!({"mappings": [{"target": "extensionAttribute1", "source": "Shoesize"}]}),
    )
    .expect("deserializes")
    .resolve()
    .expect_err("unknown property")
    .to_string();
    assert!(!err.contains("did you mean"), "{err}");
}

#[test]
fn write_membership_needs_the_groups_profile() {
    let s = parse(serde_json::json!({"profiles": ["cloud-managed"], "write_membership": true}))
        .expect("parses");
    assert_eq!(
        s.resolve().unwrap_err(),
        SettingsError::MembershipWithoutGroups
    );
    let s =
        parse(serde_json::json!({"profiles": ["cloud-managed-groups"], "write_membership": true}))
            .expect("parses");
    let r = s.resolve().expect("valid");
    assert!(r.write_membership);
    assert!(
        r.required_ad_attributes().iter().any(|a| a == "member"),
        "member is read to plan single adds and deletes"
    );
    let off = parse(serde_json::json!({"profiles": ["cloud-managed-groups"]}))
        .expect("parses")
        .resolve()
        .expect("valid");
    assert!(!off.write_membership, "off by default");
    assert!(!off.required_ad_attributes().iter().any(|a| a == "member"));
}
