//! The `[writeback]` configuration section, and its validation into [`WritebackPlanSettings`].
//!
//! Two stages (as in ripgrep): [`WritebackSettings`] only records what the file says (serde,
//! `deny_unknown_fields`, defaults); [`WritebackSettings::resolve`] checks everything once and
//! derives the typed settings the planner uses — the effective mapping table, compiled
//! scoping filters and regexes, parsed expressions. Errors name the offending entry.
//!
//! ```toml
//! [writeback]
//! profiles = ["cloud-managed"]          # and/or "hybrid", "cloud-managed-groups", "cloud-managed-contacts"
//! assume_cloud_managed_recipients = false # groups/contacts whose record lacks IsExchangeCloudManaged
//! hide_from_address_lists = true
//! disabled_attributes = ["extensionAttribute15"]
//! preserve_prefixes = ["X500"]
//! threshold = 500
//! match_rules = ["mS-DS-ConsistencyGuid", "objectGUID", "msDS-ExternalDirectoryObjectId"]
//! container_scope = ["OU=Staff,DC=corp,DC=example"]
//! allow_extra_targets = ["info"]        # custom mapping targets beyond the safe list
//! drift = "report"                      # or "correct"; or { cloud-managed = "correct" }
//!
//! [[writeback.scoping_filters]]          # filters are OR-ed, clauses AND-ed
//! clauses = [{ property = "CustomAttribute1", operator = "NOT EQUALS", value = "nosync" }]
//!
//! [[writeback.mappings]]                 # exactly one of source / constant / expression
//! target = "info"
//! expression = 'Join(",", [CustomAttribute1], [CustomAttribute2])'
//! ```

use std::collections::BTreeSet;

use exo_writeback_expr::Expr;

use crate::drift::DriftSetting;
use crate::mailbox::{Mailbox, suggest_property};
use crate::mapping::{Condition, Mapping, MappingKind, MappingOrigin, ValuePolicy, WhenEmpty};
use crate::matching::MatchRule;
use crate::profile::{BuiltinExpressionError, Profile};
use crate::scope::{CompiledClause, CompiledFilter, ScopeOperator};
use crate::target_policy::{Admission, Refusal, Sensitive, admit_custom_target, never_written};

pub use crate::target_policy::{DENY_LIST, is_denied};
pub use plan::WritebackPlanSettings;

mod plan;

fn default_profiles() -> Vec<Profile> {
    vec![Profile::CloudManaged]
}
fn default_true() -> bool {
    true
}
fn default_preserve_prefixes() -> Vec<String> {
    vec!["X500".to_string()]
}
fn default_threshold() -> u32 {
    500
}
fn default_match_rules() -> Vec<MatchRule> {
    MatchRule::DEFAULT.to_vec()
}

/// The `[writeback]` section as written in the configuration file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WritebackSettings {
    /// Enabled profiles; default `["cloud-managed"]`.
    #[serde(default = "default_profiles")]
    pub profiles: Vec<Profile>,
    /// Write msExchHideFromAddressLists (cloud-managed); default true.
    #[serde(default = "default_true")]
    pub hide_from_address_lists: bool,
    /// AD attributes of the enabled profiles not to write.
    #[serde(default)]
    pub disabled_attributes: Vec<String>,
    /// proxyAddresses prefixes whose AD-only values survive; default `["X500"]`.
    #[serde(default = "default_preserve_prefixes")]
    pub preserve_prefixes: Vec<String>,
    /// A cycle removing values from more objects than this is held; default 500.
    #[serde(default = "default_threshold")]
    pub threshold: u32,
    /// Matching rules: the anchor rules (`mS-DS-ConsistencyGuid`, `objectGUID`) in this
    /// order, then `msDS-ExternalDirectoryObjectId`, which may not come before an anchor rule
    /// (see [`crate::matching`]).
    #[serde(default = "default_match_rules")]
    pub match_rules: Vec<MatchRule>,
    /// Scoping filters on source properties (OR-ed; each filter's clauses AND-ed).
    #[serde(default)]
    pub scoping_filters: Vec<ScopingFilterSettings>,
    /// Base DNs; objects outside every one are skipped `OutsideContainerScope`. Empty: all.
    #[serde(default)]
    pub container_scope: Vec<String>,
    /// Custom mappings.
    #[serde(default)]
    pub mappings: Vec<MappingSettings>,
    /// Custom mapping targets beyond [`crate::target_policy::safe_custom_targets`], named one
    /// by one (never a security-sensitive attribute).
    #[serde(default)]
    pub allow_extra_targets: Vec<String>,
    /// An on-premises edit of a written attribute: `"report"` (default) or `"correct"`, for
    /// every profile or per profile (`crate::drift`).
    #[serde(default)]
    pub drift: DriftSetting,
    /// Write a group's `member` from its cloud membership (the `cloud-managed-groups`
    /// profile; `crate::membership`): members resolved through the joins and match rules,
    /// incremental adds and deletes. Default false: `member` is never written.
    #[serde(default)]
    pub write_membership: bool,
    /// Groups and contacts whose record does not carry `IsExchangeCloudManaged` (no public
    /// capture shows it on them) count as cloud-managed when directory-synced: the tenant's
    /// explicit statement that their source of authority is the cloud. Default false: such a
    /// record is `NotInScope`.
    #[serde(default)]
    pub assume_cloud_managed_recipients: bool,
}

impl Default for WritebackSettings {
    fn default() -> Self {
        WritebackSettings {
            profiles: default_profiles(),
            hide_from_address_lists: true,
            disabled_attributes: Vec::new(),
            preserve_prefixes: default_preserve_prefixes(),
            threshold: default_threshold(),
            match_rules: default_match_rules(),
            scoping_filters: Vec::new(),
            container_scope: Vec::new(),
            mappings: Vec::new(),
            allow_extra_targets: Vec::new(),
            drift: DriftSetting::default(),
            write_membership: false,
            assume_cloud_managed_recipients: false,
        }
    }
}

/// One scoping filter: all clauses must hold.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopingFilterSettings {
    pub clauses: Vec<ScopingClauseSettings>,
}

/// One clause: `property operator value`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopingClauseSettings {
    /// A Get-Mailbox property name.
    pub property: String,
    pub operator: ScopeOperator,
    /// Required by every operator except IS TRUE / IS FALSE / IS NULL / IS NOT NULL.
    #[serde(default)]
    pub value: Option<String>,
}

/// A custom mapping: `target` and exactly one of `source`, `constant`, `expression`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSettings {
    pub target: String,
    /// Direct: a Get-Mailbox property.
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub constant: Option<String>,
    #[serde(default)]
    pub expression: Option<String>,
    /// Whether the target is multi-valued (display only; the AD schema decides).
    #[serde(default)]
    pub multi_valued: bool,
    /// An empty value leaves the AD attribute alone instead of clearing it.
    #[serde(default)]
    pub empty_leaves_alone: bool,
}

/// A `[writeback]` section that cannot be used. Each variant names the entry to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "writeback.profiles is empty: enable \"cloud-managed\", \"hybrid\", \"cloud-managed-groups\" or \"cloud-managed-contacts\""
    )]
    NoProfiles,
    #[error(
        "writeback.write_membership = true writes the members of groups, but the profile \"cloud-managed-groups\" is not enabled: add it to writeback.profiles, or remove write_membership"
    )]
    MembershipWithoutGroups,
    #[error(
        "writeback.mappings[{index}]: {target} is never written by a custom mapping: {why} (docs/writeback-targets.md)"
    )]
    NeverWritten {
        index: usize,
        target: String,
        why: Sensitive,
    },
    #[error(
        "writeback.mappings[{index}]: {target} is not on the list of attributes safe to fill from Exchange Online \
         (extensionAttribute1-15, msExchExtensionCustomAttribute1-5 and the Exchange attributes of the profiles; \
         docs/writeback-targets.md). Anyone who can edit the mapped Exchange Online values would control it. \
         If that is acceptable, opt in by name: [writeback] allow_extra_targets = [\"{target}\"]"
    )]
    NotAllowListed { index: usize, target: String },
    #[error("writeback.allow_extra_targets: {target} can never be opted in: {why}")]
    NeverOptIn { target: String, why: Sensitive },
    #[error(
        "writeback.allow_extra_targets: {target} is not the target of any custom mapping{hint}"
    )]
    UnusedOptIn { target: String, hint: String },
    #[error(
        "writeback.disabled_attributes: {attribute} is not written by any profile (known: {known})"
    )]
    UnknownDisabledAttribute { attribute: String, known: String },
    #[error("writeback.mappings[{index}] (target {target}): {problem}")]
    InvalidMapping {
        index: usize,
        target: String,
        problem: String,
    },
    #[error(
        "writeback.mappings[{index}] (target {target}): expression error at position {offset}: {message}\n  {expression}\n  {caret}"
    )]
    Expression {
        index: usize,
        target: String,
        expression: String,
        message: String,
        offset: usize,
        caret: String,
    },
    #[error("{context}: unknown Get-Mailbox property {property}{hint}")]
    UnknownSourceProperty {
        context: String,
        property: String,
        /// ` (did you mean …?)` or empty.
        hint: String,
    },
    #[error("writeback.scoping_filters[{filter}].clauses[{clause}]: {problem}")]
    InvalidClause {
        filter: usize,
        clause: usize,
        problem: String,
    },
    #[error(
        "writeback.preserve_prefixes: {prefix:?} is not a proxy address prefix (letters and digits, e.g. \"X500\")"
    )]
    InvalidPrefix { prefix: String },
    #[error("writeback.match_rules is empty: list at least one rule")]
    NoMatchRules,
    #[error("writeback.match_rules: {problem}")]
    MatchRuleOrder { problem: String },
    /// Every malformed DN, each with its own message.
    #[error("writeback.container_scope: {}", .problems.join("; "))]
    InvalidContainers { problems: Vec<String> },
    #[error("writeback.drift: {problem} (\"report\" or \"correct\", or one per profile)")]
    Drift { problem: String },
    #[error(transparent)]
    Builtin(#[from] BuiltinExpressionError),
}

fn known_property(name: &str) -> bool {
    Mailbox::default().property(name).is_some()
}

fn unknown_property(context: String, property: &str) -> SettingsError {
    SettingsError::UnknownSourceProperty {
        context,
        hint: suggest_property(property)
            .map(|s| format!(" (did you mean {s}?)"))
            .unwrap_or_default(),
        property: property.to_string(),
    }
}

fn valid_attribute_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn caret_line(offset: usize, text: &str) -> String {
    let col = text.char_indices().take_while(|(i, _)| *i < offset).count();
    format!("{}^", " ".repeat(col))
}

impl WritebackSettings {
    /// Validate and derive the planner's settings.
    pub fn resolve(&self) -> Result<WritebackPlanSettings, SettingsError> {
        if self.profiles.is_empty() {
            return Err(SettingsError::NoProfiles);
        }
        let profiles: BTreeSet<Profile> = self.profiles.iter().copied().collect();
        if self.write_membership && !profiles.contains(&Profile::CloudManagedGroups) {
            return Err(SettingsError::MembershipWithoutGroups);
        }

        // disabled attributes must name something a profile writes
        let all_profile_targets: Vec<String> = Profile::ALL
            .iter()
            .flat_map(|p| p.target_attributes().iter().map(|a| a.to_string()))
            .collect();
        for attribute in &self.disabled_attributes {
            if !all_profile_targets
                .iter()
                .any(|t| t.eq_ignore_ascii_case(attribute))
            {
                let known: BTreeSet<&str> =
                    all_profile_targets.iter().map(String::as_str).collect();
                return Err(SettingsError::UnknownDisabledAttribute {
                    attribute: attribute.clone(),
                    known: known.into_iter().collect::<Vec<_>>().join(", "),
                });
            }
        }
        let disabled = |target: &str| {
            self.disabled_attributes
                .iter()
                .any(|d| d.eq_ignore_ascii_case(target))
                || (!self.hide_from_address_lists
                    && target.eq_ignore_ascii_case("msExchHideFromAddressLists"))
        };

        // opt-ins: never a security-sensitive attribute
        for target in &self.allow_extra_targets {
            if let Some(why) = never_written(target) {
                return Err(SettingsError::NeverOptIn {
                    target: target.clone(),
                    why,
                });
            }
        }

        for target in &self.allow_extra_targets {
            if !self
                .mappings
                .iter()
                .any(|m| m.target.eq_ignore_ascii_case(target))
            {
                let targets = self.mappings.iter().map(|m| m.target.as_str());
                return Err(SettingsError::UnusedOptIn {
                    target: target.clone(),
                    hint: exo_writeback_expr::closest(target, targets)
                        .map(|s| format!(" (did you mean {s}?)"))
                        .unwrap_or_default(),
                });
            }
        }

        // custom mappings
        let mut custom = Vec::new();
        let mut extra_targets = Vec::new();
        let mut seen_targets = BTreeSet::new();
        for (index, m) in self.mappings.iter().enumerate() {
            let invalid = |problem: String| SettingsError::InvalidMapping {
                index,
                target: m.target.clone(),
                problem,
            };
            if !valid_attribute_name(&m.target) {
                return Err(invalid("target is not an LDAP attribute name".into()));
            }
            match admit_custom_target(&m.target, &self.allow_extra_targets) {
                Ok(Admission::Safe) => {}
                Ok(Admission::OptedIn) => extra_targets.push(m.target.clone()),
                Err(Refusal::Never(why)) => {
                    return Err(SettingsError::NeverWritten {
                        index,
                        target: m.target.clone(),
                        why,
                    });
                }
                Err(Refusal::NotAllowListed) => {
                    return Err(SettingsError::NotAllowListed {
                        index,
                        target: m.target.clone(),
                    });
                }
            }
            if !seen_targets.insert(m.target.to_ascii_lowercase()) {
                return Err(invalid("another custom mapping has the same target".into()));
            }
            let kind = match (&m.source, &m.constant, &m.expression) {
                (Some(source), None, None) => {
                    if !known_property(source) {
                        return Err(unknown_property(
                            format!("writeback.mappings[{index}] (target {})", m.target),
                            source,
                        ));
                    }
                    MappingKind::Direct(source.clone())
                }
                (None, Some(constant), None) => MappingKind::Constant(constant.clone()),
                (None, None, Some(text)) => {
                    let expr = Expr::parse(text).map_err(|e| SettingsError::Expression {
                        index,
                        target: m.target.clone(),
                        expression: text.clone(),
                        caret: caret_line(e.offset, text),
                        message: e.message,
                        offset: e.offset,
                    })?;
                    for property in expr.attributes() {
                        if !known_property(&property) {
                            return Err(unknown_property(
                                format!(
                                    "writeback.mappings[{index}] (target {}) expression",
                                    m.target
                                ),
                                &property,
                            ));
                        }
                    }
                    MappingKind::Expression(expr)
                }
                _ => {
                    return Err(invalid(
                        "give exactly one of `source`, `constant` or `expression`".into(),
                    ));
                }
            };
            if disabled(&m.target) {
                continue;
            }
            custom.push(Mapping {
                target: m.target.clone(),
                kind,
                multi_valued: m.multi_valued,
                when_empty: if m.empty_leaves_alone {
                    WhenEmpty::LeaveAlone
                } else {
                    WhenEmpty::Clear
                },
                policy: ValuePolicy::Authoritative,
                condition: Condition::Always,
                origin: MappingOrigin::Custom,
            });
        }

        // profile rows, minus disabled and overridden ones, then custom rows (custom mappings
        // are the mailboxes': they override a mailbox profile's rows, never a group's or
        // contact's, which they do not apply to)
        let mut mappings = Vec::new();
        for profile in &profiles {
            for m in profile.mappings()? {
                let overridden = profile.kind() == crate::mailbox::RecipientKind::Mailbox
                    && custom
                        .iter()
                        .any(|c: &Mapping| c.target.eq_ignore_ascii_case(&m.target));
                if !disabled(&m.target) && !overridden {
                    mappings.push(m);
                }
            }
        }
        mappings.extend(custom);

        for prefix in &self.preserve_prefixes {
            if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(SettingsError::InvalidPrefix {
                    prefix: prefix.clone(),
                });
            }
        }

        if self.match_rules.is_empty() {
            return Err(SettingsError::NoMatchRules);
        }
        let mut match_rules = Vec::new();
        for r in &self.match_rules {
            if !match_rules.contains(r) {
                match_rules.push(*r);
            }
        }
        crate::matching::check_rule_order(&match_rules)
            .map_err(|problem| SettingsError::MatchRuleOrder { problem })?;

        let mut scoping_filters = Vec::new();
        for (fi, filter) in self.scoping_filters.iter().enumerate() {
            let mut clauses = Vec::new();
            if filter.clauses.is_empty() {
                return Err(SettingsError::InvalidClause {
                    filter: fi,
                    clause: 0,
                    problem: "a filter needs at least one clause".into(),
                });
            }
            for (ci, c) in filter.clauses.iter().enumerate() {
                let problem = |problem: String| SettingsError::InvalidClause {
                    filter: fi,
                    clause: ci,
                    problem,
                };
                if !known_property(&c.property) {
                    return Err(unknown_property(
                        format!("writeback.scoping_filters[{fi}].clauses[{ci}]"),
                        &c.property,
                    ));
                }
                let compiled = CompiledClause::new(&c.property, c.operator, c.value.as_deref())
                    .map_err(problem)?;
                clauses.push(compiled);
            }
            scoping_filters.push(CompiledFilter { clauses });
        }

        let problems: Vec<String> = self
            .container_scope
            .iter()
            .filter_map(|dn| match crate::ldap_text::Dn::parse(dn) {
                _ if dn.trim().is_empty() => Some("an empty DN".to_string()),
                Err(e) => Some(e.to_string()),
                Ok(_) => None,
            })
            .collect();
        if !problems.is_empty() {
            return Err(SettingsError::InvalidContainers { problems });
        }

        Ok(WritebackPlanSettings {
            profiles,
            mappings,
            preserve_prefixes: self.preserve_prefixes.clone(),
            threshold: self.threshold,
            match_rules,
            scoping_filters,
            container_scope: self.container_scope.clone(),
            extra_targets,
            drift: self
                .drift
                .resolve()
                .map_err(|problem| SettingsError::Drift { problem })?,
            write_membership: self.write_membership,
            assume_cloud_managed_recipients: self.assume_cloud_managed_recipients,
        })
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
