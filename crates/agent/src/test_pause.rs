//! A pause for the fault tests, inert unless the environment sets
//! `EXO_WRITEBACK_TEST_PAUSE_AFTER_MODIFY=<n>:<file>`: once the process's `n`-th modify has been
//! applied by AD, the file is created (holding the process id) and the modify's return waits
//! until the file is removed. A test then knows the cycle is running, in its write phase, with
//! exactly `n` objects written, and stops the DC or kills the process at that point instead of
//! guessing the instant from timing (`crates/cli/tests/it/faults.rs`). Once per process.
//! While the variable is set, modifies are sent one at a time ([`one_at_a_time`]): the writer
//! otherwise keeps several in flight, and "exactly `n` written" must hold when it pauses.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The variable's name.
pub const VARIABLE: &str = "EXO_WRITEBACK_TEST_PAUSE_AFTER_MODIFY";

fn setting() -> Option<&'static (u64, PathBuf)> {
    static SETTING: OnceLock<Option<(u64, PathBuf)>> = OnceLock::new();
    SETTING
        .get_or_init(|| {
            let value = std::env::var(VARIABLE).ok()?;
            let (n, file) = value.split_once(':')?;
            Some((n.trim().parse().ok()?, PathBuf::from(file)))
        })
        .as_ref()
}

/// Held across each modify while the pause is set (`None`, nothing held, otherwise): a later
/// modify is not sent before the one ahead of it returned — also not while it is paused.
pub(crate) async fn one_at_a_time() -> Option<tokio::sync::MutexGuard<'static, ()>> {
    static GATE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    setting()?;
    Some(GATE.lock().await)
}

/// Called after each modify AD applied.
pub(crate) async fn after_modify() {
    static APPLIED: AtomicU64 = AtomicU64::new(0);
    let Some((n, file)) = setting() else {
        return;
    };
    if APPLIED.fetch_add(1, Ordering::SeqCst) + 1 != *n {
        return;
    }
    if let Err(e) = std::fs::write(file, std::process::id().to_string()) {
        tracing::warn!(file = %file.display(), error = %e, "{VARIABLE}: cannot create the file; not pausing");
        return;
    }
    tracing::warn!(modifies = n, file = %file.display(), "{VARIABLE}: paused until the file is removed");
    while file.exists() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
