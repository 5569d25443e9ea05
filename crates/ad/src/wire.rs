//! Parsing of LDAP protocol structures without panicking on malformed input (ldap3's own
//! helpers `expect` and would abort on a bad answer).

use ldap3::asn1::{PL, StructureTag, parse_tag};

/// A search result entry with every value as the bytes sent on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub dn: String,
    /// Attribute descriptions as returned (may carry options such as `;range=0-1499`).
    pub attributes: Vec<(String, Vec<Vec<u8>>)>,
}

impl RawEntry {
    /// The first value of `name` (case-insensitive, options such as `;range=` not stripped).
    pub fn first(&self, name: &str) -> Option<&Vec<u8>> {
        self.attributes
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, vs)| vs.first())
    }

    /// [`RawEntry::first`] as text (lossy UTF-8).
    pub fn first_text(&self, name: &str) -> Option<String> {
        self.first(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// Parse a SearchResultEntry (`[APPLICATION 4] SEQUENCE { objectName, attributes }`).
pub fn parse_entry(tag: StructureTag) -> Result<RawEntry, String> {
    let mut parts = tag
        .match_id(4)
        .and_then(StructureTag::expect_constructed)
        .ok_or("not a search result entry")?
        .into_iter();
    let dn_bytes = parts
        .next()
        .and_then(StructureTag::expect_primitive)
        .ok_or("entry without a DN")?;
    let dn = String::from_utf8(dn_bytes).map_err(|_| "entry DN is not UTF-8")?;
    let mut attributes = Vec::new();
    let list = match parts.next() {
        Some(t) => t
            .expect_constructed()
            .ok_or_else(|| format!("attribute list of {dn} is not a sequence"))?,
        None => Vec::new(),
    };
    for partial in list {
        let mut pa = partial
            .expect_constructed()
            .ok_or_else(|| format!("attribute of {dn} is not a sequence"))?
            .into_iter();
        let name = pa
            .next()
            .and_then(StructureTag::expect_primitive)
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| format!("attribute of {dn} without a name"))?;
        let values = match pa.next() {
            Some(set) => set
                .expect_constructed()
                .ok_or_else(|| format!("values of {dn} {name} are not a set"))?
                .into_iter()
                .map(|v| {
                    v.expect_primitive()
                        .ok_or_else(|| format!("a value of {dn} {name} is not an octet string"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        attributes.push((name, values));
    }
    Ok(RawEntry { dn, attributes })
}

/// The cookie of a paged-results response control value; empty means "no more pages".
pub fn parse_paged_cookie(value: &[u8]) -> Result<Vec<u8>, String> {
    let (_, tag) = parse_tag(value).map_err(|_| "paged results control is not BER")?;
    let mut parts = tag
        .expect_constructed()
        .ok_or("paged results control is not a sequence")?
        .into_iter();
    parts.next().ok_or("paged results control without size")?;
    match parts.next().map(|t| t.payload) {
        Some(PL::P(cookie)) => Ok(cookie),
        _ => Err("paged results control without a cookie".into()),
    }
}

/// An attribute description split into its name and a `range=low-high` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangedName<'a> {
    pub name: &'a str,
    /// `None` when the description has no range option.
    pub range: Option<(u64, RangeEnd)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeEnd {
    /// `*`: these are the last values.
    Last,
    /// More values follow after this index.
    Upto(u64),
}

/// Split `member;range=0-1499` into `member` and its range. Other options are dropped
/// from the name (e.g. `;binary`). A malformed range is an error.
pub fn split_range(description: &str) -> Result<RangedName<'_>, String> {
    let mut parts = description.split(';');
    let name = parts.next().unwrap_or(description);
    let mut range = None;
    for option in parts {
        let Some(spec) = option
            .strip_prefix("range=")
            .or_else(|| option.strip_prefix("Range="))
        else {
            continue;
        };
        let (low, high) = spec
            .split_once('-')
            .ok_or_else(|| format!("malformed range option in {description:?}"))?;
        let low: u64 = low
            .parse()
            .map_err(|_| format!("malformed range start in {description:?}"))?;
        let end = if high == "*" {
            RangeEnd::Last
        } else {
            let high: u64 = high
                .parse()
                .map_err(|_| format!("malformed range end in {description:?}"))?;
            if high < low {
                return Err(format!("range end before start in {description:?}"));
            }
            RangeEnd::Upto(high)
        };
        range = Some((low, end));
    }
    Ok(RangedName { name, range })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3::asn1::{ASNTag, Integer, OctetString, Sequence, Set, Tag, TagClass};

    fn octets(b: &[u8]) -> Tag {
        Tag::OctetString(OctetString {
            inner: b.to_vec(),
            ..Default::default()
        })
    }

    fn entry(dn: &[u8], attrs: Vec<(&[u8], Vec<&[u8]>)>) -> StructureTag {
        Tag::Sequence(Sequence {
            id: 4,
            class: TagClass::Application,
            inner: vec![
                octets(dn),
                Tag::Sequence(Sequence {
                    inner: attrs
                        .into_iter()
                        .map(|(n, vs)| {
                            Tag::Sequence(Sequence {
                                inner: vec![
                                    octets(n),
                                    Tag::Set(Set {
                                        inner: vs.into_iter().map(octets).collect(),
                                        ..Default::default()
                                    }),
                                ],
                                ..Default::default()
                            })
                        })
                        .collect(),
                    ..Default::default()
                }),
            ],
        })
        .into_structure()
    }

    #[test]
    fn parses_binary_values_untouched() {
        let all: Vec<u8> = (0..=255).collect();
        let e = parse_entry(entry(
            b"CN=x",
            vec![(b"objectGUID", vec![&all]), (b"mail", vec![b"a@b", b"c@d"])],
        ))
        .unwrap();
        assert_eq!(e.dn, "CN=x");
        assert_eq!(e.attributes[0], ("objectGUID".into(), vec![all]));
        assert_eq!(e.attributes[1].1, vec![b"a@b".to_vec(), b"c@d".to_vec()]);
    }

    #[test]
    fn malformed_entries_are_errors_not_panics() {
        let not_entry = Tag::Integer(Integer {
            inner: 5,
            ..Default::default()
        })
        .into_structure();
        assert!(parse_entry(not_entry).is_err());
        assert!(parse_entry(entry(&[0xff, 0xfe], vec![])).is_err());
        let bad_attr = Tag::Sequence(Sequence {
            id: 4,
            class: TagClass::Application,
            inner: vec![
                octets(b"CN=x"),
                Tag::Sequence(Sequence {
                    inner: vec![octets(b"not a sequence")],
                    ..Default::default()
                }),
            ],
        })
        .into_structure();
        assert!(parse_entry(bad_attr).is_err());
    }

    #[test]
    fn paged_cookie() {
        let value = ldap3::controls::RawControl::from(ldap3::controls::PagedResults {
            size: 0,
            cookie: vec![1, 2, 3],
        })
        .val
        .unwrap();
        assert_eq!(parse_paged_cookie(&value).unwrap(), vec![1, 2, 3]);
        assert!(parse_paged_cookie(&[0x30, 0x01]).is_err());
        assert!(parse_paged_cookie(&[]).is_err());
    }

    #[test]
    fn ranges() {
        let cases = [
            ("member", Ok(("member", None))),
            (
                "member;range=0-1499",
                Ok(("member", Some((0, RangeEnd::Upto(1499))))),
            ),
            (
                "member;range=1500-*",
                Ok(("member", Some((1500, RangeEnd::Last)))),
            ),
            ("userCertificate;binary", Ok(("userCertificate", None))),
            ("member;range=x-1", Err(())),
            ("member;range=5-1", Err(())),
            ("member;range=5", Err(())),
        ];
        for (input, want) in cases {
            let got = split_range(input)
                .map(|r| (r.name, r.range))
                .map_err(|_| ());
            assert_eq!(got, want, "{input}");
        }
    }
}
