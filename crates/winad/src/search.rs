//! The search rules, each as Windows applies it:
//!
//! - **Naming contexts and referrals** (RFC 4511 4.1.10 and 4.5.3): a DC
//!   answers for its own domain's NC and the configuration and schema NCs; a base in another
//!   domain of the forest gets `referral (10)` naming that domain (`ldap://<dnsRoot>/<base>`,
//!   diagnostic `0000202B: RefErr: …`), and a subtree search that reaches a subordinate domain
//!   gets a continuation reference to it instead of its objects.
//! - **Global catalog** (ports 3268/3269; the GCs' `_gc._tcp` records, MS-ADTS 6.3.6.1): every
//!   domain of the forest is
//!   searched, the filter sees and the answer holds only attributes of the partial attribute
//!   set (`isMemberOfPartialAttributeSet`).
//! - **MaxPageSize** (KB 315071; MS-ADTS 3.1.1.3.4.6): a page holds at most 1,000 entries; an
//!   unpaged search returns the first 1,000 and `sizeLimitExceeded (4)`.
//! - **MaxValRange** (KB 315071; MS-ADTS 3.1.1.3.1.3.3 range retrieval): an attribute with more
//!   values than 1,500 comes back as `attr;range=0-1499`; `attr;range=<lo>-<hi|*>` asks for the
//!   rest, the last part named `attr;range=<lo>-*`.
//! - **MaxQueryDuration** (KB 315071): a search that runs longer is ended with
//!   `timeLimitExceeded (3)`; on a paged search the entries found so far come back with a cookie
//!   to resume from (DirectorySearcher.ServerPageTimeLimit: "returns the results that have
//!   accumulated up to that point, along with a cookie containing the information about where
//!   to resume searching"). The search's running time is simulated (`Faults::cost_per_entry`).
//! - **Paging cookies** ("How LDAP server cookies are handled", Windows Server docs; KB 315071
//!   MaxResultSetSize): the DC keeps a bounded pool of paged-search states and discards the
//!   oldest; a cookie whose state is gone gets `unavailableCriticalExtension (12)`,
//!   `00000057: LdapErr: DSID-0C090797, comment: Error processing control, data 0, v23f0`, and
//!   the client must start the search again from the first page.
//! - **Alternative DN forms** (MS-ADTS 3.1.1.3.1.2.4): a base `<GUID=…>` names the object with
//!   that objectGUID.

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapMsg, LdapOp, LdapPartialAttribute, LdapResult, LdapResultCode, LdapSearchRequest,
    LdapSearchResultEntry, LdapSearchResultReference, LdapSearchScope,
};
use uuid::Uuid;

use crate::filter::matches;
use crate::model::{DcSpec, Directory, Entry, norm, within};
use crate::session::{ResultSet, Session};

/// The paged-search cookie is gone (discarded from the DC's pool).
pub const COOKIE_GONE: &str =
    "00000057: LdapErr: DSID-0C090797, comment: Error processing control, data 0, v23f0";
/// An operation before a successful bind.
pub const BIND_FIRST: &str = "000004DC: LdapErr: DSID-0C090A5C, comment: In order to perform this operation a successful bind must be completed on the connection., data 0, v4563";

/// Fault settings a search looks at (a snapshot of `Faults`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SearchFaults {
    /// Simulated seconds each returned entry costs (against MaxQueryDuration); 0: free.
    pub cost_per_entry_secs: u64,
}

fn done(msgid: i32, code: LdapResultCode, message: &str, referral: Vec<String>) -> LdapMsg {
    LdapMsg {
        msgid,
        op: LdapOp::SearchResultDone(LdapResult {
            code,
            matcheddn: String::new(),
            message: message.to_string(),
            referral,
        }),
        ctrl: Vec::new(),
    }
}

/// `0000202B: RefErr` with the referral to `dns`, as Windows words it.
pub fn referral_text(dns: &str) -> String {
    format!("0000202B: RefErr: DSID-0310082F, data 0, 1 access points\n\tref 1: '{dns}'\n")
}

/// The naming contexts this port answers for (normalized).
fn held_ncs(dir: &Directory, dc: &DcSpec, gc: bool) -> Vec<String> {
    let mut out = vec![norm(&dir.configuration_nc()), norm(&dir.schema_nc())];
    for domain in &dir.domains {
        if gc || domain.dns.eq_ignore_ascii_case(&dc.domain) {
            out.push(norm(&domain.nc()));
        }
    }
    out
}

/// The naming context holding `key` (the most specific among the forest's).
fn nc_of(dir: &Directory, key: &str) -> Option<String> {
    let mut ncs = vec![norm(&dir.configuration_nc()), norm(&dir.schema_nc())];
    ncs.extend(dir.domains.iter().map(|d| norm(&d.nc())));
    ncs.into_iter()
        .filter(|nc| within(key, nc))
        .max_by_key(String::len)
}

/// The normalized key of a search base, `<GUID=…>` resolved.
fn resolve_base(dir: &Directory, base: &str) -> Option<String> {
    let trimmed = base.trim();
    if let Some(guid) = trimmed
        .strip_prefix("<GUID=")
        .or_else(|| trimmed.strip_prefix("<guid="))
        .and_then(|r| r.strip_suffix('>'))
    {
        let want = Uuid::parse_str(guid)
            .map(|u| u.to_bytes_le().to_vec())
            .ok()
            .or_else(|| hex(guid))?;
        return dir
            .entries
            .iter()
            .find(|(_, e)| {
                e.get("objectGUID")
                    .is_some_and(|v| v.first() == Some(&want))
            })
            .map(|(k, _)| k.clone());
    }
    Some(norm(trimmed))
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// A requested attribute: its name and the range asked for.
#[derive(Debug)]
struct Wanted {
    name: String,
    range: Option<(usize, Option<usize>)>,
}

fn parse_wanted(attrs: &[String]) -> (bool, Vec<Wanted>) {
    let all = attrs.is_empty() || attrs.iter().any(|a| a == "*");
    let wanted = attrs
        .iter()
        .filter(|a| *a != "*" && *a != "1.1")
        .map(|a| {
            let mut parts = a.split(';');
            let name = parts.next().unwrap_or_default().to_string();
            let range = parts.find_map(|o| {
                let r = o
                    .strip_prefix("range=")
                    .or_else(|| o.strip_prefix("Range="))?;
                let (lo, hi) = r.split_once('-')?;
                let lo = lo.parse().ok()?;
                let hi = if hi == "*" {
                    None
                } else {
                    Some(hi.parse().ok()?)
                };
                Some((lo, hi))
            });
            Wanted { name, range }
        })
        .collect();
    (all, wanted)
}

/// The attributes of `entry` to return, values ranged by MaxValRange.
fn project(
    dir: &Directory,
    entry: &Entry,
    attrs: &[String],
    visible: &dyn Fn(&str) -> bool,
) -> Vec<LdapPartialAttribute> {
    let (all, wanted) = parse_wanted(attrs);
    let max = dir.policies.max_val_range.max(1);
    let mut out = Vec::new();
    for (name, values) in &entry.attrs {
        if !visible(name) {
            continue;
        }
        let asked = wanted.iter().find(|w| w.name.eq_ignore_ascii_case(name));
        if asked.is_none() && !all {
            continue;
        }
        let (lo, hi) = match asked.and_then(|w| w.range) {
            Some((lo, hi)) => (lo, hi),
            None if values.len() > max => (0, Some(max - 1)),
            None => {
                out.push(LdapPartialAttribute {
                    atype: name.clone(),
                    vals: values.clone(),
                });
                continue;
            }
        };
        if lo >= values.len() && lo > 0 {
            out.push(LdapPartialAttribute {
                atype: format!("{name};range={lo}-*"),
                vals: Vec::new(),
            });
            continue;
        }
        // At most MaxValRange values per answer, whatever the client asked for.
        let last = values.len() - 1;
        let end = hi.unwrap_or(last).min(last).min(lo + max - 1);
        let label = if end == last {
            format!("{name};range={lo}-*")
        } else {
            format!("{name};range={lo}-{end}")
        };
        out.push(LdapPartialAttribute {
            atype: label,
            vals: values[lo..=end].to_vec(),
        });
    }
    out
}

/// The port a request came in on.
#[derive(Debug, Clone, Copy)]
pub struct Port<'a> {
    pub dc: &'a DcSpec,
    /// The global-catalog port.
    pub gc: bool,
    pub faults: SearchFaults,
}

/// Answers a search on `port`.
pub fn search(
    dir: &Directory,
    port: Port<'_>,
    session: &mut Session,
    msgid: i32,
    req: &LdapSearchRequest,
    ctrls: &[LdapControl],
) -> Vec<LdapMsg> {
    let Port { dc, gc, faults } = port;
    if req.base.is_empty() && req.scope == LdapSearchScope::Base {
        return crate::root_dse::answer(dir, dc, gc, msgid, req);
    }
    if session.bound.is_none() {
        return vec![done(
            msgid,
            LdapResultCode::OperationsError,
            BIND_FIRST,
            Vec::new(),
        )];
    }
    let Some(base) = resolve_base(dir, &req.base) else {
        return vec![no_object(msgid, &req.base)];
    };
    let held = held_ncs(dir, dc, gc);
    let forest_wide = gc && base.is_empty();
    if !forest_wide {
        match nc_of(dir, &base) {
            Some(nc) if held.contains(&nc) => {}
            Some(nc) => {
                let domain = dir
                    .domains
                    .iter()
                    .find(|d| norm(&d.nc()) == nc)
                    .map(|d| d.dns.clone())
                    .unwrap_or_default();
                return vec![done(
                    msgid,
                    LdapResultCode::Referral,
                    &referral_text(&domain),
                    vec![format!("ldap://{domain}/{}", req.base)],
                )];
            }
            None => return vec![no_object(msgid, &req.base)],
        }
        if !dir.entries.contains_key(&base) {
            return vec![no_object(msgid, &req.base)];
        }
    }
    let visible = |attr: &str| !gc || dir.in_gc(attr);
    let mut references = Vec::new();
    let in_scope = |key: &str| -> bool {
        match req.scope {
            LdapSearchScope::Base => key == base,
            LdapSearchScope::OneLevel => {
                key != base
                    && within(key, &base)
                    && key.split_once(',').map(|(_, p)| p) == Some(&base)
            }
            _ => within(key, &base),
        }
    };
    // Subordinate naming contexts not held here: a continuation reference each.
    if req.scope == LdapSearchScope::Subtree && !forest_wide {
        for domain in &dir.domains {
            let nc = norm(&domain.nc());
            if nc != base && within(&nc, &base) && !held.contains(&nc) {
                references.push(format!("ldap://{}/{}", domain.dns, domain.nc()));
            }
        }
    }

    // The paged-results control (RFC 2696).
    let paging = ctrls.iter().find_map(|c| match c {
        LdapControl::SimplePagedResults { size, cookie } => Some((*size, cookie.clone())),
        _ => None,
    });
    let mut set = match &paging {
        Some((_, cookie)) if !cookie.is_empty() => match session.take(cookie) {
            Some(set) => set,
            None => {
                return vec![done(
                    msgid,
                    LdapResultCode::UnavailableCriticalExtension,
                    COOKIE_GONE,
                    Vec::new(),
                )];
            }
        },
        _ => {
            let keys: Vec<String> = dir
                .entries
                .iter()
                .filter(|(key, entry)| {
                    in_scope(key)
                        && nc_of(dir, key).is_some_and(|nc| held.contains(&nc))
                        && matches(dir, entry, &req.filter, &visible)
                })
                .map(|(key, _)| key.clone())
                .collect();
            ResultSet {
                cookie: Vec::new(),
                keys,
                position: 0,
            }
        }
    };
    let max_page = dir.policies.max_page_size.max(1);
    let (limit, paged) = match &paging {
        Some((0, _)) => {
            // A page size of 0 abandons the paged search (RFC 2696 section 3).
            return vec![paged_done(msgid, LdapResultCode::Success, "", Vec::new())];
        }
        Some((size, _)) => ((*size as usize).min(max_page), true),
        None => {
            let client = usize::try_from(req.sizelimit).unwrap_or(0);
            let limit = if client > 0 {
                client.min(max_page)
            } else {
                max_page
            };
            (limit, false)
        }
    };

    let mut out: Vec<LdapMsg> = references
        .into_iter()
        .map(|uri| LdapMsg {
            msgid,
            op: LdapOp::SearchResultReference(LdapSearchResultReference { uris: vec![uri] }),
            ctrl: Vec::new(),
        })
        .collect();
    let mut spent = 0u64;
    let mut code = LdapResultCode::Success;
    let mut sent = 0usize;
    while set.position < set.keys.len() {
        if sent == limit {
            if !paged {
                code = LdapResultCode::SizeLimitExceeded;
            }
            break;
        }
        if faults.cost_per_entry_secs > 0
            && spent + faults.cost_per_entry_secs > dir.policies.max_query_duration_secs
        {
            code = LdapResultCode::TimeLimitExceeded;
            break;
        }
        let key = &set.keys[set.position];
        set.position += 1;
        let Some(entry) = dir.entries.get(key) else {
            continue; // deleted since the first page
        };
        spent += faults.cost_per_entry_secs;
        sent += 1;
        out.push(LdapMsg {
            msgid,
            op: LdapOp::SearchResultEntry(LdapSearchResultEntry {
                dn: entry.dn.clone(),
                attributes: project(dir, entry, &req.attrs, &visible),
            }),
            ctrl: Vec::new(),
        });
    }
    if !paged {
        out.push(done(msgid, code, "", Vec::new()));
        return out;
    }
    session.pages_served += 1;
    let cookie = if set.position < set.keys.len() {
        let cookie = session.new_cookie();
        set.cookie = cookie.clone();
        session.keep(set, dir.policies.max_result_sets_per_conn);
        cookie
    } else {
        Vec::new()
    };
    out.push(paged_done(msgid, code, "", cookie));
    out
}

fn paged_done(msgid: i32, code: LdapResultCode, message: &str, cookie: Vec<u8>) -> LdapMsg {
    let mut msg = done(msgid, code, message, Vec::new());
    msg.ctrl = vec![LdapControl::SimplePagedResults { size: 0, cookie }];
    msg
}

fn no_object(msgid: i32, base: &str) -> LdapMsg {
    done(
        msgid,
        LdapResultCode::NoSuchObject,
        &format!(
            "0000208D: NameErr: DSID-0310028D, problem 2001 (NO_OBJECT), data 0, best match of:\n\t'{base}'\n"
        ),
        Vec::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let (all, wanted) = parse_wanted(&["member;range=1500-*".to_string()]);
        assert!(!all);
        assert_eq!(wanted[0].name, "member");
        assert_eq!(wanted[0].range, Some((1500, None)));
    }
}
