//! Parse and evaluation errors: what was expected, which function, where (with a caret).

use exo_writeback_expr::Expr;

use crate::{attrs, run, s};

/// (expression, part of the message, offset)
const PARSE_ERRORS: &[(&str, &str, usize)] = &[
    ("", "the expression is empty", 0),
    ("   ", "the expression is empty", 0),
    (
        "Jion(\",\", [a])",
        "unknown function `Jion` (did you mean Join?)",
        0,
    ),
    ("Frobnicate([a])", "unknown function `Frobnicate`", 0),
    (
        "IIF([a] = 1, 2)",
        "IIF takes 3 arguments, got 2: IIF(condition, valueIfTrue, valueIfFalse)",
        0,
    ),
    ("Left(\"x\")", "Left takes 2 arguments, got 1", 0),
    ("Guid(1)", "Guid takes 0 arguments, got 1", 0),
    ("Join(\",\")", "Join takes at least 2 arguments", 0),
    (
        "Trim([a]",
        "expected `,` or `)` after argument 1 of Trim, found the end of the expression",
        8,
    ),
    (
        "Trim([a] [b])",
        "expected `,` or `)` after argument 1 of Trim, found `[`",
        9,
    ),
    ("\"abc", "unterminated string", 0),
    (
        "Append([mail, \"x\")",
        "unterminated attribute reference",
        7,
    ),
    ("[]", "empty attribute reference", 0),
    ("Append([a], )", "argument 2 of Append can't be empty", 12),
    (
        "Switch([a], \"d\", \"k\")",
        "Switch takes source, defaultValue and then key/value pairs, so an even number of arguments; got 3",
        0,
    ),
    (
        "Replace([a], , , , \"x\", , )",
        "Replace needs oldValue or regexPattern",
        0,
    ),
    (
        "Replace([a], \"o\", \"r\", , \"x\", , )",
        "Replace takes either oldValue or regexPattern, not both",
        0,
    ),
    (
        "Replace([a], , \"(unclosed\", , \"x\", , )",
        "invalid regular expression in Replace",
        15,
    ),
    (
        "Replace([a], , \"(?<=x)y\", , \"x\", , )",
        "look-around",
        15,
    ),
    (
        "SelectUniqueValue([a], [b])",
        "SelectUniqueValue is not supported in writeback mappings",
        0,
    ),
    (
        "AppRoleAssignmentsComplex([appRoleAssignments])",
        "AppRoleAssignmentsComplex is not supported in writeback mappings",
        0,
    ),
    (
        "SingleAppRoleAssignment([appRoleAssignments])",
        "SingleAppRoleAssignment is not supported in writeback mappings",
        0,
    ),
    ("IIF([a] = 1 = 2, 1, 2)", "comparisons can't be chained", 12),
    ("1.5", "decimal numbers are not supported", 0),
    ("99999999999999999999", "number out of range", 0),
    ("&H", "expected hexadecimal digits after `&H`", 2),
    ("\"a\" & ", "unexpected end of the expression", 6),
    ("Trim", "expected `(` after the function name Trim", 4),
    (
        "mail",
        "unknown name `mail`: expected a function call like mail(…), an attribute like [mail]",
        0,
    ),
    (
        "Trim([a]) Trim([b])",
        "expected the end of the expression",
        10,
    ),
    ("(\"a\"", "expected `)` to close the `(` at offset 0", 4),
    (
        "Join(\"x\", 12abc)",
        "unexpected `a` right after a number",
        12,
    ),
    (
        "Left(\"Zoë\", 1) ]",
        "expected the end of the expression",
        16,
    ),
];

#[test]
fn parse_errors_say_what_was_expected_and_where() {
    for (text, message, offset) in PARSE_ERRORS {
        let err = Expr::parse(text).expect_err(text);
        assert!(
            err.message.contains(message),
            "{text}: message {:?} lacks {message:?}",
            err.message
        );
        assert_eq!(err.offset, *offset, "{text}: {}", err.message);
    }
}

#[test]
fn the_deepest_accepted_nesting_evaluates() {
    // Nested calls and a long `&` chain just under the limit parse and evaluate on a test
    // thread's stack (2 MiB); one more level is refused.
    let nested = |n: usize| format!("{}\"x\"{}", "Trim(".repeat(n), ")".repeat(n));
    let e = Expr::parse(&nested(99)).expect("99 levels parse");
    assert_eq!(
        e.eval(&attrs(&[]), &crate::ctx()).expect("evaluates"),
        exo_writeback_expr::Outcome::Value(s("x"))
    );
    assert!(Expr::parse(&nested(101)).is_err());
    let chain = |n: usize| vec!["\"a\""; n].join(" & ");
    let e = Expr::parse(&chain(100)).expect("100 operands parse");
    assert_eq!(
        e.eval(&attrs(&[]), &crate::ctx()).expect("evaluates"),
        exo_writeback_expr::Outcome::Value(s(&"a".repeat(100)))
    );
    let err = Expr::parse(&chain(102)).expect_err("too long");
    assert!(
        err.message.contains("count each `&` as a level"),
        "{}",
        err.message
    );
    // Nesting and chains together count as one depth.
    let mixed = format!(
        "{}{}{}",
        "Trim(\"a\" & ".repeat(60),
        "\"b\"",
        ")".repeat(60)
    );
    assert!(Expr::parse(&mixed).is_err());
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let text = format!("{}\"x\"{}", "Trim(".repeat(5000), ")".repeat(5000));
    let err = Expr::parse(&text).expect_err("too deep");
    assert!(err.message.contains("nested more than"), "{}", err.message);
}

#[test]
fn errors_render_with_a_caret_under_the_position() {
    let text = "IIF(IsPresent([a]), Jion(\",\", [a]), \"x\")";
    let err = Expr::parse(text).expect_err("unknown function");
    assert_eq!(
        err.render(text),
        "error at line 1, column 21: unknown function `Jion` (did you mean Join?)\n  IIF(IsPresent([a]), Jion(\",\", [a]), \"x\")\n                      ^"
    );
    // Columns count characters, not bytes; the line shown is the one with the error.
    let text = "Join(\"é\",\n  Frob([a]))";
    let err = Expr::parse(text).expect_err("unknown function");
    assert_eq!(
        err.render(text),
        "error at line 2, column 3: unknown function `Frob`\n    Frob([a]))\n    ^"
    );
}

/// (expression, attributes, part of the message, offset)
#[test]
fn evaluation_errors_name_the_function_and_position() {
    let cases: Vec<(&str, crate::Attrs, &str, usize)> = vec![
        (
            "Left([a], \"three\")",
            attrs(&[("a", s("abc"))]),
            "Left: argument 2 must be a whole number, got the string \"three\"",
            10,
        ),
        (
            "Trim([missing])",
            attrs(&[]),
            "unknown attribute [missing]",
            5,
        ),
        (
            "DateAdd(\"fortnight\", 1, Now())",
            attrs(&[]),
            "DateAdd: unknown interval \"fortnight\": expected one of yyyy",
            8,
        ),
        (
            "CDate(\"yesterday\")",
            attrs(&[]),
            "CDate: \"yesterday\" is not a date-time",
            6,
        ),
        (
            "FormatDateTime(\"2021-13-01\", \"yyyy-MM-dd\", \"yyyy\")",
            attrs(&[]),
            "FormatDateTime: \"2021-13-01\" does not match the format \"yyyy-MM-dd\"",
            15,
        ),
        (
            "FormatDateTime(\"2021-01-01\", \"Sideways\", \"yyyy-MM-dd\", \"yyyy\")",
            attrs(&[]),
            "unknown dateTimeStyles value \"Sideways\"",
            29,
        ),
        (
            "ConvertFromBase64(\"not base64!\")",
            attrs(&[]),
            "ConvertFromBase64: \"not base64!\" is not valid base64",
            18,
        ),
        (
            "ConvertFromBase64(\"SGVsbG8gd29ybGQh\", Klingon)",
            attrs(&[]),
            "unknown name `Klingon`",
            38,
        ),
        (
            "InStr(\"abc\", \"b\", 1, UTF8)",
            attrs(&[]),
            "InStr: expected one of vbBinaryCompare, vbTextCompare",
            21,
        ),
        (
            "IIF([a], 1, 2)",
            attrs(&[("a", s("maybe"))]),
            "IIF: argument 1 must be a condition that is true or false, got the string \"maybe\"",
            4,
        ),
        (
            "Error(\"Department is required\")",
            attrs(&[]),
            "the expression raised an error: Department is required",
            0,
        ),
        (
            "DateFromNum(9223372036854775807)",
            attrs(&[]),
            "outside the supported date range",
            12,
        ),
        (
            "RandomString(3, 2, 2, 0, 0)",
            attrs(&[]),
            "less than the sum of the minimums",
            13,
        ),
        (
            "RandomString(4, 2, 0, 0, 0, \"0123456789\")",
            attrs(&[]),
            "excludes every one of the numbers",
            28,
        ),
        (
            "Replace([a], , [pattern], , \"x\", , )",
            attrs(&[("a", s("abc")), ("pattern", s("(("))]),
            "Replace: invalid regular expression",
            15,
        ),
        (
            "Replace([a], , \"(?<x>b)\", \"y\", \"z\", , )",
            attrs(&[("a", s("abc"))]),
            "no group named \"y\"",
            26,
        ),
        (
            "ToLower([a], \"not a culture!\")",
            attrs(&[("a", s("A"))]),
            "is not a culture name",
            13,
        ),
        (
            "CStr([b])",
            attrs(&[("b", exo_writeback_expr::Value::Bytes(vec![1]))]),
            "CStr: argument 1 must be text, got a binary value (use ConvertToBase64",
            5,
        ),
    ];
    for (text, source, message, offset) in &cases {
        match Expr::parse(text) {
            Err(e) => {
                assert!(
                    e.message.contains(message),
                    "{text}: parse error {:?} lacks {message:?}",
                    e.message
                );
                assert_eq!(e.offset, *offset, "{text}");
            }
            Ok(_) => {
                let err = run(text, source).expect_err(text);
                assert!(
                    err.message.contains(message),
                    "{text}: {:?} lacks {message:?}",
                    err.message
                );
                assert_eq!(err.offset, *offset, "{text}: {}", err.message);
                assert!(err.render(text).contains('^'));
            }
        }
    }
}
