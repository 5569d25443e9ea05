//! Compact sets and maps of cloud ids, for what a cycle keeps per mailbox read (the set of
//! mailboxes taken, the watermark tracker's pending mailboxes): an initial cycle of a million
//! mailboxes holds a million of each.
//!
//! A cloud id is almost always an ExternalDirectoryObjectId, a GUID in its lower-case
//! hyphenated form (36 characters). Such an id is kept as its 16 bytes; any other id (another
//! form, or the `smtp:`/`alias:` fallbacks of `cloud_id`) is kept whole. The conversion is
//! exact — an id is stored as 16 bytes only when those bytes print back to the very same text
//! — so two ids are the same key exactly when they are the same string, as with `String` keys.
//!
//! Memory per id: 16 bytes plus the hash table's slack (about 35 bytes at a million ids),
//! where a `String` key took 24 bytes plus a 48-byte heap block plus the slack (about 100).

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

/// The 16 bytes of `id` when it is a GUID in the lower-case hyphenated form, exactly.
fn guid_of(id: &str) -> Option<[u8; 16]> {
    if id.len() != 36 {
        return None;
    }
    let u = Uuid::try_parse(id).ok()?;
    let mut buf = [0u8; 36];
    (u.hyphenated().encode_lower(&mut buf) == id).then(|| *u.as_bytes())
}

/// A set of cloud ids (see the module documentation).
#[derive(Debug, Default, Clone)]
pub struct CloudIdSet {
    guids: HashSet<[u8; 16]>,
    other: HashSet<Box<str>>,
}

impl CloudIdSet {
    pub fn new() -> Self {
        CloudIdSet::default()
    }

    /// Adds `id`; whether it was not in the set yet.
    pub fn insert(&mut self, id: &str) -> bool {
        match guid_of(id) {
            Some(g) => self.guids.insert(g),
            None => !self.other.contains(id) && self.other.insert(id.into()),
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        match guid_of(id) {
            Some(g) => self.guids.contains(&g),
            None => self.other.contains(id),
        }
    }

    pub fn len(&self) -> usize {
        self.guids.len() + self.other.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A map from cloud ids (see the module documentation).
#[derive(Debug, Clone)]
pub struct CloudIdMap<V> {
    guids: HashMap<[u8; 16], V>,
    other: HashMap<Box<str>, V>,
}

impl<V> Default for CloudIdMap<V> {
    fn default() -> Self {
        CloudIdMap {
            guids: HashMap::new(),
            other: HashMap::new(),
        }
    }
}

impl<V> CloudIdMap<V> {
    pub fn new() -> Self {
        CloudIdMap::default()
    }

    pub fn get(&self, id: &str) -> Option<&V> {
        match guid_of(id) {
            Some(g) => self.guids.get(&g),
            None => self.other.get(id),
        }
    }

    pub fn contains_key(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    /// Sets the value of `id`; its previous value.
    pub fn insert(&mut self, id: &str, value: V) -> Option<V> {
        match guid_of(id) {
            Some(g) => self.guids.insert(g, value),
            None => match self.other.get_mut(id) {
                Some(v) => Some(std::mem::replace(v, value)),
                None => self.other.insert(id.into(), value),
            },
        }
    }

    pub fn remove(&mut self, id: &str) -> Option<V> {
        match guid_of(id) {
            Some(g) => self.guids.remove(&g),
            None => self.other.remove(id),
        }
    }

    pub fn len(&self) -> usize {
        self.guids.len() + self.other.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn only_the_exact_lower_case_hyphenated_form_is_packed() {
        let g = "4a2d0c1e-aaaa-bbbb-cccc-000000000001";
        assert!(guid_of(g).is_some());
        for other in [
            "4A2D0C1E-AAAA-BBBB-CCCC-000000000001",
            "4a2d0c1eaaaabbbbcccc000000000001",
            "{4a2d0c1e-aaaa-bbbb-cccc-000000000001}",
            "urn:uuid:4a2d0c1e-aaaa-bbbb-cccc-000000000001",
            "smtp:ann@contoso.com",
            "",
        ] {
            assert_eq!(guid_of(other), None, "{other}");
        }
        // The same GUID in two forms is two ids, as two strings are.
        let mut s = CloudIdSet::new();
        assert!(s.insert(g));
        assert!(s.insert(&g.to_uppercase()));
        assert!(!s.insert(g));
        assert_eq!(s.len(), 2);
    }

    /// An id drawn from a few GUIDs in several spellings and a few other texts, so that
    /// operations on the same id repeat.
    fn id() -> impl Strategy<Value = String> {
        let guid = (0u8..6, 0u8..3).prop_map(|(n, form)| {
            let u = Uuid::from_bytes([n; 16]);
            match form {
                0 => u.hyphenated().to_string(),
                1 => u.hyphenated().to_string().to_uppercase(),
                _ => u.simple().to_string(),
            }
        });
        let other = prop_oneof![
            Just("smtp:ann@contoso.com".to_string()),
            Just("alias:bob".to_string()),
            "[a-f0-9-]{0,40}",
        ];
        prop_oneof![3 => guid, 1 => other]
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(String, u32),
        Remove(String),
        Get(String),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (id(), any::<u32>()).prop_map(|(i, v)| Op::Insert(i, v)),
            id().prop_map(Op::Remove),
            id().prop_map(Op::Get),
        ]
    }

    proptest! {
        /// The compact set answers as a set of `String`s.
        #[test]
        fn the_set_behaves_as_a_set_of_strings(ops in prop::collection::vec((id(), any::<bool>()), 0..200)) {
            let mut compact = CloudIdSet::new();
            let mut model: HashSet<String> = HashSet::new();
            for (id, insert) in ops {
                if insert {
                    prop_assert_eq!(compact.insert(&id), model.insert(id.clone()));
                }
                prop_assert_eq!(compact.contains(&id), model.contains(&id));
                prop_assert_eq!(compact.len(), model.len());
            }
        }

        /// The compact map answers as a map from `String`s.
        #[test]
        fn the_map_behaves_as_a_map_from_strings(ops in prop::collection::vec(op(), 0..200)) {
            let mut compact = CloudIdMap::new();
            let mut model: BTreeMap<String, u32> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(id, v) => {
                        prop_assert_eq!(compact.insert(&id, v), model.insert(id.clone(), v));
                    }
                    Op::Remove(id) => prop_assert_eq!(compact.remove(&id), model.remove(&id)),
                    Op::Get(id) => {
                        prop_assert_eq!(compact.get(&id), model.get(&id));
                        prop_assert_eq!(compact.contains_key(&id), model.contains_key(&id));
                    }
                }
                prop_assert_eq!(compact.len(), model.len());
            }
        }
    }
}
