//! The Debian package and its systemd unit (issue 14): the unit passes `systemd-analyze verify`
//! and rates as well hardened by `systemd-analyze security`; the package built by
//! `scripts/package` holds the binary, the unit, the example configuration as a conffile, the
//! man pages and completions, and its binary works against the lab.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::Lab;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The unit with its `ExecStart` pointing at `binary` (verify checks that it exists).
fn unit_using(unit: &Path, binary: &Path, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(unit).expect("unit");
    let copy = dir.join("exo-writeback.service");
    std::fs::write(
        &copy,
        text.replace("/usr/bin/exo-writeback", &binary.display().to_string()),
    )
    .expect("copy the unit");
    copy
}

/// `systemd-analyze verify` passes and `systemd-analyze security` rates the unit's exposure at
/// most 2.0 of 10 ("OK"); a unit without its hardening options rates 9.6 ("UNSAFE").
fn assert_unit_is_sound_and_hardened(unit: &Path) {
    let (ok, text) = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(unit));
    assert!(ok, "systemd-analyze verify {}:\n{text}", unit.display());
    let (ok, text) = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20"])
        .arg(unit));
    assert!(ok, "systemd-analyze security:\n{text}");
    let unit_text = std::fs::read_to_string(unit).expect("unit");
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "User=exo-writeback",
        "StateDirectory=exo-writeback",
        "StateDirectoryMode=0700",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=\n",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "EXO_WRITEBACK_LOG_FORMAT=json",
    ] {
        assert!(unit_text.contains(line), "the unit lacks {line:?}");
    }
}

#[test]
fn the_unit_is_verified_and_hardened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = unit_using(
        &repo().join("packaging/exo-writeback.service"),
        Path::new(env!("CARGO_BIN_EXE_exo-writeback")),
        dir.path(),
    );
    assert_unit_is_sound_and_hardened(&unit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_package_installs_a_binary_that_works_against_the_lab() {
    let repo = repo();
    // The package of this build's binary (the dev profile: no second build).
    let (ok, text) = run(Command::new(repo.join("scripts/package"))
        .args(["--profile", "dev"])
        .current_dir(&repo));
    assert!(ok, "scripts/package:\n{text}");
    let deb = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.ends_with(".deb"))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no .deb named:\n{text}"));
    assert!(
        deb.exists() && deb.parent().is_some_and(|d| d.ends_with("debian")),
        "{}",
        deb.display()
    );

    let (ok, contents) = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    assert!(ok, "{contents}");
    for path in [
        "./usr/bin/exo-writeback",
        "./etc/exo-writeback/exo-writeback.toml",
        "exo-writeback.service",
        "./usr/share/man/man1/exo-writeback.1.gz",
        "./usr/share/man/man1/exo-writeback-run.1.gz",
        "./usr/share/bash-completion/completions/exo-writeback",
        "./usr/share/zsh/vendor-completions/_exo-writeback",
        "./usr/share/fish/vendor_completions.d/exo-writeback.fish",
    ] {
        assert!(
            contents.contains(path),
            "{path} not in the package:\n{contents}"
        );
    }
    let (ok, control) = run(Command::new("dpkg-deb").arg("--info").arg(&deb));
    assert!(ok, "{control}");
    assert!(control.contains("adduser"), "{control}");
    // The example configuration is a conffile: an upgrade keeps the administrator's edits.
    let scratch = tempfile::tempdir().expect("tempdir");
    let control_dir = scratch.path().join("DEBIAN");
    let (ok, text) = run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(&control_dir));
    assert!(ok, "{text}");
    let conffiles = std::fs::read_to_string(control_dir.join("conffiles")).expect("conffiles");
    assert!(
        conffiles.contains("/etc/exo-writeback/exo-writeback.toml"),
        "{conffiles}"
    );
    let postinst = std::fs::read_to_string(control_dir.join("postinst")).expect("postinst");
    assert!(postinst.contains("adduser --system"), "{postinst}");

    // Unpacked, its unit is sound and hardened and its binary works against the lab.
    let root = tempfile::tempdir().expect("tempdir");
    let (ok, text) = run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(root.path()));
    assert!(ok, "{text}");
    let unit = ["lib/systemd/system", "usr/lib/systemd/system"]
        .iter()
        .map(|d| root.path().join(d).join("exo-writeback.service"))
        .find(|p| p.exists())
        .expect("the unit in the package");
    let binary = root.path().join("usr/bin/exo-writeback");
    let checked = unit_using(&unit, &binary, scratch.path());
    assert_unit_is_sound_and_hardened(&checked);

    let lab = Lab::start(2).await;
    let (ok, text) = run(Command::new(&binary)
        .args(["check", "--config"])
        .arg(&lab.config));
    assert!(ok, "the packaged binary's check:\n{text}");
    let (ok, text) = run(Command::new(&binary)
        .args(["sync", "--config"])
        .arg(&lab.config));
    assert!(ok, "the packaged binary's sync:\n{text}");
}
