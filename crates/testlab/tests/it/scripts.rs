//! lab/up and lab/down refuse what they must refuse, and are idempotent.

use std::process::Command;

use exo_writeback_testlab::LabDc;

use crate::support::{fails, ok};

fn lab(script: &str) -> Command {
    Command::new(LabDc::repo_root().join("lab").join(script))
}

#[test]
fn down_refuses_a_directory_without_the_lab_marker() {
    let dir = tempfile::tempdir().expect("temp dir");
    let precious = dir.path().join("precious.txt");
    std::fs::write(&precious, "keep me").expect("write");
    let err = fails(lab("down").arg(dir.path()));
    assert!(err.contains("not a lab directory"), "{err}");
    assert!(
        precious.exists(),
        "lab/down removed a directory that is not a lab"
    );
}

#[test]
fn down_of_a_missing_directory_succeeds() {
    let dir = tempfile::tempdir().expect("temp dir");
    ok(lab("down").arg(dir.path().join("never-created")));
}

#[test]
fn up_rejects_bad_arguments_without_touching_anything() {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("dc");
    let cases: &[(&[&str], &str)] = &[
        (&["10.0.0.1"], "loopback address 127.x.y.z"),
        (&["127.0.0.300"], "invalid address"),
        (&["127.0.0.53"], "reserved"),
        (&["localhost"], "loopback address 127.x.y.z"),
        (
            &["--users", "many", "127.1.2.3"],
            "--users expects a number",
        ),
        (
            &["--max-runtime", "0", "127.1.2.3"],
            "--max-runtime expects seconds",
        ),
        (&["--bogus", "127.1.2.3"], "unknown option '--bogus'"),
    ];
    for (args, expected) in cases {
        let (last, options) = args.split_last().expect("an address");
        let err = fails(lab("up").args(options).arg(&target).arg(last));
        assert!(
            err.contains(expected),
            "lab/up {args:?}: expected `{expected}` in:\n{err}"
        );
        assert!(
            !target.exists(),
            "lab/up {args:?} created {}",
            target.display()
        );
    }
}

#[test]
fn up_refuses_a_non_empty_directory_that_is_not_a_lab() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("data"), "x").expect("write");
    let err = fails(lab("up").arg(dir.path()).arg("127.1.2.3"));
    assert!(err.contains("not a lab directory"), "{err}");
    assert!(dir.path().join("data").exists());
}

#[test]
fn up_on_a_running_dc_is_a_no_op() {
    let dc = LabDc::shared();
    let err = ok(lab("up").arg(&dc.dir).arg(&dc.addr));
    let _ = err;
    let pid = std::fs::read_to_string(dc.dir.join("samba.pid")).expect("samba.pid");
    assert_eq!(pid.trim(), dc.pid.to_string(), "the same samba still runs");
    // The same directory on another address is an error, not a second DC.
    let err = fails(lab("up").arg(&dc.dir).arg("127.1.2.3"));
    assert!(err.contains("already runs a DC"), "{err}");
}
