//! The attribute-mapping expression language, compatible with Microsoft's provisioning
//! expression language (Entra Cloud Sync / Connect Sync). Pure: no I/O; time and randomness
//! are passed in through [`EvalContext`].
//!
//! The public API below is the contract other crates build against:
//! [`Expr::parse`], [`Expr::eval`], [`Expr::attributes`], [`Source`], [`EvalContext`],
//! [`Outcome`], [`ParseError`], [`EvalError`].
//!
//! Parse once, evaluate many times: parsing resolves function names, checks argument counts
//! and compiles literal regular expressions, so evaluation only walks the tree.
//!
//! Architecture invariant: this crate does no I/O and has no clock or entropy of its own.

mod ast;
mod datetime;
mod eval;
mod functions;
mod parse;
mod suggest;
mod text;
mod value;

use std::fmt;

pub use suggest::closest;
pub use text::sid_to_string;
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
    root: ast::Node,
    attributes: Vec<String>,
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

impl ParseError {
    /// The message with the expression and a caret under the position, e.g.
    ///
    /// ```text
    /// error at line 1, column 6: unknown function `Jion` (did you mean Join?)
    ///   IIF(Jion(",", [a]), …
    ///       ^
    /// ```
    pub fn render(&self, expression: &str) -> String {
        render(&self.message, self.offset, expression)
    }
}

impl EvalError {
    /// The message with the expression and a caret under the position.
    pub fn render(&self, expression: &str) -> String {
        render(&self.message, self.offset, expression)
    }
}

fn render(message: &str, offset: usize, expression: &str) -> String {
    let mut offset = offset.min(expression.len());
    while !expression.is_char_boundary(offset) {
        offset -= 1;
    }
    let line_start = expression[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = expression[offset..]
        .find('\n')
        .map_or(expression.len(), |i| offset + i);
    let line_no = expression[..offset].matches('\n').count() + 1;
    let line = &expression[line_start..line_end];
    let column = expression[line_start..offset].chars().count();
    // Tabs keep their width so the caret lines up.
    let pad: String = expression[line_start..offset]
        .chars()
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    format!(
        "error at line {line_no}, column {}: {message}\n  {line}\n  {pad}^",
        column + 1
    )
}

impl Expr {
    /// Parse an expression.
    pub fn parse(text: &str) -> Result<Expr, ParseError> {
        let root = parse::parse(text)?;
        let mut attributes: Vec<String> = Vec::new();
        root.walk(&mut |n| {
            if let ast::NodeKind::Attr(name) = &n.kind
                && !attributes.iter().any(|a| a.eq_ignore_ascii_case(name))
            {
                attributes.push(name.clone());
            }
        });
        Ok(Expr {
            source: text.to_string(),
            root,
            attributes,
        })
    }

    /// Evaluate against a source.
    pub fn eval(&self, source: &dyn Source, ctx: &EvalContext) -> Result<Outcome, EvalError> {
        match eval::Evaluator::new(source, ctx).eval(&self.root) {
            Ok(v) => Ok(Outcome::Value(v)),
            Err(eval::Stop::IgnoreFlow) => Ok(Outcome::IgnoreFlow),
            Err(eval::Stop::AuthoritativeNull) => Ok(Outcome::AuthoritativeNull),
            Err(eval::Stop::Error(e)) => Err(e),
        }
    }

    /// The source attributes the expression references (`[Name]`), in order of first use.
    pub fn attributes(&self) -> Vec<String> {
        self.attributes.clone()
    }

    /// The expression's text as written.
    pub fn text(&self) -> &str {
        &self.source
    }

    /// Whether two expressions have the same structure (ignoring spacing, letter case of
    /// names, and how they were written).
    pub fn same_structure(&self, other: &Expr) -> bool {
        self.root == other.root
    }
}

/// The expression in canonical form (valid syntax that parses to the same structure).
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.root)
    }
}

/// The names of the functions the language supports, in alphabetical order.
pub fn function_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = functions::ALL.iter().map(|f| f.name()).collect();
    names.sort_unstable_by_key(|n| n.to_ascii_lowercase());
    names
}
