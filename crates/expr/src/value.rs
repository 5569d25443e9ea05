//! Values an expression works on.

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
}
