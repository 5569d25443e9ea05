//! The planner's idea of AD's equality (`core::equality::ad_equal`: which values AD holds as one,
//! so a plan neither writes two values AD takes for one nor counts a case-only change as a
//! loss) checked against Samba's own equality matching, pair by pair, on the lab DC: the object
//! holds the first value and an equality filter asks Samba whether the second equals it. The
//! planner's convergence property tests (`core::plan_tests`) take `ad_equal` as AD's equality;
//! this list keeps it honest. Where the planner deliberately differs, the case says why.
//!
//! For multi-valued attributes the list also records what Samba stores when the second value
//! is added to the first (permissive modify, as the agent writes): one value or both. Samba
//! 4.17 keeps every value that differs in bytes (case variants included; only identical
//! values are refused, result 20), where Windows AD refuses a case variant of a held value —
//! a point where the lab is laxer than AD.

use exo_writeback_ad::SearchScope;
use exo_writeback_core::directory::{AttrChange, ModOp, ObjectModify};
use exo_writeback_core::equality::ad_equal;
use exo_writeback_core::ldap_text::escape_filter_value;
use exo_writeback_testlab::LabDc;

use crate::{connect, new_contact, text, unique};

struct Case {
    attribute: &'static str,
    held: &'static str,
    compared: &'static str,
    /// Samba's equality filter matches `compared` against `held`.
    samba_equal: bool,
    /// Multi-valued: after adding `compared`, the object holds both values.
    samba_stores_both: bool,
    /// Why the planner's answer is the other one (`None`: it agrees with Samba).
    planner_differs: Option<&'static str>,
}

const fn case(
    attribute: &'static str,
    held: &'static str,
    compared: &'static str,
    samba_equal: bool,
    samba_stores_both: bool,
) -> Case {
    Case {
        attribute,
        held,
        compared,
        samba_equal,
        samba_stores_both,
        planner_differs: None,
    }
}

const SPACES: &str = "Samba's matching rule ignores leading, trailing and repeated spaces \
    (RFC 4518), but it stores values differing only in spaces as two values: the planner keeps \
    both, as the cloud has them, and the plan converges";
const LEADING_ZEROS: &str = "a LargeInteger is a 64-bit integer (MS-ADTS 3.1.1.2.2.2) and the \
    planner compares numbers; Samba's filter does not read the assertion's leading zero. AD \
    returns no leading zeros, so no plan meets the difference";

const M: &str = "msExchExtensionCustomAttribute1";
const CASES: &[Case] = &[
    // Unicode strings (2.5.5.12), multi-valued.
    case(
        "proxyAddresses",
        "smtp:a@contoso.com",
        "smtp:a@contoso.com",
        true,
        false,
    ),
    case(
        "proxyAddresses",
        "smtp:a@contoso.com",
        "SMTP:A@CONTOSO.COM",
        true,
        true,
    ),
    case(
        "proxyAddresses",
        "smtp:a@contoso.com",
        "smtp:b@contoso.com",
        false,
        true,
    ),
    case(
        "proxyAddresses",
        "X500:/o=Org/cn=Ab",
        "x500:/O=ORG/CN=aB",
        true,
        true,
    ),
    case(M, "abc", "ABC", true, true),
    case(M, "abc", "abcd", false, true),
    Case {
        planner_differs: Some(SPACES),
        ..case(M, "abc", "abc ", true, true)
    },
    Case {
        planner_differs: Some(SPACES),
        ..case(M, "abc", " abc", true, true)
    },
    Case {
        planner_differs: Some(SPACES),
        ..case(M, "a b", "a  b", true, true)
    },
    case(M, "élan", "ÉLAN", true, true),
    case(M, "Ärger", "ärger", true, true),
    case(M, "ÿ", "Ÿ", true, true),
    case(M, "Ωμέγα", "ΩΜΈΓΑ", true, true),
    case(M, "σ", "ς", true, true),
    case(M, "ǆ", "Ǆ", true, true),
    case(M, "ǅ", "ǆ", false, true),
    case(M, "ａｂｃ", "ＡＢＣ", true, true),
    case(M, "ａｂｃ", "abc", false, true),
    case(M, "Straße", "STRASSE", false, true),
    case(M, "ß", "ẞ", false, true),
    case(M, "é", "e\u{301}", false, true),
    case(M, "ı", "I", false, true),
    case(M, "ſ", "s", false, true),
    case(M, "µ", "μ", false, true),
    case(M, "k", "\u{212A}", false, true),
    case(M, "ﬀ", "FF", false, true),
    // Single-valued text, integer and Boolean attributes (the filter only).
    case("extensionAttribute1", "Finance", "FINANCE", true, false),
    Case {
        planner_differs: Some(SPACES),
        ..case("extensionAttribute1", "Finance", "Finance ", true, false)
    },
    case("msExchRecipientDisplayType", "7", "7", true, false),
    case("msExchRecipientDisplayType", "7", "07", true, false),
    case("msExchRecipientDisplayType", "7", "8", false, false),
    case(
        "msExchRecipientDisplayType",
        "-2147483642",
        "-2147483642",
        true,
        false,
    ),
    case(
        "msExchRecipientTypeDetails",
        "2147483648",
        "2147483648",
        true,
        false,
    ),
    Case {
        planner_differs: Some(LEADING_ZEROS),
        ..case(
            "msExchRecipientTypeDetails",
            "2147483648",
            "02147483648",
            false,
            false,
        )
    },
    case("msExchHideFromAddressLists", "TRUE", "TRUE", true, false),
    case("msExchHideFromAddressLists", "TRUE", "true", true, false),
    case("msExchHideFromAddressLists", "TRUE", "FALSE", false, false),
];

#[tokio::test]
async fn the_planners_equality_is_sambas_case_by_case() {
    let dc = LabDc::shared();
    let conn = connect(dc).await;
    let schema = conn.schema().await.expect("schema");
    let mut wrong = Vec::new();
    for (i, c) in CASES.iter().enumerate() {
        let attr = schema
            .get(c.attribute)
            .expect("attribute in the lab schema");
        let what = format!("{}: {:?} vs {:?}", c.attribute, c.held, c.compared);
        let dn = new_contact(
            &conn,
            &unique(&format!("eq{i}")),
            &[(c.attribute, vec![text(c.held)])],
        )
        .await;
        let filter = format!("({}={})", c.attribute, escape_filter_value(c.compared));
        let samba_equal = !conn
            .search(&dn, SearchScope::Base, &filter, &["cn"])
            .await
            .unwrap_or_else(|e| panic!("{filter}: {e}"))
            .is_empty();
        if samba_equal != c.samba_equal {
            wrong.push(format!("{what}: Samba's filter says equal = {samba_equal}"));
        }
        if !attr.single_valued {
            conn.modify(&ObjectModify {
                dn: dn.clone(),
                changes: vec![AttrChange {
                    op: ModOp::Add,
                    attribute: c.attribute.to_string(),
                    values: vec![text(c.compared)],
                }],
            })
            .await
            .unwrap_or_else(|e| panic!("{what}: add: {e}"));
            let held = conn
                .read_by_dn(&dn, &[c.attribute])
                .await
                .expect("read")
                .expect("object")
                .attributes
                .get(c.attribute)
                .len();
            if (held == 2) != c.samba_stores_both {
                wrong.push(format!("{what}: Samba holds {held} value(s) after the add"));
            }
        }
        conn.delete(&dn).await.expect("delete");
        let planner = ad_equal(&attr.syntax, &text(c.held), &text(c.compared));
        let want = match c.planner_differs {
            None => c.samba_equal,
            Some(_) => !c.samba_equal,
        };
        if planner != want {
            wrong.push(format!("{what}: the planner says equal = {planner}"));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}
