//! Edge cases: null and multi-valued inputs, Unicode, empty strings, outcomes, determinism.

use exo_writeback_expr::{EvalContext, Expr, Outcome, Value};

use crate::Expect::*;
use crate::{attrs, check, list, s};

#[test]
fn edge_cases() {
    let null = |name: &'static str| attrs(&[(name, Value::Null)]);
    let one = |name: &'static str, v: Value| attrs(&[(name, v)]);
    let cases: Vec<(&str, crate::Attrs, crate::Expect)> = vec![
        // Null inputs.
        ("Append([a], \"x\")", null("a"), Null),
        ("Left([a], 3)", null("a"), Text("")),
        ("Word([a], 1, \" \")", null("a"), Text("")),
        ("Mid([a], 1, 2)", null("a"), Null),
        ("ToUpper([a])", null("a"), Null),
        ("Join(\",\", [a], \"b\")", null("a"), Text("b")),
        ("[a] & \"x\"", null("a"), Text("x")),
        ("[a] & [a]", null("a"), Null),
        ("Count([a])", null("a"), Int(0)),
        ("Coalesce([a], NULL)", null("a"), Null),
        (
            "IIF([a] = \"\", \"empty\", \"set\")",
            null("a"),
            Text("empty"),
        ),
        ("IIF([a] > 3, \"big\", \"small\")", null("a"), Text("small")),
        ("CBool([a])", null("a"), Bool(false)),
        ("Not([a])", null("a"), Bool(true)),
        ("InStr([a], \"x\")", null("a"), Int(0)),
        ("DateDiff(\"d\", [a], Now())", null("a"), Null),
        ("Split([a], \",\")", null("a"), Null),
        (
            "Switch([a], \"default\", \"\", \"was empty\")",
            null("a"),
            Text("was empty"),
        ),
        ("Replace([a], \"x\", , , \"y\", , )", null("a"), Null),
        ("IsString([a])", null("a"), Bool(false)),
        // Multi-valued inputs: transforms apply to each value.
        (
            "ToLower([p])",
            one("p", list(&["SMTP:A@X", "smtp:B@X"])),
            List(&["smtp:a@x", "smtp:b@x"]),
        ),
        (
            "Replace([p], \"smtp:\", , , \"SMTP:\", , )",
            one("p", list(&["smtp:a", "x500:b"])),
            List(&["SMTP:a", "x500:b"]),
        ),
        (
            "Join(\";\", [p], \"c\")",
            one("p", list(&["a", "b"])),
            Text("a;b;c"),
        ),
        ("Count([p])", one("p", list(&["a", "b"])), Int(2)),
        ("Item([p], 2)", one("p", list(&["a", "b"])), Text("b")),
        (
            "Contains([p], \"SMTP:\")",
            one("p", list(&["smtp:a", "SMTP:b"])),
            Int(2),
        ),
        (
            "Contains([p], \"SMTP:\", IgnoreCase)",
            one("p", list(&["smtp:a", "SMTP:b"])),
            Int(1),
        ),
        (
            "Contains([p], \"x400:\")",
            one("p", list(&["smtp:a"])),
            Int(0),
        ),
        ("IsNull([p])", one("p", Value::List(vec![])), Bool(true)),
        (
            "RemoveDuplicates(Split(\"a,b,a\", \",\"))",
            none_attrs(),
            List(&["a", "b"]),
        ),
        (
            "[p] & \"x\"",
            one("p", list(&["a", "b"])),
            Error("multi-valued"),
        ),
        (
            "IIF([p] = \"a\", 1, 2)",
            one("p", list(&["a", "b"])),
            Error("multi-valued"),
        ),
        (
            "Item([p], 3)",
            one("p", list(&["a", "b"])),
            Error("out of range"),
        ),
        (
            "Item([p], 0)",
            one("p", list(&["a", "b"])),
            Error("counts from 1"),
        ),
        // Unicode: characters, not bytes.
        ("Left(\"Zoë Ünal\", 3)", none_attrs(), Text("Zoë")),
        ("Mid(\"日本語テキスト\", 3, 2)", none_attrs(), Text("語テ")),
        ("InStr(\"ÆØÅ-abc\", \"a\")", none_attrs(), Int(5)),
        ("ToUpper(\"straße\")", none_attrs(), Text("STRAßE")),
        ("ToLower(\"ÀÉÎ\", \"fr-FR\")", none_attrs(), Text("àéî")),
        (
            "PCase(\"élodie o'brien\")",
            none_attrs(),
            Text("Élodie O'Brien"),
        ),
        (
            "NormalizeDiacritics(\"Łukasz Żółć, Jérôme\")",
            none_attrs(),
            Text("Lukasz Zolc, Jerome"),
        ),
        (
            "NormalizeDiacritics(\"Zoe\u{308}\")",
            none_attrs(),
            Text("Zoe"),
        ),
        ("ConvertToUTF8Hex(\"é\")", none_attrs(), Text("C3A9")),
        (
            "ConvertFromBase64(ConvertToBase64(\"Zoë 日本\"))",
            none_attrs(),
            Text("Zoë 日本"),
        ),
        ("StripSpaces(\" a b  c \")", none_attrs(), Text("abc")),
        // Empty strings.
        ("Left(\"\", 3)", none_attrs(), Text("")),
        ("Left(\"abc\", -1)", none_attrs(), Text("abc")),
        ("Left(\"abc\", 0)", none_attrs(), Text("")),
        ("Mid(\"abc\", 5, 2)", none_attrs(), Text("")),
        ("Mid(\"abcdef\", 3)", none_attrs(), Text("cdef")),
        ("Word(\"a  b\", 2, \" \")", none_attrs(), Text("b")),
        ("Word(\"a b\", 0, \" \")", none_attrs(), Text("")),
        ("Word(\"a b\", 5, \" \")", none_attrs(), Text("")),
        ("Join(\",\", \"\", \"\")", none_attrs(), Text("")),
        ("IsPresent(\"\")", none_attrs(), Bool(false)),
        ("IsPresent(\" \")", none_attrs(), Bool(true)),
        ("InStr(\"abc\", \"\")", none_attrs(), Int(1)),
        ("Split(\"a,,b,\", \",\")", none_attrs(), List(&["a", "b"])),
        // Coercions and comparisons.
        ("CStr(42)", none_attrs(), Text("42")),
        ("CStr(1 = 1)", none_attrs(), Text("True")),
        ("\"n=\" & 5", none_attrs(), Text("n=5")),
        (
            "IIF(\"10\" > 9, \"numeric\", \"text\")",
            none_attrs(),
            Text("numeric"),
        ),
        (
            "IIF(\"b\" > \"a\", \"yes\", \"no\")",
            none_attrs(),
            Text("yes"),
        ),
        (
            "IIF(\"A\" = \"a\", \"same\", \"different\")",
            none_attrs(),
            Text("different"),
        ),
        (
            "IIF(CDate(\"2021-01-01\") < Now(), \"past\", \"future\")",
            none_attrs(),
            Text("past"),
        ),
        ("IIF(\"true\", 1, 2)", none_attrs(), Int(1)),
        ("IIF(IsPresent([a]) = False, 1, 2)", null("a"), Int(1)),
        ("BitAnd([uac], 2)", one("uac", Value::Int(514)), Int(2)),
        ("BitAnd(\"512\", &H2)", none_attrs(), Int(0)),
        ("Not(\"True\")", none_attrs(), Bool(false)),
        ("Not(\"False\")", none_attrs(), Bool(true)),
        (
            "Not([enabled])",
            one("enabled", Value::Bool(true)),
            Bool(false),
        ),
        (
            "CDate(\"8/25/2021 5:41:18 PM\")",
            none_attrs(),
            DateTime("8/25/2021 5:41:18 PM"),
        ),
        (
            "CDate(\"2022-09-21T08:07:47.0000000+00:00\")",
            none_attrs(),
            DateTime("9/21/2022 8:07:47 AM"),
        ),
        (
            "DateAdd(\"m\", 1, CDate(\"2024-01-31\"))",
            none_attrs(),
            DateTime("2/29/2024 12:00:00 AM"),
        ),
        (
            "NumFromDate(\"1601-01-01T00:00:00Z\")",
            none_attrs(),
            Int(0),
        ),
        (
            "NumFromDate(DateFromNum(132539615990000000))",
            none_attrs(),
            Int(132_539_615_990_000_000),
        ),
        (
            "FormatDateTime(Now(), , \"\", \"yyyy-MM-ddTHH:mm:ssK\")",
            none_attrs(),
            Text("2021-08-25T17:41:18Z"),
        ),
        (
            "FormatDateTime(\"2020-12-31-08:00\", \"AdjustToUniversal\", \"yyyy-MM-ddzzz\", \"yyyy-MM-dd HH:mm zzz\")",
            none_attrs(),
            Text("2020-12-31 08:00 +00:00"),
        ),
        (
            "FormatDateTime(\"Thursday, 31 December 2020\", \"dddd, d MMMM yyyy\", \"MMM dd yy\")",
            none_attrs(),
            Text("Dec 31 20"),
        ),
        (
            "DNComponent(\"cn=Doe\\\\, John,ou=Sales,dc=contoso,dc=com\", 1)",
            none_attrs(),
            Text("Doe, John"),
        ),
        ("DNComponent(\"cn=Joe,dc=contoso\", 3)", none_attrs(), Null),
        (
            "StringFromSid([sid])",
            one("sid", Value::Bytes(sid_bytes())),
            Text("S-1-5-21-1-2-3-500"),
        ),
        (
            "ConvertToBase64([sid])",
            one("sid", Value::Bytes(vec![1, 2, 3])),
            Text("AQID"),
        ),
        (
            "Replace(\"a.b.c\", , \"(\\\\w)\\\\.\", , \"$1-\", , )",
            none_attrs(),
            Text("a-b-c"),
        ),
        (
            "Replace(\"cost 5\", , \"\\\\d\", , \"$$\", , )",
            none_attrs(),
            Text("cost $"),
        ),
        // Outcomes.
        ("IgnoreThisFlow", none_attrs(), IgnoreFlow),
        ("AuthoritativeNull", none_attrs(), AuthoritativeNull),
        (
            "IIF(IsPresent([a]), [a], AuthoritativeNull)",
            null("a"),
            AuthoritativeNull,
        ),
        (
            "IIF(True, \"kept\", IgnoreThisFlow)",
            none_attrs(),
            Text("kept"),
        ),
        (
            "IIF(True, \"kept\", Error(\"not raised\"))",
            none_attrs(),
            Text("kept"),
        ),
        (
            "Coalesce(\"first\", Error(\"not raised\"))",
            none_attrs(),
            Text("first"),
        ),
    ];
    for (expr, source, expect) in &cases {
        check(expr, source, expect, "edge case");
    }
}

fn none_attrs() -> crate::Attrs {
    attrs(&[])
}

fn sid_bytes() -> Vec<u8> {
    let mut b = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
    for sub in [21u32, 1, 2, 3, 500] {
        b.extend_from_slice(&sub.to_le_bytes());
    }
    b
}

/// The hybrid profile's transforms, as the core's default mapping table writes them.
#[test]
fn hybrid_profile_expressions() {
    let ext = r#"IIF(IsNullOrEmpty([ExternalDirectoryObjectId]), IgnoreThisFlow, "User_" & [ExternalDirectoryObjectId])"#;
    check(
        ext,
        &attrs(&[(
            "ExternalDirectoryObjectId",
            s("9feb45ad-0cc9-43dc-a609-2110e2216c15"),
        )]),
        &Text("User_9feb45ad-0cc9-43dc-a609-2110e2216c15"),
        "hybrid msDS-ExternalDirectoryObjectId",
    );
    check(
        ext,
        &attrs(&[("ExternalDirectoryObjectId", Value::Null)]),
        &IgnoreFlow,
        "hybrid msDS-ExternalDirectoryObjectId, none",
    );
    let archive = r#"Switch([ArchiveStatus], IgnoreThisFlow, "None", "0", "Active", "1")"#;
    check(
        archive,
        &attrs(&[("ArchiveStatus", s("Active"))]),
        &Text("1"),
        "hybrid msExchArchiveStatus",
    );
    check(
        archive,
        &attrs(&[("ArchiveStatus", s("None"))]),
        &Text("0"),
        "hybrid msExchArchiveStatus",
    );
    check(
        archive,
        &attrs(&[("ArchiveStatus", s("HostedPending"))]),
        &IgnoreFlow,
        "hybrid msExchArchiveStatus, other",
    );
}

#[test]
fn guid_and_random_string_depend_only_on_the_seed() {
    let eval = |text: &str, seed: u64| {
        let e = Expr::parse(text).expect("parses");
        let ctx = EvalContext {
            seed,
            ..crate::ctx()
        };
        match e.eval(&attrs(&[]), &ctx) {
            Ok(Outcome::Value(Value::Str(s))) => s,
            other => panic!("{text}: {other:?}"),
        }
    };
    let g1 = eval("Guid()", 1);
    assert_eq!(g1, eval("Guid()", 1));
    assert_ne!(g1, eval("Guid()", 2));
    let parsed = uuid::Uuid::parse_str(&g1).expect("a GUID");
    assert_eq!(parsed.get_version_num(), 4, "{g1}");
    assert_eq!(g1, g1.to_lowercase());
    // Two calls in one evaluation differ.
    let two = eval("Guid() & \" \" & Guid()", 7);
    let (a, b) = two.split_once(' ').expect("two GUIDs");
    assert_ne!(a, b);

    // APP RandomString example 1: 6 characters, 3 numbers and 3 lower case letters.
    for seed in 0..50 {
        let r = eval("RandomString(6,3,0,0,3)", seed);
        assert_eq!(r.chars().count(), 6, "{r}");
        assert_eq!(r.chars().filter(char::is_ascii_digit).count(), 3, "{r}");
        assert_eq!(r.chars().filter(char::is_ascii_lowercase).count(), 3, "{r}");
    }
    // APP RandomString example 2: 10 characters, at least 2 numbers, 2 special, 2 capital,
    // 1 lower case, and never `?` or `,`.
    for seed in 0..50 {
        let r = eval(r#"RandomString(10,2,2,2,1,"?,")"#, seed);
        assert_eq!(r.chars().count(), 10, "{r}");
        assert!(r.chars().filter(char::is_ascii_digit).count() >= 2, "{r}");
        assert!(
            r.chars().filter(|c| !c.is_ascii_alphanumeric()).count() >= 2,
            "{r}"
        );
        assert!(
            r.chars().filter(char::is_ascii_uppercase).count() >= 2,
            "{r}"
        );
        assert!(
            r.chars().filter(char::is_ascii_lowercase).count() >= 1,
            "{r}"
        );
        assert!(!r.contains('?') && !r.contains(','), "{r}");
    }
    assert_eq!(
        eval("RandomString(12,1,1,1,1)", 9),
        eval("RandomString(12,1,1,1,1)", 9)
    );
}

#[test]
fn now_prints_as_microsoft_documents() {
    // APP Now: "Example value returned 7/2/2021 3:33:38 PM".
    let e = Expr::parse("Now()").expect("parses");
    let ctx = EvalContext {
        now: "2021-07-02T15:33:38Z".parse().expect("timestamp"),
        seed: 0,
    };
    let got = e.eval(&attrs(&[]), &ctx).expect("evaluates");
    let Outcome::Value(v) = got else {
        panic!("{got:?}")
    };
    assert_eq!(v.to_string(), "7/2/2021 3:33:38 PM");
    assert_eq!(
        crate::run("CStr(Now())", &attrs(&[])).expect("ok"),
        Outcome::Value(s("8/25/2021 5:41:18 PM"))
    );
}

#[test]
fn attributes_are_listed_in_order_of_first_use() {
    let e = Expr::parse(r#"IIF(IsNullOrEmpty([Mail]), [UPN], [mail] & [Alias])"#).expect("parses");
    assert_eq!(e.attributes(), vec!["Mail", "UPN", "Alias"]);
    assert_eq!(
        e.text(),
        r#"IIF(IsNullOrEmpty([Mail]), [UPN], [mail] & [Alias])"#
    );
}

#[test]
fn switch_needs_a_single_valued_source() {
    let two = attrs(&[("p", list(&["a", "b"]))]);
    check(
        r#"Switch([p], "d", "", "empty")"#,
        &two,
        &Error("Switch: argument 1 must be a single value"),
        "multi-valued source",
    );
    let one = attrs(&[("p", list(&["a"]))]);
    check(
        r#"Switch([p], "d", "a", "one")"#,
        &one,
        &Text("one"),
        "one value",
    );
}
