//! Stopping cleanly: SIGTERM or Ctrl-C sets a stop flag — the engine finishes the current
//! object, and the watermark never passes unfinished work. SIGHUP asks `run` to reload its
//! configuration.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A stop flag that SIGTERM and Ctrl-C set (listening starts now).
pub fn stop_on_signals() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for SIGTERM");
                        let _ = tokio::signal::ctrl_c().await;
                        set.store(true, Ordering::SeqCst);
                        return;
                    }
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::warn!(
            "stopping: finishing the current object; the watermark will not pass unfinished work"
        );
        set.store(true, Ordering::SeqCst);
    });
    flag
}

/// A notification each time SIGHUP arrives (listening starts now): `run` reloads its
/// configuration. Without SIGHUP (not Unix), it never fires.
pub fn reload_on_hangup() -> Arc<tokio::sync::Notify> {
    let notify = Arc::new(tokio::sync::Notify::new());
    #[cfg(unix)]
    {
        let fire = notify.clone();
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(mut hup) => {
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        tracing::info!("SIGHUP: reloading the configuration");
                        fire.notify_one();
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for SIGHUP; reload by restarting"),
        }
    }
    notify
}
