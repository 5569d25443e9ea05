//! Deterministic mailbox generation: the same spec always yields the same mailboxes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jiff::{SignedDuration, Timestamp};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::mailbox::{RecipientKind, SimMailbox};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SeedSpec {
    /// How many mailboxes.
    pub count: usize,
    /// RNG seed: the same seed gives the same mailboxes.
    pub seed: u64,
    /// The vanity domain of primary addresses (default `contoso.com`).
    pub domain: String,
    /// The tenant's initial domain (`<tenant>.onmicrosoft.com`) for secondary addresses.
    pub initial_domain: String,
    /// Fraction with `IsExchangeCloudManaged = false` (default 0.10).
    pub not_cloud_managed: f64,
    /// Fraction of cloud-only mailboxes (`IsDirSynced = false`, no ImmutableId; default 0.05).
    pub not_dir_synced: f64,
}

impl Default for SeedSpec {
    fn default() -> Self {
        SeedSpec {
            count: 0,
            seed: 1,
            domain: "contoso.com".into(),
            initial_domain: "contoso.onmicrosoft.com".into(),
            not_cloud_managed: 0.10,
            not_dir_synced: 0.05,
        }
    }
}

const FIRST: &[&str] = &[
    "Aaron", "Abigail", "Adele", "Ahmed", "Aisha", "Alain", "Alba", "Amara", "Anders", "Ana",
    "Ben", "Bianca", "Boris", "Brigid", "Carlos", "Chen", "Chloé", "Dagny", "Daniel", "Dara",
    "Elif", "Emeka", "Emma", "Erik", "Fatima", "Felix", "Freya", "Giulia", "Hana", "Hugo", "Ines",
    "Ivan", "Jana", "Jonas", "Kai", "Kenji", "Lara", "Liam", "Lucía", "Maja", "Mateo", "Mei",
    "Nadia", "Niamh", "Noah", "Olga", "Omar", "Priya", "Rafael", "Sofia", "Søren", "Tariq", "Ulla",
    "Vera", "Wei", "Yara", "Zoë",
];
const LAST: &[&str] = &[
    "Andersson",
    "Bianchi",
    "Brennan",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "García",
    "Haddad",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Müller",
    "Nakamura",
    "Novak",
    "O'Brien",
    "Okafor",
    "Park",
    "Quinn",
    "Rossi",
    "Santos",
    "Schmidt",
    "Silva",
    "Tanaka",
    "Van der Berg",
    "Walsh",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zhang",
    "Ørsted",
];
const DEPARTMENTS: &[&str] = &[
    "Finance",
    "Sales",
    "Engineering",
    "Legal",
    "Operations",
    "Marketing",
    "HR",
    "Support",
];
const ROOMS: &[&str] = &[
    "Boardroom",
    "Atlas",
    "Orion",
    "Harbour View",
    "Studio",
    "Lab",
];
const EQUIPMENT: &[&str] = &["Projector", "Van", "Camera Kit", "Loaner Laptop"];
const SHARED: &[&str] = &[
    "Info",
    "Support",
    "Billing",
    "Careers",
    "Press",
    "Facilities",
];

/// Folds a display name into the ASCII characters of a mail local part.
fn local_part(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let mapped = match c {
            'é' | 'è' | 'ë' => "e",
            'á' | 'à' => "a",
            'í' => "i",
            'ó' | 'ö' => "o",
            'ü' | 'ú' => "u",
            'ø' | 'Ø' => "o",
            'å' => "a",
            'æ' => "ae",
            'ß' => "ss",
            'ç' => "c",
            'ñ' => "n",
            c if c.is_ascii_alphanumeric() => {
                out.push(c.to_ascii_lowercase());
                continue;
            }
            '.' | '-' => ".",
            _ => "",
        };
        out.push_str(mapped);
    }
    out
}

fn random_uuid(rng: &mut StdRng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

/// Generates `spec.count` mailboxes. Deterministic in `spec`. Mailbox `i` of a spec is the
/// same whatever the count, so a bigger seed extends a smaller one.
pub fn generate(spec: &SeedSpec) -> impl Iterator<Item = SimMailbox> + '_ {
    let base: Timestamp = Timestamp::from_second(1_672_531_200).unwrap_or(Timestamp::UNIX_EPOCH); // 2023-01-01
    let tenant_guid = {
        let mut rng = StdRng::seed_from_u64(spec.seed ^ 0x005E_ED7E_4A47);
        random_uuid(&mut rng)
    };
    (0..spec.count).map(move |i| one(spec, i, base, tenant_guid))
}

fn one(spec: &SeedSpec, i: usize, base: Timestamp, tenant_guid: Uuid) -> SimMailbox {
    let mut rng = StdRng::seed_from_u64(spec.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i as u64);
    let guid = random_uuid(&mut rng);
    let kind = match i % 20 {
        5 => RecipientKind::Room,
        11 => RecipientKind::Equipment,
        13 | 17 => RecipientKind::Shared,
        _ => RecipientKind::User,
    };
    let n = i + 1;
    let (display, local) = match kind {
        RecipientKind::User => {
            let first = FIRST[rng.random_range(0..FIRST.len())];
            let last = LAST[rng.random_range(0..LAST.len())];
            (
                format!("{first} {last}"),
                format!("{}.{}{n}", local_part(first), local_part(last)),
            )
        }
        RecipientKind::Room => {
            let r = ROOMS[rng.random_range(0..ROOMS.len())];
            (
                format!("Room {r} {n}"),
                format!("room.{}{n}", local_part(r)),
            )
        }
        RecipientKind::Equipment => {
            let e = EQUIPMENT[rng.random_range(0..EQUIPMENT.len())];
            (
                format!("{e} {n}"),
                format!("equipment.{}{n}", local_part(e)),
            )
        }
        RecipientKind::Shared => {
            let s = SHARED[rng.random_range(0..SHARED.len())];
            (format!("{s} {n}"), format!("{}{n}", local_part(s)))
        }
    };
    let alias = local.replace('.', "");
    let primary = format!("{local}@{}", spec.domain);
    let created = base
        .checked_add(SignedDuration::from_secs(rng.random_range(0..40_000_000)))
        .unwrap_or(base);
    let changed = created
        .checked_add(SignedDuration::from_secs(rng.random_range(0..20_000_000)))
        .unwrap_or(created);
    let mut m = SimMailbox::new(guid, &alias, &primary, created);
    m.when_changed = changed;
    m.exchange_guid = random_uuid(&mut rng);
    m.name = alias.clone();
    m.display_name = display;
    m.kind = kind;
    m.external_directory_object_id = random_uuid(&mut rng).to_string();
    m.is_dir_synced = rng.random::<f64>() >= spec.not_dir_synced;
    m.is_exchange_cloud_managed = !m.is_dir_synced || rng.random::<f64>() >= spec.not_cloud_managed;
    if m.is_dir_synced {
        let object_guid: [u8; 16] = rng.random();
        m.immutable_id = STANDARD.encode(object_guid);
        m.user_principal_name = primary.clone();
    } else {
        m.user_principal_name = format!("{alias}@{}", spec.initial_domain);
    }
    let mut addrs = vec![
        format!("SMTP:{primary}"),
        format!("smtp:{alias}@{}", spec.initial_domain),
    ];
    if kind == RecipientKind::User && rng.random_bool(0.5) {
        addrs.push(format!("SIP:{primary}"));
    }
    if kind == RecipientKind::User && rng.random_bool(0.3) {
        addrs.push(format!(
            "SPO:SPO_{}@SPO_{tenant_guid}",
            random_uuid(&mut rng)
        ));
    }
    if rng.random_bool(0.4) {
        addrs.push(format!(
            "X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn={}-{alias}",
            random_uuid(&mut rng).simple()
        ));
    }
    if rng.random_bool(0.2) {
        addrs.push(format!("smtp:{alias}@mail.{}", spec.domain));
    }
    addrs.shuffle(&mut rng);
    m.email_addresses = addrs;
    if rng.random_bool(0.6) {
        m.set_custom_attribute(1, DEPARTMENTS[rng.random_range(0..DEPARTMENTS.len())]);
    }
    if rng.random_bool(0.3) {
        m.set_custom_attribute(2, &format!("E{:06}", rng.random_range(0..1_000_000)));
    }
    if rng.random_bool(0.2) {
        m.set_custom_attribute(7, &format!("CC-{:04}", rng.random_range(0..10_000)));
    }
    if rng.random_bool(0.15) {
        m.set_extension_custom_attribute(
            1,
            vec![
                "licensed".into(),
                format!("site-{}", rng.random_range(1..6)),
            ],
        );
    }
    m.hidden_from_address_lists_enabled = kind != RecipientKind::User && rng.random_bool(0.3);
    if kind == RecipientKind::User && rng.random_bool(0.25) {
        m.archive_guid = Some(random_uuid(&mut rng));
    }
    if rng.random_bool(0.05) {
        m.in_place_holds = vec![format!("mbx{}:1", random_uuid(&mut rng).simple())];
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_varied() {
        let spec = SeedSpec {
            count: 400,
            seed: 42,
            ..SeedSpec::default()
        };
        let a: Vec<SimMailbox> = generate(&spec).collect();
        let b: Vec<SimMailbox> = generate(&spec).collect();
        assert_eq!(a, b);
        let other: Vec<SimMailbox> = generate(&SeedSpec {
            seed: 43,
            ..spec.clone()
        })
        .collect();
        assert_ne!(a[0].guid, other[0].guid);
        for kind in [
            RecipientKind::User,
            RecipientKind::Shared,
            RecipientKind::Room,
            RecipientKind::Equipment,
        ] {
            assert!(a.iter().any(|m| m.kind == kind), "{kind:?}");
        }
        let not_managed = a.iter().filter(|m| !m.is_exchange_cloud_managed).count();
        assert!((15..=70).contains(&not_managed), "{not_managed}");
        let cloud_only = a.iter().filter(|m| !m.is_dir_synced).count();
        assert!((5..=40).contains(&cloud_only), "{cloud_only}");
        assert!(a.iter().any(|m| !m.email_addresses[0].starts_with("SMTP:")));
        for prefix in ["X500:", "SIP:", "SPO:"] {
            assert!(
                a.iter()
                    .any(|m| m.email_addresses.iter().any(|x| x.starts_with(prefix))),
                "{prefix}"
            );
        }
        assert!(a.iter().all(|m| {
            m.email_addresses
                .iter()
                .filter(|x| x.starts_with("SMTP:"))
                .count()
                == 1
        }));
        let mut primaries: Vec<&str> = a.iter().map(|m| m.primary_smtp_address()).collect();
        primaries.sort();
        primaries.dedup();
        assert_eq!(primaries.len(), a.len(), "primary addresses are unique");
        // a bigger seed extends a smaller one
        let bigger: Vec<SimMailbox> = generate(&SeedSpec { count: 401, ..spec }).collect();
        assert_eq!(&bigger[..400], &a[..]);
    }
}
