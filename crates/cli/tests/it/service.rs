//! `exo-writeback run` as a service (issue 14): the real binary serving its API over real
//! HTTP while it writes the lab DC from the emulator — tokens and roles, pause and resume in
//! the status and the metrics, logs paged as JSON and CSV, provision on demand, a held cycle
//! approved through the API, and the CLI asking the running agent instead of writing beside it.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use exo_writeback_store_sqlite::prelude::*;
use serde_json::{Value, json};

use crate::harness::{DOMAIN, Lab, cn, texts};
use crate::writers::{spawn_run, stop};

pub(crate) const READER: &str = "reader-token-0123456789abcdef0123456789abcdef";
pub(crate) const OPERATOR: &str = "operator-token-0123456789abcdef0123456789abcd";

/// The lab's configuration with a reader token (`console`) and an operator token (`ops`).
pub(crate) fn add_tokens(lab: &Lab) {
    use std::os::unix::fs::PermissionsExt;
    let mut config = std::fs::read_to_string(&lab.config).expect("config");
    for (name, role, token) in [("console", "reader", READER), ("ops", "operator", OPERATOR)] {
        let file = lab.dir.path().join(format!("{name}.token"));
        std::fs::write(&file, format!("{token}\n")).expect("token");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        config.push_str(&format!(
            "\n[[api.tokens]]\nname = \"{name}\"\nrole = \"{role}\"\nfile = \"{}\"\n",
            file.display()
        ));
    }
    std::fs::write(&lab.config, config).expect("config");
}

/// The URL of the API an agent serves, from `api.json` in its state directory (waiting for it
/// up to a minute).
pub(crate) async fn api_url(state_dir: &Path) -> String {
    let endpoint_file = state_dir.join("api.json");
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&endpoint_file)
            && let Ok(v) = serde_json::from_str::<Value>(&text)
            && let Some(url) = v["url"].as_str()
        {
            return url.to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no {}",
            endpoint_file.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A running agent and an HTTP client for its API.
pub(crate) struct Agent {
    child: Option<Child>,
    pub url: String,
    http: reqwest::Client,
}

impl Agent {
    /// Starts `exo-writeback run` and waits until it is ready and its first cycle ended.
    pub async fn start(lab: &Lab) -> Agent {
        let child = spawn_run(lab);
        let started = Instant::now();
        let url = api_url(&lab.state_dir()).await;
        let agent = Agent {
            child: Some(child),
            url,
            http: reqwest::Client::new(),
        };
        loop {
            let status = agent.get("/api/v1/status", Some(READER)).await;
            if status.0 == 200 && !status.1["lastCycle"].is_null() {
                let kind = &status.1["lastCycle"]["status"];
                if kind != "Running" {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the first cycle did not end: {:?}",
                status
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        agent
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("GET");
        let code = r.status().as_u16();
        let text = r.text().await.expect("body");
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn text(&self, path: &str, token: &str) -> (u16, String, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET");
        let code = r.status().as_u16();
        let kind = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (code, kind, r.text().await.expect("body"))
    }

    /// POST; the status, the content type and the body as text.
    pub async fn post_text(&self, path: &str, token: &str, body: Value) -> (u16, String, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("POST");
        let code = r.status().as_u16();
        let kind = r
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (code, kind, r.text().await.expect("body"))
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let (code, _, text) = self.post_text(path, token, body).await;
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGTERM; the agent's standard error.
    pub async fn stop(mut self) -> String {
        stop(self.child.take().expect("running")).await
    }
}

/// The value of an unlabelled metric line `exo_writeback_<name> <value>`.
fn metric(text: &str, name: &str) -> Option<f64> {
    let prefix = format!("exo_writeback_{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_agent_serves_its_api_to_tokens_by_role() {
    let lab = Lab::start(6).await;
    add_tokens(&lab);
    let agent = Agent::start(&lab).await;

    // Health needs no token; everything else does, and a reader may not change anything.
    assert_eq!(agent.get("/healthz", None).await.0, 200);
    assert_eq!(agent.get("/readyz", None).await.0, 200);
    assert_eq!(agent.get("/api/v1/status", None).await.0, 401);
    assert_eq!(
        agent.get("/api/v1/status", Some(&"x".repeat(45))).await.0,
        401
    );
    assert_eq!(agent.get("/metrics", None).await.0, 401);
    let (code, status) = agent.get("/api/v1/status", Some(READER)).await;
    assert_eq!(code, 200, "{status}");
    assert_eq!(status["job"]["state"], "Active", "{status}");
    assert!(status["job"]["paused"].is_null(), "{status}");
    let (code, refused) = agent.post("/api/v1/pause", READER, json!({})).await;
    assert_eq!(code, 403, "{refused}");

    // Pause through the API: the status and the metrics say so, and resume lifts it.
    let (code, paused) = agent
        .post(
            "/api/v1/pause",
            OPERATOR,
            json!({"reason": "change window"}),
        )
        .await;
    assert_eq!(code, 200, "{paused}");
    let (_, status) = agent.get("/api/v1/status", Some(READER)).await;
    let by = status["job"]["paused"]["by"].as_str().unwrap_or_default();
    assert!(by.contains("\"ops\""), "{status}");
    assert_eq!(status["job"]["paused"]["reason"], "change window");
    let (code, _, metrics) = agent.text("/metrics", READER).await;
    assert_eq!(code, 200);
    assert_eq!(metric(&metrics, "paused"), Some(1.0), "{metrics}");
    assert!(
        metric(&metrics, "last_successful_cycle_timestamp_seconds").is_some_and(|t| t > 0.0),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("exo_writeback_cycles_total{") && l.contains("Initial")),
        "{metrics}"
    );
    assert!(
        metrics.contains("exo_writeback_ldap_request_duration_seconds_count"),
        "{metrics}"
    );
    let (code, _) = agent.post("/api/v1/resume", OPERATOR, json!({})).await;
    assert_eq!(code, 200);
    let (_, status) = agent.get("/api/v1/status", Some(READER)).await;
    assert!(status["job"]["paused"].is_null(), "{status}");
    let (_, _, metrics) = agent.text("/metrics", READER).await;
    assert_eq!(metric(&metrics, "paused"), Some(0.0), "{metrics}");

    // Logs page by cursor, as JSON and as CSV.
    let (code, page) = agent
        .get("/api/v1/logs?status=success&limit=2", Some(READER))
        .await;
    assert_eq!(code, 200, "{page}");
    let first: Vec<&str> = page["value"]
        .as_array()
        .expect("value")
        .iter()
        .map(|e| e["id"].as_str().expect("id"))
        .collect();
    assert_eq!(first.len(), 2, "{page}");
    let cursor = page["nextCursor"].as_str().expect("a next page");
    let (_, next) = agent
        .get(
            &format!("/api/v1/logs?status=success&limit=2&cursor={cursor}"),
            Some(READER),
        )
        .await;
    let second = next["value"].as_array().expect("value");
    assert!(!second.is_empty(), "{next}");
    assert!(
        second
            .iter()
            .all(|e| !first.contains(&e["id"].as_str().unwrap_or_default()))
    );
    let (code, kind, csv) = agent
        .text("/api/v1/logs?status=success&format=csv", READER)
        .await;
    assert_eq!(code, 200);
    assert!(kind.starts_with("text/csv"), "{kind}");
    assert!(csv.lines().count() > 2, "{csv}");
    // The same columns as `exo-writeback logs --format csv`, the cycle's kind among them.
    let cli = lab
        .run(&["logs", "--format", "csv", "--status", "success"])
        .await;
    assert_eq!(csv.lines().next(), cli.stdout.lines().next(), "{csv}");
    assert!(
        csv.lines().nth(1).is_some_and(|l| l.contains(",Initial,")),
        "{csv}"
    );

    // Provision on demand writes AD and returns the steps.
    lab.update(2, |m| {
        m.set_custom_attribute(3, "provisioned through the API")
    });
    let smtp = format!("{}@{DOMAIN}", cn(2));
    let (code, r) = agent
        .post("/api/v1/provision", READER, json!({"identity": smtp}))
        .await;
    assert_eq!(code, 403, "{r}");
    let (code, r) = agent
        .post("/api/v1/provision", OPERATOR, json!({"identity": smtp}))
        .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(
        r["entry"]["provisioningSteps"].as_array().map(Vec::len),
        Some(4),
        "{r}"
    );
    assert_eq!(
        texts(&lab.user(2).await, "extensionAttribute3"),
        ["provisioned through the API"]
    );

    // The streamed form: each step on a line of its own, then the result with the same steps.
    lab.update(3, |m| m.set_custom_attribute(3, "provisioned live"));
    let smtp = format!("{}@{DOMAIN}", cn(3));
    let (code, kind, body) = agent
        .post_text(
            "/api/v1/provision/stream",
            OPERATOR,
            json!({"identity": smtp}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(kind, "application/x-ndjson");
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 5, "{body}");
    let streamed: Vec<&Value> = lines[..4].iter().map(|l| &l["step"]).collect();
    let kinds: Vec<&str> = streamed
        .iter()
        .filter_map(|s| s["provisioningStepType"].as_str())
        .collect();
    assert_eq!(kinds, ["import", "scoping", "matching", "export"], "{body}");
    let result = &lines[4]["result"];
    assert_eq!(
        result["entry"]["provisioningSteps"]
            .as_array()
            .map(|s| s.iter().collect::<Vec<_>>()),
        Some(streamed),
        "{body}"
    );
    assert_eq!(
        result["entry"]["provisioningStatusInfo"]["status"], "success",
        "{body}"
    );
    assert_eq!(
        texts(&lab.user(3).await, "extensionAttribute3"),
        ["provisioned live"]
    );
    let (code, _, body) = agent
        .post_text(
            "/api/v1/provision/stream",
            READER,
            json!({"identity": smtp}),
        )
        .await;
    assert_eq!(code, 403, "{body}");

    let log = agent.stop().await;
    // A refused request is logged with its source; no token is ever logged.
    assert!(log.contains("127.0.0.1"), "{log}");
    for secret in [READER, OPERATOR] {
        assert!(!log.contains(secret), "a token in the log:\n{log}");
    }
    assert!(!lab.state_dir().join("api.json").exists());
}

/// A lab of 6 mailboxes written once, with tokens and a threshold of 2, where 4 mailboxes
/// have since lost a value: the agent's first cycle is held by the threshold.
pub(crate) async fn lab_with_a_cycle_to_hold() -> Lab {
    let lab = Lab::start(6).await;
    lab.write_config("", "threshold = 1000000");
    let first = lab.run(&["sync"]).await;
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    lab.write_config("", "threshold = 2");
    add_tokens(&lab);
    for i in 1..=4 {
        lab.update(i, |m| m.set_custom_attribute(5, ""));
    }
    lab
}

/// A webhook receiver on loopback: every request body it got, each answered 200.
fn webhook_receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}/hooks/secret-key-in-the-url",
        listener.local_addr().expect("addr")
    );
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok() {
                seen.lock()
                    .expect("lock")
                    .push(String::from_utf8_lossy(&body).into_owned());
            }
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, bodies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_cycle_is_reviewed_and_approved_through_the_api() {
    let lab = lab_with_a_cycle_to_hold().await;
    // A webhook announces the held cycle; its URL (which carries its key) is a secret file.
    let (hook, bodies) = webhook_receiver();
    let hook_file = lab.dir.path().join("hook-url");
    std::fs::write(&hook_file, &hook).expect("hook url");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let mut config = std::fs::read_to_string(&lab.config).expect("config");
    config.push_str(&format!(
        "\n[notify]\n\n[[notify.webhooks]]\nname = \"ops\"\nurl_file = \"{}\"\n",
        hook_file.display()
    ));
    std::fs::write(&lab.config, config).expect("config");
    let agent = Agent::start(&lab).await;
    let started = Instant::now();
    let cycle = loop {
        let (_, status) = agent.get("/api/v1/status", Some(READER)).await;
        if let Some(c) = status["pendingApproval"][0].as_i64() {
            break c;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (_, _, metrics) = agent.text("/metrics", READER).await;
    assert_eq!(metric(&metrics, "held_cycles"), Some(1.0), "{metrics}");
    let started = Instant::now();
    let held_event: Value = loop {
        let got = bodies.lock().expect("lock").clone();
        if let Some(b) = got.iter().find(|b| b.contains("\"held\"")) {
            break serde_json::from_str(b).expect("the webhook body is JSON");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no held event: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(held_event["event"], "held", "{held_event}");
    assert!(
        held_event["summary"]
            .as_str()
            .is_some_and(|s| s.contains(&cycle.to_string())),
        "{held_event}"
    );
    for secret in ["secret-key-in-the-url", READER, OPERATOR] {
        assert!(!held_event.to_string().contains(secret), "{held_event}");
    }
    let (code, held) = agent
        .get(&format!("/api/v1/held/{cycle}"), Some(READER))
        .await;
    assert_eq!(code, 200, "{held}");
    assert!(
        held.to_string().matches("extensionAttribute5").count() >= 4,
        "{held}"
    );
    assert!(!texts(&lab.user(1).await, "extensionAttribute5").is_empty());

    let (code, r) = agent
        .post(&format!("/api/v1/held/{cycle}/approve"), READER, json!({}))
        .await;
    assert_eq!(code, 403, "{r}");
    let (code, r) = agent
        .post(
            &format!("/api/v1/held/{cycle}/approve"),
            OPERATOR,
            json!({}),
        )
        .await;
    assert_eq!(code, 200, "{r}");
    for i in 1..=4 {
        assert!(texts(&lab.user(i).await, "extensionAttribute5").is_empty());
    }
    let (_, status) = agent.get("/api/v1/status", Some(READER)).await;
    assert_eq!(status["pendingApproval"], json!([]), "{status}");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_asks_the_running_agent_to_write() {
    let lab = Lab::start(4).await;
    add_tokens(&lab);
    let agent = Agent::start(&lab).await;

    // `pause` goes through the agent with the operator token it can read.
    let r = lab.run(&["pause", "--reason", "from the CLI"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("asking the running agent"),
        "{}",
        r.stderr
    );
    let (_, status) = agent.get("/api/v1/status", Some(READER)).await;
    let by = status["job"]["paused"]["by"].as_str().unwrap_or_default();
    assert!(by.contains("through API token \"ops\""), "{status}");

    // Without a token it could use, a writing command refuses to write beside the agent.
    let mut cmd = crate::harness::command(&lab.config, &["resume"]);
    cmd.env(
        "EXO_WRITEBACK_TOKEN_FILE",
        lab.dir.path().join("no-such-token"),
    );
    let refused = crate::harness::finish(cmd);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(refused.stderr.contains("only writer"), "{}", refused.stderr);
    let (_, status) = agent.get("/api/v1/status", Some(READER)).await;
    assert!(!status["job"]["paused"].is_null(), "{status}");

    let r = lab.run(&["resume"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let (_, status) = agent.get("/api/v1/status", Some(READER)).await;
    assert!(status["job"]["paused"].is_null(), "{status}");
    agent.stop().await;

    // With no agent running, the CLI works on the state itself.
    let r = lab.run(&["pause"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(lab.store().pause().expect("pause").is_some());
}
