//! Properties: printing an expression gives valid syntax that parses to the same structure,
//! and no input makes the parser or evaluator panic.

use exo_writeback_expr::{Expr, Value};
use proptest::prelude::*;

use crate::{attrs, ctx, s};

/// Functions with argument counts that parse whatever the argument expressions are.
const CALLS: &[(&str, usize, usize)] = &[
    ("Append", 2, 2),
    ("BitAnd", 2, 2),
    ("CBool", 1, 1),
    ("CDate", 1, 1),
    ("Coalesce", 1, 4),
    ("ConvertToBase64", 1, 1),
    ("ConvertToUTF8Hex", 1, 1),
    ("Count", 1, 1),
    ("CStr", 1, 1),
    ("DateAdd", 3, 3),
    ("DateDiff", 3, 3),
    ("DateFromNum", 1, 1),
    ("DNComponent", 2, 2),
    ("Error", 1, 1),
    ("Guid", 0, 0),
    ("IgnoreFlowIfNullOrEmpty", 1, 1),
    ("IIF", 3, 3),
    ("InStr", 2, 2),
    ("IsNull", 1, 1),
    ("IsNullOrEmpty", 1, 1),
    ("IsPresent", 1, 1),
    ("IsString", 1, 1),
    ("Item", 2, 2),
    ("Join", 2, 5),
    ("Left", 2, 2),
    ("Mid", 2, 3),
    ("NormalizeDiacritics", 1, 1),
    ("Not", 1, 1),
    ("Now", 0, 0),
    ("NumFromDate", 1, 1),
    ("PCase", 1, 2),
    ("RandomString", 5, 6),
    ("RemoveDuplicates", 1, 1),
    ("Split", 2, 2),
    ("StringFromSid", 1, 1),
    ("StripSpaces", 1, 1),
    ("Switch", 2, 6),
    ("ToLower", 1, 2),
    ("ToUpper", 1, 2),
    ("Trim", 1, 1),
    ("Word", 3, 3),
];

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>().prop_map(|t| {
            let escaped = t.replace('\\', "\\\\").replace('"', "\\\"");
            format!("\"{escaped}\"")
        }),
        any::<i64>().prop_map(|i| i.to_string()),
        any::<u32>().prop_map(|i| format!("&H{i:x}")),
        "[A-Za-z][A-Za-z0-9 _.-]{0,12}".prop_map(|n| format!("[{}]", n.trim())),
        prop_oneof![
            Just("NULL"),
            Just("IgnoreThisFlow"),
            Just("AuthoritativeNull"),
            Just("True"),
            Just("false"),
            Just("vbTextCompare"),
            Just("UTF8"),
        ]
        .prop_map(String::from),
    ]
}

fn expression() -> impl Strategy<Value = String> {
    leaf().prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            (0..CALLS.len(), prop::collection::vec(inner.clone(), 0..6)).prop_map(
                |(i, mut args)| {
                    let (name, min, max) = CALLS[i];
                    while args.len() < min {
                        args.push("\"x\"".to_string());
                    }
                    args.truncate(max);
                    if name == "Switch" && args.len() % 2 == 1 {
                        args.pop();
                    }
                    // Vary the case and spacing of what is written.
                    let name = if i % 3 == 0 {
                        name.to_uppercase()
                    } else {
                        name.to_string()
                    };
                    format!("{name}( {} )", args.join(" ,"))
                }
            ),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}&{b}")),
            (
                inner.clone(),
                prop::sample::select(vec!["=", "<>", ">", ">=", "<", "<="]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("(({a}){op}({b}))")),
            inner.prop_map(|a| format!("({a})")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn print_then_parse_gives_the_same_structure(text in expression()) {
        let parsed = Expr::parse(&text).map_err(|e| TestCaseError::fail(e.render(&text)))?;
        let printed = parsed.to_string();
        let reparsed = Expr::parse(&printed).map_err(|e| TestCaseError::fail(e.render(&printed)))?;
        prop_assert!(parsed.same_structure(&reparsed), "{text}\n -> {printed}");
        prop_assert_eq!(reparsed.to_string(), printed);
    }

    #[test]
    fn evaluating_generated_expressions_never_panics(text in expression()) {
        let parsed = Expr::parse(&text).map_err(|e| TestCaseError::fail(e.render(&text)))?;
        let source = attrs(&[]);
        let _ = parsed.eval(&source, &ctx());
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        if let Ok(e) = Expr::parse(&text) {
            let _ = e.eval(&attrs(&[("a", s("x"))]), &ctx());
            let _ = e.to_string();
        } else if let Err(e) = Expr::parse(&text) {
            let _ = e.render(&text);
        }
    }

    #[test]
    fn mutated_documented_expressions_never_panic(
        seed in prop::sample::select(SEEDS.to_vec()),
        cut in 0usize..200,
        insert in "[\\[\\](),&\"=<>\\\\ a-zA-Z0-9]{0,4}",
    ) {
        let mut text = seed.to_string();
        let mut at = cut.min(text.len());
        while !text.is_char_boundary(at) { at -= 1; }
        text.insert_str(at, &insert);
        match Expr::parse(&text) {
            Ok(e) => {
                let source = attrs(&[
                    ("a", s("x")), ("mail", Value::Null), ("proxyAddresses", crate::list(&["SMTP:a@b", "smtp:c@d"])),
                ]);
                if let Err(err) = e.eval(&source, &ctx()) {
                    let _ = err.render(&text);
                }
            }
            Err(err) => { let _ = err.render(&text); }
        }
    }
}

const SEEDS: &[&str] = &[
    r#"IIF(IsNullOrEmpty([LegacyExchangeDN]), NULL, "x500:" & [LegacyExchangeDN])"#,
    r#"Replace([telephoneNumber], , "\\+(?<isdCode>\\d* )(?<phoneNumber>\\d{10})", , "${phoneNumber}", , )"#,
    r#"Switch([state], "Australia/Sydney", "NSW", "Australia/Sydney","QLD", "Australia/Brisbane")"#,
    r#"FormatDateTime([extensionAttribute1], , "yyyyMMddHHmmss.fZ", "yyyy-MM-dd")"#,
    r#"Mid(Item([proxyAddresses],Contains([proxyAddresses], "SMTP:")),6)"#,
    r#"DateDiff("ww", Now(), CDate("2012-03-16-07:00"))"#,
    r#"BitAnd(&HF, &HF7)"#,
];
