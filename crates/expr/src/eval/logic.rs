//! Conditions, null handling and flow: IIF, Switch, Coalesce, Not, the Is… tests, CBool, CStr,
//! BitAnd, CRef/Redact, Error and IgnoreFlowIfNullOrEmpty.

use crate::value::Value;

use super::call::Call;
use super::{Evaluator, R, Stop, fail};

pub(super) fn bit_and(this: &mut Evaluator, c: &Call) -> R<Value> {
    Ok(Value::Int(this.int(c, 0)? & this.int(c, 1)?))
}

pub(super) fn cbool(this: &mut Evaluator, c: &Call) -> R<Value> {
    let v = this.arg(c, 0)?;
    if v.is_nullish() {
        return Ok(Value::Bool(false));
    }
    v.to_bool()
        .map(Value::Bool)
        .ok_or_else(|| c.bad(0, &v, "a value that is true or false, or a number"))
}

pub(super) fn coalesce(this: &mut Evaluator, c: &Call) -> R<Value> {
    for i in 0..c.args.len() {
        let v = this.arg(c, i)?;
        if !v.is_nullish() {
            return Ok(v);
        }
    }
    Ok(Value::Null)
}

pub(super) fn pass_through(this: &mut Evaluator, c: &Call) -> R<Value> {
    this.arg(c, 0)
}

pub(super) fn cstr(this: &mut Evaluator, c: &Call) -> R<Value> {
    let v = this.arg(c, 0)?;
    c.map_text(v, 0, |s| Ok(Value::Str(s)))
}

pub(super) fn error(this: &mut Evaluator, c: &Call) -> R<Value> {
    let message = this.text_or(c, 0, "")?;
    Err(fail(
        c.node.span.start,
        format!("the expression raised an error: {message}"),
    ))
}

pub(super) fn ignore_flow_if_null_or_empty(this: &mut Evaluator, c: &Call) -> R<Value> {
    let v = this.arg(c, 0)?;
    if v.is_null_or_empty() {
        Err(Stop::IgnoreFlow)
    } else {
        Ok(v)
    }
}

pub(super) fn iif(this: &mut Evaluator, c: &Call) -> R<Value> {
    let cond = this.arg(c, 0)?;
    let truth = if cond.is_nullish() {
        false
    } else {
        cond.to_bool()
            .ok_or_else(|| c.bad(0, &cond, "a condition that is true or false"))?
    };
    this.arg(c, if truth { 1 } else { 2 })
}

pub(super) fn is_null(this: &mut Evaluator, c: &Call) -> R<Value> {
    Ok(Value::Bool(this.arg(c, 0)?.is_nullish()))
}

pub(super) fn is_null_or_empty(this: &mut Evaluator, c: &Call) -> R<Value> {
    Ok(Value::Bool(this.arg(c, 0)?.is_null_or_empty()))
}

pub(super) fn is_present(this: &mut Evaluator, c: &Call) -> R<Value> {
    Ok(Value::Bool(!this.arg(c, 0)?.is_null_or_empty()))
}

pub(super) fn is_string(this: &mut Evaluator, c: &Call) -> R<Value> {
    Ok(Value::Bool(matches!(
        this.arg(c, 0)?,
        Value::Str(_) | Value::Int(_) | Value::Bool(_) | Value::DateTime(_)
    )))
}

pub(super) fn not(this: &mut Evaluator, c: &Call) -> R<Value> {
    Ok(Value::Bool(this.arg(c, 0)?.to_bool() != Some(true)))
}

pub(super) fn switch(this: &mut Evaluator, c: &Call) -> R<Value> {
    let src = this.arg(c, 0)?;
    if matches!(&src, Value::List(items) if items.len() > 1) || matches!(src, Value::Bytes(_)) {
        return Err(c.bad(0, &src, "a single value"));
    }
    let key_text = |v: &Value| v.to_text().unwrap_or_default();
    let src = key_text(&src);
    let mut i = 2;
    while i + 1 < c.args.len() {
        let key = this.arg(c, i)?;
        if key_text(&key) == src {
            return this.arg(c, i + 1);
        }
        i += 2;
    }
    this.arg(c, 1)
}
