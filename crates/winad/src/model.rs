//! The directory a winad forest serves: its domains, entries, schema, accounts and LDAP
//! policies. Plain data, built by [`ForestSpec`]; the rules that answer requests over it are in
//! `handler.rs` and `search.rs`.

use std::collections::BTreeMap;

use uuid::Uuid;

/// One domain of the forest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSpec {
    /// `corp.example`.
    pub dns: String,
    /// `CORP`.
    pub netbios: String,
}

impl DomainSpec {
    pub fn new(dns: &str, netbios: &str) -> DomainSpec {
        DomainSpec {
            dns: dns.to_ascii_lowercase(),
            netbios: netbios.to_string(),
        }
    }

    /// `DC=corp,DC=example`.
    pub fn nc(&self) -> String {
        self.dns
            .split('.')
            .map(|label| format!("DC={label}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// An entry: its DN as written and its attributes (values as bytes, in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    pub attrs: Vec<(String, Vec<Vec<u8>>)>,
}

impl Entry {
    pub fn get(&self, name: &str) -> Option<&Vec<Vec<u8>>> {
        self.attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Vec<Vec<u8>>> {
        self.attrs
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn set(&mut self, name: &str, values: Vec<Vec<u8>>) {
        self.attrs.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        if !values.is_empty() {
            self.attrs.push((name.to_string(), values));
        }
    }

    pub fn has_class(&self, class: &str) -> bool {
        self.get("objectClass")
            .is_some_and(|vs| vs.iter().any(|v| v.eq_ignore_ascii_case(class.as_bytes())))
    }
}

/// An attribute of the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrDef {
    pub name: &'static str,
    pub oid: &'static str,
    /// attributeSyntax (2.5.5.x).
    pub syntax: &'static str,
    pub om_syntax: u32,
    pub single_valued: bool,
    /// isMemberOfPartialAttributeSet: replicated to the global catalog.
    pub in_gc: bool,
}

/// The account state behind each AD bind sub-code (the Win32 error in `data …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountState {
    Usable,
    /// 530 ERROR_INVALID_LOGON_HOURS
    LogonHours,
    /// 531 ERROR_INVALID_WORKSTATION
    Workstation,
    /// 532 ERROR_PASSWORD_EXPIRED
    PasswordExpired,
    /// 533 ERROR_ACCOUNT_DISABLED
    Disabled,
    /// 701 ERROR_ACCOUNT_EXPIRED
    AccountExpired,
    /// 773 ERROR_PASSWORD_MUST_CHANGE
    MustChangePassword,
    /// 775 ERROR_ACCOUNT_LOCKED_OUT
    Locked,
}

impl AccountState {
    /// The sub-code AD puts in `data …` of an invalidCredentials (49) answer.
    pub fn subcode(self) -> Option<&'static str> {
        Some(match self {
            AccountState::Usable => return None,
            AccountState::LogonHours => "530",
            AccountState::Workstation => "531",
            AccountState::PasswordExpired => "532",
            AccountState::Disabled => "533",
            AccountState::AccountExpired => "701",
            AccountState::MustChangePassword => "773",
            AccountState::Locked => "775",
        })
    }
}

/// An account that can bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub dn: String,
    /// `svc@corp.example`.
    pub upn: String,
    /// `CORP\svc`.
    pub down_level: String,
    pub password: String,
    pub state: AccountState,
}

/// The LDAP policies of the forest's Default Query Policy (KB 315071 defaults; MS-ADTS
/// 3.1.1.3.4.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policies {
    /// MaxPageSize: entries per page, and per unpaged search (then sizeLimitExceeded).
    pub max_page_size: usize,
    /// MaxValRange: values of one attribute per answer before ranging.
    pub max_val_range: usize,
    /// MaxQueryDuration, seconds (of the simulated search cost, see `Faults::cost_per_entry`).
    pub max_query_duration_secs: u64,
    /// MaxResultSetsPerConn: paged-search states kept per connection; the oldest is discarded.
    pub max_result_sets_per_conn: usize,
    /// MaxConnIdleTime, seconds: an idle connection gets a Notice of Disconnection.
    pub max_conn_idle_secs: u64,
}

impl Default for Policies {
    fn default() -> Self {
        Policies {
            max_page_size: 1000,
            max_val_range: 1500,
            max_query_duration_secs: 120,
            max_result_sets_per_conn: 10,
            max_conn_idle_secs: 900,
        }
    }
}

/// A DC of the forest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcSpec {
    /// dnsHostName, `dc1.corp.example`.
    pub host: String,
    /// The DNS name of its domain.
    pub domain: String,
    /// Serves the global catalog (ports 3268/3269).
    pub gc: bool,
    /// Read-only DC: refers writes to the first writable DC of its domain.
    pub read_only: bool,
}

/// Everything a winad forest serves. Keys of `entries` are normalized DNs ([`norm`]).
#[derive(Debug, Clone)]
pub struct Directory {
    pub domains: Vec<DomainSpec>,
    pub dcs: Vec<DcSpec>,
    pub entries: BTreeMap<String, Entry>,
    pub schema: Vec<AttrDef>,
    pub accounts: Vec<Account>,
    pub policies: Policies,
    /// Every modify applied: (DC host, DN).
    pub modifies: Vec<(String, String)>,
}

/// A DN compared as AD compares them here: lower case, no spaces around separators.
pub fn norm(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| rdn.split('=').map(str::trim).collect::<Vec<_>>().join("="))
        .collect::<Vec<_>>()
        .join(",")
        .to_ascii_lowercase()
}

/// `dn` is `base` or below it (normalized DNs).
pub fn within(dn: &str, base: &str) -> bool {
    base.is_empty() || dn == base || dn.ends_with(&format!(",{base}"))
}

impl Directory {
    /// The forest root domain (the first).
    pub fn root(&self) -> &DomainSpec {
        &self.domains[0]
    }

    pub fn configuration_nc(&self) -> String {
        format!("CN=Configuration,{}", self.root().nc())
    }

    pub fn schema_nc(&self) -> String {
        format!("CN=Schema,{}", self.configuration_nc())
    }

    pub fn attr(&self, name: &str) -> Option<&AttrDef> {
        self.schema
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The attribute is replicated to the global catalog (unknown attributes are not).
    pub fn in_gc(&self, name: &str) -> bool {
        self.attr(name).is_some_and(|a| a.in_gc)
    }

    /// The domain whose naming context holds `dn` (the longest match).
    pub fn domain_of(&self, dn: &str) -> Option<&DomainSpec> {
        let dn = norm(dn);
        self.domains
            .iter()
            .filter(|d| within(&dn, &norm(&d.nc())))
            .max_by_key(|d| d.nc().len())
            .filter(|_| !within(&dn, &norm(&self.configuration_nc())))
    }

    pub fn get(&self, dn: &str) -> Option<&Entry> {
        self.entries.get(&norm(dn))
    }

    /// Adds (or replaces) an entry; objectGUID and distinguishedName are added when missing.
    pub fn put(&mut self, mut entry: Entry) {
        if entry.get("objectGUID").is_none() {
            let guid = Uuid::new_v4();
            entry
                .attrs
                .push(("objectGUID".into(), vec![guid.to_bytes_le().to_vec()]));
        }
        if entry.get("distinguishedName").is_none() {
            entry.attrs.push((
                "distinguishedName".into(),
                vec![entry.dn.clone().into_bytes()],
            ));
        }
        self.entries.insert(norm(&entry.dn), entry);
    }

    /// The first writable DC of `domain`.
    pub fn writable_dc(&self, domain: &str) -> Option<&DcSpec> {
        self.dcs
            .iter()
            .find(|d| d.domain.eq_ignore_ascii_case(domain) && !d.read_only)
    }
}

/// `(name, [values])` with text values.
pub fn text_attr(name: &str, values: &[&str]) -> (String, Vec<Vec<u8>>) {
    (
        name.to_string(),
        values.iter().map(|v| v.as_bytes().to_vec()).collect(),
    )
}
