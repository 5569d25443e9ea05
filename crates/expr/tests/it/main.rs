//! Integration tests of the expression language, through its public API only.

mod documented;
mod edge;
mod errors;
mod roundtrip;

use std::collections::HashMap;

use exo_writeback_expr::{EvalContext, EvalError, Expr, Outcome, Source, Value};

/// Source attributes for a test: names are case-insensitive. `absent` names are attributes
/// the source knows but the object does not have (null, as for a mailbox property with no
/// value); any other name is unknown to the source.
#[derive(Default)]
pub struct Attrs(HashMap<String, Value>, Vec<String>);

impl Source for Attrs {
    fn get(&self, name: &str) -> Option<Value> {
        let key = name.to_ascii_lowercase();
        self.0
            .get(&key)
            .cloned()
            .or_else(|| self.1.contains(&key).then_some(Value::Null))
    }
}

pub fn attrs(pairs: &[(&str, Value)]) -> Attrs {
    Attrs(
        pairs
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect(),
        Vec::new(),
    )
}

impl Attrs {
    /// The same source, knowing `names` as attributes this object does not have.
    pub fn with_absent(mut self, names: &[&str]) -> Attrs {
        self.1.extend(names.iter().map(|n| n.to_ascii_lowercase()));
        self
    }
}

pub fn s(text: &str) -> Value {
    Value::Str(text.to_string())
}

pub fn list(items: &[&str]) -> Value {
    Value::List(items.iter().map(|i| s(i)).collect())
}

/// The fixed "now" of the tests: 8/25/2021 5:41:18 PM UTC, the `Now()` of Microsoft's
/// DateDiff examples.
pub fn ctx() -> EvalContext {
    EvalContext {
        now: "2021-08-25T17:41:18Z".parse().expect("valid timestamp"),
        seed: 42,
    }
}

pub fn run(expr: &str, source: &Attrs) -> Result<Outcome, EvalError> {
    let parsed = Expr::parse(expr).unwrap_or_else(|e| panic!("{}", e.render(expr)));
    parsed.eval(source, &ctx())
}

/// What a case expects.
#[derive(Debug)]
pub enum Expect {
    /// A string value, exactly.
    Text(&'static str),
    /// A date-time value, as displayed (`M/d/yyyy h:mm:ss tt`).
    DateTime(&'static str),
    Int(i64),
    Bool(bool),
    List(&'static [&'static str]),
    Null,
    IgnoreFlow,
    AuthoritativeNull,
    /// An evaluation error whose message contains this.
    Error(&'static str),
}

pub fn check(expr: &str, source: &Attrs, expect: &Expect, note: &str) {
    let got = run(expr, source);
    let ok = match (&got, expect) {
        (Ok(Outcome::Value(Value::Str(g))), Expect::Text(e)) => g == e,
        (Ok(Outcome::Value(v @ Value::DateTime(_))), Expect::DateTime(e)) => v.to_string() == *e,
        (Ok(Outcome::Value(Value::Int(g))), Expect::Int(e)) => g == e,
        (Ok(Outcome::Value(Value::Bool(g))), Expect::Bool(e)) => g == e,
        (Ok(Outcome::Value(Value::List(g))), Expect::List(e)) => {
            g.len() == e.len() && g.iter().zip(e.iter()).all(|(g, e)| *g == s(e))
        }
        (Ok(Outcome::Value(Value::Null)), Expect::Null) => true,
        (Ok(Outcome::IgnoreFlow), Expect::IgnoreFlow) => true,
        (Ok(Outcome::AuthoritativeNull), Expect::AuthoritativeNull) => true,
        (Err(e), Expect::Error(m)) => e.message.contains(m),
        _ => false,
    };
    assert!(
        ok,
        "{expr}\n  expected {expect:?}\n  got      {got:?}\n  ({note})"
    );
}
