//! Get-DistributionGroup, Get-MailContact and Get-DistributionGroupMember records (issue 17).
//!
//! **No public capture of these records exists** (`docs/groups-and-contacts.md`,
//! `PROTOCOL.md` §2): the properties read are those Microsoft documents for the cmdlets, in
//! the value forms of the Get-Mailbox captures (A1: annotations beside each property, `""` for
//! an empty CustomAttribute, lists as arrays, `"True"` possible for a Boolean). The same
//! tolerance and the same per-record errors as for mailboxes apply.

use exo_writeback_core::mail_recipient::{GroupMember, MailRecipient};
use serde_json::{Map, Value};

use super::{MAILBOX_PROPERTIES, Reader, kind, record_name};

/// The Get-Mailbox properties a group or contact does not have, or that no public source
/// shows on them (`IsExchangeCloudManaged`).
const MAILBOX_ONLY: &[&str] = &[
    "ImmutableId",
    "UserPrincipalName",
    "IsExchangeCloudManaged",
    "LegacyExchangeDN",
    "ArchiveStatus",
    "InPlaceHolds",
];

/// Properties requested (`$select`) from Get-DistributionGroup: the mailboxes' common
/// recipient properties.
pub fn group_properties() -> Vec<&'static str> {
    MAILBOX_PROPERTIES
        .iter()
        .copied()
        .filter(|p| !MAILBOX_ONLY.contains(p))
        .collect()
}

/// Properties requested from Get-MailContact: the groups' and `ExternalEmailAddress`.
pub fn contact_properties() -> Vec<&'static str> {
    let mut p = group_properties();
    p.push("ExternalEmailAddress");
    p
}

/// Properties requested from Get-DistributionGroupMember.
pub const MEMBER_PROPERTIES: &[&str] = &[
    "ExternalDirectoryObjectId",
    "PrimarySmtpAddress",
    "Alias",
    "DisplayName",
    "RecipientTypeDetails",
];

fn object(record: &Value) -> Result<&Map<String, Value>, (String, String)> {
    match record {
        Value::Object(obj) => Ok(obj),
        other => Err((
            record_name(record),
            format!("the record is {}, not an object", kind(other)),
        )),
    }
}

/// Translates one Get-DistributionGroup or Get-MailContact record.
pub fn recipient_from_record(record: &Value) -> Result<MailRecipient, (String, String)> {
    let obj = object(record)?;
    let r = Reader { obj };
    convert(&r).map_err(|problem| (record_name(record), problem))
}

fn convert(r: &Reader<'_>) -> Result<MailRecipient, String> {
    let mut custom_attributes: [Option<String>; 15] = Default::default();
    for (i, slot) in custom_attributes.iter_mut().enumerate() {
        *slot = r.string(&format!("CustomAttribute{}", i + 1))?;
    }
    let mut extension_custom_attributes: [Vec<String>; 5] = Default::default();
    for (i, slot) in extension_custom_attributes.iter_mut().enumerate() {
        *slot = r.list(&format!("ExtensionCustomAttribute{}", i + 1))?;
    }
    let is_exchange_cloud_managed = match r.obj.get("IsExchangeCloudManaged") {
        None | Some(Value::Null) => None,
        Some(_) => Some(r.bool("IsExchangeCloudManaged")?),
    };
    Ok(MailRecipient {
        external_directory_object_id: r.string("ExternalDirectoryObjectId")?,
        primary_smtp_address: r.string("PrimarySmtpAddress")?,
        windows_email_address: r.string("WindowsEmailAddress")?,
        display_name: r.string("DisplayName")?,
        alias: r.string("Alias")?,
        email_addresses: r.list("EmailAddresses")?,
        custom_attributes,
        extension_custom_attributes,
        hidden_from_address_lists_enabled: r.bool("HiddenFromAddressListsEnabled")?,
        recipient_type_details: r.string("RecipientTypeDetails")?.unwrap_or_default(),
        is_dir_synced: r.bool("IsDirSynced")?,
        is_exchange_cloud_managed,
        external_email_address: r.string("ExternalEmailAddress")?,
        when_changed_utc: r.timestamp("WhenChangedUTC")?,
    })
}

/// Translates one Get-DistributionGroupMember record.
pub fn member_from_record(record: &Value) -> Result<GroupMember, (String, String)> {
    let obj = object(record)?;
    let r = Reader { obj };
    let member = || -> Result<GroupMember, String> {
        Ok(GroupMember {
            external_directory_object_id: r.string("ExternalDirectoryObjectId")?,
            primary_smtp_address: r.string("PrimarySmtpAddress")?,
            alias: r.string("Alias")?,
            display_name: r.string("DisplayName")?,
            recipient_type_details: r.string("RecipientTypeDetails")?.unwrap_or_default(),
        })
    };
    member().map_err(|problem| (record_name(record), problem))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A group record in the documented property names and A1's value forms (modelled: no
    /// capture exists).
    fn group() -> Value {
        json!({
            "Alias": "dl-sales",
            "CustomAttribute1": "Sales",
            "CustomAttribute2": "",
            "DisplayName": "Sales",
            "EmailAddresses@odata.type": "#Collection(String)",
            "EmailAddresses": ["smtp:sales@contoso.com", "SMTP:dl-sales@contoso.com"],
            "ExtensionCustomAttribute1@odata.type": "#Collection(String)",
            "ExtensionCustomAttribute1": ["a", "b"],
            "ExternalDirectoryObjectId": "5f0f5f3e-55e1-4f2b-9e44-0d9f0c6d1a11",
            "GroupType": "Universal, SecurityEnabled",
            "HiddenFromAddressListsEnabled": "True",
            "IsDirSynced": true,
            "PrimarySmtpAddress": "dl-sales@contoso.com",
            "RecipientTypeDetails": "MailUniversalSecurityGroup",
            "WhenChangedUTC@data.type": "System.DateTime",
            "WhenChangedUTC": "2024-04-10T08:56:22.1234567Z",
        })
    }

    #[test]
    fn a_group_record_is_read_with_the_mailbox_tolerance() {
        let g = recipient_from_record(&group()).unwrap();
        assert!(g.is_group() && !g.is_contact());
        assert_eq!(g.alias.as_deref(), Some("dl-sales"));
        assert_eq!(g.custom_attributes[0].as_deref(), Some("Sales"));
        assert_eq!(g.custom_attributes[1], None, "\"\" is no value");
        assert_eq!(g.extension_custom_attributes[0], ["a", "b"]);
        assert_eq!(g.email_addresses[1], "SMTP:dl-sales@contoso.com");
        assert!(g.hidden_from_address_lists_enabled && g.is_dir_synced);
        // Absent, not false: no capture shows it on groups.
        assert_eq!(g.is_exchange_cloud_managed, None);
        assert_eq!(
            g.when_changed_utc.unwrap().to_string(),
            "2024-04-10T08:56:22.1234567Z"
        );
        let mut with = group();
        with["IsExchangeCloudManaged"] = json!(false);
        assert_eq!(
            recipient_from_record(&with)
                .unwrap()
                .is_exchange_cloud_managed,
            Some(false)
        );
    }

    #[test]
    fn a_contact_keeps_its_external_address() {
        let mut c = group();
        c["RecipientTypeDetails"] = json!("MailContact");
        c["ExternalEmailAddress"] = json!("SMTP:ann@fabrikam.example");
        let c = recipient_from_record(&c).unwrap();
        assert!(c.is_contact() && !c.is_group());
        assert_eq!(
            c.external_email_address.as_deref(),
            Some("SMTP:ann@fabrikam.example")
        );
    }

    #[test]
    fn a_record_of_the_wrong_shape_fails_alone_and_names_the_recipient() {
        let mut bad = group();
        bad["EmailAddresses"] = json!("SMTP:dl-sales@contoso.com");
        let (name, problem) = recipient_from_record(&bad).unwrap_err();
        assert!(name.contains("dl-sales@contoso.com"), "{name}");
        assert!(problem.contains("EmailAddresses"), "{problem}");
        let mut bad = group();
        bad["IsExchangeCloudManaged"] = json!("maybe");
        assert!(recipient_from_record(&bad).is_err());
        assert!(recipient_from_record(&json!(["x"])).is_err());
    }

    #[test]
    fn groups_and_contacts_are_asked_only_for_properties_they_have() {
        let g = group_properties();
        assert!(g.contains(&"CustomAttribute15") && g.contains(&"WhenChangedUTC"));
        assert!(!g.contains(&"IsExchangeCloudManaged") && !g.contains(&"UserPrincipalName"));
        assert!(contact_properties().contains(&"ExternalEmailAddress"));
    }

    #[test]
    fn a_member_is_a_recipient_nested_groups_included() {
        let m = member_from_record(&json!({
            "Alias": "sg-finance",
            "DisplayName": "Finance",
            "ExternalDirectoryObjectId": "",
            "PrimarySmtpAddress": "sg-finance@contoso.com",
            "RecipientTypeDetails": "MailUniversalSecurityGroup",
            "Guid@data.type": "System.Guid",
            "Guid": "00000000-0000-0000-0000-000000000001",
        }))
        .unwrap();
        assert!(m.is_group());
        assert_eq!(m.external_directory_object_id, None);
        let bad = member_from_record(&json!({"Alias": ["x"], "PrimarySmtpAddress": "x@y.z"}));
        assert!(bad.unwrap_err().1.contains("Alias"));
    }
}
