//! Shared helpers: start an emulator, get tokens, call InvokeCommand.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use exo_sim::{SeedSpec, SimConfig, SimHandle, spawn};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const TENANT: &str = "contoso.onmicrosoft.com";
pub const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
pub const SECRET: &str = "s3cret~value";
pub const CERT_PEM: &str = include_str!("fixtures/client.crt");
pub const KEY_PEM: &str = include_str!("fixtures/client.key");
pub const OTHER_KEY_PEM: &str = include_str!("fixtures/other.key");
/// The routing anchor of app-only calls to this tenant (capture A2's form).
pub const ANCHOR: &str =
    "UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.onmicrosoft.com";

/// A client-credentials request with the client secret, for the worldwide scope.
pub const SECRET_FORM: [(&str, &str); 4] = [
    ("grant_type", "client_credentials"),
    ("client_id", CLIENT_ID),
    ("client_secret", SECRET),
    ("scope", "https://outlook.office365.com/.default"),
];

/// A time as the documented en-US filter literal `M/d/yyyy h:mm:ss tt` (UTC, to the second).
pub fn en_us(t: jiff::Timestamp) -> String {
    t.strftime("%-m/%-d/%Y %-I:%M:%S %p").to_string()
}

pub struct Sim {
    pub handle: SimHandle,
    pub http: reqwest::Client,
}

pub fn config(seed: usize) -> SimConfig {
    SimConfig {
        tenant: TENANT.into(),
        client_id: CLIENT_ID.into(),
        client_secret: Some(SECRET.into()),
        client_cert_pem: Some(CERT_PEM.into()),
        seed: (seed > 0).then(|| SeedSpec {
            count: seed,
            seed: 7,
            ..SeedSpec::default()
        }),
        ..SimConfig::default()
    }
}

pub async fn start(seed: usize) -> Sim {
    start_with(config(seed)).await
}

pub async fn start_with(config: SimConfig) -> Sim {
    let handle = spawn(config).await.expect("emulator starts");
    Sim {
        handle,
        http: reqwest::Client::new(),
    }
}

/// How the tests seed an emulator from a lab DC: the test tenant, every mailbox cloud-managed.
pub fn lab_seed_options() -> exo_sim::seed_ad::AdSeedOptions {
    exo_sim::seed_ad::AdSeedOptions {
        tenant_domain: TENANT.into(),
        not_cloud_managed: 0.0,
    }
}

/// A lab DC with `users` users and an emulator seeded from it (users, groups, contacts), with
/// what the seeding added.
pub async fn seeded_from_lab(
    users: u32,
) -> (
    exo_writeback_testlab::LabDc,
    Sim,
    exo_sim::seed_ad::AdSeeded,
) {
    use exo_writeback_testlab::{LabDc, LabOptions};
    let dc =
        tokio::task::spawn_blocking(move || LabDc::start(LabOptions::default().with_users(users)))
            .await
            .expect("join")
            .expect("lab DC starts");
    let sim = start(0).await;
    let added =
        exo_sim::seed_ad::seed_from_ad(&sim.handle.state(), &dc.config_file, &lab_seed_options())
            .await
            .expect("seeding from AD");
    (dc, sim, added)
}

impl Sim {
    pub fn base(&self) -> String {
        self.handle.base_url()
    }

    pub fn token_url(&self) -> String {
        format!("{}/{TENANT}/oauth2/v2.0/token", self.base())
    }

    pub fn invoke_url(&self) -> String {
        format!("{}/adminapi/beta/{TENANT}/InvokeCommand", self.base())
    }

    pub async fn token_request(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.token_url())
            .form(form)
            .send()
            .await
            .expect("token endpoint answers")
    }

    pub async fn token(&self) -> String {
        let r = self.token_request(&SECRET_FORM).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["access_token"].as_str().unwrap().to_string()
    }

    /// POSTs a CmdletInput to `url` (InvokeCommand or a nextLink).
    pub async fn invoke_at(
        &self,
        url: &str,
        token: &str,
        cmdlet: &str,
        params: Value,
        page: Option<usize>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(url)
            .bearer_auth(token)
            .header("X-CmdletName", cmdlet)
            .header("X-AnchorMailbox", ANCHOR)
            .json(&json!({"CmdletInput": {"CmdletName": cmdlet, "Parameters": params}}));
        if let Some(n) = page {
            req = req.header("Prefer", format!("odata.maxpagesize={n}"));
        }
        req.send().await.expect("InvokeCommand answers")
    }

    pub async fn invoke(&self, token: &str, cmdlet: &str, params: Value) -> (u16, Value) {
        let r = self
            .invoke_at(&self.invoke_url(), token, cmdlet, params, None)
            .await;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        (status, v)
    }

    /// Follows nextLinks; returns every record and the number of pages.
    pub async fn get_all(&self, token: &str, params: Value, page: usize) -> (Vec<Value>, usize) {
        self.get_all_of(token, "Get-Mailbox", params, page).await
    }

    /// [`get_all`](Self::get_all) for any listing cmdlet.
    pub async fn get_all_of(
        &self,
        token: &str,
        cmdlet: &str,
        params: Value,
        page: usize,
    ) -> (Vec<Value>, usize) {
        let mut url = self.invoke_url();
        let mut out = Vec::new();
        let mut pages = 0;
        loop {
            let r = self
                .invoke_at(&url, token, cmdlet, params.clone(), Some(page))
                .await;
            assert_eq!(r.status(), 200);
            let v: Value = r.json().await.unwrap();
            pages += 1;
            out.extend(v["value"].as_array().unwrap().iter().cloned());
            match v["@odata.nextLink"].as_str() {
                Some(next) => url = next.to_string(),
                None => break,
            }
        }
        (out, pages)
    }
}

/// DER of the test certificate.
pub fn cert_der() -> Vec<u8> {
    let b64: String = CERT_PEM
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    STANDARD.decode(b64).unwrap()
}

pub struct Assertion<'a> {
    pub key_pem: &'a str,
    pub aud: String,
    pub iss: &'a str,
    pub exp_offset: i64,
    pub x5t_s256: Option<String>,
    pub alg: jsonwebtoken::Algorithm,
    /// Send the SHA-1 thumbprint as `x5t` instead of the SHA-256 one as `x5t#S256`.
    pub x5t_sha1: bool,
}

impl Assertion<'_> {
    pub fn sign(&self) -> String {
        let now = jiff::Timestamp::now().as_second();
        let mut header = jsonwebtoken::Header::new(self.alg);
        let s256 = self
            .x5t_s256
            .clone()
            .unwrap_or_else(|| URL_SAFE_NO_PAD.encode(Sha256::digest(cert_der())));
        if self.x5t_sha1 {
            header.x5t = Some(URL_SAFE_NO_PAD.encode(ring::digest::digest(
                &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
                &cert_der(),
            )));
        } else {
            header.x5t_s256 = Some(s256);
        }
        let claims = json!({
            "aud": self.aud, "iss": self.iss, "sub": self.iss,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now - 10, "iat": now - 10, "exp": now + self.exp_offset,
        });
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(self.key_pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }
}
