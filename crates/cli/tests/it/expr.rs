//! `exo-writeback expr` end to end: the real binary, documented results, clear errors.

use std::process::{Command, Output};

const MAILBOX: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../exo/tests/fixtures/exo-real/invokecommand_get-mailbox_full-response-body_burp-vdbdx_2024-05-22.json"
);

fn expr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_exo-writeback"))
        .arg("expr")
        .args(args)
        .output()
        .expect("run exo-writeback")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(args: &[&str]) -> String {
    let o = expr(args);
    assert!(
        o.status.success(),
        "{args:?}: {:?}\n{}",
        o.status,
        stderr(&o)
    );
    stdout(&o)
}

#[test]
fn evaluates_against_attr_values() {
    // ISSUE 4's example.
    assert_eq!(
        ok(&[
            r#"Join(",", [CustomAttribute1], [CustomAttribute2])"#,
            "--attr",
            "CustomAttribute1=a",
            "--attr",
            "customattribute2=b"
        ]),
        "a,b\n"
    );
    // APP Append example.
    assert_eq!(
        ok(&[
            r#"Append([userPrincipalName], ".test")"#,
            "--attr",
            "userPrincipalName=John.Doe@contoso.com"
        ]),
        "John.Doe@contoso.com.test\n"
    );
    // A value may itself contain `=`.
    assert_eq!(ok(&["[a]", "--attr", "a=x=y"]), "x=y\n");
}

#[test]
fn repeated_attr_builds_a_multi_valued_attribute() {
    let args = [
        "--attr",
        "proxyAddresses=smtp:b@contoso.com",
        "--attr",
        "proxyAddresses=SMTP:a@contoso.com",
    ];
    let with = |e: &'static str| {
        let mut v = vec![e];
        v.extend_from_slice(&args);
        ok(&v)
    };
    assert_eq!(with("Count([proxyAddresses])"), "2\n");
    // CS Item example.
    assert_eq!(
        with(r#"Mid(Item([proxyAddresses],Contains([proxyAddresses], "SMTP:")),6)"#),
        "a@contoso.com\n"
    );
    // A multi-valued result prints one value per line.
    assert_eq!(
        with("ToUpper([proxyAddresses])"),
        "SMTP:B@CONTOSO.COM\nSMTP:A@CONTOSO.COM\n"
    );
    // NAME alone: known, without a value.
    assert_eq!(
        ok(&[
            "Coalesce([mail], [upn])",
            "--attr",
            "mail",
            "--attr",
            "upn=u@x"
        ]),
        "u@x\n"
    );
}

#[test]
fn mailbox_json_properties_are_the_source() {
    // The real Get-Mailbox capture: value[0] holds the mailbox.
    let run = |e: &str| ok(&[e, "--mailbox", MAILBOX]);
    assert_eq!(
        run(r#"IIF(IsNullOrEmpty([LegacyExchangeDN]), NULL, "x500:" & [LegacyExchangeDN])"#),
        "x500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=f9dfe54853d548349d2f1e4d919246b7-CBergin\n"
    );
    assert_eq!(
        run(r#"Mid(Item([EmailAddresses],Contains([EmailAddresses], "SMTP:")),6)"#),
        "C@lvin.ie\n"
    );
    assert_eq!(run("Count([EmailAddresses])"), "5\n");
    assert_eq!(
        run(r#"Switch([ArchiveStatus], IgnoreThisFlow, "None", "0", "Active", "1")"#),
        "0\n"
    );
    assert_eq!(run("IsNullOrEmpty([CustomAttribute1])"), "True\n");
    assert_eq!(
        run(r#"FormatDateTime(CDate([WhenCreatedUTC]), , "", "yyyy-MM-dd")"#),
        "2022-06-29\n"
    );
    // --attr overrides a mailbox property.
    assert_eq!(
        ok(&[
            "[ArchiveStatus]",
            "--mailbox",
            MAILBOX,
            "--attr",
            "ArchiveStatus=Active"
        ]),
        "Active\n"
    );
    // Annotations such as `WhenChanged@data.type` are not properties.
    let o = expr(&["[WhenChanged@data.type]", "--mailbox", MAILBOX]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unknown attribute [WhenChanged@data.type]"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn json_output_says_the_outcome_and_type() {
    let json = |args: &[&str]| -> serde_json::Value {
        let mut v = args.to_vec();
        v.push("--json");
        serde_json::from_str(&ok(&v)).expect("JSON output")
    };
    assert_eq!(
        json(&[
            r#"Split([extensionAttribute5], ",")"#,
            "--attr",
            "extensionAttribute5=PermissionSetOne, PermissionSetTwo"
        ]),
        serde_json::json!({"outcome": "value", "type": "multi-valued", "value": ["PermissionSetOne", "PermissionSetTwo"]})
    );
    assert_eq!(
        json(&["BitAnd(&HF, &HF7)"]),
        serde_json::json!({"outcome": "value", "type": "integer", "value": 7})
    );
    assert_eq!(
        json(&[
            "IgnoreFlowIfNullOrEmpty([department])",
            "--attr",
            "department="
        ]),
        serde_json::json!({"outcome": "ignore_flow"})
    );
    assert_eq!(
        json(&["AuthoritativeNull"]),
        serde_json::json!({"outcome": "authoritative_null"})
    );
    // A date-time is shown as Microsoft's service renders it (CDate, DateAdd, DateFromNum,
    // Now: "M/d/yyyy h:mm:ss tt", UTC), in JSON too.
    let cases: [(&[&str], &str); 5] = [
        (
            &[r#"CDate("2009-06-15T01:45:30-07:00")"#],
            "6/15/2009 8:45:30 AM",
        ),
        (
            &[
                r#"DateAdd("d", 7, CDate([StatusHireDate]))"#,
                "--attr",
                "StatusHireDate=2012-03-16-07:00",
            ],
            "3/23/2012 7:00:00 AM",
        ),
        (&["DateFromNum(129699324000000000)"], "1/1/2012 11:00:00 PM"),
        (
            &["Now()", "--now", "2021-07-02T15:33:38Z"],
            "7/2/2021 3:33:38 PM",
        ),
        (&[r#"CDate("2021-06-30+08:00")"#], "6/29/2021 4:00:00 PM"),
    ];
    for (args, shown) in cases {
        assert_eq!(
            json(args),
            serde_json::json!({"outcome": "value", "type": "date-time", "value": shown}),
            "{args:?}"
        );
    }
}

#[test]
fn a_missing_attribute_is_null_as_microsofts_reference_documents() {
    // "For an attribute, a Null is expressed by the absence of the attribute" (APP IsNull):
    // a Get-Mailbox property that is not given is absent, so null.
    let cases: [(&str, &str); 8] = [
        ("IsNull([displayName])", "True\n"),
        ("IsNullOrEmpty([displayName])", "True\n"),
        ("IsPresent([CustomAttribute1])", "False\n"),
        (r#"Left([displayName], 3)"#, "\n"),
        (r#"Word([displayName], 1, " ")"#, "\n"),
        (r#"Coalesce([CustomAttribute2], "fallback")"#, "fallback\n"),
        (r#"Join(",", [CustomAttribute1], "b")"#, "b\n"),
        (
            r#"Switch([CustomAttribute3], [CustomAttribute3], "", "Other")"#,
            "Other\n",
        ),
    ];
    for (e, want) in cases {
        assert_eq!(ok(&[e]), want, "{e}");
    }
    // A property the given Get-Mailbox record lacks is absent too (records may be narrowed).
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("narrowed.json");
    std::fs::write(&path, r#"{"PrimarySmtpAddress":"a@contoso.com"}"#).expect("write");
    let path = path.display().to_string();
    assert_eq!(ok(&["IsNull([DisplayName])", "--mailbox", &path]), "True\n");
    // A name that is no mailbox property is still refused: a typo must not read as null.
    let o = expr(&["IsNull([displyName])"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unknown attribute [displyName]"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn plain_output_of_outcomes_and_dates() {
    assert_eq!(
        ok(&["IgnoreThisFlow"]),
        "IgnoreThisFlow (the target attribute is left unchanged)\n"
    );
    // APP CDate example 3.
    assert_eq!(
        ok(&[r#"CDate("2009-06-15T01:45:30-07:00")"#]),
        "6/15/2009 8:45:30 AM\n"
    );
    // APP Now example, with the time given.
    assert_eq!(
        ok(&["Now()", "--now", "2021-07-02T15:33:38Z"]),
        "7/2/2021 3:33:38 PM\n"
    );
    // The same seed gives the same GUID; another seed another one.
    let a = ok(&["Guid()", "--seed", "7"]);
    assert_eq!(a, ok(&["Guid()", "--seed", "7"]));
    assert_ne!(a, ok(&["Guid()", "--seed", "8"]));
    assert_eq!(a.trim().len(), 36, "{a}");
}

#[test]
fn parse_error_exits_1_with_a_caret() {
    let o = expr(&[r#"Jion(",", [a])"#, "--attr", "a=x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert_eq!(
        stderr(&o),
        "error at line 1, column 1: unknown function `Jion` (did you mean Join?)\n  Jion(\",\", [a])\n  ^\n"
    );
    let o = expr(&["SelectUniqueValue([a], [b])"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not supported in writeback mappings"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn evaluation_error_exits_1_with_a_caret_and_a_hint() {
    let o = expr(&[r#"Left([a], "three")"#, "--attr", "a=abc"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error at line 1, column 11: Left: argument 2 must be a whole number, got the string \"three\"\n  Left([a], \"three\")\n            ^\n"
    );
    let o = expr(&["Trim([Department])"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("unknown attribute [Department]"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains(
            "hint: it is not a Get-Mailbox property the agent reads; give it with --attr NAME=VALUE"
        ),
        "{}",
        stderr(&o)
    );
    // CS Error example.
    let o = expr(&[
        r#"IIF(IsPresent([accountName]),[accountName],Error("AccountName is required"))"#,
        "--attr",
        "accountName",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("AccountName is required"),
        "{}",
        stderr(&o)
    );
    // With --json the error is also on stdout, as JSON.
    let o = expr(&["Trim(", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON error");
    assert_eq!(j["outcome"], "error");
    assert_eq!(j["stage"], "parse");
    assert_eq!(j["offset"], 5);
}

#[test]
fn bad_arguments_exit_2() {
    let o = expr(&["[a]", "--mailbox", "/nonexistent/mailbox.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot read --mailbox /nonexistent/mailbox.json"),
        "{}",
        stderr(&o)
    );
    let o = expr(&["[a]", "--attr", "=x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("expected NAME=VALUE"), "{}", stderr(&o));
    let o = expr(&["Now()", "--now", "yesterday"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("not an RFC 3339 timestamp"),
        "{}",
        stderr(&o)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.json");
    std::fs::write(&path, "[1, 2]").expect("write");
    let o = expr(&["[a]", "--mailbox", path.to_str().expect("utf-8 path")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("expected a JSON object"),
        "{}",
        stderr(&o)
    );
}
