//! Credentials that expire: the Exchange Online certificate and the API's TLS certificate.
//! Each expiring within `notify.credential_expiry_days` is logged and announced (webhook
//! `credential_expiry`, once a day).

use exo_writeback_agent::config::{Config, EventKind};
use jiff::{SignedDuration, Timestamp};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::webhook::{Event, Notifier};

/// A credential and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiring {
    pub what: String,
    pub not_after: Timestamp,
}

fn api_certificate(config: &Config) -> Option<Expiring> {
    let path = config.api.tls_cert_file.as_ref()?;
    let der = CertificateDer::pem_file_iter(path).ok()?.next()?.ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    Some(Expiring {
        what: format!("api.tls_cert_file {}", path.display()),
        not_after: Timestamp::from_second(cert.validity().not_after.timestamp()).ok()?,
    })
}

fn exo_certificate(config: &Config) -> Option<Expiring> {
    let exo = config.exo.as_ref()?;
    let settings = exo.settings().ok()?;
    let info = settings.certificate?;
    Some(Expiring {
        what: format!(
            "exo.certificate_file {}",
            settings
                .certificate_file
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
        not_after: info.not_after,
    })
}

/// The credentials expiring within the configured days of `now`.
pub fn expiring(config: &Config, now: Timestamp) -> Vec<Expiring> {
    let within = SignedDuration::from_hours(i64::from(config.notify.credential_expiry_days) * 24);
    [exo_certificate(config), api_certificate(config)]
        .into_iter()
        .flatten()
        .filter(|e| e.not_after.duration_since(now) <= within)
        .collect()
}

/// Logs and announces every expiring credential.
pub fn announce(config: &Config, notifier: &Notifier, now: Timestamp) {
    for e in expiring(config, now) {
        let days = e.not_after.duration_since(now).as_hours() / 24;
        let summary = if days < 0 {
            format!("{} expired on {}: renew it now", e.what, e.not_after)
        } else {
            format!(
                "{} expires on {} (in {days} days): renew it",
                e.what, e.not_after
            )
        };
        tracing::warn!("{summary}");
        notifier.send(
            Event::new(EventKind::CredentialExpiry, "warning", summary)
                .detail("credential", &e.what)
                .detail("not_after", e.not_after)
                .keyed(format!("expiry:{}", e.what), SignedDuration::from_hours(24)),
        );
    }
}
