//! Finding the AD object of a mailbox: the stored join (checked against the immutable anchor),
//! else the rules of `core::matching` — each lookup answered by the cycle's match index or a
//! search.

use exo_writeback_core::directory::DirectoryObject;
use exo_writeback_core::guid::object_guid_bytes;
use exo_writeback_core::mailbox::{Mailbox, RecipientKind};
use exo_writeback_core::matching::{
    Lookup, MatchDecision, MatchLookups, MatchRule, MatchStep, RuleResult, corroborate_key_match,
    match_lookups, next_match_step,
};
use exo_writeback_core::outcome::{OutcomeCode, OutcomeDetail};
use exo_writeback_core::provisioning::{Join, JoinUpdate};
use exo_writeback_store::JoinStore;
use jiff::Timestamp;

use crate::bulk::{Bulk, candidate_attributes};
use crate::engine::Engine;
use crate::match_index::{Candidates, MatchIndex};
use crate::ports::{Directory, DirectoryError};

/// The AD object a mailbox matched and how (or why none), with the change to its join.
#[derive(Debug)]
pub(crate) struct Target {
    pub matched: Result<(DirectoryObject, String), OutcomeDetail>,
    pub join: JoinUpdate,
    /// The change to the join when the object's outcome is a failure: a new pairing found by
    /// the rules is stored only with an outcome that is not a failure, so a write that failed
    /// leaves no join behind to be followed without matching again (a stale or distrusted
    /// join is still removed).
    pub join_if_failed: JoinUpdate,
    /// A security event of the matching (`SpoofedMatchKey`), also when the object matched.
    pub security: Option<OutcomeDetail>,
}

/// The join of `cloud_id` with `obj`, made now.
pub(crate) fn pairing(obj: &DirectoryObject, cloud_id: &str) -> Join {
    Join {
        cloud_id: cloud_id.to_string(),
        object_guid: obj.object_guid,
        dn: obj.dn.clone(),
        updated_at: Timestamp::now(),
    }
}

impl Target {
    /// Matched by the stored `join`: the join follows the object when it moved (a new DN).
    pub(crate) fn by_join(obj: DirectoryObject, join: &Join, cloud_id: &str) -> Target {
        let how = format!("by the stored join (objectGUID {})", join.object_guid);
        let update = if obj.dn.eq_ignore_ascii_case(&join.dn) {
            JoinUpdate::Keep
        } else {
            JoinUpdate::Set(pairing(&obj, cloud_id))
        };
        Target {
            matched: Ok((obj, how)),
            join: update.clone(),
            join_if_failed: update,
            security: None,
        }
    }
}

/// Whether `object` holds the mailbox's ImmutableId as one of the configured anchors.
fn holds_anchor(object: &DirectoryObject, lookups: &MatchLookups, anchor: &[u8]) -> bool {
    lookups.anchors.iter().any(|l| match l.rule {
        MatchRule::ObjectGuid => object_guid_bytes(&object.object_guid) == anchor,
        rule => object
            .attributes
            .get(rule.attribute())
            .iter()
            .any(|v| v.as_bytes() == anchor),
    })
}

impl<S, D: Directory, St: JoinStore> Engine<S, D, St> {
    /// Match by the stored join (re-validated by reading the object by GUID, and against the
    /// mailbox's immutable anchor), else by the rules.
    pub(crate) async fn find_target(
        &self,
        mailbox: &Mailbox,
        cloud_id: &str,
        attrs: &[String],
        bulk: Bulk<'_>,
    ) -> Result<Target, DirectoryError> {
        if mailbox.kind != RecipientKind::Mailbox {
            return self.find_recipient_target(mailbox, cloud_id, attrs).await;
        }
        let lookups = match_lookups(&self.settings.match_rules, mailbox);
        let mut join_update = JoinUpdate::Keep;
        let mut doubt = None;
        // Read with the batch's candidates, or here; an unreadable join counts as none.
        let stored = match bulk.known_join(cloud_id) {
            Some(known) => known.cloned(),
            None => self.store.join(cloud_id).ok().flatten(),
        };
        if let Some(join) = stored {
            let read = match bulk
                .read
                .iter()
                .find(|o| o.object_guid == join.object_guid)
                .or_else(|| bulk.kept(&join.object_guid))
            {
                Some(o) => Some(o.clone()),
                None => {
                    self.directory
                        .read_by_guid(&join.object_guid, attrs)
                        .await?
                }
            };
            match read {
                // A join never moves because a key appeared elsewhere; it is only left when the
                // mailbox's immutable anchor designates another object (a join made by a
                // spoofable key, or an anchor changed in the cloud).
                Some(obj)
                    if lookups
                        .anchor_bytes()
                        .is_some_and(|a| !holds_anchor(&obj, &lookups, a)) =>
                {
                    tracing::warn!(%cloud_id, dn = %obj.dn, "the stored join's object does not hold the mailbox's immutable anchor: matching again");
                    doubt = Some(format!(
                        "the stored join pointed at {} (objectGUID {}), which does not hold the \
                         mailbox's immutable anchor: matched again; ",
                        obj.dn, join.object_guid
                    ));
                    join_update = JoinUpdate::Remove {
                        cloud_id: cloud_id.to_string(),
                    };
                }
                Some(obj) => return Ok(Target::by_join(obj, &join, cloud_id)),
                None => {
                    join_update = JoinUpdate::Remove {
                        cloud_id: cloud_id.to_string(),
                    };
                }
            }
        }
        if bulk.from_scan {
            // A first evaluation on the scan's objects stands only when the stored join settles
            // it (`bulk::settled_by_scan`); anything else is matched again on objects read
            // fresh: not settled here, and nothing searched for a result that is dropped.
            return Ok(Target {
                matched: Err(OutcomeDetail::new(
                    OutcomeCode::TargetNotFound,
                    "not settled by the scan's objects: matched on objects read fresh",
                )),
                join: join_update.clone(),
                join_if_failed: join_update,
                security: None,
            });
        }
        // A match by the key alone is checked against a witness the user cannot write.
        let attrs = candidate_attributes(attrs.to_vec());
        let attrs = attrs.as_slice();
        let mut results = Vec::new();
        let mut found: Vec<DirectoryObject> = Vec::new();
        let decision = loop {
            match next_match_step(&lookups, &results) {
                MatchStep::Run(lookup) => {
                    let objects = self.run_lookup(lookup, bulk, attrs, &found).await?;
                    results.push(RuleResult {
                        rule: lookup.rule,
                        dns: objects.iter().map(|o| o.dn.clone()).collect(),
                    });
                    found.extend(objects);
                }
                MatchStep::Decided(decision) => break decision,
            }
        };
        let security = decision.security_event();
        if let Some(event) = &security {
            tracing::warn!(%cloud_id, code = %event.code, reason = %event.reason, "security event: a match key points at an object the immutable anchor does not designate");
        }
        let doubt = doubt.unwrap_or_default();
        let MatchDecision::Matched { rule, dn, .. } = decision else {
            let detail = decision.outcome().unwrap_or_else(|| {
                OutcomeDetail::new(OutcomeCode::TargetNotFound, "no AD object matched")
            });
            let detail = OutcomeDetail {
                reason: format!("{doubt}{}", detail.reason),
                ..detail
            };
            return Ok(Target {
                matched: Err(detail),
                join: join_update.clone(),
                join_if_failed: join_update,
                security,
            });
        };
        let Some(obj) = found.into_iter().find(|o| o.dn.eq_ignore_ascii_case(&dn)) else {
            return Err(DirectoryError::new(format!(
                "matched {dn} but could not read it"
            )));
        };
        let mut how = format!("{doubt}by {rule}");
        if !rule.is_anchor() {
            let key = lookups
                .key
                .as_ref()
                .map_or_else(|| rule.to_string(), |k| k.describe());
            match corroborate_key_match(mailbox, &obj, &key) {
                Ok(witness) => how.push_str(&format!(", {witness}")),
                Err(detail) => {
                    tracing::warn!(%cloud_id, dn = %obj.dn, "a match by msDS-ExternalDirectoryObjectId alone has no witness the user cannot write: not followed");
                    return Ok(Target {
                        matched: Err(OutcomeDetail {
                            reason: format!("{doubt}{}", detail.reason),
                            ..detail
                        }),
                        join: join_update.clone(),
                        join_if_failed: join_update,
                        security,
                    });
                }
            }
        }
        let join = JoinUpdate::Set(pairing(&obj, cloud_id));
        Ok(Target {
            matched: Ok((obj, how)),
            join,
            join_if_failed: join_update,
            security,
        })
    }

    /// The objects holding `lookup`'s value: from the cycle's match index when it can answer
    /// (its one candidate read again by objectGUID — or taken from `found`, the batch's bulk
    /// read or, on a first evaluation, the scan's kept objects — and checked to still hold the
    /// value), else by a search (several candidates, a candidate gone or
    /// changed since the index was read, or no index).
    async fn run_lookup(
        &self,
        lookup: &Lookup,
        bulk: Bulk<'_>,
        attrs: &[String],
        found: &[DirectoryObject],
    ) -> Result<Vec<DirectoryObject>, DirectoryError> {
        match bulk
            .matches
            .and_then(|ix| ix.candidates(lookup.rule, &lookup.value))
        {
            Some(Candidates::None) => return Ok(Vec::new()),
            Some(Candidates::One(guid)) => {
                let obj = match found
                    .iter()
                    .chain(bulk.read)
                    .find(|o| o.object_guid == guid)
                    .or_else(|| bulk.kept(&guid))
                {
                    Some(o) => Some(o.clone()),
                    None => {
                        let mut read_attrs = attrs.to_vec();
                        if !read_attrs
                            .iter()
                            .any(|a| a.eq_ignore_ascii_case(lookup.attribute))
                        {
                            read_attrs.push(lookup.attribute.to_string());
                        }
                        self.directory.read_by_guid(&guid, &read_attrs).await?
                    }
                };
                if let Some(obj) = obj
                    && MatchIndex::still_holds(lookup.rule, &lookup.value, &obj)
                {
                    return Ok(vec![obj]);
                }
                // Gone or changed since the index was read: search.
            }
            Some(Candidates::Several) | None => {}
        }
        self.directory
            .find_by_attribute(lookup.attribute, &lookup.value, attrs)
            .await
    }
}
