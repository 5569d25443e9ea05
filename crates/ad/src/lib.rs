//! The Active Directory connector: LDAPS/StartTLS connection with certificate verification,
//! simple bind, rootDSE, paged search, ranged retrieval, schema discovery, values decoded by
//! syntax, and modifies sent with the permissive-modify control.
//!
//! Architecture invariant: this crate is the only one that speaks LDAP; it returns core types
//! (`DirectoryObject`, `Schema`) and never plans changes itself.

pub mod config;
pub mod connection;
pub mod error;
pub mod kerberos;
mod kerberos_bind;
mod security_descriptor;
pub mod wire;

pub use config::{AdConfig, AuthMethod, Transport};
pub use connection::{AdConnection, AdStats, PERMISSIVE_MODIFY_OID, RootDse, SearchScope, decode};
pub use error::AdError;
pub use security_descriptor::SD_FLAGS_OID;
