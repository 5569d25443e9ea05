//! `exo-writeback check --only exo` against the Exchange Online emulator.

use std::process::Command;

use exo_sim::{SeedSpec, SimConfig};

use crate::harness::{Run, exo_writeback, exo_writeback_blocking};

const SECRET: &str = "cli-check-secret-Vb8~x";

async fn check_exo(base: &str, secret: &str, extra: &[&str]) -> Run {
    check_exo_with(base, secret, "", extra).await
}

/// As [`check_exo`], with `config_extra` lines in `[exo]`.
async fn check_exo_with(base: &str, secret: &str, config_extra: &str, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_file = dir.path().join("exo-secret");
    std::fs::write(&secret_file, format!("{secret}\n")).expect("write");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[ad]\nurl = \"ldaps://127.0.0.9\"\nbind_dn = \"a@b\"\npassword_env = \"EXO_WB_UNUSED\"\n\n\
             [exo]\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"cli-app\"\n\
             client_secret_file = {:?}\nlogin_base = \"{base}\"\napi_base = \"{base}\"\n\
             allow_insecure_http = true\n{config_extra}\n",
            secret_file.display().to_string()
        ),
    )
    .expect("write");
    run_check(config, extra).await
}

/// `exo-writeback check --only exo <extra> --config <config>`.
async fn run_check(config: std::path::PathBuf, extra: &[&str]) -> Run {
    exo_writeback(&config, &[&["check", "--only", "exo"], extra].concat()).await
}

async fn sim(count: usize) -> exo_sim::SimHandle {
    exo_sim::spawn(SimConfig {
        client_id: "cli-app".into(),
        client_secret: Some(SECRET.into()),
        seed: Some(SeedSpec {
            count,
            ..SeedSpec::default()
        }),
        ..SimConfig::default()
    })
    .await
    .expect("emulator")
}

#[tokio::test(flavor = "multi_thread")]
async fn check_only_exo_gets_a_token_and_reads_mailboxes() {
    let sim = sim(3).await;
    let run = check_exo(&sim.base_url(), SECRET, &[]).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("Exchange Online: OK"), "{}", run.stdout);
    assert!(
        run.stdout.contains("tenant: contoso.onmicrosoft.com"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("mailboxes: 3\n"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("AD ("),
        "the AD side is not checked: {}",
        run.stdout
    );

    let json = check_exo(&sim.base_url(), SECRET, &["--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("json report");
    assert_eq!(v["exo"]["mailboxes_sampled"], 3);
    assert_eq!(v["exo"]["more_mailboxes"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_only_exo_reports_a_refused_secret_without_printing_it() {
    let sim = sim(1).await;
    let wrong = "wrong-cli-secret-Qz1~never-print";
    let run = check_exo(&sim.base_url(), wrong, &[]).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("FAILED: no access token"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains(wrong) && !run.stderr.contains(wrong));
    assert!(!run.stdout.contains(SECRET) && !run.stderr.contains(SECRET));
}

#[test]
fn check_only_exo_without_an_exo_section_fails_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[ad]\nurl = \"ldaps://127.0.0.9\"\nbind_dn = \"a@b\"\npassword_env = \"EXO_WB_UNUSED\"\n",
    )
    .expect("write");
    let run = exo_writeback_blocking(&config, &["check", "--only", "exo"]);
    let stdout = &run.stdout;
    assert_eq!(run.code, 1, "{stdout}");
    assert!(stdout.contains("no [exo] section"), "{stdout}");
}

/// A self-signed RSA certificate valid from now for `days`, and its key: (cert, key) paths.
fn certificate(dir: &std::path::Path, days: u32) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days"])
        .arg(days.to_string())
        .args(["-subj", "/CN=exo-writeback-check"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success());
    (cert, key)
}

/// `exo-writeback check --only exo` with certificate credentials.
async fn check_with_certificate(base: &str, cert: &std::path::Path, key: &std::path::Path) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[ad]\nurl = \"ldaps://127.0.0.9\"\nbind_dn = \"a@b\"\npassword_env = \"EXO_WB_UNUSED\"\n\n\
             [exo]\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"cli-app\"\n\
             certificate_file = {:?}\nprivate_key_file = {:?}\nlogin_base = \"{base}\"\n\
             api_base = \"{base}\"\nallow_insecure_http = true\n",
            cert.display().to_string(),
            key.display().to_string()
        ),
    )
    .expect("write");
    run_check(config, &[]).await
}

fn fingerprint(cert: &std::path::Path, digest: &str) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", digest, "-in"])
        .arg(cert)
        .output()
        .expect("openssl");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .rsplit('=')
        .next()
        .unwrap_or_default()
        .replace(':', "")
}

#[tokio::test(flavor = "multi_thread")]
async fn check_shows_the_certificate_to_compare_and_warns_before_it_expires() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = certificate(dir.path(), 10);
    let sim = exo_sim::spawn(SimConfig {
        client_id: "cli-app".into(),
        client_cert_pem: Some(std::fs::read_to_string(&cert).expect("cert")),
        seed: Some(SeedSpec {
            count: 2,
            ..SeedSpec::default()
        }),
        ..SimConfig::default()
    })
    .await
    .expect("emulator");
    let run = check_with_certificate(&sim.base_url(), &cert, &key).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let out = &run.stdout;
    assert!(out.contains("Exchange Online: OK"), "{out}");
    assert!(
        out.contains(&format!(
            "certificate thumbprint (SHA-1): {}",
            fingerprint(&cert, "-sha1")
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "certificate thumbprint (SHA-256): {}",
            fingerprint(&cert, "-sha256")
        )),
        "{out}"
    );
    assert!(out.contains("certificate expires: "), "{out}");
    assert!(out.contains("warning: "), "{out}");
    assert!(
        out.contains("in 9 days") || out.contains("in 10 days"),
        "{out}"
    );
    assert!(out.contains(&cert.display().to_string()), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_names_a_key_that_is_not_the_certificates() {
    let (a, b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let (cert, _) = certificate(a.path(), 365);
    let (_, other_key) = certificate(b.path(), 365);
    let sim = sim(1).await;
    let run = check_with_certificate(&sim.base_url(), &cert, &other_key).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("FAILED: configuration"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("does not belong"), "{}", run.stdout);
    assert!(
        run.stdout.contains(&other_key.display().to_string()),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("PRIVATE KEY"), "{}", run.stdout);
    assert_eq!(sim.state().request_count(exo_sim::Endpoint::Any), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reads_past_the_first_page_so_a_routing_anchor_that_finds_nothing_fails_it() {
    let sim = sim(120).await;
    let good = check_exo(&sim.base_url(), SECRET, &[]).await;
    assert_eq!(good.code, 0, "{}\n{}", good.stdout, good.stderr);
    assert!(
        good.stdout
            .contains("mailboxes: more than 100 (read a sample of 100)"),
        "{}",
        good.stdout
    );
    assert_eq!(sim.state().request_count(exo_sim::Endpoint::NextLink), 2);
    let bad = check_exo_with(
        &sim.base_url(),
        SECRET,
        "anchor_mailbox = \"UPN:nobody@contoso.onmicrosoft.com\"",
        &[],
    )
    .await;
    assert_eq!(bad.code, 1, "{}\n{}", bad.stdout, bad.stderr);
    assert!(
        bad.stdout.contains("FAILED: cannot read mailboxes"),
        "{}",
        bad.stdout
    );
    assert!(
        bad.stdout.contains("Expired or Invalid pagination request"),
        "{}",
        bad.stdout
    );
}
