//! A CA made at start and one server certificate for every DC (subjectAltName: 127.0.0.1,
//! localhost and each DC's host name), so clients verify TLS as they must against Windows.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// The CA's PEM and an acceptor presenting a certificate it issued.
pub fn acceptor(hosts: &[String]) -> std::io::Result<(String, TlsAcceptor)> {
    let ca_key = KeyPair::generate().map_err(io)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(io)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "winad test CA");
    let ca_cert = ca_params.self_signed(&ca_key).map_err(io)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().map_err(io)?;
    let mut names = vec!["localhost".to_string()];
    names.extend(hosts.iter().cloned());
    let mut params = CertificateParams::new(names).map_err(io)?;
    params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    let cert = params.signed_by(&key, &issuer).map_err(io)?;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io)?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .map_err(io)?;
    Ok((ca_cert.pem(), TlsAcceptor::from(Arc::new(config))))
}
