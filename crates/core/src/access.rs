//! Whether an account may read an attribute of an object, decided from the object's DACL — the
//! start-up probe of the attributes the plans need (issue 12, item 6). Pure: bytes and SIDs in,
//! a decision out.
//!
//! Why not a read-back: AD leaves an attribute the caller may not read out of its answers
//! **without an error**, and a search filter naming it behaves as if the attribute were absent
//! (on the lab's Samba DC `(!(extensionAttribute15=*))` matches an object that holds one when
//! the caller is denied Read Property on it), so the account cannot even find an object "known
//! to hold" the attribute to read back. `allowedAttributesEffective` reports write rights only
//! (MS-ADTS 3.1.1.4.5.20). What the account can read is its own security context
//! (`objectSid`, `tokenGroups`, MS-ADTS 3.1.1.4.5.19) and, with the SD flags control asking for
//! the DACL only (MS-ADTS 3.1.1.3.4.1.11; Authenticated Users hold Read Control on users by
//! default), an object's DACL: the same inputs the DC's own access check uses.
//!
//! The check is MS-DTYP 2.5.3.2 (access check with an object type list) for one right on one
//! attribute: the tree is the object's class → the attribute's property set (its
//! `attributeSecurityGUID`, if any) → the attribute; walking the ACEs in order, the first
//! non-inherit-only ACE whose SID is in the token, whose mask holds the right and whose object
//! type is absent or one of the three GUIDs decides (allow or deny). A confidential attribute
//! (`searchFlags` bit 0x80) also needs Control Access on it (MS-ADTS 3.1.1.2.4.8). The layout
//! of a self-relative security descriptor, an ACL and its ACEs is MS-DTYP 2.4.6, 2.4.5 and
//! 2.4.4.

use uuid::Uuid;

/// RIGHT_DS_READ_PROPERTY.
pub const READ_PROPERTY: u32 = 0x10;
/// RIGHT_DS_CONTROL_ACCESS.
pub const CONTROL_ACCESS: u32 = 0x100;
const GENERIC_ALL: u32 = 0x1000_0000;
const GENERIC_READ: u32 = 0x8000_0000;
const INHERIT_ONLY_ACE: u8 = 0x08;
const INHERITED_ACE: u8 = 0x10;
const SE_DACL_PRESENT: u16 = 0x0004;
const ACE_OBJECT_TYPE_PRESENT: u32 = 0x1;
const ACE_INHERITED_OBJECT_TYPE_PRESENT: u32 = 0x2;
/// `searchFlags` fCONFIDENTIAL.
pub const CONFIDENTIAL: i64 = 0x80;

/// One access-allowed or access-denied ACE of a DACL (object ACEs included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    pub allow: bool,
    pub mask: u32,
    pub object_type: Option<Uuid>,
    /// `S-1-5-21-…`.
    pub sid: String,
    pub inherit_only: bool,
    /// Inherited from a parent (ID), as opposed to set on the object itself.
    pub inherited: bool,
}

impl Ace {
    /// The ACE in SDDL-like words, for messages: `deny Read Property on <guid> to <sid>
    /// (inherited)`.
    pub fn describe(&self) -> String {
        format!(
            "{} entry (mask 0x{:x}{}) for {}{}",
            if self.allow { "an allow" } else { "a deny" },
            self.mask,
            self.object_type
                .map(|g| format!(", object type {g}"))
                .unwrap_or_default(),
            self.sid,
            if self.inherited { ", inherited" } else { "" }
        )
    }
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, String> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| format!("truncated at byte {at}"))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| format!("truncated at byte {at}"))
}

fn guid_at(b: &[u8], at: usize) -> Result<Uuid, String> {
    b.get(at..at + 16)
        .and_then(|s| <[u8; 16]>::try_from(s).ok())
        .map(Uuid::from_bytes_le)
        .ok_or_else(|| format!("truncated GUID at byte {at}"))
}

/// The access-allowed and access-denied ACEs of a self-relative security descriptor's DACL, in
/// order (audit, alarm and conditional ACEs are skipped: they grant and deny nothing here).
/// `Ok(None)`: the descriptor has no DACL (a NULL DACL, which denies nothing).
pub fn parse_dacl(sd: &[u8]) -> Result<Option<Vec<Ace>>, String> {
    let bad = |e: String| format!("malformed security descriptor: {e}");
    let control = u16_at(sd, 2).map_err(bad)?;
    let offset = u32_at(sd, 16).map_err(bad)? as usize;
    if control & SE_DACL_PRESENT == 0 || offset == 0 {
        return Ok(None);
    }
    let count = u16_at(sd, offset + 4).map_err(bad)?;
    let mut at = offset + 8;
    let mut aces = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let kind = *sd
            .get(at)
            .ok_or_else(|| bad(format!("no ACE at byte {at}")))?;
        let flags = *sd
            .get(at + 1)
            .ok_or_else(|| bad(format!("no ACE at byte {at}")))?;
        let size = usize::from(u16_at(sd, at + 2).map_err(bad)?);
        if size < 8 {
            return Err(bad(format!("ACE of {size} bytes at byte {at}")));
        }
        let ace = sd
            .get(at..at + size)
            .ok_or_else(|| bad(format!("ACE at byte {at} runs past the end")))?;
        let parsed = match kind {
            0x00 | 0x01 => Some((kind == 0x00, u32_at(ace, 4).map_err(bad)?, None, 8)),
            0x05 | 0x06 => {
                let object_flags = u32_at(ace, 8).map_err(bad)?;
                let mut p = 12;
                let object_type = if object_flags & ACE_OBJECT_TYPE_PRESENT != 0 {
                    let g = guid_at(ace, p).map_err(bad)?;
                    p += 16;
                    Some(g)
                } else {
                    None
                };
                if object_flags & ACE_INHERITED_OBJECT_TYPE_PRESENT != 0 {
                    p += 16;
                }
                Some((kind == 0x05, u32_at(ace, 4).map_err(bad)?, object_type, p))
            }
            _ => None,
        };
        if let Some((allow, mask, object_type, sid_at)) = parsed {
            // The SID's own length (an ACE may be padded after it).
            let sid_len = ace.get(sid_at + 1).map_or(0, |n| 8 + 4 * usize::from(*n));
            let sid = ace
                .get(sid_at..sid_at + sid_len)
                .and_then(exo_writeback_expr::sid_to_string)
                .ok_or_else(|| bad(format!("no SID in the ACE at byte {at}")))?;
            aces.push(Ace {
                allow,
                mask,
                object_type,
                sid,
                inherit_only: flags & INHERIT_ONLY_ACE != 0,
                inherited: flags & INHERITED_ACE != 0,
            });
        }
        at += size;
    }
    Ok(Some(aces))
}

/// What the check needs to know of an attribute (from the schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeGuids {
    /// `schemaIDGUID`.
    pub attribute: Uuid,
    /// `attributeSecurityGUID`: the property set it belongs to.
    pub property_set: Option<Uuid>,
    /// `searchFlags` has fCONFIDENTIAL.
    pub confidential: bool,
}

/// The decision for one attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadDecision {
    Allowed,
    /// A deny ACE decided.
    Denied(Ace),
    /// No ACE grants the right.
    NotGranted {
        right: &'static str,
    },
}

fn decide(
    aces: &[Ace],
    token: &[String],
    class: Uuid,
    attr: &AttributeGuids,
    right: u32,
) -> Option<Ace> {
    aces.iter()
        .filter(|a| !a.inherit_only && token.iter().any(|s| s.eq_ignore_ascii_case(&a.sid)))
        .filter(|a| {
            let mut mask = a.mask;
            if mask & GENERIC_ALL != 0 {
                mask |= READ_PROPERTY | CONTROL_ACCESS;
            }
            if mask & GENERIC_READ != 0 {
                mask |= READ_PROPERTY;
            }
            mask & right != 0
        })
        .find(|a| match a.object_type {
            None => true,
            Some(g) => g == class || g == attr.attribute || Some(g) == attr.property_set,
        })
        .cloned()
}

/// Whether `token` (the account's SIDs) may read the attribute on an object of class `class`
/// (its schemaIDGUID) whose DACL is `aces` (`None`: a NULL DACL).
pub fn read_decision(
    aces: Option<&[Ace]>,
    token: &[String],
    class: Uuid,
    attr: &AttributeGuids,
) -> ReadDecision {
    let Some(aces) = aces else {
        return ReadDecision::Allowed;
    };
    let mut rights = vec![(READ_PROPERTY, "Read Property")];
    if attr.confidential {
        rights.push((CONTROL_ACCESS, "Control Access (a confidential attribute)"));
    }
    for (right, name) in rights {
        match decide(aces, token, class, attr, right) {
            Some(ace) if ace.allow => {}
            Some(ace) => return ReadDecision::Denied(ace),
            None => return ReadDecision::NotGranted { right: name },
        }
    }
    ReadDecision::Allowed
}

/// The SIDs an account acts with on a DC: its own, its groups (`tokenGroups`: transitive, with
/// the primary group and BUILTIN groups), Everyone, Authenticated Users and This Organization
/// (MS-DTYP 2.4.2.4), which a network logon always carries.
pub fn token(object_sid: &str, token_groups: &[String]) -> Vec<String> {
    let mut out = vec![object_sid.to_string()];
    out.extend(token_groups.iter().cloned());
    out.extend(["S-1-1-0", "S-1-5-11", "S-1-5-15"].map(String::from));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "S-1-5-21-1-2-3-1106";
    const OTHER: &str = "S-1-5-21-1-2-3-1107";

    fn sid_bytes(sid: &str) -> Vec<u8> {
        let parts: Vec<u64> = sid
            .trim_start_matches("S-1-")
            .split('-')
            .map(|p| p.parse().expect("number"))
            .collect();
        let mut b = vec![1u8, (parts.len() - 1) as u8];
        b.extend_from_slice(&parts[0].to_be_bytes()[2..]);
        for sub in &parts[1..] {
            b.extend_from_slice(&(*sub as u32).to_le_bytes());
        }
        b
    }

    /// A self-relative SD with a DACL of `(type, flags, mask, object type, sid)` ACEs.
    fn sd(aces: &[(u8, u8, u32, Option<Uuid>, &str)]) -> Vec<u8> {
        let mut acl_body = Vec::new();
        for (kind, flags, mask, object, sid) in aces {
            let mut ace = vec![*kind, *flags, 0, 0];
            ace.extend_from_slice(&mask.to_le_bytes());
            if matches!(kind, 5 | 6) {
                ace.extend_from_slice(&u32::from(object.is_some()).to_le_bytes());
                if let Some(g) = object {
                    ace.extend_from_slice(&g.to_bytes_le());
                }
            }
            ace.extend(sid_bytes(sid));
            let size = ace.len() as u16;
            ace[2..4].copy_from_slice(&size.to_le_bytes());
            acl_body.extend(ace);
        }
        let mut out = vec![1, 0];
        out.extend_from_slice(&(0x8004u16).to_le_bytes()); // self-relative, DACL present
        out.extend_from_slice(&[0; 12]); // owner, group, SACL: none
        out.extend_from_slice(&20u32.to_le_bytes()); // the DACL right after the header
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&((8 + acl_body.len()) as u16).to_le_bytes());
        out.extend_from_slice(&(aces.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend(acl_body);
        out
    }

    const EA15: Uuid = Uuid::from_u128(0x167757fa_47f3_11d1_a9c3_0000f80367c1);
    const USER: Uuid = Uuid::from_u128(0xbf967aba_0de6_11d0_a285_00aa003049e2);
    const PERSONAL: Uuid = Uuid::from_u128(0x77b5b886_944a_11d1_aebd_0000f80367c1);
    const MAIL: Uuid = Uuid::from_u128(0xbf967961_0de6_11d0_a285_00aa003049e2);

    fn check(aces: &[(u8, u8, u32, Option<Uuid>, &str)], attr: AttributeGuids) -> ReadDecision {
        let parsed = parse_dacl(&sd(aces)).expect("parses").expect("a DACL");
        read_decision(Some(&parsed), &token(ME, &[]), USER, &attr)
    }

    fn plain(attribute: Uuid) -> AttributeGuids {
        AttributeGuids {
            attribute,
            property_set: None,
            confidential: false,
        }
    }

    #[test]
    fn the_first_applicable_ace_decides() {
        let allow_all = (0x00, 0x12, 0x30, None, ME); // RP|WP, inherited, container-inherit
        let deny_ea15 = (0x06, 0x12, READ_PROPERTY, Some(EA15), ME);
        // svc-noread of the lab forest: the inherited deny comes first (canonical order).
        let d = check(&[deny_ea15, allow_all], plain(EA15));
        let ReadDecision::Denied(ace) = &d else {
            panic!("{d:?}")
        };
        assert!(!ace.allow && ace.inherited && ace.object_type == Some(EA15));
        assert!(
            ace.describe().starts_with("a deny entry"),
            "{}",
            ace.describe()
        );
        assert_eq!(
            check(&[deny_ea15, allow_all], plain(MAIL)),
            ReadDecision::Allowed
        );
        // An allow before the deny wins (explicit allow, inherited deny).
        assert_eq!(
            check(&[allow_all, deny_ea15], plain(EA15)),
            ReadDecision::Allowed
        );
        // Nothing for this account: not granted.
        assert_eq!(
            check(&[(0x00, 0, READ_PROPERTY, None, OTHER)], plain(EA15)),
            ReadDecision::NotGranted {
                right: "Read Property"
            }
        );
        // Inherit-only ACEs do not apply to the object itself.
        assert_eq!(
            check(&[(0x00, 0x08, READ_PROPERTY, None, ME)], plain(EA15)),
            ReadDecision::NotGranted {
                right: "Read Property"
            }
        );
        // Rights without Read Property do not decide it.
        assert_eq!(
            check(&[(0x00, 0, 0x20, None, ME), allow_all], plain(EA15)),
            ReadDecision::Allowed
        );
        // Generic read and generic all map to Read Property.
        for generic in [GENERIC_READ, GENERIC_ALL] {
            assert_eq!(
                check(&[(0x00, 0, generic, None, ME)], plain(EA15)),
                ReadDecision::Allowed
            );
        }
        // Well-known SIDs of every network logon: Authenticated Users.
        assert_eq!(
            check(&[(0x00, 0, READ_PROPERTY, None, "S-1-5-11")], plain(EA15)),
            ReadDecision::Allowed
        );
    }

    #[test]
    fn object_types_are_the_class_the_property_set_or_the_attribute() {
        let in_personal = AttributeGuids {
            attribute: EA15,
            property_set: Some(PERSONAL),
            confidential: false,
        };
        let on = |g: Uuid| [(0x05u8, 0u8, READ_PROPERTY, Some(g), ME)];
        assert_eq!(check(&on(PERSONAL), in_personal), ReadDecision::Allowed);
        assert_eq!(check(&on(USER), in_personal), ReadDecision::Allowed);
        assert_eq!(check(&on(EA15), in_personal), ReadDecision::Allowed);
        assert!(matches!(
            check(&on(MAIL), in_personal),
            ReadDecision::NotGranted { .. }
        ));
        // A deny on the property set denies its members.
        let d = check(
            &[
                (0x06, 0, READ_PROPERTY, Some(PERSONAL), ME),
                (0x00, 0, READ_PROPERTY, None, ME),
            ],
            in_personal,
        );
        assert!(matches!(d, ReadDecision::Denied(_)), "{d:?}");
    }

    #[test]
    fn a_confidential_attribute_also_needs_control_access() {
        let secret = AttributeGuids {
            attribute: EA15,
            property_set: None,
            confidential: true,
        };
        assert_eq!(
            check(&[(0x00, 0, READ_PROPERTY, None, ME)], secret),
            ReadDecision::NotGranted {
                right: "Control Access (a confidential attribute)"
            }
        );
        assert_eq!(
            check(
                &[(0x00, 0, READ_PROPERTY | CONTROL_ACCESS, None, ME)],
                secret
            ),
            ReadDecision::Allowed
        );
    }

    #[test]
    fn descriptors_without_a_dacl_and_malformed_ones() {
        let mut no_dacl = sd(&[]);
        no_dacl[2] = 0; // SE_DACL_PRESENT cleared
        no_dacl[3] = 0x80;
        assert_eq!(parse_dacl(&no_dacl), Ok(None));
        assert_eq!(
            read_decision(None, &token(ME, &[]), USER, &plain(EA15)),
            ReadDecision::Allowed
        );
        let full = sd(&[(0x05, 0, READ_PROPERTY, Some(EA15), ME)]);
        for cut in [3, 19, 27, full.len() - 1] {
            assert!(parse_dacl(&full[..cut]).is_err(), "cut at {cut}");
        }
        // Audit and other ACE types are skipped, not misread.
        let parsed = parse_dacl(&sd(&[(0x02, 0, READ_PROPERTY, None, ME)]))
            .expect("parses")
            .expect("a DACL");
        assert!(parsed.is_empty());
    }
}
