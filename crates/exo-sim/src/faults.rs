//! Fault injection: rules, and a listener whose connections can be reset for real (the
//! socket is closed with `SO_LINGER` 0, so the peer receives a TCP RST and no response).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Which requests a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// The token endpoint.
    Token,
    /// Every InvokeCommand request (first pages and nextLink pages).
    Invoke,
    /// InvokeCommand requests that follow a nextLink (carry a skiptoken).
    #[serde(rename = "nextlink", alias = "next_link")]
    NextLink,
    /// InvokeCommand requests that start a listing (no skiptoken). Rules only: such requests
    /// are counted as `Invoke`.
    FirstPage,
    /// Token and InvokeCommand requests.
    Any,
}

impl Endpoint {
    /// True when a rule for `self` applies to a request on `actual` (never `Any`).
    pub fn covers(self, actual: Endpoint) -> bool {
        match self {
            Endpoint::Any => true,
            Endpoint::Invoke => matches!(actual, Endpoint::Invoke | Endpoint::NextLink),
            Endpoint::FirstPage => actual == Endpoint::Invoke,
            other => other == actual,
        }
    }
}

/// What happens to a faulted request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// 429 with `Retry-After: <secs>` (may be fractional).
    TooManyRequests { retry_after_secs: f64 },
    /// 500 with the service's InternalServerError body.
    InternalServerError,
    /// 503 with a plain-text body.
    ServiceUnavailable,
    /// The request is answered normally after a delay.
    Delay { ms: u64 },
    /// The TCP connection is reset without a response.
    ResetConnection,
    /// The normal response, its body cut in half (Content-Length matches the cut body).
    TruncatedJson,
    /// The normal response with a syntax error in its body.
    MalformedJson,
    /// A valid bearer token is refused as expired (InvokeCommand only).
    ExpiredToken,
    /// The response's `@odata.nextLink` carries a skiptoken the service will refuse
    /// (InvokeCommand only; the rule is used even when the response has no nextLink).
    BrokenNextLink,
    /// The normal response with every occurrence of `text` sent in Latin-1 instead of UTF-8:
    /// each character U+0080–U+00FF becomes its single byte, which is not valid UTF-8
    /// (beyond U+00FF: `?`). Give a text unique to one mailbox's property, e.g. a value set
    /// just before; `text` must hold a character of U+0080–U+00FF. Without `count` the
    /// mailbox stays "broken" on every page that carries it.
    InvalidUtf8 { text: String },
    /// The normal (HTTP 200) response with these `@adminapi.errors` entries beside its
    /// records, as cmdlet errors that do not stop a cmdlet are reported (InvokeCommand only).
    AdminApiErrors { errors: Vec<String> },
    /// One of the ExchangeOnlineManagement module's named transient back-end exceptions
    /// (`DCOverloadedException`, `SuitabilityDirectoryException`, `ServerInMMException`,
    /// `ADServerSettingsChangedException`, `StorageTransientException`) under this HTTP
    /// status (default 400): an "Error executing cmdlet" body whose `details[0].message`
    /// names `exception` (InvokeCommand only).
    TransientException {
        exception: String,
        #[serde(default = "default_transient_status")]
        status: u16,
    },
}

fn default_transient_status() -> u16 {
    400
}

/// `body` with every occurrence of `text` encoded in Latin-1 (see
/// [`FaultKind::InvalidUtf8`]).
pub fn latin1_occurrences(body: &[u8], text: &str) -> Vec<u8> {
    let needle = text.as_bytes();
    if needle.is_empty() {
        return body.to_vec();
    }
    let latin1: Vec<u8> = text
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect();
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i..].starts_with(needle) {
            out.extend_from_slice(&latin1);
            i += needle.len();
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

impl FaultKind {
    pub(crate) fn applies_to(&self, e: Endpoint) -> bool {
        match self {
            FaultKind::ExpiredToken
            | FaultKind::BrokenNextLink
            | FaultKind::InvalidUtf8 { .. }
            | FaultKind::AdminApiErrors { .. }
            | FaultKind::TransientException { .. } => {
                matches!(e, Endpoint::Invoke | Endpoint::NextLink)
            }
            _ => true,
        }
    }
}

/// A fault rule: which requests, what fault, how often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    pub endpoint: Endpoint,
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Fire for this many matching requests, then the rule is removed (`None` = forever).
    #[serde(default)]
    pub count: Option<u32>,
    /// Fire with this probability (seeded RNG, see `SimConfig::fault_seed`); `None` = always.
    #[serde(default)]
    pub probability: Option<f64>,
    /// Let this many matching requests through before the rule starts firing.
    #[serde(default)]
    pub skip: u32,
}

impl FaultRule {
    /// A rule firing on the next `count` requests to `endpoint`.
    pub fn times(endpoint: Endpoint, kind: FaultKind, count: u32) -> Self {
        FaultRule {
            endpoint,
            kind,
            count: Some(count),
            probability: None,
            skip: 0,
        }
    }
}

/// Per-connection control: lets a handler reset its own connection.
#[derive(Debug)]
pub struct ConnControl {
    killed: AtomicBool,
    fd: RawFd,
    read_waker: Mutex<Option<Waker>>,
}

impl ConnControl {
    /// Resets the connection: `SO_LINGER` 0, then the IO fails so the server drops (closes)
    /// the socket, which sends an RST.
    pub fn reset(&self) {
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: `fd` belongs to the TcpStream owned by this connection's KillableStream,
        // which is alive while a handler runs on it; setsockopt does not take ownership.
        unsafe {
            libc::setsockopt(
                self.fd,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &linger as *const libc::linger as *const libc::c_void,
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
        self.killed.store(true, Ordering::SeqCst);
        if let Some(w) = self
            .read_waker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            w.wake();
        }
    }
}

/// A TCP stream that fails on demand.
pub struct KillableStream {
    inner: TcpStream,
    ctl: Arc<ConnControl>,
}

fn reset_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "reset by fault injection")
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.ctl.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(reset_error()));
        }
        *self
            .ctl
            .read_waker
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.ctl.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(reset_error()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.ctl.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(reset_error()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.ctl.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(reset_error()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The emulator's listener: TCP, with a [`ConnControl`] per connection.
pub struct KillableListener {
    pub(crate) inner: TcpListener,
}

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let ctl = Arc::new(ConnControl {
                        killed: AtomicBool::new(false),
                        fd: stream.as_raw_fd(),
                        read_waker: Mutex::new(None),
                    });
                    return (KillableStream { inner: stream, ctl }, addr);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Connect info handed to handlers: the peer and the connection's control.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub control: Arc<ConnControl>,
}

impl Connected<IncomingStream<'_, KillableListener>> for ConnInfo {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        ConnInfo {
            peer: *stream.remote_addr(),
            control: stream.io().ctl.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_from_json() {
        let r: FaultRule = serde_json::from_str(
            r#"{"endpoint":"invoke","kind":"too_many_requests","retry_after_secs":1.5,"count":2}"#,
        )
        .unwrap();
        assert_eq!(
            r,
            FaultRule::times(
                Endpoint::Invoke,
                FaultKind::TooManyRequests {
                    retry_after_secs: 1.5
                },
                2
            )
        );
        let r: FaultRule = serde_json::from_str(
            r#"{"endpoint":"nextlink","kind":"reset_connection","probability":0.5}"#,
        )
        .unwrap();
        assert_eq!(r.probability, Some(0.5));
        assert!(serde_json::from_str::<FaultRule>(r#"{"endpoint":"x","kind":"delay"}"#).is_err());
    }

    #[test]
    fn latin1_makes_exactly_the_text_invalid_utf8() {
        let body = r#"{"a":"Abteilung München","b":"München-Ost","c":"Muenchen"}"#;
        let out = latin1_occurrences(body.as_bytes(), "München-Ost");
        let err = std::str::from_utf8(&out).expect_err("invalid UTF-8");
        assert_eq!(
            &out[..err.valid_up_to()],
            r#"{"a":"Abteilung München","b":"M"#.as_bytes()
        );
        assert_eq!(out[err.valid_up_to()], 0xFC);
        assert_eq!(out.len(), body.len() - 1);
        assert_eq!(
            latin1_occurrences(body.as_bytes(), "absent"),
            body.as_bytes()
        );
        let r: FaultRule =
            serde_json::from_str(r#"{"endpoint":"invoke","kind":"invalid_utf8","text":"ü"}"#)
                .expect("rule");
        assert_eq!(r.kind, FaultKind::InvalidUtf8 { text: "ü".into() });
    }

    #[test]
    fn endpoints_cover_as_documented() {
        assert!(Endpoint::Invoke.covers(Endpoint::NextLink));
        assert!(!Endpoint::NextLink.covers(Endpoint::Invoke));
        assert!(Endpoint::Any.covers(Endpoint::Token));
        assert!(!Endpoint::Token.covers(Endpoint::Invoke));
    }
}
