//! The agent's configuration as a service takes it (issue 14): SIGHUP reloads a configuration
//! checked whole and refuses an invalid one; beyond loopback the API is served over TLS only,
//! with the certificate and key from files, and the CLI reaches it there.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::Lab;
use crate::service::{Agent, READER, add_tokens};
use crate::writers::{spawn_run, stop};

/// SIGHUP to the agent.
fn hangup(agent: &Agent) {
    let pid = agent.pid().to_string();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_takes_a_valid_configuration_and_refuses_an_invalid_one() {
    let lab = Lab::start(2).await;
    add_tokens(&lab);
    let agent = Agent::start(&lab).await;
    let good = std::fs::read_to_string(&lab.config).expect("config");

    // An invalid file is refused: the running configuration (and its tokens) stays.
    std::fs::write(
        &lab.config,
        format!("{good}\n[api]\nlisten = \"nowhere\"\n"),
    )
    .expect("write");
    hangup(&agent);
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(agent.get("/api/v1/status", Some(READER)).await.0, 200);

    // A valid one is taken at the next pause between cycles: a new token works.
    const LATE: &str = "late-reader-token-0123456789abcdef0123456789ab";
    let file = lab.dir.path().join("late.token");
    std::fs::write(&file, LATE).expect("token");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::write(
        &lab.config,
        format!(
            "{good}\n[[api.tokens]]\nname = \"late\"\nrole = \"reader\"\nfile = \"{}\"\n",
            file.display()
        ),
    )
    .expect("write");
    assert_eq!(agent.get("/api/v1/status", Some(LATE)).await.0, 401);
    hangup(&agent);
    let started = Instant::now();
    while agent.get("/api/v1/status", Some(LATE)).await.0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the reloaded token was never accepted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(agent.get("/api/v1/status", Some(READER)).await.0, 200);
    let log = agent.stop().await;
    assert!(
        log.contains("refused the changed configuration"),
        "the refusal is not logged:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_the_api_is_served_over_tls_only() {
    let lab = Lab::start(2).await;
    add_tokens(&lab);
    let config = std::fs::read_to_string(&lab.config).expect("config");
    let loopback = "listen = \"127.0.0.1:0\"";
    assert!(config.contains(loopback), "{config}");

    // Every address, in clear text: the agent refuses to start.
    std::fs::write(
        &lab.config,
        config.replace(loopback, "listen = \"0.0.0.0:0\""),
    )
    .expect("w");
    let refused = tokio::time::timeout(Duration::from_secs(60), lab.run(&["run"]))
        .await
        .expect("run refuses at once");
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("beyond loopback"),
        "{}",
        refused.stderr
    );

    // With a certificate and its key from files: HTTPS only.
    let cert = lab.dir.path().join("api.crt");
    let key = lab.dir.path().join("api.key");
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=agent.lab.test"])
        .args(["-addext", "subjectAltName=DNS:agent.lab.test"])
        // A server's certificate, not a CA's (webpki refuses a CA as the end entity).
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{made:?}");
    std::fs::write(
        &lab.config,
        config.replace(
            loopback,
            &format!(
                "listen = \"0.0.0.0:0\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
                cert.display(),
                key.display()
            ),
        ),
    )
    .expect("config");
    let child = spawn_run(&lab);
    let started = Instant::now();
    let endpoint: Value = loop {
        if let Ok(text) = std::fs::read_to_string(lab.state_dir().join("api.json"))
            && let Ok(v) = serde_json::from_str::<Value>(&text)
        {
            break v;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no api.json");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let url = endpoint["url"].as_str().expect("url").to_string();
    assert!(url.starts_with("https://agent.lab.test:"), "{endpoint}");
    let address: std::net::SocketAddr = endpoint["address"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("address");
    let pem = std::fs::read(&cert).expect("cert");
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
        .resolve("agent.lab.test", address)
        .build()
        .expect("client");
    let status = https
        .get(format!("{url}/api/v1/status"))
        .bearer_auth(READER)
        .send()
        .await
        .expect("HTTPS");
    assert_eq!(status.status().as_u16(), 200);
    // Clear text on the same port gets no answer.
    let plain = reqwest::Client::new()
        .get(format!("http://{address}/api/v1/status"))
        .bearer_auth(READER)
        .send()
        .await;
    assert!(
        plain.as_ref().map_or(true, |r| !r.status().is_success()),
        "{plain:?}"
    );
    // The CLI reaches the agent over TLS, trusting the configured certificate.
    let r = lab.run(&["pause"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("asking the running agent"),
        "{}",
        r.stderr
    );
    let log = stop(child).await;
    assert!(!log.contains(READER), "{log}");
}
