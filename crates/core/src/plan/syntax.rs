//! A planned value in its attribute's AD syntax: converted from the mapping's value and
//! checked against the discovered schema (type, range), and values compared by syntax, both
//! as the planner decides what changes and as AD's equality rule matches them.

use exo_writeback_expr::Value;

use crate::directory::AttrValue;
use crate::schema::{AttributeSchema, Syntax};

use super::PlanFailure;

pub(super) fn schema_error(attribute: &str, rule: impl Into<String>) -> PlanFailure {
    PlanFailure::SchemaConstraint {
        attribute: attribute.to_string(),
        rule: rule.into(),
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Str(s) => format!("{s:?}"),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Bytes(b) => format!("{} bytes", b.len()),
        Value::DateTime(t) => t.to_string(),
        Value::List(items) => format!("a list of {}", items.len()),
    }
}

fn integer(attribute: &str, value: &Value, syntax_name: &str) -> Result<i64, PlanFailure> {
    match value {
        Value::Int(i) => Ok(*i),
        Value::Str(s) => s.trim().parse::<i64>().map_err(|_| {
            schema_error(
                attribute,
                format!("{syntax_name} syntax needs a decimal integer, got {s:?}"),
            )
        }),
        other => Err(schema_error(
            attribute,
            format!(
                "{syntax_name} syntax needs a decimal integer, got {}",
                describe(other)
            ),
        )),
    }
}

/// Convert one desired value to the attribute's AD syntax, checking it.
pub(super) fn to_attr_value(
    schema: &AttributeSchema,
    value: &Value,
) -> Result<AttrValue, PlanFailure> {
    let attribute = schema.ldap_display_name.as_str();
    let text = |s: String| Ok(AttrValue::Text(s));
    match &schema.syntax {
        Syntax::Unicode | Syntax::OtherText | Syntax::DnString => match value {
            Value::Str(s) => match s
                .char_indices()
                .find(|(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
            {
                // NUL and other control characters are refused: AD stores strings
                // NUL-terminated (a value would be cut short) and other tools choke on them.
                Some((at, c)) => Err(schema_error(
                    attribute,
                    format!(
                        "control character U+{:04X} at byte {at} is not allowed in a directory string",
                        u32::from(c)
                    ),
                )),
                None => text(s.clone()),
            },
            Value::Int(i) => text(i.to_string()),
            Value::Bool(b) => text(if *b { "True" } else { "False" }.into()),
            // As Microsoft's service writes a date-time as text: `M/d/yyyy h:mm:ss tt`, UTC
            // (the expression reference's CDate, DateAdd and DateFromNum examples).
            v @ Value::DateTime(_) => text(v.to_string()),
            other => Err(schema_error(
                attribute,
                format!("text syntax cannot hold {}", describe(other)),
            )),
        },
        Syntax::Boolean => match value {
            Value::Bool(b) => text(if *b { "TRUE" } else { "FALSE" }.into()),
            Value::Str(s) if s.eq_ignore_ascii_case("true") => text("TRUE".into()),
            Value::Str(s) if s.eq_ignore_ascii_case("false") => text("FALSE".into()),
            other => Err(schema_error(
                attribute,
                format!(
                    "Boolean syntax needs TRUE or FALSE, got {}",
                    describe(other)
                ),
            )),
        },
        Syntax::Integer => {
            let i = integer(attribute, value, "Integer")?;
            if i32::try_from(i).is_err() {
                return Err(schema_error(
                    attribute,
                    format!("Integer syntax is 32-bit, {i} is out of range"),
                ));
            }
            text(i.to_string())
        }
        Syntax::LargeInteger => text(integer(attribute, value, "Large integer")?.to_string()),
        Syntax::OctetString | Syntax::Sid | Syntax::OtherBinary(_) => match value {
            Value::Bytes(b) => Ok(AttrValue::Bytes(b.clone())),
            other => Err(schema_error(
                attribute,
                format!("binary syntax needs bytes, got {}", describe(other)),
            )),
        },
        Syntax::Time => match value {
            Value::DateTime(t) => text(t.strftime("%Y%m%d%H%M%S.0Z").to_string()),
            other => Err(schema_error(
                attribute,
                format!("time syntax needs a date-time, got {}", describe(other)),
            )),
        },
    }
}

/// rangeLower / rangeUpper for one value: characters for text, bytes for binary, the value
/// for integers.
pub(super) fn check_range(schema: &AttributeSchema, value: &AttrValue) -> Result<(), PlanFailure> {
    let attribute = schema.ldap_display_name.as_str();
    let (measure, what): (i128, &str) = match (&schema.syntax, value) {
        (Syntax::Integer | Syntax::LargeInteger, AttrValue::Text(t)) => {
            (t.parse::<i128>().unwrap_or(0), "value")
        }
        (_, AttrValue::Text(t)) => (t.chars().count() as i128, "characters"),
        (_, AttrValue::Bytes(b)) => (b.len() as i128, "bytes"),
    };
    if let Some(upper) = schema.range_upper
        && measure > upper as i128
    {
        return Err(schema_error(
            attribute,
            format!("rangeUpper {upper} exceeded ({what}: {measure})"),
        ));
    }
    if let Some(lower) = schema.range_lower
        && measure < lower as i128
    {
        return Err(schema_error(
            attribute,
            format!("rangeLower {lower} not reached ({what}: {measure})"),
        ));
    }
    Ok(())
}

pub(super) fn texts(attribute: &str, values: &[AttrValue]) -> Result<Vec<String>, PlanFailure> {
    values
        .iter()
        .map(|v| {
            v.as_text().map(str::to_string).ok_or_else(|| {
                schema_error(attribute, "proxy addresses are text, the value is bytes")
            })
        })
        .collect()
}

pub(super) fn value_texts(attribute: &str, values: &[Value]) -> Result<Vec<String>, PlanFailure> {
    values
        .iter()
        .map(|v| match v {
            Value::Str(s) => Ok(s.clone()),
            other => Err(schema_error(
                attribute,
                format!("proxy addresses are text, got {}", describe(other)),
            )),
        })
        .collect()
}
