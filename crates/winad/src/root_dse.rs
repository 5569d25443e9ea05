//! The rootDSE of a winad DC (MS-ADTS 3.1.1.3.2 "rootDSE Attributes", 3.1.1.3.4.3 "LDAP
//! Capabilities", 3.1.1.3.4.6 "LDAP Policies").

use ldap3_proto::proto::{
    LdapMsg, LdapOp, LdapPartialAttribute, LdapResult, LdapResultCode, LdapSearchRequest,
    LdapSearchResultEntry,
};

use crate::model::{DcSpec, Directory};

/// LDAP_CAP_ACTIVE_DIRECTORY_OID.
const CAP_AD: &str = "1.2.840.113556.1.4.800";
/// LDAP_CAP_ACTIVE_DIRECTORY_PARTIAL_SECRETS_OID: announced by read-only DCs.
const CAP_RODC: &str = "1.2.840.113556.1.4.1920";

pub fn answer(
    dir: &Directory,
    dc: &DcSpec,
    gc: bool,
    msgid: i32,
    req: &LdapSearchRequest,
) -> Vec<LdapMsg> {
    let domain_nc = dir
        .domains
        .iter()
        .find(|d| d.dns.eq_ignore_ascii_case(&dc.domain))
        .map(|d| d.nc())
        .unwrap_or_default();
    let mut caps = vec![CAP_AD.to_string()];
    if dc.read_only {
        caps.push(CAP_RODC.to_string());
    }
    let mut naming = vec![domain_nc.clone(), dir.configuration_nc(), dir.schema_nc()];
    if gc {
        naming = dir.domains.iter().map(|d| d.nc()).collect();
        naming.push(dir.configuration_nc());
        naming.push(dir.schema_nc());
    }
    let attrs: Vec<(&str, Vec<String>)> = vec![
        ("defaultNamingContext", vec![domain_nc]),
        ("rootDomainNamingContext", vec![dir.root().nc()]),
        ("configurationNamingContext", vec![dir.configuration_nc()]),
        ("schemaNamingContext", vec![dir.schema_nc()]),
        ("namingContexts", naming),
        ("dnsHostName", vec![dc.host.clone()]),
        (
            "dsServiceName",
            vec![crate::spec::ntds_settings_dn(dir, dc)],
        ),
        (
            "isGlobalCatalogReady",
            vec![if dc.gc { "TRUE" } else { "FALSE" }.to_string()],
        ),
        ("supportedLDAPVersion", vec!["3".into(), "2".into()]),
        (
            "supportedControl",
            [
                "1.2.840.113556.1.4.319",  // paged results
                "1.2.840.113556.1.4.801",  // SD flags
                "1.2.840.113556.1.4.1413", // permissive modify
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ),
        ("supportedCapabilities", caps),
        (
            "supportedLDAPPolicies",
            [
                "MaxPageSize",
                "MaxValRange",
                "MaxQueryDuration",
                "MaxResultSetSize",
                "MaxResultSetsPerConn",
                "MaxConnIdleTime",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ),
    ];
    let all = req.attrs.is_empty() || req.attrs.iter().any(|a| a == "*" || a == "+");
    let attributes = attrs
        .into_iter()
        .filter(|(name, _)| all || req.attrs.iter().any(|a| a.eq_ignore_ascii_case(name)))
        .map(|(name, values)| LdapPartialAttribute {
            atype: name.to_string(),
            vals: values.into_iter().map(String::into_bytes).collect(),
        })
        .collect();
    vec![
        LdapMsg {
            msgid,
            op: LdapOp::SearchResultEntry(LdapSearchResultEntry {
                dn: String::new(),
                attributes,
            }),
            ctrl: Vec::new(),
        },
        LdapMsg {
            msgid,
            op: LdapOp::SearchResultDone(LdapResult {
                code: LdapResultCode::Success,
                matcheddn: String::new(),
                message: String::new(),
                referral: Vec::new(),
            }),
            ctrl: Vec::new(),
        },
    ]
}
