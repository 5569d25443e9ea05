//! Command-line manners (issue 18): a closed pipe ends the output quietly, colour only on a
//! terminal (and never with NO_COLOR), every `--json` documented, one default `--config`,
//! "did you mean" for misspelt keys, and the opted-in custom mapping targets in `status`.
//! None of these needs a domain controller.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use exo_writeback_core::outcome::OutcomeCode;
use exo_writeback_core::provisioning::{
    Action, CycleId, CycleKind, EscrowUpdate, JoinUpdate, LogEntryId, LogStatus, ObjectOutcome,
    ProvisioningLogEntry, Reason, SourceIdentity, Step, Steps, TargetIdentity,
};
use exo_writeback_store_sqlite::SqliteStore;
use exo_writeback_store_sqlite::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_exo-writeback");

/// A configuration that needs no DC (nothing here connects) with `extra` appended.
pub(crate) fn config(dir: &Path, extra: &str) -> PathBuf {
    let password = dir.join("password");
    std::fs::write(&password, "unused").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    let path = dir.join("exo-writeback.toml");
    std::fs::write(
        &path,
        format!(
            "[ad]\nurl = \"ldaps://127.0.0.1:1\"\nbind_dn = \"svc@corp.example\"\n\
             password_file = \"{}\"\ntimeout_secs = 1\n\n[sync]\nstate_dir = \"{}\"\n{extra}",
            password.display(),
            dir.join("state").display()
        ),
    )
    .unwrap();
    path
}

fn run(args: &[&str], config: Option<&Path>) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("RUST_LOG").env_remove("NO_COLOR");
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let out = cmd.output().expect("run exo-writeback");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `n` log entries of one cycle, each with a reason long enough that the listing is far
/// larger than a pipe's buffer.
fn fill_logs(state: &Path, n: u128) {
    let mut store = SqliteStore::open_in(state).expect("state");
    let t0: jiff::Timestamp = "2026-05-01T00:00:00Z".parse().unwrap();
    let cycle = store.begin_cycle(CycleKind::Delta, t0).expect("cycle");
    assert_eq!(cycle, CycleId(1));
    let step = Step::not_reached();
    let outcomes: Vec<ObjectOutcome> = (0..n)
        .map(|i| ObjectOutcome {
            log: ProvisioningLogEntry {
                id: LogEntryId(uuid::Uuid::from_u128(i + 1)),
                cycle,
                time: t0 + jiff::SignedDuration::from_millis(i as i64),
                duration: jiff::SignedDuration::ZERO,
                source: SourceIdentity {
                    kind: Default::default(),
                    primary_smtp_address: Some(format!("user{i:05}@contoso.example")),
                    ..SourceIdentity::default()
                },
                target: TargetIdentity {
                    dn: Some(format!("CN=user{i:05},OU=Mailboxes,DC=corp,DC=example")),
                    ..TargetIdentity::default()
                },
                action: Action::Other,
                status: LogStatus::Failure,
                reason: Some(Reason {
                    code: OutcomeCode::LdapError,
                    message: "x".repeat(120),
                    recommended_action: "none".into(),
                }),
                steps: Steps {
                    import: step.clone(),
                    scoping: step.clone(),
                    matching: step.clone(),
                    export: step.clone(),
                },
                modified: vec![],
            },
            journal: vec![],
            join: JoinUpdate::Keep,
            escrow: EscrowUpdate::Keep,
            pins: Default::default(),
        })
        .collect();
    store.record_outcomes(&outcomes).expect("record");
}

/// `exo-writeback logs | head -1` used to panic with "Broken pipe" (exit 101).
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    fill_logs(&dir.path().join("state"), 3000);
    for format in ["table", "json", "csv"] {
        let mut child = Command::new(BIN)
            .args(["logs", "--limit", "5000", "--format", format, "--config"])
            .arg(&config)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // Read one line, then close the pipe as `head -1` does.
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("first line");
        assert!(!first.is_empty(), "{format}");
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{format}: {stderr}"
        );
        assert_eq!(out.status.code(), Some(0), "{format}: {stderr}");
    }
    // Through a shell pipeline too.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; '{BIN}' logs --limit 5000 --config '{}' | head -n 2",
            config.display()
        ))
        .env_remove("RUST_LOG")
        .output()
        .expect("bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
}

/// Warnings carry no ANSI colour when stderr is not a terminal, nor with NO_COLOR on one.
#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.path().join("password"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    // A pipe: the warning, without escape sequences.
    let (_, _, stderr) = run(&["check", "--only", "ad"], Some(&config));
    assert!(stderr.contains("readable by group or others"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");

    // A terminal (script(1) runs the command on a pseudo-terminal): colour, unless NO_COLOR.
    let on_tty = |no_color: bool| {
        // The warning restricts the file: open it again for each run.
        std::fs::set_permissions(
            dir.path().join("password"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let mut cmd = Command::new("script");
        cmd.args(["-q", "-e", "-c"])
            .arg(format!(
                "'{BIN}' check --only ad --config '{}'",
                config.display()
            ))
            .arg("/dev/null")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let out = cmd.output().expect("script");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = on_tty(false);
    assert!(
        coloured.contains("readable by group or others") && coloured.contains('\u{1b}'),
        "{coloured:?}"
    );
    let plain = on_tty(true);
    assert!(
        plain.contains("readable by group or others") && !plain.contains('\u{1b}'),
        "{plain:?}"
    );
}

/// The subcommands, as `exo-writeback --help` lists them.
fn subcommands() -> Vec<String> {
    let (_, help, _) = run(&["--help"], None);
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// Every command that takes `--json` says what it prints, in its help and in the README's
/// tour of the commands.
#[test]
fn every_json_flag_is_documented() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let commands = subcommands();
    assert!(commands.len() >= 12, "{commands:?}");
    let mut with_json = Vec::new();
    for command in &commands {
        let (code, help, _) = run(&[command, "--help"], None);
        assert_eq!(code, 0, "{command}");
        let Some(line) = help.lines().find(|l| l.trim_start().starts_with("--json")) else {
            continue;
        };
        with_json.push(command.clone());
        let described = line.trim_start().trim_start_matches("--json").trim();
        assert!(
            !described.is_empty(),
            "`{command} --json` has no description:\n{help}"
        );
        // The command's line of the tour, with its continuation lines (ending in `\`).
        let mut lines = readme
            .lines()
            .skip_while(|l| !l.starts_with(&format!("exo-writeback {command} ")));
        let mut tour = String::new();
        for line in lines.by_ref() {
            tour.push_str(line);
            if !line.ends_with('\\') {
                break;
            }
        }
        assert!(
            !tour.is_empty(),
            "the README's tour has no line for {command}"
        );
        assert!(tour.contains("--json"), "README: {tour}");
    }
    assert!(with_json.len() >= 9, "{with_json:?}");
}

/// `check` reads the same default configuration file as every other command.
#[test]
fn check_takes_the_default_config_like_every_command() {
    let default = "/etc/exo-writeback/exo-writeback.toml";
    for command in ["check", "status", "sync"] {
        let (_, help, _) = run(&[command, "--help"], None);
        assert!(
            help.contains(&format!("[default: {default}]")),
            "{command}: {help}"
        );
    }
    if !Path::new(default).exists() {
        let (code, _, stderr) = run(&["check"], None);
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains(&format!("cannot read the configuration file {default}")),
            "{stderr}"
        );
    }
}

/// Misspelt keys in any table get a "did you mean", as do Get-Mailbox property names.
#[test]
fn misspelt_keys_and_properties_get_a_suggestion() {
    let cases = [
        ("[writeback]\ntreshold = 5\n", "did you mean `threshold`?"),
        (
            "[writeback]\nprofiles = [\"cloud-manged\"]\n",
            "did you mean `cloud-managed`?",
        ),
        (
            "[writeback]\n[[writeback.scoping_filters]]\nclauses = [{ property = \"CustomAtribute15\", operator = \"IS NULL\" }]\n",
            "unknown Get-Mailbox property CustomAtribute15 (did you mean CustomAttribute15?)",
        ),
        (
            "[writeback]\n[[writeback.scoping_filters]]\nclauses = [{ property = \"CustomAttribute1\", operatr = \"IS NULL\" }]\n",
            "did you mean `operator`?",
        ),
        (
            "[writeback]\n[[writeback.mappings]]\ntarget = \"extensionAttribute1\"\nsoruce = \"Alias\"\n",
            "did you mean `source`?",
        ),
        (
            "[exo]\ntenant = \"t\"\nclient_id = \"c\"\nclient_secret_fle = \"x\"\n",
            "did you mean `client_secret_file`?",
        ),
    ];
    for (extra, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        // [sync] comes last in `config`, so a section of its own follows it.
        let path = config(dir.path(), &format!("\n{extra}"));
        let (code, _, stderr) = run(&["check"], Some(&path));
        assert_eq!(code, 2, "{extra}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{extra}: {expected:?} in {stderr}"
        );
        assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    }
    // [ad] and [sync] keys.
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), "intervall = \"60s\"\n");
    let (_, _, stderr) = run(&["status"], Some(&path));
    assert!(stderr.contains("did you mean `interval`?"), "{stderr}");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("intervall", "interval")
        .replace("bind_dn", "bind_db");
    std::fs::write(&path, text).unwrap();
    let (_, _, stderr) = run(&["status"], Some(&path));
    assert!(stderr.contains("did you mean `bind_dn`?"), "{stderr}");
}

/// A deliberately widened allow-list is visible in `status`, in text and JSON.
#[test]
fn status_shows_the_opted_in_targets() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        "\n[writeback]\nallow_extra_targets = [\"info\"]\n[[writeback.mappings]]\n\
         target = \"info\"\nsource = \"CustomAttribute3\"\n",
    );
    let (code, stdout, stderr) = run(&["status"], Some(&path));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("custom mapping targets opted in (writeback.allow_extra_targets): info"),
        "{stdout}"
    );
    let (code, stdout, stderr) = run(&["status", "--json"], Some(&path));
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["extra_targets"], serde_json::json!(["info"]), "{v}");
}
