//! Fuzz the expression parser (and the evaluator and printer on whatever parses): no input
//! may panic, and printing a parsed expression must give text that parses to the same
//! structure.
#![no_main]

use exo_writeback_expr::{EvalContext, Expr, Source, Value};
use libfuzzer_sys::fuzz_target;

/// Every attribute exists: `a`-names are text, `m`-names multi-valued, others null.
struct Anything;

impl Source for Anything {
    fn get(&self, name: &str) -> Option<Value> {
        Some(match name.chars().next() {
            Some('a' | 'A') => Value::Str("Zoë O'Brien, 545 Tremont".into()),
            Some('m' | 'M') => Value::List(vec![Value::Str("SMTP:a@b".into()), Value::Int(7)]),
            Some('n' | 'N') => Value::Int(129_699_324_000_000_000),
            _ => Value::Null,
        })
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Expr::parse(text) {
        Err(e) => {
            assert!(e.offset <= text.len(), "offset past the end");
            let _ = e.render(text);
        }
        Ok(expr) => {
            let printed = expr.to_string();
            let reparsed = Expr::parse(&printed)
                .unwrap_or_else(|e| panic!("printed form does not parse: {}", e.render(&printed)));
            assert!(expr.same_structure(&reparsed), "{text:?} printed as {printed:?}");
            let ctx = EvalContext {
                now: jiff::Timestamp::UNIX_EPOCH,
                seed: 1,
            };
            if let Err(e) = expr.eval(&Anything, &ctx) {
                assert!(e.offset <= text.len(), "offset past the end");
                let _ = e.render(text);
            }
        }
    }
});
