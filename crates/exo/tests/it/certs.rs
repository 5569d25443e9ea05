//! Test certificates.

use std::path::Path;

/// A self-signed RSA certificate and key, made with the `openssl` tool.
pub fn make_certificate(dir: &Path) -> (String, String) {
    let key = dir.join("key.pem");
    let cert = dir.join("cert.pem");
    let status = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=exo-writeback-test"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl failed");
    (
        std::fs::read_to_string(cert).expect("cert"),
        std::fs::read_to_string(key).expect("key"),
    )
}
