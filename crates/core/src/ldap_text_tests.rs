//! Unit tests of LDAP text: filter-value escaping, DN parsing and escaping, comparison and
//! containment (with property tests).

use super::*;
use proptest::prelude::*;

fn text(attribute: &str, value: &str) -> Ava {
    Ava {
        attribute: attribute.into(),
        value: DnValue::Text(value.into()),
    }
}

fn single(avas: &[(&str, &str)]) -> Vec<Rdn> {
    avas.iter()
        .map(|(a, v)| Rdn {
            avas: vec![text(a, v)],
        })
        .collect()
}

#[test]
fn filter_escaping_cases() {
    let cases = [
        ("plain", "plain"),
        ("a*b", "a\\2ab"),
        ("(x)", "\\28x\\29"),
        ("back\\slash", "back\\5cslash"),
        ("nul\0", "nul\\00"),
        ("*)(objectClass=*", "\\2a\\29\\28objectClass=\\2a"),
        ("Müller", "Müller"),
    ];
    for (input, want) in cases {
        assert_eq!(escape_filter_value(input), want, "input {input:?}");
    }
    assert_eq!(
        escape_filter_bytes(&[0x00, 0x2a, 0xff, 0x10]),
        "\\00\\2a\\ff\\10"
    );
    assert_eq!(equality_filter("mail", "a*"), "(mail=a\\2a)");
}

#[test]
fn dn_value_escaping_cases() {
    let cases = [
        ("Smith, John", "Smith\\, John"),
        ("#hash", "\\#hash"),
        ("in#side", "in#side"),
        (" lead", "\\ lead"),
        ("trail ", "trail\\ "),
        (" ", "\\ "),
        ("a+b=c", "a\\+b\\=c"),
        ("q\"<>;\\", "q\\\"\\<\\>\\;\\\\"),
        ("nul\0", "nul\\00"),
    ];
    for (input, want) in cases {
        assert_eq!(escape_dn_value(input), want, "input {input:?}");
    }
}

#[test]
fn parses_dns() {
    let cases: Vec<(&str, Vec<Rdn>)> = vec![
        ("", vec![]),
        (
            "CN=Smith\\, John,OU=Users,DC=lab",
            single(&[("CN", "Smith, John"), ("OU", "Users"), ("DC", "lab")]),
        ),
        ("cn = a , dc = b", single(&[("cn", "a"), ("dc", "b")])),
        ("CN=\\ x\\ ", single(&[("CN", " x ")])),
        ("CN=\\#x", single(&[("CN", "#x")])),
        ("CN=M\\C3\\BCller", single(&[("CN", "Müller")])),
        ("CN=a\\2cb", single(&[("CN", "a,b")])),
        ("CN=a=b", single(&[("CN", "a=b")])),
        ("CN=", single(&[("CN", "")])),
        ("CN=a;DC=b", single(&[("CN", "a"), ("DC", "b")])),
        ("2.5.4.3=x", single(&[("2.5.4.3", "x")])),
        (
            "CN=a+UID=b,DC=c",
            vec![
                Rdn {
                    avas: vec![text("CN", "a"), text("UID", "b")],
                },
                Rdn {
                    avas: vec![text("DC", "c")],
                },
            ],
        ),
        (
            "CN=#04024869,DC=c",
            vec![
                Rdn {
                    avas: vec![Ava {
                        attribute: "CN".into(),
                        value: DnValue::Ber(vec![0x04, 0x02, 0x48, 0x69]),
                    }],
                },
                Rdn {
                    avas: vec![text("DC", "c")],
                },
            ],
        ),
    ];
    for (input, want) in cases {
        let got = Dn::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(got.rdns, want, "input {input:?}");
    }
}

#[test]
fn rejects_bad_dns() {
    for bad in [
        "CN",
        "=x",
        "CN=a,",
        "CN=a\\",
        "CN=a\\z",
        "CN=a\\4",
        "CN=a\"b",
        "CN=<x>",
        "CN=#0",
        "CN=#zz",
        "CN=#",
        "CN=\\ff\\fe",
        "C N=x",
        "CN=a,,DC=b",
    ] {
        let err = Dn::parse(bad).expect_err(bad);
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
}

#[test]
fn comparison_is_case_insensitive() {
    assert!(dn_eq("CN=John,DC=Lab", "cn=JOHN, dc=lab"));
    assert!(dn_eq("CN=Müller,DC=x", "cn=MÜLLER,dc=x"));
    assert!(dn_eq("CN=a+UID=b,DC=x", "uid=B+cn=A,DC=x"));
    assert!(!dn_eq("CN=John,DC=Lab", "CN=Jon,DC=Lab"));
    assert!(!dn_eq("CN=John", "CN=John,DC=Lab"));
    assert!(!dn_eq("CN=bad\\", "CN=bad\\"));
}

#[test]
fn within_base() {
    let base = "DC=lab,DC=example,DC=test";
    assert!(is_within("CN=u,OU=x,DC=lab,DC=example,DC=test", base));
    assert!(is_within("dc=LAB,dc=example,dc=test", base));
    assert!(!is_within("CN=u,DC=other,DC=example,DC=test", base));
    assert!(!is_within("DC=example,DC=test", base));
    assert!(!is_within("CN=u,OU=lab\\,DC=example,DC=test", base));
    assert!(is_within("CN=anything", ""));
}

fn any_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(
            prop_oneof![
                Just(','),
                Just('+'),
                Just('"'),
                Just('\\'),
                Just('<'),
                Just('>'),
                Just(';'),
                Just('='),
                Just('#'),
                Just(' '),
                Just('\0'),
                Just('a'),
                Just('é'),
            ],
            0..12
        )
        .prop_map(|cs| cs.into_iter().collect()),
    ]
}

proptest! {
    #[test]
    fn escape_then_parse_round_trips(values in proptest::collection::vec(any_value(), 1..4)) {
        let text = values
            .iter()
            .map(|v| format!("CN={}", escape_dn_value(v)))
            .collect::<Vec<_>>()
            .join(",");
        let dn = Dn::parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got: Vec<&DnValue> = dn.rdns.iter().map(|r| &r.avas[0].value).collect();
        let want: Vec<DnValue> = values.iter().cloned().map(DnValue::Text).collect();
        prop_assert_eq!(got, want.iter().collect::<Vec<_>>());
        // Display is a canonical form that parses to the same DN.
        prop_assert_eq!(Dn::parse(&dn.to_string()).unwrap(), dn);
    }

    #[test]
    fn filter_values_never_carry_specials(value in any_value()) {
        let escaped = escape_filter_value(&value);
        prop_assert!(!escaped.contains(['*', '(', ')', '\0']));
        // Every backslash starts a two-hex-digit escape.
        let bytes = escaped.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'\\' {
                prop_assert!(bytes.len() > i + 2);
                prop_assert!(bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit());
            }
        }
    }

    #[test]
    fn binary_filter_values_are_all_hex(value in proptest::collection::vec(any::<u8>(), 0..40)) {
        let escaped = escape_filter_bytes(&value);
        prop_assert_eq!(escaped.len(), value.len() * 3);
        prop_assert!(escaped.chars().all(|c| c == '\\' || c.is_ascii_hexdigit()));
    }

    #[test]
    fn parse_never_panics(text in any::<String>()) {
        let _ = Dn::parse(&text);
    }
}
