//! Finding the AD object of a group or mail contact (issue 17): the stored join (checked
//! against the object's class), else `core::matching::recipient` — the address anchor, with
//! the group's `Group_<id>` key as corroboration only.

use exo_writeback_core::directory::{AttrValue, DirectoryObject};
use exo_writeback_core::mailbox::Mailbox;
use exo_writeback_core::matching::MatchRule;
use exo_writeback_core::matching::recipient::{
    anchor_addresses, decide_recipient_match, has_class, recipient_key,
};
use exo_writeback_core::provisioning::JoinUpdate;
use exo_writeback_store::JoinStore;

use crate::engine::Engine;
use crate::ports::{Directory, DirectoryError};
use crate::target::{Target, pairing};

/// What a group's or contact's look-ups read besides the plan's attributes.
const MATCH_ATTRIBUTES: [&str; 3] = ["objectClass", "proxyAddresses", "mail"];

impl<S, D: Directory, St: JoinStore> Engine<S, D, St> {
    /// Match a group or contact: by the stored join when its object is still of the
    /// recipient's class, else by its SMTP addresses among objects of that class, the key
    /// only corroborating.
    pub(crate) async fn find_recipient_target(
        &self,
        record: &Mailbox,
        cloud_id: &str,
        attrs: &[String],
    ) -> Result<Target, DirectoryError> {
        let kind = record.kind;
        let mut attrs = attrs.to_vec();
        for a in MATCH_ATTRIBUTES {
            if !attrs.iter().any(|x| x.eq_ignore_ascii_case(a)) {
                attrs.push(a.to_string());
            }
        }
        let mut join_update = JoinUpdate::Keep;
        let mut doubt = String::new();
        if let Ok(Some(join)) = self.store.join(cloud_id) {
            match self
                .directory
                .read_by_guid(&join.object_guid, &attrs)
                .await?
            {
                Some(obj) if has_class(&obj, kind) => {
                    return Ok(Target::by_join(obj, &join, cloud_id));
                }
                Some(obj) => {
                    tracing::warn!(%cloud_id, dn = %obj.dn, "the stored join's object is not of the recipient's class: matching again");
                    doubt = format!(
                        "the stored join pointed at {} (objectGUID {}), which is not a {}: \
                         matched again; ",
                        obj.dn,
                        join.object_guid,
                        kind.object_class()
                    );
                    join_update = JoinUpdate::Remove {
                        cloud_id: cloud_id.to_string(),
                    };
                }
                None => {
                    join_update = JoinUpdate::Remove {
                        cloud_id: cloud_id.to_string(),
                    };
                }
            }
        }
        let mut by_address: Vec<DirectoryObject> = Vec::new();
        for value in anchor_addresses(record) {
            let found = self
                .directory
                .find_by_attribute("proxyAddresses", &AttrValue::Text(value), &attrs)
                .await?;
            for o in found {
                if !by_address.iter().any(|b| b.object_guid == o.object_guid) {
                    by_address.push(o);
                }
            }
        }
        // The key corroborates only, and only when its rule is configured.
        let key = recipient_key(record).filter(|_| {
            self.settings
                .match_rules
                .contains(&MatchRule::ExternalDirectoryObjectId)
        });
        let by_key = match &key {
            Some(k) => {
                self.directory
                    .find_by_attribute(
                        "msDS-ExternalDirectoryObjectId",
                        &AttrValue::Text(k.clone()),
                        &attrs,
                    )
                    .await?
            }
            None => Vec::new(),
        };
        let decision = decide_recipient_match(record, &by_address, key.as_deref(), &by_key);
        let m = match decision {
            Ok(m) => m,
            Err(detail) => {
                if detail.code == exo_writeback_core::outcome::OutcomeCode::UncorroboratedMatchKey {
                    tracing::warn!(%cloud_id, "a group's key is held, but by no object holding its address: not followed");
                }
                return Ok(Target {
                    matched: Err(exo_writeback_core::outcome::OutcomeDetail {
                        reason: format!("{doubt}{}", detail.reason),
                        ..detail
                    }),
                    join: join_update.clone(),
                    join_if_failed: join_update,
                    security: None,
                });
            }
        };
        if let Some(event) = &m.security {
            tracing::warn!(%cloud_id, code = %event.code, reason = %event.reason, "security event: a group's match key is held by another object");
        }
        let Some(obj) = by_address
            .into_iter()
            .find(|o| o.dn.eq_ignore_ascii_case(&m.dn))
        else {
            return Err(DirectoryError::new(format!(
                "matched {} but could not read it",
                m.dn
            )));
        };
        let join = JoinUpdate::Set(pairing(&obj, cloud_id));
        Ok(Target {
            matched: Ok((obj, format!("{doubt}{}", m.how))),
            join,
            join_if_failed: join_update,
            security: m.security,
        })
    }
}
