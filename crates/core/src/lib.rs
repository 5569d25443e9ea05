//! The pure core of exo-writeback: the domain model, the writeback profiles, scoping,
//! matching and planning of LDAP modifications.
//!
//! Architecture invariant: this crate does no I/O. It never imports `ldap3`, `reqwest`,
//! `rusqlite` or `tokio`; time is passed in.

pub mod directory;
pub mod drift;
pub mod equality;
pub mod guid;
pub mod ldap_text;
pub mod mail_recipient;
pub mod mailbox;
pub mod mapping;
pub mod matching;
pub mod membership;
pub mod outcome;
pub mod plan;
pub mod privilege;
pub mod profile;
pub mod profile_attrs;
pub mod provisioning;
pub mod proxy;
pub mod recipient_profile;
pub mod recipient_type;
pub mod schema;
pub mod scope;
pub mod secret;
pub mod settings;
pub mod target_policy;

#[cfg(test)]
mod architecture;
