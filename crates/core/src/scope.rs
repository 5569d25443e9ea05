//! Scope (PRODUCT.md §4): which mailboxes are written back, and why others are skipped.
//!
//! - [`evaluate_scope`] decides for a mailbox: which enabled profiles apply
//!   ([`InScope`]), or a [`SkipReason`] naming every failed condition
//!   (`NotInScope: IsExchangeCloudManaged is False`).
//! - [`check_container_scope`] decides for a matched AD object's DN
//!   (`OutsideContainerScope`).
//!
//! Scoping filters use Microsoft's operators ([`ScopeOperator`]); clauses in a filter are
//! AND-ed, filters are OR-ed. Values compare case-sensitively, as Microsoft documents.

use std::collections::BTreeSet;
use std::fmt;

use exo_writeback_expr::Value;
use regex::Regex;

use crate::mailbox::{Mailbox, RECIPIENT_TYPES, RecipientKind};
use crate::mapping::mailbox_in_exchange_online;
use crate::outcome::{OutcomeCode, OutcomeDetail};
use crate::profile::Profile;
use crate::settings::WritebackPlanSettings;

/// A scoping-filter operator, spelled as in Microsoft's provisioning UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ScopeOperator {
    Equals,
    NotEquals,
    IsTrue,
    IsFalse,
    IsNull,
    IsNotNull,
    RegexMatch,
    NotRegexMatch,
    GreaterThan,
    GreaterThanOrEquals,
    EndsWith,
    Includes,
}

impl ScopeOperator {
    pub const ALL: [ScopeOperator; 12] = [
        ScopeOperator::Equals,
        ScopeOperator::NotEquals,
        ScopeOperator::IsTrue,
        ScopeOperator::IsFalse,
        ScopeOperator::IsNull,
        ScopeOperator::IsNotNull,
        ScopeOperator::RegexMatch,
        ScopeOperator::NotRegexMatch,
        ScopeOperator::GreaterThan,
        ScopeOperator::GreaterThanOrEquals,
        ScopeOperator::EndsWith,
        ScopeOperator::Includes,
    ];

    /// Microsoft's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeOperator::Equals => "EQUALS",
            ScopeOperator::NotEquals => "NOT EQUALS",
            ScopeOperator::IsTrue => "IS TRUE",
            ScopeOperator::IsFalse => "IS FALSE",
            ScopeOperator::IsNull => "IS NULL",
            ScopeOperator::IsNotNull => "IS NOT NULL",
            ScopeOperator::RegexMatch => "REGEX MATCH",
            ScopeOperator::NotRegexMatch => "NOT REGEX MATCH",
            ScopeOperator::GreaterThan => "Greater_Than",
            ScopeOperator::GreaterThanOrEquals => "Greater_Than_OR_EQUALS",
            ScopeOperator::EndsWith => "ENDS_WITH",
            ScopeOperator::Includes => "Includes",
        }
    }

    /// Whether the operator compares against a value.
    pub fn takes_value(self) -> bool {
        !matches!(
            self,
            ScopeOperator::IsTrue
                | ScopeOperator::IsFalse
                | ScopeOperator::IsNull
                | ScopeOperator::IsNotNull
        )
    }
}

impl TryFrom<String> for ScopeOperator {
    type Error = String;
    /// Accepts Microsoft's spelling, case-insensitively, with `_` and ` ` interchangeable.
    fn try_from(text: String) -> Result<Self, String> {
        let norm = |s: &str| s.to_ascii_uppercase().replace('_', " ");
        let wanted = norm(text.trim());
        ScopeOperator::ALL
            .into_iter()
            .find(|op| norm(op.as_str()) == wanted)
            .ok_or_else(|| {
                let known: Vec<&str> = ScopeOperator::ALL.iter().map(|o| o.as_str()).collect();
                format!(
                    "unknown scoping operator {text:?}; expected one of: {}",
                    known.join(", ")
                )
            })
    }
}

impl From<ScopeOperator> for String {
    fn from(op: ScopeOperator) -> String {
        op.as_str().to_string()
    }
}

impl fmt::Display for ScopeOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The value side of a clause, checked and compiled once at load.
#[derive(Debug, Clone)]
enum Operand {
    None,
    Text(String),
    Integer(i64),
    Regex(Regex),
}

/// A validated clause.
#[derive(Debug, Clone)]
pub struct CompiledClause {
    pub property: String,
    pub operator: ScopeOperator,
    operand: Operand,
}

/// A validated filter: all clauses must hold.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    pub clauses: Vec<CompiledClause>,
}

/// The text forms of a value the string operators look at (each element of a list).
fn texts(value: &Value) -> Vec<String> {
    match value {
        Value::Null => Vec::new(),
        Value::Str(s) => vec![s.clone()],
        Value::Int(i) => vec![i.to_string()],
        Value::Bool(b) => vec![if *b { "True" } else { "False" }.to_string()],
        Value::Bytes(b) => vec![b.iter().map(|x| format!("{x:02x}")).collect()],
        Value::DateTime(t) => vec![t.to_string()],
        Value::List(items) => items.iter().flat_map(texts).collect(),
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Str(s) => s.is_empty(),
        Value::List(items) => items.iter().all(is_empty),
        _ => false,
    }
}

fn truthy(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

impl CompiledClause {
    /// Check a clause's value against its operator; the error says what is wrong.
    pub fn new(
        property: &str,
        operator: ScopeOperator,
        value: Option<&str>,
    ) -> Result<CompiledClause, String> {
        let operand = match (operator.takes_value(), value) {
            (false, None) => Operand::None,
            (false, Some(_)) => return Err(format!("{operator} takes no value")),
            (true, None) => return Err(format!("{operator} needs a value")),
            (true, Some(v)) => match operator {
                ScopeOperator::RegexMatch | ScopeOperator::NotRegexMatch => Operand::Regex(
                    Regex::new(v).map_err(|e| format!("invalid regular expression {v:?}: {e}"))?,
                ),
                ScopeOperator::GreaterThan | ScopeOperator::GreaterThanOrEquals => {
                    Operand::Integer(
                        v.trim()
                            .parse()
                            .map_err(|_| format!("{operator} needs an integer value, not {v:?}"))?,
                    )
                }
                _ => Operand::Text(v.to_string()),
            },
        };
        Ok(CompiledClause {
            property: property.to_string(),
            operator,
            operand,
        })
    }

    /// Whether the clause holds for the mailbox; `Err` carries the failed condition's text.
    pub fn evaluate(&self, mailbox: &Mailbox) -> Result<(), String> {
        let value = mailbox.property(&self.property).unwrap_or(Value::Null);
        let texts = texts(&value);
        let holds = match (&self.operator, &self.operand) {
            (ScopeOperator::Equals, Operand::Text(t)) => texts.iter().any(|s| s == t),
            (ScopeOperator::NotEquals, Operand::Text(t)) => !texts.iter().any(|s| s == t),
            (ScopeOperator::IsTrue, _) => truthy(&value) == Some(true),
            (ScopeOperator::IsFalse, _) => truthy(&value) == Some(false),
            (ScopeOperator::IsNull, _) => is_empty(&value),
            (ScopeOperator::IsNotNull, _) => !is_empty(&value),
            (ScopeOperator::RegexMatch, Operand::Regex(r)) => texts.iter().any(|s| r.is_match(s)),
            (ScopeOperator::NotRegexMatch, Operand::Regex(r)) => {
                !texts.iter().any(|s| r.is_match(s))
            }
            (ScopeOperator::GreaterThan, Operand::Integer(n)) => texts
                .iter()
                .any(|s| s.trim().parse::<i64>().is_ok_and(|v| v > *n)),
            (ScopeOperator::GreaterThanOrEquals, Operand::Integer(n)) => texts
                .iter()
                .any(|s| s.trim().parse::<i64>().is_ok_and(|v| v >= *n)),
            (ScopeOperator::EndsWith, Operand::Text(t)) => texts.iter().any(|s| s.ends_with(t)),
            (ScopeOperator::Includes, Operand::Text(t)) => match &value {
                Value::List(_) => texts.iter().any(|s| s == t),
                _ => texts.iter().any(|s| s.contains(t.as_str())),
            },
            // CompiledClause::new pairs every operator with its operand kind.
            _ => false,
        };
        if holds {
            return Ok(());
        }
        let shown = if is_empty(&value) {
            "empty".to_string()
        } else {
            format!("{:?}", texts.join(", "))
        };
        Err(match &self.operand {
            Operand::None => format!("{} {} (is {shown})", self.property, self.operator),
            Operand::Text(t) => format!("{} {} {t:?} (is {shown})", self.property, self.operator),
            Operand::Integer(n) => format!("{} {} {n} (is {shown})", self.property, self.operator),
            Operand::Regex(r) => {
                format!(
                    "{} {} {:?} (is {shown})",
                    self.property,
                    self.operator,
                    r.as_str()
                )
            }
        })
    }
}

impl CompiledFilter {
    /// Whether every clause holds; `Err` lists the failed clauses.
    pub fn evaluate(&self, mailbox: &Mailbox) -> Result<(), String> {
        let failed: Vec<String> = self
            .clauses
            .iter()
            .filter_map(|c| c.evaluate(mailbox).err())
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join(" AND "))
        }
    }
}

/// Why an object is skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    /// `conditions` are the failed conditions, e.g. `IsExchangeCloudManaged is False`.
    #[error("NotInScope: {}", conditions.join("; "))]
    NotInScope { conditions: Vec<String> },
    #[error("OutsideContainerScope: {dn} is not under {}", bases.join(" or "))]
    OutsideContainerScope { dn: String, bases: Vec<String> },
}

impl SkipReason {
    pub fn code(&self) -> OutcomeCode {
        match self {
            SkipReason::NotInScope { .. } => OutcomeCode::NotInScope,
            SkipReason::OutsideContainerScope { .. } => OutcomeCode::OutsideContainerScope,
        }
    }
    /// The log entry's `{code, reason, recommended action}`.
    pub fn outcome(&self) -> OutcomeDetail {
        let text = self.to_string();
        let reason = text
            .split_once(": ")
            .map(|(_, r)| r.to_string())
            .unwrap_or(text);
        OutcomeDetail::new(self.code(), reason)
    }
}

/// A mailbox in scope, and the enabled profiles whose scope it meets. Only
/// [`evaluate_scope`] makes one, so planning cannot forget the scope step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InScope {
    profiles: BTreeSet<Profile>,
}

impl InScope {
    pub fn profiles(&self) -> &BTreeSet<Profile> {
        &self.profiles
    }
    pub fn includes(&self, profile: Profile) -> bool {
        self.profiles.contains(&profile)
    }
    /// Whether a mailbox profile admitted the record: custom mappings (written for mailboxes)
    /// apply only then, never to a group or contact.
    pub fn is_mailbox(&self) -> bool {
        self.profiles
            .iter()
            .any(|p| p.kind() == RecipientKind::Mailbox)
    }
}

fn bool_text(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// The conditions of a profile's scope that fail for this record (empty: in scope). A
/// profile admits records of its own kind only ([`Profile::kind`]): a mailbox profile never a
/// group or contact, a group or contact profile never a mailbox.
pub fn profile_scope_failures(
    settings: &WritebackPlanSettings,
    profile: Profile,
    mailbox: &Mailbox,
) -> Vec<String> {
    if matches!(
        profile,
        Profile::CloudManagedGroups | Profile::CloudManagedContacts
    ) {
        return crate::recipient_profile::scope_failures(
            profile,
            mailbox,
            settings.assume_cloud_managed_recipients,
        );
    }
    if mailbox.kind != RecipientKind::Mailbox {
        return vec![format!("a {}, not a mailbox", mailbox.kind)];
    }
    let mut failed = Vec::new();
    if !mailbox.is_dir_synced {
        failed.push(format!("IsDirSynced is {}", bool_text(false)));
    }
    match profile {
        Profile::CloudManaged => {
            if !mailbox.is_exchange_cloud_managed {
                failed.push(format!("IsExchangeCloudManaged is {}", bool_text(false)));
            }
            if !RECIPIENT_TYPES.contains(&mailbox.recipient_type_details.as_str()) {
                failed.push(format!(
                    "RecipientTypeDetails is {:?}, not one of {}",
                    mailbox.recipient_type_details,
                    RECIPIENT_TYPES.join(", ")
                ));
            }
        }
        Profile::Hybrid => {
            if !mailbox_in_exchange_online(mailbox) {
                failed.push(format!(
                    "mailbox is not in Exchange Online (RecipientTypeDetails is {:?})",
                    mailbox.recipient_type_details
                ));
            }
        }
        // Handled above.
        Profile::CloudManagedGroups | Profile::CloudManagedContacts => {}
    }
    failed
}

/// Decide whether the mailbox is written back, and by which profiles.
///
/// Every enabled profile's conditions are checked; the mailbox is in scope for the profiles
/// whose conditions all hold, provided at least one scoping filter (if any are configured)
/// holds. Otherwise [`SkipReason::NotInScope`] lists each failed condition; with several
/// profiles of the record's kind enabled each is prefixed with the profile name. Only the
/// profiles of the record's kind (mailbox, group, contact) are asked; with none enabled the
/// record is not in scope.
pub fn evaluate_scope(
    settings: &WritebackPlanSettings,
    mailbox: &Mailbox,
) -> Result<InScope, SkipReason> {
    let mut profiles = BTreeSet::new();
    let mut conditions = Vec::new();
    let of_kind: Vec<Profile> = settings
        .profiles
        .iter()
        .copied()
        .filter(|p| p.kind() == mailbox.kind)
        .collect();
    if of_kind.is_empty() {
        let enabled: Vec<&str> = settings.profiles.iter().map(|p| p.name()).collect();
        return Err(SkipReason::NotInScope {
            conditions: vec![format!(
                "a {}, and no enabled profile writes back a {} (enabled: {})",
                mailbox.kind,
                mailbox.kind,
                enabled.join(", ")
            )],
        });
    }
    let several = of_kind.len() > 1;
    for profile in of_kind {
        let failed = profile_scope_failures(settings, profile, mailbox);
        if failed.is_empty() {
            profiles.insert(profile);
        } else if several {
            conditions.extend(failed.into_iter().map(|c| format!("{profile}: {c}")));
        } else {
            conditions.extend(failed);
        }
    }
    if profiles.is_empty() {
        return Err(SkipReason::NotInScope { conditions });
    }
    if !settings.scoping_filters.is_empty() {
        let mut failures = Vec::new();
        for (i, filter) in settings.scoping_filters.iter().enumerate() {
            match filter.evaluate(mailbox) {
                Ok(()) => return Ok(InScope { profiles }),
                Err(why) => failures.push(format!("scoping filter {}: {why}", i + 1)),
            }
        }
        return Err(SkipReason::NotInScope {
            conditions: failures,
        });
    }
    Ok(InScope { profiles })
}

/// Whether `dn` is `base` or lies under it (AD's case-insensitive DN comparison).
pub fn dn_is_under(dn: &str, base: &str) -> bool {
    crate::ldap_text::is_within(dn, base)
}

/// Check the matched AD object against the container scope (no bases: everything is in).
pub fn check_container_scope(settings: &WritebackPlanSettings, dn: &str) -> Result<(), SkipReason> {
    if settings.container_scope.is_empty()
        || settings.container_scope.iter().any(|b| dn_is_under(dn, b))
    {
        Ok(())
    } else {
        Err(SkipReason::OutsideContainerScope {
            dn: dn.to_string(),
            bases: settings.container_scope.clone(),
        })
    }
}

#[cfg(test)]
#[path = "scope_tests.rs"]
mod tests;
