//! The Active Directory connector: LDAPS/StartTLS connection with certificate verification,
//! simple bind, rootDSE, paged search, ranged retrieval, schema discovery, values decoded by
//! syntax, and modifies sent with the permissive-modify control.
//!
//! Architecture invariant: this crate is the only one that speaks LDAP; it returns core types
//! (`DirectoryObject`, `Schema`) and never plans changes itself.

pub mod acl;
pub mod config;
pub mod connection;
pub mod dc;
pub mod domain;
pub mod error;
pub mod forest;
pub mod forest_directory;
pub mod gc;
pub mod kerberos;
mod kerberos_bind;
pub mod locator;
pub mod readable;
pub mod referral;
pub mod wire;

pub use config::{AdConfig, AuthMethod, Transport};
pub use connection::{
    AdConnection, AdStats, DcIdentity, PERMISSIVE_MODIFY_OID, RootDse, SearchScope, UsnMark, decode,
};
pub use error::AdError;
