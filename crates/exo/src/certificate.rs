//! The client certificate checked locally, before any request: it parses, its key is the
//! private key given, it is within its validity period; and what an administrator compares
//! with the app registration — the thumbprints (SHA-1, which the Entra admin center shows,
//! and SHA-256) and the expiry date.

use std::fmt::Write as _;

use exo_writeback_core::secret::Secret;
use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

/// From how many days before its expiry a certificate is warned about.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// What the agent shows of its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    pub subject: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    /// SHA-1 of the DER, upper-case hex: the "Thumbprint" the Entra admin center lists.
    pub sha1_thumbprint: String,
    /// SHA-256 of the DER, upper-case hex.
    pub sha256_thumbprint: String,
}

/// Why a certificate and key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateProblem {
    #[error("the certificate cannot be read: {0}")]
    Certificate(String),
    #[error(
        "the private key cannot be read (a PEM RSA private key, PKCS#8 or PKCS#1, of 2048 to 8192 bits is needed): {0}"
    )]
    Key(String),
    #[error("the private key does not belong to the certificate (their public keys differ)")]
    KeyMismatch,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02X}");
        s
    })
}

fn pem_block(pem: &str, label: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let len = pem[start..].find(&end)?;
    let b64: String = pem[start..start + len]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// The RSA modulus and exponent of a PEM private key (PKCS#8 or PKCS#1), big-endian without
/// leading zeros.
fn key_components(private_key_pem: &Secret) -> Result<(Vec<u8>, Vec<u8>), CertificateProblem> {
    let pem = private_key_pem.expose();
    let pair = if let Some(der) = pem_block(pem, "PRIVATE KEY") {
        ring::rsa::KeyPair::from_pkcs8(&der)
    } else if let Some(der) = pem_block(pem, "RSA PRIVATE KEY") {
        ring::rsa::KeyPair::from_der(&der)
    } else {
        return Err(CertificateProblem::Key(
            "no PRIVATE KEY or RSA PRIVATE KEY block".into(),
        ));
    }
    .map_err(|e| CertificateProblem::Key(e.to_string()))?;
    let c: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public().into();
    Ok((c.n, c.e))
}

fn without_leading_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[first..]
}

/// Reads the first certificate of a PEM text and checks that `private_key_pem` is its key.
pub fn inspect(
    certificate_pem: &str,
    private_key_pem: &Secret,
) -> Result<CertificateInfo, CertificateProblem> {
    let der = pem_block(certificate_pem, "CERTIFICATE").ok_or_else(|| {
        CertificateProblem::Certificate(
            "no '-----BEGIN CERTIFICATE-----' block with valid base64 (a PEM certificate is needed)"
                .into(),
        )
    })?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| CertificateProblem::Certificate(e.to_string()))?;
    let time = |t: &x509_parser::time::ASN1Time| {
        Timestamp::from_second(t.timestamp())
            .map_err(|e| CertificateProblem::Certificate(format!("a validity date: {e}")))
    };
    let info = CertificateInfo {
        subject: cert.subject().to_string(),
        not_before: time(&cert.validity().not_before)?,
        not_after: time(&cert.validity().not_after)?,
        sha1_thumbprint: hex(
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der).as_ref(),
        ),
        sha256_thumbprint: hex(&Sha256::digest(&der)),
    };
    let public = match cert.public_key().parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(k)) => k,
        Ok(_) => {
            return Err(CertificateProblem::Certificate(
                "its key is not an RSA key (Entra ID client assertions are RSA-signed)".into(),
            ));
        }
        Err(e) => return Err(CertificateProblem::Certificate(e.to_string())),
    };
    let (n, e) = key_components(private_key_pem)?;
    if without_leading_zeros(public.modulus) != without_leading_zeros(&n)
        || without_leading_zeros(public.exponent) != without_leading_zeros(&e)
    {
        return Err(CertificateProblem::KeyMismatch);
    }
    Ok(info)
}

fn date(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

impl CertificateInfo {
    /// Why the certificate cannot be used at `now` (expired, or not valid yet).
    pub fn validity_problem(&self, now: Timestamp) -> Option<String> {
        if now > self.not_after {
            Some(format!(
                "expired on {}: Entra ID refuses it (AADSTS700027). Create a new certificate, upload it to the app registration (Certificates & secrets) and point certificate_file and private_key_file at it",
                date(self.not_after)
            ))
        } else if now < self.not_before {
            Some(format!(
                "is not valid before {}: Entra ID refuses it until then. Check this machine's clock, or wait",
                date(self.not_before)
            ))
        } else {
            None
        }
    }

    /// A warning from [`EXPIRY_WARNING_DAYS`] days before the certificate expires.
    pub fn expiry_warning(&self, now: Timestamp) -> Option<String> {
        let left = self.not_after.duration_since(now);
        (left >= SignedDuration::ZERO
            && left <= SignedDuration::from_hours(24 * EXPIRY_WARNING_DAYS))
        .then(|| {
            format!(
                "expires on {} (in {} days): upload a new certificate to the app registration before then",
                date(self.not_after),
                left.as_hours() / 24
            )
        })
    }

    /// `not_after` as shown to administrators.
    pub fn expiry(&self) -> String {
        date(self.not_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_upper_case_without_separators() {
        assert_eq!(hex(&[0x0a, 0xff, 0x00]), "0AFF00");
    }

    #[test]
    fn validity_and_expiry_warning() {
        let t = |s: &str| s.parse::<Timestamp>().expect("ts");
        let info = CertificateInfo {
            subject: "CN=x".into(),
            not_before: t("2025-01-01T00:00:00Z"),
            not_after: t("2026-01-01T00:00:00Z"),
            sha1_thumbprint: String::new(),
            sha256_thumbprint: String::new(),
        };
        assert!(info.validity_problem(t("2025-06-01T00:00:00Z")).is_none());
        assert!(
            info.validity_problem(t("2026-01-01T00:00:01Z"))
                .is_some_and(|p| p.contains("expired on 2026-01-01 00:00:00 UTC"))
        );
        assert!(
            info.validity_problem(t("2024-12-31T23:59:59Z"))
                .is_some_and(|p| p.contains("not valid before 2025-01-01"))
        );
        assert!(info.expiry_warning(t("2025-12-01T00:00:00Z")).is_none());
        assert!(
            info.expiry_warning(t("2025-12-02T00:00:01Z"))
                .is_some_and(|w| w.contains("in 29 days"))
        );
        assert!(info.expiry_warning(t("2026-02-01T00:00:00Z")).is_none());
    }

    #[test]
    fn garbage_is_refused_without_echoing_the_key() {
        let key = Secret::new("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----");
        let e = inspect("nothing", &key).expect_err("no certificate");
        assert!(matches!(e, CertificateProblem::Certificate(_)), "{e}");
        assert!(!e.to_string().contains("AAAA"));
    }
}
