//! OAuth 2.0 client-credentials tokens from Entra ID, with a client secret or a certificate
//! (a client assertion signed as MSAL signs it), cached until shortly before they expire.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use exo_writeback_core::secret::Secret;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use crate::config::{CertificateAssertion, Credentials, ExoSettings};
use crate::error::{ExoError, ServiceError};
use crate::retry::{RetryPolicy, retry_after_of, retryable_status};

/// `client_assertion_type` for a JWT client assertion (RFC 7523).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The longest a token request waits for Entra ID (the API's time-out is much longer).
pub const TOKEN_TIMEOUT: Duration = Duration::from_secs(60);

/// Lifetime of a client assertion (Microsoft: "5-10 minutes after nbf at most").
pub const ASSERTION_LIFETIME_SECS: i64 = 600;

/// The token endpoint `{login_base}/{tenant}/oauth2/v2.0/token`.
pub fn token_endpoint(login_base: &Url, tenant: &str) -> Result<Url, ExoError> {
    let base = login_base.as_str().trim_end_matches('/');
    Url::parse(&format!("{base}/{tenant}/oauth2/v2.0/token")).map_err(|e| {
        ExoError::Config(crate::config::ConfigError::Invalid {
            key: "login_base",
            problem: format!("cannot form the token endpoint: {e}"),
        })
    })
}

/// The DER bytes of the first `CERTIFICATE` block of a PEM text.
pub fn certificate_der(pem: &str) -> Result<Vec<u8>, String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem
        .find(BEGIN)
        .ok_or("no '-----BEGIN CERTIFICATE-----' block (a PEM certificate is needed)")?
        + BEGIN.len();
    let len = pem[start..]
        .find(END)
        .ok_or("the CERTIFICATE block has no END line")?;
    let b64: String = pem[start..start + len]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = STANDARD
        .decode(b64)
        .map_err(|e| format!("the CERTIFICATE block is not valid base64: {e}"))?;
    if der.is_empty() {
        return Err("the CERTIFICATE block is empty".into());
    }
    Ok(der)
}

/// `x5t#S256`: base64url (no padding) of the SHA-256 of the certificate's DER encoding.
pub fn x5t_s256(certificate_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(certificate_der))
}

/// `x5t`: base64url (no padding) of the SHA-1 of the certificate's DER encoding.
pub fn x5t_sha1(certificate_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        certificate_der,
    ))
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: i64,
    iat: i64,
    exp: i64,
}

/// Builds the signed client assertion, valid from `now` for [`ASSERTION_LIFETIME_SECS`]:
/// PS256 with `x5t#S256`, or RS256 with `x5t` — the two pairs MSAL sends. The result is a
/// secret.
pub fn client_assertion(
    kind: CertificateAssertion,
    client_id: &str,
    audience: &str,
    certificate_pem: &str,
    private_key_pem: &Secret,
    now_unix: i64,
) -> Result<Secret, ExoError> {
    let der = certificate_der(certificate_pem).map_err(ExoError::Certificate)?;
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_key_pem.expose().as_bytes())
        .map_err(|_| {
            ExoError::Certificate("the private key is not a PEM RSA private key".into())
        })?;
    let mut header = match kind {
        CertificateAssertion::Ps256 => {
            let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
            h.x5t_s256 = Some(x5t_s256(&der));
            h
        }
        CertificateAssertion::Rs256 => {
            let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
            h.x5t = Some(x5t_sha1(&der));
            h
        }
    };
    header.typ = Some("JWT".into());
    let claims = AssertionClaims {
        aud: audience,
        iss: client_id,
        sub: client_id,
        jti: uuid::Uuid::new_v4().to_string(),
        nbf: now_unix,
        iat: now_unix,
        exp: now_unix + ASSERTION_LIFETIME_SECS,
    };
    jsonwebtoken::encode(&header, &claims, &key)
        .map(Secret::new)
        .map_err(|e| ExoError::Certificate(format!("cannot sign the client assertion: {e}")))
}

/// How long before expiry a token is replaced: five minutes, or half the lifetime of a
/// short-lived token.
pub fn refresh_margin(expires_in: Duration) -> Duration {
    (expires_in / 2).min(Duration::from_secs(300))
}

struct CachedToken {
    value: Secret,
    refresh_at: Instant,
    generation: u64,
}

/// Hands out access tokens, fetching a new one when none is cached, the cached one is
/// close to expiry, or the API rejected it.
pub(crate) struct TokenSource {
    http: reqwest::Client,
    endpoint: Url,
    client_id: String,
    scope: String,
    assertion: CertificateAssertion,
    credentials: Credentials,
    retry: RetryPolicy,
    /// Entra ID answers token requests at once: at most [`TOKEN_TIMEOUT`].
    timeout: Duration,
    cache: tokio::sync::Mutex<Option<CachedToken>>,
    generation: AtomicU64,
    pub(crate) fetches: AtomicU64,
}

impl TokenSource {
    pub(crate) fn new(http: reqwest::Client, settings: &ExoSettings) -> Result<Self, ExoError> {
        Ok(TokenSource {
            http,
            endpoint: token_endpoint(&settings.login_base, &settings.tenant)?,
            client_id: settings.client_id.clone(),
            scope: settings.scope.clone(),
            assertion: settings.assertion,
            credentials: settings.credentials.clone(),
            retry: settings.retry,
            timeout: settings.timeout.min(TOKEN_TIMEOUT),
            cache: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
        })
    }

    /// A valid token and its generation (pass the generation to [`Self::invalidate`]).
    pub(crate) async fn get(&self) -> Result<(Secret, u64), ExoError> {
        let mut cache = self.cache.lock().await;
        if let Some(t) = cache.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok((t.value.clone(), t.generation));
        }
        let fresh = self.fetch().await?;
        let out = (fresh.value.clone(), fresh.generation);
        *cache = Some(fresh);
        Ok(out)
    }

    /// Forgets the token of `generation` (the API refused it); a newer one is kept.
    pub(crate) async fn invalidate(&self, generation: u64) {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_some_and(|t| t.generation == generation) {
            *cache = None;
        }
    }

    fn form(&self) -> Result<Vec<(&'static str, String)>, ExoError> {
        let mut form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", self.client_id.clone()),
            ("scope", self.scope.clone()),
        ];
        match &self.credentials {
            Credentials::ClientSecret(secret) => {
                form.push(("client_secret", secret.expose().to_owned()));
            }
            Credentials::Certificate {
                certificate_pem,
                private_key_pem,
            } => {
                let assertion = client_assertion(
                    self.assertion,
                    &self.client_id,
                    self.endpoint.as_str(),
                    certificate_pem,
                    private_key_pem,
                    jiff::Timestamp::now().as_second(),
                )?;
                form.push(("client_assertion_type", JWT_BEARER.to_owned()));
                form.push(("client_assertion", assertion.expose().to_owned()));
            }
        }
        Ok(form)
    }

    async fn fetch(&self) -> Result<CachedToken, ExoError> {
        let endpoint = self.endpoint.as_str().to_owned();
        let mut attempt = 0;
        loop {
            attempt += 1;
            // A fresh assertion (new jti) for every try.
            let form = self.form()?;
            self.fetches.fetch_add(1, Ordering::Relaxed);
            let sent = Instant::now();
            let result = self
                .http
                .post(self.endpoint.clone())
                .timeout(self.timeout)
                .form(&form)
                .send()
                .await;
            drop(form);
            let (last, wait) = match result {
                Err(e) => (
                    crate::client::describe_transport(&e),
                    self.retry.backoff(attempt, rand::random()),
                ),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = retry_after_of(&resp);
                    let body = match resp.bytes().await {
                        Ok(b) => b,
                        Err(e) => {
                            let last = format!(
                                "HTTP {status}, body unreadable: {}",
                                crate::client::describe_transport(&e)
                            );
                            if attempt >= self.retry.max_attempts {
                                return Err(ExoError::RetriesExhausted {
                                    request: format!("token request to {endpoint}"),
                                    attempts: attempt,
                                    last,
                                });
                            }
                            tokio::time::sleep(self.retry.backoff(attempt, rand::random())).await;
                            continue;
                        }
                    };
                    if (200..300).contains(&status) {
                        return self.parse_token(&endpoint, &body, sent);
                    }
                    let error = ServiceError::parse(&body);
                    if !retryable_status(status) {
                        return Err(ExoError::TokenRefused {
                            endpoint,
                            status,
                            message: error.to_string(),
                        });
                    }
                    let wait = if status == 429 {
                        self.retry
                            .throttle_wait(retry_after, attempt, rand::random())
                    } else {
                        self.retry.backoff(attempt, rand::random())
                    };
                    (format!("HTTP {status}: {error}"), wait)
                }
            };
            if attempt >= self.retry.max_attempts {
                return Err(ExoError::RetriesExhausted {
                    request: format!("token request to {endpoint}"),
                    attempts: attempt,
                    last,
                });
            }
            tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, %last, "token request failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    fn parse_token(
        &self,
        endpoint: &str,
        body: &[u8],
        sent: Instant,
    ) -> Result<CachedToken, ExoError> {
        let bad = |problem: &str| ExoError::TokenResponse {
            endpoint: endpoint.to_owned(),
            problem: problem.to_owned(),
        };
        let json: Value = serde_json::from_slice(body).map_err(|_| bad("the body is not JSON"))?;
        let access = json
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("no access_token"))?;
        if let Some(tt) = json.get("token_type").and_then(Value::as_str)
            && !tt.eq_ignore_ascii_case("bearer")
        {
            return Err(bad(&format!("token_type is {tt:?}, not Bearer")));
        }
        let expires_in = match json.get("expires_in") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
            _ => None,
        }
        .ok_or_else(|| bad("no usable expires_in"))?;
        let lifetime = Duration::from_secs(expires_in);
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(expires_in, generation, "obtained an access token");
        Ok(CachedToken {
            value: Secret::new(access),
            refresh_at: sent + lifetime - refresh_margin(lifetime),
            generation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_margins() {
        let cases = [(3599, 300), (600, 300), (120, 60), (2, 1), (0, 0)];
        for (lifetime, margin) in cases {
            assert_eq!(
                refresh_margin(Duration::from_secs(lifetime)),
                Duration::from_secs(margin),
                "{lifetime}"
            );
        }
    }

    #[test]
    fn token_endpoint_is_formed_from_the_base() {
        for base in [
            "https://login.microsoftonline.com",
            "https://login.microsoftonline.com/",
        ] {
            let url = Url::parse(base).expect("url");
            assert_eq!(
                token_endpoint(&url, "contoso.onmicrosoft.com")
                    .expect("endpoint")
                    .as_str(),
                "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
            );
        }
    }

    #[test]
    fn certificate_pem_errors() {
        assert!(certificate_der("nothing here").is_err());
        assert!(certificate_der("-----BEGIN CERTIFICATE-----\nAAAA").is_err());
        assert!(
            certificate_der("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----").is_err()
        );
        assert_eq!(
            certificate_der(
                "x\n-----BEGIN CERTIFICATE-----\nAQID\nBA==\n-----END CERTIFICATE-----\n"
            )
            .expect("der"),
            vec![1, 2, 3, 4]
        );
    }

    #[test]
    fn thumbprints_are_base64url_sha256_and_sha1() {
        // SHA-256 and SHA-1 of the empty input, base64url without padding.
        assert_eq!(x5t_s256(b""), "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");
        assert_eq!(x5t_sha1(b""), "2jmj7l5rSw0yVb_vlWAYkK_YBwk");
    }
}
