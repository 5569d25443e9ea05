//! Can the service account read attribute X? AD answers a read of an attribute the account may
//! not read by leaving it out — no error — so the planner would see it empty, rewrite it every
//! cycle and journal a wrong "previous value". `allowedAttributesEffective` lists only what the
//! account may *write*, and a read-back alone cannot tell "unreadable" from "empty" (AD filters
//! and answers as if the value were absent). So, for sample objects of a class:
//!
//! 1. the account's token: the rootDSE's `tokenGroups` (the SIDs of the bound security
//!    context, groups and well-known SIDs included);
//! 2. each sample's DACL (`nTSecurityDescriptor` with the SD flags control asking for the DACL
//!    only, which Authenticated Users may read) and each attribute's `schemaIDGUID`,
//!    `attributeSecurityGUID` (its property set) and `searchFlags` (confidential);
//! 3. the access check of `acl.rs` decides; an attribute the samples return with values is
//!    readable whatever the evaluation said (the directory's own answer wins, and a
//!    disagreement is logged).
//!
//! An attribute unreadable on any sample is reported with that sample's DN and the ACE that
//! decided. The adapter calls it at start-up and per object class, and refuses to plan an
//! unreadable attribute.
//!
//! The samples: the first few objects of the class below the base
//! ([`AdConnection::readable_attributes`]), or given objects, by objectGUID
//! ([`AdConnection::readable_attributes_of`]) — the objects a delta is about to evaluate, or the
//! first an initial or full cycle's scan hands over. The
//! first is one search of the whole scope, which Samba evaluates in full before its first page
//! (its paged-results module collects every match: the first page of 5 took 0.4–0.6 s at
//! 10,000 users and 2.6–2.9 s at 50,000; without paging, a size limit of 5 returned all 50,002
//! users); the second is an indexed objectGUID equality per object, answered in milliseconds
//! at either size (docs/performance-history.md, "The read-rights probe of a delta").

use std::collections::HashMap;

use ldap3::Scope;
use ldap3::controls::RawControl;
use uuid::Uuid;

use crate::acl::{CONFIDENTIAL, Verdict, may_read, parse_dacl};
use crate::connection::{AdConnection, SearchScope};
use crate::error::AdError;
use crate::forest_directory::any_object_guid_filter;
use crate::wire::{RawEntry, parse_entry};

/// LDAP_SERVER_SD_FLAGS_OID with DACL_SECURITY_INFORMATION (4): `SEQUENCE { INTEGER 4 }`.
const SD_FLAGS_DACL: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x04];
const SD_FLAGS_OID: &str = "1.2.840.113556.1.4.801";
/// Objects sampled by objectGUID at most (one bounded filter).
pub const MAX_GUID_SAMPLES: usize = 100;

/// Which objects of the class the probe evaluates.
#[derive(Clone, Copy)]
enum Sampling<'a> {
    /// The first `n` below the base (a search of the whole scope).
    First(u32),
    /// These objects, where they are below the base and of the class.
    Guids(&'a [Uuid]),
}

/// The verdict for one attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeAccess {
    pub attribute: String,
    pub readable: bool,
    /// Why: the ACE that decided, "returned with values", or what could not be checked.
    pub evidence: String,
    /// The sample object the verdict was taken on (an unreadable one: where it is unreadable).
    pub sample_dn: Option<String>,
}

/// What the account may read on objects of a class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readability {
    pub object_class: String,
    /// The sample objects looked at.
    pub samples: Vec<String>,
    pub attributes: Vec<AttributeAccess>,
}

impl Readability {
    /// The attributes the account cannot read (on at least one sample).
    pub fn unreadable(&self) -> Vec<&AttributeAccess> {
        self.attributes.iter().filter(|a| !a.readable).collect()
    }

    /// One actionable line per unreadable attribute.
    pub fn problems(&self, bind_identity: &str) -> Vec<String> {
        self.unreadable()
            .into_iter()
            .map(|a| {
                format!(
                    "{bind_identity} cannot read {} on {} objects (e.g. {}): {} — AD leaves an \
                     unreadable attribute out of its answers without an error, so it cannot be \
                     planned; grant Read Property on it (docs/least-privilege.md) or remove it \
                     from the mappings",
                    a.attribute,
                    self.object_class,
                    a.sample_dn.as_deref().unwrap_or("-"),
                    a.evidence
                )
            })
            .collect()
    }
}

/// The verdict with no sample object: readable, since nothing says otherwise.
fn nothing_to_check(attribute: &str, object_class: &str, base: &str) -> AttributeAccess {
    AttributeAccess {
        attribute: attribute.to_string(),
        readable: true,
        evidence: format!("no {object_class} object below {base} to check on"),
        sample_dn: None,
    }
}

struct SchemaFacts {
    guid: [u8; 16],
    property_set: Option<[u8; 16]>,
    confidential: bool,
}

impl AdConnection {
    /// Which of `attributes` the bound account may read on objects of `object_class` below
    /// `base` (up to `samples` objects looked at). See the module documentation.
    pub async fn readable_attributes(
        &self,
        base: &str,
        object_class: &str,
        attributes: &[&str],
        samples: u32,
    ) -> Result<Readability, AdError> {
        self.readable_in(base, object_class, attributes, Sampling::First(samples))
            .await
    }

    /// [`AdConnection::readable_attributes`] evaluated on the objects of `guids` (at most
    /// [`MAX_GUID_SAMPLES`]) that are below `base` and of `object_class` (the same exclusions:
    /// no AdminSDHolder-protected object, no computer): one search of indexed objectGUID
    /// equalities, whose cost does not grow with the directory. No sample found leaves every
    /// attribute readable "with no object to check on", as an empty base does: the caller
    /// decides what then.
    pub async fn readable_attributes_of(
        &self,
        base: &str,
        object_class: &str,
        attributes: &[&str],
        guids: &[Uuid],
    ) -> Result<Readability, AdError> {
        let guids = &guids[..guids.len().min(MAX_GUID_SAMPLES)];
        if guids.is_empty() {
            return Ok(Readability {
                object_class: object_class.to_string(),
                samples: Vec::new(),
                attributes: attributes
                    .iter()
                    .map(|a| nothing_to_check(a, object_class, base))
                    .collect(),
            });
        }
        self.readable_in(base, object_class, attributes, Sampling::Guids(guids))
            .await
    }

    async fn readable_in(
        &self,
        base: &str,
        object_class: &str,
        attributes: &[&str],
        sampling: Sampling<'_>,
    ) -> Result<Readability, AdError> {
        const OP: &str = "checking which attributes the account can read on";
        for a in attributes.iter().chain([&object_class]) {
            crate::connection::check_attribute_name(a)?;
        }
        // On the side connection: a cycle probes beside its scan (`connection/side.rs`).
        let side = self.side();
        // 1. The token.
        let root = side
            .raw_search(
                "",
                SearchScope::Base,
                "(objectClass=*)",
                &["tokenGroups".into()],
            )
            .await?;
        let token: Vec<Vec<u8>> = root
            .into_iter()
            .flat_map(|e| e.attributes)
            .filter(|(n, _)| n.eq_ignore_ascii_case("tokenGroups"))
            .flat_map(|(_, v)| v)
            .collect();
        // 2. The schema facts of the attributes.
        let schema_nc = self
            .root_dse()
            .schema_naming_context
            .clone()
            .unwrap_or_default();
        let mut filter = String::from("(|");
        for a in attributes {
            filter.push_str(&format!("(lDAPDisplayName={a})"));
        }
        filter.push(')');
        let defs = side
            .raw_search(
                &schema_nc,
                SearchScope::OneLevel,
                &filter,
                &[
                    "lDAPDisplayName".into(),
                    "schemaIDGUID".into(),
                    "attributeSecurityGUID".into(),
                    "searchFlags".into(),
                ],
            )
            .await?;
        let mut facts: HashMap<String, SchemaFacts> = HashMap::new();
        for d in &defs {
            let (Some(name), Some(guid)) = (d.first("lDAPDisplayName"), d.first("schemaIDGUID"))
            else {
                continue;
            };
            let Ok(guid) = <[u8; 16]>::try_from(guid.as_slice()) else {
                continue;
            };
            let flags: u32 = d
                .first("searchFlags")
                .and_then(|v| String::from_utf8_lossy(v).trim().parse().ok())
                .unwrap_or(0);
            facts.insert(
                String::from_utf8_lossy(name).to_ascii_lowercase(),
                SchemaFacts {
                    guid,
                    property_set: d
                        .first("attributeSecurityGUID")
                        .and_then(|v| <[u8; 16]>::try_from(v.as_slice()).ok()),
                    confidential: flags & CONFIDENTIAL != 0,
                },
            );
        }
        // 3. Sample objects with their DACL and the attributes themselves.
        let mut wanted: Vec<String> = attributes.iter().map(|a| a.to_string()).collect();
        wanted.push("nTSecurityDescriptor".into());
        // AdminSDHolder-protected objects (adminCount=1) inherit no grant, and a user sample
        // is no computer (another default security descriptor): neither says what the account
        // may read on the objects it writes.
        let class = format!(
            "(objectClass={object_class})(!(adminCount=1)){}",
            if object_class.eq_ignore_ascii_case("user") {
                "(!(objectClass=computer))"
            } else {
                ""
            }
        );
        let (filter, limit, paged) = match sampling {
            Sampling::First(n) => (format!("(&{class})"), n, true),
            Sampling::Guids(guids) => {
                let any = any_object_guid_filter(guids)?;
                let n = u32::try_from(guids.len()).unwrap_or(u32::MAX);
                (format!("(&{any}{class})"), n, false)
            }
        };
        let entries = side
            .sample_with_dacl(base, &filter, &wanted, limit, paged)
            .await
            .map_err(|e| match e {
                AdError::Ldap {
                    code, diagnostic, ..
                } => AdError::Ldap {
                    operation: OP,
                    dn: base.to_string(),
                    code,
                    code_name: crate::error::result_code_name(code),
                    diagnostic,
                },
                other => other,
            })?;
        let mut out = Vec::new();
        for attribute in attributes {
            let Some(f) = facts.get(&attribute.to_ascii_lowercase()) else {
                out.push(AttributeAccess {
                    attribute: attribute.to_string(),
                    readable: false,
                    evidence: "the schema has no such attribute (ad schema / lDAPDisplayName)"
                        .into(),
                    sample_dn: None,
                });
                continue;
            };
            let mut verdict: Option<AttributeAccess> = None;
            for entry in &entries {
                let returned = entry.attributes.iter().any(|(n, v)| {
                    n.split(';')
                        .next()
                        .is_some_and(|n| n.eq_ignore_ascii_case(attribute))
                        && !v.is_empty()
                });
                let decided = match entry.first("nTSecurityDescriptor").map(|sd| parse_dacl(sd)) {
                    Some(Ok(dacl)) => may_read(dacl.as_deref(), &token, f.guid, f.property_set, f.confidential),
                    Some(Err(problem)) => Verdict::Unreadable {
                        why: format!("its security descriptor could not be read: {problem}"),
                    },
                    None => Verdict::Unreadable {
                        why: "the account may not read the object's security descriptor (Read Permissions), so its rights cannot be checked".into(),
                    },
                };
                let access = match (returned, decided) {
                    (true, Verdict::Unreadable { why }) => {
                        tracing::warn!(dn = %entry.dn, attribute, evaluation = %why, "AD returned values the ACL evaluation says are unreadable; trusting AD's answer");
                        AttributeAccess {
                            attribute: attribute.to_string(),
                            readable: true,
                            evidence: "returned with values".into(),
                            sample_dn: Some(entry.dn.clone()),
                        }
                    }
                    (_, Verdict::Readable { by }) => AttributeAccess {
                        attribute: attribute.to_string(),
                        readable: true,
                        evidence: by,
                        sample_dn: Some(entry.dn.clone()),
                    },
                    (false, Verdict::Unreadable { why }) => AttributeAccess {
                        attribute: attribute.to_string(),
                        readable: false,
                        evidence: why,
                        sample_dn: Some(entry.dn.clone()),
                    },
                };
                let stop = !access.readable;
                verdict = Some(access);
                if stop {
                    break;
                }
            }
            out.push(verdict.unwrap_or_else(|| nothing_to_check(attribute, object_class, base)));
        }
        Ok(Readability {
            object_class: object_class.to_string(),
            samples: entries.into_iter().map(|e| e.dn).collect(),
            attributes: out,
        })
    }

    /// Up to `limit` entries of `filter` below `base` with `attrs`, the security descriptor
    /// asked for its DACL only (SD flags control); `paged`: the first page only, of `limit`
    /// (a filter that may match the whole scope), else one plain search (a filter of at most
    /// `limit` objects).
    async fn sample_with_dacl(
        &self,
        base: &str,
        filter: &str,
        attrs: &[String],
        limit: u32,
        paged: bool,
    ) -> Result<Vec<RawEntry>, AdError> {
        const OP: &str = "reading sample objects of";
        self.run(|mut ldap| async move {
            ldap.with_timeout(self.timeout());
            let mut controls = vec![RawControl {
                ctype: SD_FLAGS_OID.into(),
                crit: false,
                val: Some(SD_FLAGS_DACL.to_vec()),
            }];
            if paged {
                controls.push(
                    ldap3::controls::PagedResults {
                        size: i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000),
                        cookie: Vec::new(),
                    }
                    .into(),
                );
            }
            ldap.with_controls(controls);
            self.note_search_request();
            let mut stream = ldap
                .streaming_search(base, Scope::Subtree, filter, attrs.to_vec())
                .await
                .map_err(|e| self.op_error(e, OP, base, ""))?;
            let mut out = Vec::new();
            loop {
                match stream.next().await {
                    Ok(Some(entry)) if entry.is_ref() || entry.is_intermediate() => continue,
                    Ok(Some(entry)) => {
                        if out.len() < limit as usize {
                            out.push(parse_entry(entry.0).map_err(|p| AdError::Protocol {
                                address: self.config().url.clone(),
                                operation: OP,
                                problem: p,
                            })?);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Err(self.op_error(e, OP, base, "")),
                }
            }
            let result = stream.finish().await;
            if result.rc != 0 {
                return Err(self.op_error(ldap3::LdapError::LdapResult { result }, OP, base, ""));
            }
            Ok(out)
        })
        .await
    }
}
