//! Planning (PRODUCT.md §6): from a mailbox and its matched AD object, the minimal LDAP
//! modify that makes AD hold the mapped values — or why nothing may be written.
//!
//! The engine's sequence for one object:
//!
//! 1. [`crate::scope::evaluate_scope`] → [`InScope`] (or skip),
//! 2. [`crate::matching`] → the matched [`DirectoryObject`] (read with
//!    [`WritebackPlanSettings::required_ad_attributes`]),
//!    [`crate::scope::check_container_scope`] on its DN,
//! 3. [`plan_object`] → [`ObjectPlan`] or [`PlanFailure`],
//! 4. for the SMTP addresses the plan adds ([`ObjectPlan::added_smtp_addresses`]), search AD
//!    for other holders and call [`check_address_conflicts`],
//! 5. across the cycle, [`exceeds_threshold`] over the plans; then write each
//!    [`ObjectPlan::modify`] (one LDAP modify per object, permissive-modify control).
//!
//! Planning rules: single-valued attributes are replaced or deleted; multi-valued ones get
//! individual value deletes and adds (never a blind replace), deletes first, so a value
//! differing only in letter case is deleted and re-added in the same modify. Binary values
//! compare byte-wise; Boolean and integer values by meaning (`true` = `TRUE`); text exactly.
//! Every value to be written is checked against the discovered schema first; a violation is
//! a [`PlanFailure::SchemaConstraint`] and nothing is planned for the object (an attribute
//! missing from the schema fails the object only when a value would be written to it). Only attributes
//! of enabled profiles and custom mappings are written; the deny-list is enforced again here.
//! A value's conversion to its attribute's syntax and the schema checks are in `plan/syntax.rs`.

use exo_writeback_expr::EvalContext;

use crate::directory::{AttrChange, AttrValue, DirectoryObject, ModOp, ObjectModify};
use crate::equality::{ad_equal, same_value};
use crate::mailbox::Mailbox;
use crate::mapping::{Desired, Mapping, MappingError, MappingOrigin, ValuePolicy};
use crate::outcome::{OutcomeCode, OutcomeDetail};
use crate::proxy::{self, ProxyAddress};
use crate::recipient_type;
use crate::schema::{AttributeSchema, Schema};
use crate::scope::InScope;
use crate::settings::WritebackPlanSettings;
use crate::target_policy::{Refusal, admit_custom_target, is_denied};

mod syntax;

use syntax::{check_range, schema_error, texts, to_attr_value, value_texts};

/// Everything planning one object needs. `scope` comes from
/// [`crate::scope::evaluate_scope`]; `current` holds at least
/// [`WritebackPlanSettings::required_ad_attributes`].
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub settings: &'a WritebackPlanSettings,
    pub scope: &'a InScope,
    pub mailbox: &'a Mailbox,
    pub current: &'a DirectoryObject,
    pub schema: &'a Schema,
    pub ctx: &'a EvalContext,
    /// Attributes the account may not read (they would look empty): not planned.
    pub unreadable: &'a [String],
}

/// One attribute's change, for logs, preview and the journal (undo restores `old`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyChange {
    pub attribute: String,
    pub old: Vec<AttrValue>,
    pub new: Vec<AttrValue>,
}

impl From<&PropertyChange> for crate::provisioning::ModifiedProperty {
    fn from(c: &PropertyChange) -> Self {
        crate::provisioning::ModifiedProperty {
            attribute: c.attribute.clone(),
            old: c.old.clone(),
            new: c.new.clone(),
        }
    }
}

/// The plan for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPlan {
    pub dn: String,
    /// `None` when the object is already in sync (nothing to write).
    pub modify: Option<ObjectModify>,
    /// Per attribute changed: values before and after.
    pub changes: Vec<PropertyChange>,
    /// The plan removes values from or clears an attribute (counts toward the threshold).
    /// A case-only change (delete + add of the same value) is not a removal.
    pub removes_values: bool,
    /// SMTP addresses (without prefix) the plan adds to proxyAddresses: check them with
    /// [`check_address_conflicts`] before writing.
    pub added_smtp_addresses: Vec<String>,
    /// Other proxy addresses the plan adds to proxyAddresses, whole (`X500:/o=…`, `SIP:…`):
    /// Exchange requires every proxy address to be unique in the organisation, these too.
    pub added_other_proxies: Vec<String>,
    /// What the object's log entry should warn about (a Warning code), written or not: the
    /// `targetAddress` check of a recipient-type change.
    pub warnings: Vec<OutcomeDetail>,
}

impl ObjectPlan {
    pub fn is_in_sync(&self) -> bool {
        self.modify.is_none()
    }

    /// What the duplicate-address guard looks up: the added SMTP addresses (bare), then the
    /// other added proxy addresses (whole, so with a `prefix:`; a bare SMTP address has no
    /// colon).
    pub fn guarded_addresses(&self) -> Vec<String> {
        self.added_smtp_addresses
            .iter()
            .chain(&self.added_other_proxies)
            .cloned()
            .collect()
    }
}

/// Why nothing may be written for an object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanFailure {
    #[error("InvalidProxyAddresses: {reason}")]
    InvalidProxyAddresses { reason: String },
    #[error("SchemaConstraint: {attribute}: {rule}")]
    SchemaConstraint { attribute: String, rule: String },
    #[error("AttributeNotAllowed: {attribute}: {why}")]
    AttributeNotAllowed { attribute: String, why: String },
    #[error("ExpressionError: {attribute}: {message}")]
    Expression { attribute: String, message: String },
    #[error("ProxyAddressConflict: {address} is already held by {other_dn}")]
    ProxyAddressConflict { address: String, other_dn: String },
}

impl PlanFailure {
    pub fn code(&self) -> OutcomeCode {
        match self {
            PlanFailure::InvalidProxyAddresses { .. } => OutcomeCode::InvalidProxyAddresses,
            PlanFailure::SchemaConstraint { .. } => OutcomeCode::SchemaConstraint,
            PlanFailure::AttributeNotAllowed { .. } => OutcomeCode::AttributeNotAllowed,
            PlanFailure::Expression { .. } => OutcomeCode::ExpressionError,
            PlanFailure::ProxyAddressConflict { .. } => OutcomeCode::ProxyAddressConflict,
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

fn mapping_failure(e: MappingError) -> PlanFailure {
    match e {
        MappingError::UnknownProperty { target, property } => PlanFailure::Expression {
            attribute: target,
            message: format!("the mailbox has no property {property}"),
        },
        MappingError::Expression {
            target,
            expression,
            message,
            offset,
        } => PlanFailure::Expression {
            attribute: target,
            message: format!("`{expression}` at position {offset}: {message}"),
        },
    }
}

/// Defence in depth: a mapping may only target an allowed attribute — a profile row its
/// profile's own attributes, a custom mapping the safe list or an opted-in attribute, never
/// a security-sensitive one (`target_policy`).
fn check_allowed(mapping: &Mapping, settings: &WritebackPlanSettings) -> Result<(), PlanFailure> {
    let refuse = |why: String| PlanFailure::AttributeNotAllowed {
        attribute: mapping.target.clone(),
        why,
    };
    if is_denied(&mapping.target) {
        return Err(refuse("on the deny-list; never written".into()));
    }
    match mapping.origin {
        MappingOrigin::Profile(p) => {
            if !p
                .target_attributes()
                .iter()
                .any(|t| t.eq_ignore_ascii_case(&mapping.target))
            {
                return Err(refuse(format!("not an attribute of profile {p}")));
            }
        }
        MappingOrigin::Custom => {
            match admit_custom_target(&mapping.target, &settings.extra_targets) {
                Ok(_) => {}
                Err(Refusal::Never(why)) => {
                    return Err(refuse(format!("never written by a custom mapping: {why}")));
                }
                Err(Refusal::NotAllowListed) => {
                    return Err(refuse(
                        "not on the custom mapping allow-list and not opted in".into(),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The desired values for one target, combining its mappings in order. `None`: leave alone.
fn desired_values(
    input: &PlanInput<'_>,
    attr_schema: &AttributeSchema,
    mappings: &[&Mapping],
    current: &[AttrValue],
) -> Result<Option<Vec<AttrValue>>, PlanFailure> {
    let attribute = attr_schema.ldap_display_name.as_str();
    let mut desired: Option<Vec<AttrValue>> = None;
    for mapping in mappings {
        let values = match mapping
            .evaluate(input.mailbox, input.ctx)
            .map_err(mapping_failure)?
        {
            Desired::LeaveAlone => continue,
            Desired::Values(v) => v,
        };
        let base = desired.as_deref().unwrap_or(current);
        desired = Some(match mapping.policy {
            ValuePolicy::Authoritative => values
                .iter()
                .map(|v| to_attr_value(attr_schema, v))
                .collect::<Result<_, _>>()?,
            ValuePolicy::ProxyAddresses => {
                let cloud = value_texts(attribute, &values)?;
                proxy::cloud_managed_policy(
                    &cloud,
                    &texts(attribute, base)?,
                    &input.settings.preserve_prefixes,
                )
                .map_err(|e| PlanFailure::InvalidProxyAddresses {
                    reason: e.to_string(),
                })?
                .into_iter()
                .map(AttrValue::Text)
                .collect()
            }
            ValuePolicy::AddIfMissing => {
                let mut out = texts(attribute, base)?;
                for v in value_texts(attribute, &values)? {
                    out = proxy::add_if_missing(&out, &v);
                }
                out.into_iter().map(AttrValue::Text).collect()
            }
            ValuePolicy::RemoteRecipientTypeBits => recipient_type::remote_recipient_type_values(
                base,
                &input.mailbox.recipient_type_details,
            ),
        });
    }
    Ok(desired)
}

/// Plan one object. See the module documentation for the rules.
pub fn plan_object(input: &PlanInput<'_>) -> Result<ObjectPlan, PlanFailure> {
    // The mappings that apply, grouped by target in table order.
    let mut targets: Vec<(String, Vec<&Mapping>)> = Vec::new();
    for mapping in &input.settings.mappings {
        let applies = match mapping.origin {
            MappingOrigin::Profile(p) => input.scope.includes(p),
            // Custom mappings are written for mailboxes: a group or contact gets its
            // profile's rows only.
            MappingOrigin::Custom => input.scope.is_mailbox(),
        };
        let hidden = |u: &String| u.eq_ignore_ascii_case(&mapping.target);
        if !applies || input.unreadable.iter().any(hidden) {
            continue;
        }
        check_allowed(mapping, input.settings)?;
        match targets
            .iter_mut()
            .find(|(t, _)| t.eq_ignore_ascii_case(&mapping.target))
        {
            Some((_, ms)) => ms.push(mapping),
            None => targets.push((mapping.target.clone(), vec![mapping])),
        }
    }

    let mut changes = Vec::new();
    let mut attr_changes = Vec::new();
    let mut removes_values = false;
    let mut added_smtp_addresses = Vec::new();
    let mut added_other_proxies = Vec::new();

    for (target, mappings) in &targets {
        let Some(attr_schema) = input.schema.get(target) else {
            // A missing attribute only matters when something would be written to it.
            let mut leave_alone = true;
            for m in mappings {
                let desired = m
                    .evaluate(input.mailbox, input.ctx)
                    .map_err(mapping_failure)?;
                leave_alone &= desired == Desired::LeaveAlone;
            }
            if leave_alone {
                continue;
            }
            return Err(schema_error(
                target,
                "attribute not in the AD schema (run Exchange schema preparation)",
            ));
        };
        let name = attr_schema.ldap_display_name.as_str();
        let syntax = &attr_schema.syntax;
        let current = input.current.attributes.get(name);
        let Some(mut desired) = desired_values(input, attr_schema, mappings, current)? else {
            continue;
        };

        // Values AD treats as equal collapse to the first (AD rejects the second).
        let mut unique: Vec<AttrValue> = Vec::new();
        for v in desired.drain(..) {
            if !unique.iter().any(|u| ad_equal(syntax, u, &v)) {
                unique.push(v);
            }
        }
        let desired = unique;

        if attr_schema.single_valued && desired.len() > 1 {
            return Err(schema_error(
                name,
                format!("single-valued, but {} values are mapped", desired.len()),
            ));
        }

        if attr_schema.single_valued {
            let in_sync = match (current, desired.as_slice()) {
                ([], []) => true,
                ([c], [d]) => same_value(syntax, c, d),
                _ => false,
            };
            if in_sync {
                continue;
            }
            if let [d] = desired.as_slice() {
                check_range(attr_schema, d)?;
                attr_changes.push(AttrChange {
                    op: ModOp::Replace,
                    attribute: name.to_string(),
                    values: desired.clone(),
                });
            } else {
                removes_values = true;
                attr_changes.push(AttrChange {
                    op: ModOp::Delete,
                    attribute: name.to_string(),
                    values: Vec::new(),
                });
            }
        } else {
            let deletes: Vec<AttrValue> = current
                .iter()
                .filter(|c| !desired.iter().any(|d| d.as_bytes() == c.as_bytes()))
                .cloned()
                .collect();
            let adds: Vec<AttrValue> = desired
                .iter()
                .filter(|d| !current.iter().any(|c| c.as_bytes() == d.as_bytes()))
                .cloned()
                .collect();
            if deletes.is_empty() && adds.is_empty() {
                continue;
            }
            for a in &adds {
                check_range(attr_schema, a)?;
            }
            if deletes
                .iter()
                .any(|d| !adds.iter().any(|a| ad_equal(syntax, a, d)))
            {
                removes_values = true;
            }
            if name.eq_ignore_ascii_case("proxyAddresses") {
                for a in &adds {
                    match a.as_text().and_then(|t| ProxyAddress::parse(t).ok()) {
                        Some(p) if p.is_smtp() => added_smtp_addresses.push(p.address),
                        Some(p) => added_other_proxies.push(format!("{}:{}", p.prefix, p.address)),
                        None => {}
                    }
                }
            }
            if !deletes.is_empty() {
                attr_changes.push(AttrChange {
                    op: ModOp::Delete,
                    attribute: name.to_string(),
                    values: deletes,
                });
            }
            if !adds.is_empty() {
                attr_changes.push(AttrChange {
                    op: ModOp::Add,
                    attribute: name.to_string(),
                    values: adds,
                });
            }
        }
        changes.push(PropertyChange {
            attribute: name.to_string(),
            old: current.to_vec(),
            new: desired,
        });
    }

    let warnings = recipient_type::type_change_warning(&changes, input.current, input.mailbox)
        .into_iter()
        .collect();
    Ok(ObjectPlan {
        dn: input.current.dn.clone(),
        modify: (!attr_changes.is_empty()).then(|| ObjectModify {
            dn: input.current.dn.clone(),
            changes: attr_changes,
        }),
        changes,
        removes_values,
        added_smtp_addresses,
        added_other_proxies,
        warnings,
    })
}

fn same_dn(a: &str, b: &str) -> bool {
    crate::ldap_text::dn_eq(a, b) || a.eq_ignore_ascii_case(b)
}

/// The duplicate-address guard. `holders` are `(address, dn)` pairs of AD objects found
/// holding the plan's added addresses (address bare or as `smtp:`/`SMTP:` proxy value) —
/// the engine finds them with `(proxyAddresses=smtp:<address>)` per address (escaped; AD
/// compares proxyAddresses case-insensitively, so this also finds `SMTP:` values);
/// the object itself (`own_dn`) is ignored. The first address held by another object fails
/// the plan with `ProxyAddressConflict` naming that object.
pub fn check_address_conflicts(
    plan: &ObjectPlan,
    holders: &[(String, String)],
    own_dn: &str,
) -> Result<(), PlanFailure> {
    let bare = |a: &str| match ProxyAddress::parse(a) {
        Ok(p) if p.is_smtp() => p.address.to_lowercase(),
        _ => a.to_lowercase(),
    };
    for address in &plan.added_smtp_addresses {
        let wanted = address.to_lowercase();
        if let Some((_, dn)) = holders
            .iter()
            .find(|(a, dn)| bare(a) == wanted && !same_dn(dn, own_dn))
        {
            return Err(PlanFailure::ProxyAddressConflict {
                address: address.clone(),
                other_dn: dn.clone(),
            });
        }
    }
    for value in &plan.added_other_proxies {
        if let Some((_, dn)) = holders
            .iter()
            .find(|(a, dn)| a.eq_ignore_ascii_case(value) && !same_dn(dn, own_dn))
        {
            return Err(PlanFailure::ProxyAddressConflict {
                address: value.clone(),
                other_dn: dn.clone(),
            });
        }
    }
    Ok(())
}

/// How much one plan counts toward the change threshold: 1 for an object that loses values,
/// and for a group's membership one per `member` value deleted — a mass removal from one large
/// group is as much a mass change as the same number of objects losing a value.
pub fn removal_count(plan: &ObjectPlan) -> usize {
    let members: usize = plan
        .modify
        .iter()
        .flat_map(|m| &m.changes)
        .filter(|c| {
            c.op == ModOp::Delete
                && c.attribute
                    .eq_ignore_ascii_case(crate::membership::MEMBER_ATTRIBUTE)
        })
        .map(|c| c.values.len())
        .sum();
    members.max(usize::from(plan.removes_values))
}

/// How many removals the plans make ([`removal_count`] summed).
pub fn count_removing<'a>(plans: impl IntoIterator<Item = &'a ObjectPlan>) -> usize {
    plans.into_iter().map(removal_count).sum()
}

/// Whether a cycle's plans must be held (`ThresholdExceeded`): more than `threshold` removals
/// (objects losing values, members removed from groups).
pub fn exceeds_threshold<'a>(
    plans: impl IntoIterator<Item = &'a ObjectPlan>,
    threshold: u32,
) -> bool {
    count_removing(plans) > threshold as usize
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
