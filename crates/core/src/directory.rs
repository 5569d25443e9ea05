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
    pub fn get(&self, name: &str) -> &[AttrValue] {
        self.0
            .get(&name.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
    pub fn insert(&mut self, name: &str, values: Vec<AttrValue>) {
        self.0.insert(name.to_ascii_lowercase(), values);
    }
    pub fn push(&mut self, name: &str, value: AttrValue) {
        self.0
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(value);
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[AttrValue])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
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
