//! Groups and mail contacts in the emulator's state, beside the mailboxes: one address space
//! (an SMTP address belongs to one recipient, as Exchange's proxy address rule says), one
//! lock, Guid order for paging.

use std::ops::Bound;

use uuid::Uuid;

use super::{SimState, StateError, Store};
use crate::opath::Filter;
use crate::recipient::{Member, SimRecipient};

impl Store {
    /// Refuses an SMTP address of `addresses` that a group or contact other than `guid`
    /// holds.
    pub(super) fn check_recipient_addresses(
        &self,
        guid: Uuid,
        addresses: &[String],
    ) -> Result<(), StateError> {
        for a in addresses {
            let Some((prefix, addr)) = a.split_once(':') else {
                continue;
            };
            if !prefix.eq_ignore_ascii_case("smtp") {
                continue;
            }
            if let Some(other) = self.recipients.values().find(|r| {
                r.guid != guid && r.smtp_addresses().any(|x| x.eq_ignore_ascii_case(addr))
            }) {
                return Err(StateError::AddressInUse {
                    address: a.clone(),
                    owner: other.alias.clone(),
                });
            }
        }
        Ok(())
    }

    /// Refuses an address another recipient holds (mailboxes included), a Guid in use, and
    /// a member that is not a recipient of the emulator.
    fn check_recipient(&self, r: &SimRecipient, new: bool) -> Result<(), StateError> {
        if new && (self.recipients.contains_key(&r.guid) || self.by_guid.contains_key(&r.guid)) {
            return Err(StateError::DuplicateGuid(r.guid));
        }
        self.check_recipient_addresses(r.guid, &r.email_addresses)?;
        for a in r.smtp_addresses() {
            if let Some(owner) = self
                .lookup(a)
                .into_iter()
                .filter_map(|g| self.by_guid.get(&g))
                .find(|m| {
                    m.email_addresses.iter().any(|x| {
                        x.split_once(':').is_some_and(|(p, x)| {
                            p.eq_ignore_ascii_case("smtp") && x.eq_ignore_ascii_case(a)
                        })
                    })
                })
            {
                return Err(StateError::AddressInUse {
                    address: format!("smtp:{a}"),
                    owner: owner.alias.clone(),
                });
            }
        }
        if let Some(members) = r.members() {
            for g in members {
                if *g == r.guid {
                    return Err(StateError::Invalid(format!(
                        "the group '{}' cannot be a member of itself",
                        r.alias
                    )));
                }
                if !self.by_guid.contains_key(g) && !self.recipients.contains_key(g) {
                    return Err(StateError::Invalid(format!(
                        "the member {g} of '{}' is no recipient",
                        r.alias
                    )));
                }
            }
        }
        Ok(())
    }

    /// The group (`groups` true) or contact identified by `key`, with its Guid.
    fn find_recipient(&self, key: &str, groups: bool) -> Result<(Uuid, SimRecipient), StateError> {
        let g = self.resolve_recipient(key, groups)?;
        self.recipients
            .get(&g)
            .cloned()
            .map(|r| (g, r))
            .ok_or_else(|| StateError::NotFound(key.to_string()))
    }

    /// The groups (`groups` true) or contacts identified by `key`.
    fn resolve_recipient(&self, key: &str, groups: bool) -> Result<Uuid, StateError> {
        let found: Vec<Uuid> = self
            .recipients
            .values()
            .filter(|r| r.is_group() == groups && r.is_identified_by(key))
            .map(|r| r.guid)
            .collect();
        match found.as_slice() {
            [] => Err(StateError::NotFound(key.to_string())),
            [g] => Ok(*g),
            _ => Err(StateError::Ambiguous(key.to_string())),
        }
    }
}

impl SimState {
    /// Adds groups and contacts (seeding), in order, so a group's members are added before
    /// it; stops at the first refused one.
    pub fn add_recipients(
        &self,
        rs: impl IntoIterator<Item = SimRecipient>,
    ) -> Result<usize, StateError> {
        let mut store = self.write();
        let mut n = 0;
        for r in rs {
            store.check_recipient(&r, true)?;
            store.recipients.insert(r.guid, r);
            n += 1;
        }
        Ok(n)
    }

    /// The group (`groups` true) or contact identified by `id`: its Guid,
    /// ExternalDirectoryObjectId, alias, name, display name or an SMTP address.
    pub fn recipient(&self, id: &str, groups: bool) -> Result<SimRecipient, StateError> {
        self.read().find_recipient(id, groups).map(|(_, r)| r)
    }

    /// Changes a group or contact as an administrator would: `f` edits it, then WhenChanged
    /// is set to the simulated clock. Refused (nothing stored) when it would take another
    /// recipient's address, add a member that does not exist, or change the Guid.
    pub fn update_recipient<F>(
        &self,
        id: &str,
        groups: bool,
        f: F,
    ) -> Result<SimRecipient, StateError>
    where
        F: FnOnce(&mut SimRecipient),
    {
        let now = self.now();
        self.try_update_recipient(id, groups, |r| {
            f(r);
            r.when_changed = now;
            Ok(())
        })
    }

    /// As [`SimState::update_recipient`], WhenChanged set to the clock **before** `f` (which
    /// may set it itself), and `f` may refuse the change: `Err(why)` is
    /// [`StateError::Invalid`] and nothing is stored.
    pub fn try_update_recipient<F>(
        &self,
        id: &str,
        groups: bool,
        f: F,
    ) -> Result<SimRecipient, StateError>
    where
        F: FnOnce(&mut SimRecipient) -> Result<(), String>,
    {
        let now = self.now();
        let mut store = self.write();
        let (g, mut new) = store.find_recipient(id, groups)?;
        new.when_changed = now;
        f(&mut new).map_err(StateError::Invalid)?;
        if new.guid != g || new.is_group() != groups {
            return Err(StateError::Invalid(
                "the Guid and the kind of a recipient cannot change".into(),
            ));
        }
        store.check_recipient(&new, false)?;
        store.recipients.insert(g, new.clone());
        Ok(new)
    }

    /// How many groups (`groups` true) or contacts the emulator holds.
    pub fn recipient_count(&self, groups: bool) -> usize {
        self.read()
            .recipients
            .values()
            .filter(|r| r.is_group() == groups)
            .count()
    }

    /// Scans the groups (`groups` true) or contacts after `after` in Guid order, calling
    /// `visit` for each one matching `filter`, until `visit` returns false.
    pub(crate) fn scan_recipients(
        &self,
        groups: bool,
        after: Option<Uuid>,
        filter: Option<&Filter>,
        mut visit: impl FnMut(&SimRecipient) -> bool,
    ) {
        let store = self.read();
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        for r in store
            .recipients
            .range((lower, Bound::Unbounded))
            .map(|(_, r)| r)
        {
            if r.is_group() == groups && filter.is_none_or(|f| f.matches(r)) && !visit(r) {
                break;
            }
        }
    }

    /// Scans the members of `group` after `after` in Guid order until `visit` returns
    /// false. A member removed from the emulator since is skipped, as the service lists
    /// only existing recipients.
    pub(crate) fn scan_members(
        &self,
        group: Uuid,
        after: Option<Uuid>,
        mut visit: impl FnMut(Member<'_>) -> bool,
    ) {
        let store = self.read();
        let Some(members) = store.recipients.get(&group).and_then(|r| r.members()) else {
            return;
        };
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        for g in members.range((lower, Bound::Unbounded)) {
            let m = match (store.by_guid.get(g), store.recipients.get(g)) {
                (Some(m), _) => Member::Mailbox(m),
                (None, Some(r)) => Member::Recipient(r),
                (None, None) => continue,
            };
            if !visit(m) {
                break;
            }
        }
    }
}
