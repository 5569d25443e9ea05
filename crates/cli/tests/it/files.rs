//! Files an administrator can trust (issue 14, item 5): the state directory is created 0700
//! with what it holds, an existing one open to others is restricted with a warning, and so is
//! every secret file — an API token's too. None of these needs a domain controller.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_exo-writeback");

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn write_config(dir: &Path, state: &Path, token: &Path) -> std::path::PathBuf {
    let password = dir.join("password");
    std::fs::write(&password, "unused").unwrap();
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    let path = dir.join("exo-writeback.toml");
    std::fs::write(
        &path,
        format!(
            "[ad]\nurl = \"ldaps://127.0.0.1:1\"\nbind_dn = \"svc@corp.example\"\n\
             password_file = \"{}\"\n\n[sync]\nstate_dir = \"{}\"\n\n\
             [[api.tokens]]\nname = \"console\"\nrole = \"reader\"\nfile = \"{}\"\n",
            password.display(),
            state.display(),
            token.display()
        ),
    )
    .unwrap();
    path
}

fn status(config: &Path) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["status", "--config"])
        .arg(config)
        .env_remove("RUST_LOG")
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_new_state_dir_is_created_private_with_its_parents() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("var").join("lib").join("exo-writeback");
    let token = dir.path().join("token");
    std::fs::write(&token, "t".repeat(40)).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = write_config(dir.path(), &state, &token);
    let (code, stderr) = status(&config);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&dir.path().join("var")), 0o700);
    assert_eq!(mode(&state.join("state.db")), 0o600);
    assert!(!stderr.contains("readable by group or others"), "{stderr}");
}

#[test]
fn an_open_state_and_token_file_are_restricted_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let token = dir.path().join("token");
    std::fs::write(&token, "t".repeat(40)).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = write_config(dir.path(), &state, &token);
    std::fs::create_dir(&state).unwrap();
    exo_writeback_store_sqlite::SqliteStore::open_in(&state).expect("a state");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        state.join("state.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();

    let (code, stderr) = status(&config);
    assert_eq!(code, 0, "{stderr}");
    for (path, want) in [
        (&state, 0o700),
        (&state.join("state.db"), 0o600),
        (&token, 0o600),
    ] {
        assert_eq!(mode(path), want, "{}", path.display());
        assert!(
            stderr.contains(&format!(
                "{} was readable by group or others",
                path.display()
            )),
            "{}: {stderr}",
            path.display()
        );
    }
    assert!(!stderr.contains(&"t".repeat(40)), "{stderr}");
}
