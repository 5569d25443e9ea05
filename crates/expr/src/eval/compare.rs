//! The comparison operators of IIF conditions (`=`, `<>`, `<`, `<=`, `>`, `>=`).

use std::cmp::Ordering;

use crate::ast::CmpOp;
use crate::datetime;
use crate::value::Value;

/// Comparison in IIF conditions: numbers numerically, date-times chronologically, text
/// case-sensitively; null equals null and the empty string; ordering with null is false.
pub(super) fn compare(op: CmpOp, l: &Value, r: &Value) -> Result<bool, String> {
    let single = |v: &Value| -> Result<Value, String> {
        match v {
            Value::List(items) if items.len() == 1 => Ok(items[0].clone()),
            Value::List(items) if items.is_empty() => Ok(Value::Null),
            Value::List(_) => Err(
                "can't compare a multi-valued attribute with a value: use Item, Join or Count"
                    .to_string(),
            ),
            Value::Bytes(_) => {
                Err("can't compare binary values: use ConvertToBase64 or StringFromSid".to_string())
            }
            v => Ok(v.clone()),
        }
    };
    let (l, r) = (single(l)?, single(r)?);
    let is_empty =
        |v: &Value| matches!(v, Value::Null) || matches!(v, Value::Str(s) if s.is_empty());
    if l.is_null() || r.is_null() {
        let equal = is_empty(&l) && is_empty(&r);
        return Ok(match op {
            CmpOp::Eq => equal,
            CmpOp::Ne => !equal,
            _ => false,
        });
    }
    let ordering: Option<Ordering> = match (&l, &r) {
        (Value::DateTime(a), b) | (b, Value::DateTime(a)) => {
            let other = match b {
                Value::DateTime(t) => Some(*t),
                v => v.to_text().and_then(|s| datetime::parse_lenient(&s).ok()),
            };
            let other =
                other.ok_or_else(|| format!("can't compare a date-time with {}", describe(b)))?;
            // Keep the operands' order.
            if matches!(l, Value::DateTime(_)) {
                Some(a.cmp(&other))
            } else {
                Some(other.cmp(a))
            }
        }
        (Value::Bool(a), b) | (b, Value::Bool(a)) => {
            let other = b
                .to_bool()
                .ok_or_else(|| format!("can't compare a boolean with {}", describe(b)))?;
            match op {
                CmpOp::Eq => return Ok(*a == other),
                CmpOp::Ne => return Ok(*a != other),
                _ => return Err("booleans can only be compared with = and <>".to_string()),
            }
        }
        (Value::Int(_), _) | (_, Value::Int(_)) => match (l.to_int(), r.to_int()) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => Some(
                l.to_text()
                    .unwrap_or_default()
                    .cmp(&r.to_text().unwrap_or_default()),
            ),
        },
        _ => Some(
            l.to_text()
                .unwrap_or_default()
                .cmp(&r.to_text().unwrap_or_default()),
        ),
    };
    let o = ordering.unwrap_or(Ordering::Equal);
    Ok(match op {
        CmpOp::Eq => o == Ordering::Equal,
        CmpOp::Ne => o != Ordering::Equal,
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Ge => o != Ordering::Less,
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Le => o != Ordering::Greater,
    })
}

fn describe(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("the string \"{s}\""),
        v => format!("a {} value", v.type_name()),
    }
}
