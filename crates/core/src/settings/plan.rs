//! [`WritebackPlanSettings`]: the validated settings the planner works with, and what they
//! derive (the mapping table shown to users, the allow-list, the AD attributes to read).

use std::collections::BTreeSet;

use crate::drift::DriftPolicy;
use crate::mapping::Mapping;
use crate::matching::MatchRule;
use crate::profile::Profile;
use crate::scope::CompiledFilter;
use crate::target_policy::is_denied;

use super::WritebackSettings;

/// The validated, typed settings the planner works with. Build with
/// [`WritebackSettings::resolve`]. Fields are public so tests and tools can inspect them; the
/// planner re-checks the deny-list and allow-list anyway (defence in depth).
#[derive(Debug, Clone)]
pub struct WritebackPlanSettings {
    pub profiles: BTreeSet<Profile>,
    /// The effective mapping table: enabled profiles' rows minus disabled ones, with custom
    /// mappings overriding profile rows of the same target, in display order.
    pub mappings: Vec<Mapping>,
    pub preserve_prefixes: Vec<String>,
    pub threshold: u32,
    pub match_rules: Vec<MatchRule>,
    pub scoping_filters: Vec<CompiledFilter>,
    pub container_scope: Vec<String>,
    /// The opted-in custom mapping targets (`allow_extra_targets`) that custom mappings
    /// use, as configured: `check` and `status` show them.
    pub extra_targets: Vec<String>,
    /// What each profile does with an on-premises edit of a written attribute.
    pub drift: DriftPolicy,
    /// See [`WritebackSettings::write_membership`].
    pub write_membership: bool,
    /// See [`WritebackSettings::assume_cloud_managed_recipients`].
    pub assume_cloud_managed_recipients: bool,
}

impl Default for WritebackPlanSettings {
    /// The resolved defaults (cloud-managed only).
    fn default() -> Self {
        // The default settings contain no expressions, so resolving cannot fail.
        match WritebackSettings::default().resolve() {
            Ok(s) => s,
            Err(e) => unreachable!("default writeback settings are valid: {e}"),
        }
    }
}

impl WritebackPlanSettings {
    /// The effective mapping table, as `exo-writeback profiles --show` prints it.
    pub fn mapping_table(&self) -> Vec<crate::mapping::MappingRow> {
        self.mappings.iter().map(Into::into).collect()
    }

    /// Whether the attribute may be written: a target of an effective mapping and not on
    /// the deny-list.
    pub fn is_allowed(&self, attribute: &str) -> bool {
        !is_denied(attribute)
            && self
                .mappings
                .iter()
                .any(|m| m.target.eq_ignore_ascii_case(attribute))
    }

    /// The AD attributes the engine must read on a matched object to plan it: every mapped
    /// target (current values), the attributes the match rules compare, and `targetAddress`
    /// (cloud-managed: checked on a recipient-type change). Sorted, unique.
    pub fn required_ad_attributes(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        let names = self
            .mappings
            .iter()
            .map(|m| m.target.clone())
            .chain(self.match_rules.iter().map(|r| r.attribute().to_string()))
            .chain(["objectGUID".to_string()])
            // Checked (never written) when a remote mailbox's recipient type changes.
            .chain(
                self.profiles
                    .contains(&Profile::CloudManaged)
                    .then(|| "targetAddress".to_string()),
            )
            // A group's members, read whole (ranged retrieval) to plan single adds and deletes.
            .chain(
                self.write_membership
                    .then(|| crate::membership::MEMBER_ATTRIBUTE.to_string()),
            )
            // A group or contact is written only on an object of its class.
            .chain(
                self.profiles
                    .iter()
                    .any(|p| p.kind() != crate::mailbox::RecipientKind::Mailbox)
                    .then(|| "objectClass".to_string()),
            );
        for name in names {
            if seen.insert(name.to_ascii_lowercase()) {
                out.push(name);
            }
        }
        // One lower-cased key per name (a key per comparison allocated on every call).
        out.sort_by_cached_key(|a| a.to_ascii_lowercase());
        out
    }
}
