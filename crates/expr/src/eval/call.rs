//! One function call being evaluated: its arguments' positions, the errors that point at
//! them, and applying a function to each value of a multi-valued argument.

use crate::ast::Node;
use crate::datetime;
use crate::functions::Func;
use crate::value::Value;

use super::{R, Stop, fail};

/// One function call being evaluated, for argument access and error messages.
pub(super) struct Call<'n> {
    pub(super) func: Func,
    pub(super) node: &'n Node,
    pub(super) args: &'n [Option<Node>],
}

impl Call<'_> {
    pub(super) fn offset(&self, i: usize) -> usize {
        match self.args.get(i) {
            Some(Some(n)) => n.span.start,
            _ => self.node.span.start,
        }
    }

    pub(super) fn fail(&self, i: usize, message: &str) -> Stop {
        fail(self.offset(i), format!("{}: {message}", self.func.name()))
    }

    /// An argument of the wrong kind.
    pub(super) fn bad(&self, i: usize, v: &Value, expected: &str) -> Stop {
        let got = match v {
            Value::Null => "null (no value)".to_string(),
            Value::Str(s) => format!("the string \"{s}\""),
            v => format!("a {} value{}", v.type_name(), hint_for(v)),
        };
        fail(
            self.offset(i),
            format!(
                "{}: argument {} must be {expected}, got {got}",
                self.func.name(),
                i + 1
            ),
        )
    }

    /// Apply `f` to the value, or to each value of a multi-valued one; null stays null.
    pub(super) fn map_value(
        &self,
        v: Value,
        _i: usize,
        mut f: impl FnMut(Value) -> R<Value>,
    ) -> R<Value> {
        match v {
            Value::Null => Ok(Value::Null),
            Value::List(items) => items
                .into_iter()
                .filter(|v| !v.is_nullish())
                .map(&mut f)
                .collect::<R<Vec<_>>>()
                .map(Value::List),
            v => f(v),
        }
    }

    /// As `map_value`, on text.
    pub(super) fn map_text(
        &self,
        v: Value,
        i: usize,
        mut f: impl FnMut(String) -> R<Value>,
    ) -> R<Value> {
        self.map_value(v, i, |v| {
            let s = v.to_text().ok_or_else(|| self.bad(i, &v, "text"))?;
            f(s)
        })
    }

    pub(super) fn timestamp(&self, i: usize, v: &Value) -> R<jiff::Timestamp> {
        match v {
            Value::DateTime(t) => Ok(*t),
            v => match v.to_text() {
                Some(s) => datetime::parse_lenient(&s).map_err(|m| self.fail(i, &m)),
                None => Err(self.bad(i, v, "a date-time (use CDate or Now)")),
            },
        }
    }
}

pub(super) fn hint_for(v: &Value) -> &'static str {
    match v {
        Value::List(_) => " (use Join or Item for multi-valued attributes)",
        Value::Bytes(_) => " (use ConvertToBase64 or StringFromSid for binary values)",
        _ => "",
    }
}
