//! The writeback end to end: the real `exo-writeback` binary against a lab Samba DC and the
//! Exchange Online emulator (in-process `exo_sim`, seeded from the DC's users as directory sync
//! would), through the real protocols on both sides.

use std::collections::{BTreeMap, BTreeSet};

use exo_sim::SimConfig;
use exo_writeback_core::directory::{AttrValue, Attributes, DirectoryObject};
use exo_writeback_core::mailbox::Mailbox;
use exo_writeback_core::profile::Profile;
use serde_json::{Value, json};

use crate::harness::{DOMAIN, Lab, cn, dn, edoid, mailbox_for, texts};

const USERS: u32 = 25;

/// The lab of these tests: `USERS` users, an emulator paging 10 mailboxes at a time, seeded
/// by [`seed`].
async fn start() -> Lab {
    Lab::empty(USERS, 10).await
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Attributes that change with every write, whatever is written.
const META: [&str; 3] = ["whenchanged", "usnchanged", "dscorepropagationdata"];

fn without(attrs: &Attributes, skip: &BTreeSet<String>) -> BTreeMap<String, Vec<AttrValue>> {
    attrs
        .iter()
        .filter(|(k, v)| !skip.contains(*k) && !META.contains(k) && !v.is_empty())
        .map(|(k, v)| {
            // Multi-valued attributes are sets in LDAP: compare them in a fixed order.
            let mut v = v.to_vec();
            v.sort();
            (k.to_string(), v)
        })
        .collect()
}

/// Seed the emulator from the DC's users, as directory sync would (ImmutableId = objectGUID),
/// with cloud-side values: custom attributes, an extra alias, a mix of cases.
fn seed(lab: &Lab, users: &BTreeMap<u32, DirectoryObject>) {
    for (&i, obj) in users {
        // The harness's mailbox of user i, with these tests' own values.
        let mut m = mailbox_for(i, obj);
        m.email_addresses.insert(
            1,
            format!("smtp:{}@contoso.mail.onmicrosoft.example", cn(i)),
        );
        m.is_exchange_cloud_managed = i != 2;
        m.hidden_from_address_lists_enabled = i == 7;
        m.custom_attributes[4] = None;
        if i % 2 == 1 {
            m.custom_attributes[9] = Some(format!("ten-{i}"));
        }
        if i % 4 == 0 {
            m.extension_custom_attributes[1] = vec![format!("x{i}"), format!("y{i}")];
        }
        if i == 6 {
            // Longer than extensionAttribute1's rangeUpper (1024): a schema violation.
            m.custom_attributes[0] = Some("z".repeat(1500));
        }
        if i == 8 {
            m.email_addresses
                .push(format!("smtp:shared-conflict@{DOMAIN}"));
        }
        lab.sim.state().add_mailbox(m).expect("seed mailbox");
    }
}

/// What AD must hold for a cloud-managed mailbox (every mapped attribute but
/// proxyAddresses, which is checked on its own).
fn expected(m: &Mailbox) -> BTreeMap<String, Vec<String>> {
    let mut e = BTreeMap::new();
    for i in 0..15 {
        e.insert(
            format!("extensionAttribute{}", i + 1),
            m.custom_attributes[i].iter().cloned().collect(),
        );
    }
    for i in 0..5 {
        e.insert(
            format!("msExchExtensionCustomAttribute{}", i + 1),
            m.extension_custom_attributes[i].clone(),
        );
    }
    e.insert(
        "mail".into(),
        m.windows_email_address.iter().cloned().collect(),
    );
    e.insert(
        "msExchRecipientTypeDetails".into(),
        vec!["2147483648".into()],
    );
    e.insert(
        "msExchRecipientDisplayType".into(),
        vec!["-2147483642".into()],
    );
    e.insert(
        "msExchHideFromAddressLists".into(),
        vec![
            if m.hidden_from_address_lists_enabled {
                "TRUE"
            } else {
                "FALSE"
            }
            .into(),
        ],
    );
    e
}

fn assert_in_sync(i: u32, obj: &DirectoryObject, m: &Mailbox, x500_before: &[String]) {
    for (attr, want) in expected(m) {
        assert_eq!(sorted(texts(obj, &attr)), sorted(want), "{} {attr}", cn(i));
    }
    let mut want: Vec<String> = m.email_addresses.clone();
    want.extend(x500_before.iter().cloned());
    assert_eq!(
        sorted(texts(obj, "proxyAddresses")),
        sorted(want),
        "{} proxyAddresses",
        cn(i)
    );
}

fn mapped_lower() -> BTreeSet<String> {
    Profile::CloudManaged
        .target_attributes()
        .iter()
        .map(|a| a.to_ascii_lowercase())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writeback_end_to_end() {
    let lab = start().await;
    // An AD object outside the mailboxes that already holds an address mailbox 8 will add.
    let mut squatter = Attributes::new();
    for (k, v) in [
        (
            "objectClass",
            vec!["top", "person", "organizationalPerson", "user"],
        ),
        ("cn", vec!["squatter"]),
        ("sAMAccountName", vec!["squatter"]),
        (
            "proxyAddresses",
            vec!["smtp:shared-conflict@contoso.example"],
        ),
    ] {
        squatter.insert(
            k,
            v.into_iter().map(|s| AttrValue::Text(s.into())).collect(),
        );
    }
    let squatter_dn = format!("CN=squatter,CN=Users,{}", lab.dc.base_dn);
    lab.ad
        .add(&squatter_dn, &squatter)
        .await
        .expect("add squatter");

    let before = lab.all_users().await;
    assert_eq!(before.len(), USERS as usize);
    seed(&lab, &before);
    let x500 = |obj: &DirectoryObject| -> Vec<String> {
        texts(obj, "proxyAddresses")
            .into_iter()
            .filter(|p| p.to_ascii_uppercase().starts_with("X500:"))
            .collect()
    };

    // --- the initial cycle --------------------------------------------------------------------
    let r = lab.run(&["sync", "--json"]).await;
    let report = r.json();
    assert_eq!(report["kind"], "Initial", "{}", r.stdout);
    assert_eq!(report["counts"]["imported"], USERS);
    assert_eq!(report["counts"]["written"], USERS - 3, "{}", r.stdout);
    assert_eq!(report["counts"]["skipped"], 1);
    assert_eq!(report["counts"]["failed"], 2);
    assert_eq!(r.code, 1, "failures give exit code 1");
    assert_eq!(
        report["failure_causes"],
        json!({"SchemaConstraint": 1, "ProxyAddressConflict": 1})
    );

    let after = lab.all_users().await;
    let mapped = mapped_lower();
    for (&i, obj) in &after {
        let old = &before[&i];
        if [2, 6, 8].contains(&i) {
            assert_eq!(
                without(&obj.attributes, &BTreeSet::new()),
                without(&old.attributes, &BTreeSet::new()),
                "{} must not be touched",
                cn(i)
            );
            continue;
        }
        assert_in_sync(i, obj, &lab.mailbox(i), &x500(old));
        // Nothing but mapped attributes changed.
        assert_eq!(
            without(&obj.attributes, &mapped),
            without(&old.attributes, &mapped),
            "{}: an unmapped attribute changed",
            cn(i)
        );
    }
    // X500 addresses only in AD survive (every 5th lab user has one).
    assert_eq!(x500(&after[&5]).len(), 1);
    assert_eq!(x500(&after[&5]), x500(&before[&5]));

    // Skips and failures are in the log with their reasons.
    let logs = lab
        .run(&[
            "logs",
            "--format",
            "json",
            "--status",
            "failure,skipped",
            "--cycle",
            "1",
        ])
        .await;
    assert_eq!(logs.code, 0, "{}", logs.stderr);
    let entries: Vec<Value> = logs
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let reason_of = |smtp: &str| -> Value {
        entries
            .iter()
            .find(|e| e["source"]["primary_smtp_address"] == smtp)
            .unwrap_or_else(|| panic!("no log entry for {smtp}: {}", logs.stdout))["reason"]
            .clone()
    };
    let r2 = reason_of("mbx00002@contoso.example");
    assert_eq!(r2["code"], "NotInScope");
    assert!(
        r2["message"]
            .as_str()
            .unwrap_or("")
            .contains("IsExchangeCloudManaged is False")
    );
    let r6 = reason_of("mbx00006@contoso.example");
    assert_eq!(r6["code"], "SchemaConstraint");
    assert!(
        r6["message"]
            .as_str()
            .unwrap_or("")
            .contains("extensionAttribute1"),
        "{r6}"
    );
    let r8 = reason_of("mbx00008@contoso.example");
    assert_eq!(r8["code"], "ProxyAddressConflict");
    assert!(
        r8["message"]
            .as_str()
            .unwrap_or("")
            .to_lowercase()
            .contains(&squatter_dn.to_lowercase()),
        "{r8}"
    );
    let csv = lab.run(&["logs", "--format", "csv", "--cycle", "1"]).await;
    assert!(
        csv.stdout
            .starts_with("time,cycle,kind,source,target,action,status,reason,modified")
    );
    assert_eq!(
        csv.stdout.lines().count(),
        USERS as usize + 1,
        "{}",
        csv.stdout
    );

    // --- a second cycle with no changes writes nothing -------------------------------------------
    let snapshot = lab.all_users().await;
    let r = lab.run(&["sync", "--json"]).await.json();
    assert_eq!(r["kind"], "Delta");
    assert_eq!(r["counts"]["written"], 0, "{r}");
    let again = lab.all_users().await;
    for (i, obj) in &again {
        assert_eq!(
            texts(obj, "uSNChanged"),
            texts(&snapshot[i], "uSNChanged"),
            "{} was written",
            cn(*i)
        );
    }

    // --- a cloud change (Set-Mailbox through the real protocol) reaches AD in the next delta ----
    let client = exo_writeback_exo::ExoClient::new(
        toml::from_str::<exo_writeback_exo::ExoConfig>(&format!(
            "tenant = \"contoso.onmicrosoft.com\"\nclient_id = \"{}\"\nclient_secret_file = {:?}\n\
             login_base = \"{b}\"\napi_base = \"{b}\"\nallow_insecure_http = true\npage_size = 10\n\
             timeout_secs = 30\nmax_attempts = 3\nthrottle_budget_secs = 60\n",
            SimConfig::default().client_id,
            lab.dir.path().join("client-secret").display().to_string(),
            b = lab.sim.base_url()
        ))
        .expect("exo section")
        .settings()
        .expect("exo settings"),
    )
    .expect("exo client");
    let mut params = serde_json::Map::new();
    params.insert("CustomAttribute5".into(), json!("from-the-cloud"));
    params.insert("HiddenFromAddressListsEnabled".into(), json!(true));
    client
        .set_mailbox("mbx00003@contoso.example", params)
        .await
        .expect("Set-Mailbox");
    let r = lab.run(&["sync", "--json"]).await.json();
    assert_eq!(r["kind"], "Delta");
    assert_eq!(r["counts"]["written"], 1, "{r}");
    let u3 = lab.user(3).await;
    assert_eq!(texts(&u3, "extensionAttribute5"), ["from-the-cloud"]);
    assert_eq!(texts(&u3, "msExchHideFromAddressLists"), ["TRUE"]);

    // --- provision on demand ------------------------------------------------------------------
    let p = lab.run(&["provision", "mbx00002@contoso.example"]).await;
    assert_eq!(p.code, 0, "{}{}", p.stdout, p.stderr);
    assert!(
        p.stdout.contains("✓ Import from Exchange Online"),
        "{}",
        p.stdout
    );
    assert!(
        p.stdout
            .contains("NotInScope: IsExchangeCloudManaged is False"),
        "{}",
        p.stdout
    );
    assert!(
        p.stdout.contains("– Match in Active Directory"),
        "{}",
        p.stdout
    );

    let all_before = lab.all_users().await;
    let p = lab.run(&["provision", "*)(cn=*", "--json"]).await;
    assert_eq!(p.code, 1);
    let v = p.json();
    assert_eq!(v["reason"]["code"], "MailboxNotFound", "{v}");
    assert_eq!(v["steps"]["import"]["status"], "failure");
    let all_after = lab.all_users().await;
    for (i, obj) in &all_after {
        assert_eq!(
            texts(obj, "uSNChanged"),
            texts(&all_before[i], "uSNChanged")
        );
    }

    lab.update(4, |m| m.set_custom_attribute(6, "on demand"));
    let p = lab
        .run(&["provision", "mbx00004@lab.example.test", "--dry-run"])
        .await;
    assert_eq!(p.code, 0, "{}{}", p.stdout, p.stderr);
    assert!(
        p.stdout.contains("extensionAttribute6: (none) → on demand"),
        "{}",
        p.stdout
    );
    assert!(
        texts(&lab.user(4).await, "extensionAttribute6").is_empty(),
        "dry run wrote"
    );
    let p = lab.run(&["provision", &dn(4)]).await;
    assert_eq!(p.code, 0, "{}{}", p.stdout, p.stderr);
    assert!(
        p.stdout
            .contains("✓ Perform action: updated extensionAttribute6"),
        "{}",
        p.stdout
    );
    assert_eq!(
        texts(&lab.user(4).await, "extensionAttribute6"),
        ["on demand"]
    );

    // --- a mailbox entering scope is written by the next delta cycle ---------------------------
    let mut params = serde_json::Map::new();
    params.insert("IsExchangeCloudManaged".into(), json!(true));
    client
        .set_mailbox("mbx00002@contoso.example", params)
        .await
        .expect("Set-Mailbox -IsExchangeCloudManaged");
    let r = lab.run(&["sync", "--json"]).await.json();
    assert_eq!(r["kind"], "Delta");
    assert_eq!(r["counts"]["written"], 1, "{r}");
    assert_in_sync(2, &lab.user(2).await, &lab.mailbox(2), &[]);

    // --- the change threshold holds a mass removal until approved --------------------------------
    lab.write_config("", "threshold = 3");
    for i in 10..=15 {
        lab.update(i, |m| m.set_custom_attribute(1, ""));
    }
    let held_before = lab.all_users().await;
    let r = lab.run(&["sync", "--json"]).await;
    let report = r.json();
    assert_eq!(report["status"], "ThresholdExceeded", "{}", r.stdout);
    let held_cycle = report["cycle"].as_i64().expect("cycle");
    for i in 10..=15 {
        assert_eq!(
            texts(&lab.user(i).await, "extensionAttribute1"),
            texts(&held_before[&i], "extensionAttribute1"),
            "held cycle wrote"
        );
    }
    let status = lab.run(&["status", "--json"]).await.json();
    assert_eq!(status["job_state"], "ThresholdExceeded");
    assert_eq!(status["held_cycle"], held_cycle);
    let preview = lab.run(&["preview", "--json"]).await.json();
    assert_eq!(preview["held"]["cycle"], held_cycle);
    assert_eq!(
        preview["held"]["items"].as_array().map(Vec::len),
        Some(6),
        "{preview}"
    );
    let refused = lab.run(&["sync"]).await;
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("approve"), "{}", refused.stderr);
    let a = lab
        .run(&["approve", &held_cycle.to_string(), "--json"])
        .await
        .json();
    assert_eq!(a["counts"]["written"], 6, "{a}");
    let approve_cycle = a["cycle"].as_i64().expect("cycle");
    for i in 10..=15 {
        assert!(texts(&lab.user(i).await, "extensionAttribute1").is_empty());
    }
    assert_eq!(
        lab.run(&["status", "--json"]).await.json()["job_state"],
        "Active"
    );

    // --- undo restores the previous values exactly --------------------------------------------
    let u = lab
        .run(&["undo", "--cycle", &approve_cycle.to_string(), "--json"])
        .await;
    assert_eq!(u.code, 0, "{}{}", u.stdout, u.stderr);
    for i in 10..=15 {
        assert_eq!(
            texts(&lab.user(i).await, "extensionAttribute1"),
            texts(&held_before[&i], "extensionAttribute1")
        );
    }
    // Undo of one object's latest cycle (the initial one, for user 1): everything as before.
    let u = lab
        .run(&["undo", "--object", "mbx00001@contoso.example"])
        .await;
    assert_eq!(u.code, 0, "{}{}", u.stdout, u.stderr);
    assert_eq!(
        without(&lab.user(1).await.attributes, &BTreeSet::new()),
        without(&before[&1].attributes, &BTreeSet::new())
    );

    // --- the undone values stick: a full reconcile leaves them (pinned) ----------------------
    lab.write_config("", ""); // back to the default threshold (500)
    let r = lab.run(&["sync", "--full", "--json"]).await.json();
    assert_eq!(r["counts"]["written"], 0, "{r}");
    assert_eq!(r["counts"]["pinned"], 7, "{r}"); // user 1 and users 10..=15
    let unpinned = lab.run(&["unpin", "--all"]).await;
    assert_eq!(unpinned.code, 0, "{}{}", unpinned.stdout, unpinned.stderr);

    // --- released, a full reconcile writes the cloud values over the undone ones -----------
    let r = lab.run(&["sync", "--full", "--json"]).await.json();
    assert_eq!(r["kind"], "FullReconcile");
    assert_eq!(r["counts"]["written"], 7, "{r}"); // user 1 and users 10..=15
    let full_cycle = r["cycle"].to_string();
    let warnings = lab
        .run(&[
            "logs",
            "--format",
            "json",
            "--status",
            "warning",
            "--cycle",
            &full_cycle,
        ])
        .await;
    let codes: Vec<String> = warnings
        .stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json line");
            v["reason"]["code"].as_str().unwrap_or("").to_string()
        })
        .collect();
    // The undone values were written by the agent's own undo, not edited on-premises: an
    // ordinary update, no drift.
    assert!(codes.is_empty(), "{}", warnings.stdout);
    assert_eq!(r["counts"]["drift_detected"], 0, "{r}");
    assert_in_sync(1, &lab.user(1).await, &lab.mailbox(1), &[]);

    // --- status and profiles -----------------------------------------------------------------
    let s = lab.run(&["status"]).await;
    assert!(s.stdout.contains("job state:  Active"), "{}", s.stdout);
    let profiles = lab.run(&["profiles", "--show"]).await;
    assert!(
        profiles.stdout.contains("extensionAttribute15"),
        "{}",
        profiles.stdout
    );
    assert!(
        profiles.stdout.contains("[CustomAttribute15]"),
        "{}",
        profiles.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_agent_mid_cycle_and_running_again_converges() {
    let lab = start().await;
    let before = lab.all_users().await;
    seed(&lab, &before);
    let first = lab.run(&["sync", "--json"]).await.json();
    assert_eq!(first["kind"], "Initial");
    // A change on every mailbox, then a delta cycle killed while it reads (slow pages).
    for i in 1..=USERS {
        lab.update(i, |m| m.set_custom_attribute(12, &format!("twelve-{i}")));
    }
    lab.sim.state().add_fault(exo_sim::FaultRule {
        endpoint: exo_sim::Endpoint::Invoke,
        kind: exo_sim::FaultKind::Delay { ms: 700 },
        count: None,
        probability: None,
        skip: 0,
    });
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_exo-writeback"))
        .args(["sync", "--config"])
        .arg(&lab.config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    tokio::time::sleep(std::time::Duration::from_millis(1800)).await;
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    lab.sim.state().clear_faults();

    let r = lab.run(&["sync", "--json"]).await;
    let report = r.json();
    assert_eq!(report["kind"], "Delta", "{}", r.stdout);
    {
        use exo_writeback_store_sqlite::prelude::*;
        let store = exo_writeback_store_sqlite::SqliteStore::open_in(&lab.dir.path().join("state"))
            .expect("store");
        let killed = store
            .cycle(exo_writeback_core::provisioning::CycleId(2))
            .expect("read cycle")
            .expect("the killed cycle was begun");
        assert_eq!(
            killed.status,
            exo_writeback_core::provisioning::CycleStatus::Interrupted,
            "the kill happened mid-cycle"
        );
    }
    let after = lab.all_users().await;
    for (&i, obj) in &after {
        if [2, 6, 8].contains(&i) {
            continue;
        }
        let old = &before[&i];
        let x500: Vec<String> = texts(old, "proxyAddresses")
            .into_iter()
            .filter(|p| p.starts_with("X500:"))
            .collect();
        assert_in_sync(i, obj, &lab.mailbox(i), &x500);
        assert_eq!(texts(obj, "extensionAttribute12"), [format!("twelve-{i}")]);
    }
    let again = lab.run(&["sync", "--json"]).await.json();
    assert_eq!(again["counts"]["written"], 0, "{again}");

    // SIGTERM stops a cycle cleanly: the page being read is abandoned, nothing is half
    // written, the watermark stays, and the next cycle converges.
    let watermark = lab.run(&["status", "--json"]).await.json()["watermark"].clone();
    for i in 1..=USERS {
        lab.update(i, |m| m.set_custom_attribute(13, &format!("thirteen-{i}")));
    }
    lab.sim.state().add_fault(exo_sim::FaultRule {
        endpoint: exo_sim::Endpoint::Invoke,
        kind: exo_sim::FaultKind::Delay { ms: 3000 },
        count: None,
        probability: None,
        skip: 0,
    });
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_exo-writeback"))
        .args(["sync", "--json", "--config"])
        .arg(&lab.config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(term.success());
    let started = std::time::Instant::now();
    let code = loop {
        if let Some(code) = child.try_wait().expect("wait") {
            break code;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "sync did not stop on SIGTERM"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        use std::io::Read;
        let _ = o.read_to_string(&mut out);
    }
    assert_eq!(code.code(), Some(1), "{out}");
    let stopped: Value = serde_json::from_str(&out).expect("report");
    assert!(
        stopped["status"].as_str().unwrap_or("").contains("stopped"),
        "{stopped}"
    );
    assert_eq!(stopped["counts"]["written"], 0, "{stopped}");
    assert_eq!(
        lab.run(&["status", "--json"]).await.json()["watermark"],
        watermark
    );
    lab.sim.state().clear_faults();
    let r = lab.run(&["sync", "--json"]).await.json();
    assert_eq!(r["counts"]["written"], USERS - 2, "{r}");
    for (i, obj) in lab.all_users().await {
        if [2, 6].contains(&i) {
            continue;
        }
        assert_eq!(
            texts(&obj, "extensionAttribute13"),
            [format!("thirteen-{i}")]
        );
    }
    let cycles = lab.run(&["status", "--json"]).await.json();
    assert_eq!(cycles["last_cycle"]["kind"], "Delta");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_writes_a_cloud_change_within_three_intervals_refuses_a_second_runner_and_stops_on_sigterm()
 {
    let lab = start().await;
    let before = lab.all_users().await;
    seed(&lab, &before);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_exo-writeback"))
        .args(["run", "--config"])
        .arg(&lab.config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait for the initial cycle.
    let mut initial_done = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let s = lab.run(&["status", "--json"]).await;
        if s.code == 0 && s.json()["watermark"].is_string() {
            initial_done = true;
            break;
        }
    }
    assert!(initial_done, "the initial cycle did not complete");
    // One cycle runner at a time on a state directory.
    let second = lab.run(&["sync"]).await;
    assert_eq!(second.code, 2, "{}", second.stdout);
    assert!(
        second.stderr.contains("another exo-writeback sync or run"),
        "{}",
        second.stderr
    );
    assert_eq!(texts(&lab.user(1).await, "extensionAttribute1"), ["Dept 1"]);
    // A change in Exchange Online reaches AD in a following delta: within 15 s, three
    // intervals of 5 s (a cycle may be running, and the poll is coarse).
    lab.update(9, |m| m.set_custom_attribute(3, "while running"));
    let mut arrived = false;
    for _ in 0..60 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        if texts(&lab.user(9).await, "extensionAttribute3") == ["while running"] {
            arrived = true;
            break;
        }
    }
    assert!(arrived, "the change did not reach AD");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let mut exited = None;
    for _ in 0..60 {
        if let Some(code) = child.try_wait().expect("wait") {
            exited = Some(code);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let code = exited.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("run did not stop on SIGTERM")
    });
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        use std::io::Read;
        let _ = o.read_to_string(&mut out);
    }
    assert!(code.success(), "{code:?} {out}");
    assert!(out.contains("stopped"), "{out}");

    // restart --scope watermark: the next cycle is an initial one again, and writes nothing.
    let r = lab.run(&["restart", "--scope", "watermark"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = lab.run(&["sync", "--json"]).await.json();
    assert_eq!(s["kind"], "Initial");
    assert_eq!(s["counts"]["written"], 0, "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ad_refusal_fails_only_that_object_whole_with_the_result_code() {
    let lab = start().await;
    let before = lab.all_users().await;
    seed(&lab, &before);
    // A custom mapping to a DN-syntax attribute (opted in by name): planning passes any
    // text, but the DC refuses a value that is not a DN (invalidDNSyntax).
    lab.write_config(
        "",
        "allow_extra_targets = [\"seeAlso\"]\n[[writeback.mappings]]\ntarget = \"seeAlso\"\nsource = \"CustomAttribute9\"\nmulti_valued = true\n",
    );
    lab.update(3, |m| m.set_custom_attribute(9, "refused by AD"));
    let r = lab.run(&["sync", "--json"]).await;
    let report = r.json();
    // 6 (SchemaConstraint) and 3 (refused by AD); 2 is not in scope.
    assert_eq!(report["counts"]["failed"], 2, "{}", r.stdout);
    assert_eq!(report["counts"]["written"], USERS - 3, "{}", r.stdout);
    // Written whole or not at all: none of user 3's mapped attributes changed.
    let u3 = lab.user(3).await;
    assert_eq!(
        without(&u3.attributes, &BTreeSet::new()),
        without(&before[&3].attributes, &BTreeSet::new())
    );
    assert!(texts(&lab.user(4).await, "extensionAttribute1") == ["Dept 4"]);
    let logs = lab
        .run(&[
            "logs",
            "--format",
            "json",
            "--identity",
            "mbx00003@contoso.example",
        ])
        .await;
    let entry: Value =
        serde_json::from_str(logs.stdout.lines().next().expect("a log entry")).expect("json");
    assert_eq!(entry["status"], "failure");
    assert_eq!(entry["reason"]["code"], "LdapError");
    let message = entry["reason"]["message"].as_str().unwrap_or("");
    assert!(message.contains("LDAP result 34"), "{message}");
    assert!(message.contains(&dn(3)), "{message}");
    assert!(entry["steps"]["export"]["status"] == "failure");
    // Both failed objects wait in escrow for a retry.
    let status = lab.run(&["status", "--json"]).await.json();
    assert_eq!(status["escrow"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_profiles_write_the_hybrid_attributes_and_stay_stable() {
    let lab = start().await;
    let before = lab.all_users().await;
    seed(&lab, &before);
    lab.write_config("", "profiles = [\"cloud-managed\", \"hybrid\"]");
    let r = lab.run(&["sync", "--json"]).await;
    let report = r.json();
    // Only 6 fails (SchemaConstraint); 2 is not cloud-managed but in the hybrid scope.
    assert_eq!(
        report["counts"]["written"],
        USERS - 1,
        "{}{}",
        r.stdout,
        r.stderr
    );
    let u2 = lab.user(2).await;
    assert_eq!(
        texts(&u2, "msDS-ExternalDirectoryObjectId"),
        [format!("User_{}", edoid(2))]
    );
    assert_eq!(
        texts(&u2, "extensionAttribute1"),
        texts(&before[&2], "extensionAttribute1"),
        "cloud-managed attributes are not written for a mailbox outside that scope"
    );
    let u1 = lab.user(1).await;
    let m1 = lab.mailbox(1);
    assert_eq!(
        texts(&u1, "msDS-ExternalDirectoryObjectId"),
        [format!("User_{}", edoid(1))]
    );
    let legacy = m1.legacy_exchange_dn.clone().expect("LegacyExchangeDN");
    let proxies = texts(&u1, "proxyAddresses");
    assert!(
        proxies
            .iter()
            .any(|p| p.eq_ignore_ascii_case(&format!("x500:{legacy}"))),
        "{proxies:?}"
    );
    assert!(proxies.contains(&"SMTP:mbx00001@contoso.example".to_string()));
    assert_eq!(texts(&u1, "msExchArchiveStatus"), ["0"]);
    // No junk email configuration is known: the hashes are left alone.
    assert!(texts(&u1, "msExchSafeSendersHash").is_empty());
    // The two profiles' proxyAddresses rules agree: a second cycle writes nothing.
    let again = lab.run(&["sync", "--json"]).await.json();
    assert_eq!(again["counts"]["written"], 0, "{again}");
}
