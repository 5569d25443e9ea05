//! Item 2 of issue 11: the certificate assertion MSAL sends (the emulator accepts only
//! PS256 + `x5t#S256` and RS256 + `x5t`, as Entra ID does).

use exo_sim::SimCloud;

use crate::certs::certificate_files;
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
