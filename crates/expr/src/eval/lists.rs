//! Multi-valued attributes: Count, Item, Join, RemoveDuplicates and Split.

use crate::value::Value;

use super::call::Call;
use super::{Evaluator, R};

pub(super) fn count(this: &mut Evaluator, c: &Call) -> R<Value> {
    Ok(Value::Int(match this.arg(c, 0)? {
        Value::List(items) => items.iter().filter(|v| !v.is_nullish()).count() as i64,
        v if v.is_nullish() => 0,
        _ => 1,
    }))
}

pub(super) fn item(this: &mut Evaluator, c: &Call) -> R<Value> {
    let items = match this.arg(c, 0)? {
        Value::List(items) => items,
        v if v.is_nullish() => Vec::new(),
        v => vec![v],
    };
    let i = this.int(c, 1)?;
    if i < 1 || i as usize > items.len() {
        return Err(c.fail(
            1,
            &format!(
                "index {i} is out of range: the attribute has {} value(s), and Item counts from 1",
                items.len()
            ),
        ));
    }
    Ok(items[i as usize - 1].clone())
}

pub(super) fn join(this: &mut Evaluator, c: &Call) -> R<Value> {
    let sep = this.text_or(c, 0, "")?;
    let mut parts = Vec::new();
    for i in 1..c.args.len() {
        let v = this.arg(c, i)?;
        let values = match v {
            Value::List(items) => items,
            v => vec![v],
        };
        for v in values {
            if v.is_null_or_empty() {
                continue;
            }
            parts.push(v.to_text().ok_or_else(|| c.bad(i, &v, "text"))?);
        }
    }
    Ok(Value::Str(parts.join(&sep)))
}

pub(super) fn remove_duplicates(this: &mut Evaluator, c: &Call) -> R<Value> {
    Ok(match this.arg(c, 0)? {
        Value::List(items) => {
            let mut out: Vec<Value> = Vec::with_capacity(items.len());
            for v in items {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            Value::List(out)
        }
        v => v,
    })
}

pub(super) fn split(this: &mut Evaluator, c: &Call) -> R<Value> {
    let delim = this.text_required(c, 1)?;
    if delim.is_empty() {
        return Err(c.fail(1, "the delimiter can't be empty"));
    }
    match this.arg(c, 0)? {
        v if v.is_nullish() => Ok(Value::Null),
        v => {
            let s = v.to_text().ok_or_else(|| c.bad(0, &v, "text"))?;
            Ok(Value::List(
                s.split(delim.as_str())
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| Value::Str(p.to_string()))
                    .collect(),
            ))
        }
    }
}
