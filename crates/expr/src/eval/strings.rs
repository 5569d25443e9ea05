//! Text functions: Append, Contains, InStr, Left, Mid, Word, Trim, StripSpaces, ToLower/ToUpper,
//! PCase, NormalizeDiacritics and DNComponent.

use crate::ast::Named;
use crate::functions::Func as F;
use crate::text;
use crate::value::Value;

use super::call::Call;
use super::{Evaluator, R};

pub(super) fn append(this: &mut Evaluator, c: &Call) -> R<Value> {
    let suffix = this.text_or(c, 1, "")?;
    let v = this.arg(c, 0)?;
    c.map_text(v, 0, |s| Ok(Value::Str(format!("{s}{suffix}"))))
}

pub(super) fn contains(this: &mut Evaluator, c: &Call) -> R<Value> {
    let hay = this.arg(c, 0)?;
    let needle = this.text_required(c, 1)?;
    let ignore_case = this.mode(
        c,
        2,
        &[Named::CaseSensitive, Named::IgnoreCase],
        Named::CaseSensitive,
    )? == Named::IgnoreCase;
    let fold = |s: &str| {
        if ignore_case {
            text::lower(s)
        } else {
            s.to_string()
        }
    };
    let needle = fold(&needle);
    Ok(Value::Int(match hay {
        Value::List(items) => items
            .iter()
            .position(|v| v.to_text().is_some_and(|s| fold(&s).contains(&needle)))
            .map_or(0, |i| i as i64 + 1),
        v if v.is_nullish() => 0,
        v => {
            let s = v.to_text().ok_or_else(|| c.bad(0, &v, "text"))?;
            char_find(&fold(&s), &needle, 0).map_or(0, |i| i as i64 + 1)
        }
    }))
}

pub(super) fn dn_component(this: &mut Evaluator, c: &Call) -> R<Value> {
    let n = this.int(c, 1)?;
    if n < 1 {
        return Err(c.fail(1, &format!("the component number counts from 1, got {n}")));
    }
    let v = this.arg(c, 0)?;
    c.map_text(v, 0, |dn| {
        let parts = text::dn_components(&dn);
        Ok(parts
            .get(n as usize - 1)
            .map_or(Value::Null, |rdn| Value::Str(text::rdn_value(rdn))))
    })
}

pub(super) fn instr(this: &mut Evaluator, c: &Call) -> R<Value> {
    let hay = this.arg(c, 0)?;
    let needle = this.arg(c, 1)?;
    let start = match c.args.get(2) {
        Some(Some(_)) => this.int(c, 2)?,
        _ => 1,
    };
    if start < 1 {
        return Err(c.fail(2, &format!("start counts from 1, got {start}")));
    }
    let text_compare = this.mode(
        c,
        3,
        &[Named::VbBinaryCompare, Named::VbTextCompare],
        Named::VbBinaryCompare,
    )? == Named::VbTextCompare;
    if hay.is_nullish() || needle.is_nullish() {
        return Ok(Value::Int(0));
    }
    let hay = hay.to_text().ok_or_else(|| c.bad(0, &hay, "text"))?;
    let needle = needle.to_text().ok_or_else(|| c.bad(1, &needle, "text"))?;
    let (hay, needle) = if text_compare {
        (text::lower(&hay), text::lower(&needle))
    } else {
        (hay, needle)
    };
    Ok(Value::Int(
        char_find(&hay, &needle, start as usize - 1).map_or(0, |i| i as i64 + 1),
    ))
}

pub(super) fn left(this: &mut Evaluator, c: &Call) -> R<Value> {
    let n = this.int(c, 1)?;
    match this.arg(c, 0)? {
        v if v.is_nullish() => Ok(Value::Str(String::new())),
        v => c.map_text(v, 0, |s| {
            Ok(Value::Str(if n < 0 {
                s
            } else {
                s.chars().take(n as usize).collect()
            }))
        }),
    }
}

pub(super) fn mid(this: &mut Evaluator, c: &Call) -> R<Value> {
    let start = this.int(c, 1)?;
    if start < 1 {
        return Err(c.fail(1, &format!("start counts from 1, got {start}")));
    }
    let len = match c.args.get(2) {
        Some(Some(_)) => {
            let len = this.int(c, 2)?;
            if len < 0 {
                return Err(c.fail(2, &format!("length can't be negative, got {len}")));
            }
            Some(len as usize)
        }
        _ => None,
    };
    let v = this.arg(c, 0)?;
    c.map_text(v, 0, |s| {
        let chars = s.chars().skip(start as usize - 1);
        Ok(Value::Str(match len {
            Some(len) => chars.take(len).collect(),
            None => chars.collect(),
        }))
    })
}

pub(super) fn normalize_diacritics(this: &mut Evaluator, c: &Call) -> R<Value> {
    let v = this.arg(c, 0)?;
    c.map_text(v, 0, |s| Ok(Value::Str(text::normalize_diacritics(&s))))
}

pub(super) fn pcase(this: &mut Evaluator, c: &Call) -> R<Value> {
    let seps = match c.args.get(1) {
        Some(Some(_)) => Some(this.text_or(c, 1, "")?),
        _ => None,
    };
    let v = this.arg(c, 0)?;
    c.map_text(v, 0, |s| {
        Ok(Value::Str(text::proper_case(&s, seps.as_deref())))
    })
}

pub(super) fn strip_spaces(this: &mut Evaluator, c: &Call) -> R<Value> {
    let v = this.arg(c, 0)?;
    c.map_text(v, 0, |s| Ok(Value::Str(s.replace(' ', ""))))
}

pub(super) fn change_case(this: &mut Evaluator, c: &Call) -> R<Value> {
    if let Some(Some(_)) = c.args.get(1) {
        let culture = this.text_or(c, 1, "")?;
        let valid = culture.split('-').all(|p| {
            !p.is_empty() && p.len() <= 8 && p.chars().all(|ch| ch.is_ascii_alphanumeric())
        });
        if !culture.is_empty() && !valid {
            return Err(c.fail(
                1,
                &format!("\"{culture}\" is not a culture name like en-US or ja-JP"),
            ));
        }
    }
    let upper = c.func == F::ToUpper;
    let v = this.arg(c, 0)?;
    c.map_text(v, 0, |s| {
        Ok(Value::Str(if upper {
            text::upper(&s)
        } else {
            text::lower(&s)
        }))
    })
}

pub(super) fn trim(this: &mut Evaluator, c: &Call) -> R<Value> {
    let v = this.arg(c, 0)?;
    c.map_text(v, 0, |s| Ok(Value::Str(s.trim().to_string())))
}

pub(super) fn word(this: &mut Evaluator, c: &Call) -> R<Value> {
    let n = this.int(c, 1)?;
    let delims = this.text_or(c, 2, "")?;
    let v = this.arg(c, 0)?;
    if v.is_nullish() {
        return Ok(Value::Str(String::new()));
    }
    c.map_text(v, 0, |s| {
        if n < 1 {
            return Ok(Value::Str(String::new()));
        }
        let word = s
            .split(|ch| delims.contains(ch))
            .filter(|w| !w.is_empty())
            .nth(n as usize - 1)
            .unwrap_or("");
        Ok(Value::Str(word.to_string()))
    })
}

/// Position (in characters) of `needle` in `hay` at or after character `from`.
fn char_find(hay: &str, needle: &str, from: usize) -> Option<usize> {
    let start = hay.char_indices().nth(from).map(|(b, _)| b)?;
    if needle.is_empty() {
        return Some(from);
    }
    hay[start..]
        .find(needle)
        .map(|b| from + hay[start..start + b].chars().count())
}
