//! Files an administrator can trust: the state directory and every secret file are private to
//! the agent's user.
//!
//! - The state directory is created 0700 (with the missing directories above it), never 0755.
//! - A state directory, state database or secret file (`password_file`, `client_secret_file`,
//!   `private_key_file`, API token files, webhook URL files) that group or others may read is
//!   fixed — `chmod` to 0700 (directories) or 0600 (files) — with a warning when this process
//!   owns it, and refused otherwise: another user's file is not ours to change, and reading a
//!   secret others can read would hide the exposure.

use std::path::{Path, PathBuf};

/// A file or directory that is open to group or others and cannot be made private.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(
        "{what} {} is open to group or others (mode {mode:04o}) and belongs to another user (uid {owner}); restrict it with: chmod {fix:o} {}",
        path.display(),
        path.display()
    )]
    NotOurs {
        what: String,
        path: PathBuf,
        mode: u32,
        owner: u32,
        fix: u32,
    },
    #[error(
        "{what} {} is open to group or others (mode {mode:04o}) and cannot be restricted ({io}); restrict it with: chmod {fix:o} {}",
        path.display(),
        path.display()
    )]
    CannotRestrict {
        what: String,
        path: PathBuf,
        mode: u32,
        fix: u32,
        io: std::io::Error,
    },
    #[error("cannot create {what} {}: {io}", path.display())]
    Create {
        what: String,
        path: PathBuf,
        io: std::io::Error,
    },
}

/// What [`restrict`] did to a path that was open to others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restricted {
    /// It was private already (or does not exist).
    Already,
    /// Its mode was `was`; it is now private.
    Fixed { was: u32 },
}

/// Creates the state directory privately (0700) when it is missing, and makes an existing
/// one — and the state database with its WAL files — private (see the module's rules).
pub fn private_state_dir(dir: &Path) -> Result<(), FileError> {
    if !dir.exists() {
        create_private_dir(dir).map_err(|io| FileError::Create {
            what: "sync.state_dir".into(),
            path: dir.to_path_buf(),
            io,
        })?;
    }
    restrict("sync.state_dir", dir, 0o700)?;
    for name in ["state.db", "state.db-wal", "state.db-shm"] {
        let path = dir.join(name);
        if path.exists() {
            restrict("the state database", &path, 0o600)?;
        }
    }
    Ok(())
}

/// Makes a secret file private (see the module's rules); `what` names its setting
/// (`ad.password_file`). A missing file is left to the reader to report.
pub fn private_secret_file(what: &str, path: &Path) -> Result<(), FileError> {
    restrict(what, path, 0o600).map(|_| ())
}

/// Makes `path` carry no group or other permission: fixed (chmod `fix`) with a warning when
/// this process owns it, refused otherwise.
#[cfg(unix)]
pub fn restrict(what: &str, path: &Path, fix: u32) -> Result<Restricted, FileError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(Restricted::Already);
    };
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(Restricted::Already);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(FileError::NotOurs {
            what: what.to_string(),
            path: path.to_path_buf(),
            mode,
            owner: meta.uid(),
            fix,
        });
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(fix)).map_err(|io| {
        FileError::CannotRestrict {
            what: what.to_string(),
            path: path.to_path_buf(),
            mode,
            fix,
            io,
        }
    })?;
    tracing::warn!(
        "{what} {} was readable by group or others (mode {mode:04o}); restricted it to {fix:04o}",
        path.display()
    );
    Ok(Restricted::Fixed { was: mode })
}

#[cfg(not(unix))]
pub fn restrict(_what: &str, _path: &Path, _fix: u32) -> Result<Restricted, FileError> {
    Ok(Restricted::Already)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777
    }

    #[test]
    fn a_new_state_dir_is_private_and_so_are_its_parents_we_create() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("var").join("state");
        private_state_dir(&dir).expect("create");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("var")), 0o700);
    }

    #[test]
    fn an_open_state_dir_and_database_are_restricted() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("state");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::write(dir.join("state.db"), b"").expect("db");
        std::fs::set_permissions(dir.join("state.db"), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        private_state_dir(&dir).expect("restrict");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("state.db")), 0o600);
    }

    #[test]
    fn an_open_secret_file_is_restricted_and_a_private_one_left_alone() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let f = tmp.path().join("secret");
        std::fs::write(&f, "x").expect("write");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        assert_eq!(
            restrict("api.tokens.file", &f, 0o600).expect("fix"),
            Restricted::Fixed { was: 0o640 }
        );
        assert_eq!(mode(&f), 0o600);
        assert_eq!(
            restrict("api.tokens.file", &f, 0o600).expect("again"),
            Restricted::Already
        );
    }

    /// Another user's open file is refused, not changed (the test runs as root, as the lab's do,
    /// to give the file away).
    #[test]
    fn another_users_open_file_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let f = tmp.path().join("secret");
        std::fs::write(&f, "x").expect("write");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        std::os::unix::fs::chown(&f, Some(65534), Some(65534)).expect("chown");
        let err = private_secret_file("ad.password_file", &f).expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("belongs to another user"), "{text}");
        assert!(text.contains("chmod 600"), "{text}");
        assert_eq!(mode(&f), 0o644, "left as it was");
    }
}
