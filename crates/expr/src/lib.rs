//! The attribute-mapping expression language, compatible with Microsoft's provisioning
//! expression language (Entra Cloud Sync / Connect Sync). Pure: no I/O; time and randomness
//! are passed in through [`EvalContext`].
//!
//! The public API below is the contract other crates build against:
//! [`Expr::parse`], [`Expr::eval`], [`Expr::attributes`], [`Source`], [`EvalContext`],
//! [`Outcome`], [`ParseError`], [`EvalError`].

mod value;

pub use value::Value;

/// Where `[AttributeName]` references are looked up (a mailbox, or `--attr` values).
pub trait Source {
    /// The value of a source attribute by name (case-insensitive); `None` when the source
    /// has no such attribute (an error for the expression), `Some(Value::Null)` when it is
    /// known but empty.
    fn get(&self, name: &str) -> Option<Value>;
}

/// What evaluation may depend on besides the source: passed in so results are deterministic.
#[derive(Debug, Clone)]
pub struct EvalContext {
    pub now: jiff::Timestamp,
    /// Seed for RandomString and Guid.
    pub seed: u64,
}

/// The result of evaluating a mapping expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Write this value (`Value::Null` clears the target).
    Value(Value),
    /// `IgnoreThisFlow` / `IgnoreFlowIfNullOrEmpty`: leave the target attribute alone.
    IgnoreFlow,
    /// `AuthoritativeNull`: clear the target even where an empty value would be ignored.
    AuthoritativeNull,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    source: String,
}

/// A parse error, with the position (byte offset) and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub message: String,
    pub offset: usize,
}

/// An evaluation error naming the function and position.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    pub message: String,
    pub offset: usize,
}

impl Expr {
    /// Parse an expression.
    pub fn parse(text: &str) -> Result<Expr, ParseError> {
        Err(ParseError {
            message: format!("expressions are not implemented yet: {text}"),
            offset: 0,
        })
    }

    /// Evaluate against a source.
    pub fn eval(&self, _source: &dyn Source, _ctx: &EvalContext) -> Result<Outcome, EvalError> {
        Err(EvalError {
            message: "expressions are not implemented yet".into(),
            offset: 0,
        })
    }

    /// The source attributes the expression references (`[Name]`), in order of first use.
    pub fn attributes(&self) -> Vec<String> {
        Vec::new()
    }

    /// The expression's text as written.
    pub fn text(&self) -> &str {
        &self.source
    }
}
