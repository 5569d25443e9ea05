//! The certificate client assertion has the shape MSAL gives it (msal-node
//! `ClientAssertion.ts`) and Microsoft's certificate-credentials page specifies.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use exo_writeback_core::secret::Secret;
use exo_writeback_exo::CertificateAssertion;
use exo_writeback_exo::token::{certificate_der, client_assertion, x5t_s256, x5t_sha1};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn decode(p: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).expect("b64")).expect("json")
}

#[test]
fn assertion_header_and_claims() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = crate::certs::make_certificate(dir.path());
    let der = certificate_der(&cert).expect("der");
    let aud = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token";
    for kind in [CertificateAssertion::Ps256, CertificateAssertion::Rs256] {
        let jwt = client_assertion(
            kind,
            "app-id",
            aud,
            &cert,
            &Secret::new(key.clone()),
            1_700_000_000,
        )
        .expect("assertion");
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = decode(parts[0]);
        let claims = decode(parts[1]);
        assert_eq!(header["typ"], "JWT");
        match kind {
            // The current pair: PS256 with the SHA-256 thumbprint, and no x5t.
            CertificateAssertion::Ps256 => {
                assert_eq!(header["alg"], "PS256");
                assert_eq!(header["x5t#S256"], x5t_s256(&der));
                assert_eq!(
                    URL_SAFE_NO_PAD
                        .decode(header["x5t#S256"].as_str().expect("str"))
                        .expect("b64"),
                    Sha256::digest(&der).to_vec()
                );
                assert!(header.get("x5t").is_none(), "{header}");
            }
            // The fallback pair: RS256 with the SHA-1 thumbprint, and no x5t#S256.
            CertificateAssertion::Rs256 => {
                assert_eq!(header["alg"], "RS256");
                assert_eq!(header["x5t"], x5t_sha1(&der));
                assert_eq!(
                    URL_SAFE_NO_PAD
                        .decode(header["x5t"].as_str().expect("str"))
                        .expect("b64")
                        .len(),
                    20
                );
                assert!(header.get("x5t#S256").is_none(), "{header}");
            }
        }
        assert_eq!(claims["aud"], aud);
        assert_eq!(claims["iss"], "app-id");
        assert_eq!(claims["sub"], "app-id");
        assert_eq!(claims["nbf"], 1_700_000_000);
        assert_eq!(claims["exp"], 1_700_000_600);
        assert!(uuid::Uuid::parse_str(claims["jti"].as_str().expect("jti")).is_ok());
    }
}

#[test]
fn a_key_that_is_not_rsa_pem_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, _) = crate::certs::make_certificate(dir.path());
    let err = client_assertion(
        CertificateAssertion::Ps256,
        "a",
        "https://x/t",
        &cert,
        &Secret::new("not a key"),
        0,
    )
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
