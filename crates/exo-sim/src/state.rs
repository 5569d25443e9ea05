//! The emulator's state: mailboxes (ordered by Guid for stable paging, with an identity
//! index), the simulated clock, fault rules and request counters.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Bound;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use exo_writeback_core::mailbox::Mailbox;
use jiff::{SignedDuration, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::faults::{Endpoint, FaultKind, FaultRule};
use crate::mailbox::SimMailbox;
use crate::opath::Filter;
use crate::recipient::SimRecipient;
use crate::routing::{BACKENDS, Route};

/// Errors from the state API.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StateError {
    #[error("no mailbox is identified by '{0}'")]
    NotFound(String),
    #[error("'{0}' matches more than one mailbox")]
    Ambiguous(String),
    #[error("a mailbox with Guid {0} already exists")]
    DuplicateGuid(Uuid),
    #[error(
        "the proxy address \"{address}\" is already being used by the proxy addresses or LegacyExchangeDN of \"{owner}\""
    )]
    AddressInUse { address: String, owner: String },
    #[error("{0}")]
    Invalid(String),
}

mod recipients;

#[derive(Default)]
struct Store {
    by_guid: BTreeMap<Uuid, SimMailbox>,
    /// Groups and mail contacts (`state/recipients.rs`), by Guid.
    recipients: BTreeMap<Uuid, SimRecipient>,
    /// Hash of a lower-cased identity key → Guids (candidates; verified on lookup).
    index: HashMap<u64, IndexEntry>,
}

enum IndexEntry {
    One(Uuid),
    Many(Vec<Uuid>),
}

fn key_hash(k: &str) -> u64 {
    let mut h = DefaultHasher::new();
    k.hash(&mut h);
    h.finish()
}

impl Store {
    fn index_add(&mut self, m: &SimMailbox) {
        for k in m.index_keys() {
            let h = key_hash(&k);
            match self.index.get_mut(&h) {
                None => {
                    self.index.insert(h, IndexEntry::One(m.guid));
                }
                Some(IndexEntry::One(g)) => {
                    if *g != m.guid {
                        let g = *g;
                        self.index.insert(h, IndexEntry::Many(vec![g, m.guid]));
                    }
                }
                Some(IndexEntry::Many(v)) => {
                    if !v.contains(&m.guid) {
                        v.push(m.guid);
                    }
                }
            }
        }
    }

    fn index_remove(&mut self, m: &SimMailbox) {
        for k in m.index_keys() {
            let h = key_hash(&k);
            let remove = match self.index.get_mut(&h) {
                Some(IndexEntry::One(g)) => *g == m.guid,
                Some(IndexEntry::Many(v)) => {
                    v.retain(|g| *g != m.guid);
                    if v.len() == 1 {
                        let g = v[0];
                        self.index.insert(h, IndexEntry::One(g));
                    }
                    false
                }
                None => false,
            };
            if remove {
                self.index.remove(&h);
            }
        }
    }

    /// The Guids of the mailboxes identified by `key`.
    fn lookup(&self, key: &str) -> Vec<Uuid> {
        let k = key.trim().to_lowercase();
        // Guids are looked up in the mailbox map itself, not the index.
        if let Ok(g) = Uuid::parse_str(&k)
            && self.by_guid.contains_key(&g)
        {
            let mut found = vec![g];
            found.extend(self.lookup_index(&k).into_iter().filter(|x| *x != g));
            return found;
        }
        self.lookup_index(&k)
    }

    fn lookup_index(&self, k: &str) -> Vec<Uuid> {
        let candidates: Vec<Uuid> = match self.index.get(&key_hash(k)) {
            None => Vec::new(),
            Some(IndexEntry::One(g)) => vec![*g],
            Some(IndexEntry::Many(v)) => v.clone(),
        };
        candidates
            .into_iter()
            .filter(|g| {
                self.by_guid
                    .get(g)
                    .is_some_and(|m| m.index_keys().iter().any(|x| x == k))
            })
            .collect()
    }

    fn resolve(&self, key: &str) -> Result<Uuid, StateError> {
        let found = self.lookup(key);
        match found.as_slice() {
            [] => Err(StateError::NotFound(key.to_string())),
            [g] => Ok(*g),
            _ => Err(StateError::Ambiguous(key.to_string())),
        }
    }

    /// Refuses SMTP addresses another mailbox, group or contact already holds.
    fn check_addresses(&self, m: &SimMailbox) -> Result<(), StateError> {
        self.check_recipient_addresses(m.guid, &m.email_addresses)?;
        for a in &m.email_addresses {
            let Some((prefix, addr)) = a.split_once(':') else {
                continue;
            };
            if !prefix.eq_ignore_ascii_case("smtp") {
                continue;
            }
            let k = addr.to_lowercase();
            for g in self.lookup(addr) {
                if g == m.guid {
                    continue;
                }
                if let Some(other) = self.by_guid.get(&g)
                    && other.email_addresses.iter().any(|o| {
                        o.split_once(':').is_some_and(|(p, x)| {
                            p.eq_ignore_ascii_case("smtp") && x.to_lowercase() == k
                        })
                    })
                {
                    return Err(StateError::AddressInUse {
                        address: a.clone(),
                        owner: other.alias.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    fn insert(&mut self, m: SimMailbox) -> Result<Uuid, StateError> {
        if self.by_guid.contains_key(&m.guid) {
            return Err(StateError::DuplicateGuid(m.guid));
        }
        self.check_addresses(&m)?;
        let g = m.guid;
        self.index_add(&m);
        self.by_guid.insert(g, m);
        Ok(g)
    }
}

/// Request counters per endpoint.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub token: AtomicU64,
    pub invoke: AtomicU64,
    pub nextlink: AtomicU64,
    pub control: AtomicU64,
}

pub(crate) struct Faults {
    pub rules: Vec<(u64, FaultRule, u32 /* seen */, u32 /* fired */)>,
    pub next_id: u64,
    /// How often each rule fired, also after a count-limited rule was used up and removed.
    pub fired: std::collections::HashMap<u64, u32>,
    pub rng: StdRng,
}

pub(crate) struct Inner {
    store: RwLock<Store>,
    clock_offset_nanos: AtomicI64,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) counters: Counters,
    /// Round-robin position of the front door over the back-end servers, for requests whose
    /// anchor resolves to no mailbox.
    frontdoor: AtomicU64,
    /// Instance secret: signs access tokens and skiptokens.
    pub(crate) secret: [u8; 32],
}

/// A handle on the emulator's state; cheap to clone.
#[derive(Clone)]
pub struct SimState {
    pub(crate) inner: Arc<Inner>,
}

impl SimState {
    pub(crate) fn new(fault_seed: u64) -> Self {
        let mut secret = [0u8; 32];
        rand::rng().fill(&mut secret);
        SimState {
            inner: Arc::new(Inner {
                store: RwLock::new(Store::default()),
                clock_offset_nanos: AtomicI64::new(0),
                faults: Mutex::new(Faults {
                    rules: Vec::new(),
                    next_id: 1,
                    fired: std::collections::HashMap::new(),
                    rng: StdRng::seed_from_u64(fault_seed),
                }),
                counters: Counters::default(),
                frontdoor: AtomicU64::new(0),
                secret,
            }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Store> {
        self.inner.store.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Store> {
        self.inner.store.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The simulated clock: wall-clock time plus every advance so far.
    pub fn now(&self) -> Timestamp {
        let off = self.inner.clock_offset_nanos.load(Ordering::SeqCst);
        Timestamp::now()
            .checked_add(SignedDuration::from_nanos(off))
            .unwrap_or(Timestamp::MAX)
    }

    /// Moves the simulated clock forward (tokens and skiptokens expire by it; changes are
    /// stamped with it).
    pub fn advance_clock(&self, secs: u64) {
        let nanos = i64::try_from(secs)
            .unwrap_or(i64::MAX / 1_000_000_000)
            .saturating_mul(1_000_000_000);
        self.inner
            .clock_offset_nanos
            .fetch_add(nanos, Ordering::SeqCst);
    }

    /// Adds a mailbox (a [`SimMailbox`], or a core [`Mailbox`] which gets a fresh Guid).
    /// Refuses a Guid or an SMTP address already in use.
    pub fn add_mailbox(&self, m: impl Into<NewMailbox>) -> Result<Uuid, StateError> {
        let m = match m.into() {
            NewMailbox::Sim(m) => *m,
            NewMailbox::Core(c) => SimMailbox::from_core(&c, Uuid::new_v4(), self.now()),
        };
        self.write().insert(m)
    }

    /// Adds many mailboxes at once (seeding); stops at the first refused one.
    pub fn add_mailboxes(
        &self,
        ms: impl IntoIterator<Item = SimMailbox>,
    ) -> Result<usize, StateError> {
        let mut store = self.write();
        let mut n = 0;
        for m in ms {
            store.insert(m)?;
            n += 1;
        }
        Ok(n)
    }

    /// The mailbox identified by `id` (ExternalDirectoryObjectId, UPN, any SMTP address,
    /// alias, name or Guid; case-insensitive).
    pub fn mailbox(&self, id: &str) -> Option<SimMailbox> {
        let store = self.read();
        let g = store.resolve(id).ok()?;
        store.by_guid.get(&g).cloned()
    }

    /// Resolves an identity to a Guid.
    pub fn resolve(&self, id: &str) -> Result<Uuid, StateError> {
        self.read().resolve(id)
    }

    /// Changes a mailbox as an administrator would: `f` edits it, then WhenChanged is set to
    /// the simulated clock. The change is refused (and nothing is stored) when it would give
    /// another mailbox's SMTP address or change the Guid.
    pub fn update_mailbox<F>(&self, id: &str, f: F) -> Result<SimMailbox, StateError>
    where
        F: FnOnce(&mut SimMailbox),
    {
        let now = self.now();
        self.update_mailbox_with(id, |m| {
            f(m);
            m.when_changed = now;
            Ok(())
        })
    }

    /// Like [`update_mailbox`](Self::update_mailbox) but `f` may refuse, and WhenChanged is
    /// left to `f`.
    pub fn update_mailbox_with<F>(&self, id: &str, f: F) -> Result<SimMailbox, StateError>
    where
        F: FnOnce(&mut SimMailbox) -> Result<(), StateError>,
    {
        let mut store = self.write();
        let g = store.resolve(id)?;
        let Some(old) = store.by_guid.get(&g).cloned() else {
            return Err(StateError::NotFound(id.to_string()));
        };
        let mut new = old.clone();
        f(&mut new)?;
        if new.guid != g {
            return Err(StateError::Invalid(
                "the Guid of a mailbox cannot change".into(),
            ));
        }
        store.check_addresses(&new)?;
        store.index_remove(&old);
        store.index_add(&new);
        store.by_guid.insert(g, new.clone());
        Ok(new)
    }

    /// Removes a mailbox.
    pub fn remove_mailbox(&self, id: &str) -> Result<SimMailbox, StateError> {
        let mut store = self.write();
        let g = store.resolve(id)?;
        let m = store
            .by_guid
            .remove(&g)
            .ok_or_else(|| StateError::NotFound(id.to_string()))?;
        store.index_remove(&m);
        Ok(m)
    }

    /// Removes every mailbox.
    pub fn clear_mailboxes(&self) {
        let mut store = self.write();
        store.by_guid.clear();
        store.index.clear();
    }

    pub fn mailbox_count(&self) -> usize {
        self.read().by_guid.len()
    }

    /// Up to `limit` mailboxes in Guid order, after `after` (exclusive).
    pub fn mailboxes_after(&self, after: Option<Uuid>, limit: usize) -> Vec<SimMailbox> {
        let store = self.read();
        let lower = match after {
            Some(g) => Bound::Excluded(g),
            None => Bound::Unbounded,
        };
        store
            .by_guid
            .range((lower, Bound::Unbounded))
            .take(limit)
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// Scans mailboxes after `after` in Guid order, calling `visit` for each one matching
    /// `filter`, until `visit` returns false. Holds the read lock; `visit` must be quick.
    pub(crate) fn scan(
        &self,
        after: Option<Uuid>,
        filter: Option<&Filter>,
        mut visit: impl FnMut(&SimMailbox) -> bool,
    ) {
        let store = self.read();
        let lower = match after {
            Some(g) => Bound::Excluded(g),
            None => Bound::Unbounded,
        };
        for (_, m) in store.by_guid.range((lower, Bound::Unbounded)) {
            if filter.is_none_or(|f| f.matches(m)) && !visit(m) {
                break;
            }
        }
    }

    /// Adds a fault rule; returns its id.
    pub fn add_fault(&self, rule: FaultRule) -> u64 {
        let mut f = self.inner.faults.lock().unwrap_or_else(|p| p.into_inner());
        let id = f.next_id;
        f.next_id += 1;
        f.rules.push((id, rule, 0, 0));
        id
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        let mut f = self.inner.faults.lock().unwrap_or_else(|p| p.into_inner());
        f.rules.clear();
    }

    /// The active fault rules with their ids and how often each fired.
    pub fn faults(&self) -> Vec<(u64, FaultRule, u32)> {
        let f = self.inner.faults.lock().unwrap_or_else(|p| p.into_inner());
        f.rules
            .iter()
            .map(|(id, r, _, fired)| (*id, r.clone(), *fired))
            .collect()
    }

    /// How often the rule `id` fired so far — also once it was used up (a count-limited rule
    /// is removed then) or cleared: the proof that a fault reached the client.
    pub fn fired(&self, id: u64) -> u32 {
        let f = self.inner.faults.lock().unwrap_or_else(|p| p.into_inner());
        f.fired.get(&id).copied().unwrap_or(0)
    }

    /// Decides which fault (if any) applies to a request on `endpoint`. Count-limited rules
    /// are removed once used up.
    pub(crate) fn take_fault(&self, endpoint: Endpoint) -> Option<FaultKind> {
        let mut guard = self.inner.faults.lock().unwrap_or_else(|p| p.into_inner());
        let f = &mut *guard;
        let mut chosen = None;
        let mut exhausted = None;
        for (i, (id, rule, seen, fired)) in f.rules.iter_mut().enumerate() {
            if !rule.endpoint.covers(endpoint) || !rule.kind.applies_to(endpoint) {
                continue;
            }
            *seen += 1;
            if *seen <= rule.skip {
                continue;
            }
            let fire = match rule.probability {
                Some(p) => f.rng.random::<f64>() < p,
                None => true,
            };
            if !fire {
                continue;
            }
            *fired += 1;
            *f.fired.entry(*id).or_default() += 1;
            chosen = Some(rule.kind.clone());
            if rule.count.is_some_and(|c| *fired >= c) {
                exhausted = Some(i);
            }
            break;
        }
        if let Some(i) = exhausted {
            f.rules.remove(i);
        }
        chosen
    }

    /// Requests seen on an endpoint (`Any` = all Exchange endpoints together).
    pub fn request_count(&self, endpoint: Endpoint) -> u64 {
        let c = &self.inner.counters;
        match endpoint {
            Endpoint::Token => c.token.load(Ordering::SeqCst),
            Endpoint::Invoke => c.invoke.load(Ordering::SeqCst),
            Endpoint::NextLink => c.nextlink.load(Ordering::SeqCst),
            Endpoint::FirstPage => c
                .invoke
                .load(Ordering::SeqCst)
                .saturating_sub(c.nextlink.load(Ordering::SeqCst)),
            Endpoint::Any => c.token.load(Ordering::SeqCst) + c.invoke.load(Ordering::SeqCst),
        }
    }

    pub(crate) fn count(&self, endpoint: Endpoint) {
        let c = &self.inner.counters;
        match endpoint {
            Endpoint::Token => c.token.fetch_add(1, Ordering::SeqCst),
            Endpoint::Invoke | Endpoint::FirstPage => c.invoke.fetch_add(1, Ordering::SeqCst),
            Endpoint::NextLink => {
                c.invoke.fetch_add(1, Ordering::SeqCst);
                c.nextlink.fetch_add(1, Ordering::SeqCst)
            }
            Endpoint::Any => c.control.fetch_add(1, Ordering::SeqCst),
        };
    }

    /// The back-end server that serves a request routed by `route`: the anchor's mailbox
    /// server, or (unresolved) the next server in turn, as a front door spreading load would.
    pub(crate) fn serving_backend(&self, route: Route) -> u8 {
        let i = match route {
            Route::Mailbox(b) => b,
            Route::Unresolved => {
                let n = self.inner.frontdoor.fetch_add(1, Ordering::SeqCst);
                (n % BACKENDS.len() as u64) as usize
            }
        };
        u8::try_from(i).unwrap_or(0)
    }

    pub(crate) fn control_count(&self) -> u64 {
        self.inner.counters.control.load(Ordering::SeqCst)
    }
}

/// What [`SimState::add_mailbox`] accepts.
pub enum NewMailbox {
    Sim(Box<SimMailbox>),
    Core(Box<Mailbox>),
}

impl From<SimMailbox> for NewMailbox {
    fn from(m: SimMailbox) -> Self {
        NewMailbox::Sim(Box::new(m))
    }
}

impl From<Mailbox> for NewMailbox {
    fn from(m: Mailbox) -> Self {
        NewMailbox::Core(Box::new(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(n: u128, alias: &str) -> SimMailbox {
        SimMailbox::new(
            Uuid::from_u128(n),
            alias,
            &format!("{alias}@contoso.com"),
            Timestamp::UNIX_EPOCH,
        )
    }

    #[test]
    fn identities_resolve_case_insensitively_and_follow_updates() {
        let s = SimState::new(0);
        s.add_mailbox(mb(1, "alice")).unwrap();
        s.add_mailbox(mb(2, "bob")).unwrap();
        assert_eq!(s.resolve("ALICE@contoso.com").unwrap(), Uuid::from_u128(1));
        assert_eq!(
            s.resolve(&Uuid::from_u128(2).to_string()).unwrap(),
            Uuid::from_u128(2)
        );
        s.update_mailbox("bob", |m| {
            m.email_addresses = vec!["SMTP:robert@contoso.com".into()];
            m.user_principal_name = "robert@contoso.com".into();
        })
        .unwrap();
        assert!(s.mailbox("bob@contoso.com").is_none());
        assert_eq!(s.mailbox("Robert@Contoso.com").unwrap().alias, "bob");
        let err = s
            .update_mailbox("alice", |m| {
                m.email_addresses.push("smtp:robert@contoso.com".into())
            })
            .unwrap_err();
        assert!(matches!(err, StateError::AddressInUse { .. }), "{err}");
        assert!(s.mailbox("alice").unwrap().email_addresses.len() == 1);
    }

    #[test]
    fn an_ambiguous_alias_is_reported() {
        let s = SimState::new(0);
        let mut a = mb(1, "x");
        a.alias = "same".into();
        let mut b = mb(2, "y");
        b.alias = "same".into();
        s.add_mailbox(a).unwrap();
        s.add_mailbox(b).unwrap();
        assert_eq!(s.resolve("same"), Err(StateError::Ambiguous("same".into())));
        s.remove_mailbox("x@contoso.com").unwrap();
        assert_eq!(s.resolve("same").unwrap(), Uuid::from_u128(2));
    }
}
