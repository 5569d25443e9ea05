use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use exo_writeback_testlab::LabDc;

/// Runs a command and returns its stdout, failing the test with its stderr if it fails.
pub fn ok(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command that must fail and returns its stdout and stderr together.
pub fn fails(cmd: &mut Command) -> String {
    let out = output(cmd);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "{cmd:?} succeeded but should fail:\n{text}"
    );
    text
}

pub fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// ldapmodify against `dc` with `ldif` on stdin.
pub fn ldapmodify(dc: &LabDc, ldif: &str) -> Output {
    with_stdin(&mut dc.ldap_tool("ldapmodify"), ldif)
}

/// Runs `cmd` with `input` on its stdin; returns its output.
pub fn with_stdin(cmd: &mut Command, input: &str) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("the command reads its input");
    child.wait_with_output().expect("the command finishes")
}

pub fn ldapmodify_ok(dc: &LabDc, ldif: &str) {
    let out = ldapmodify(dc, ldif);
    assert!(
        out.status.success(),
        "ldapmodify failed ({}):\n{ldif}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ldapsearch -LLL -o ldif-wrap=no` against `dc`; returns the LDIF.
pub fn search(dc: &LabDc, base: &str, scope: &str, filter: &str, attrs: &[&str]) -> String {
    ok(dc
        .ldap_tool("ldapsearch")
        .args([
            "-LLL",
            "-o",
            "ldif-wrap=no",
            "-b",
            base,
            "-s",
            scope,
            filter,
        ])
        .args(attrs))
}

/// The values of `attr` in an LDIF text (attribute names compared case-insensitively).
pub fn values(ldif: &str, attr: &str) -> Vec<String> {
    ldif.lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case(attr)
                .then(|| value.trim_start_matches(':').trim().to_string())
        })
        .collect()
}

/// A name no other test (or test process) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The process exists and has not exited (a zombie waiting to be reaped counts as dead).
pub fn process_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
    !matches!(state, Some(Some('Z' | 'X')) | None)
}

/// Polls `cond` every 100 ms for up to `secs` seconds.
pub fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..secs * 10 {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    cond()
}
