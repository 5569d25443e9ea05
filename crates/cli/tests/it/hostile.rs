//! Hostile and malformed input (issue 6): each case gives a clear error for that object or
//! input and writes nothing partial — the object in AD keeps every mapped attribute as it
//! was, and every other object is written. One lab DC per test, shared by the test's cases.

use exo_writeback_core::provisioning::{LogStatus, ProvisioningLogEntry};
use exo_writeback_store_sqlite::LogQuery;
use exo_writeback_store_sqlite::prelude::*;

use crate::harness::{Lab, assert_matches_cloud, cn, dn, exo_writeback, mapped, texts};

/// The latest log entry of the object at `dn`.
fn last_entry(lab: &Lab, dn: &str) -> ProvisioningLogEntry {
    lab.store()
        .query_logs(&LogQuery {
            identity: Some(dn.to_string()),
            limit: 1,
            ..LogQuery::default()
        })
        .expect("logs")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no log entry for {dn}"))
}

type Mutation = Box<dyn Fn(&mut exo_sim::SimMailbox)>;

/// Hostile mailbox values, one per lab user: (name, change, expected outcome code, words the
/// message must contain).
fn cases() -> Vec<(
    &'static str,
    Mutation,
    &'static str,
    &'static [&'static str],
)> {
    vec![
        (
            "SMTP address with invalid syntax",
            Box::new(|m| {
                m.email_addresses.push("smtp:not an address".into());
            }),
            "InvalidProxyAddresses",
            &["not an address"],
        ),
        (
            "SMTP address with two @",
            Box::new(|m| {
                m.email_addresses.push("smtp:a@@contoso.example".into());
            }),
            "InvalidProxyAddresses",
            &["a@@contoso.example"],
        ),
        (
            "no primary SMTP address",
            Box::new(|m| {
                for a in &mut m.email_addresses {
                    if a.starts_with("SMTP:") {
                        *a = a.replacen("SMTP:", "smtp:", 1);
                    }
                }
            }),
            "InvalidProxyAddresses",
            &["primary"],
        ),
        (
            "two primary SMTP addresses",
            Box::new(|m| {
                m.email_addresses
                    .push("SMTP:second-primary@contoso.example".into());
            }),
            "InvalidProxyAddresses",
            &["primar"],
        ),
        (
            "value over rangeUpper (extensionAttribute11 > 2048)",
            Box::new(|m| m.set_custom_attribute(11, &"q".repeat(2049))),
            "SchemaConstraint",
            &["extensionAttribute11"],
        ),
        (
            "control characters",
            Box::new(|m| m.set_custom_attribute(2, "bell\u{7}and\u{0}nul")),
            "SchemaConstraint",
            &["extensionAttribute2", "U+0007"],
        ),
        (
            "proxy address over rangeUpper (1123)",
            Box::new(|m| {
                m.email_addresses
                    .push(format!("smtp:{}@contoso.example", "l".repeat(1200)));
            }),
            "InvalidProxyAddresses",
            &["longer than 64"],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_mailbox_values_fail_only_their_object_and_write_nothing_partial() {
    let cases = cases();
    let n = cases.len() as u32;
    let users = n + 3;
    let lab = Lab::start(users).await;
    let before = lab.all_users().await;
    for (k, (_, change, _, _)) in cases.iter().enumerate() {
        let i = k as u32 + 1;
        lab.update(i, |m| {
            // Also a harmless change, so that a partial write would show.
            m.set_custom_attribute(1, "must-not-appear");
            change(m);
        });
    }
    let r = lab.run(&["sync", "--json"]).await;
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let report = r.json();
    let mut problems = Vec::new();
    for (k, (name, _, code, words)) in cases.iter().enumerate() {
        let i = k as u32 + 1;
        let obj = lab.user(i).await;
        if mapped(&obj) != mapped(&before[&i]) {
            problems.push(format!("{name}: {} was changed", cn(i)));
        }
        let e = last_entry(&lab, &dn(i));
        let reason = e.reason.clone();
        let text = reason
            .as_ref()
            .map(|r| format!("{}: {} ({})", r.code, r.message, r.recommended_action))
            .unwrap_or_default();
        if e.status != LogStatus::Failure
            || reason.as_ref().map(|r| r.code.as_str()) != Some(*code)
            || !words.iter().all(|w| text.contains(w))
            || reason
                .as_ref()
                .is_none_or(|r| r.recommended_action.is_empty())
        {
            problems.push(format!(
                "{name}: {:?} {text} (wanted {code} mentioning {words:?})",
                e.status
            ));
        }
    }
    assert!(problems.is_empty(), "{}\n{report}", problems.join("\n"));
    for i in n + 1..=users {
        assert_matches_cloud(i, &lab.user(i).await, &lab.mailbox(i), &before[&i]);
    }
    assert_eq!(report["counts"]["failed"], n, "{report}");
    assert_eq!(report["counts"]["written"], users - n, "{report}");
}

/// A mailbox with thousands of aliases, and a huge response body (a page of mailboxes each
/// carrying a megabyte of values): the agent neither panics nor writes part of an object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_aliases_and_a_huge_response_are_handled_whole() {
    let lab = Lab::start(6).await;
    let before = lab.all_users().await;
    lab.update(1, |m| {
        for a in 0..3000 {
            m.email_addresses
                .push(format!("smtp:{}.alias{a}@contoso.example", cn(1)));
        }
    });
    for i in 2..=4 {
        lab.update(i, |m| {
            m.set_custom_attribute(1, "must-not-appear");
            m.set_extension_custom_attribute(
                1,
                (0..400)
                    .map(|k| format!("{k}-{}", "h".repeat(2500)))
                    .collect(),
            );
        });
    }
    let r = lab.run(&["sync", "--json"]).await;
    let report = r.json();
    // Thousands of aliases: written whole. (Their duplicate-address check is chunked: one
    // OR filter over 3,000 addresses made the DC drop the connection, failing this object and
    // now and then a neighbour evaluated at the same time.)
    let one = lab.user(1).await;
    let e = last_entry(&lab, &dn(1));
    assert_eq!(e.status, LogStatus::Success, "{:?} {report}", e.reason);
    assert_eq!(texts(&one, "proxyAddresses").len(), 3002, "{report}");
    // Values over rangeUpper on a huge page: refused whole, with the attribute named.
    for i in 2..=4 {
        assert_eq!(mapped(&lab.user(i).await), mapped(&before[&i]), "{}", cn(i));
        let e = last_entry(&lab, &dn(i));
        assert_eq!(e.status, LogStatus::Failure);
        let reason = e.reason.expect("reason");
        assert!(
            reason.message.contains("msExchExtensionCustomAttribute1"),
            "{reason:?}"
        );
    }
    for i in 5..=6 {
        assert_matches_cloud(i, &lab.user(i).await, &lab.mailbox(i), &before[&i]);
    }
}

/// `provision` with identities and DN-like strings full of filter metacharacters: a clear
/// "not found" (or invalid identity) error, nothing written anywhere. (A NUL cannot reach
/// `provision`: the operating system refuses it in a command-line argument.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_with_hostile_identities_writes_nothing() {
    let lab = Lab::start(4).await;
    let before = lab.all_users().await;
    let hostile = [
        "*",
        "*)(objectClass=*",
        "mbx00001*",
        "a\\2a(b)",
        "CN=mbx00001)(cn=*,OU=Mailboxes,DC=lab,DC=example,DC=test",
        "CN=*,OU=Mailboxes\\,DC=lab",
        ")(|(cn=*)",
    ];
    for id in hostile {
        let r = lab.run(&["provision", id, "--json"]).await;
        assert_ne!(r.code, 0, "{id:?}: {}", r.stdout);
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(
            all.to_lowercase().contains("not found")
                || all.to_lowercase().contains("no mailbox")
                || all.to_lowercase().contains("invalid"),
            "{id:?}: {all}"
        );
    }
    assert_eq!(
        lab.all_users()
            .await
            .iter()
            .map(|(i, o)| (*i, mapped(o)))
            .collect::<Vec<_>>(),
        before
            .iter()
            .map(|(i, o)| (*i, mapped(o)))
            .collect::<Vec<_>>()
    );
}

/// Configuration files with wrong types: a clear error naming the file, line and column and
/// the expected type, before anything connects or any state is written (no DC needed).
#[tokio::test]
async fn configuration_files_with_wrong_types_are_refused_with_the_place_and_the_type() {
    let base = r#"[ad]
url = "ldaps://127.0.0.1"
bind_dn = "CN=svc"
password_file = "/nonexistent"

[exo]
tenant = "contoso.onmicrosoft.com"
client_id = "6a5d0c4b-2f0e-4c57-9c36-3b1e2d7f8a90"
client_secret_file = "/nonexistent"

[writeback]

[sync]
state_dir = "STATE"
"#;
    // (name, (search, replacement), words the error must contain)
    let cases: &[(&str, (&str, &str), &[&str])] = &[
        (
            "page_size as text",
            ("[exo]\n", "[exo]\npage_size = \"ten\"\n"),
            &[":7:", "expected u32"],
        ),
        (
            "interval as a number",
            ("[sync]\n", "[sync]\ninterval = 5\n"),
            &[":14:", "expected a signed duration string"],
        ),
        (
            "threshold negative",
            ("[writeback]\n", "[writeback]\nthreshold = -1\n"),
            &[":12:", "expected u32"],
        ),
        (
            "timeout as text",
            ("[ad]\n", "[ad]\ntimeout_secs = \"soon\"\n"),
            &[":2:", "expected u64"],
        ),
        (
            "url as a table",
            ("url = \"ldaps://127.0.0.1\"", "url = { host = \"dc\" }"),
            &[":2:", "expected a string"],
        ),
        (
            "not TOML at all",
            ("[ad]\n", "[ad\n"),
            &[":1:", "unclosed table"],
        ),
        (
            "NUL in a value",
            ("bind_dn = \"CN=svc\"", "bind_dn = \"CN=svc\u{0}\""),
            &[":3:", "invalid basic string"],
        ),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    for (name, (from, to), words) in cases {
        let path = dir.path().join("exo-writeback.toml");
        let text = base
            .replace("STATE", &state.display().to_string())
            .replacen(from, to, 1);
        assert_ne!(text, base.replace("STATE", &state.display().to_string()));
        std::fs::write(&path, text).expect("config");
        let r = exo_writeback(&path, &["sync"]).await;
        eprintln!("{name}: {}", r.stderr.trim());
        assert_eq!(r.code, 2, "{name}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!("{}:", path.display())),
            "{name}: the file is not named: {}",
            r.stderr
        );
        for w in *words {
            assert!(r.stderr.contains(w), "{name}: {}", r.stderr);
        }
        assert!(!state.join("state.db").exists(), "{name}: state written");
    }
}

/// One mailbox's property arrives as bytes that are not UTF-8 (a Latin-1 "ü" in a response
/// that says charset=utf-8), on every page that carries it: that mailbox alone fails — a
/// Failure entry naming it and the property, into escrow, nothing written — while every other
/// mailbox of the same page and of the other pages is written; no replacement character
/// reaches AD. Once the bytes are right again, escrow writes it although it did not change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_sent_with_invalid_utf8_fails_alone_and_every_other_mailbox_is_written() {
    const USERS: u32 = 60; // pages of 50: two pages
    const BAD: u32 = 7;
    let lab = Lab::start(USERS).await;
    let before = lab.all_users().await;
    let first = lab.run(&["sync", "--json"]).await;
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let synced = lab.all_users().await;

    lab.sim.state().advance_clock(2);
    for i in 1..=USERS {
        lab.update(i, |m| m.set_custom_attribute(3, &format!("München-{i}")));
    }
    let bad_text = format!("München-{BAD}");
    lab.sim.state().add_fault(exo_sim::FaultRule {
        endpoint: exo_sim::Endpoint::Invoke,
        kind: exo_sim::FaultKind::InvalidUtf8 {
            text: bad_text.clone(),
        },
        count: None,
        probability: None,
        skip: 0,
    });
    let r = lab.run(&["sync", "--json"]).await;
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let report = r.json();
    assert_eq!(report["counts"]["failed"], 1, "{report}");
    assert_eq!(report["counts"]["written"], USERS - 1, "{report}");

    // The provisioning log: a Failure naming the mailbox and the property.
    let store = lab.store();
    let failures = crate::harness::failure_entries(&store);
    assert_eq!(failures.len(), 1, "{failures:?}");
    let entry = &failures[0];
    assert_eq!(
        entry.source.external_directory_object_id.as_deref(),
        Some(crate::harness::edoid(BAD).as_str())
    );
    let reason = entry.reason.clone().expect("reason");
    assert_eq!(reason.code, "MalformedMailboxRecord");
    for needed in [
        format!("{}@{}", cn(BAD), crate::harness::DOMAIN).as_str(),
        "CustomAttribute3",
        "not valid UTF-8",
        "skipped",
        "nothing is written to AD",
    ] {
        assert!(
            reason.message.contains(needed),
            "{needed:?} missing in {reason:?}"
        );
    }
    assert!(!reason.recommended_action.is_empty());
    let shown = lab.run(&["logs", "--status", "failure"]).await;
    assert!(
        shown.stdout.contains("MalformedMailboxRecord") && shown.stdout.contains(&cn(BAD)),
        "{}",
        shown.stdout
    );
    let escrow = store.escrow().expect("escrow");
    assert_eq!(escrow.len(), 1, "{escrow:?}");
    assert_eq!(escrow[0].cloud_id, crate::harness::edoid(BAD));

    // AD: the bad mailbox's object untouched, every other written, no U+FFFD anywhere.
    let after = lab.all_users().await;
    assert_eq!(
        mapped(&after[&BAD]),
        mapped(&synced[&BAD]),
        "nothing written for the unreadable mailbox"
    );
    for (&i, obj) in &after {
        for (attribute, values) in obj.attributes.iter() {
            for v in values {
                if let exo_writeback_core::directory::AttrValue::Text(t) = v {
                    assert!(
                        !t.contains('\u{FFFD}') && !t.contains('\u{FDD0}'),
                        "{} {attribute}: {t:?}",
                        cn(i)
                    );
                }
            }
        }
        if i != BAD {
            assert_matches_cloud(i, obj, &lab.mailbox(i), &before[&i]);
        }
    }
    let watermark = store.watermark().expect("watermark");
    eprintln!(
        "watermark after the cycle with the unreadable mailbox: {watermark:?}; escrow: {escrow:?}"
    );

    // The bytes are right again; the mailbox did not change: escrow brings it back.
    lab.sim.state().clear_faults();
    let next = lab.run(&["sync", "--json"]).await;
    assert_eq!(next.code, 0, "{}\n{}", next.stdout, next.stderr);
    assert_eq!(
        texts(&lab.user(BAD).await, "extensionAttribute3"),
        [bad_text]
    );
    assert_eq!(lab.store().escrow_count().expect("escrow"), 0);
}
