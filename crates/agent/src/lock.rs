//! One writer per state. Two advisory locks (`flock`) in the state directory:
//!
//! - `cycle.lock`: one cycle runner (`sync`, `run`) per state directory, held for the runner's
//!   whole life; a second runner is refused at once ([`CycleRunnerLock`]). The runner writes
//!   its command, pid and start into the file; `status` asks whether it is held
//!   ([`cycle_runner`]: a shared lock tried and let go at once, which a runner starting at that
//!   instant waits out) and reads who holds it.
//! - `state.lock`: one writer of the state and of AD at any time. Every command that writes —
//!   a cycle (each cycle of `run`, not its sleep between cycles), `approve`, `undo`, `provision`
//!   without `--dry-run`, `restart` — holds it while it writes; another one waits for it, saying
//!   so ([`StateLock`]). Only its holder reconciles write-ahead intents, so no command ever
//!   takes a live cycle's intents for those of a stopped process.
//!
//! The locks are released when their file is closed: on drop, and by the kernel when the
//! process dies (kill -9 included).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;

use crate::error::AgentError;

/// The cycle runner's lock file in a state directory.
pub const CYCLE_LOCK: &str = "cycle.lock";
/// The writer's lock file in a state directory.
pub const STATE_LOCK: &str = "state.lock";

fn open(dir: &Path, name: &str, what: &'static str) -> Result<(File, PathBuf), AgentError> {
    crate::files::private_state_dir(dir)?;
    let path = dir.join(name);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|source| AgentError::LockFile {
            what,
            path: path.clone(),
            source,
        })?;
    Ok((file, path))
}

/// Held by the one cycle runner of a state directory.
#[derive(Debug)]
pub struct CycleRunnerLock {
    _file: File,
}

impl CycleRunnerLock {
    /// Takes the lock, or fails when another runner holds it.
    pub fn acquire(dir: &Path) -> Result<CycleRunnerLock, AgentError> {
        CycleRunnerLock::acquire_as(dir, "exo-writeback")
    }

    /// Takes the lock for `command` (written into the lock file with the pid and the time,
    /// for `status`), or fails when another runner holds it. A `status` looking at the lock
    /// holds it for an instant: that is waited out (a few tries within 200 ms).
    pub fn acquire_as(dir: &Path, command: &str) -> Result<CycleRunnerLock, AgentError> {
        let (mut file, path) = open(dir, CYCLE_LOCK, "cycle lock")?;
        let mut tries = 0;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if tries < 10 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(AgentError::CycleRunnerBusy {
                        dir: dir.to_path_buf(),
                        lock: path,
                    });
                }
                Err(TryLockError::Error(source)) => return Err(AgentError::Lock { path, source }),
            }
        }
        let note = Runner {
            command: command.to_string(),
            pid: std::process::id(),
            since: Timestamp::now(),
        }
        .to_note();
        if file.set_len(0).is_ok() && file.rewind().is_ok() {
            let _ = file.write_all(note.as_bytes());
        }
        Ok(CycleRunnerLock { _file: file })
    }
}

/// The cycle runner (`run` or `sync`) holding a state directory's cycle lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    pub command: String,
    pub pid: u32,
    pub since: Timestamp,
}

impl Runner {
    fn to_note(&self) -> String {
        format!(
            "command={}\npid={}\nsince={}\n",
            self.command, self.pid, self.since
        )
    }

    fn from_note(text: &str) -> Option<Runner> {
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
                .map(str::trim)
        };
        Some(Runner {
            command: field("command")?.to_string(),
            pid: field("pid")?.parse().ok()?,
            since: field("since")?.parse().ok()?,
        })
    }
}

/// Whether a cycle runner holds the state directory's cycle lock, and who (`Some(None)`: held,
/// by a runner that did not say who). Looks without getting in a runner's way: a shared lock,
/// tried and released at once.
pub fn cycle_runner(dir: &Path) -> Result<Option<Option<Runner>>, AgentError> {
    let path = dir.join(CYCLE_LOCK);
    let mut file = match OpenOptions::new().read(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AgentError::LockFile {
                what: "cycle lock",
                path,
                source,
            });
        }
    };
    match file.try_lock_shared() {
        Ok(()) => {
            drop(file);
            Ok(None)
        }
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            Ok(Some(Runner::from_note(&text)))
        }
        Err(TryLockError::Error(source)) => Err(AgentError::Lock { path, source }),
    }
}

/// Held by the one command writing the state (and AD) of a state directory.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Takes the lock, waiting for the command that holds it (a warning says who and why
    /// this one waits). `holder` names this command in the lock file for the next one.
    pub async fn acquire(dir: &Path, holder: &str) -> Result<StateLock, AgentError> {
        let (mut file, path) = open(dir, STATE_LOCK, "state lock")?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut other = String::new();
                let _ = file.read_to_string(&mut other);
                let other = other.trim();
                let other = if other.is_empty() {
                    "another exo-writeback command"
                } else {
                    other
                };
                tracing::warn!(
                    "waiting for the state lock {}: {other} is writing to this state; {holder} goes on when it is done",
                    path.display()
                );
                let waited = tokio::task::spawn_blocking(move || file.lock().map(|()| file)).await;
                file = match waited {
                    Ok(Ok(file)) => file,
                    Ok(Err(source)) => return Err(AgentError::Lock { path, source }),
                    Err(join) => {
                        return Err(AgentError::Lock {
                            path,
                            source: std::io::Error::other(join.to_string()),
                        });
                    }
                };
            }
            Err(TryLockError::Error(source)) => return Err(AgentError::Lock { path, source }),
        }
        // Who holds it, for a command that has to wait (best effort).
        let note = format!("`{holder}` (pid {})", std::process::id());
        if file.set_len(0).is_ok() && file.rewind().is_ok() {
            let _ = file.write_all(note.as_bytes());
        }
        Ok(StateLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn status_sees_the_runner_and_who_it_is_without_getting_in_its_way() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            cycle_runner(dir.path()).expect("probe"),
            None,
            "no lock file"
        );
        let runner = CycleRunnerLock::acquire_as(dir.path(), "exo-writeback run").expect("lock");
        let seen = cycle_runner(dir.path())
            .expect("probe")
            .expect("held")
            .expect("who");
        assert_eq!(seen.command, "exo-writeback run");
        assert_eq!(seen.pid, std::process::id());
        assert!(seen.since <= Timestamp::now());
        drop(runner);
        assert_eq!(cycle_runner(dir.path()).expect("probe"), None, "released");
        // A probe holding its shared lock does not refuse a runner starting meanwhile.
        let probe = File::open(dir.path().join(CYCLE_LOCK)).expect("open");
        probe.try_lock_shared().expect("shared");
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(probe);
        });
        CycleRunnerLock::acquire_as(dir.path(), "exo-writeback sync").expect("runner waits");
        release.join().expect("join");
    }

    #[test]
    fn a_second_cycle_runner_is_refused_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = CycleRunnerLock::acquire(dir.path()).expect("first");
        let err = CycleRunnerLock::acquire(dir.path()).expect_err("second");
        assert!(
            err.to_string()
                .contains("another exo-writeback sync or run is running cycles"),
            "{err}"
        );
        drop(first);
        CycleRunnerLock::acquire(dir.path()).expect("free again");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_writer_waits_until_the_first_is_done() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = StateLock::acquire(dir.path(), "exo-writeback run")
            .await
            .expect("first");
        let path = dir.path().to_path_buf();
        let second =
            tokio::spawn(async move { StateLock::acquire(&path, "exo-writeback approve 7").await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!second.is_finished(), "the second writer did not wait");
        let note = std::fs::read_to_string(dir.path().join(STATE_LOCK)).expect("note");
        assert!(note.contains("exo-writeback run"), "{note}");
        drop(first);
        tokio::time::timeout(Duration::from_secs(10), second)
            .await
            .expect("the second writer goes on")
            .expect("join")
            .expect("lock");
    }
}
