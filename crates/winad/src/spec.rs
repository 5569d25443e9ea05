//! Building a forest: its domains and DCs, the configuration partition (crossRefs, NTDS
//! Settings), the schema entries, accounts and objects.

use std::collections::BTreeMap;

use crate::model::{
    Account, AccountState, AttrDef, DcSpec, Directory, DomainSpec, Entry, Policies, text_attr,
};

const UNICODE: &str = "2.5.5.12";
const OCTETS: &str = "2.5.5.10";
const DN: &str = "2.5.5.1";
const INTEGER: &str = "2.5.5.9";
const BOOLEAN: &str = "2.5.5.8";
const OID: &str = "2.5.5.2";
const SID: &str = "2.5.5.17";

const fn def(
    name: &'static str,
    oid: &'static str,
    syntax: &'static str,
    om_syntax: u32,
    single_valued: bool,
    in_gc: bool,
) -> AttrDef {
    AttrDef {
        name,
        oid,
        syntax,
        om_syntax,
        single_valued,
        in_gc,
    }
}

/// The attributes winad knows, as the Windows Server 2016 schema defines them (attributeID,
/// syntax, single-valued, isMemberOfPartialAttributeSet: Samba's copy of Microsoft's
/// `setup/ad-schema/AD_DS_Attributes__Windows_Server_2016.ldf`; the extension attributes as
/// `lab/exchange-schema.ldif`). Not in the global catalog there: proxyAddresses,
/// mS-DS-ConsistencyGuid, employeeID, the extension attributes; in it: mail,
/// msDS-ExternalDirectoryObjectId, objectGUID, description. A forest whose schema puts more
/// attributes in the partial attribute set is modelled with [`ForestSpec::gc_attributes`].
pub const SCHEMA: &[AttrDef] = &[
    def("objectClass", "2.5.4.0", OID, 6, false, true),
    def("cn", "2.5.4.3", UNICODE, 64, true, true),
    def("name", "1.2.840.113556.1.4.1", UNICODE, 64, true, true),
    def("distinguishedName", "2.5.4.49", DN, 127, true, true),
    def("objectGUID", "1.2.840.113556.1.4.2", OCTETS, 4, true, true),
    def("objectSid", "1.2.840.113556.1.4.146", SID, 4, true, true),
    def("description", "2.5.4.13", UNICODE, 64, false, true),
    def(
        "displayName",
        "1.2.840.113556.1.2.13",
        UNICODE,
        64,
        true,
        true,
    ),
    def("mail", "0.9.2342.19200300.100.1.3", UNICODE, 64, true, true),
    def(
        "proxyAddresses",
        "1.2.840.113556.1.2.210",
        UNICODE,
        64,
        false,
        false,
    ),
    def("member", "2.5.4.31", DN, 127, false, true),
    def(
        "sAMAccountName",
        "1.2.840.113556.1.4.221",
        UNICODE,
        64,
        true,
        true,
    ),
    def(
        "userPrincipalName",
        "1.2.840.113556.1.4.656",
        UNICODE,
        64,
        true,
        true,
    ),
    def(
        "employeeID",
        "1.2.840.113556.1.4.35",
        UNICODE,
        64,
        true,
        false,
    ),
    def(
        "msDS-ExternalDirectoryObjectId",
        "1.2.840.113556.1.4.2310",
        UNICODE,
        64,
        true,
        true,
    ),
    def(
        "mS-DS-ConsistencyGuid",
        "1.2.840.113556.1.4.1360",
        OCTETS,
        4,
        true,
        false,
    ),
    def(
        "extensionAttribute1",
        "1.2.840.113556.1.2.423",
        UNICODE,
        64,
        true,
        false,
    ),
    def(
        "extensionAttribute15",
        "1.2.840.113556.1.2.603",
        UNICODE,
        64,
        true,
        false,
    ),
    def("nCName", "1.2.840.113556.1.2.16", DN, 127, true, false),
    def(
        "dnsRoot",
        "1.2.840.113556.1.4.28",
        UNICODE,
        64,
        false,
        false,
    ),
    def(
        "nETBIOSName",
        "1.2.840.113556.1.4.87",
        UNICODE,
        64,
        true,
        false,
    ),
    def(
        "systemFlags",
        "1.2.840.113556.1.4.375",
        INTEGER,
        2,
        true,
        false,
    ),
    def(
        "msDS-isRODC",
        "1.2.840.113556.1.4.1960",
        BOOLEAN,
        1,
        true,
        false,
    ),
    def(
        "lDAPDisplayName",
        "1.2.840.113556.1.2.460",
        UNICODE,
        64,
        true,
        true,
    ),
    def("attributeID", "1.2.840.113556.1.2.30", OID, 6, true, false),
    def(
        "attributeSyntax",
        "1.2.840.113556.1.2.32",
        OID,
        6,
        true,
        false,
    ),
    def(
        "oMSyntax",
        "1.2.840.113556.1.2.231",
        INTEGER,
        2,
        true,
        false,
    ),
    def(
        "isSingleValued",
        "1.2.840.113556.1.2.33",
        BOOLEAN,
        1,
        true,
        false,
    ),
    def(
        "isMemberOfPartialAttributeSet",
        "1.2.840.113556.1.4.639",
        BOOLEAN,
        1,
        true,
        false,
    ),
];

/// What a forest looks like; [`ForestSpec::build`] makes the [`Directory`].
#[derive(Debug, Clone)]
pub struct ForestSpec {
    /// The forest root domain first, then the others (e.g. a child domain).
    pub domains: Vec<DomainSpec>,
    pub dcs: Vec<DcSpec>,
    pub policies: Policies,
    pub accounts: Vec<Account>,
    pub objects: Vec<Entry>,
    /// Attributes this forest's schema adds to the partial attribute set (replicated to the
    /// global catalog), beyond [`SCHEMA`]'s.
    pub gc_attributes: Vec<&'static str>,
}

impl ForestSpec {
    /// `corp.example` (CORP, dc1.corp.example, a GC) with a child domain `child.corp.example`
    /// (CHILD, dc1.child.corp.example), and the bind account `svc@corp.example` with
    /// `password`.
    pub fn root_and_child(password: &str) -> ForestSpec {
        let root = DomainSpec::new("corp.example", "CORP");
        let child = DomainSpec::new("child.corp.example", "CHILD");
        let svc_dn = format!("CN=svc,CN=Users,{}", root.nc());
        ForestSpec {
            dcs: vec![
                DcSpec {
                    host: format!("dc1.{}", root.dns),
                    domain: root.dns.clone(),
                    gc: true,
                    read_only: false,
                },
                DcSpec {
                    host: format!("dc1.{}", child.dns),
                    domain: child.dns.clone(),
                    gc: false,
                    read_only: false,
                },
            ],
            domains: vec![root.clone(), child],
            policies: Policies::default(),
            accounts: vec![Account {
                dn: svc_dn.clone(),
                upn: format!("svc@{}", root.dns),
                down_level: format!("{}\\svc", root.netbios),
                password: password.to_string(),
                state: AccountState::Usable,
            }],
            objects: vec![Entry {
                dn: svc_dn,
                attrs: vec![
                    text_attr("objectClass", &["top", "person", "user"]),
                    text_attr("cn", &["svc"]),
                    text_attr("sAMAccountName", &["svc"]),
                    text_attr("userPrincipalName", &["svc@corp.example"]),
                ],
            }],
            gc_attributes: Vec::new(),
        }
    }

    /// Adds an account with `state` (an entry is added too).
    pub fn with_account(
        mut self,
        dn: &str,
        upn: &str,
        password: &str,
        state: AccountState,
    ) -> Self {
        let sam = upn.split('@').next().unwrap_or(upn).to_string();
        let domain = self.domains[0].netbios.clone();
        self.accounts.push(Account {
            dn: dn.to_string(),
            upn: upn.to_string(),
            down_level: format!("{domain}\\{sam}"),
            password: password.to_string(),
            state,
        });
        self.objects.push(Entry {
            dn: dn.to_string(),
            attrs: vec![
                text_attr("objectClass", &["top", "person", "user"]),
                text_attr("sAMAccountName", &[&sam]),
                text_attr("userPrincipalName", &[upn]),
            ],
        });
        self
    }

    pub fn build(&self) -> Directory {
        let mut dir = Directory {
            domains: self.domains.clone(),
            dcs: self.dcs.clone(),
            entries: BTreeMap::new(),
            schema: SCHEMA
                .iter()
                .map(|a| AttrDef {
                    in_gc: a.in_gc
                        || self
                            .gc_attributes
                            .iter()
                            .any(|g| g.eq_ignore_ascii_case(a.name)),
                    ..a.clone()
                })
                .collect(),
            accounts: self.accounts.clone(),
            policies: self.policies.clone(),
            modifies: Vec::new(),
        };
        let config = dir.configuration_nc();
        let schema_nc = dir.schema_nc();
        let root = dir.root().clone();
        for domain in &self.domains {
            let nc = domain.nc();
            let first = nc
                .split(',')
                .next()
                .unwrap_or("DC=x")
                .trim_start_matches("DC=");
            dir.put(Entry {
                dn: nc.clone(),
                attrs: vec![
                    text_attr("objectClass", &["top", "domain", "domainDNS"]),
                    text_attr("name", &[first]),
                ],
            });
            for container in ["Users", "Computers"] {
                dir.put(Entry {
                    dn: format!("CN={container},{nc}"),
                    attrs: vec![
                        text_attr("objectClass", &["top", "container"]),
                        text_attr("cn", &[container]),
                    ],
                });
            }
        }
        for (dn, class) in [
            (config.clone(), "configuration"),
            (format!("CN=Partitions,{config}"), "crossRefContainer"),
            (format!("CN=Sites,{config}"), "sitesContainer"),
            (schema_nc.clone(), "dMD"),
        ] {
            dir.put(Entry {
                dn,
                attrs: vec![text_attr("objectClass", &["top", class])],
            });
        }
        // crossRefs (MS-ADTS 6.1.1.2.1.1 "Cross-Ref Objects", 3.1.1.5.2.7): a domain's systemFlags are
        // FLAG_CR_NTDS_NC | FLAG_CR_NTDS_DOMAIN (3), the configuration's and schema's
        // FLAG_CR_NTDS_NC (1), an application partition's FLAG_CR_NTDS_NC |
        // FLAG_CR_NTDS_NOT_GC_REPLICATED (5).
        for domain in &self.domains {
            dir.put(Entry {
                dn: format!("CN={},CN=Partitions,{config}", domain.netbios),
                attrs: vec![
                    text_attr("objectClass", &["top", "crossRef"]),
                    text_attr("nCName", &[&domain.nc()]),
                    text_attr("dnsRoot", &[&domain.dns]),
                    text_attr("nETBIOSName", &[&domain.netbios]),
                    text_attr("systemFlags", &["3"]),
                ],
            });
        }
        for (cn, nc, flags) in [
            ("Enterprise Configuration", config.clone(), "1"),
            ("Enterprise Schema", schema_nc.clone(), "1"),
            (
                "ForestDnsZones",
                format!("DC=ForestDnsZones,{}", root.nc()),
                "5",
            ),
        ] {
            dir.put(Entry {
                dn: format!("CN={cn},CN=Partitions,{config}"),
                attrs: vec![
                    text_attr("objectClass", &["top", "crossRef"]),
                    text_attr("nCName", &[&nc]),
                    text_attr("dnsRoot", &[&root.dns]),
                    text_attr("systemFlags", &[flags]),
                ],
            });
        }
        for dc in &self.dcs {
            let dn = ntds_settings_dn(&dir, dc);
            dir.put(Entry {
                dn,
                attrs: vec![
                    text_attr("objectClass", &["top", "applicationSettings", "nTDSDSA"]),
                    text_attr("msDS-isRODC", &[bool_text(dc.read_only)]),
                ],
            });
        }
        for attr in dir.schema.clone() {
            dir.put(Entry {
                dn: format!("CN={},{schema_nc}", attr.name),
                attrs: vec![
                    text_attr("objectClass", &["top", "attributeSchema"]),
                    text_attr("lDAPDisplayName", &[attr.name]),
                    text_attr("attributeID", &[attr.oid]),
                    text_attr("attributeSyntax", &[attr.syntax]),
                    text_attr("oMSyntax", &[&attr.om_syntax.to_string()]),
                    text_attr("isSingleValued", &[bool_text(attr.single_valued)]),
                    text_attr("isMemberOfPartialAttributeSet", &[bool_text(attr.in_gc)]),
                ],
            });
        }
        for entry in &self.objects {
            dir.put(entry.clone());
        }
        dir
    }
}

fn bool_text(b: bool) -> &'static str {
    if b { "TRUE" } else { "FALSE" }
}

/// The NTDS Settings DN of `dc` (its rootDSE `dsServiceName`).
pub fn ntds_settings_dn(dir: &Directory, dc: &DcSpec) -> String {
    let short = dc
        .host
        .split('.')
        .next()
        .unwrap_or("dc")
        .to_ascii_uppercase();
    format!(
        "CN=NTDS Settings,CN={short},CN=Servers,CN=Default-First-Site-Name,CN=Sites,{}",
        dir.configuration_nc()
    )
}
