//! Values an expression works on, and the documented coercions between them.
//!
//! Coercions (used by function arguments, `&` and comparisons):
//! - to text: a string is itself; an integer is its decimal digits; a boolean is `True` or
//!   `False`; a date-time is `M/d/yyyy h:mm:ss tt` in UTC (the format Microsoft documents for
//!   `CDate`, `DateAdd` and `Now`); binary data has no text form (use `ConvertToBase64` or
//!   `StringFromSid`); a multi-valued attribute has no single text form (use `Join` or `Item`).
//! - to a number: an integer is itself; a string of decimal digits (optionally signed,
//!   surrounding blanks ignored) is that number.
//! - to a boolean: a boolean is itself; an integer is true when non-zero; the strings `True`
//!   and `False` (any case) and decimal strings (non-zero is true).
//! - null: an absent attribute, `NULL`, or a multi-valued attribute with no values.

use std::fmt;

/// A value flowing through an expression: what a source property holds or a function returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value (an absent attribute, `NULL`).
    Null,
    Str(String),
    Int(i64),
    Bool(bool),
    Bytes(Vec<u8>),
    DateTime(jiff::Timestamp),
    /// A multi-valued attribute.
    List(Vec<Value>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Null, or a multi-valued attribute without values (what `IsNull` tests).
    pub fn is_nullish(&self) -> bool {
        match self {
            Value::Null => true,
            Value::List(items) => items.iter().all(Value::is_nullish),
            _ => false,
        }
    }

    /// Null or empty (what `IsNullOrEmpty` tests; `IsPresent` is its inverse).
    pub fn is_null_or_empty(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Str(s) => s.is_empty(),
            Value::Bytes(b) => b.is_empty(),
            Value::List(items) => items.iter().all(Value::is_null_or_empty),
            _ => false,
        }
    }

    /// The name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Str(_) => "string",
            Value::Int(_) => "integer",
            Value::Bool(_) => "boolean",
            Value::Bytes(_) => "binary",
            Value::DateTime(_) => "date-time",
            Value::List(_) => "multi-valued",
        }
    }

    /// The value as text, when it has a single text form (see the module documentation).
    pub fn to_text(&self) -> Option<String> {
        match self {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Bool(b) => Some(bool_text(*b).to_string()),
            Value::DateTime(t) => Some(crate::datetime::display(*t)),
            Value::List(items) if items.len() == 1 => items[0].to_text(),
            Value::Null | Value::Bytes(_) | Value::List(_) => None,
        }
    }

    /// The value as a whole number, when it is one.
    pub fn to_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Str(s) => s.trim().parse().ok(),
            Value::List(items) if items.len() == 1 => items[0].to_int(),
            _ => None,
        }
    }

    /// The value as a boolean, when it is one.
    pub fn to_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::Int(i) => Some(*i != 0),
            Value::Str(s) => {
                let t = s.trim();
                if t.eq_ignore_ascii_case("true") {
                    Some(true)
                } else if t.eq_ignore_ascii_case("false") {
                    Some(false)
                } else {
                    t.parse::<i64>().ok().map(|i| i != 0)
                }
            }
            Value::List(items) if items.len() == 1 => items[0].to_bool(),
            _ => None,
        }
    }
}

pub(crate) fn bool_text(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// How the value reads to an administrator: text as is, booleans `True`/`False`, date-times
/// `M/d/yyyy h:mm:ss tt`, binary as base64, multi-valued as `[a, b]`, null as `NULL`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Str(s) => f.write_str(s),
            Value::Int(i) => write!(f, "{i}"),
            Value::Bool(b) => f.write_str(bool_text(*b)),
            Value::Bytes(b) => {
                use base64::Engine as _;
                f.write_str(&base64::engine::general_purpose::STANDARD.encode(b))
            }
            Value::DateTime(t) => f.write_str(&crate::datetime::display(*t)),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
        }
    }
}
