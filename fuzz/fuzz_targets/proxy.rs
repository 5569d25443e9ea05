//! Fuzz the proxy-address parser and the cloud-managed proxyAddresses policy: no input may
//! panic; a parsed address prints as text that parses to the same address; an accepted
//! cloud list yields exactly one primary `SMTP:` (the cloud's), keeps every cloud address
//! and holds no address twice.
//!
//! Input: lines. Lines before the first `--` line are the cloud's EmailAddresses, lines
//! between the first and second `--` are AD's proxyAddresses, the rest preserved prefixes.
#![no_main]

use exo_writeback_core::proxy::{ProxyAddress, add_if_missing, cloud_managed_policy, validate_smtp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut sections: [Vec<String>; 3] = Default::default();
    let mut section = 0;
    for line in text.split('\n') {
        if line == "--" && section < 2 {
            section += 1;
        } else {
            sections[section].push(line.to_string());
        }
    }
    let [cloud, current, preserve] = sections;

    for value in cloud.iter().chain(&current) {
        if let Ok(parsed) = ProxyAddress::parse(value) {
            let printed = parsed.to_string();
            assert_eq!(printed, *value, "a parsed address prints as written");
            let reparsed = ProxyAddress::parse(&printed).expect("printed address parses");
            assert_eq!(parsed, reparsed);
            assert!(parsed.same_address(&reparsed));
            if parsed.is_smtp() {
                assert!(validate_smtp(&parsed.address).is_ok());
            }
        } else {
            let _ = validate_smtp(value);
        }
    }

    if let Ok(desired) = cloud_managed_policy(&cloud, &current, &preserve) {
        let parsed: Vec<ProxyAddress> = desired
            .iter()
            .map(|v| {
                // Preserved AD values need not be valid; they still have a prefix.
                ProxyAddress::parse(v).unwrap_or_else(|_| {
                    let (p, a) = v.split_once(':').expect("every result has a prefix");
                    ProxyAddress {
                        prefix: p.to_string(),
                        address: a.to_string(),
                    }
                })
            })
            .collect();
        let primaries: Vec<&ProxyAddress> = parsed.iter().filter(|p| p.is_primary()).collect();
        assert_eq!(primaries.len(), 1, "exactly one primary in {desired:?}");
        let cloud_primary = cloud
            .iter()
            .filter_map(|v| ProxyAddress::parse(v.trim()).ok())
            .find(|p| p.is_primary())
            .expect("an accepted cloud list has a primary");
        assert!(primaries[0].same_address(&cloud_primary));
        for value in &cloud {
            let c = ProxyAddress::parse(value.trim()).expect("an accepted cloud value parses");
            assert!(
                parsed.iter().any(|p| p.same_address(&c)),
                "cloud address {value:?} missing from {desired:?}"
            );
        }
        for (i, a) in parsed.iter().enumerate() {
            for b in &parsed[i + 1..] {
                assert!(!a.same_address(b), "{a} twice in {desired:?}");
            }
        }
        // Every value is the cloud's, or an AD value with a preserved prefix.
        for (d, text) in parsed.iter().zip(&desired) {
            let from_cloud = cloud.iter().any(|c| c.trim() == text);
            let preserved = preserve.iter().any(|p| p.eq_ignore_ascii_case(&d.prefix))
                && current.iter().any(|a| a.eq_ignore_ascii_case(text));
            assert!(from_cloud || preserved, "{text:?} came from nowhere");
        }
    }

    if let Some(value) = cloud.first() {
        let added = add_if_missing(&current, value);
        assert!(added.len() == current.len() || added.len() == current.len() + 1);
        assert!(added.starts_with(&current));
        assert!(added.iter().any(|a| a.to_lowercase() == value.to_lowercase()));
    }
});
