//! The probe of the attributes the plans need: may the bind account read them? AD leaves an
//! attribute the account may not read out of every answer without an error, so the planner
//! would see it empty, rewrite it every cycle and journal a wrong previous value. The method —
//! sample users' DACLs evaluated for the account's token, since no read-back can tell "empty"
//! from "hidden" — is `exo_writeback_ad`'s `readable_attributes` (docs/windows-ad.md); this
//! module names the account and the grant to make. `check` and every cycle run it.

use exo_writeback_ad::forest_directory::ForestDirectory;
use exo_writeback_ad::{AdConnection, AdError, SearchScope};
use exo_writeback_core::directory::{AttrValue, DirectoryObject};
use exo_writeback_core::ldap_text::{Dn, DnValue, equality_filter};
use exo_writeback_expr::sid_to_string;
use uuid::Uuid;

/// schemaIDGUID of the class `user` (the objects the agent writes).
const USER_CLASS: &str = "bf967aba-0de6-11d0-a285-00aa003049e2";
/// Sample users per search base, when no objects to evaluate are given.
const SAMPLES: u32 = 5;

/// An attribute the bind account may not read, and the message that says what to do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnreadableAttribute {
    pub attribute: String,
    /// The object whose DACL was evaluated.
    pub sample_dn: String,
    /// Which, with the account, the grant, and why it matters.
    pub message: String,
}

/// What the probe found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReadRights {
    /// The bind account's DN.
    pub account: Option<String>,
    /// The objects whose DACL was evaluated (a few per search base).
    pub samples: Vec<String>,
    pub unreadable: Vec<UnreadableAttribute>,
    /// Why the rights could not be verified (nothing decided then; `check` fills it from a
    /// failed probe).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unverified: Option<String>,
}

fn bytes(v: &AttrValue) -> Option<Vec<u8>> {
    match v {
        AttrValue::Bytes(b) => Some(b.clone()),
        AttrValue::Text(_) => None,
    }
}

/// The SID (`S-1-…`) in `attribute` of `object`.
fn sid_of(object: &DirectoryObject, attribute: &str) -> Option<String> {
    let b = bytes(object.attributes.get(attribute).first()?)?;
    sid_to_string(&b)
}

/// The DNS name of the domain the account is looked up in (`DC=corp,DC=example` →
/// `corp.example`).
fn dns_domain(conn: &AdConnection) -> String {
    Dn::parse(&domain_root(conn))
        .map(|dn| {
            dn.rdns
                .iter()
                .flat_map(|rdn| &rdn.avas)
                .filter(|ava| ava.attribute.eq_ignore_ascii_case("DC"))
                .filter_map(|ava| match &ava.value {
                    DnValue::Text(t) => Some(t.as_str()),
                    DnValue::Ber(_) => None,
                })
                .collect::<Vec<_>>()
                .join(".")
        })
        .unwrap_or_default()
}

/// The domain the bind account is looked up in: the DC's default naming context, else the
/// configured base DN.
pub fn domain_root(conn: &AdConnection) -> String {
    conn.root_dse()
        .default_naming_context
        .clone()
        .unwrap_or_else(|| conn.base_dn().to_string())
}

/// The account the connection binds as (a DN as is; a UPN, else its `sAMAccountName` part, as
/// AD's implicit UPN; `DOMAIN\user` by `sAMAccountName`), with `attributes`; `None` when no
/// single account matches.
pub async fn bind_account(
    conn: &AdConnection,
    attributes: &[&str],
) -> Result<Option<DirectoryObject>, AdError> {
    let identity = conn.bind_identity().trim();
    let dn = if identity.contains('=') && Dn::parse(identity).is_ok() {
        Some(identity.to_string())
    } else {
        let root = domain_root(conn);
        let mut filters = Vec::new();
        if let Some((_, user)) = identity.split_once('\\') {
            filters.push(equality_filter("sAMAccountName", user));
        } else if let Some((user, _)) = identity.split_once('@') {
            filters.push(equality_filter("userPrincipalName", identity));
            filters.push(equality_filter("sAMAccountName", user));
        } else {
            filters.push(equality_filter("sAMAccountName", identity));
        }
        let mut found = None;
        for filter in filters {
            let hits = conn
                .search(
                    &root,
                    SearchScope::Subtree,
                    &format!("(&(objectClass=user){filter})"),
                    &["objectSid"],
                )
                .await?;
            if let [one] = hits.as_slice() {
                found = Some(one.dn.clone());
                break;
            }
        }
        found
    };
    match dn {
        Some(dn) => conn.read_by_dn(&dn, attributes).await,
        None => Ok(None),
    }
}

/// The probe: may the bind account read each of `attributes` on the user objects of every
/// search base? `ad`'s `readable_attributes` decides (a few sample users per base: their DACL
/// evaluated for the account's token, an attribute returned with values counting as
/// readable); this turns each unreadable attribute into the message that says what to do.
pub async fn probe(conn: &AdConnection, attributes: &[String]) -> Result<ReadRights, AdError> {
    let bases: Vec<(String, &AdConnection)> =
        conn.search_bases().into_iter().map(|b| (b, conn)).collect();
    probe_bases(conn, &bases, attributes, &[]).await
}

/// [`probe`] over a forest: the account looked up in the configured domain, each search base's
/// samples read on a DC of the base's own domain. With `samples` (the objects a delta is about
/// to evaluate, by objectGUID), a base's samples are those of them below it — a search that
/// does not grow with the directory — and only a base holding none of them is sampled as
/// [`probe`] does.
pub async fn probe_forest(
    forest: &ForestDirectory,
    attributes: &[String],
    samples: &[Uuid],
) -> Result<ReadRights, AdError> {
    let mut conns = Vec::new();
    for base in forest.search_bases().await {
        let conn = forest.route(&base).await?.connection().await;
        conns.push((base, conn));
    }
    let bases: Vec<(String, &AdConnection)> =
        conns.iter().map(|(b, c)| (b.clone(), c.as_ref())).collect();
    let home = forest.home().connection().await;
    probe_bases(&home, &bases, attributes, samples).await
}

async fn probe_bases(
    conn: &AdConnection,
    bases: &[(String, &AdConnection)],
    attributes: &[String],
    samples: &[Uuid],
) -> Result<ReadRights, AdError> {
    let mut report = ReadRights::default();
    // The account's lookups, as the samples' reads, on the side connection: a cycle probes
    // beside its scan, which holds the main one (`exo_writeback_ad`'s `connection/side.rs`).
    let account = bind_account(
        conn.side(),
        &["objectSid", "userPrincipalName", "sAMAccountName"],
    )
    .await?;
    let account_dn = account
        .as_ref()
        .map_or_else(|| conn.bind_identity().to_string(), |a| a.dn.clone());
    report.account = Some(account_dn.clone());
    let text = |a: &str| {
        account
            .as_ref()
            .and_then(|o| o.attributes.get(a).first())
            .and_then(|v| v.as_text().map(str::to_string))
    };
    // How dsacls names the account: its UPN, else AD's implicit one (sAMAccountName@domain).
    let name = text("userPrincipalName")
        .or_else(|| text("sAMAccountName").map(|sam| format!("{sam}@{}", dns_domain(conn))))
        .unwrap_or_else(|| conn.bind_identity().to_string());
    let sid = account
        .as_ref()
        .and_then(|a| sid_of(a, "objectSid"))
        .unwrap_or_else(|| "<the account's SID>".into());
    let names: Vec<&str> = attributes.iter().map(String::as_str).collect();
    for (base, base_conn) in bases {
        let mut found = base_conn
            .readable_attributes_of(base, "user", &names, samples)
            .await?;
        if found.samples.is_empty() {
            found = base_conn
                .readable_attributes(base, "user", &names, SAMPLES)
                .await?;
        }
        report.samples.extend(found.samples.iter().cloned());
        for a in found.unreadable() {
            let Some(sample) = &a.sample_dn else {
                // Not in the schema: the schema check reports it.
                continue;
            };
            if report
                .unreadable
                .iter()
                .any(|u| u.attribute.eq_ignore_ascii_case(&a.attribute))
            {
                continue;
            }
            let attribute = &a.attribute;
            let what = if a.evidence.contains("denies") {
                format!(
                    "Remove that deny entry (a grant below it does not override it; `dsacls \
                     \"{sample}\"` lists the entries and where they are inherited from), and make \
                     sure Read Property is granted"
                )
            } else {
                "Grant Read Property".to_string()
            };
            report.unreadable.push(UnreadableAttribute {
                attribute: attribute.clone(),
                sample_dn: sample.clone(),
                message: format!(
                    "the bind account {account_dn} may not read {attribute} on user objects \
                     ({sample}: {}). AD leaves it out of every answer without an error, so the \
                     agent would see it empty, rewrite it every cycle and journal a wrong \
                     previous value: it is not planned until the account may read it. {what}: \
                     dsacls \"{base}\" /I:S /G \"{name}:RP;{attribute};user\" (PowerShell: $g = \
                     (Get-ADObject -SearchBase (Get-ADRootDSE).schemaNamingContext -LDAPFilter \
                     '(lDAPDisplayName={attribute})' -Properties schemaIDGUID).schemaIDGUID; $a = \
                     Get-Acl 'AD:{base}'; $a.AddAccessRule((New-Object \
                     System.DirectoryServices.ActiveDirectoryAccessRule \
                     ([Security.Principal.SecurityIdentifier]'{sid}'), 'ReadProperty', 'Allow', \
                     [guid]$g, 'Descendents', [guid]'{USER_CLASS}')); Set-Acl 'AD:{base}' $a; \
                     docs/least-privilege.md)",
                    a.evidence
                ),
            });
        }
    }
    Ok(report)
}
