//! Items 2 and 11 of issue 11: the certificate assertion MSAL sends (the emulator accepts only
//! PS256 + `x5t#S256` and RS256 + `x5t`, as Entra ID does), and certificates checked locally
//! before any request.

use exo_sim::{Endpoint, SimCloud};
use jiff::{SignedDuration, Timestamp};

use crate::certs::{certificate_files, fingerprint};
use crate::support::*;

fn cert_section(
    base: &str,
    cert: &std::path::Path,
    key: &std::path::Path,
    extra: &str,
) -> exo_writeback_exo::ExoConfig {
    let text = format!(
        "tenant = \"{TENANT_ID}\"\nclient_id = \"{CLIENT_ID}\"\ncertificate_file = {:?}\n\
         private_key_file = {:?}\nlogin_base = \"{base}\"\napi_base = \"{base}\"\n\
         allow_insecure_http = true\n{extra}",
        cert.display().to_string(),
        key.display().to_string()
    );
    toml::from_str(&text).unwrap_or_else(|e| panic!("{text}\n{e}"))
}

#[tokio::test]
async fn certificate_auth_passes_the_strict_assertion_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = certificate_files(dir.path(), None);
    let pem = std::fs::read_to_string(&cert).expect("cert");
    let sim = spawn(tenant(1200, SimCloud::Worldwide, Some(pem))).await;
    for extra in [
        "",
        "certificate_assertion = \"ps256\"",
        "certificate_assertion = \"rs256\"",
    ] {
        let c = client(&cert_section(&sim.base_url(), &cert, &key, extra));
        c.check_token()
            .await
            .unwrap_or_else(|e| panic!("{extra:?}: {e}"));
        let (mailboxes, errors) = drain(c.mailboxes(None)).await;
        assert!(errors.is_empty(), "{extra:?}: {errors:?}");
        assert_eq!(mailboxes.len(), 1200, "{extra:?}");
    }
}

#[tokio::test]
async fn the_thumbprints_and_expiry_are_read_from_the_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = Timestamp::now();
    let (start, end) = (
        now - SignedDuration::from_hours(24),
        now + SignedDuration::from_hours(24 * 10),
    );
    let (cert, key) = certificate_files(dir.path(), Some((start, end)));
    let s = settings(&cert_section("http://127.0.0.1:9", &cert, &key, ""))
        .expect("a valid certificate");
    let info = s.certificate.as_ref().expect("certificate details");
    assert_eq!(info.sha1_thumbprint, fingerprint(&cert, "-sha1"));
    assert_eq!(info.sha256_thumbprint, fingerprint(&cert, "-sha256"));
    assert_eq!(info.not_after.as_second(), end.as_second());
    assert_eq!(info.not_before.as_second(), start.as_second());
    let warnings = s.warnings(now);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("expires"), "{warnings:?}");
    assert!(
        warnings[0].contains(&cert.display().to_string()),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn bad_certificates_are_refused_locally_with_the_file_named() {
    let now = Timestamp::now();
    let day = SignedDuration::from_hours(24);
    let expired = tempfile::tempdir().expect("tempdir");
    let future = tempfile::tempdir().expect("tempdir");
    let (a, b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let cases = [
        (
            certificate_files(expired.path(), Some((now - day * 400, now - day * 35))),
            "expired",
            0,
        ),
        (
            certificate_files(future.path(), Some((now + day * 3, now + day * 300))),
            "not valid before",
            0,
        ),
        (
            (
                certificate_files(a.path(), None).0,
                certificate_files(b.path(), None).1,
            ),
            "does not belong",
            1,
        ),
    ];
    let sim = spawn(tenant(1, SimCloud::Worldwide, None)).await;
    for ((cert, key), what, names) in cases {
        let err = settings(&cert_section(&sim.base_url(), &cert, &key, ""))
            .expect_err(what)
            .to_string();
        assert!(err.contains(what), "{what}: {err}");
        let file = if names == 0 { &cert } else { &key };
        assert!(err.contains(&file.display().to_string()), "{what}: {err}");
        assert!(!err.contains("PRIVATE KEY"), "{err}");
    }
    assert_eq!(sim.state().request_count(Endpoint::Any), 0);
}
