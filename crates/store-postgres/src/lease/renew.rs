//! The lease renewer: a thread of its own, on a connection of its own, that every quarter of
//! the lease time extends each lease this process holds (or finds it taken over, and then drops
//! the writer's fence) and marks this agent as seen.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use postgres::Client;

use super::{HeldLease, Inner, LeaseName};
use crate::error::E;

impl Inner {
    /// The renewer: every quarter of the lease time, each held lease extended (or found lost)
    /// and this agent marked as seen.
    pub(super) fn renew_loop(self: Arc<Self>) {
        let period = self.ttl / 4;
        let mut client: Option<Client> = None;
        while !self.stop.load(Ordering::SeqCst) {
            let started = Instant::now();
            if client.as_ref().is_some_and(Client::is_closed) {
                client = None;
            }
            if client.is_none() {
                match self.connector.connect() {
                    Ok(c) => client = Some(c),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reach the state database to renew the leases")
                    }
                }
            }
            if let Some(c) = client.as_mut()
                && let Err(e) = self.renew_all(c)
            {
                tracing::warn!(error = %e, "renewing the leases failed; they lapse unless the next renewal works");
                if e.lost_connection() {
                    client = None;
                }
            }
            let spent = started.elapsed();
            std::thread::sleep(period.saturating_sub(spent).max(Duration::from_millis(20)));
        }
    }

    fn renew_all(&self, c: &mut Client) -> std::result::Result<(), E> {
        let held: Vec<Arc<HeldLease>> = self
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let ttl = self.ttl.as_secs_f64();
        for lease in held.iter().filter(|h| !h.is_lost()) {
            let sent = Instant::now();
            let n = c.execute(
                "UPDATE leases SET expires_at = clock_timestamp() + make_interval(secs => $4)
                 WHERE name = $1 AND holder = $2 AND epoch = $3",
                &[&lease.name.as_str(), &self.identity.id, &lease.epoch, &ttl],
            )?;
            if n == 1 {
                *lease
                    .deadline
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = sent + self.ttl;
            } else {
                lease.lost.store(true, Ordering::SeqCst);
                if lease.name == LeaseName::Writer {
                    self.fence.set(None);
                }
                tracing::error!(
                    lease = lease.name.as_str(),
                    epoch = lease.epoch,
                    "the lease was taken over by another agent: this agent stops writing"
                );
            }
        }
        if self.registered.load(Ordering::SeqCst) {
            c.execute(
                "UPDATE agents SET seen_at = clock_timestamp() WHERE id = $1",
                &[&self.identity.id],
            )?;
        }
        Ok(())
    }
}
