//! Matching a mailbox to its AD object (PRODUCT.md §5).
//!
//! The engine asks [`match_lookups`] for the ordered lookups (attribute + exact value) to run
//! against AD, runs them in order, and after each lookup calls [`decide_match`] with what it
//! found so far; it stops at the first `Some`. When every lookup found nothing,
//! [`decide_match`] returns `TargetNotFound`.
//!
//! ```text
//! let lookups = match_lookups(&settings.match_rules, &mailbox);
//! let mut results = Vec::new();
//! for lookup in &lookups.lookups {
//!     let dns = ad.search_equal(lookup.attribute, &lookup.value)?;   // escaped filter
//!     results.push(RuleResult { rule: lookup.rule, dns });
//!     if let Some(decision) = decide_match(&lookups, &results, false) { break }
//! }
//! let decision = decide_match(&lookups, &results, true).unwrap();
//! ```

use std::fmt;

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
    pub const DEFAULT: [MatchRule; 3] = [
        MatchRule::ExternalDirectoryObjectId,
        MatchRule::ConsistencyGuid,
        MatchRule::ObjectGuid,
    ];

    /// The AD attribute compared (also the rule's name in configuration).
    pub fn attribute(self) -> &'static str {
        match self {
            MatchRule::ExternalDirectoryObjectId => "msDS-ExternalDirectoryObjectId",
            MatchRule::ConsistencyGuid => "mS-DS-ConsistencyGuid",
            MatchRule::ObjectGuid => "objectGUID",
        }
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
                    "unknown match rule {s:?}; expected msDS-ExternalDirectoryObjectId, mS-DS-ConsistencyGuid or objectGUID"
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

/// One search the engine runs: objects whose `attribute` equals `value` exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub rule: MatchRule,
    pub attribute: &'static str,
    /// Text for msDS-ExternalDirectoryObjectId, the 16 bytes for the GUID rules.
    pub value: AttrValue,
}

/// The lookups to run, and the rules that could not be used for this mailbox (with why).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MatchLookups {
    pub lookups: Vec<Lookup>,
    pub skipped_rules: Vec<(MatchRule, String)>,
}

/// Decode an ImmutableId into the 16 objectGUID / mS-DS-ConsistencyGuid bytes, as AD
/// stores them.
pub fn immutable_id_bytes(immutable_id: &str) -> Result<[u8; 16], GuidError> {
    guid::uuid_from_immutable_id(immutable_id).map(|u| guid::object_guid_bytes(&u))
}

/// The ordered lookups for a mailbox.
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
            Ok(value) => out.lookups.push(Lookup {
                rule,
                attribute: rule.attribute(),
                value,
            }),
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
    },
    /// No rule found an object; `tried` lists each rule and why it found nothing.
    TargetNotFound {
        tried: Vec<String>,
    },
    DuplicateTargetEntries {
        rule: MatchRule,
        dns: Vec<String>,
    },
}

impl MatchDecision {
    /// `None` for `Matched`; otherwise the log entry's `{code, reason, recommended action}`.
    pub fn outcome(&self) -> Option<OutcomeDetail> {
        match self {
            MatchDecision::Matched { .. } => None,
            MatchDecision::TargetNotFound { tried } => Some(OutcomeDetail::new(
                OutcomeCode::TargetNotFound,
                format!("no AD object matched: {}", tried.join("; ")),
            )),
            MatchDecision::DuplicateTargetEntries { rule, dns } => Some(OutcomeDetail::new(
                OutcomeCode::DuplicateTargetEntries,
                format!(
                    "{} AD objects match by {rule}: {}",
                    dns.len(),
                    dns.join(" | ")
                ),
            )),
        }
    }
}

/// Decide from the results of the lookups run so far (in the order of `lookups`). The first
/// result with candidates decides: one DN → `Matched`, several → `DuplicateTargetEntries`.
/// When none had candidates: `None` while lookups remain and `all_run` is false, otherwise
/// `TargetNotFound`.
pub fn decide_match(
    lookups: &MatchLookups,
    results: &[RuleResult],
    all_run: bool,
) -> Option<MatchDecision> {
    for r in results {
        let mut dns = r.dns.clone();
        dns.sort_by_key(|d| d.to_lowercase());
        dns.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        match dns.len() {
            0 => continue,
            1 => {
                return Some(MatchDecision::Matched {
                    rule: r.rule,
                    dn: dns.remove(0),
                });
            }
            _ => return Some(MatchDecision::DuplicateTargetEntries { rule: r.rule, dns }),
        }
    }
    if !all_run && results.len() < lookups.lookups.len() {
        return None;
    }
    let mut tried: Vec<String> = lookups
        .lookups
        .iter()
        .map(|l| match &l.value {
            AttrValue::Text(t) => format!("{} = {t:?}: no object", l.attribute),
            AttrValue::Bytes(b) => format!(
                "{} = {}: no object",
                l.attribute,
                crate::guid::uuid_from_object_guid(b)
                    .map(|u| u.to_string())
                    .unwrap_or_else(|_| format!("{b:02x?}"))
            ),
        })
        .collect();
    tried.extend(
        lookups
            .skipped_rules
            .iter()
            .map(|(rule, why)| format!("{rule} rule skipped: {why}")),
    );
    Some(MatchDecision::TargetNotFound { tried })
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
    fn lookups_in_rule_order_with_the_exact_values() {
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
            l.lookups,
            vec![
                Lookup {
                    rule: MatchRule::ExternalDirectoryObjectId,
                    attribute: "msDS-ExternalDirectoryObjectId",
                    value: AttrValue::Text("User_4a2d0c1e-aaaa-bbbb-cccc-000000000001".into())
                },
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
        // The objectGUID bytes are the little-endian GUID layout.
        assert_eq!(Uuid::from_bytes_le(le), guid);
        // Configured order is respected.
        let l = match_lookups(
            &[MatchRule::ObjectGuid, MatchRule::ExternalDirectoryObjectId],
            &m,
        );
        assert_eq!(l.lookups[0].rule, MatchRule::ObjectGuid);
    }

    #[test]
    fn invalid_immutable_ids_skip_their_rules_with_a_reason() {
        let cases = [
            ("not base64!!", "is not base64"),
            ("AAAA", "decodes to 3 bytes, an objectGUID is 16"),
        ];
        for (id, why) in cases {
            let l = match_lookups(&MatchRule::DEFAULT, &mailbox(Some("x"), Some(id)));
            assert_eq!(l.lookups.len(), 1);
            assert_eq!(l.skipped_rules.len(), 2);
            assert!(l.skipped_rules[0].1.contains(why), "{:?}", l.skipped_rules);
        }
        let l = match_lookups(&MatchRule::DEFAULT, &mailbox(None, None));
        assert!(l.lookups.is_empty());
        let d = decide_match(&l, &[], false).expect("nothing to run");
        let text = d.outcome().expect("not matched").to_string();
        assert!(
            text.starts_with("TargetNotFound: no AD object matched"),
            "{text}"
        );
        assert!(text.contains("no ExternalDirectoryObjectId"), "{text}");
        assert!(text.contains("no ImmutableId"), "{text}");
    }

    #[test]
    fn decisions() {
        let m = mailbox(Some("id1"), Some("AAAAAAAAAAAAAAAAAAAAAA=="));
        let l = match_lookups(&MatchRule::DEFAULT, &m);
        let r = |rule, dns: &[&str]| RuleResult {
            rule,
            dns: dns.iter().map(|s| s.to_string()).collect(),
        };
        use MatchRule::*;
        // First rule empty, more to run: undecided.
        assert_eq!(
            decide_match(&l, &[r(ExternalDirectoryObjectId, &[])], false),
            None
        );
        assert_eq!(
            decide_match(
                &l,
                &[
                    r(ExternalDirectoryObjectId, &[]),
                    r(ConsistencyGuid, &["CN=A,DC=x"])
                ],
                false
            ),
            Some(MatchDecision::Matched {
                rule: ConsistencyGuid,
                dn: "CN=A,DC=x".into()
            })
        );
        // The same object found twice is one object.
        assert!(matches!(
            decide_match(
                &l,
                &[r(ExternalDirectoryObjectId, &["CN=A,DC=x", "cn=a,dc=x"])],
                false
            ),
            Some(MatchDecision::Matched { .. })
        ));
        let dup = decide_match(
            &l,
            &[r(ExternalDirectoryObjectId, &["CN=B,DC=x", "CN=A,DC=x"])],
            false,
        )
        .expect("decided");
        assert_eq!(
            dup,
            MatchDecision::DuplicateTargetEntries {
                rule: ExternalDirectoryObjectId,
                dns: vec!["CN=A,DC=x".into(), "CN=B,DC=x".into()]
            }
        );
        assert_eq!(
            dup.outcome().expect("failure").to_string(),
            "DuplicateTargetEntries: 2 AD objects match by msDS-ExternalDirectoryObjectId: CN=A,DC=x | CN=B,DC=x"
        );
        let none = decide_match(
            &l,
            &[
                r(ExternalDirectoryObjectId, &[]),
                r(ConsistencyGuid, &[]),
                r(ObjectGuid, &[]),
            ],
            false,
        )
        .expect("all run");
        assert!(matches!(none, MatchDecision::TargetNotFound { ref tried } if tried.len() == 3));
        // The engine may stop early (e.g. a rule it cannot run): all_run decides.
        assert!(matches!(
            decide_match(&l, &[r(ExternalDirectoryObjectId, &[])], true),
            Some(MatchDecision::TargetNotFound { .. })
        ));
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
