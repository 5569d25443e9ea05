//! The web console in a real browser (issue 14): headless Chromium from Debian's packages
//! (`lab/install`), driven over WebDriver (chromedriver, `fantoccini`), against `exo-writeback
//! run` serving the lab DC and the emulator — sign in with a token, filter the logs and open an
//! entry, provision a mailbox on demand and see its steps, approve a held cycle and see AD
//! change.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::harness::{DOMAIN, cn, texts};
use crate::service::{Agent, OPERATOR, lab_with_a_cycle_to_hold};

/// chromedriver on a free port, stopped with the test.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn browser(profile: &std::path::Path) -> (Driver, Client) {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (lab/install installs chromium-driver)");
    let driver = Driver { child, port };
    // The flags this machine needs (no sandbox as root, no background connections to a
    // closed network), and a profile of its own.
    let caps = json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        }
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    let started = Instant::now();
    loop {
        match ClientBuilder::rustls()
            .expect("rustls")
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
        {
            Ok(client) => return (driver, client),
            Err(e) => {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "chromedriver: {e}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Waits until the element's text satisfies `ok`; its text.
async fn text_of(c: &Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let text = match c.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if ok(&text) {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{css} never showed what was expected; it shows {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `css` matches `n` elements.
async fn count(c: &Client, css: &str, n: usize) {
    let started = Instant::now();
    loop {
        let found = c.find_all(Locator::Css(css)).await.map(|v| v.len());
        if found.as_ref().is_ok_and(|&f| f == n) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{css}: {found:?} elements, not {n}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn click(c: &Client, css: &str) {
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn fill(c: &Client, css: &str, text: &str) {
    let e = c.find(Locator::Css(css)).await.expect(css);
    e.clear().await.expect("clear");
    e.send_keys(text).await.expect("type");
}

/// Where a screenshot goes: `target/console-screenshots/<name>.png` (docs/service.md shows
/// them).
async fn screenshot(c: &Client, name: &str) {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_signs_in_filters_provisions_and_approves_in_chromium() {
    // The agent's first cycle removes a value on 4 objects: held by the threshold.
    let lab = lab_with_a_cycle_to_hold().await;
    let agent = Agent::start(&lab).await;
    let profile = tempfile::tempdir().expect("profile");
    let (_driver, c) = browser(profile.path()).await;

    // Signing in: a wrong token is refused, the operator's accepted.
    c.goto(&format!("{}/console/", agent.url))
        .await
        .expect("open");
    fill(&c, "#token", "not-a-token-of-this-agent-0123456789").await;
    click(&c, "#signin").await;
    text_of(&c, "#login-error", |t| t.contains("not known")).await;
    fill(&c, "#token", OPERATOR).await;
    click(&c, "#signin").await;
    text_of(&c, "#job", |t| t.contains("ThresholdExceeded")).await;
    screenshot(&c, "overview").await;

    // The logs, filtered to the held objects; an entry opens with its steps.
    c.goto(&format!("{}/console/#logs", agent.url))
        .await
        .expect("logs");
    c.find(Locator::Css("#log-status"))
        .await
        .expect("status filter")
        .select_by_value("held")
        .await
        .expect("select held");
    click(&c, "#log-apply").await;
    count(&c, "#logs tbody tr", 4).await;
    click(&c, "#logs tbody tr").await;
    count(&c, "#detail-steps li", 4).await;
    text_of(&c, "#log-detail", |t| t.contains("extensionAttribute5")).await;
    screenshot(&c, "logs").await;

    // Provision on demand: the steps, and AD changed.
    lab.update(5, |m| m.set_custom_attribute(3, "from the console"));
    c.goto(&format!("{}/console/#provision", agent.url))
        .await
        .expect("provision");
    fill(&c, "#provision-identity", &format!("{}@{DOMAIN}", cn(5))).await;
    click(&c, "#provision-go").await;
    count(&c, "#provision-steps li", 4).await;
    text_of(&c, "#provision-result", |t| t.contains("success")).await;
    screenshot(&c, "provision").await;
    assert_eq!(
        texts(&lab.user(5).await, "extensionAttribute3"),
        ["from the console"]
    );

    // A held cycle reviewed and approved: AD changes.
    assert!(!texts(&lab.user(1).await, "extensionAttribute5").is_empty());
    c.goto(&format!("{}/console/#held", agent.url))
        .await
        .expect("held");
    click(&c, "button.review").await;
    text_of(&c, "#held-changes", |t| t.contains("4 staged changes")).await;
    screenshot(&c, "held").await;
    click(&c, "#approve").await;
    text_of(&c, "#decided", |t| t.contains("4 written")).await;
    for i in 1..=4 {
        assert!(texts(&lab.user(i).await, "extensionAttribute5").is_empty());
    }
    c.close().await.expect("close the browser");
    agent.stop().await;
}
