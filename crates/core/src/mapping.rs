//! Mappings: how one AD attribute gets its desired values from an Exchange Online mailbox.
//!
//! A [`Mapping`] is data — a target AD attribute, a [`MappingKind`] (Direct property, Constant,
//! Expression or a Lookup table), and the policies that say what an empty value means and how
//! the values merge with what AD holds. The profiles ([`crate::profile`]) are tables of
//! mappings; custom mappings from the configuration are the same type.
//!
//! [`Mapping::evaluate`] turns a mailbox into [`Desired`] values (expression [`Value`]s, not
//! yet converted to AD syntax — that is the planner's job, against the discovered schema).

use std::fmt;

use exo_writeback_expr::{EvalContext, Expr, Outcome, Source, Value};

use crate::mailbox::Mailbox;
use crate::profile::Profile;

/// Where a mapping's values come from.
#[derive(Debug, Clone, PartialEq)]
pub enum MappingKind {
    /// A Get-Mailbox property, copied as is (`[CustomAttribute1]`).
    Direct(String),
    /// A fixed value.
    Constant(String),
    /// An expression in the provisioning expression language.
    Expression(Expr),
    /// A property's value translated through a table (`UserMailbox` → `2147483648`); a value
    /// missing from the table leaves the attribute alone.
    Lookup {
        source: String,
        table: Vec<(String, String)>,
    },
}

/// What an empty desired value (null, `""`, `[]`) does to the AD attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenEmpty {
    /// Clear the attribute (the default: "an empty cloud value clears the AD attribute").
    Clear,
    /// Leave the attribute as it is (msExchUserHoldPolicies).
    LeaveAlone,
}

/// How desired values combine with the values AD holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValuePolicy {
    /// The desired values are the attribute's values.
    Authoritative,
    /// PRODUCT.md §6 proxyAddresses policy: the cloud is authoritative for every address it
    /// lists, AD-only values survive when their prefix is in `preserve_prefixes`, exactly one
    /// primary `SMTP:`.
    ProxyAddresses,
    /// Hybrid writeback: add the desired value unless present (case-insensitively), keep
    /// every other value.
    AddIfMissing,
    /// `msExchRemoteRecipientType`: the desired value is the type bits; they replace the type
    /// bits of the value AD holds, every other bit kept; nothing written when AD holds none
    /// ([`crate::recipient_type::remote_recipient_type`]).
    RemoteRecipientTypeBits,
}

/// When a mapping applies at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Always,
    /// Only when the mailbox lives in Exchange Online; otherwise the attribute is left alone.
    MailboxInExchangeOnline,
}

/// Where a mapping comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappingOrigin {
    Profile(Profile),
    Custom,
}

impl fmt::Display for MappingOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MappingOrigin::Profile(p) => f.write_str(p.name()),
            MappingOrigin::Custom => f.write_str("custom"),
        }
    }
}

/// One row of the effective mapping table.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// The AD attribute written (lDAPDisplayName).
    pub target: String,
    pub kind: MappingKind,
    pub multi_valued: bool,
    pub when_empty: WhenEmpty,
    pub policy: ValuePolicy,
    pub condition: Condition,
    pub origin: MappingOrigin,
}

/// What a mapping wants for its attribute, for one mailbox.
#[derive(Debug, Clone, PartialEq)]
pub enum Desired {
    /// Do not touch the attribute.
    LeaveAlone,
    /// These values (none = clear the attribute).
    Values(Vec<Value>),
}

/// A mapping that could not be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MappingError {
    #[error("mapping to {target}: the mailbox has no property {property}")]
    UnknownProperty { target: String, property: String },
    #[error("mapping to {target}: expression `{expression}` failed at offset {offset}: {message}")]
    Expression {
        target: String,
        expression: String,
        message: String,
        offset: usize,
    },
}

/// A mailbox as the expression language's [`Source`].
pub struct MailboxSource<'a>(pub &'a Mailbox);

impl Source for MailboxSource<'_> {
    fn get(&self, name: &str) -> Option<Value> {
        self.0.property(name)
    }
}

/// Whether the mailbox lives in Exchange Online (not a mail user or a remote mailbox whose
/// mailbox is on-premises): its RecipientTypeDetails names a mailbox.
pub fn mailbox_in_exchange_online(mailbox: &Mailbox) -> bool {
    let t = mailbox.recipient_type_details.as_str();
    t.ends_with("Mailbox") && !t.starts_with("Remote")
}

/// Flatten a value into the individual values it carries; nulls and empty strings vanish.
pub fn flatten(value: Value) -> Vec<Value> {
    match value {
        Value::Null => Vec::new(),
        Value::Str(s) if s.is_empty() => Vec::new(),
        Value::Bytes(b) if b.is_empty() => Vec::new(),
        Value::List(items) => items.into_iter().flat_map(flatten).collect(),
        other => vec![other],
    }
}

impl Mapping {
    /// The desired values of the target attribute for this mailbox.
    pub fn evaluate(&self, mailbox: &Mailbox, ctx: &EvalContext) -> Result<Desired, MappingError> {
        if self.condition == Condition::MailboxInExchangeOnline
            && !mailbox_in_exchange_online(mailbox)
        {
            return Ok(Desired::LeaveAlone);
        }
        let property = |name: &str| {
            mailbox
                .property(name)
                .ok_or_else(|| MappingError::UnknownProperty {
                    target: self.target.clone(),
                    property: name.to_string(),
                })
        };
        let (values, authoritative_null) = match &self.kind {
            MappingKind::Direct(name) => (flatten(property(name)?), false),
            MappingKind::Constant(c) => (flatten(Value::Str(c.clone())), false),
            MappingKind::Lookup { source, table } => {
                let found = match property(source)? {
                    Value::Str(s) => table.iter().find(|(k, _)| k.eq_ignore_ascii_case(&s)),
                    _ => None,
                };
                match found {
                    Some((_, v)) => (vec![Value::Str(v.clone())], false),
                    None => return Ok(Desired::LeaveAlone),
                }
            }
            MappingKind::Expression(expr) => {
                match expr.eval(&MailboxSource(mailbox), ctx).map_err(|e| {
                    MappingError::Expression {
                        target: self.target.clone(),
                        expression: expr.text().to_string(),
                        message: e.message,
                        offset: e.offset,
                    }
                })? {
                    Outcome::IgnoreFlow => return Ok(Desired::LeaveAlone),
                    Outcome::AuthoritativeNull => (Vec::new(), true),
                    Outcome::Value(v) => (flatten(v), false),
                }
            }
        };
        if values.is_empty() && self.when_empty == WhenEmpty::LeaveAlone && !authoritative_null {
            return Ok(Desired::LeaveAlone);
        }
        Ok(Desired::Values(values))
    }

    /// The source column of `profiles --show`: `[CustomAttribute1]`, `"constant"`, the
    /// expression text, or the lookup table.
    pub fn source_text(&self) -> String {
        match &self.kind {
            MappingKind::Direct(p) => format!("[{p}]"),
            MappingKind::Constant(c) => format!("{c:?}"),
            MappingKind::Expression(e) => e.text().to_string(),
            MappingKind::Lookup { source, table } => {
                let rows: Vec<String> = table.iter().map(|(k, v)| format!("{k}→{v}")).collect();
                format!("[{source}] via {}", rows.join(", "))
            }
        }
    }

    /// The kind column of `profiles --show`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            MappingKind::Direct(_) => "Direct",
            MappingKind::Constant(_) => "Constant",
            MappingKind::Expression(_) => "Expression",
            MappingKind::Lookup { .. } => "Lookup",
        }
    }

    /// The notes column of `profiles --show`: the policies that differ from plain copying.
    pub fn notes(&self) -> String {
        let mut notes = Vec::new();
        match self.policy {
            ValuePolicy::Authoritative => {}
            ValuePolicy::ProxyAddresses => notes.push(
                "cloud authoritative; AD-only values kept if their prefix is preserved; \
                 exactly one primary SMTP:",
            ),
            ValuePolicy::AddIfMissing => {
                notes.push("add if missing (case-insensitive), keep every other value")
            }
            ValuePolicy::RemoteRecipientTypeBits => notes.push(
                "the type bits (Room 32, Equipment 64, Shared 96) replace those of the value AD \
                 holds, the provisioned/migrated and archive bits kept; never written where AD \
                 holds no value",
            ),
        }
        if self.when_empty == WhenEmpty::LeaveAlone {
            notes.push("empty cloud value leaves AD alone");
        }
        if self.condition == Condition::MailboxInExchangeOnline {
            notes.push("only when the mailbox is in Exchange Online");
        }
        notes.join("; ")
    }

    /// The source properties this mapping reads.
    pub fn source_properties(&self) -> Vec<String> {
        match &self.kind {
            MappingKind::Direct(p) => vec![p.clone()],
            MappingKind::Constant(_) => Vec::new(),
            MappingKind::Expression(e) => e.attributes(),
            MappingKind::Lookup { source, .. } => vec![source.clone()],
        }
    }
}

/// One row of `exo-writeback profiles --show`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MappingRow {
    pub target: String,
    pub kind: String,
    pub source: String,
    pub values: String,
    pub origin: String,
    pub notes: String,
}

impl From<&Mapping> for MappingRow {
    fn from(m: &Mapping) -> Self {
        MappingRow {
            target: m.target.clone(),
            kind: m.kind_name().to_string(),
            source: m.source_text(),
            values: if m.multi_valued { "multi" } else { "single" }.to_string(),
            origin: m.origin.to_string(),
            notes: m.notes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> EvalContext {
        EvalContext {
            now: jiff::Timestamp::UNIX_EPOCH,
            seed: 1,
        }
    }

    fn mapping(kind: MappingKind, when_empty: WhenEmpty) -> Mapping {
        Mapping {
            target: "extensionAttribute1".into(),
            kind,
            multi_valued: false,
            when_empty,
            policy: ValuePolicy::Authoritative,
            condition: Condition::Always,
            origin: MappingOrigin::Custom,
        }
    }

    #[test]
    fn direct_constant_and_lookup_evaluate() {
        let mut m = Mailbox::default();
        m.custom_attributes[0] = Some("x".into());
        m.recipient_type_details = "RoomMailbox".into();
        let direct = mapping(
            MappingKind::Direct("CustomAttribute1".into()),
            WhenEmpty::Clear,
        );
        assert_eq!(
            direct.evaluate(&m, &ctx()),
            Ok(Desired::Values(vec![Value::Str("x".into())]))
        );
        let empty = mapping(
            MappingKind::Direct("CustomAttribute2".into()),
            WhenEmpty::Clear,
        );
        assert_eq!(empty.evaluate(&m, &ctx()), Ok(Desired::Values(vec![])));
        let leave = mapping(
            MappingKind::Direct("CustomAttribute2".into()),
            WhenEmpty::LeaveAlone,
        );
        assert_eq!(leave.evaluate(&m, &ctx()), Ok(Desired::LeaveAlone));
        let constant = mapping(MappingKind::Constant("c".into()), WhenEmpty::Clear);
        assert_eq!(
            constant.evaluate(&m, &ctx()),
            Ok(Desired::Values(vec![Value::Str("c".into())]))
        );
        let lookup = mapping(
            MappingKind::Lookup {
                source: "RecipientTypeDetails".into(),
                table: vec![("roommailbox".into(), "8".into())],
            },
            WhenEmpty::Clear,
        );
        assert_eq!(
            lookup.evaluate(&m, &ctx()),
            Ok(Desired::Values(vec![Value::Str("8".into())]))
        );
        m.recipient_type_details = "DiscoveryMailbox".into();
        assert_eq!(lookup.evaluate(&m, &ctx()), Ok(Desired::LeaveAlone));
    }

    #[test]
    fn unknown_property_is_an_error_not_a_panic() {
        let bad = mapping(MappingKind::Direct("Nope".into()), WhenEmpty::Clear);
        assert!(matches!(
            bad.evaluate(&Mailbox::default(), &ctx()),
            Err(MappingError::UnknownProperty { .. })
        ));
    }

    #[test]
    fn condition_in_exchange_online_leaves_alone_otherwise() {
        let mut m = Mailbox {
            safe_senders_hash: Some(vec![1, 2, 3, 4]),
            recipient_type_details: "MailUser".into(),
            ..Mailbox::default()
        };
        let mut hash = mapping(
            MappingKind::Direct("SafeSendersHash".into()),
            WhenEmpty::Clear,
        );
        hash.condition = Condition::MailboxInExchangeOnline;
        assert_eq!(hash.evaluate(&m, &ctx()), Ok(Desired::LeaveAlone));
        m.recipient_type_details = "UserMailbox".into();
        assert_eq!(
            hash.evaluate(&m, &ctx()),
            Ok(Desired::Values(vec![Value::Bytes(vec![1, 2, 3, 4])]))
        );
    }
}
