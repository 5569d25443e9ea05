//! systemd's notification protocol (`sd_notify`: datagrams to `$NOTIFY_SOCKET`): readiness
//! (`Type=notify`), the watchdog, reloading and stopping, and a one-line status for
//! `systemctl status`. Outside systemd (no `NOTIFY_SOCKET`) every call does nothing.

use std::time::Duration;

use sd_notify::NotifyState;

fn send(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Started: the API listens and the loop runs.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// The line `systemctl status` shows.
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// Reloading the configuration (followed by [`ready`]).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// With `WatchdogSec=` set, pings systemd at half its interval for as long as the agent's
/// runtime runs its tasks; a wedged runtime stops the pings and systemd restarts the agent.
pub fn watchdog() -> Option<tokio::task::JoinHandle<()>> {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return None;
    }
    let every = Duration::from_micros(usec / 2).max(Duration::from_millis(100));
    tracing::info!(
        every_ms = every.as_millis() as u64,
        "pinging the systemd watchdog"
    );
    Some(tokio::spawn(async move {
        loop {
            send(&[NotifyState::Watchdog]);
            tokio::time::sleep(every).await;
        }
    }))
}
