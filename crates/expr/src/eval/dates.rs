//! Date and time functions: CDate, Now, DateAdd, DateDiff, FormatDateTime and AD's FILETIME
//! numbers (DateFromNum, NumFromDate).

use crate::datetime;
use crate::value::Value;

use super::call::Call;
use super::{Evaluator, R};

pub(super) fn cdate(this: &mut Evaluator, c: &Call) -> R<Value> {
    let v = this.arg(c, 0)?;
    c.map_value(v, 0, |v| match v {
        Value::DateTime(t) => Ok(Value::DateTime(t)),
        v => match v.to_text() {
            Some(s) => datetime::parse_lenient(&s)
                .map(Value::DateTime)
                .map_err(|m| c.fail(0, &m)),
            None => Err(c.bad(0, &v, "a date-time string")),
        },
    })
}

pub(super) fn date_add(this: &mut Evaluator, c: &Call) -> R<Value> {
    let interval = this.text_required(c, 0)?;
    let n = this.int(c, 1)?;
    let v = this.arg(c, 2)?;
    c.map_value(v, 2, |v| {
        let t = c.timestamp(2, &v)?;
        datetime::add(&interval, n, t)
            .map(Value::DateTime)
            .map_err(|m| c.fail(0, &m))
    })
}

pub(super) fn date_diff(this: &mut Evaluator, c: &Call) -> R<Value> {
    let interval = this.text_required(c, 0)?;
    let (a, b) = (this.arg(c, 1)?, this.arg(c, 2)?);
    if a.is_nullish() || b.is_nullish() {
        return Ok(Value::Null);
    }
    let (a, b) = (c.timestamp(1, &a)?, c.timestamp(2, &b)?);
    datetime::diff(&interval, a, b)
        .map(Value::Int)
        .map_err(|m| c.fail(0, &m))
}

pub(super) fn date_from_num(this: &mut Evaluator, c: &Call) -> R<Value> {
    let v = this.arg(c, 0)?;
    c.map_value(v, 0, |v| {
        let n = v
            .to_int()
            .ok_or_else(|| c.bad(0, &v, "a number (an AD date such as lastLogonTimestamp)"))?;
        datetime::from_filetime(n)
            .map(Value::DateTime)
            .map_err(|m| c.fail(0, &m))
    })
}

pub(super) fn format_date_time(this: &mut Evaluator, c: &Call) -> R<Value> {
    let (styles_at, in_at, out_at) = if c.args.len() == 4 {
        (Some(1), 2, 3)
    } else {
        (None, 1, 2)
    };
    let styles = match styles_at {
        Some(i) => this.text_or(c, i, "")?,
        None => String::new(),
    };
    let input_format = this.text_required(c, in_at)?;
    let output_format = this.text_required(c, out_at)?;
    let today = this.ctx.now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let v = this.arg(c, 0)?;
    c.map_value(v, 0, |v| {
        let parsed = match v {
            Value::DateTime(t) => datetime::Parsed::from_timestamp(t),
            v => {
                let s = v.to_text().ok_or_else(|| c.bad(0, &v, "a date string"))?;
                datetime::parse_exact(&s, &input_format, today).map_err(|m| c.fail(0, &m))?
            }
        };
        let parsed = datetime::apply_styles(parsed, &styles)
            .map_err(|m| c.fail(styles_at.unwrap_or(0), &m))?;
        Ok(Value::Str(datetime::format(parsed, &output_format)))
    })
}

pub(super) fn now(this: &mut Evaluator) -> R<Value> {
    Ok(Value::DateTime(this.ctx.now))
}

pub(super) fn num_from_date(this: &mut Evaluator, c: &Call) -> R<Value> {
    let v = this.arg(c, 0)?;
    c.map_value(v, 0, |v| {
        let t = c.timestamp(0, &v)?;
        datetime::to_filetime(t)
            .map(Value::Int)
            .map_err(|m| c.fail(0, &m))
    })
}
