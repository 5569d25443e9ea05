//! A group's membership (`write_membership = true`, issue 17 item 3): the group's cloud
//! members read from the source, each resolved to an AD object through the stored joins and
//! the match key (the rules and their reasons: `core::membership`), and the incremental change
//! of `member` added to the group's plan — so the threshold, the journal, undo, preview and the
//! logs treat it as any other attribute change.

use std::collections::HashSet;

use exo_writeback_core::directory::{AttrValue, DirectoryObject, ObjectModify};
use exo_writeback_core::mail_recipient::GroupMember;
use exo_writeback_core::mailbox::{Mailbox, RecipientKind};
use exo_writeback_core::matching::MatchRule;
use exo_writeback_core::matching::recipient::has_class;
use exo_writeback_core::membership::{
    MEMBER_ATTRIBUTE, MEMBER_WITNESS_ATTRIBUTES, MemberEvidence, MembershipPlan, Resolution,
    dn_key, member_anchor, member_key, member_kind, plan_membership, resolve_member,
};
use exo_writeback_core::outcome::{OutcomeCode, OutcomeDetail};
use exo_writeback_core::plan::{ObjectPlan, PropertyChange};
use exo_writeback_store::JoinStore;

use crate::engine::Engine;
use crate::match_index::{Candidates, MatchIndex};
use crate::ports::{Directory, MailboxSource};
use crate::record::ldap_failure;

/// How many joins are read per request when the agent gathers the objects it can account for.
const JOIN_PAGE: usize = 1000;

impl<S: MailboxSource, D: Directory, St: JoinStore> Engine<S, D, St> {
    /// The membership step of a group's evaluation: what the matching step says of it
    /// (nothing for a mailbox, a contact, or with `write_membership` off), or why the group
    /// fails. A `member` the account cannot read looks empty, so nothing is planned then.
    pub(crate) async fn membership_step(
        &self,
        mailbox: &Mailbox,
        cloud_id: &str,
        current: &DirectoryObject,
        plan: &mut ObjectPlan,
        unreadable: &[String],
        index: Option<&MatchIndex>,
    ) -> Result<String, OutcomeDetail> {
        if !self.settings.write_membership || !is_group(mailbox) {
            return Ok(String::new());
        }
        if unreadable
            .iter()
            .any(|a| a.eq_ignore_ascii_case(MEMBER_ATTRIBUTE))
        {
            return Ok(
                "; member is not readable by the agent's account: the membership is not \
                 written (`exo-writeback check` names the grant)"
                    .to_string(),
            );
        }
        let group = mailbox
            .external_directory_object_id
            .as_deref()
            .or(mailbox.primary_smtp_address.as_deref())
            .unwrap_or(cloud_id);
        let m = self.add_membership(group, current, plan, index).await?;
        Ok(membership_note(&m))
    }

    /// Adds the membership change of `group` (its ExternalDirectoryObjectId `group_id`, its AD
    /// object `current`, read with `member`) to `plan`. Nothing is added when the members cannot
    /// be read or a directory lookup fails: the group fails as a whole (an incomplete list would
    /// delete members that are still there). `index`: the cycle's match index, if any.
    pub(crate) async fn add_membership(
        &self,
        group_id: &str,
        current: &DirectoryObject,
        plan: &mut ObjectPlan,
        index: Option<&MatchIndex>,
    ) -> Result<MembershipPlan, OutcomeDetail> {
        let members = self.source.group_members(group_id).await.map_err(|e| {
            OutcomeDetail::new(
                OutcomeCode::ServiceReportedErrors,
                format!(
                    "the members of the group could not be read whole ({e}); its membership is \
                     not written this cycle"
                ),
            )
        })?;
        let held = current.attributes.get(MEMBER_ATTRIBUTE);
        let held_keys: HashSet<String> = held
            .iter()
            .filter_map(AttrValue::as_text)
            .map(dn_key)
            .collect();
        let mut resolutions = Vec::with_capacity(members.len());
        for member in &members {
            let evidence = self.member_evidence(member, &held_keys, index).await?;
            resolutions.push(resolve_member(member, &evidence));
        }
        let wanted: HashSet<String> = resolutions
            .iter()
            .filter_map(|r| match r {
                Resolution::Resolved { dn, .. } => Some(dn_key(dn)),
                Resolution::Unresolved(_) => None,
            })
            .collect();
        // The objects a stored join names, read only when a value could be deleted.
        let candidates = held
            .iter()
            .filter_map(AttrValue::as_text)
            .any(|v| !wanted.contains(&dn_key(v)));
        let joined = if candidates {
            self.joined_dns().map_err(|e| {
                OutcomeDetail::new(
                    OutcomeCode::StateError,
                    format!("the joins could not be read to decide which members to remove: {e}"),
                )
            })?
        } else {
            HashSet::new()
        };
        let membership =
            plan_membership(held, &resolutions, &|dn: &str| joined.contains(&dn_key(dn)));
        for u in &membership.unresolved {
            tracing::warn!(group = %current.dn, "{}", u.reason());
        }
        // The entry's code when the group is written: its members not written, named.
        plan.warnings.extend(membership.warning());
        if membership.is_empty() {
            return Ok(membership);
        }
        let mut new: Vec<AttrValue> = held
            .iter()
            .filter(|v| {
                !v.as_text()
                    .is_some_and(|t| membership.delete.iter().any(|d| d == t))
            })
            .cloned()
            .collect();
        new.extend(membership.add.iter().cloned().map(AttrValue::Text));
        plan.changes.push(PropertyChange {
            attribute: MEMBER_ATTRIBUTE.to_string(),
            old: held.to_vec(),
            new,
        });
        plan.removes_values |= !membership.delete.is_empty();
        let modify = plan.modify.get_or_insert_with(|| ObjectModify {
            dn: current.dn.clone(),
            changes: Vec::new(),
        });
        modify.changes.extend(membership.changes());
        Ok(membership)
    }

    /// What the directory and the joins tell about one member: its join's object (by the DN
    /// the join stored when the group holds it, else read by objectGUID: moved or renamed), else
    /// for a group or contact the holders of its address, else the holders of its key.
    async fn member_evidence(
        &self,
        member: &GroupMember,
        held: &HashSet<String>,
        index: Option<&MatchIndex>,
    ) -> Result<MemberEvidence, OutcomeDetail> {
        let mut evidence = MemberEvidence::default();
        let id = member
            .external_directory_object_id
            .as_deref()
            .map(str::trim)
            .filter(|i| !i.is_empty());
        let join = match id {
            Some(id) => self.store.join(id).map_err(|e| {
                OutcomeDetail::new(
                    OutcomeCode::StateError,
                    format!("the join of member {id} could not be read: {e}"),
                )
            })?,
            None => None,
        };
        if let Some(join) = join {
            if held.contains(&dn_key(&join.dn)) {
                evidence.joined_dn = Some(join.dn);
                return Ok(evidence);
            }
            if let Some(obj) = self
                .directory
                .read_by_guid(&join.object_guid, &[])
                .await
                .map_err(|e| ldap_failure(&e))?
            {
                evidence.joined_dn = Some(obj.dn);
                return Ok(evidence);
            }
        }
        if let Some(address) = member_anchor(member) {
            let kind = member_kind(member);
            evidence.address_holders = self
                .directory
                .find_by_attribute(
                    "proxyAddresses",
                    &AttrValue::Text(address),
                    &["objectClass".to_string()],
                )
                .await
                .map_err(|e| ldap_failure(&e))?;
            // Its address decides (one object of its class), or refuses (several).
            if evidence
                .address_holders
                .iter()
                .filter(|o| has_class(o, kind))
                .count()
                > 0
            {
                return Ok(evidence);
            }
        }
        let key_rule = self
            .settings
            .match_rules
            .contains(&MatchRule::ExternalDirectoryObjectId);
        let Some(key) = member_key(member).filter(|_| key_rule) else {
            return Ok(evidence);
        };
        let rule = MatchRule::ExternalDirectoryObjectId;
        let value = AttrValue::Text(key);
        let mut attrs: Vec<String> = MEMBER_WITNESS_ATTRIBUTES
            .iter()
            .map(|a| a.to_string())
            .collect();
        attrs.push(rule.attribute().to_string());
        // An initial or full cycle's index answers without a search per member; a candidate
        // is read again and must still hold the key (`match_index`).
        match index.and_then(|i| i.candidates(rule, &value)) {
            Some(Candidates::None) => return Ok(evidence),
            Some(Candidates::One(guid)) => {
                let found = self
                    .directory
                    .read_by_guid(&guid, &attrs)
                    .await
                    .map_err(|e| ldap_failure(&e))?;
                if let Some(obj) = found
                    && MatchIndex::still_holds(rule, &value, &obj)
                {
                    evidence.key_holders = vec![obj];
                    return Ok(evidence);
                }
            }
            Some(Candidates::Several) | None => {}
        }
        evidence.key_holders = self
            .directory
            .find_by_attribute(rule.attribute(), &value, &attrs)
            .await
            .map_err(|e| ldap_failure(&e))?;
        Ok(evidence)
    }

    /// The DNs (as [`dn_key`]s) of every object a stored join names.
    fn joined_dns(&self) -> Result<HashSet<String>, exo_writeback_store::StoreError> {
        let mut out = HashSet::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.joins(after.as_deref(), JOIN_PAGE)?;
            let Some(last) = page.last() else {
                return Ok(out);
            };
            after = Some(last.cloud_id.clone());
            let full = page.len() == JOIN_PAGE;
            out.extend(page.iter().map(|j| dn_key(&j.dn)));
            if !full {
                return Ok(out);
            }
        }
    }
}

/// A distribution group or mail-enabled security group.
fn is_group(mailbox: &Mailbox) -> bool {
    mailbox.kind == RecipientKind::Group
}

/// What the matching step says about a group's members: how many resolved, each one that did
/// not (and why), the on-premises members kept.
fn membership_note(m: &MembershipPlan) -> String {
    let mut out = format!(
        "; members: {} to add, {} to remove",
        m.add.len(),
        m.delete.len()
    );
    if !m.unresolved.is_empty() {
        out.push_str(&format!(
            "; {} not resolved, not written: {}",
            m.unresolved.len(),
            m.unresolved_report()
        ));
    }
    if !m.kept.is_empty() {
        out.push_str(&format!(
            "; {} member(s) not in Exchange Online kept (no stored join names them: on-premises \
             objects are never removed)",
            m.kept.len()
        ));
    }
    out
}
