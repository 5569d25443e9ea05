//! The in-memory LDAP target of `scale`: the engine's own test directory
//! (`exo_writeback_engine::testing::FakeDirectory`, every value indexed as AD indexes its
//! searched attributes, so a lookup costs an indexed search, not a scan), holding one user
//! object per directory-synchronised mailbox of the emulator's generator (matched by
//! objectGUID, as the DC would).
//!
//! [`BenchDirectory`] (the fake behind the [`Counting`] hook) serves it to the engine in one of
//! two modes ([`Modifies`]): `count`
//! (the default) checks that each modify's DN exists and counts it without changing the
//! directory, so the process's memory growth during the cycle is the agent's own (how the
//! 2026-12-02 figures were taken); `apply` applies and indexes every written value, as the
//! fake does for the engine's tests, so the directory grows with the cycle.
//!
//! The CPU time the directory spends serving the engine's calls is measured on the serving
//! thread ([`Counting::directory_cpu_ns`], `CLOCK_THREAD_CPUTIME_ID` around each call through
//! [`Hook::enter`]/[`Hook::leave`], a scan's pages without the engine's handling of each
//! object): the DC's share of the process's CPU, which a real DC spends in its own process.
//!
//! Its scans (`scan_match_keys`, `scan_addresses`) are the fake's, which copy a page of
//! objects at a time out of the directory, as AD's paged search hands them out (a scan that
//! copied every object first would hold a second directory at the peak, which the peak RSS
//! above the directory would count as the agent's).

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use exo_sim::SimMailbox;
use exo_writeback_core::directory::{AttrValue, Attributes, DirectoryObject, ObjectModify};
use exo_writeback_engine::ports::{Directory, DirectoryError};
use exo_writeback_engine::testing::{FakeDirectory, Hook, Hooked};

/// What the bench directory does with a modify.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Modifies {
    /// Check the DN exists and count it; the directory stays as built.
    Count,
    /// Apply it (the directory grows by the written values).
    Apply,
}

/// The directory `scale` gives the engine: [`FakeDirectory`] for every read and scan;
/// modifies counted or applied ([`Counting`]).
pub type BenchDirectory = Hooked<Counting>;

/// What the bench directory does with a modify ([`Modifies`]), and how many it accepted.
#[derive(Clone)]
pub struct Counting {
    pub mode: Modifies,
    /// Modifies accepted (counted or applied).
    pub modifies: Arc<AtomicUsize>,
    /// CPU time the directory spent serving calls, in nanoseconds (see the module
    /// documentation).
    pub directory_cpu_ns: Arc<AtomicU64>,
}

thread_local! {
    /// This thread's CPU time when the directory began serving its current call, and how
    /// deep in calls it is (a call made while serving one is part of it).
    static SERVING: Cell<(u64, u32)> = const { Cell::new((0, 0)) };
}

/// This thread's CPU time, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// `inner` served to the engine, its modifies handled as `mode` says.
pub fn bench_directory(inner: FakeDirectory, mode: Modifies) -> BenchDirectory {
    Hooked {
        inner,
        hook: Counting {
            mode,
            modifies: Arc::default(),
            directory_cpu_ns: Arc::default(),
        },
    }
}

impl Hook for Counting {
    fn enter(&self) {
        SERVING.with(|s| {
            let (start, depth) = s.get();
            s.set(if depth == 0 {
                (thread_cpu_ns(), 1)
            } else {
                (start, depth + 1)
            });
        });
    }

    fn leave(&self) {
        SERVING.with(|s| {
            let (start, depth) = s.get();
            if depth == 1 {
                let spent = thread_cpu_ns().saturating_sub(start);
                self.directory_cpu_ns.fetch_add(spent, Ordering::Relaxed);
            }
            s.set((start, depth.saturating_sub(1)));
        });
    }

    async fn modify(
        &self,
        inner: &FakeDirectory,
        modify: &ObjectModify,
    ) -> Result<(), DirectoryError> {
        match self.mode {
            Modifies::Apply => inner.modify(modify).await?,
            Modifies::Count => {
                // As the DC: a modify of an object that does not exist fails (noSuchObject).
                // Looked up, not copied: a copy of the object (its attributes, one allocation
                // each) is no part of a DC's modify.
                if !inner.holds_dn(&modify.dn) {
                    return Err(DirectoryError {
                        result: Some("LDAP result 32".into()),
                        ..DirectoryError::new(format!("no such object {}", modify.dn))
                    });
                }
            }
        }
        self.modifies.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The object AD holds for each dir-synced mailbox, before writeback: the primary address
/// only (so every cloud-managed mailbox needs a write).
pub fn directory_of(mailboxes: impl Iterator<Item = SimMailbox>) -> FakeDirectory {
    let directory = FakeDirectory::new();
    directory.forget_modifies();
    for m in mailboxes {
        let Ok(guid) = exo_writeback_core::guid::uuid_from_immutable_id(&m.immutable_id) else {
            continue;
        };
        let mut a = Attributes::new();
        let t = |s: &str| vec![AttrValue::Text(s.to_string())];
        a.insert(
            "objectClass",
            ["top", "person", "organizationalPerson", "user"]
                .iter()
                .map(|s| AttrValue::Text(s.to_string()))
                .collect(),
        );
        a.insert("mail", t(&m.windows_email_address));
        a.insert(
            "proxyAddresses",
            t(&format!("SMTP:{}", m.windows_email_address)),
        );
        a.insert("userPrincipalName", t(&m.user_principal_name));
        a.insert("mailNickname", t(&m.alias));
        directory.insert(DirectoryObject {
            dn: format!("CN={},OU=Mailboxes,DC=lab,DC=example,DC=test", m.alias),
            object_guid: guid,
            attributes: a,
        });
    }
    directory
}

#[cfg(test)]
mod tests {
    use super::*;
    use exo_writeback_core::directory::{AttrChange, ModOp};

    /// In `count` mode a modify of an object the directory holds (its DN in any case) is
    /// counted and leaves the object as it was; a modify of a DN it does not hold fails as the
    /// DC's noSuchObject, uncounted.
    #[tokio::test]
    async fn count_mode_counts_modifies_of_held_objects_and_refuses_others() {
        let inner = FakeDirectory::new();
        let guid = inner.add("alice", Attributes::new());
        let held = inner.get(&guid).dn;
        let dir = bench_directory(inner.clone(), Modifies::Count);
        let change = |dn: String| ObjectModify {
            dn,
            changes: vec![AttrChange {
                op: ModOp::Replace,
                attribute: "extensionAttribute1".into(),
                values: vec![AttrValue::Text("x".into())],
            }],
        };
        dir.modify(&change(held.to_uppercase()))
            .await
            .expect("held");
        assert_eq!(dir.hook.modifies.load(Ordering::Relaxed), 1);
        assert!(inner.values(&guid, "extensionAttribute1").is_empty());
        let missing = dir
            .modify(&change(
                "CN=nobody,OU=Mailboxes,DC=lab,DC=example,DC=test".into(),
            ))
            .await
            .expect_err("not held");
        assert_eq!(missing.result.as_deref(), Some("LDAP result 32"));
        assert_eq!(dir.hook.modifies.load(Ordering::Relaxed), 1);
    }
}
