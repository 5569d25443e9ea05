//! The pure core of exo-writeback: the domain model, the writeback profiles, scoping,
//! matching and planning of LDAP modifications.
//!
//! Architecture invariant: this crate does no I/O. It never imports `ldap3`, `reqwest`,
//! `rusqlite` or `tokio`; time is passed in.

pub mod directory;
pub mod guid;
pub mod ldap_text;
pub mod mailbox;
pub mod mapping;
pub mod matching;
pub mod outcome;
pub mod plan;
pub mod privilege;
pub mod profile;
pub mod profile_attrs;
pub mod provisioning;
pub mod proxy;
pub mod schema;
pub mod scope;
pub mod secret;
pub mod settings;
pub mod target_policy;

#[cfg(test)]
mod architecture {
    /// Architecture invariant, enforced: the pure core and the expression language depend on
    /// no I/O crate, so they cannot fail for I/O reasons.
    #[test]
    fn pure_crates_import_no_io_crates() {
        const IO_CRATES: [&str; 8] = [
            "ldap3", "reqwest", "rusqlite", "tokio", "axum", "hyper", "std::fs", "std::net",
        ];
        for (krate, manifest) in [
            ("core", include_str!("../Cargo.toml")),
            ("expr", include_str!("../../expr/Cargo.toml")),
        ] {
            for io in IO_CRATES.iter().filter(|c| !c.contains("::")) {
                assert!(
                    !manifest.lines().any(|l| l.trim_start().starts_with(io)),
                    "crates/{krate} must not depend on {io}"
                );
            }
        }
        let sources = [
            include_str!("directory.rs"),
            include_str!("guid.rs"),
            include_str!("ldap_text.rs"),
            include_str!("mailbox.rs"),
            include_str!("mapping.rs"),
            include_str!("matching.rs"),
            include_str!("outcome.rs"),
            include_str!("plan.rs"),
            include_str!("privilege.rs"),
            include_str!("profile.rs"),
            include_str!("provisioning.rs"),
            include_str!("profile_attrs.rs"),
            include_str!("proxy.rs"),
            include_str!("schema.rs"),
            include_str!("scope.rs"),
            include_str!("secret.rs"),
            include_str!("settings.rs"),
            include_str!("target_policy.rs"),
        ];
        for source in sources {
            for io in IO_CRATES {
                assert!(
                    !source.contains(&format!("{io}::")) && !source.contains(&format!("use {io}")),
                    "the pure core must not use {io}"
                );
            }
        }
    }
}
