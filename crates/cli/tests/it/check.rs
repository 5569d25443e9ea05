//! `exo-writeback check` against real lab DCs (with and without the Exchange schema).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use exo_writeback_testlab::{LabDc, LabOptions};

use crate::harness::{Run, command, exo_writeback_blocking, finish};

/// `exo-writeback check <extra> --config <config>`.
pub(crate) fn check(config: &Path, extra: &[&str]) -> Run {
    exo_writeback_blocking(config, &[&["check"], extra].concat())
}

/// A config file with the lab's `[ad]` section, adjusted.
pub(crate) struct ConfigFile {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub password_file: PathBuf,
}

pub(crate) fn config_for(dc: &LabDc, edit: impl FnOnce(String, &Path) -> String) -> ConfigFile {
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, dc.password()).unwrap();
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let lab = std::fs::read_to_string(&dc.config_file).unwrap();
    let text = lab.replace(
        &format!(
            "password_file = {:?}",
            dc.password_file.display().to_string()
        ),
        &format!("password_file = {:?}", password_file.display().to_string()),
    );
    assert_ne!(
        text, lab,
        "lab config has no password_file line to redirect"
    );
    let text = edit(text, dir.path());
    let path = dir.path().join("exo-writeback.toml");
    std::fs::write(&path, text).unwrap();
    ConfigFile {
        _dir: dir,
        path,
        password_file,
    }
}

fn assert_no_password(run: &Run, password: &str) {
    assert!(
        !run.stdout.contains(password) && !run.stderr.contains(password),
        "the password leaked into the output"
    );
}

#[test]
fn exchange_schema_detected_exits_zero() {
    let dc = LabDc::shared();
    let run = check(&dc.config_file, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("profile cloud-managed: Exchange schema detected"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("profile hybrid: Exchange schema detected"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("bind identity: Administrator@lab.example.test"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("naming context: DC=lab,DC=example,DC=test"),
        "{}",
        run.stdout
    );
    assert_no_password(&run, &dc.password());

    let json = check(&dc.config_file, &["--json", "--only", "ad"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["ad"]["naming_context"], "DC=lab,DC=example,DC=test");
    assert_eq!(v["ad"]["profiles"][0]["exchange_schema_detected"], true);
    assert!(v.get("exo").is_none());
}

#[test]
fn missing_exchange_schema_is_listed_and_exits_non_zero() {
    let dc = LabDc::start(LabOptions::plain()).expect("start a DC without the Exchange schema");
    let run = check(&dc.config_file, &[]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    for attr in [
        "msExchHideFromAddressLists",
        "extensionAttribute1",
        "msDS-ExternalDirectoryObjectId",
    ] {
        assert!(
            run.stdout.contains(attr),
            "{attr} not listed:\n{}",
            run.stdout
        );
    }
    assert!(
        !run.stdout.contains("Exchange schema detected"),
        "{}",
        run.stdout
    );

    let json = check(&dc.config_file, &["--json", "--only", "ad"]);
    assert_eq!(json.code, 1);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let missing = v["ad"]["profiles"][1]["missing"].as_array().unwrap();
    assert!(
        missing
            .iter()
            .any(|m| m == "msDS-ExternalDirectoryObjectId"),
        "{missing:?}"
    );
    // Attributes of the base schema are not reported missing.
    let cloud_missing = v["ad"]["profiles"][0]["missing"].as_array().unwrap();
    assert!(
        !cloud_missing
            .iter()
            .any(|m| m == "mail" || m == "proxyAddresses"),
        "{cloud_missing:?}"
    );
}

#[test]
fn wrong_password_is_reported_without_the_password() {
    let dc = LabDc::shared();
    let config = config_for(dc, |t, _| t);
    std::fs::write(&config.password_file, "Not-The-Passw0rd").unwrap();
    let run = check(&config.path, &["--only", "ad"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("invalid credentials for Administrator@lab.example.test"),
        "{}",
        run.stdout
    );
    assert_no_password(&run, "Not-The-Passw0rd");
}

#[test]
fn untrusted_certificate_points_to_ca_file() {
    let dc = LabDc::shared();
    let config = config_for(dc, |t, _| {
        t.lines()
            .filter(|l| !l.starts_with("ca_file"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let run = check(&config.path, &["--only", "ad"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("unknown issuer") && run.stdout.contains("ad.ca_file"),
        "{}",
        run.stdout
    );
}

#[test]
fn unreachable_dc_names_address_and_timeout() {
    let dc = LabDc::shared();
    let config = config_for(dc, |t, _| {
        t.replace(
            &format!("url = \"{}\"", dc.url),
            "url = \"ldaps://127.0.0.1:1\"\ntimeout_secs = 2",
        )
    });
    let run = check(&config.path, &["--only", "ad"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("127.0.0.1:1") && run.stdout.contains("timeout 2 s"),
        "{}",
        run.stdout
    );
}

#[test]
fn unknown_config_key_names_key_and_file() {
    let dc = LabDc::shared();
    let config = config_for(dc, |t, _| t.replace("bind_dn", "bind_dn_typo"));
    let run = check(&config.path, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("bind_dn_typo"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&config.path.display().to_string()),
        "{}",
        run.stderr
    );

    let config = config_for(dc, |t, _| format!("{t}\n[surprise]\nkey = 1\n"));
    let run = check(&config.path, &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("surprise"), "{}", run.stderr);
}

#[test]
fn mapping_mistakes_are_refused_at_load_naming_file_mapping_and_position() {
    let dc = LabDc::shared();
    // An expression with a missing comma: the caret points at the second reference.
    let config = config_for(dc, |t, _| {
        format!(
            "{t}\n[writeback]\n[[writeback.mappings]]\ntarget = \"extensionAttribute7\"\n\
             expression = 'Join(\",\", [CustomAttribute1] [CustomAttribute2])'\n"
        )
    });
    let run = check(&config.path, &["--only", "ad"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    for needle in [
        config.path.display().to_string().as_str(),
        "writeback.mappings[0]",
        "extensionAttribute7",
        "position 29",
        "                               ^",
    ] {
        assert!(run.stderr.contains(needle), "{needle:?} in {}", run.stderr);
    }
    assert!(run.stdout.is_empty(), "nothing connects: {}", run.stdout);

    // A deny-listed target is refused by name, even as a custom mapping.
    let config = config_for(dc, |t, _| {
        format!(
            "{t}\n[writeback]\n[[writeback.mappings]]\ntarget = \"userPrincipalName\"\n\
             source = \"PrimarySmtpAddress\"\n"
        )
    });
    let run = check(&config.path, &["--only", "ad"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("userPrincipalName"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&config.path.display().to_string()),
        "{}",
        run.stderr
    );
}

/// A secret file open to others is restricted to 0600, with a warning naming it (the agent
/// owns it; another user's is refused: `agent::files`).
#[test]
fn world_readable_password_file_is_restricted_with_a_warning() {
    let dc = LabDc::shared();
    let config = config_for(dc, |t, _| t);
    std::fs::set_permissions(
        &config.password_file,
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let run = check(&config.path, &["--only", "ad"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("readable by group or others"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&config.password_file.display().to_string()),
        "{}",
        run.stderr
    );
    assert_no_password(&run, &dc.password());
    let mode = std::fs::metadata(&config.password_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "restricted: {mode:o}");

    let run = check(&config.path, &["--only", "ad"]);
    assert!(
        !run.stderr.contains("readable by group or others"),
        "{}",
        run.stderr
    );
}

#[test]
fn password_from_environment_variable() {
    let dc = LabDc::shared();
    let config = config_for(dc, |t, _| {
        t.lines()
            .map(|l| {
                if l.starts_with("password_file") {
                    "password_env = \"EXO_WB_TEST_AD_PASSWORD\""
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    let mut cmd = command(&config.path, &["check", "--only", "ad"]);
    cmd.env("EXO_WB_TEST_AD_PASSWORD", dc.password());
    let run = finish(cmd);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let unset = check(&config.path, &["--only", "ad"]);
    assert_eq!(unset.code, 1);
    assert!(
        unset.stdout.contains("EXO_WB_TEST_AD_PASSWORD"),
        "{}",
        unset.stdout
    );
}

#[test]
fn exchange_online_half_says_not_configured() {
    let dc = LabDc::shared();
    // The lab config has no [exo] section.
    let run = check(&dc.config_file, &["--only", "exo"]);
    assert!(
        run.stdout.contains("Exchange Online") && run.stdout.contains("not configured"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("AD ("), "{}", run.stdout);
    // Asked for alone, a side that is not configured is not "fine".
    assert_ne!(run.code, 0);
}

/// A custom mapping to a security-sensitive attribute is refused when the file loads, with
/// the reason, even with an opt-in; one outside the safe list names the opt-in that admits it.
#[test]
fn unsafe_custom_mapping_targets_are_refused_at_load() {
    let dc = LabDc::shared();
    let cases = [
        (
            "altSecurityIdentities",
            "",
            "writeback.mappings[0]: altSecurityIdentities is never written by a custom mapping: it maps a certificate",
        ),
        (
            "scriptPath",
            "allow_extra_targets = [\"scriptPath\"]",
            "writeback.allow_extra_targets: scriptPath can never be opted in",
        ),
        (
            "info",
            "",
            "opt in by name: [writeback] allow_extra_targets = [\"info\"]",
        ),
    ];
    for (target, extra, expected) in cases {
        let config = config_for(dc, |t, _| {
            format!(
                "{t}\n[writeback]\n{extra}\n[[writeback.mappings]]\ntarget = \"{target}\"\n\
                 source = \"CustomAttribute1\"\n"
            )
        });
        let run = check(&config.path, &["--only", "ad"]);
        assert_eq!(run.code, 2, "{target}: {}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains(expected),
            "{expected:?} in {}",
            run.stderr
        );
        assert!(
            run.stderr.contains(&config.path.display().to_string()),
            "{}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "nothing connects: {}", run.stdout);
    }
}

/// A deliberately widened list is shown by `check`, in text and JSON.
#[test]
fn opted_in_targets_are_shown_by_check() {
    let dc = LabDc::shared();
    let config = config_for(dc, |t, _| {
        format!(
            "{t}\n[writeback]\nallow_extra_targets = [\"info\"]\n[[writeback.mappings]]\n\
             target = \"info\"\nsource = \"CustomAttribute3\"\n"
        )
    });
    let run = check(&config.path, &["--only", "ad"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("custom mapping targets opted in (writeback.allow_extra_targets): info"),
        "{}",
        run.stdout
    );
    let json = check(&config.path, &["--only", "ad", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["extra_targets"], serde_json::json!(["info"]), "{v}");
}
