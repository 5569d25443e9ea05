//! Directory objects as read from AD, and the modifications planned for them.

use std::collections::BTreeMap;
use uuid::Uuid;

/// One attribute value, decoded by the attribute's schema syntax (never by guessing).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AttrValue {
    Text(String),
    Bytes(Vec<u8>),
}

impl AttrValue {
    pub fn as_text(&self) -> Option<&str> {
        match self {
            AttrValue::Text(s) => Some(s),
            AttrValue::Bytes(_) => None,
        }
    }
    /// The raw bytes sent on the wire (UTF-8 for text).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            AttrValue::Text(s) => s.as_bytes(),
            AttrValue::Bytes(b) => b,
        }
    }
}

/// Attribute values keyed by lower-cased lDAPDisplayName (LDAP names are case-insensitive).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes(BTreeMap<String, Vec<AttrValue>>);

impl Attributes {
    pub fn new() -> Self {
        Self::default()
    }
    /// The values of `name` (any case). Looked up without allocating: a name is lower-cased
    /// into a buffer on the stack (attribute names are short), once per call.
    pub fn get(&self, name: &str) -> &[AttrValue] {
        with_lower(name, |lower| self.0.get(lower))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
    pub fn insert(&mut self, name: &str, values: Vec<AttrValue>) {
        self.0.insert(name.to_ascii_lowercase(), values);
    }
    pub fn push(&mut self, name: &str, value: AttrValue) {
        if let Some(values) = with_lower(name, |lower| self.0.get_mut(lower)) {
            values.push(value);
            return;
        }
        self.0.insert(name.to_ascii_lowercase(), vec![value]);
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[AttrValue])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

/// Calls `f` with `name` lower-cased (ASCII, as LDAP compares attribute descriptions): as it
/// is when it has no upper-case letter, else copied into a stack buffer; a name longer than
/// the buffer is lower-cased on the heap.
fn with_lower<R>(name: &str, f: impl FnOnce(&str) -> R) -> R {
    const MAX: usize = 64;
    if !name.bytes().any(|b| b.is_ascii_uppercase()) {
        return f(name);
    }
    if name.len() > MAX {
        return f(&name.to_ascii_lowercase());
    }
    let mut buf = [0u8; MAX];
    let buf = &mut buf[..name.len()];
    buf.copy_from_slice(name.as_bytes());
    buf.make_ascii_lowercase();
    match std::str::from_utf8(buf) {
        Ok(lower) => f(lower),
        // Unreachable: lower-casing ASCII letters keeps UTF-8 valid.
        Err(_) => f(&name.to_ascii_lowercase()),
    }
}

/// An AD object as read by the AD adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryObject {
    pub dn: String,
    pub object_guid: Uuid,
    pub attributes: Attributes,
}

/// The operation of one attribute change, as in an LDAP modify request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ModOp {
    /// Add the given values.
    Add,
    /// Delete the given values; with no values, delete the whole attribute.
    Delete,
    /// Replace all values with the given ones; with no values, clear the attribute.
    Replace,
}

/// One attribute change inside a modify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrChange {
    pub op: ModOp,
    pub attribute: String,
    pub values: Vec<AttrValue>,
}

/// One LDAP modify request: an object is written whole or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectModify {
    pub dn: String,
    pub changes: Vec<AttrChange>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A name is found in any case, the same as a heap-lower-cased look-up finds it, for
        /// names shorter and longer than the stack buffer, and pushes land on one entry.
        #[test]
        fn names_are_found_in_any_case(
            name in "[a-zA-Z0-9;-]{1,80}",
            flips in proptest::collection::vec(any::<bool>(), 80),
        ) {
            let mut a = Attributes::new();
            a.insert(&name, vec![AttrValue::Text("x".into())]);
            let other: String = name
                .chars()
                .zip(&flips)
                .map(|(c, f)| if *f { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
                .collect();
            prop_assert_eq!(a.get(&other), &[AttrValue::Text("x".into())][..]);
            a.push(&other, AttrValue::Text("y".into()));
            prop_assert_eq!(a.iter().count(), 1);
            prop_assert_eq!(a.get(&name.to_ascii_uppercase()).len(), 2);
            let longer = format!("{other}x");
            prop_assert!(a.get(&longer).is_empty());
        }
    }
}
