//! `exo-writeback check` catches typos in where the agent looks (issue 18): the configured
//! base DN is compared with the DC's naming contexts, and every `ad.search_bases` and
//! `writeback.container_scope` DN must parse and exist on the DC.

use exo_writeback_testlab::LabDc;

use crate::check::{check, config_for};

/// The lab config with `ad.base_dn` replaced.
fn with_base_dn(dc: &LabDc, base: &str) -> crate::check::ConfigFile {
    let line = format!("base_dn = \"{}\"", dc.base_dn);
    config_for(dc, |t, _| {
        assert!(t.contains(&line), "{t}");
        t.replace(&line, &format!("base_dn = \"{base}\""))
    })
}

#[test]
fn the_configured_base_dn_is_checked_against_the_dcs_naming_contexts() {
    let dc = LabDc::shared();
    let run = check(&dc.config_file, &["--only", "ad"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(&format!(
            "base DN: {} (configured): a naming context of the DC",
            dc.base_dn
        )),
        "{}",
        run.stdout
    );

    // A typo: today's check printed it as the DC's naming context and passed.
    let typo = "DC=lab,DC=example,DC=tset";
    let config = with_base_dn(dc, typo);
    let run = check(&config.path, &["--only", "ad"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains(&format!("naming context: {}", dc.base_dn)),
        "the DC's own default naming context: {}",
        run.stdout
    );
    assert!(
        !run.stdout.contains(&format!("naming context: {typo}")),
        "{}",
        run.stdout
    );
    for needle in [
        format!("base DN: {typo} (configured): FAILED"),
        "not a naming context of the DC, nor inside one".to_string(),
        format!("CN=Configuration,{}", dc.base_dn),
        format!("(did you mean {}?)", dc.base_dn),
    ] {
        assert!(run.stdout.contains(&needle), "{needle:?} in {}", run.stdout);
    }
    let json = check(&config.path, &["--only", "ad", "--json"]);
    assert_eq!(json.code, 1);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["ad"]["naming_context"], dc.base_dn.as_str(), "{v}");
    assert_eq!(v["ad"]["base_dn"]["dn"], typo, "{v}");
    assert_eq!(v["ad"]["base_dn"]["ok"], false, "{v}");

    // Inside a naming context but absent.
    let absent = format!("OU=Nowhere,{}", dc.base_dn);
    let run = check(&with_base_dn(dc, &absent).path, &["--only", "ad"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("does not exist on the DC"),
        "{}",
        run.stdout
    );
}

#[test]
fn every_search_base_and_container_scope_dn_must_exist() {
    let dc = LabDc::shared();
    let users = format!("CN=Users,{}", dc.base_dn);
    let typo = format!("OU=Mailboxs,{}", dc.base_dn);
    let controllers = format!("OU=Domain Controllers,{}", dc.base_dn);
    let nowhere = format!("OU=Nowhere,{}", dc.base_dn);
    let config = config_for(dc, |t, _| {
        format!(
            "{t}\nsearch_bases = [\"{users}\", \"{typo}\"]\n\n[writeback]\n\
             container_scope = [\"{users}\", \"{nowhere}\", \"{controllers}\"]\n"
        )
    });
    let run = check(&config.path, &["--only", "ad"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    for needle in [
        format!("search base {users}: OK"),
        format!("search base {typo}: FAILED: does not exist on the DC"),
        format!("container scope {users}: OK"),
        format!("container scope {nowhere}: FAILED: does not exist on the DC"),
        format!(
            "container scope {controllers}: FAILED: outside every search base (ad.search_bases), so no object in it is ever read"
        ),
    ] {
        assert!(run.stdout.contains(&needle), "{needle:?} in {}", run.stdout);
    }
    let json = check(&config.path, &["--only", "ad", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let containers = v["ad"]["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 5, "{v}");
    assert_eq!(
        containers.iter().filter(|c| c["ok"] == false).count(),
        3,
        "{v}"
    );

    // All of them right: the check passes.
    let config = config_for(dc, |t, _| {
        format!(
            "{t}\nsearch_bases = [\"{users}\", \"{controllers}\"]\n\n[writeback]\n\
             container_scope = [\"{users}\"]\n"
        )
    });
    let run = check(&config.path, &["--only", "ad"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}
