//! The AD schema as the writeback needs it: per attribute its syntax, whether it is
//! single-valued, and its size limits. Discovered from the DC by the AD adapter.

use std::collections::BTreeMap;

use crate::directory::AttrValue;

/// An attribute syntax, from `attributeSyntax` + `oMSyntax` of an `attributeSchema` object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Syntax {
    /// 2.5.5.12 / 64 — Unicode string.
    Unicode,
    /// 2.5.5.8 / 1.
    Boolean,
    /// 2.5.5.9 / 2 (and enumerations 2.5.5.9 / 10).
    Integer,
    /// 2.5.5.16 / 65.
    LargeInteger,
    /// 2.5.5.10 / 4 — bytes.
    OctetString,
    /// 2.5.5.17 / 4 — a security identifier, bytes.
    Sid,
    /// 2.5.5.1 / 127 — a DN.
    DnString,
    /// 2.5.5.11 — UTC or generalized time.
    Time,
    /// 2.5.5.4, 2.5.5.5, 2.5.5.6, 2.5.5.2 … — other text syntaxes.
    OtherText,
    /// Anything else, by its attributeSyntax OID; values are kept as bytes.
    OtherBinary(String),
}

impl Syntax {
    /// Classify by `attributeSyntax` and `oMSyntax`.
    pub fn from_oids(attribute_syntax: &str, om_syntax: i32) -> Syntax {
        match (attribute_syntax, om_syntax) {
            ("2.5.5.12", _) => Syntax::Unicode,
            ("2.5.5.8", _) => Syntax::Boolean,
            ("2.5.5.9", _) => Syntax::Integer,
            ("2.5.5.16", _) => Syntax::LargeInteger,
            ("2.5.5.10", _) => Syntax::OctetString,
            ("2.5.5.17", _) => Syntax::Sid,
            ("2.5.5.1", _) => Syntax::DnString,
            ("2.5.5.11", _) => Syntax::Time,
            ("2.5.5.2" | "2.5.5.3" | "2.5.5.4" | "2.5.5.5" | "2.5.5.6" | "2.5.5.13", _) => {
                Syntax::OtherText
            }
            (other, _) => Syntax::OtherBinary(other.to_string()),
        }
    }

    /// Values of this syntax are bytes, never text.
    pub fn is_binary(&self) -> bool {
        matches!(
            self,
            Syntax::OctetString | Syntax::Sid | Syntax::OtherBinary(_)
        )
    }
}

/// Whether the values an attribute holds are exactly the planned ones: the same values,
/// byte for byte, in any order (AD does not keep the order of multi-valued attributes). A
/// single value of an Integer or Boolean attribute compares as the planner compares it (AD
/// returns `TRUE` for `true`, `7` for `007`).
pub fn same_values(syntax: Option<&Syntax>, current: &[AttrValue], planned: &[AttrValue]) -> bool {
    if current.len() != planned.len() {
        return false;
    }
    if let ([c], [p]) = (current, planned)
        && let (Some(c), Some(p)) = (c.as_text(), p.as_text())
    {
        match syntax {
            Some(Syntax::Boolean) => return c.eq_ignore_ascii_case(p),
            Some(Syntax::Integer | Syntax::LargeInteger) => {
                if let (Ok(x), Ok(y)) = (c.trim().parse::<i64>(), p.trim().parse::<i64>()) {
                    return x == y;
                }
            }
            _ => {}
        }
    }
    let mut a: Vec<&[u8]> = current.iter().map(AttrValue::as_bytes).collect();
    let mut b: Vec<&[u8]> = planned.iter().map(AttrValue::as_bytes).collect();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

/// One `attributeSchema` object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttributeSchema {
    pub ldap_display_name: String,
    pub attribute_id: String,
    pub syntax: Syntax,
    pub single_valued: bool,
    pub range_lower: Option<u64>,
    pub range_upper: Option<u64>,
}

/// The discovered schema, looked up case-insensitively by lDAPDisplayName.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    by_lower_name: BTreeMap<String, AttributeSchema>,
    /// The schema NC head's `schemaInfo` the schema was read under, when the DC let it be read
    /// (see [`Schema::schema_info`]).
    schema_info: Option<Vec<u8>>,
}

impl Schema {
    pub fn new(attributes: impl IntoIterator<Item = AttributeSchema>) -> Self {
        Schema {
            by_lower_name: attributes
                .into_iter()
                .map(|a| (a.ldap_display_name.to_ascii_lowercase(), a))
                .collect(),
            schema_info: None,
        }
    }
    /// The same schema, tagged with the `schemaInfo` value read before its attributes.
    pub fn with_schema_info(self, schema_info: Option<Vec<u8>>) -> Self {
        Schema {
            schema_info,
            ..self
        }
    }
    /// The schema NC head's `schemaInfo` read just before this schema's attributes, if any:
    /// a value that changes with every schema change (Microsoft Learn, "Schema-Info
    /// attribute"), so a schema read under the value the DC shows now is still current.
    /// Opaque here: compared byte for byte, never parsed.
    pub fn schema_info(&self) -> Option<&[u8]> {
        self.schema_info.as_deref()
    }
    pub fn get(&self, name: &str) -> Option<&AttributeSchema> {
        self.by_lower_name.get(&name.to_ascii_lowercase())
    }
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    pub fn len(&self) -> usize {
        self.by_lower_name.len()
    }
    pub fn is_empty(&self) -> bool {
        self.by_lower_name.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &AttributeSchema> {
        self.by_lower_name.values()
    }
}

/// The schema of the lab DC as far as the writeback touches it: every attribute of
/// `exchange-schema.md` (as `lab/exchange-schema.ldif` installs it) plus the base-schema
/// attributes the profiles read or must refuse. For unit tests, in-memory directories and
/// benchmarks that plan without a DC; attributeIDs are placeholders (`lab:<name>`). The AD
/// connector's tests compare it with the schema read from the lab DC (`ad` test
/// `lab_schema.rs`): names, syntaxes, single-valuedness and range limits agree.
pub fn exchange_lab_schema() -> Schema {
    let attr = |name: &str, syntax: Syntax, single: bool, upper: Option<u64>| AttributeSchema {
        ldap_display_name: name.to_string(),
        attribute_id: format!("lab:{name}"),
        syntax,
        single_valued: single,
        range_lower: None,
        range_upper: upper,
    };
    let lower = |a: AttributeSchema, lower: u64| AttributeSchema {
        range_lower: Some(lower),
        ..a
    };
    let mut attrs = vec![
        attr("msExchHideFromAddressLists", Syntax::Boolean, true, None),
        lower(
            attr("proxyAddresses", Syntax::Unicode, false, Some(1123)),
            1,
        ),
        lower(attr("mail", Syntax::Unicode, true, Some(256)), 0),
        attr("userPrincipalName", Syntax::Unicode, true, Some(1024)),
        lower(attr("objectGUID", Syntax::OctetString, true, Some(16)), 16),
        lower(attr("info", Syntax::Unicode, true, Some(1024)), 1),
        attr("mS-DS-ConsistencyGuid", Syntax::OctetString, true, None),
        attr("msExchArchiveStatus", Syntax::Integer, true, None),
        attr("msExchSafeSendersHash", Syntax::OctetString, true, None),
        attr("msExchBlockedSendersHash", Syntax::OctetString, true, None),
        attr("msExchSafeRecipientsHash", Syntax::OctetString, true, None),
        attr(
            "msExchUCVoiceMailSettings",
            Syntax::Unicode,
            false,
            Some(1123),
        ),
        attr("msExchUserHoldPolicies", Syntax::Unicode, false, Some(40)),
        attr(
            "msExchRecipientTypeDetails",
            Syntax::LargeInteger,
            true,
            None,
        ),
        attr(
            "msExchRemoteRecipientType",
            Syntax::LargeInteger,
            true,
            None,
        ),
        attr("msExchRecipientDisplayType", Syntax::Integer, true, None),
        attr("targetAddress", Syntax::Unicode, true, Some(1123)),
        attr("mailNickname", Syntax::Unicode, true, Some(64)),
        attr(
            "msDS-ExternalDirectoryObjectId",
            Syntax::Unicode,
            true,
            Some(256),
        ),
        AttributeSchema {
            range_lower: Some(16),
            ..attr("msExchMailboxGuid", Syntax::OctetString, true, Some(16))
        },
        attr("unicodePwd", Syntax::OctetString, true, None),
        attr("whenCreated", Syntax::Time, true, None),
    ];
    for i in 1..=15 {
        let upper = if i <= 10 { 1024 } else { 2048 };
        attrs.push(attr(
            &format!("extensionAttribute{i}"),
            Syntax::Unicode,
            true,
            Some(upper),
        ));
    }
    for i in 1..=5 {
        attrs.push(attr(
            &format!("msExchExtensionCustomAttribute{i}"),
            Syntax::Unicode,
            false,
            Some(2048),
        ));
    }
    Schema::new(attrs)
}
