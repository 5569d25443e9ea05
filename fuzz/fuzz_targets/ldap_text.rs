//! Fuzz LDAP text handling: DN parsing never panics and a parsed DN prints as a DN that
//! parses to the same structure; an escaped filter value holds no unescaped filter
//! metacharacter and unescapes to the input; an escaped DN value parses back to the input.
#![no_main]

use exo_writeback_core::ldap_text::{
    Dn, DnValue, dn_eq, equality_filter, escape_dn_value, escape_filter_bytes,
    escape_filter_value, is_within,
};
use libfuzzer_sys::fuzz_target;

/// Undo RFC 4515 escaping; None when a `\` is not followed by two hex digits.
fn unescape_filter(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let escaped_bytes = escape_filter_bytes(data);
    assert_eq!(unescape_filter(&escaped_bytes).as_deref(), Some(data));

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    // Filter escaping.
    let escaped = escape_filter_value(text);
    assert!(
        !escaped.contains(['*', '(', ')', '\0']),
        "metacharacter left in {escaped:?}"
    );
    assert_eq!(
        unescape_filter(&escaped).as_deref(),
        Some(text.as_bytes()),
        "every \\ starts a two-digit escape and the value round-trips"
    );
    let filter = equality_filter("mail", text);
    assert!(filter.starts_with("(mail=") && filter.ends_with(')'));
    assert!(!filter[1..filter.len() - 1].contains(['(', ')']));

    // DN value escaping round-trips through the parser.
    let dn_text = format!("CN={},OU=Users,DC=lab", escape_dn_value(text));
    let dn = Dn::parse(&dn_text).unwrap_or_else(|e| panic!("escaped value does not parse: {e}"));
    assert_eq!(dn.rdns.len(), 3, "{dn_text:?}");
    assert_eq!(dn.rdns[0].avas.len(), 1, "{dn_text:?}");
    assert_eq!(dn.rdns[0].avas[0].value, DnValue::Text(text.to_string()), "{dn_text:?}");
    assert!(is_within(&dn_text, "ou=users,dc=LAB"));

    // Arbitrary DN text: no panic; what parses prints to an equal DN.
    if let Ok(dn) = Dn::parse(text) {
        let printed = dn.to_string();
        let reparsed =
            Dn::parse(&printed).unwrap_or_else(|e| panic!("printed DN does not parse: {e}"));
        assert_eq!(dn, reparsed, "{text:?} printed as {printed:?}");
        assert!(dn_eq(text, &printed));
        if let Some(parent) = dn.parent() {
            assert!(dn.is_within(&parent));
            assert!(!parent.is_within(&dn));
        }
    }
});
