//! Test certificates, made with the `openssl` tool.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn run(cmd: &mut Command) {
    let out = cmd.stderr(Stdio::piped()).output().expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed RSA certificate and key, valid from now for two days.
pub fn make_certificate(dir: &Path) -> (String, String) {
    let (cert, key) = certificate_files(dir, None);
    (
        std::fs::read_to_string(cert).expect("cert"),
        std::fs::read_to_string(key).expect("key"),
    )
}

/// A self-signed RSA certificate and its key as files in `dir` (`cert.pem`, `key.pem`);
/// `validity` = (notBefore, notAfter), default: from now for two days.
pub fn certificate_files(
    dir: &Path,
    validity: Option<(jiff::Timestamp, jiff::Timestamp)>,
) -> (PathBuf, PathBuf) {
    let key = dir.join("key.pem");
    let cert = dir.join("cert.pem");
    let Some((start, end)) = validity else {
        run(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=exo-writeback-test"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        return (cert, key);
    };
    // Chosen dates need `openssl ca` (OpenSSL 3.0's `req` only counts days from now).
    let csr = dir.join("req.csr");
    run(Command::new("openssl")
        .args(["req", "-new", "-newkey", "rsa:2048", "-nodes"])
        .args(["-subj", "/CN=exo-writeback-test"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr));
    std::fs::write(dir.join("index.txt"), "").expect("index");
    std::fs::write(dir.join("serial"), "01\n").expect("serial");
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
         default_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n",
    )
    .expect("ca.cnf");
    let asn1 = |t: jiff::Timestamp| t.strftime("%Y%m%d%H%M%SZ").to_string();
    run(Command::new("openssl")
        .current_dir(dir)
        .args(["ca", "-batch", "-config", "ca.cnf", "-selfsign", "-notext"])
        .args(["-keyfile", "key.pem", "-in", "req.csr", "-out", "cert.pem"])
        .args(["-startdate", &asn1(start), "-enddate", &asn1(end)]));
    (cert, key)
}

/// `openssl x509 -fingerprint` of a certificate file, as hex without colons.
pub fn fingerprint(cert: &Path, digest: &str) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", digest, "-in"])
        .arg(cert)
        .output()
        .expect("openssl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .rsplit('=')
        .next()
        .unwrap_or_default()
        .replace(':', "")
}
