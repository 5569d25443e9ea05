//! The listener: plain HTTP on loopback, TLS (a certificate and key from files, rustls) when
//! configured — which the configuration requires beyond loopback. Once listening, the agent
//! writes where it listens into `<state_dir>/api.json` (owner-only), for the CLI on this
//! machine to find it; the file is removed when the server stops.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use exo_writeback_agent::config::ApiSettings;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use crate::routes;
use crate::state::AppState;

/// The file a running agent describes its listener in.
pub const ENDPOINT_FILE: &str = "api.json";

/// Where a running agent listens, as `api.json` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The URL a client on this machine uses.
    pub url: String,
    /// The address to connect to (the URL's host may be a name the certificate holds).
    pub address: SocketAddr,
    pub tls: bool,
    pub pid: u32,
}

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "cannot listen on api.listen {listen}: {io} (another agent, or another service, uses it?)"
    )]
    Bind {
        listen: SocketAddr,
        io: std::io::Error,
    },
    #[error("api.tls_cert_file {}: {problem}", path.display())]
    Certificate { path: PathBuf, problem: String },
    #[error("api.tls_key_file {}: {problem}", path.display())]
    Key { path: PathBuf, problem: String },
    #[error("the TLS settings cannot be used: {0}")]
    Tls(String),
    #[error("cannot write {}: {io}", path.display())]
    Endpoint { path: PathBuf, io: std::io::Error },
}

/// A running server.
pub struct Server {
    handle: Handle<SocketAddr>,
    tls: Option<RustlsConfig>,
    endpoint: Endpoint,
    endpoint_file: PathBuf,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// The rustls configuration of a certificate chain and key (PEM files).
pub fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, ServerError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ServerError::Certificate {
            path: cert.to_path_buf(),
            problem: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(ServerError::Certificate {
            path: cert.to_path_buf(),
            problem: "no PEM certificate in it".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| ServerError::Key {
        path: key.to_path_buf(),
        problem: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The first DNS name of a PEM certificate (for clients connecting to loopback).
fn first_dns_name(cert: &Path) -> Option<String> {
    let der = CertificateDer::pem_file_iter(cert).ok()?.next()?.ok()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&der).ok()?;
    let san = parsed.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|n| match n {
        x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
        _ => None,
    })
}

impl Server {
    /// Listens on `settings.listen` and serves the routes.
    pub async fn start(
        state: Arc<AppState>,
        settings: &ApiSettings,
        state_dir: &Path,
    ) -> Result<Server, ServerError> {
        let listen = settings.listen;
        let listener = std::net::TcpListener::bind(listen)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|io| ServerError::Bind { listen, io })?;
        let local = listener
            .local_addr()
            .map_err(|io| ServerError::Bind { listen, io })?;
        // A client on this machine connects to loopback when the agent listens everywhere.
        let address = match local.ip() {
            ip if ip.is_unspecified() && ip.is_ipv4() => {
                SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, local.port()))
            }
            ip if ip.is_unspecified() => {
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, local.port()))
            }
            _ => local,
        };
        let handle = Handle::new();
        let app = routes::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let (tls, url, task) = match (&settings.tls_cert_file, &settings.tls_key_file) {
            (Some(cert), Some(key)) => {
                let rustls = RustlsConfig::from_config(Arc::new(tls_config(cert, key)?));
                let host = first_dns_name(cert).unwrap_or_else(|| address.ip().to_string());
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host
                };
                let server = axum_server::from_tcp_rustls(listener, rustls.clone())
                    .map_err(|io| ServerError::Bind { listen, io })?
                    .handle(handle.clone());
                let task = tokio::spawn(server.serve(app));
                (
                    Some(rustls),
                    format!("https://{host}:{}", address.port()),
                    task,
                )
            }
            _ => {
                let server = axum_server::from_tcp(listener)
                    .map_err(|io| ServerError::Bind { listen, io })?
                    .handle(handle.clone());
                let task = tokio::spawn(server.serve(app));
                (None, format!("http://{address}"), task)
            }
        };
        let endpoint = Endpoint {
            url: url.clone(),
            address,
            tls: tls.is_some(),
            pid: std::process::id(),
        };
        let endpoint_file = state_dir.join(ENDPOINT_FILE);
        write_private(&endpoint_file, &endpoint)?;
        state.set_url(url);
        Ok(Server {
            handle,
            tls,
            endpoint,
            endpoint_file,
            task,
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Takes a new certificate and key (SIGHUP); connections in flight keep theirs.
    pub async fn reload_tls(&self, settings: &ApiSettings) -> Result<(), ServerError> {
        if let (Some(current), Some(cert), Some(key)) =
            (&self.tls, &settings.tls_cert_file, &settings.tls_key_file)
        {
            current.reload_from_config(Arc::new(tls_config(cert, key)?));
        }
        Ok(())
    }

    /// Stops accepting, lets requests in flight finish for up to `grace`, and removes
    /// `api.json`.
    pub async fn stop(self, grace: Duration) {
        self.handle.graceful_shutdown(Some(grace));
        let _ = tokio::time::timeout(grace + Duration::from_secs(1), self.task).await;
        let _ = std::fs::remove_file(&self.endpoint_file);
    }
}

fn write_private(path: &Path, endpoint: &Endpoint) -> Result<(), ServerError> {
    use std::io::Write;
    let text = serde_json::to_string_pretty(endpoint).unwrap_or_default();
    let tmp = path.with_extension("json.tmp");
    let write = || -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|io| ServerError::Endpoint {
        path: path.to_path_buf(),
        io,
    })
}
