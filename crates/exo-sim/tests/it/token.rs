use serde_json::Value;

use crate::common::*;

const SCOPE: &str = "https://outlook.office365.com/.default";

async fn refused(sim: &Sim, form: &[(&str, &str)], status: u16, error: &str, code: u64) -> Value {
    let r = sim.token_request(form).await;
    assert_eq!(r.status(), status, "{form:?}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], error, "{v}");
    assert_eq!(v["error_codes"][0], code, "{v}");
    let desc = v["error_description"].as_str().unwrap();
    assert!(desc.starts_with(&format!("AADSTS{code}: ")), "{desc}");
    assert!(desc.contains("\r\nTrace ID: "), "{desc}");
    for k in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(v[k].is_string(), "{k} missing: {v}");
    }
    v
}

#[tokio::test]
async fn a_client_secret_gets_a_bearer_token() {
    let sim = start(0).await;
    let r = sim
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
            ("scope", SCOPE),
        ])
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3599);
    assert!(v["access_token"].as_str().unwrap().len() > 20);
    assert_eq!(
        sim.handle.state().request_count(exo_sim::Endpoint::Token),
        1
    );
}

#[tokio::test]
async fn bad_token_requests_get_entra_errors() {
    let sim = start(0).await;
    let base = [
        ("grant_type", "client_credentials"),
        ("client_id", CLIENT_ID),
        ("scope", SCOPE),
    ];
    let v = refused(
        &sim,
        &[base[0], base[1], base[2], ("client_secret", "wrong")],
        401,
        "invalid_client",
        7000215,
    )
    .await;
    assert!(
        !v.to_string().contains(SECRET),
        "the real secret never appears"
    );
    refused(
        &sim,
        &[
            base[0],
            base[1],
            ("scope", "https://graph.microsoft.com/User.Read"),
            ("client_secret", SECRET),
        ],
        400,
        "invalid_scope",
        1002012,
    )
    .await;
    refused(
        &sim,
        &[
            base[0],
            ("client_id", "nobody"),
            base[2],
            ("client_secret", SECRET),
        ],
        400,
        "unauthorized_client",
        700016,
    )
    .await;
    refused(
        &sim,
        &[base[1], base[2], ("client_secret", SECRET)],
        400,
        "invalid_request",
        900144,
    )
    .await;
    refused(&sim, &base, 401, "invalid_client", 7000216).await;
    let r = sim
        .http
        .post(format!(
            "{}/fabrikam.onmicrosoft.com/oauth2/v2.0/token",
            sim.base()
        ))
        .form(&[base[0], base[1], base[2], ("client_secret", SECRET)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error_codes"][0], 90002);
}

#[tokio::test]
async fn certificate_assertions_are_verified() {
    let sim = start(0).await;
    let good = Assertion {
        key_pem: KEY_PEM,
        aud: sim.token_url(),
        iss: CLIENT_ID,
        exp_offset: 600,
        x5t_s256: None,
        alg: jsonwebtoken::Algorithm::PS256,
        x5t_sha1: false,
    };
    let send = |assertion: String| {
        let sim = &sim;
        async move {
            sim.token_request(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT_ID),
                ("scope", SCOPE),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion),
            ])
            .await
        }
    };
    // MSAL's two pairs: PS256 + x5t#S256, and RS256 + x5t (SHA-1).
    for a in [
        good_clone(&good),
        Assertion {
            alg: jsonwebtoken::Algorithm::RS256,
            x5t_sha1: true,
            ..good_clone(&good)
        },
    ] {
        let r = send(a.sign()).await;
        assert_eq!(r.status(), 200, "{:?}", a.alg);
        let v: Value = r.json().await.unwrap();
        assert!(v["access_token"].is_string());
    }

    let cases: Vec<(&str, Assertion, u64)> = vec![
        (
            "signed by another key",
            Assertion {
                key_pem: OTHER_KEY_PEM,
                ..good_clone(&good)
            },
            700027,
        ),
        (
            "wrong audience",
            Assertion {
                aud: "https://login.microsoftonline.com/x/oauth2/v2.0/token".into(),
                ..good_clone(&good)
            },
            700023,
        ),
        (
            "expired",
            Assertion {
                exp_offset: -3600,
                ..good_clone(&good)
            },
            700024,
        ),
        (
            "other issuer",
            Assertion {
                iss: "someone-else",
                ..good_clone(&good)
            },
            700021,
        ),
        (
            "unknown thumbprint",
            Assertion {
                x5t_s256: Some("AAAA".into()),
                ..good_clone(&good)
            },
            700027,
        ),
        (
            "RS256 with x5t#S256 (a pair MSAL never sends)",
            Assertion {
                alg: jsonwebtoken::Algorithm::RS256,
                ..good_clone(&good)
            },
            700027,
        ),
        (
            "PS256 with the SHA-1 x5t",
            Assertion {
                x5t_sha1: true,
                ..good_clone(&good)
            },
            700027,
        ),
        (
            "RS256 with x5t (SHA-1) of another certificate",
            Assertion {
                alg: jsonwebtoken::Algorithm::RS256,
                x5t_sha1: true,
                key_pem: OTHER_KEY_PEM,
                ..good_clone(&good)
            },
            700027,
        ),
        (
            "another algorithm",
            Assertion {
                alg: jsonwebtoken::Algorithm::RS384,
                ..good_clone(&good)
            },
            50027,
        ),
    ];
    for (what, a, code) in cases {
        let r = send(a.sign()).await;
        assert_eq!(r.status(), 401, "{what}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_client", "{what}");
        assert_eq!(v["error_codes"][0], code, "{what}: {v}");
    }
    let r = send("not.a.jwt".into()).await;
    assert_eq!(r.status(), 401);
}

fn good_clone<'a>(a: &Assertion<'a>) -> Assertion<'a> {
    Assertion {
        key_pem: a.key_pem,
        aud: a.aud.clone(),
        iss: a.iss,
        exp_offset: a.exp_offset,
        x5t_s256: a.x5t_s256.clone(),
        alg: a.alg,
        x5t_sha1: a.x5t_sha1,
    }
}

#[tokio::test]
async fn tokens_expire_by_the_simulated_clock() {
    let sim = start_with(exo_sim::SimConfig {
        token_lifetime_secs: 60,
        ..config(3)
    })
    .await;
    let token = sim.token().await;
    let (status, _) = sim
        .invoke(&token, "Get-Mailbox", serde_json::json!({}))
        .await;
    assert_eq!(status, 200);
    sim.handle.state().advance_clock(61);
    let r = sim
        .invoke_at(
            &sim.invoke_url(),
            &token,
            "Get-Mailbox",
            serde_json::json!({}),
            None,
        )
        .await;
    assert_eq!(r.status(), 401);
    let www = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(www.starts_with("Bearer "), "{www}");
    assert!(www.contains("error=\"invalid_token\""), "{www}");
    // a fresh token works again
    let token = sim.token().await;
    let (status, _) = sim
        .invoke(&token, "Get-Mailbox", serde_json::json!({}))
        .await;
    assert_eq!(status, 200);
    // no token, or a forged one
    for auth in [None, Some("Bearer forged.token.value")] {
        let mut req = sim.http.post(sim.invoke_url()).body("{}");
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
    }
}

#[tokio::test]
async fn each_cloud_issues_tokens_for_its_own_exchange_resource_only() {
    for cloud in exo_sim::SimCloud::ALL {
        let sim = start_with(exo_sim::SimConfig { cloud, ..config(0) }).await;
        for other in exo_sim::SimCloud::ALL {
            let scope = other.scope();
            let r = sim
                .token_request(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", CLIENT_ID),
                    ("client_secret", SECRET),
                    ("scope", &scope),
                ])
                .await;
            if other == cloud {
                assert_eq!(r.status(), 200, "{cloud:?}");
            } else {
                assert_eq!(r.status(), 400, "{cloud:?} asked for {scope}");
                let v: Value = r.json().await.unwrap();
                assert_eq!(v["error"], "invalid_resource");
                assert_eq!(v["error_codes"][0], 500011);
            }
        }
    }
}
