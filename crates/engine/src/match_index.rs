//! The match index of an initial or full cycle: the match keys of every object in the search
//! scope, read once with one paged search ([`Directory::scan_match_keys`]) so that matching a
//! mailbox costs a hash look-up plus one read by objectGUID instead of one search per match
//! rule. On a DC where `msDS-ExternalDirectoryObjectId` or `mS-DS-ConsistencyGuid` is not
//! indexed (Samba), each of those searches scans the directory, which made an initial cycle
//! O(N²).
//!
//! The index only answers "which objects held this key when the cycle began". The engine
//! re-reads a candidate by objectGUID and checks it still holds the key before using it, and
//! falls back to the per-mailbox searches when the index has several candidates or the
//! candidate changed; an object that gained a key during the cycle is found by the next cycle.
//!
//! The same scan also brings every attribute the plans read, and a full reconcile's index
//! keeps those objects ([`MatchIndex::cached`]) up to a memory budget — an initial cycle's
//! too, when the DC gave a change mark: a mailbox whose object is kept is matched and planned
//! without reading AD again. Without a check against the mark only a finding of "nothing to
//! do" (in sync, the join kept, nothing to report) is taken from those objects; anything else —
//! a write, a new join, a failure, a drift — is decided again on objects read fresh, or kept
//! and found unchanged since the mark (`bulk.rs`, `mark.rs`).
//!
//! Memory: per object 16 bytes (objectGUID set) plus, per key held (ConsistencyGuid,
//! ExternalDirectoryObjectId), a 40-byte map entry (a `User_<GUID>` or 16-byte value is stored
//! as 16 bytes) and hash-table slack: about 20 bytes for an object without keys, 60–110 with.
//! DNs are not kept, except in the objects kept whole, which stop at the budget
//! ([`EngineOptions::scan_cache_bytes`]); a larger directory keeps the rest compact.
//!
//! [`EngineOptions::scan_cache_bytes`]: crate::EngineOptions::scan_cache_bytes
//!
//! [`Directory::scan_match_keys`]: crate::ports::Directory::scan_match_keys

use std::collections::{HashMap, HashSet};

use exo_writeback_core::directory::{AttrValue, DirectoryObject};
use exo_writeback_core::matching::MatchRule;
use uuid::Uuid;

/// A key value, compact: 16 bytes when it is a GUID (ConsistencyGuid) or `User_<GUID>`
/// (ExternalDirectoryObjectId in its only documented form), else the normalised bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Id([u8; 16]),
    Other(Box<[u8]>),
}

const EDOID_PREFIX: &str = "user_";

/// The key of a value of `rule`'s attribute, normalised as AD compares it: text
/// (msDS-ExternalDirectoryObjectId, Unicode syntax) case-insensitively, octet strings exactly.
fn key(rule: MatchRule, value: &AttrValue) -> Key {
    match (rule, value) {
        (MatchRule::ExternalDirectoryObjectId, AttrValue::Text(t)) => {
            let lower = t.to_lowercase();
            if let Some(rest) = lower.strip_prefix(EDOID_PREFIX)
                && rest.len() == 36
                && let Ok(u) = Uuid::parse_str(rest)
                && u.hyphenated().to_string() == rest
            {
                return Key::Id(*u.as_bytes());
            }
            Key::Other(lower.into_bytes().into_boxed_slice())
        }
        (_, AttrValue::Text(t)) => Key::Other(t.as_bytes().into()),
        (_, AttrValue::Bytes(b)) => match <[u8; 16]>::try_from(b.as_slice()) {
            Ok(id) => Key::Id(id),
            Err(_) => Key::Other(b.as_slice().into()),
        },
    }
}

/// What the index knows about one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidates {
    None,
    One(Uuid),
    Several,
}

/// The match keys of the objects in the search scope (see the module documentation).
#[derive(Debug, Default)]
pub struct MatchIndex {
    /// Per value-keyed rule (ExternalDirectoryObjectId, ConsistencyGuid): key → holder.
    keyed: Vec<(MatchRule, HashMap<Key, Uuid>)>,
    /// Keys held by more than one object.
    several: HashSet<(MatchRule, Key)>,
    /// Every object in scope (the objectGUID rule), when that rule is configured.
    guids: HashSet<Uuid>,
    guid_rule: bool,
    objects: u64,
    /// Objects of the scan kept whole, with what the plans read (see the module documentation).
    cache: HashMap<Uuid, DirectoryObject>,
    /// What the objects kept may take, estimated (bytes); 0: none is kept.
    cache_budget: usize,
    cache_bytes: usize,
}

/// An estimate of the memory `object` takes when kept (heap and map entries).
fn object_bytes(object: &DirectoryObject) -> usize {
    let values: usize = object
        .attributes
        .iter()
        .map(|(name, values)| {
            name.len()
                + 64
                + values
                    .iter()
                    .map(|v| 32 + v.as_bytes().len())
                    .sum::<usize>()
        })
        .sum();
    object.dn.len() + 96 + values
}

impl MatchIndex {
    /// The attributes to scan for `rules` (in rule order, without repeats).
    pub fn attributes(rules: &[MatchRule]) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for r in rules {
            if !out.contains(&r.attribute()) {
                out.push(r.attribute());
            }
        }
        out
    }

    pub fn new(rules: &[MatchRule]) -> Self {
        let mut keyed = Vec::new();
        for &r in rules {
            if r != MatchRule::ObjectGuid && !keyed.iter().any(|(k, _)| *k == r) {
                keyed.push((r, HashMap::new()));
            }
        }
        MatchIndex {
            keyed,
            guid_rule: rules.contains(&MatchRule::ObjectGuid),
            ..MatchIndex::default()
        }
    }

    /// An index that also keeps the objects of the scan whole, up to `budget` bytes.
    pub fn keeping(rules: &[MatchRule], budget: usize) -> Self {
        MatchIndex {
            cache_budget: budget,
            ..MatchIndex::new(rules)
        }
    }

    /// Add one object of the scan, and keep it whole while the budget allows.
    pub fn add_kept(&mut self, object: DirectoryObject) {
        self.add(&object);
        if self.cache_bytes >= self.cache_budget {
            return;
        }
        let bytes = object_bytes(&object);
        if self.cache_bytes + bytes > self.cache_budget {
            // Full: the rest of the scan stays compact.
            self.cache_bytes = self.cache_budget;
            return;
        }
        self.cache_bytes += bytes;
        self.cache.insert(object.object_guid, object);
    }

    /// The object `guid` as the scan read it, when kept.
    pub fn cached(&self, guid: &Uuid) -> Option<&DirectoryObject> {
        self.cache.get(guid)
    }

    /// Objects kept whole.
    pub fn kept(&self) -> usize {
        self.cache.len()
    }

    /// Add one object of the scan.
    pub fn add(&mut self, object: &DirectoryObject) {
        self.objects += 1;
        if self.guid_rule {
            self.guids.insert(object.object_guid);
        }
        for (rule, map) in &mut self.keyed {
            for value in object.attributes.get(rule.attribute()) {
                let k = key(*rule, value);
                match map.get(&k) {
                    Some(holder) if *holder != object.object_guid => {
                        self.several.insert((*rule, k));
                    }
                    Some(_) => {}
                    None => {
                        map.insert(k, object.object_guid);
                    }
                }
            }
        }
    }

    /// Objects scanned.
    pub fn len(&self) -> u64 {
        self.objects
    }

    pub fn is_empty(&self) -> bool {
        self.objects == 0
    }

    /// The objects that held `value` for `rule` when the index was built; `None` when the
    /// index cannot answer for this rule (not scanned).
    pub fn candidates(&self, rule: MatchRule, value: &AttrValue) -> Option<Candidates> {
        if rule == MatchRule::ObjectGuid {
            if !self.guid_rule {
                return None;
            }
            let guid = exo_writeback_core::guid::uuid_from_object_guid(value.as_bytes()).ok()?;
            return Some(if self.guids.contains(&guid) {
                Candidates::One(guid)
            } else {
                Candidates::None
            });
        }
        let (_, map) = self.keyed.iter().find(|(r, _)| *r == rule)?;
        let k = key(rule, value);
        if self.several.contains(&(rule, k.clone())) {
            return Some(Candidates::Several);
        }
        Some(match map.get(&k) {
            Some(g) => Candidates::One(*g),
            None => Candidates::None,
        })
    }

    /// `object` (read again by objectGUID) still holds `value` for `rule`.
    pub fn still_holds(rule: MatchRule, value: &AttrValue, object: &DirectoryObject) -> bool {
        if rule == MatchRule::ObjectGuid {
            return exo_writeback_core::guid::uuid_from_object_guid(value.as_bytes())
                .is_ok_and(|g| g == object.object_guid);
        }
        let want = key(rule, value);
        object
            .attributes
            .get(rule.attribute())
            .iter()
            .any(|v| key(rule, v) == want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exo_writeback_core::directory::Attributes;

    fn obj(guid: Uuid, edoid: Option<&str>, cguid: Option<[u8; 16]>) -> DirectoryObject {
        let mut a = Attributes::new();
        if let Some(e) = edoid {
            a.insert(
                "msDS-ExternalDirectoryObjectId",
                vec![AttrValue::Text(e.into())],
            );
        }
        if let Some(c) = cguid {
            a.insert("mS-DS-ConsistencyGuid", vec![AttrValue::Bytes(c.to_vec())]);
        }
        DirectoryObject {
            dn: format!("CN={guid},DC=x"),
            object_guid: guid,
            attributes: a,
        }
    }

    #[test]
    fn keys_compare_as_ad_does_and_duplicates_are_flagged() {
        let (g1, g2, g3) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let id = "4A2D0C1E-AAAA-BBBB-CCCC-000000000001";
        let mut ix = MatchIndex::new(&MatchRule::DEFAULT);
        ix.add(&obj(g1, Some(&format!("User_{id}")), Some([7; 16])));
        ix.add(&obj(g2, Some("User_not-a-guid"), Some([7; 16])));
        ix.add(&obj(g3, None, None));
        assert_eq!(ix.len(), 3);
        use MatchRule::*;
        let t = |s: &str| AttrValue::Text(s.to_string());
        // Unicode-string syntax: case-insensitive, in either form.
        assert_eq!(
            ix.candidates(
                ExternalDirectoryObjectId,
                &t(&format!("user_{}", id.to_lowercase()))
            ),
            Some(Candidates::One(g1))
        );
        assert_eq!(
            ix.candidates(ExternalDirectoryObjectId, &t("USER_NOT-A-GUID")),
            Some(Candidates::One(g2))
        );
        assert_eq!(
            ix.candidates(ExternalDirectoryObjectId, &t("User_other")),
            Some(Candidates::None)
        );
        // Octet strings: exact bytes; two holders are "several".
        assert_eq!(
            ix.candidates(ConsistencyGuid, &AttrValue::Bytes(vec![7; 16])),
            Some(Candidates::Several)
        );
        assert_eq!(
            ix.candidates(ConsistencyGuid, &AttrValue::Bytes(vec![8; 16])),
            Some(Candidates::None)
        );
        // Every scanned object answers the objectGUID rule.
        let b = exo_writeback_core::guid::object_guid_bytes(&g3).to_vec();
        assert_eq!(
            ix.candidates(ObjectGuid, &AttrValue::Bytes(b.clone())),
            Some(Candidates::One(g3))
        );
        assert!(MatchIndex::still_holds(
            ObjectGuid,
            &AttrValue::Bytes(b),
            &obj(g3, None, None)
        ));
        assert!(MatchIndex::still_holds(
            ExternalDirectoryObjectId,
            &t(&format!("user_{id}")),
            &obj(g1, Some(&format!("User_{id}")), None)
        ));
        assert!(!MatchIndex::still_holds(
            ConsistencyGuid,
            &AttrValue::Bytes(vec![7; 16]),
            &obj(g3, None, None)
        ));
        // A rule that was not scanned cannot be answered.
        let only_guid = MatchIndex::new(&[ObjectGuid]);
        assert_eq!(
            only_guid.candidates(ConsistencyGuid, &AttrValue::Bytes(vec![7; 16])),
            None
        );
        assert_eq!(
            MatchIndex::attributes(&[ObjectGuid, ConsistencyGuid, ObjectGuid]),
            vec!["objectGUID", "mS-DS-ConsistencyGuid"]
        );
    }

    /// A user object as the lab's 50,000-user scan reads it (the bench's `dc --users 50000`):
    /// the match keys, the addresses and the attributes the plans read, lab-sized values.
    fn lab_user(i: u32) -> DirectoryObject {
        let guid = Uuid::from_u128(u128::from(i) + 1);
        let name = format!("user{i:06}");
        let mut a = Attributes::new();
        let text = |v: Vec<String>| v.into_iter().map(AttrValue::Text).collect::<Vec<_>>();
        a.insert(
            "objectGUID",
            vec![AttrValue::Bytes(guid.as_bytes().to_vec())],
        );
        a.insert(
            "msDS-ExternalDirectoryObjectId",
            text(vec![format!(
                "User_{}",
                Uuid::from_u128(u128::from(i) << 64)
            )]),
        );
        a.insert("mS-DS-ConsistencyGuid", vec![AttrValue::Bytes(vec![7; 16])]);
        a.insert(
            "userPrincipalName",
            text(vec![format!("{name}@lab.example.test")]),
        );
        a.insert("mail", text(vec![format!("{name}@contoso.example")]));
        a.insert(
            "proxyAddresses",
            text(vec![
                format!("SMTP:{name}@contoso.example"),
                format!("smtp:{name}@contoso.mail.onmicrosoft.com"),
                format!("smtp:{name}.bench@contoso.example"),
            ]),
        );
        a.insert(
            "targetAddress",
            text(vec![format!("SMTP:{name}@contoso.mail.onmicrosoft.com")]),
        );
        a.insert(
            "extensionAttribute1",
            text(vec![format!("Bench dept {name}")]),
        );
        a.insert(
            "msExchRecipientTypeDetails",
            text(vec!["2147483648".into()]),
        );
        a.insert(
            "msExchRecipientDisplayType",
            text(vec!["-2147483642".into()]),
        );
        a.insert("msExchRemoteRecipientType", text(vec!["4".into()]));
        DirectoryObject {
            dn: format!("CN=Lab User {i:06},OU=Mailboxes,DC=lab,DC=example,DC=test"),
            object_guid: guid,
            attributes: a,
        }
    }

    /// The default budget keeps a 50,000-user directory's scan whole, so that a full
    /// reconcile of it reads nothing again. Measured with 64 MiB: the lab's 50,205 objects,
    /// 1,512 estimated bytes each, kept 44,377 — the other 5,828 mailboxes read their objects
    /// again in the read phase (`dc --users 50000`, 2026-12-04).
    #[test]
    fn the_default_budget_keeps_a_50000_user_scan_whole() {
        let measured_average = (64usize << 20) / 44_377;
        assert!(
            object_bytes(&lab_user(0)) >= measured_average,
            "the test's object ({} bytes) is as large as the lab's ({measured_average})",
            object_bytes(&lab_user(0))
        );
        let budget = crate::EngineOptions::default().scan_cache_bytes;
        let mut ix = MatchIndex::keeping(&MatchRule::DEFAULT, budget);
        for i in 0..50_205 {
            ix.add_kept(lab_user(i));
        }
        assert_eq!(ix.kept(), 50_205);
        assert!(ix.cached(&lab_user(50_204).object_guid).is_some());
    }
}
