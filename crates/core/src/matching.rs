//! Matching a mailbox to its AD object (PRODUCT.md §5).
//!
//! Two kinds of key. The **immutable anchor** — the mailbox's ImmutableId compared with
//! `mS-DS-ConsistencyGuid` or `objectGUID` — is a value no user can write on their own object
//! with Windows' default rights. `msDS-ExternalDirectoryObjectId` is not: Windows puts it in the
//! Personal-Information property set (its `attributeSecurityGUID`, Windows Server 2016 schema),
//! which the default security descriptor of the `user` class lets SELF write. So any user can
//! write `User_<someone else's id>` on their own account. The rules therefore:
//!
//! 1. the anchor rules run first, in the configured order; the first with candidates decides
//!    (one object → matched, several → `DuplicateTargetEntries`);
//! 2. the external-id key then only **corroborates**: objects holding it other than the
//!    anchor's are a spoofing attempt — named in a `SpoofedMatchKey` security event, never
//!    followed (the anchor's object is still the match);
//! 3. when the mailbox has an ImmutableId but no object holds it, an object holding the key is
//!    not followed either (`SpoofedMatchKey`, nothing written);
//! 4. only a mailbox without a usable ImmutableId (or a configuration without anchor rules) is
//!    matched by the key alone — and the engine writes the object only when a witness the user
//!    cannot write on themselves agrees ([`corroborate_key_match`]: the UPN or an SMTP
//!    address), else `UncorroboratedMatchKey`, nothing written.
//!
//! The engine asks [`match_lookups`] for the lookups (attribute + exact value), then calls
//! [`next_match_step`] with the results so far: it names the next lookup to run, or decides.
//!
//! ```text
//! let lookups = match_lookups(&settings.match_rules, &mailbox);
//! let mut results = Vec::new();
//! let decision = loop {
//!     match next_match_step(&lookups, &results) {
//!         MatchStep::Run(lookup) => {
//!             let dns = ad.search_equal(lookup.attribute, &lookup.value)?;   // escaped filter
//!             results.push(RuleResult { rule: lookup.rule, dns });
//!         }
//!         MatchStep::Decided(decision) => break decision,
//!     }
//! };
//! ```

use std::fmt;

mod corroborate;
pub mod recipient;
pub(crate) use corroborate::smtp_of;
pub use corroborate::{WITNESS_ATTRIBUTES, corroborate_key_match};

use crate::directory::AttrValue;
use crate::guid::{self, GuidError};
use crate::mailbox::Mailbox;
use crate::outcome::{OutcomeCode, OutcomeDetail};

/// A matching rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum MatchRule {
    /// `msDS-ExternalDirectoryObjectId` = `"User_" + ExternalDirectoryObjectId`.
    ExternalDirectoryObjectId,
    /// `mS-DS-ConsistencyGuid` = base64-decoded ImmutableId.
    ConsistencyGuid,
    /// `objectGUID` = base64-decoded ImmutableId (the bytes as AD stores them).
    ObjectGuid,
}

impl MatchRule {
    /// The default order: the immutable anchors, then the key a user can write on itself.
    pub const DEFAULT: [MatchRule; 3] = [
        MatchRule::ConsistencyGuid,
        MatchRule::ObjectGuid,
        MatchRule::ExternalDirectoryObjectId,
    ];

    /// The AD attribute compared (also the rule's name in configuration).
    pub fn attribute(self) -> &'static str {
        match self {
            MatchRule::ExternalDirectoryObjectId => "msDS-ExternalDirectoryObjectId",
            MatchRule::ConsistencyGuid => "mS-DS-ConsistencyGuid",
            MatchRule::ObjectGuid => "objectGUID",
        }
    }

    /// Whether the rule compares an immutable anchor (the ImmutableId) with an attribute no
    /// user may write on their own object by default. `msDS-ExternalDirectoryObjectId` is
    /// not one (see the module documentation).
    pub fn is_anchor(self) -> bool {
        !matches!(self, MatchRule::ExternalDirectoryObjectId)
    }
}

impl TryFrom<String> for MatchRule {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        MatchRule::DEFAULT
            .into_iter()
            .find(|r| r.attribute().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "unknown match rule {s:?}; expected mS-DS-ConsistencyGuid, objectGUID or msDS-ExternalDirectoryObjectId"
                )
            })
    }
}

impl From<MatchRule> for String {
    fn from(r: MatchRule) -> String {
        r.attribute().to_string()
    }
}

impl fmt::Display for MatchRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.attribute())
    }
}

/// A configured rule order the agent refuses: the self-writable key before an anchor rule
/// (it would let the key decide a match the anchor contradicts).
pub fn check_rule_order(rules: &[MatchRule]) -> Result<(), String> {
    let Some(key_at) = rules.iter().position(|r| !r.is_anchor()) else {
        return Ok(());
    };
    match rules[key_at..].iter().find(|r| r.is_anchor()) {
        None => Ok(()),
        Some(anchor) => Err(format!(
            "{} is listed before {anchor}: every user may write {} on their own account \
             (it is in the Personal-Information property set), so it may not decide a match \
             ahead of an immutable anchor. List it last: it then corroborates the anchor, and \
             matches alone only mailboxes without an ImmutableId",
            rules[key_at], rules[key_at]
        )),
    }
}

/// One search the engine runs: objects whose `attribute` equals `value` exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub rule: MatchRule,
    pub attribute: &'static str,
    /// Text for msDS-ExternalDirectoryObjectId, the 16 bytes for the GUID rules.
    pub value: AttrValue,
}

impl Lookup {
    /// `attribute = value` for messages (a GUID value as its text form).
    pub fn describe(&self) -> String {
        match &self.value {
            AttrValue::Text(t) => format!("{} = {t:?}", self.attribute),
            AttrValue::Bytes(b) => format!(
                "{} = {}",
                self.attribute,
                guid::uuid_from_object_guid(b)
                    .map(|u| u.to_string())
                    .unwrap_or_else(|_| format!("{b:02x?}"))
            ),
        }
    }
}

/// The lookups for one mailbox, and the rules that could not be used for it (with why).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MatchLookups {
    /// The ImmutableId against the anchor attributes, in the configured order (empty when the
    /// mailbox has no usable ImmutableId or no anchor rule is configured).
    pub anchors: Vec<Lookup>,
    /// `msDS-ExternalDirectoryObjectId` = `User_<id>`, when configured and the mailbox has an
    /// id.
    pub key: Option<Lookup>,
    pub skipped_rules: Vec<(MatchRule, String)>,
}

impl MatchLookups {
    /// Every lookup, anchors first.
    pub fn all(&self) -> impl Iterator<Item = &Lookup> {
        self.anchors.iter().chain(self.key.iter())
    }

    /// The 16 bytes of the mailbox's ImmutableId, when an anchor rule uses it.
    pub fn anchor_bytes(&self) -> Option<&[u8]> {
        self.anchors.first().and_then(|l| match &l.value {
            AttrValue::Bytes(b) => Some(b.as_slice()),
            AttrValue::Text(_) => None,
        })
    }
}

/// Decode an ImmutableId into the 16 objectGUID / mS-DS-ConsistencyGuid bytes, as AD
/// stores them.
pub fn immutable_id_bytes(immutable_id: &str) -> Result<[u8; 16], GuidError> {
    guid::uuid_from_immutable_id(immutable_id).map(|u| guid::object_guid_bytes(&u))
}

/// The lookups for a mailbox: the anchor rules in their configured order, then the key.
pub fn match_lookups(rules: &[MatchRule], mailbox: &Mailbox) -> MatchLookups {
    let mut out = MatchLookups::default();
    for &rule in rules {
        let value = match rule {
            MatchRule::ExternalDirectoryObjectId => {
                match mailbox
                    .external_directory_object_id
                    .as_deref()
                    .map(str::trim)
                {
                    Some(id) if !id.is_empty() => Ok(AttrValue::Text(format!("User_{id}"))),
                    _ => Err("the mailbox has no ExternalDirectoryObjectId".to_string()),
                }
            }
            MatchRule::ConsistencyGuid | MatchRule::ObjectGuid => {
                match mailbox.immutable_id.as_deref().map(str::trim) {
                    Some(id) if !id.is_empty() => immutable_id_bytes(id)
                        .map(|b| AttrValue::Bytes(b.to_vec()))
                        .map_err(|e| e.to_string()),
                    _ => Err("the mailbox has no ImmutableId".to_string()),
                }
            }
        };
        match value {
            Ok(value) => {
                let lookup = Lookup {
                    rule,
                    attribute: rule.attribute(),
                    value,
                };
                if rule.is_anchor() {
                    out.anchors.push(lookup);
                } else {
                    out.key = Some(lookup);
                }
            }
            Err(why) => out.skipped_rules.push((rule, why)),
        }
    }
    out
}

/// What one lookup found: the DNs of the objects with the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleResult {
    pub rule: MatchRule,
    pub dns: Vec<String>,
}

/// The matching step's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchDecision {
    Matched {
        rule: MatchRule,
        dn: String,
        /// Objects other than `dn` holding the mailbox's `msDS-ExternalDirectoryObjectId`
        /// key: a spoofing attempt, not followed (empty normally).
        spoofed_by: Vec<String>,
        /// The key lookup and the value it had, when it ran (for the message).
        key: Option<String>,
    },
    /// No rule found an object; `tried` lists each rule and why it found nothing.
    TargetNotFound {
        tried: Vec<String>,
    },
    DuplicateTargetEntries {
        rule: MatchRule,
        dns: Vec<String>,
    },
    /// No object holds the mailbox's immutable anchor, yet objects hold its
    /// `msDS-ExternalDirectoryObjectId` key: they are not followed (a spoofing attempt, or a
    /// stale value); nothing is written.
    SpoofedKey {
        key: String,
        holders: Vec<String>,
        tried: Vec<String>,
    },
}

const SELF_WRITABLE: &str = "every user may write msDS-ExternalDirectoryObjectId on their own \
                             account (Personal-Information property set)";

impl MatchDecision {
    /// `None` for `Matched`; otherwise the log entry's `{code, reason, recommended action}`.
    pub fn outcome(&self) -> Option<OutcomeDetail> {
        match self {
            MatchDecision::Matched { .. } => None,
            MatchDecision::TargetNotFound { tried } => Some(OutcomeDetail::new(
                OutcomeCode::TargetNotFound,
                format!("no AD object matched: {}", tried.join("; ")),
            )),
            MatchDecision::DuplicateTargetEntries { rule, dns } => {
                let mut reason = format!(
                    "{} AD objects match by {rule}: {}",
                    dns.len(),
                    dns.join(" | ")
                );
                if !rule.is_anchor() {
                    reason.push_str(&format!(
                        " ({SELF_WRITABLE}: one of them may have written another's value)"
                    ));
                }
                Some(OutcomeDetail::new(
                    OutcomeCode::DuplicateTargetEntries,
                    reason,
                ))
            }
            MatchDecision::SpoofedKey { .. } => self.security_event(),
        }
    }

    /// The security event of this decision: a match key held by an object the immutable
    /// anchor does not designate (`SpoofedMatchKey`), else `None`.
    pub fn security_event(&self) -> Option<OutcomeDetail> {
        match self {
            MatchDecision::Matched {
                rule,
                dn,
                spoofed_by,
                key,
            } if !spoofed_by.is_empty() => Some(OutcomeDetail::new(
                OutcomeCode::SpoofedMatchKey,
                format!(
                    "{} is also held by {}, which {} not the object of this mailbox's immutable \
                     anchor ({rule}, held by {dn}): not followed; {dn} was matched. {SELF_WRITABLE}: \
                     someone may be trying to receive this mailbox's values",
                    key.as_deref().unwrap_or("msDS-ExternalDirectoryObjectId"),
                    spoofed_by.join(" | "),
                    if spoofed_by.len() == 1 { "is" } else { "are" },
                ),
            )),
            MatchDecision::SpoofedKey {
                key,
                holders,
                tried,
            } => Some(OutcomeDetail::new(
                OutcomeCode::SpoofedMatchKey,
                format!(
                    "{key} is held by {}, but no object holds the mailbox's immutable anchor \
                     ({}): not followed, nothing written. {SELF_WRITABLE}: the value may have \
                     been written to receive this mailbox's values",
                    holders.join(" | "),
                    tried.join("; ")
                ),
            )),
            _ => None,
        }
    }
}

/// What to do next: run a lookup, or the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchStep<'a> {
    Run(&'a Lookup),
    Decided(MatchDecision),
}

fn candidates(r: &RuleResult) -> Vec<String> {
    let mut dns = r.dns.clone();
    dns.sort_by_key(|d| d.to_lowercase());
    dns.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    dns
}

fn tried(lookups: &MatchLookups, anchors_only: bool) -> Vec<String> {
    let mut tried: Vec<String> = lookups
        .anchors
        .iter()
        .chain(lookups.key.iter().filter(|_| !anchors_only))
        .map(|l| format!("{}: no object", l.describe()))
        .collect();
    tried.extend(
        lookups
            .skipped_rules
            .iter()
            .map(|(rule, why)| format!("{rule} rule skipped: {why}")),
    );
    tried
}

/// The next lookup to run given the results so far (in any order, one per rule), or the
/// decision (see the module documentation for the rules).
pub fn next_match_step<'a>(lookups: &'a MatchLookups, results: &[RuleResult]) -> MatchStep<'a> {
    let result = |l: &Lookup| results.iter().find(|r| r.rule == l.rule).map(candidates);
    let key = match &lookups.key {
        Some(k) => match result(k) {
            Some(holders) => Some((k, holders)),
            None if lookups.anchors.is_empty() => return MatchStep::Run(k),
            None => None,
        },
        None => None,
    };
    for anchor in &lookups.anchors {
        let Some(mut dns) = result(anchor) else {
            return MatchStep::Run(anchor);
        };
        match dns.len() {
            0 => continue,
            1 => {
                let dn = dns.remove(0);
                let (spoofed_by, key) = match (&lookups.key, key) {
                    (Some(k), None) => return MatchStep::Run(k),
                    (Some(_), Some((k, holders))) => (
                        holders
                            .into_iter()
                            .filter(|h| !h.eq_ignore_ascii_case(&dn))
                            .collect(),
                        Some(k.describe()),
                    ),
                    (None, _) => (Vec::new(), None),
                };
                return MatchStep::Decided(MatchDecision::Matched {
                    rule: anchor.rule,
                    dn,
                    spoofed_by,
                    key,
                });
            }
            _ => {
                return MatchStep::Decided(MatchDecision::DuplicateTargetEntries {
                    rule: anchor.rule,
                    dns,
                });
            }
        }
    }
    // No anchor found an object (or the mailbox has none).
    let Some(k) = &lookups.key else {
        return MatchStep::Decided(MatchDecision::TargetNotFound {
            tried: tried(lookups, false),
        });
    };
    let Some((_, mut holders)) = key else {
        return MatchStep::Run(k);
    };
    MatchStep::Decided(match holders.len() {
        0 => MatchDecision::TargetNotFound {
            tried: tried(lookups, false),
        },
        _ if !lookups.anchors.is_empty() => MatchDecision::SpoofedKey {
            key: k.describe(),
            holders,
            tried: tried(lookups, true),
        },
        1 => MatchDecision::Matched {
            rule: k.rule,
            dn: holders.remove(0),
            spoofed_by: Vec::new(),
            key: Some(k.describe()),
        },
        _ => MatchDecision::DuplicateTargetEntries {
            rule: k.rule,
            dns: holders,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use uuid::Uuid;

    fn mailbox(edoid: Option<&str>, immutable: Option<&str>) -> Mailbox {
        Mailbox {
            external_directory_object_id: edoid.map(String::from),
            immutable_id: immutable.map(String::from),
            ..Mailbox::default()
        }
    }

    #[test]
    fn lookups_are_the_anchors_in_their_order_then_the_key() {
        let guid = Uuid::parse_str("6f9619ff-8b86-d011-b42d-00c04fc964ff").expect("uuid");
        let le = guid.to_bytes_le();
        let immutable = base64::engine::general_purpose::STANDARD.encode(le);
        let m = mailbox(
            Some("4a2d0c1e-aaaa-bbbb-cccc-000000000001"),
            Some(&immutable),
        );
        let l = match_lookups(&MatchRule::DEFAULT, &m);
        assert!(l.skipped_rules.is_empty());
        assert_eq!(
            l.anchors,
            vec![
                Lookup {
                    rule: MatchRule::ConsistencyGuid,
                    attribute: "mS-DS-ConsistencyGuid",
                    value: AttrValue::Bytes(le.to_vec())
                },
                Lookup {
                    rule: MatchRule::ObjectGuid,
                    attribute: "objectGUID",
                    value: AttrValue::Bytes(le.to_vec())
                },
            ]
        );
        assert_eq!(
            l.key,
            Some(Lookup {
                rule: MatchRule::ExternalDirectoryObjectId,
                attribute: "msDS-ExternalDirectoryObjectId",
                value: AttrValue::Text("User_4a2d0c1e-aaaa-bbbb-cccc-000000000001".into())
            })
        );
        assert_eq!(l.anchor_bytes(), Some(&le[..]));
        // The objectGUID bytes are the little-endian GUID layout.
        assert_eq!(Uuid::from_bytes_le(le), guid);
        // The configured order of the anchors is respected.
        let l = match_lookups(&[MatchRule::ObjectGuid, MatchRule::ConsistencyGuid], &m);
        assert_eq!(l.anchors[0].rule, MatchRule::ObjectGuid);
        assert_eq!(l.key, None);
        assert_eq!(
            l.all().map(|l| l.rule).collect::<Vec<_>>(),
            [MatchRule::ObjectGuid, MatchRule::ConsistencyGuid]
        );
    }

    #[test]
    fn invalid_immutable_ids_skip_their_rules_with_a_reason() {
        let cases = [
            ("not base64!!", "is not base64"),
            ("AAAA", "decodes to 3 bytes, an objectGUID is 16"),
        ];
        for (id, why) in cases {
            let l = match_lookups(&MatchRule::DEFAULT, &mailbox(Some("x"), Some(id)));
            assert!(l.anchors.is_empty());
            assert!(l.key.is_some());
            assert_eq!(l.skipped_rules.len(), 2);
            assert!(l.skipped_rules[0].1.contains(why), "{:?}", l.skipped_rules);
        }
        let l = match_lookups(&MatchRule::DEFAULT, &mailbox(None, None));
        assert_eq!(l.all().count(), 0);
        let MatchStep::Decided(d) = next_match_step(&l, &[]) else {
            panic!("nothing to run")
        };
        let text = d.outcome().expect("not matched").to_string();
        assert!(
            text.starts_with("TargetNotFound: no AD object matched"),
            "{text}"
        );
        assert!(text.contains("no ExternalDirectoryObjectId"), "{text}");
        assert!(text.contains("no ImmutableId"), "{text}");
    }

    const A: &str = "CN=A,DC=x";
    const B: &str = "CN=B,DC=x";
    const C: &str = "CN=C,DC=x";

    /// A step, owned: the rule of the lookup to run, or the decision.
    #[derive(Debug, PartialEq)]
    enum Want {
        Run(MatchRule),
        Decided(MatchDecision),
    }

    /// The step decided over given lookup results (`None`: the lookup was not run).
    fn decide(
        l: &MatchLookups,
        cg: Option<&[&str]>,
        og: Option<&[&str]>,
        key: Option<&[&str]>,
    ) -> Want {
        let results: Vec<RuleResult> = [
            (MatchRule::ConsistencyGuid, cg),
            (MatchRule::ObjectGuid, og),
            (MatchRule::ExternalDirectoryObjectId, key),
        ]
        .into_iter()
        .filter_map(|(rule, dns)| {
            Some(RuleResult {
                rule,
                dns: dns?.iter().map(|s| s.to_string()).collect(),
            })
        })
        .collect();
        match next_match_step(l, &results) {
            MatchStep::Run(lookup) => Want::Run(lookup.rule),
            MatchStep::Decided(d) => Want::Decided(d),
        }
    }

    fn matched(rule: MatchRule, dn: &str, spoofed_by: &[&str]) -> Want {
        Want::Decided(MatchDecision::Matched {
            rule,
            dn: dn.into(),
            spoofed_by: spoofed_by.iter().map(|s| s.to_string()).collect(),
            key: Some("msDS-ExternalDirectoryObjectId = \"User_id1\"".into()),
        })
    }

    type Case = (
        &'static str,
        Option<&'static [&'static str]>,
        Option<&'static [&'static str]>,
        Option<&'static [&'static str]>,
        Want,
    );

    #[test]
    fn the_anchor_decides_and_the_key_only_corroborates() {
        use MatchRule::*;
        let full = match_lookups(
            &MatchRule::DEFAULT,
            &mailbox(Some("id1"), Some("AAAAAAAAAAAAAAAAAAAAAA==")),
        );
        let zero = "00000000-0000-0000-0000-000000000000";
        let cases: Vec<Case> = vec![
            (
                "nothing run: the first anchor",
                None,
                None,
                None,
                Want::Run(ConsistencyGuid),
            ),
            // The key alone is never enough while an anchor remains to be tried.
            (
                "the key answered first",
                None,
                None,
                Some(&[B]),
                Want::Run(ConsistencyGuid),
            ),
            (
                "first anchor empty",
                Some(&[]),
                None,
                None,
                Want::Run(ObjectGuid),
            ),
            // An anchor found one object: the key is still looked at (corroboration).
            (
                "anchor found, key not run",
                Some(&[A]),
                None,
                None,
                Want::Run(ExternalDirectoryObjectId),
            ),
            (
                "anchor, no key holder",
                Some(&[A]),
                None,
                Some(&[]),
                matched(ConsistencyGuid, A, &[]),
            ),
            (
                "anchor, key agrees",
                Some(&[A]),
                None,
                Some(&["cn=a,dc=x"]),
                matched(ConsistencyGuid, A, &[]),
            ),
            (
                "anchor, key elsewhere",
                Some(&[A]),
                None,
                Some(&[B]),
                matched(ConsistencyGuid, A, &[B]),
            ),
            (
                "anchor, key on three",
                Some(&[A]),
                None,
                Some(&[C, A, B]),
                matched(ConsistencyGuid, A, &[B, C]),
            ),
            (
                "second anchor, key elsewhere",
                Some(&[]),
                Some(&[A]),
                Some(&[B]),
                matched(ObjectGuid, A, &[B]),
            ),
            (
                "anchor duplicates: no key needed",
                Some(&[B, A]),
                None,
                None,
                Want::Decided(MatchDecision::DuplicateTargetEntries {
                    rule: ConsistencyGuid,
                    dns: vec![A.into(), B.into()],
                }),
            ),
            (
                "no anchor holder, key not run",
                Some(&[]),
                Some(&[]),
                None,
                Want::Run(ExternalDirectoryObjectId),
            ),
            (
                "no anchor holder, nor key",
                Some(&[]),
                Some(&[]),
                Some(&[]),
                Want::Decided(MatchDecision::TargetNotFound {
                    tried: vec![
                        format!("mS-DS-ConsistencyGuid = {zero}: no object"),
                        format!("objectGUID = {zero}: no object"),
                        "msDS-ExternalDirectoryObjectId = \"User_id1\": no object".into(),
                    ],
                }),
            ),
            (
                "no anchor holder, the key points somewhere: not followed",
                Some(&[]),
                Some(&[]),
                Some(&[B]),
                Want::Decided(MatchDecision::SpoofedKey {
                    key: "msDS-ExternalDirectoryObjectId = \"User_id1\"".into(),
                    holders: vec![B.into()],
                    tried: vec![
                        format!("mS-DS-ConsistencyGuid = {zero}: no object"),
                        format!("objectGUID = {zero}: no object"),
                    ],
                }),
            ),
        ];
        for (name, cg, og, key, want) in cases {
            assert_eq!(decide(&full, cg, og, key), want, "{name}");
        }

        // Without a usable ImmutableId the key decides alone.
        let key_only = match_lookups(&MatchRule::DEFAULT, &mailbox(Some("id1"), None));
        let cases: Vec<Case> = vec![
            (
                "not run",
                None,
                None,
                None,
                Want::Run(ExternalDirectoryObjectId),
            ),
            (
                "one holder",
                None,
                None,
                Some(&[B]),
                matched(ExternalDirectoryObjectId, B, &[]),
            ),
            (
                "the same object twice",
                None,
                None,
                Some(&[B, "cn=b,dc=x"]),
                matched(ExternalDirectoryObjectId, B, &[]),
            ),
            (
                "two holders",
                None,
                None,
                Some(&[B, A]),
                Want::Decided(MatchDecision::DuplicateTargetEntries {
                    rule: ExternalDirectoryObjectId,
                    dns: vec![A.into(), B.into()],
                }),
            ),
        ];
        for (name, cg, og, key, want) in cases {
            assert_eq!(decide(&key_only, cg, og, key), want, "key only: {name}");
        }
        // Anchors only (no key configured): no corroboration to wait for.
        let anchors_only = match_lookups(
            &[ConsistencyGuid, ObjectGuid],
            &mailbox(Some("id1"), Some("AAAAAAAAAAAAAAAAAAAAAA==")),
        );
        assert_eq!(
            decide(&anchors_only, Some(&[A]), None, None),
            Want::Decided(MatchDecision::Matched {
                rule: ConsistencyGuid,
                dn: A.into(),
                spoofed_by: vec![],
                key: None
            })
        );
    }

    #[test]
    fn the_security_event_names_the_key_its_holders_and_the_anchor() {
        let spoofed = MatchDecision::Matched {
            rule: MatchRule::ConsistencyGuid,
            dn: "CN=victim,DC=x".into(),
            spoofed_by: vec!["CN=attacker,DC=x".into()],
            key: Some("msDS-ExternalDirectoryObjectId = \"User_id1\"".into()),
        };
        assert_eq!(spoofed.outcome(), None, "still a match");
        let event = spoofed.security_event().expect("a security event");
        assert_eq!(event.code, OutcomeCode::SpoofedMatchKey);
        assert_eq!(event.status(), crate::provisioning::LogStatus::Warning);
        assert_eq!(
            event.reason,
            "msDS-ExternalDirectoryObjectId = \"User_id1\" is also held by CN=attacker,DC=x, \
             which is not the object of this mailbox's immutable anchor (mS-DS-ConsistencyGuid, \
             held by CN=victim,DC=x): not followed; CN=victim,DC=x was matched. every user may \
             write msDS-ExternalDirectoryObjectId on their own account (Personal-Information \
             property set): someone may be trying to receive this mailbox's values"
        );
        let not_followed = MatchDecision::SpoofedKey {
            key: "msDS-ExternalDirectoryObjectId = \"User_id1\"".into(),
            holders: vec!["CN=attacker,DC=x".into()],
            tried: vec!["objectGUID = 0000: no object".into()],
        };
        let outcome = not_followed.outcome().expect("not a match");
        assert_eq!(outcome.code, OutcomeCode::SpoofedMatchKey);
        assert!(
            outcome.reason.contains("not followed, nothing written")
                && outcome.reason.contains("CN=attacker,DC=x")
                && outcome.reason.contains("objectGUID = 0000: no object"),
            "{}",
            outcome.reason
        );
        assert_eq!(not_followed.security_event(), Some(outcome));
        let plain = MatchDecision::Matched {
            rule: MatchRule::ObjectGuid,
            dn: "CN=victim,DC=x".into(),
            spoofed_by: vec![],
            key: None,
        };
        assert_eq!(plain.security_event(), None);
        // A duplicate of the self-writable key says a user may have written it.
        let dup = MatchDecision::DuplicateTargetEntries {
            rule: MatchRule::ExternalDirectoryObjectId,
            dns: vec!["CN=A,DC=x".into(), "CN=B,DC=x".into()],
        };
        assert_eq!(
            dup.outcome().expect("failure").to_string(),
            "DuplicateTargetEntries: 2 AD objects match by msDS-ExternalDirectoryObjectId: \
             CN=A,DC=x | CN=B,DC=x (every user may write msDS-ExternalDirectoryObjectId on their \
             own account (Personal-Information property set): one of them may have written \
             another's value)"
        );
    }

    #[test]
    fn the_rule_order_puts_the_key_after_every_anchor() {
        use MatchRule::*;
        assert!(check_rule_order(&MatchRule::DEFAULT).is_ok());
        assert!(
            check_rule_order(&[ObjectGuid, ConsistencyGuid, ExternalDirectoryObjectId]).is_ok()
        );
        assert!(check_rule_order(&[ExternalDirectoryObjectId]).is_ok());
        assert!(check_rule_order(&[ObjectGuid]).is_ok());
        for bad in [
            &[ExternalDirectoryObjectId, ConsistencyGuid, ObjectGuid][..],
            &[ConsistencyGuid, ExternalDirectoryObjectId, ObjectGuid][..],
            &[ExternalDirectoryObjectId, ObjectGuid][..],
        ] {
            let e = check_rule_order(bad).expect_err("refused");
            assert!(e.contains("Personal-Information"), "{e}");
        }
    }

    #[test]
    fn rules_parse_case_insensitively() {
        assert_eq!(
            MatchRule::try_from("objectguid".to_string()),
            Ok(MatchRule::ObjectGuid)
        );
        assert!(MatchRule::try_from("mail".to_string()).is_err());
    }
}
