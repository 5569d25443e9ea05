//! The probe of the attributes the plans need: may the bind account read them? AD leaves an
//! attribute the account may not read out of every answer without an error, so the planner
//! would see it empty, rewrite it every cycle and journal a wrong previous value. The method —
//! the object's DACL evaluated for the account's security context, since no read-back can tell
//! "empty" from "hidden" — is `exo_writeback_core::access`. Per search base, one sample user
//! object (the class the agent writes) is checked; `check` and every cycle run it.

use exo_writeback_ad::{AdConnection, AdError, SearchScope};
use exo_writeback_core::access::{self, AttributeGuids, ReadDecision};
use exo_writeback_core::directory::{AttrValue, DirectoryObject};
use exo_writeback_core::ldap_text::{Dn, DnValue, equality_filter};
use exo_writeback_expr::sid_to_string;
use uuid::Uuid;

/// schemaIDGUID of the class `user` (the objects the agent writes).
const USER_CLASS: Uuid = Uuid::from_u128(0xbf967aba_0de6_11d0_a285_00aa003049e2);

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
    /// The objects whose DACL was evaluated (one per search base).
    pub samples: Vec<String>,
    pub unreadable: Vec<UnreadableAttribute>,
    /// Why the rights could not be verified (nothing decided then).
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

/// `(|(attribute=v1)(attribute=v2)…)`, every value escaped.
fn any_of<'a>(attribute: &str, values: impl IntoIterator<Item = &'a String>) -> String {
    let terms: String = values
        .into_iter()
        .map(|v| equality_filter(attribute, v))
        .collect();
    format!("(|{terms})")
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

/// Adds the groups a logon gets through the well-known SIDs of its token (Everyone,
/// Authenticated Users …), which `tokenGroups` leaves out: they are members as foreign security
/// principals (`CN=S-1-5-11,CN=ForeignSecurityPrincipals,…`) — in a default forest,
/// Authenticated Users in BUILTIN\Users and Pre-Windows 2000 Compatible Access, whose grant on
/// user objects is what lets an ordinary account read most of their attributes. Transitively.
async fn groups_of_well_known_sids(
    conn: &AdConnection,
    token: &mut Vec<String>,
) -> Result<(), AdError> {
    let root = domain_root(conn);
    let mut members: Vec<String> = token
        .iter()
        .filter(|s| !s.starts_with("S-1-5-21-") && !s.starts_with("S-1-5-32-"))
        .map(|s| format!("CN={s},CN=ForeignSecurityPrincipals,{root}"))
        .collect();
    // Nesting is shallow in practice; the bound guards against a cycle of groups.
    for _ in 0..8 {
        if members.is_empty() {
            break;
        }
        let filter = format!("(&(objectClass=group){})", any_of("member", &members));
        let groups = conn
            .search(&root, SearchScope::Subtree, &filter, &["objectSid"])
            .await?;
        members.clear();
        for g in groups {
            let Some(sid) = sid_of(&g, "objectSid") else {
                continue;
            };
            if !token.contains(&sid) {
                token.push(sid);
                members.push(g.dn);
            }
        }
    }
    Ok(())
}

/// The schema facts of `names` (lDAPDisplayName → GUIDs), one search of the schema.
async fn attribute_guids(
    conn: &AdConnection,
    names: &[String],
) -> Result<Vec<(String, AttributeGuids)>, AdError> {
    let Some(schema_nc) = conn.root_dse().schema_naming_context.clone() else {
        return Ok(Vec::new());
    };
    let filter = any_of("lDAPDisplayName", names);
    let found = conn
        .search(
            &schema_nc,
            SearchScope::OneLevel,
            &filter,
            &[
                "lDAPDisplayName",
                "schemaIDGUID",
                "attributeSecurityGUID",
                "searchFlags",
            ],
        )
        .await?;
    let guid = |o: &DirectoryObject, a: &str| {
        o.attributes
            .get(a)
            .first()
            .and_then(bytes)
            .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
            .map(Uuid::from_bytes_le)
    };
    Ok(found
        .iter()
        .filter_map(|o| {
            let name = o
                .attributes
                .get("lDAPDisplayName")
                .first()?
                .as_text()?
                .to_string();
            let flags: i64 = o
                .attributes
                .get("searchFlags")
                .first()
                .and_then(|v| v.as_text()?.trim().parse().ok())
                .unwrap_or(0);
            Some((
                name,
                AttributeGuids {
                    attribute: guid(o, "schemaIDGUID")?,
                    property_set: guid(o, "attributeSecurityGUID"),
                    confidential: flags & access::CONFIDENTIAL != 0,
                },
            ))
        })
        .collect())
}

/// The probe: may the bind account read each of `attributes` on the user objects of every
/// search base?
pub async fn probe(conn: &AdConnection, attributes: &[String]) -> Result<ReadRights, AdError> {
    let mut report = ReadRights::default();
    let Some(account) = bind_account(
        conn,
        &[
            "objectSid",
            "tokenGroups",
            "userPrincipalName",
            "sAMAccountName",
        ],
    )
    .await?
    else {
        report.unverified = Some(format!(
            "no account {} found below {}",
            conn.bind_identity(),
            domain_root(conn)
        ));
        return Ok(report);
    };
    report.account = Some(account.dn.clone());
    let text = |a: &str| {
        account
            .attributes
            .get(a)
            .first()
            .and_then(|v| v.as_text().map(str::to_string))
    };
    // How dsacls names the account: its UPN, else AD's implicit one (sAMAccountName@domain).
    let dns_domain = Dn::parse(&domain_root(conn))
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
        .unwrap_or_default();
    let name = text("userPrincipalName")
        .or_else(|| text("sAMAccountName").map(|sam| format!("{sam}@{dns_domain}")))
        .unwrap_or_else(|| account.dn.clone());
    let Some(sid) = sid_of(&account, "objectSid") else {
        report.unverified = Some(format!("cannot read the objectSid of {}", account.dn));
        return Ok(report);
    };
    let groups: Vec<String> = account
        .attributes
        .get("tokenGroups")
        .iter()
        .filter_map(bytes)
        .filter_map(|b| sid_to_string(&b))
        .collect();
    let mut token = access::token(&sid, &groups);
    groups_of_well_known_sids(conn, &mut token).await?;
    let guids = attribute_guids(conn, attributes).await?;
    for base in conn.search_bases() {
        // A mailbox user if there is one, else any user — never the account itself (its own
        // object grants SELF more), nor an AdminSDHolder-protected one (it inherits nothing).
        let not_self = format!("(!{})", equality_filter("distinguishedName", &account.dn));
        let mut sample = None;
        for kind in [
            "(proxyAddresses=*)(!(adminCount=1))",
            "(!(adminCount=1))",
            "",
        ] {
            let filter = format!("(&(objectClass=user)(!(objectClass=computer)){kind}{not_self})");
            sample = conn.find_one(&base, &filter).await?;
            if sample.is_some() {
                break;
            }
        }
        let Some(sample) = sample else {
            continue;
        };
        let Some(sd) = conn.read_dacl(&sample).await? else {
            report.unverified = Some(format!(
                "{} may not read the security descriptor of {sample} (Read Control)",
                account.dn
            ));
            return Ok(report);
        };
        let aces = access::parse_dacl(&sd).map_err(|problem| AdError::Protocol {
            address: conn.config().url.clone(),
            operation: "reading the security descriptor of",
            problem: format!("{sample}: {problem}"),
        })?;
        report.samples.push(sample.clone());
        for (attribute, g) in &guids {
            if report
                .unreadable
                .iter()
                .any(|u| u.attribute.eq_ignore_ascii_case(attribute))
            {
                continue;
            }
            let (why, what) = match access::read_decision(aces.as_deref(), &token, USER_CLASS, g) {
                ReadDecision::Allowed => continue,
                ReadDecision::Denied(ace) => (
                    format!("{} denies Read Property", ace.describe()),
                    format!(
                        "Remove that deny entry (a grant below it does not override it; \
                         `dsacls \"{sample}\"` lists the entries and where they are inherited \
                         from), and make sure Read Property is granted"
                    ),
                ),
                ReadDecision::NotGranted { right } => (
                    format!("no entry grants {right}"),
                    "Grant Read Property".to_string(),
                ),
            };
            report.unreadable.push(UnreadableAttribute {
                attribute: attribute.clone(),
                sample_dn: sample.clone(),
                message: format!(
                    "the bind account {} may not read {attribute} on user objects ({sample}: \
                     {why}). AD leaves it out of every answer without an error, so the agent \
                     would see it empty, rewrite it every cycle and journal a wrong previous \
                     value: it is not planned until the account may read it. {what}: dsacls \"{base}\" /I:S /G \"{name}:RP;{attribute};user\" \
                     (PowerShell: $a = Get-Acl \"AD:{base}\"; $a.AddAccessRule((New-Object \
                     System.DirectoryServices.ActiveDirectoryAccessRule (New-Object \
                     System.Security.Principal.SecurityIdentifier '{sid}'), 'ReadProperty', \
                     'Allow', [guid]'{}', 'Descendents', [guid]'{USER_CLASS}')); Set-Acl \
                     \"AD:{base}\" $a; docs/least-privilege.md)",
                    account.dn, g.attribute
                ),
            });
        }
    }
    Ok(report)
}
