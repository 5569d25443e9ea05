//! Finding the AD object of a mailbox: the stored join, the match index, the ordered rules.

use exo_writeback_core::directory::DirectoryObject;
use exo_writeback_core::mailbox::Mailbox;
use exo_writeback_core::matching::{MatchDecision, RuleResult, decide_match, match_lookups};
use exo_writeback_core::outcome::{OutcomeCode, OutcomeDetail};
use exo_writeback_core::provisioning::{Join, JoinUpdate};
use exo_writeback_store::JoinStore;
use jiff::Timestamp;

use crate::engine::Engine;
use crate::match_index::{Candidates, MatchIndex};
use crate::ports::{Directory, DirectoryError};

/// The AD object a mailbox matched and how (or why none), with the change to its join.
pub(crate) type Matched = (Result<(DirectoryObject, String), OutcomeDetail>, JoinUpdate);

impl<S, D: Directory, St: JoinStore> Engine<S, D, St> {
    /// Match by the stored join (re-validated by reading the object by GUID), else by the
    /// ordered rules.
    pub(crate) async fn find_target(
        &self,
        mailbox: &Mailbox,
        cloud_id: &str,
        attrs: &[String],
        index: Option<&MatchIndex>,
    ) -> Result<Matched, DirectoryError> {
        let mut join_update = JoinUpdate::Keep;
        if let Ok(Some(join)) = self.store.join(cloud_id) {
            match self
                .directory
                .read_by_guid(&join.object_guid, attrs)
                .await?
            {
                Some(obj) => {
                    let how = format!("by the stored join (objectGUID {})", join.object_guid);
                    if !obj.dn.eq_ignore_ascii_case(&join.dn) {
                        join_update = JoinUpdate::Set(Join {
                            cloud_id: cloud_id.to_string(),
                            object_guid: obj.object_guid,
                            dn: obj.dn.clone(),
                            updated_at: Timestamp::now(),
                        });
                    }
                    return Ok((Ok((obj, how)), join_update));
                }
                None => {
                    join_update = JoinUpdate::Remove {
                        cloud_id: cloud_id.to_string(),
                    };
                }
            }
        }
        let lookups = match_lookups(&self.settings.match_rules, mailbox);
        if let Some(index) = index
            && let Some(decided) = self
                .match_by_index(index, &lookups, cloud_id, attrs, &join_update)
                .await?
        {
            return Ok(decided);
        }
        let mut results = Vec::new();
        let mut found: Vec<DirectoryObject> = Vec::new();
        for lookup in &lookups.lookups {
            let objects = self
                .directory
                .find_by_attribute(lookup.attribute, &lookup.value, attrs)
                .await?;
            results.push(RuleResult {
                rule: lookup.rule,
                dns: objects.iter().map(|o| o.dn.clone()).collect(),
            });
            found.extend(objects);
            if let Some(decision) = decide_match(&lookups, &results, false) {
                return Ok(match decision {
                    MatchDecision::Matched { rule, dn } => {
                        let Some(obj) = found.into_iter().find(|o| o.dn.eq_ignore_ascii_case(&dn))
                        else {
                            return Err(DirectoryError::new(format!(
                                "matched {dn} but could not read it"
                            )));
                        };
                        let join = JoinUpdate::Set(Join {
                            cloud_id: cloud_id.to_string(),
                            object_guid: obj.object_guid,
                            dn: obj.dn.clone(),
                            updated_at: Timestamp::now(),
                        });
                        (Ok((obj, format!("by {rule}"))), join)
                    }
                    other => (
                        Err(other.outcome().unwrap_or_else(|| {
                            OutcomeDetail::new(OutcomeCode::TargetNotFound, "no AD object matched")
                        })),
                        join_update,
                    ),
                });
            }
        }
        let decision = decide_match(&lookups, &results, true);
        let detail = decision.and_then(|d| d.outcome()).unwrap_or_else(|| {
            OutcomeDetail::new(OutcomeCode::TargetNotFound, "no AD object matched")
        });
        Ok((Err(detail), join_update))
    }

    /// The ordered rules answered from the cycle's match index: the same decisions as the
    /// per-mailbox searches ([`decide_match`] over the rules in order), each candidate read
    /// again by objectGUID. `None` (search per mailbox instead) when a rule has several
    /// candidates (the searches name their DNs), a candidate no longer holds the key, or
    /// the index cannot answer a rule.
    pub(crate) async fn match_by_index(
        &self,
        index: &MatchIndex,
        lookups: &exo_writeback_core::matching::MatchLookups,
        cloud_id: &str,
        attrs: &[String],
        join_update: &JoinUpdate,
    ) -> Result<Option<Matched>, DirectoryError> {
        let mut results = Vec::new();
        for lookup in &lookups.lookups {
            let dns = match index.candidates(lookup.rule, &lookup.value) {
                None | Some(Candidates::Several) => return Ok(None),
                Some(Candidates::None) => Vec::new(),
                Some(Candidates::One(guid)) => {
                    let mut read_attrs = attrs.to_vec();
                    if !read_attrs
                        .iter()
                        .any(|a| a.eq_ignore_ascii_case(lookup.attribute))
                    {
                        read_attrs.push(lookup.attribute.to_string());
                    }
                    match self.directory.read_by_guid(&guid, &read_attrs).await? {
                        Some(obj) if MatchIndex::still_holds(lookup.rule, &lookup.value, &obj) => {
                            results.push(RuleResult {
                                rule: lookup.rule,
                                dns: vec![obj.dn.clone()],
                            });
                            return Ok(match decide_match(lookups, &results, false) {
                                Some(MatchDecision::Matched { rule, .. }) => {
                                    let join = JoinUpdate::Set(Join {
                                        cloud_id: cloud_id.to_string(),
                                        object_guid: obj.object_guid,
                                        dn: obj.dn.clone(),
                                        updated_at: Timestamp::now(),
                                    });
                                    Some((Ok((obj, format!("by {rule}"))), join))
                                }
                                _ => None,
                            });
                        }
                        // Gone or changed since the index was read: search.
                        _ => return Ok(None),
                    }
                }
            };
            results.push(RuleResult {
                rule: lookup.rule,
                dns,
            });
        }
        let detail = decide_match(lookups, &results, true)
            .and_then(|d| d.outcome())
            .unwrap_or_else(|| {
                OutcomeDetail::new(OutcomeCode::TargetNotFound, "no AD object matched")
            });
        Ok(Some((Err(detail), join_update.clone())))
    }

    /// Read the match keys of every object in the search scope into the match index (initial
    /// and full cycles, preview of them). A directory that cannot list them leaves the index
    /// off: matching then searches per mailbox.
    pub(crate) async fn load_match_index(&self) -> Option<MatchIndex> {
        let rules = &self.settings.match_rules;
        if rules.is_empty() {
            return None;
        }
        let started = std::time::Instant::now();
        let mut index = MatchIndex::new(rules);
        let attributes = MatchIndex::attributes(rules);
        match self
            .directory
            .scan_match_keys(&attributes, &mut |o| index.add(&o))
            .await
        {
            Ok(()) => {
                tracing::info!(
                    objects = index.len(),
                    secs = started.elapsed().as_secs_f64(),
                    "read the match keys of the search scope"
                );
                Some(index)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the match keys at once; matching searches per mailbox");
                None
            }
        }
    }
}
