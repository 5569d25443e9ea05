//! A TCP proxy between a test's client and a lab DC that can misbehave as networks do: deliver
//! the server's bytes in large bursts (segments coalesced by a middlebox or a busy client host,
//! so one read holds the end of one message and the start of the next), or go silent on its
//! open connections as a firewall does after its idle time-out (a half-open connection: nothing
//! is closed, nothing gets through), or reset them.
//!
//! Bytes only: it knows nothing of LDAP. Threads, not an async runtime, so that a test's own
//! runtime (however busy) does not pace it.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How often a pump looks at its flags, and how long the server side may stay quiet before a
/// burst being collected is sent anyway.
const TICK: Duration = Duration::from_millis(10);

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// Server-to-client bytes are held until this many are buffered (0: forwarded at once),
    /// or the server has been quiet for [`TICK`].
    burst: AtomicUsize,
    /// Connections accepted so far; those numbered below `frozen_below` forward nothing more.
    accepted: AtomicU64,
    frozen_below: AtomicU64,
    /// Streams of the open connections, to reset them.
    open: Mutex<Vec<(u64, TcpStream, TcpStream)>>,
}

/// A running proxy; dropping it stops accepting and closes every connection.
pub struct TcpProxy {
    /// Where clients connect (`127.0.0.1:<port>`).
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TcpProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpProxy")
            .field("addr", &self.addr)
            .finish()
    }
}

impl TcpProxy {
    /// Listens on a free port of 127.0.0.1 and forwards each connection to `target`.
    pub fn start(target: SocketAddr) -> std::io::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let accept = shared.clone();
        thread::spawn(move || accept_loop(listener, target, accept));
        Ok(TcpProxy { addr, shared })
    }

    /// Holds the server's bytes until `bytes` are buffered (or the server pauses), then sends
    /// them in one write: the client's reads then cut through the server's message boundaries.
    /// 0 forwards at once (the default).
    pub fn set_burst(&self, bytes: usize) {
        self.shared.burst.store(bytes, Ordering::Relaxed);
    }

    /// The connections open now go silent in both directions, without being closed — what a
    /// client sees when a firewall between it and the DC has dropped the flow after an idle
    /// time-out. New connections pass.
    pub fn freeze_open_connections(&self) {
        let accepted = self.shared.accepted.load(Ordering::SeqCst);
        self.shared.frozen_below.store(accepted, Ordering::SeqCst);
    }

    /// Resets every open connection (both sides see it closed).
    pub fn reset_open_connections(&self) {
        if let Ok(mut open) = self.shared.open.lock() {
            for (_, client, server) in open.drain(..) {
                let _ = client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
            }
        }
    }

    /// Connections accepted since the start.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.reset_open_connections();
    }
}

fn accept_loop(listener: TcpListener, target: SocketAddr, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                thread::sleep(TICK);
                continue;
            }
            Err(_) => return,
        };
        let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let id = shared.accepted.fetch_add(1, Ordering::SeqCst);
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (Ok(c1), Ok(c2), Ok(s1), Ok(s2), Ok(c3), Ok(s3)) = (
            client.try_clone(),
            client.try_clone(),
            server.try_clone(),
            server.try_clone(),
            client.try_clone(),
            server.try_clone(),
        ) else {
            continue;
        };
        if let Ok(mut open) = shared.open.lock() {
            open.push((id, c3, s3));
        }
        let up = shared.clone();
        thread::spawn(move || pump(id, c1, s1, &up, false));
        let down = shared.clone();
        thread::spawn(move || pump(id, s2, c2, &down, true));
    }
}

/// Copies `from` to `to` until either side closes; server-to-client (`downstream`) bytes are
/// collected into bursts as [`TcpProxy::set_burst`] asks. A frozen connection stops reading
/// and writing but keeps both sockets open.
fn pump(id: u64, mut from: TcpStream, mut to: TcpStream, shared: &Shared, downstream: bool) {
    let _ = from.set_read_timeout(Some(TICK));
    let mut held: Vec<u8> = Vec::new();
    let mut last_data = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        if id < shared.frozen_below.load(Ordering::SeqCst) {
            thread::sleep(TICK);
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                held.extend_from_slice(&buf[..n]);
                last_data = Instant::now();
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        let burst = if downstream {
            shared.burst.load(Ordering::Relaxed)
        } else {
            0
        };
        let due = held.len() >= burst.max(1) || (!held.is_empty() && last_data.elapsed() >= TICK);
        if due && !held.is_empty() {
            if to.write_all(&held).is_err() {
                break;
            }
            held.clear();
        }
    }
    if !held.is_empty() {
        let _ = to.write_all(&held);
    }
    let _ = to.shutdown(Shutdown::Write);
    if let Ok(mut open) = shared.open.lock() {
        open.retain(|(i, _, _)| *i != id);
    }
}
