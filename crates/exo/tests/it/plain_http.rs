//! Item 10 of issue 11: `allow_insecure_http` allows plain HTTP only to loopback addresses; a
//! client secret never goes over plain HTTP to another host.

use exo_sim::{Endpoint, SimCloud};

use crate::support::*;

#[tokio::test]
async fn plain_http_to_a_host_that_is_not_loopback_is_refused_before_any_request() {
    let sim = spawn(exo_sim::SimConfig {
        listen: "0.0.0.0:0".parse().expect("addr"),
        ..tenant(1, SimCloud::Worldwide, None)
    })
    .await;
    let port = sim.addr().port();
    // The machine's name: it resolves to this machine, but it is not a loopback literal, and
    // what a name resolves to can change.
    let host = std::process::Command::new("hostname")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .expect("hostname");
    assert!(!host.is_empty());
    let base = format!("http://{host}:{port}");
    match settings(&section(&base, TENANT_ID, "")) {
        Err(e) => assert!(e.to_string().contains("not a loopback address"), "{e}"),
        Ok(s) => {
            // Accepted: the token request carries the client secret over plain http.
            let _ = exo_writeback_exo::ExoClient::new(s)
                .expect("client")
                .check_token()
                .await;
            panic!(
                "plain http to {host} accepted; the emulator received {} token request(s) with the secret",
                sim.state().request_count(Endpoint::Token)
            );
        }
    }
    assert_eq!(sim.state().request_count(Endpoint::Token), 0);
}

#[tokio::test]
async fn plain_http_to_loopback_is_allowed_for_the_emulator() {
    let sim = spawn(tenant(1, SimCloud::Worldwide, None)).await;
    for base in [
        sim.base_url(),
        format!("http://localhost:{}", sim.addr().port()),
    ] {
        let c = client(&section(&base, TENANT_ID, ""));
        c.check_token()
            .await
            .unwrap_or_else(|e| panic!("{base}: {e}"));
    }
}
