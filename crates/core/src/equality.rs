//! When two attribute values are the same: for a single-valued attribute, whether its value
//! must be written ([`same_value`]); for AD, whether it holds them as one value
//! ([`ad_equal`], checked against Samba's equality matching case by case in
//! `crates/ad/tests/it/equality.rs`).

use crate::directory::AttrValue;
use crate::schema::Syntax;

/// Whether two values of a syntax mean the same (text: exactly, so case-only changes are
/// written; Boolean: ignoring case; integers: numerically; binary: byte-wise).
pub fn same_value(syntax: &Syntax, a: &AttrValue, b: &AttrValue) -> bool {
    match syntax {
        Syntax::Boolean => match (a.as_text(), b.as_text()) {
            (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
            _ => a.as_bytes() == b.as_bytes(),
        },
        Syntax::Integer | Syntax::LargeInteger => {
            match (
                a.as_text().and_then(|t| t.trim().parse::<i64>().ok()),
                b.as_text().and_then(|t| t.trim().parse::<i64>().ok()),
            ) {
                (Some(x), Some(y)) => x == y,
                _ => a.as_bytes() == b.as_bytes(),
            }
        }
        _ => a.as_bytes() == b.as_bytes(),
    }
}

/// Whether AD's equality rule considers two values equal: integers numerically, Booleans and
/// text ignoring case as AD folds it ([`ad_fold`]), binary values byte-wise. The case list
/// `crates/ad/tests/it/equality.rs` checks it against Samba's equality matching, pair by pair
/// (and names the pairs where it deliberately differs).
pub fn ad_equal(syntax: &Syntax, a: &AttrValue, b: &AttrValue) -> bool {
    if syntax.is_binary() {
        return a.as_bytes() == b.as_bytes();
    }
    if matches!(syntax, Syntax::Integer | Syntax::LargeInteger) {
        return same_value(syntax, a, b);
    }
    match (a.as_text(), b.as_text()) {
        (Some(x), Some(y)) => x.chars().map(ad_fold).eq(y.chars().map(ad_fold)),
        _ => a.as_bytes() == b.as_bytes(),
    }
}

/// One character as AD's case-insensitive matching compares it: a lowercase letter becomes its
/// uppercase when that is one character; anything else stays. AD upper-cases (Windows' case
/// tables, which Samba follows), so the Kelvin sign stays apart from `k` and the capital sharp
/// s from `ß` (lower-casing would merge them); a titlecase letter (`ǅ`) stays; the lowercase
/// letters whose uppercase belongs to another script or to ASCII — dotless `ı`, long `ſ`,
/// micro `µ` — are not folded by AD's table (found by the case list).
fn ad_fold(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    if !c.is_lowercase() || matches!(c, '\u{131}' | '\u{17F}' | '\u{B5}') {
        return c;
    }
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}
