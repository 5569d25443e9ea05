//! The sockets: for each DC a plain LDAP port, an LDAPS port and (a GC) a global-catalog LDAPS
//! port on 127.0.0.1, TLS from a CA made at start, and the connection-level rules:
//!
//! - **MaxConnIdleTime** (KB 315071: "If a connection is idle for more than this time, the LDAP
//!   server returns an LDAP disconnect notification"): the Notice of Disconnection is the
//!   unsolicited notification of RFC 4511 4.4.1 (messageID 0, ExtendedResponse named
//!   1.3.6.1.4.1.1466.20036, resultCode unavailable), then the connection is closed.
//! - The same notice on demand ([`WinAd::disconnect_all`], a DC shutting down) or after a number
//!   of pages ([`Faults::disconnect_after_pages`]), and paging cookies discarded on demand
//!   ([`WinAd::evict_paging_cookies`], the pool pressure of MaxResultSetSize).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use ldap3_proto::LdapCodec;
use ldap3_proto::proto::{LdapExtendedResponse, LdapMsg, LdapOp, LdapResult, LdapResultCode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::Framed;

use crate::handler::handle;
use crate::model::Directory;
use crate::search::SearchFaults;
use crate::session::Session;

/// The OID of the Notice of Disconnection (RFC 4511 4.4.1).
pub const NOTICE_OF_DISCONNECTION: &str = "1.3.6.1.4.1.1466.20036";

/// Faults a test switches on while the server runs.
#[derive(Debug, Default)]
pub struct Faults {
    /// Simulated seconds each returned entry costs against MaxQueryDuration (0: none).
    pub cost_per_entry_secs: AtomicU64,
    /// Every search answers this many milliseconds late (a slow query).
    pub search_delay_ms: AtomicU64,
    /// After this many pages on one connection, a Notice of Disconnection, once (then it is
    /// reset to 0: never).
    pub disconnect_after_pages: AtomicU64,
}

pub(crate) struct Shared {
    pub dir: Mutex<Directory>,
    pub faults: Faults,
    /// Bumped by `disconnect_all`: every connection sends a notice and closes.
    pub disconnect: tokio::sync::watch::Sender<u64>,
    /// Bumped by `evict_paging_cookies`: every connection forgets its paged searches.
    pub evict_epoch: AtomicU64,
    pub notices_sent: AtomicU64,
    pub connections: AtomicU64,
}

pub(crate) fn notice() -> LdapMsg {
    LdapMsg {
        msgid: 0,
        op: LdapOp::ExtendedResponse(LdapExtendedResponse {
            res: LdapResult {
                code: LdapResultCode::Unavailable,
                matcheddn: String::new(),
                message: String::new(),
                referral: Vec::new(),
            },
            name: Some(NOTICE_OF_DISCONNECTION.to_string()),
            value: None,
        }),
        ctrl: Vec::new(),
    }
}

/// Accepts connections on `listener` until aborted.
pub(crate) fn listen(
    listener: TcpListener,
    shared: Arc<Shared>,
    dc: usize,
    gc: bool,
    tls: Option<TlsAcceptor>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            shared.connections.fetch_add(1, Ordering::Relaxed);
            let shared = shared.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            serve(stream, shared, dc, gc, true).await;
                        }
                    }
                    None => serve(stream, shared, dc, gc, false).await,
                }
            });
        }
    })
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    shared: Arc<Shared>,
    dc: usize,
    gc: bool,
    tls: bool,
) {
    let mut framed = Framed::new(stream, LdapCodec::default());
    let mut session = Session::new(tls);
    let mut disconnect = shared.disconnect.subscribe();
    let mut evict_seen = shared.evict_epoch.load(Ordering::SeqCst);
    loop {
        let idle = {
            let dir = match shared.dir.lock() {
                Ok(dir) => dir,
                Err(_) => return,
            };
            Duration::from_secs(dir.policies.max_conn_idle_secs.max(1))
        };
        let msg = tokio::select! {
            next = tokio::time::timeout(idle, framed.next()) => match next {
                Err(_) => {
                    // MaxConnIdleTime
                    let _ = framed.send(notice()).await;
                    shared.notices_sent.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Ok(Some(Ok(msg))) => msg,
                Ok(_) => return, // closed, or a message ldap3_proto cannot decode
            },
            _ = disconnect.changed() => {
                let _ = framed.send(notice()).await;
                shared.notices_sent.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let epoch = shared.evict_epoch.load(Ordering::SeqCst);
        if epoch != evict_seen {
            session.result_sets.clear();
            evict_seen = epoch;
        }
        let is_search = matches!(msg.op, LdapOp::SearchRequest(_));
        let faults = SearchFaults {
            cost_per_entry_secs: shared.faults.cost_per_entry_secs.load(Ordering::Relaxed),
        };
        let replies = {
            let Ok(mut dir) = shared.dir.lock() else {
                return;
            };
            let dc_spec = dir.dcs[dc].clone();
            let port = crate::search::Port {
                dc: &dc_spec,
                gc,
                faults,
            };
            handle(&mut dir, port, &mut session, msg)
        };
        let delay = shared.faults.search_delay_ms.load(Ordering::Relaxed);
        if is_search && delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        for reply in replies {
            if framed.send(reply).await.is_err() {
                return;
            }
        }
        let after = shared.faults.disconnect_after_pages.load(Ordering::Relaxed);
        if after > 0
            && session.pages_served >= after
            && shared
                .faults
                .disconnect_after_pages
                .compare_exchange(after, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            let _ = framed.send(notice()).await;
            shared.notices_sent.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
}

/// Where one running DC answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningDc {
    /// Its dnsHostName.
    pub host: String,
    /// Plain LDAP (simple binds refused: signing required).
    pub ldap: SocketAddr,
    /// LDAPS.
    pub ldaps: SocketAddr,
    /// The global catalog over TLS (GCs only).
    pub gc_ldaps: Option<SocketAddr>,
}

/// A running winad forest; dropping it stops every listener.
pub struct WinAd {
    pub dcs: Vec<RunningDc>,
    ca_pem: String,
    pub(crate) shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for WinAd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WinAd").field("dcs", &self.dcs).finish()
    }
}

impl Drop for WinAd {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.shared.disconnect.send_modify(|e| *e += 1);
    }
}

impl WinAd {
    /// Starts every DC of `spec` on ports of 127.0.0.1 (in the calling tokio runtime).
    pub async fn start(spec: crate::spec::ForestSpec) -> std::io::Result<WinAd> {
        let dir = spec.build();
        let hosts: Vec<String> = dir.dcs.iter().map(|d| d.host.clone()).collect();
        let (ca_pem, acceptor) = crate::tls::acceptor(&hosts)?;
        let shared = Arc::new(Shared {
            dir: Mutex::new(dir),
            faults: Faults::default(),
            disconnect: tokio::sync::watch::channel(0).0,
            evict_epoch: AtomicU64::new(0),
            notices_sent: AtomicU64::new(0),
            connections: AtomicU64::new(0),
        });
        let mut dcs = Vec::new();
        let mut tasks = Vec::new();
        let specs = shared
            .dir
            .lock()
            .map(|d| d.dcs.clone())
            .map_err(|_| std::io::Error::other("directory lock poisoned"))?;
        for (index, dc) in specs.iter().enumerate() {
            let ldap = TcpListener::bind("127.0.0.1:0").await?;
            let ldaps = TcpListener::bind("127.0.0.1:0").await?;
            let mut running = RunningDc {
                host: dc.host.clone(),
                ldap: ldap.local_addr()?,
                ldaps: ldaps.local_addr()?,
                gc_ldaps: None,
            };
            tasks.push(listen(ldap, shared.clone(), index, false, None));
            tasks.push(listen(
                ldaps,
                shared.clone(),
                index,
                false,
                Some(acceptor.clone()),
            ));
            if dc.gc {
                let gc = TcpListener::bind("127.0.0.1:0").await?;
                running.gc_ldaps = Some(gc.local_addr()?);
                tasks.push(listen(
                    gc,
                    shared.clone(),
                    index,
                    true,
                    Some(acceptor.clone()),
                ));
            }
            dcs.push(running);
        }
        Ok(WinAd {
            dcs,
            ca_pem,
            shared,
            tasks,
        })
    }

    /// The DC whose dnsHostName is `host`.
    pub fn dc(&self, host: &str) -> &RunningDc {
        self.dcs
            .iter()
            .find(|d| d.host.eq_ignore_ascii_case(host))
            .unwrap_or_else(|| panic!("winad has no DC {host}"))
    }

    /// The PEM of the CA that issued every DC's certificate (names: 127.0.0.1 and each DC).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Every open connection gets a Notice of Disconnection and is closed.
    pub fn disconnect_all(&self) {
        self.shared.disconnect.send_modify(|e| *e += 1);
    }

    /// Every connection forgets its paged-search states: the next page request with an old
    /// cookie gets `unavailableCriticalExtension`.
    pub fn evict_paging_cookies(&self) {
        self.shared.evict_epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Reads or changes the directory.
    pub fn with_directory<T>(&self, f: impl FnOnce(&mut Directory) -> T) -> T {
        let mut guard = match self.shared.dir.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// `(DC host, DN)` of every modify applied.
    pub fn modifies(&self) -> Vec<(String, String)> {
        self.with_directory(|d| d.modifies.clone())
    }

    /// Notices of Disconnection sent so far.
    pub fn notices_sent(&self) -> u64 {
        self.shared.notices_sent.load(Ordering::Relaxed)
    }

    /// Connections accepted so far (all ports).
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }
}
