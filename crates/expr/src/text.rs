//! Text transforms: diacritics, proper case, invariant case mapping, DNs and SIDs.

/// Microsoft's documented NormalizeDiacritics table (precomposed letters); combining marks
/// (U+0300–U+036F) that follow a letter are dropped, so decomposed input normalizes too.
pub fn normalize_diacritics(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if ('\u{300}'..='\u{36f}').contains(&c) {
            continue;
        }
        match fold(c) {
            Some(r) => out.push_str(r),
            None => out.push(c),
        }
    }
    out
}

fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        'ä' | 'à' | 'â' | 'ã' | 'å' | 'á' | 'ą' | 'ă' | 'ā' | 'ǟ' | 'ǡ' => "a",
        'Ä' | 'À' | 'Â' | 'Ã' | 'Å' | 'Á' | 'Ą' | 'Ă' | 'Ā' | 'Ǟ' | 'Ǡ' => "A",
        'æ' | 'ǣ' => "ae",
        'Æ' | 'Ǣ' => "AE",
        'ç' | 'č' | 'ć' => "c",
        'Ç' | 'Č' | 'Ć' => "C",
        'ď' | 'ḏ' => "d",
        'Ď' | 'Ḏ' => "D",
        'ë' | 'è' | 'é' | 'ê' | 'ę' | 'ě' | 'ė' | 'ē' | 'ḗ' | 'ḕ' => "e",
        'Ë' | 'È' | 'É' | 'Ê' | 'Ę' | 'Ě' | 'Ė' | 'Ē' | 'Ḗ' | 'Ḕ' => "E",
        'ğ' | 'ḡ' => "g",
        'Ğ' | 'Ḡ' => "G",
        'ï' | 'î' | 'ì' | 'í' | 'ı' | 'ī' => "i",
        'Ï' | 'Î' | 'Ì' | 'Í' | 'İ' | 'Ī' => "I",
        'ľ' | 'ł' | 'ḹ' | 'ḻ' => "l",
        'Ł' | 'Ľ' | 'Ḹ' | 'Ḻ' => "L",
        'ñ' | 'ń' | 'ň' | 'ṉ' => "n",
        'Ñ' | 'Ń' | 'Ň' | 'Ṉ' => "N",
        'ö' | 'ò' | 'ő' | 'õ' | 'ô' | 'ó' | 'ō' | 'ṓ' | 'ṑ' | 'ȫ' | 'ǭ' | 'ȭ' | 'ȱ' => {
            "o"
        }
        'Ö' | 'Ò' | 'Ő' | 'Õ' | 'Ô' | 'Ó' | 'Ō' | 'Ṓ' | 'Ṑ' | 'Ȫ' | 'Ǭ' | 'Ȭ' | 'Ȱ' => {
            "O"
        }
        'ø' | 'œ' => "oe",
        'Ø' | 'Œ' => "OE",
        'ř' | 'ṟ' | 'ṝ' => "r",
        'Ř' | 'Ṟ' | 'Ṝ' => "R",
        'ß' => "ss",
        'š' | 'ś' | 'ș' | 'ş' => "s",
        'Š' | 'Ś' | 'Ș' | 'Ş' => "S",
        'ť' | 'ț' | 'ṯ' => "t",
        'Ť' | 'Ț' | 'Ṯ' => "T",
        'ü' | 'ù' | 'û' | 'ú' | 'ů' | 'ű' | 'ū' | 'ǖ' | 'ṻ' | 'ṳ' => "u",
        'Ü' | 'Ù' | 'Û' | 'Ú' | 'Ů' | 'Ű' | 'Ū' | 'Ǖ' | 'Ṻ' | 'Ṳ' => "U",
        'ÿ' | 'ý' | 'ȳ' => "y",
        'Ÿ' | 'Ý' | 'Ȳ' => "Y",
        'ź' | 'ž' | 'ż' | 'ẕ' => "z",
        'Ź' | 'Ž' | 'Ż' | 'Ẕ' => "Z",
        _ => return None,
    })
}

/// Invariant-culture case mapping: one character for one (as .NET's `ToUpperInvariant`,
/// so `ß` stays `ß`).
pub fn upper(s: &str) -> String {
    s.chars().map(upper_char).collect()
}

pub fn lower(s: &str) -> String {
    s.chars().map(lower_char).collect()
}

fn upper_char(c: char) -> char {
    let mut it = c.to_uppercase();
    match (it.next(), it.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

fn lower_char(c: char) -> char {
    let mut it = c.to_lowercase();
    match (it.next(), it.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// PCase: the first letter of each word upper case, every other letter lower case. Without
/// separators, any character that is not a letter, digit or combining mark separates words
/// (the Unicode categories .NET's ToTitleCase uses); with separators, only those do.
pub fn proper_case(s: &str, separators: Option<&str>) -> String {
    let is_sep = |c: char| match separators {
        Some(seps) => seps.contains(c),
        None => !(c.is_alphanumeric() || ('\u{300}'..='\u{36f}').contains(&c)),
    };
    let mut out = String::with_capacity(s.len());
    let mut start_of_word = true;
    for c in s.chars() {
        if is_sep(c) {
            out.push(c);
            start_of_word = true;
        } else if start_of_word {
            out.push(upper_char(c));
            start_of_word = false;
        } else {
            out.push(lower_char(c));
        }
    }
    out
}

/// The relative distinguished names of a DN, split at unescaped commas.
pub fn dn_components(dn: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = dn.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ',' => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    parts
}

/// The value of an RDN (`cn=Joe` → `Joe`), with `\,`-style escapes removed.
pub fn rdn_value(rdn: &str) -> String {
    let value = rdn.split_once('=').map_or(rdn, |(_, v)| v).trim();
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A binary security identifier in its text form (`S-1-5-21-…`).
pub fn sid_to_string(b: &[u8]) -> Option<String> {
    if b.len() < 8 {
        return None;
    }
    let revision = b[0];
    let count = usize::from(b[1]);
    if b.len() != 8 + 4 * count {
        return None;
    }
    let authority = b[2..8]
        .iter()
        .fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
    let mut s = format!("S-{revision}-{authority}");
    for i in 0..count {
        let at = 8 + 4 * i;
        let sub = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        s.push_str(&format!("-{sub}"));
    }
    Some(s)
}
