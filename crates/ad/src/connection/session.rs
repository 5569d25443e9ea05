//! Opening the connection: TCP/TLS, the bind, and reconnecting when it was dropped.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use std::net::SocketAddr;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, StdStream};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

use super::{AdConnection, Live};
use crate::config::{AdConfig, AuthMethod, Transport};
use crate::error::AdError;

impl AdConnection {
    // ---- connection management ----

    async fn open(&self) -> Result<Live, AdError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.transport == Transport::StartTls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let stream = self.dial().await?;
        settings = settings.set_std_stream(StdStream::Tcp(stream));
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.config.url)
            .await
            .map_err(|e| self.connect_error(e))?;
        let url = self.config.url.clone();
        let driver = tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(url = %url, error = %e, "LDAP connection closed");
            }
        });
        let bound = match self.config.auth {
            AuthMethod::Simple => {
                ldap.with_timeout(self.timeout)
                    .simple_bind(&self.config.bind_dn, self.password.expose())
                    .await
            }
            AuthMethod::Kerberos => match self.kerberos_bind(&mut ldap).await {
                Ok(result) => Ok(result),
                Err(e) => {
                    driver.abort();
                    return Err(e);
                }
            },
        };
        let result = match bound {
            Ok(r) => r,
            Err(e) => {
                driver.abort();
                return Err(match e {
                    LdapError::Timeout { .. } => AdError::Unreachable {
                        address: self.config.url.clone(),
                        timeout_secs: self.config.timeout_secs,
                        reason: "no answer to the bind request".into(),
                    },
                    LdapError::GssapiOperationError(problem) => self.kerberos_error(problem),
                    LdapError::NoGssapiToken => {
                        self.kerberos_error("the DC sent no GSSAPI token".into())
                    }
                    other => self.op_error(other, "binding as", &self.config.bind_dn, ""),
                });
            }
        };
        if result.rc != 0 {
            driver.abort();
            return Err(self.bind_error(result));
        }
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        self.counters.connects.fetch_add(1, Ordering::Relaxed);
        Ok(Live {
            ldap,
            driver,
            generation,
        })
    }

    /// The TCP connection to the DC: to the addresses the locator found (`dial`), else to the
    /// URL's host as the system resolves it; with TCP keepalive (`ad.keepalive_secs`), so that
    /// a connection a firewall dropped while idle is noticed instead of waited on.
    async fn dial(&self) -> Result<std::net::TcpStream, AdError> {
        let host = host_of(&self.config.url);
        let port = port_of(&self.config.url).unwrap_or(match self.transport {
            Transport::Ldaps => 636,
            _ => 389,
        });
        let unreachable = |reason: String| AdError::Unreachable {
            address: self.config.url.clone(),
            timeout_secs: self.config.timeout_secs,
            reason,
        };
        let addrs: Vec<SocketAddr> = if self.dial.is_empty() {
            match tokio::time::timeout(self.timeout, tokio::net::lookup_host((host.as_str(), port)))
                .await
            {
                Ok(Ok(addrs)) => addrs.collect(),
                Ok(Err(e)) => return Err(unreachable(format!("cannot resolve {host}: {e}"))),
                Err(_) => return Err(unreachable(format!("resolving {host} timed out"))),
            }
        } else {
            self.dial
                .iter()
                .map(|ip| SocketAddr::new(*ip, port))
                .collect()
        };
        let mut last = format!("{host} has no address");
        for addr in addrs {
            match tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    if self.config.keepalive_secs > 0 {
                        let every = Duration::from_secs(self.config.keepalive_secs);
                        let keepalive = socket2::TcpKeepalive::new()
                            .with_time(every)
                            .with_interval(Duration::from_secs(
                                self.config.keepalive_secs.div_ceil(4).max(1),
                            ))
                            .with_retries(4);
                        if let Err(e) =
                            socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive)
                        {
                            tracing::debug!(error = %e, "cannot set TCP keepalive");
                        }
                    }
                    return stream
                        .into_std()
                        .map_err(|e| unreachable(format!("{addr}: {e}")));
                }
                Ok(Err(e)) => last = format!("{addr}: {e}"),
                Err(_) => last = format!("{addr}: no connection within the timeout"),
            }
        }
        Err(unreachable(last))
    }

    pub(super) async fn handle(&self) -> Result<(Ldap, u64), AdError> {
        let mut live = self.live.lock().await;
        let idle = self.touch();
        if let Some(l) = live.as_ref() {
            let limit = self.config.idle_reconnect_secs;
            if !l.driver.is_finished() && (limit == 0 || idle < Duration::from_secs(limit)) {
                return Ok((l.ldap.clone(), l.generation));
            }
            if l.driver.is_finished() {
                tracing::warn!(url = %self.config.url, "LDAP connection was dropped; reconnecting");
            } else {
                tracing::info!(
                    url = %self.config.url,
                    idle_secs = idle.as_secs(),
                    "the LDAP connection was idle longer than ad.idle_reconnect_secs ({limit} s): a firewall or the DC's MaxConnIdleTime may have dropped it; reconnecting"
                );
                self.counters
                    .idle_reconnects
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        let fresh = self.open().await?;
        let handle = (fresh.ldap.clone(), fresh.generation);
        if let Some(old) = live.replace(fresh) {
            old.driver.abort();
        }
        Ok(handle)
    }

    pub(super) async fn discard(&self, generation: u64) {
        let mut live = self.live.lock().await;
        if live.as_ref().is_some_and(|l| l.generation == generation)
            && let Some(old) = live.take()
        {
            old.driver.abort();
        }
    }

    /// Run `op` once on the connection; a connection that turns out to be lost (or silent
    /// past the time-out) is discarded (the next operation reconnects) and the error returned:
    /// the caller's retry policy decides whether to send it again (the engine's writer does,
    /// for modifies).
    pub(crate) async fn run_once<T, F, Fut>(&self, op: F) -> Result<T, AdError>
    where
        F: FnOnce(Ldap) -> Fut,
        Fut: Future<Output = Result<T, AdError>>,
    {
        let (ldap, generation) = self.handle().await?;
        let result = op(ldap).await;
        if let Err(e) = &result
            && (e.is_connection_lost() || matches!(e, AdError::Timeout { .. }))
        {
            self.discard(generation).await;
        }
        result
    }

    /// Run `op` on the connection; when the connection turns out to be lost, reconnect once
    /// and run it again. Callers only pass reads (safe to repeat); modifies go through
    /// [`AdConnection::run_once`].
    pub(crate) async fn run<T, F, Fut>(&self, op: F) -> Result<T, AdError>
    where
        F: Fn(Ldap) -> Fut,
        Fut: Future<Output = Result<T, AdError>>,
    {
        let (ldap, generation) = self.handle().await?;
        match op(ldap).await {
            Err(e) if e.is_connection_lost() => {
                tracing::warn!(error = %e, "retrying once on a new connection");
                self.discard(generation).await;
                let (ldap, _) = self.handle().await?;
                op(ldap).await
            }
            // No answer in time: the connection may be half-open (a firewall dropped it
            // silently) or the DC may be slow. A new connection tells them apart: if the DC
            // cannot be reached the error says so (Unreachable); if it binds at once and the
            // operation is still not answered in time, the DC is slow, not gone.
            Err(AdError::Timeout { .. }) => {
                tracing::warn!(url = %self.config.url, "no answer in time; retrying once on a new connection");
                self.counters.slow_retries.fetch_add(1, Ordering::Relaxed);
                self.discard(generation).await;
                let (ldap, _) = self.handle().await?;
                match op(ldap).await {
                    Err(AdError::Timeout {
                        address,
                        operation,
                        timeout_secs,
                    }) => Err(AdError::SlowQuery {
                        address,
                        operation,
                        timeout_secs,
                    }),
                    other => other,
                }
            }
            other => other,
        }
    }
}

/// The port of an `ldap[s]://host:port` URL, if it names one.
pub(crate) fn port_of(url: &str) -> Option<u16> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let (host, port) = authority.rsplit_once(':')?;
    if host.starts_with('[') && !host.ends_with(']') {
        return None; // an IPv6 address without a port
    }
    port.parse().ok()
}

pub(crate) fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((host, port))
            if port.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(']')
                || authority.starts_with('[') =>
        {
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string()
        }
        _ => authority.to_string(),
    }
}

pub(super) fn tls_config(config: &AdConfig) -> Result<Arc<ClientConfig>, AdError> {
    let mut roots = RootCertStore::empty();
    match &config.ca_file {
        Some(path) => {
            let ca_error = |reason: String| AdError::CaFile {
                path: path.clone(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| ca_error(e.to_string()))?;
            for cert in certs {
                let cert = cert.map_err(|e| ca_error(e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| ca_error(format!("not a usable CA certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(ca_error("no certificate in the file".into()));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for e in &native.errors {
                tracing::warn!(error = %e, "problem loading the system certificate store");
            }
            let (added, _ignored) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                tracing::warn!("the system certificate store is empty; set ad.ca_file");
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| AdError::Tls {
            address: config.url.clone(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for (url, host) in [
            ("ldaps://127.0.0.5", "127.0.0.5"),
            ("ldaps://dc1.lab.test:636", "dc1.lab.test"),
            ("ldap://[::1]:389/", "::1"),
            ("ldaps://dc", "dc"),
        ] {
            assert_eq!(host_of(url), host, "{url}");
        }
        assert_eq!(port_of("ldaps://dc1.lab.test:3269"), Some(3269));
        assert_eq!(port_of("ldap://[::1]:389/"), Some(389));
        assert_eq!(port_of("ldaps://dc"), None);
        assert_eq!(port_of("ldap://[::1]"), None);
    }
}
