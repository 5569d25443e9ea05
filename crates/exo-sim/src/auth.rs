//! The Entra ID token endpoint (client credentials) and bearer-token checks.
//!
//! Shapes follow Microsoft's documentation of the v2.0 client-credentials flow and of AADSTS
//! errors (see PROTOCOL.md).

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A client certificate the emulator trusts: its thumbprints (base64url, as the `x5t#S256`
/// and `x5t` headers carry them) and RSA public key.
#[derive(Clone)]
pub struct TrustedCert {
    /// SHA-256 of the DER (`x5t#S256`).
    pub thumbprint_s256: String,
    /// SHA-1 of the DER (`x5t`).
    pub thumbprint_sha1: String,
    pub key: DecodingKey,
}

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("no PEM CERTIFICATE block found")]
    NoCertificate,
    #[error("the certificate's base64 is invalid: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("the certificate's DER is malformed ({0})")]
    Der(&'static str),
}

/// Reads one DER TLV at `pos`: (tag, content range, next position).
fn der_tlv(der: &[u8], pos: usize) -> Result<(u8, usize, usize), CertError> {
    let tag = *der.get(pos).ok_or(CertError::Der("truncated tag"))?;
    let first = *der.get(pos + 1).ok_or(CertError::Der("truncated length"))?;
    let (len, start) = if first & 0x80 == 0 {
        (usize::from(first), pos + 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(CertError::Der("unsupported length"));
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8)
                | usize::from(
                    *der.get(pos + 2 + i)
                        .ok_or(CertError::Der("truncated length"))?,
                );
        }
        (len, pos + 2 + n)
    };
    let end = start
        .checked_add(len)
        .ok_or(CertError::Der("length overflow"))?;
    if end > der.len() {
        return Err(CertError::Der("content past the end"));
    }
    Ok((tag, start, end))
}

/// Parses a PEM certificate (the first CERTIFICATE block).
pub fn trusted_cert_from_pem(pem: &str) -> Result<TrustedCert, CertError> {
    let begin = "-----BEGIN CERTIFICATE-----";
    let end = "-----END CERTIFICATE-----";
    let start = pem.find(begin).ok_or(CertError::NoCertificate)? + begin.len();
    let stop = pem[start..].find(end).ok_or(CertError::NoCertificate)? + start;
    let b64: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = STANDARD.decode(b64)?;
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version?, serial, sigAlg,
    // issuer, validity, subject, subjectPublicKeyInfo SEQUENCE { alg, BIT STRING } … } … }
    let (_, cert_start, _) = der_tlv(&der, 0)?;
    let (_, tbs_start, tbs_end) = der_tlv(&der, cert_start)?;
    let mut pos = tbs_start;
    let (tag, _, next) = der_tlv(&der, pos)?;
    if tag == 0xa0 {
        pos = next;
    }
    for _ in 0..5 {
        let (_, _, next) = der_tlv(&der, pos)?;
        pos = next;
    }
    if pos >= tbs_end {
        return Err(CertError::Der("no subjectPublicKeyInfo"));
    }
    let (_, spki_start, _) = der_tlv(&der, pos)?;
    let (_, _, alg_end) = der_tlv(&der, spki_start)?;
    let (tag, bits_start, bits_end) = der_tlv(&der, alg_end)?;
    if tag != 0x03 || bits_end <= bits_start {
        return Err(CertError::Der("public key is not a BIT STRING"));
    }
    let rsa_public_key = &der[bits_start + 1..bits_end];
    Ok(TrustedCert {
        thumbprint_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(&der)),
        thumbprint_sha1: URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &der,
        )),
        key: DecodingKey::from_rsa_der(rsa_public_key),
    })
}

/// An Entra ID token-endpoint error.
#[derive(Debug, Clone)]
pub struct AadError {
    pub status: u16,
    pub error: &'static str,
    pub code: u32,
    pub description: String,
}

impl AadError {
    fn new(status: u16, error: &'static str, code: u32, description: impl Into<String>) -> Self {
        AadError {
            status,
            error,
            code,
            description: description.into(),
        }
    }

    /// The JSON body Entra ID sends: error, error_description (with trace lines),
    /// error_codes, timestamp, trace_id, correlation_id, error_uri.
    pub fn body(&self, now: jiff::Timestamp, login_base: &str) -> serde_json::Value {
        let trace = uuid::Uuid::new_v4();
        let correlation = uuid::Uuid::new_v4();
        let ts = now.strftime("%Y-%m-%d %H:%M:%SZ").to_string();
        serde_json::json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {ts}",
                self.code, self.description
            ),
            "error_codes": [self.code],
            "timestamp": ts,
            "trace_id": trace.to_string(),
            "correlation_id": correlation.to_string(),
            "error_uri": format!("{login_base}/error?code={}", self.code),
        })
    }
}

/// What the token endpoint needs to know.
pub struct TokenPolicy<'a> {
    /// The names the tenant may be addressed by in the path: its initial domain and its id.
    pub tenant_names: [&'a str; 2],
    /// The tenant's name in messages.
    pub tenant: &'a str,
    /// The one scope accepted: the Exchange Online resource of the tenant's cloud + `/.default`.
    pub scope: &'a str,
    pub client_id: &'a str,
    pub client_secret: Option<&'a str>,
    pub cert: Option<&'a TrustedCert>,
    /// The URLs the client may use as the assertion's `aud`.
    pub audiences: Vec<String>,
    /// Wall-clock seconds (assertions are checked against real time, as Entra does).
    pub wall_now: i64,
}

#[derive(Deserialize)]
struct AssertionClaims {
    aud: serde_json::Value,
    iss: Option<String>,
    sub: Option<String>,
    exp: Option<i64>,
    nbf: Option<i64>,
}

/// Checks a client-credentials request (form fields); `Ok(())` when a token may be issued.
pub fn check_token_request(
    path_tenant: &str,
    form: &[(String, String)],
    policy: &TokenPolicy<'_>,
) -> Result<(), AadError> {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if !policy
        .tenant_names
        .iter()
        .any(|t| path_tenant.eq_ignore_ascii_case(t))
    {
        return Err(AadError::new(
            400,
            "invalid_request",
            90002,
            format!(
                "Tenant '{path_tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        ));
    }
    let Some(grant) = field("grant_type") else {
        return Err(AadError::new(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        ));
    };
    if grant != "client_credentials" {
        return Err(AadError::new(
            400,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant}'."),
        ));
    }
    let Some(client_id) = field("client_id") else {
        return Err(AadError::new(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        ));
    };
    if client_id != policy.client_id {
        return Err(AadError::new(
            400,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                policy.tenant
            ),
        ));
    }
    match field("scope") {
        None => {
            return Err(AadError::new(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            ));
        }
        Some(s) if !s.ends_with("/.default") => {
            return Err(AadError::new(
                400,
                "invalid_scope",
                1002012,
                format!(
                    "The provided value for scope {s} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                ),
            ));
        }
        // Another cloud's Exchange resource (or any other resource): this cloud's directory
        // has no service principal of that name.
        Some(s) if s != policy.scope => {
            let resource = s.trim_end_matches("/.default");
            return Err(AadError::new(
                400,
                "invalid_resource",
                500011,
                format!(
                    "The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
                    policy.tenant
                ),
            ));
        }
        Some(_) => {}
    }
    if let Some(secret) = field("client_secret") {
        return match policy.client_secret {
            Some(expected) if constant_time_eq(secret.as_bytes(), expected.as_bytes()) => Ok(()),
            _ => Err(AadError::new(
                401,
                "invalid_client",
                7000215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
            )),
        };
    }
    if let Some(assertion) = field("client_assertion") {
        if field("client_assertion_type") != Some(ASSERTION_TYPE) {
            return Err(AadError::new(
                400,
                "invalid_request",
                700022,
                format!("The client_assertion_type must be '{ASSERTION_TYPE}'."),
            ));
        }
        return check_assertion(assertion, client_id, policy);
    }
    Err(AadError::new(
        401,
        "invalid_client",
        7000216,
        "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
    ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn check_assertion(
    assertion: &str,
    client_id: &str,
    policy: &TokenPolicy<'_>,
) -> Result<(), AadError> {
    let malformed = |why: &str| {
        AadError::new(
            401,
            "invalid_client",
            50027,
            format!("JWT token is invalid or malformed ({why})."),
        )
    };
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| malformed("header"))?;
    let Some(cert) = policy.cert else {
        return Err(AadError::new(
            401,
            "invalid_client",
            700027,
            "Client assertion contains an invalid signature. [Reason - The key was not found.]",
        ));
    };
    // Only the two pairs MSAL sends (msal-node `ClientAssertion.ts`): PS256 with the SHA-256
    // thumbprint in `x5t#S256`, or RS256 with the SHA-1 thumbprint in `x5t`. RS256 with
    // `x5t#S256` is refused as Entra ID refuses it (MicrosoftDocs/entra-docs PR 1301).
    let (thumb, expected) = match header.alg {
        Algorithm::PS256 => (header.x5t_s256.as_deref(), cert.thumbprint_s256.as_str()),
        Algorithm::RS256 => (header.x5t.as_deref(), cert.thumbprint_sha1.as_str()),
        _ => return Err(malformed("the algorithm must be PS256 or RS256")),
    };
    let Some(thumb) = thumb else {
        return Err(AadError::new(
            401,
            "invalid_client",
            700027,
            "The certificate with identifier used to sign the client assertion is not registered on application.",
        ));
    };
    if thumb != expected {
        return Err(AadError::new(
            401,
            "invalid_client",
            700027,
            format!(
                "Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '{thumb}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]"
            ),
        ));
    }
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims = HashSet::new();
    let data = jsonwebtoken::decode::<AssertionClaims>(assertion, &cert.key, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => AadError::new(
                401,
                "invalid_client",
                700027,
                "Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value.]",
            ),
            _ => malformed("claims"),
        })?;
    let c = data.claims;
    if c.iss.as_deref() != Some(client_id) || c.sub.as_deref() != Some(client_id) {
        return Err(AadError::new(
            401,
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .",
        ));
    }
    let aud_ok = match &c.aud {
        serde_json::Value::String(a) => policy.audiences.iter().any(|x| x == a),
        serde_json::Value::Array(v) => v.iter().any(|a| {
            a.as_str()
                .is_some_and(|a| policy.audiences.iter().any(|x| x == a))
        }),
        _ => false,
    };
    if !aud_ok {
        return Err(AadError::new(
            401,
            "invalid_client",
            700023,
            "Client assertion audience claim does not match Realm issuer. Review the documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .",
        ));
    }
    const SKEW: i64 = 300;
    let in_range = match c.exp {
        Some(exp) => exp + SKEW > policy.wall_now,
        None => false,
    } && c.nbf.is_none_or(|nbf| nbf - SKEW <= policy.wall_now);
    if !in_range {
        return Err(AadError::new(
            401,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range. Ensure that the access token is being used within the valid time range.",
        ));
    }
    Ok(())
}

/// Claims of the access tokens the emulator issues.
#[derive(Serialize, Deserialize)]
struct AccessClaims {
    aud: String,
    iss: String,
    tid: String,
    appid: String,
    roles: Vec<String>,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
}

/// Issues an access token (an HS256 JWT signed with the instance secret) valid from `now`
/// (simulated seconds) for `lifetime` seconds.
pub fn issue_access_token(
    secret: &[u8],
    audience: &str,
    tenant: &str,
    client_id: &str,
    now: i64,
    lifetime: u64,
) -> String {
    let claims = AccessClaims {
        aud: audience.into(),
        iss: format!("https://sts.windows.net/{tenant}/"),
        tid: tenant.into(),
        appid: client_id.into(),
        roles: vec!["Exchange.ManageAsApp".into()],
        iat: now,
        nbf: now,
        exp: now.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX)),
        jti: uuid::Uuid::new_v4().to_string(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap_or_default()
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    Missing,
    Invalid,
    Expired,
}

/// Checks an `Authorization` header value against the instance secret and simulated time.
pub fn check_bearer(header: Option<&str>, secret: &[u8], now: i64) -> Result<(), BearerError> {
    let value = header.ok_or(BearerError::Missing)?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or(BearerError::Invalid)?
        .trim();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims = HashSet::new();
    let data =
        jsonwebtoken::decode::<AccessClaims>(token, &DecodingKey::from_secret(secret), &validation)
            .map_err(|_| BearerError::Invalid)?;
    if data.claims.exp <= now {
        return Err(BearerError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_expire_by_the_given_clock() {
        let secret = [7u8; 32];
        let t = issue_access_token(
            &secret,
            "https://outlook.office365.com",
            "contoso",
            "app",
            1000,
            60,
        );
        let h = format!("Bearer {t}");
        assert_eq!(check_bearer(Some(&h), &secret, 1059), Ok(()));
        assert_eq!(
            check_bearer(Some(&h), &secret, 1060),
            Err(BearerError::Expired)
        );
        assert_eq!(
            check_bearer(Some(&h), &[8u8; 32], 1000),
            Err(BearerError::Invalid)
        );
        assert_eq!(check_bearer(None, &secret, 1000), Err(BearerError::Missing));
        assert_eq!(
            check_bearer(Some(&t), &secret, 1000),
            Err(BearerError::Invalid)
        );
    }

    #[test]
    fn garbage_certificates_are_refused_without_panicking() {
        for pem in [
            "",
            "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\nMIIBCgKCAQEA\n-----END CERTIFICATE-----",
        ] {
            assert!(trusted_cert_from_pem(pem).is_err(), "{pem}");
        }
    }
}
