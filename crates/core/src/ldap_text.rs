//! LDAP text: RFC 4515 filter-value escaping and RFC 4514 DN parsing and escaping.
//!
//! DN comparison follows AD: attribute types and string values compare case-insensitively.

use std::fmt;

/// Escape a string for use as an assertion value inside an LDAP filter (RFC 4515):
/// `*`, `(`, `)`, `\` and NUL become `\2a`, `\28`, `\29`, `\5c`, `\00`. Other UTF-8 is kept.
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// Escape a binary value (e.g. an objectGUID) for a filter: every byte as `\xx`.
pub fn escape_filter_bytes(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value {
        out.push('\\');
        out.push(hex_digit(b >> 4));
        out.push(hex_digit(b & 0x0f));
    }
    out
}

/// An equality filter `(attribute=value)` with the value escaped.
pub fn equality_filter(attribute: &str, value: &str) -> String {
    format!("({attribute}={})", escape_filter_value(value))
}

fn hex_digit(n: u8) -> char {
    char::from_digit(u32::from(n), 16).unwrap_or('0')
}

/// Escape a string for use as an attribute value in a DN (RFC 4514): `,+"\<>;=` and NUL
/// always, `#` and space at the start, space at the end.
pub fn escape_dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '\0' => out.push_str("\\00"),
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c => out.push(c),
        }
    }
    out
}

/// Why a text is not a DN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnError {
    #[error("DN {dn:?}: {problem} at byte {position}")]
    Syntax {
        dn: String,
        position: usize,
        problem: &'static str,
    },
}

/// An attribute value inside a DN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnValue {
    /// A string value (escapes resolved).
    Text(String),
    /// A `#hex` value: the BER encoding of the value, as given.
    Ber(Vec<u8>),
}

/// One `type=value` of an RDN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ava {
    pub attribute: String,
    pub value: DnValue,
}

/// A relative distinguished name: one or more AVAs joined by `+`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdn {
    pub avas: Vec<Ava>,
}

/// A parsed distinguished name: RDNs from the object up to the root (as written).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dn {
    pub rdns: Vec<Rdn>,
}

impl Dn {
    /// Parse an RFC 4514 string. The empty string is the root DN (no RDNs). Spaces around
    /// `,`, `+` and `=` that are not escaped are ignored, as AD does.
    pub fn parse(text: &str) -> Result<Dn, DnError> {
        Parser {
            text,
            bytes: text.as_bytes(),
            pos: 0,
        }
        .dn()
    }

    /// The DN of the parent (None for the root DN).
    pub fn parent(&self) -> Option<Dn> {
        if self.rdns.is_empty() {
            None
        } else {
            Some(Dn {
                rdns: self.rdns[1..].to_vec(),
            })
        }
    }

    /// Equal to `other` with AD's case-insensitive comparison.
    pub fn eq_ignore_case(&self, other: &Dn) -> bool {
        self.rdns.len() == other.rdns.len()
            && self.rdns.iter().zip(&other.rdns).all(|(a, b)| rdn_eq(a, b))
    }

    /// This DN is `base` or lies below it.
    pub fn is_within(&self, base: &Dn) -> bool {
        if base.rdns.len() > self.rdns.len() {
            return false;
        }
        let skip = self.rdns.len() - base.rdns.len();
        self.rdns[skip..]
            .iter()
            .zip(&base.rdns)
            .all(|(a, b)| rdn_eq(a, b))
    }
}

fn rdn_eq(a: &Rdn, b: &Rdn) -> bool {
    if a.avas.len() != b.avas.len() {
        return false;
    }
    // Multi-valued RDNs are unordered sets.
    let key = |ava: &Ava| -> (String, DnValueKey) {
        (
            ava.attribute.to_ascii_lowercase(),
            match &ava.value {
                DnValue::Text(s) => DnValueKey::Text(s.to_lowercase()),
                DnValue::Ber(b) => DnValueKey::Ber(b.clone()),
            },
        )
    };
    let mut ka: Vec<_> = a.avas.iter().map(key).collect();
    let mut kb: Vec<_> = b.avas.iter().map(key).collect();
    ka.sort();
    kb.sort();
    ka == kb
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum DnValueKey {
    Text(String),
    Ber(Vec<u8>),
}

/// Two DN strings name the same object (case-insensitive). Unparsable DNs are never equal.
pub fn dn_eq(a: &str, b: &str) -> bool {
    match (Dn::parse(a), Dn::parse(b)) {
        (Ok(a), Ok(b)) => a.eq_ignore_case(&b),
        _ => false,
    }
}

/// `dn` is `base` or lies below it (case-insensitive). Unparsable DNs are never within.
pub fn is_within(dn: &str, base: &str) -> bool {
    match (Dn::parse(dn), Dn::parse(base)) {
        (Ok(dn), Ok(base)) => dn.is_within(&base),
        _ => false,
    }
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rdn) in self.rdns.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{rdn}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Rdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, ava) in self.avas.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            f.write_str(&ava.attribute)?;
            f.write_str("=")?;
            match &ava.value {
                DnValue::Text(s) => f.write_str(&escape_dn_value(s))?,
                DnValue::Ber(b) => {
                    f.write_str("#")?;
                    for byte in b {
                        write!(f, "{byte:02x}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, problem: &'static str) -> DnError {
        DnError::Syntax {
            dn: self.text.to_string(),
            position: self.pos,
            problem,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    fn dn(mut self) -> Result<Dn, DnError> {
        let mut rdns = Vec::new();
        self.skip_spaces();
        if self.peek().is_none() {
            return Ok(Dn { rdns });
        }
        loop {
            rdns.push(self.rdn()?);
            match self.peek() {
                None => return Ok(Dn { rdns }),
                Some(b',') | Some(b';') => self.pos += 1,
                Some(_) => return Err(self.err("expected ',' between RDNs")),
            }
        }
    }

    fn rdn(&mut self) -> Result<Rdn, DnError> {
        let mut avas = vec![self.ava()?];
        while self.peek() == Some(b'+') {
            self.pos += 1;
            avas.push(self.ava()?);
        }
        Ok(Rdn { avas })
    }

    fn ava(&mut self) -> Result<Ava, DnError> {
        self.skip_spaces();
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'-' || c == b'.' {
                self.pos += 1;
            } else {
                break;
            }
        }
        if self.pos == start {
            return Err(self.err("expected an attribute type"));
        }
        let attribute = self.text[start..self.pos].to_string();
        if !is_valid_type(&attribute) {
            self.pos = start;
            return Err(self.err("invalid attribute type"));
        }
        self.skip_spaces();
        if self.peek() != Some(b'=') {
            return Err(self.err("expected '=' after the attribute type"));
        }
        self.pos += 1;
        self.skip_spaces();
        let value = if self.peek() == Some(b'#') {
            self.pos += 1;
            DnValue::Ber(self.hex_value()?)
        } else {
            DnValue::Text(self.string_value()?)
        };
        Ok(Ava { attribute, value })
    }

    fn hex_value(&mut self) -> Result<Vec<u8>, DnError> {
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(c) if c.is_ascii_hexdigit() => {
                    let hi = hex_val(c);
                    self.pos += 1;
                    match self.peek() {
                        Some(d) if d.is_ascii_hexdigit() => {
                            out.push((hi << 4) | hex_val(d));
                            self.pos += 1;
                        }
                        _ => return Err(self.err("odd number of hex digits in a #hex value")),
                    }
                }
                _ => break,
            }
        }
        if out.is_empty() {
            return Err(self.err("empty #hex value"));
        }
        self.skip_spaces();
        match self.peek() {
            None | Some(b',') | Some(b';') | Some(b'+') => Ok(out),
            Some(_) => Err(self.err("unexpected character in a #hex value")),
        }
    }

    fn string_value(&mut self) -> Result<String, DnError> {
        let mut out: Vec<u8> = Vec::new();
        // Length of `out` up to the last character that is not an unescaped space.
        let mut keep = 0;
        while let Some(c) = self.peek() {
            match c {
                b',' | b';' | b'+' => break,
                b'\\' => {
                    self.pos += 1;
                    match self.peek() {
                        Some(h) if h.is_ascii_hexdigit() => {
                            let hi = hex_val(h);
                            self.pos += 1;
                            match self.peek() {
                                Some(l) if l.is_ascii_hexdigit() => {
                                    out.push((hi << 4) | hex_val(l));
                                    self.pos += 1;
                                }
                                _ => return Err(self.err("'\\' must be followed by two hex digits or a special character")),
                            }
                        }
                        Some(
                            s @ (b',' | b'+' | b'"' | b'\\' | b'<' | b'>' | b';' | b'=' | b' '
                            | b'#'),
                        ) => {
                            out.push(s);
                            self.pos += 1;
                        }
                        _ => {
                            return Err(self.err(
                                "'\\' must be followed by two hex digits or a special character",
                            ));
                        }
                    }
                    keep = out.len();
                }
                b'"' | b'<' | b'>' | 0 => {
                    return Err(self.err("unescaped special character in a value"));
                }
                b' ' => {
                    out.push(c);
                    self.pos += 1;
                }
                _ => {
                    out.push(c);
                    self.pos += 1;
                    keep = out.len();
                }
            }
        }
        out.truncate(keep);
        String::from_utf8(out).map_err(|_| self.err("value is not UTF-8"))
    }
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

fn is_valid_type(t: &str) -> bool {
    let first = t.as_bytes()[0];
    if first.is_ascii_digit() {
        // numericoid
        t.split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
    } else {
        // descr; OID. prefixes are tolerated.
        let t = t
            .strip_prefix("OID.")
            .or_else(|| t.strip_prefix("oid."))
            .unwrap_or(t);
        !t.is_empty()
            && t.as_bytes()[0].is_ascii_alphanumeric()
            && t.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || b == b'-'
                    || (b == b'.' && t.as_bytes()[0].is_ascii_digit())
            })
    }
}

#[cfg(test)]
#[path = "ldap_text_tests.rs"]
mod tests;
