//! The duplicate-address guard's memory of a cycle.
//!
//! - [`AddressIndex`]: every proxy address and mail of the forest, read by initial and full
//!   cycles with one paged scan ([`Directory::scan_addresses`]) and kept as a sorted array of
//!   64-bit hashes (8 bytes per address, no DNs). A plan whose added addresses hash to none of
//!   them needs no search; a hit (a holder, the object itself, or a hash collision) is
//!   confirmed by the forest-wide search, which names the holder. An address added in AD after
//!   the scan is not seen — as an address added after today's per-mailbox search, before the
//!   write, was not: AD does not enforce the uniqueness of proxyAddresses itself.
//! - [`Claims`]: the addresses the cycle's own plans add, by the object that gets them, so that a
//!   second mailbox adding the same new address in the same cycle is refused although AD holds
//!   it on neither object yet. The first in read order takes it.
//!
//! Both compare as Exchange does: a bare SMTP address (in `smtp:`/`SMTP:` proxy values and in
//! mail) case-insensitively, another proxy value whole, case-insensitively.
//!
//! [`Directory::scan_addresses`]: crate::ports::Directory::scan_addresses

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use exo_writeback_core::directory::DirectoryObject;
use uuid::Uuid;

/// The comparison key of an address as a plan names it (a bare SMTP address, or a whole proxy
/// value with its prefix).
fn planned_key(address: &str) -> String {
    address.to_lowercase()
}

/// The comparison key of a proxyAddresses value held in AD.
fn proxy_key(value: &str) -> String {
    let lower = value.to_lowercase();
    match lower.strip_prefix("smtp:") {
        Some(bare) => bare.to_string(),
        None => lower,
    }
}

fn hash(key: &str) -> u64 {
    // SipHash with fixed keys: the same value hashes the same in the whole process.
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// Whether the sorted `hashes` hold `h`. The hashes are spread evenly over the 64-bit range
/// (SipHash), so the position of `h` is estimated from its value and the search starts there,
/// widening its window until it brackets `h`: about one cache line read per look-up where a
/// binary search over a million hashes reads twenty scattered ones. Exact whatever the
/// spread (an uneven one only widens the window more often).
fn holds(hashes: &[u64], h: u64) -> bool {
    let n = hashes.len();
    if n == 0 {
        return false;
    }
    // h / 2^64 of the way along: below n.
    let guess = ((u128::from(h) * n as u128) >> 64) as usize;
    let (mut lo, mut hi) = (guess, guess + 1);
    let mut step = 8;
    // Widen until hashes[lo] <= h < hashes[hi] (or an end is reached).
    while lo > 0 && hashes[lo] > h {
        lo = lo.saturating_sub(step);
        step *= 2;
    }
    step = 8;
    while hi < n && hashes[hi - 1] < h {
        hi = (hi + step).min(n);
        step *= 2;
    }
    hashes[lo..hi].binary_search(&h).is_ok()
}

/// Every address held in the forest when the cycle began (see the module documentation).
#[derive(Debug, Default)]
pub struct AddressIndex {
    hashes: Vec<u64>,
    objects: u64,
    sorted: bool,
}

impl AddressIndex {
    /// The attributes the scan reads.
    pub const ATTRIBUTES: [&'static str; 2] = ["proxyAddresses", "mail"];

    /// Add one object of the scan.
    pub fn add(&mut self, object: &DirectoryObject) {
        self.objects += 1;
        self.sorted = false;
        for v in object.attributes.get("proxyAddresses") {
            if let Some(t) = v.as_text() {
                self.hashes.push(hash(&proxy_key(t)));
            }
        }
        for v in object.attributes.get("mail") {
            if let Some(t) = v.as_text() {
                self.hashes.push(hash(&t.to_lowercase()));
            }
        }
    }

    /// Done adding: sorted, repeats removed, spare capacity released.
    pub fn seal(&mut self) {
        self.hashes.sort_unstable();
        self.hashes.dedup();
        self.hashes.shrink_to_fit();
        self.sorted = true;
    }

    /// Objects scanned.
    pub fn objects(&self) -> u64 {
        self.objects
    }

    /// Addresses indexed.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Of `addresses` (as a plan names them), those some object may hold: to be confirmed by
    /// a search. Empty: no object held any of them when the scan ran.
    pub fn maybe_held(&self, addresses: &[String]) -> Vec<String> {
        debug_assert!(self.sorted, "seal() before looking up");
        addresses
            .iter()
            .filter(|a| holds(&self.hashes, hash(&planned_key(a))))
            .cloned()
            .collect()
    }
}

/// The addresses this cycle's plans add, by the object that gets them (see the module
/// documentation): 64-bit hashes to the number of the object that took them, and each such
/// object's objectGUID once — about 13 bytes per address plus the hash table's slack, and 16
/// per object, so that an initial cycle where every mailbox adds addresses stays small. A hash
/// collision (about one in 10^8 cycles of a million addresses) refuses an object that the next
/// cycle writes.
#[derive(Debug, Default)]
pub struct Claims {
    /// Address hash (as bytes: no padding beside the `u32`) → index in `objects`.
    by_address: HashMap<[u8; 8], u32>,
    /// The objects that took addresses, in the order they took them.
    objects: Vec<Uuid>,
}

impl Claims {
    /// The first of `addresses` another object of this cycle already takes, with that object.
    pub fn taken(&self, addresses: &[String], object: Uuid) -> Option<(String, Uuid)> {
        addresses.iter().find_map(|a| {
            let n = *self.by_address.get(&key(a))?;
            let other = *self.objects.get(n as usize)?;
            (other != object).then(|| (a.clone(), other))
        })
    }

    /// `object` takes `addresses` (its plan goes on to the write phase).
    pub fn take(&mut self, addresses: &[String], object: Uuid) {
        // Numbered with a u32: a cycle takes one object per mailbox, far below 4 billion.
        let Ok(n) = u32::try_from(self.objects.len()) else {
            return;
        };
        let mut took = false;
        for a in addresses {
            self.by_address.entry(key(a)).or_insert_with(|| {
                took = true;
                n
            });
        }
        if took {
            self.objects.push(object);
        }
    }
}

/// The key of a claimed address.
fn key(address: &str) -> [u8; 8] {
    hash(&planned_key(address)).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use exo_writeback_core::directory::{AttrValue, Attributes};

    fn obj(proxies: &[&str], mail: Option<&str>) -> DirectoryObject {
        let mut a = Attributes::new();
        a.insert(
            "proxyAddresses",
            proxies
                .iter()
                .map(|p| AttrValue::Text(p.to_string()))
                .collect(),
        );
        if let Some(m) = mail {
            a.insert("mail", vec![AttrValue::Text(m.into())]);
        }
        DirectoryObject {
            dn: "CN=x,DC=x".into(),
            object_guid: uuid::Uuid::new_v4(),
            attributes: a,
        }
    }

    #[test]
    fn addresses_compare_as_exchange_does() {
        let mut ix = AddressIndex::default();
        ix.add(&obj(&["SMTP:Ann@Contoso.com", "X500:/o=Org/cn=Ann"], None));
        ix.add(&obj(&[], Some("Bob@Contoso.com")));
        ix.seal();
        let ask = |a: &[&str]| ix.maybe_held(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(ask(&["ann@contoso.com"]), ["ann@contoso.com"]);
        assert_eq!(ask(&["BOB@contoso.com"]), ["BOB@contoso.com"]);
        assert_eq!(ask(&["x500:/o=org/cn=ann"]), ["x500:/o=org/cn=ann"]);
        assert!(ask(&["carol@contoso.com", "X500:/o=Org/cn=Carol"]).is_empty());
        // A bare address is not an X500 value, nor the reverse.
        assert!(ask(&["smtp:ann@contoso.com"]).is_empty());
        assert_eq!(ix.objects(), 2);
    }

    #[test]
    fn the_first_claim_wins_and_an_object_never_conflicts_with_itself() {
        let (one, two, three) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut c = Claims::default();
        let a = vec!["Shared@contoso.com".to_string()];
        assert!(c.taken(&a, one).is_none());
        c.take(&a, one);
        assert!(c.taken(&a, one).is_none());
        assert_eq!(
            c.taken(&["shared@CONTOSO.com".to_string()], two),
            Some(("shared@CONTOSO.com".to_string(), one))
        );
        c.take(&a, two);
        assert_eq!(c.taken(&a, three).map(|t| t.1), Some(one));
    }

    /// The claims as they were kept before they were packed: hash → objectGUID.
    #[derive(Default)]
    struct Unpacked(HashMap<u64, Uuid>);

    impl Unpacked {
        fn taken(&self, addresses: &[String], object: Uuid) -> Option<(String, Uuid)> {
            addresses.iter().find_map(|a| {
                let other = *self.0.get(&hash(&planned_key(a)))?;
                (other != object).then(|| (a.clone(), other))
            })
        }
        fn take(&mut self, addresses: &[String], object: Uuid) {
            for a in addresses {
                self.0.entry(hash(&planned_key(a))).or_insert(object);
            }
        }
    }

    proptest::proptest! {
        /// The packed claims answer every question as the unpacked ones did.
        #[test]
        fn packed_claims_answer_as_the_unpacked(
            steps in proptest::collection::vec(
                (0u8..6, proptest::collection::vec((0u8..8, proptest::bool::ANY), 0..4)),
                0..100,
            )
        ) {
            let mut packed = Claims::default();
            let mut unpacked = Unpacked::default();
            for (object, addresses) in steps {
                let object = Uuid::from_bytes([object; 16]);
                let addresses: Vec<String> = addresses
                    .into_iter()
                    .map(|(n, upper)| {
                        let a = format!("user{n}@contoso.com");
                        if upper { a.to_uppercase() } else { a }
                    })
                    .collect();
                let answer = packed.taken(&addresses, object);
                proptest::prop_assert_eq!(&answer, &unpacked.taken(&addresses, object));
                if answer.is_none() {
                    packed.take(&addresses, object);
                    unpacked.take(&addresses, object);
                }
            }
        }
    }

    proptest::proptest! {
        /// The estimated-position search answers as a binary search, for hashes spread evenly
        /// or bunched at one end.
        #[test]
        fn the_positioned_search_answers_as_a_binary_search(
            mut hashes in proptest::collection::vec(proptest::num::u64::ANY, 0..300),
            bunched in proptest::bool::ANY,
            probes in proptest::collection::vec(proptest::num::u64::ANY, 0..50),
        ) {
            if bunched {
                for h in &mut hashes {
                    *h >>= 40;
                }
            }
            hashes.sort_unstable();
            hashes.dedup();
            let mut asked = probes;
            asked.extend(hashes.iter().copied());
            asked.extend(hashes.iter().map(|h| h.wrapping_add(1)));
            asked.extend([0, u64::MAX]);
            for h in asked {
                proptest::prop_assert_eq!(holds(&hashes, h), hashes.binary_search(&h).is_ok());
            }
        }
    }
}
