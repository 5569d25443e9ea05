//! The certificate client assertion has the shape Microsoft's certificate-credentials page
//! specifies.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use exo_writeback_core::secret::Secret;
use exo_writeback_exo::token::{certificate_der, client_assertion, x5t_s256};
use serde_json::Value;
use sha2::{Digest, Sha256};

#[test]
fn assertion_header_and_claims() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = crate::certs::make_certificate(dir.path());
    let aud = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token";
    let jwt = client_assertion("app-id", aud, &cert, &Secret::new(key), 1_700_000_000)
        .expect("assertion");
    let parts: Vec<&str> = jwt.expose().split('.').collect();
    assert_eq!(parts.len(), 3);
    let decode = |p: &str| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).expect("b64")).expect("json")
    };
    let header = decode(parts[0]);
    let claims = decode(parts[1]);
    let der = certificate_der(&cert).expect("der");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["x5t#S256"], x5t_s256(&der));
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(header["x5t#S256"].as_str().expect("str"))
            .expect("b64"),
        Sha256::digest(&der).to_vec()
    );
    assert_eq!(claims["aud"], aud);
    assert_eq!(claims["iss"], "app-id");
    assert_eq!(claims["sub"], "app-id");
    assert_eq!(claims["nbf"], 1_700_000_000);
    assert_eq!(claims["exp"], 1_700_000_600);
    assert!(uuid::Uuid::parse_str(claims["jti"].as_str().expect("jti")).is_ok());
}

#[test]
fn a_key_that_is_not_rsa_pem_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, _) = crate::certs::make_certificate(dir.path());
    let err = client_assertion("a", "https://x/t", &cert, &Secret::new("not a key"), 0)
        .expect_err("bad key");
    assert!(
        err.to_string().contains("not a PEM RSA private key"),
        "{err}"
    );
    assert!(
        !err.to_string().contains("not a key"),
        "the key text is not echoed: {err}"
    );
}
