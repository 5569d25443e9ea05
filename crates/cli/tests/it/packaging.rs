//! The Debian package and its systemd unit (issue 14): the unit passes `systemd-analyze verify`
//! and rates as well hardened by `systemd-analyze security`; the package built by
//! `scripts/package` holds the binary, the unit, the example configuration as a conffile, the
//! man pages and completions; installed with `dpkg -i` on the test machine it sets up its user,
//! a private state directory and a configuration only that user reads, its binary works against
//! the lab, and `dpkg --purge` takes it all away again.

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
async fn the_package_installs_with_dpkg_and_its_binary_works_against_the_lab() {
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
    // Installed with dpkg on this machine (then purged): see `installed_package_checks`.
    let _serial = PackageTestLock::take();
    let installed = Installed::install(&deb);
    installed_package_checks(&installed).await;
    installed.purge_and_check();
}

/// One install of the package on this machine at a time, across test runs (two worktrees'
/// suites may run at once): the lock is held until the package is purged again.
struct PackageTestLock {
    _held: std::fs::File,
}

impl PackageTestLock {
    fn take() -> Self {
        let file =
            std::fs::File::create(std::env::temp_dir().join("exo-writeback-package-test.lock"))
                .expect("the package test's lock file");
        file.lock().expect("lock the package test");
        PackageTestLock { _held: file }
    }
}

/// The package installed by `dpkg -i`; dropped (a failed assertion included), it is purged.
struct Installed {
    deb: PathBuf,
    purged: bool,
}

const PACKAGE: &str = "exo-writeback";

fn dpkg_status() -> Option<String> {
    let (ok, text) =
        run(Command::new("dpkg-query").args(["-W", "-f=${db:Status-Abbrev}", PACKAGE]));
    ok.then(|| text.trim().to_string())
        .filter(|s| !s.is_empty() && !s.starts_with("un") && !s.starts_with("pn"))
}

impl Installed {
    fn install(deb: &Path) -> Self {
        // The test purges what it installed: never an administrator's installation.
        if let Some(status) = dpkg_status() {
            panic!(
                "{PACKAGE} is already known to dpkg on this machine ({status}); this test \
                 installs and purges the package: run it on a test machine, or `dpkg --purge {PACKAGE}`"
            );
        }
        let installed = Installed {
            deb: deb.to_path_buf(),
            purged: false,
        };
        let (ok, text) = run(Command::new("dpkg").arg("-i").arg(deb));
        assert!(ok, "dpkg -i {}:\n{text}", deb.display());
        installed
    }

    fn purge_and_check(mut self) {
        let (ok, text) = run(Command::new("dpkg").args(["--purge", PACKAGE]));
        self.purged = true;
        assert!(ok, "dpkg --purge:\n{text}");
        assert_eq!(dpkg_status(), None, "dpkg still knows the package");
        // purge takes the service's user, its state and its configuration away.
        let (user_left, _) = run(Command::new("getent").args(["passwd", PACKAGE]));
        assert!(!user_left, "the user {PACKAGE} outlived the purge");
        for gone in [
            "/usr/bin/exo-writeback",
            "/var/lib/exo-writeback",
            "/etc/exo-writeback/exo-writeback.toml",
        ] {
            assert!(!Path::new(gone).exists(), "{gone} outlived the purge");
        }
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if !self.purged {
            let (ok, text) = run(Command::new("dpkg").args(["--purge", PACKAGE]));
            if !ok {
                eprintln!(
                    "dpkg --purge after a failed test ({}):\n{text}",
                    self.deb.display()
                );
            }
        }
    }
}

fn mode_and_owner(path: &str) -> (u32, String) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .permissions()
        .mode()
        & 0o7777;
    let (ok, owner) = run(Command::new("stat").args(["-c", "%U:%G", path]));
    assert!(ok, "{owner}");
    (mode, owner.trim().to_string())
}

/// What `dpkg -i` left on the machine: the binary on the PATH, the unit where systemd looks,
/// sound and hardened as installed, the service's own user with a private state directory, the
/// configuration readable by that user only, man pages `man` finds, completions; the example
/// configuration is a conffile (an administrator's edit survives the package installed again);
/// and the installed binary works against the lab.
async fn installed_package_checks(installed: &Installed) {
    let binary = Path::new("/usr/bin/exo-writeback");
    let (ok, version) = run(Command::new(binary).arg("--version"));
    assert!(ok && version.contains("exo-writeback"), "{version}");
    let unit = ["/lib/systemd/system", "/usr/lib/systemd/system"]
        .iter()
        .map(|d| Path::new(d).join("exo-writeback.service"))
        .find(|p| p.exists())
        .expect("the unit installed where systemd looks");
    assert_unit_is_sound_and_hardened(&unit);

    let (ok, user) = run(Command::new("getent").args(["passwd", PACKAGE]));
    assert!(ok, "no user {PACKAGE}: {user}");
    assert!(
        user.trim().ends_with(":/usr/sbin/nologin") || user.trim().ends_with(":/bin/false"),
        "the service user can log in: {user}"
    );
    assert_eq!(
        mode_and_owner("/var/lib/exo-writeback"),
        (0o700, "exo-writeback:exo-writeback".to_string()),
        "the state directory"
    );
    assert_eq!(
        mode_and_owner("/etc/exo-writeback/exo-writeback.toml"),
        (0o640, "root:exo-writeback".to_string()),
        "the configuration"
    );
    let (ok, page) = run(Command::new("man").args(["-w", "exo-writeback-run"]));
    assert!(
        ok && page.contains("/usr/share/man/man1/exo-writeback-run.1.gz"),
        "man does not find the page: {page}"
    );
    assert!(Path::new("/usr/share/bash-completion/completions/exo-writeback").exists());

    // The example configuration is a conffile: the administrator's edit survives the package
    // being installed again.
    let conf = "/etc/exo-writeback/exo-writeback.toml";
    let edited = format!(
        "{}\n# edited by the administrator\n",
        std::fs::read_to_string(conf).expect("conf")
    );
    std::fs::write(conf, &edited).expect("edit the configuration");
    let (ok, text) = run(Command::new("dpkg")
        .args(["-i", "--force-confold"])
        .arg(&installed.deb));
    assert!(ok, "dpkg -i again:\n{text}");
    assert_eq!(
        std::fs::read_to_string(conf).expect("conf"),
        edited,
        "installing again replaced the administrator's configuration"
    );

    let lab = Lab::start(2).await;
    let (ok, text) = run(Command::new(binary)
        .args(["check", "--config"])
        .arg(&lab.config));
    assert!(ok, "the installed binary's check:\n{text}");
    let (ok, text) = run(Command::new(binary)
        .args(["sync", "--config"])
        .arg(&lab.config));
    assert!(ok, "the installed binary's sync:\n{text}");
}
