//! Reading a security descriptor and deciding whether a token may read an attribute, as the
//! access check of MS-DTYP 2.5.3.2 does for a directory object's hierarchy object → property set
//! → property (Microsoft Learn, "ACEs to Control Access to an Object's Properties"; the rights,
//! MS-ADTS 5.1.3): the DACL's ACEs in order, the first one that applies to
//! the attribute (no object type, the attribute's schemaIDGUID, or its property set's
//! attributeSecurityGUID) and covers a right decides it — deny or allow; a right no ACE grants
//! is denied. Reading needs RIGHT_DS_READ_PROPERTY, and for a confidential attribute
//! (searchFlags fCONFIDENTIAL, 0x80) RIGHT_DS_CONTROL_ACCESS too.
//!
//! Pure: bytes in, a verdict out. No ACE is ever created or changed here.

/// RIGHT_DS_READ_PROPERTY.
pub const READ_PROPERTY: u32 = 0x10;
/// RIGHT_DS_CONTROL_ACCESS.
pub const CONTROL_ACCESS: u32 = 0x100;
const GENERIC_ALL: u32 = 0x1000_0000;
const GENERIC_READ: u32 = 0x8000_0000;
/// SE_DACL_PRESENT.
const DACL_PRESENT: u16 = 0x0004;
const INHERIT_ONLY: u8 = 0x08;
const INHERITED: u8 = 0x10;
/// searchFlags fCONFIDENTIAL.
pub const CONFIDENTIAL: u32 = 0x80;

/// One access-control entry that can decide a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    pub allow: bool,
    pub inherit_only: bool,
    pub inherited: bool,
    pub mask: u32,
    /// The object type (a property, a property set, an extended right), as stored.
    pub object_type: Option<[u8; 16]>,
    /// The trustee's SID, binary.
    pub sid: Vec<u8>,
}

/// The DACL of a self-relative security descriptor: None when the descriptor has none (a NULL
/// DACL grants everything).
pub fn parse_dacl(sd: &[u8]) -> Result<Option<Vec<Ace>>, String> {
    let u16_at = |at: usize| -> Result<u16, String> {
        sd.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or_else(|| "security descriptor too short".to_string())
    };
    let u32_at = |at: usize| -> Result<u32, String> {
        sd.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| "security descriptor too short".to_string())
    };
    let control = u16_at(2)?;
    let dacl_at = u32_at(16)? as usize;
    if control & DACL_PRESENT == 0 || dacl_at == 0 {
        return Ok(None);
    }
    let count = u16_at(dacl_at + 4)? as usize;
    let mut at = dacl_at + 8;
    let mut aces = Vec::with_capacity(count);
    for _ in 0..count {
        let header = sd.get(at..at + 4).ok_or("ACE header past the end")?;
        let (kind, flags) = (header[0], header[1]);
        let size = u16::from_le_bytes([header[2], header[3]]) as usize;
        if size < 8 {
            return Err("ACE shorter than its header".into());
        }
        let body = sd.get(at + 4..at + size).ok_or("ACE past the end")?;
        at += size;
        let (allow, object) = match kind {
            0 => (true, false),
            1 => (false, false),
            5 => (true, true),
            6 => (false, true),
            _ => continue, // audit, callback and other ACEs do not decide a read
        };
        let mask = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
        let mut rest = &body[4..];
        let mut object_type = None;
        if object {
            let flags = u32::from_le_bytes(
                rest.get(..4)
                    .ok_or("object ACE too short")?
                    .try_into()
                    .map_err(|_| "object ACE flags")?,
            );
            rest = &rest[4..];
            if flags & 1 != 0 {
                let guid: [u8; 16] = rest
                    .get(..16)
                    .ok_or("object ACE type past the end")?
                    .try_into()
                    .map_err(|_| "object type")?;
                object_type = Some(guid);
                rest = &rest[16..];
            }
            if flags & 2 != 0 {
                rest = rest.get(16..).ok_or("inherited object type past the end")?;
            }
        }
        aces.push(Ace {
            allow,
            inherit_only: flags & INHERIT_ONLY != 0,
            inherited: flags & INHERITED != 0,
            mask,
            object_type,
            sid: rest.to_vec(),
        });
    }
    Ok(Some(aces))
}

/// A SID in its string form, `S-1-5-21-…`.
pub fn sid_string(sid: &[u8]) -> String {
    if sid.len() < 8 {
        return format!("(malformed SID {sid:02x?})");
    }
    let count = sid[1] as usize;
    let authority = sid[2..8]
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let mut out = format!("S-{}-{authority}", sid[0]);
    for i in 0..count {
        let at = 8 + 4 * i;
        if let Some(b) = sid.get(at..at + 4) {
            out.push_str(&format!(
                "-{}",
                u32::from_le_bytes([b[0], b[1], b[2], b[3]])
            ));
        }
    }
    out
}

/// What decided a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The first deciding ACE allows; `by` says which.
    Readable { by: String },
    /// A deny ACE decided, or no ACE grants the right.
    Unreadable { why: String },
}

impl Verdict {
    pub fn readable(&self) -> bool {
        matches!(self, Verdict::Readable { .. })
    }
}

fn describe(ace: &Ace, what: &str) -> String {
    format!(
        "{} {what} for {}{}",
        if ace.allow {
            "an ACE allows"
        } else {
            "an ACE denies"
        },
        sid_string(&ace.sid),
        if ace.inherited { " (inherited)" } else { "" }
    )
}

/// Whether `token` may read the attribute with schemaIDGUID `attribute` (in the property set
/// `property_set`, if any) under `dacl` (None: a NULL DACL).
pub fn may_read(
    dacl: Option<&[Ace]>,
    token: &[Vec<u8>],
    attribute: [u8; 16],
    property_set: Option<[u8; 16]>,
    confidential: bool,
) -> Verdict {
    let Some(dacl) = dacl else {
        return Verdict::Readable {
            by: "the object has no DACL".into(),
        };
    };
    let mut needed = vec![(READ_PROPERTY, "Read Property")];
    if confidential {
        needed.push((CONTROL_ACCESS, "Control Access (confidential attribute)"));
    }
    let mut granted_by = Vec::new();
    for (right, name) in needed {
        let decided = dacl.iter().find(|ace| {
            !ace.inherit_only
                && token.contains(&ace.sid)
                && (ace.mask & right != 0 || ace.mask & (GENERIC_ALL | GENERIC_READ) != 0)
                && ace
                    .object_type
                    .is_none_or(|t| t == attribute || Some(t) == property_set)
        });
        match decided {
            Some(ace) if ace.allow => granted_by.push(describe(ace, name)),
            Some(ace) => {
                return Verdict::Unreadable {
                    why: describe(ace, name),
                };
            }
            None => {
                return Verdict::Unreadable {
                    why: format!("no ACE grants {name} to the account or its groups"),
                };
            }
        }
    }
    Verdict::Readable {
        by: granted_by.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(rid: u32) -> Vec<u8> {
        let mut s = vec![
            1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0,
        ];
        s.extend(rid.to_le_bytes());
        s
    }

    fn ace_bytes(kind: u8, flags: u8, mask: u32, object: Option<[u8; 16]>, sid: &[u8]) -> Vec<u8> {
        let mut body = mask.to_le_bytes().to_vec();
        if kind >= 5 {
            body.extend(u32::from(object.is_some()).to_le_bytes());
            if let Some(g) = object {
                body.extend(g);
            }
        }
        body.extend(sid);
        let mut out = vec![kind, flags];
        out.extend(((body.len() + 4) as u16).to_le_bytes());
        out.extend(body);
        out
    }

    fn sd(aces: &[Vec<u8>]) -> Vec<u8> {
        let acl_body: Vec<u8> = aces.concat();
        let mut acl = vec![4, 0];
        acl.extend(((acl_body.len() + 8) as u16).to_le_bytes());
        acl.extend((aces.len() as u16).to_le_bytes());
        acl.extend([0, 0]);
        acl.extend(acl_body);
        let mut out = vec![1, 0];
        out.extend((0x8004u16).to_le_bytes()); // self-relative, DACL present
        out.extend([0u8; 12]); // owner, group, SACL offsets
        out.extend(20u32.to_le_bytes()); // DACL offset
        out.extend(acl);
        out
    }

    const ATTR: [u8; 16] = [7; 16];
    const SET: [u8; 16] = [9; 16];

    #[test]
    fn the_first_deciding_ace_wins() {
        let me = sid(1105);
        let everyone = vec![1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        let token = vec![me.clone(), everyone.clone()];
        let deny_attr = ace_bytes(6, INHERITED, READ_PROPERTY, Some(ATTR), &me);
        let allow_all = ace_bytes(0, 0, READ_PROPERTY, None, &everyone);
        let dacl = parse_dacl(&sd(&[deny_attr.clone(), allow_all.clone()]))
            .unwrap()
            .unwrap();
        assert_eq!(dacl.len(), 2);
        let v = may_read(Some(&dacl), &token, ATTR, None, false);
        assert!(!v.readable(), "{v:?}");
        assert!(
            matches!(&v, Verdict::Unreadable { why } if why.contains("denies") && why.contains("S-1-5-21-1-2-3-1105") && why.contains("inherited"))
        );
        // Another attribute is readable through the allow.
        assert!(may_read(Some(&dacl), &token, [1; 16], None, false).readable());
        // An allow before the deny decides first.
        let dacl = parse_dacl(&sd(&[allow_all, deny_attr])).unwrap().unwrap();
        assert!(may_read(Some(&dacl), &token, ATTR, None, false).readable());
    }

    #[test]
    fn property_sets_confidentiality_and_strangers() {
        let me = sid(1105);
        let other = sid(999);
        let allow_set = ace_bytes(5, 0, READ_PROPERTY, Some(SET), &me);
        let dacl = parse_dacl(&sd(&[
            allow_set,
            ace_bytes(1, 0, READ_PROPERTY, None, &other),
        ]))
        .unwrap()
        .unwrap();
        let token = vec![me.clone()];
        assert!(may_read(Some(&dacl), &token, ATTR, Some(SET), false).readable());
        assert!(
            !may_read(Some(&dacl), &token, ATTR, None, false).readable(),
            "not in the set"
        );
        let v = may_read(Some(&dacl), &token, ATTR, Some(SET), true);
        assert!(
            matches!(&v, Verdict::Unreadable { why } if why.contains("Control Access")),
            "{v:?}"
        );
        assert!(
            may_read(None, &token, ATTR, None, true).readable(),
            "NULL DACL"
        );
        let inherit_only = ace_bytes(0, INHERIT_ONLY, READ_PROPERTY, None, &me);
        let dacl = parse_dacl(&sd(&[inherit_only])).unwrap().unwrap();
        assert!(!may_read(Some(&dacl), &token, ATTR, None, false).readable());
    }

    #[test]
    fn malformed_descriptors_are_errors_not_panics() {
        assert!(parse_dacl(&[]).is_err());
        let mut bad = sd(&[ace_bytes(0, 0, READ_PROPERTY, None, &sid(1))]);
        bad.truncate(bad.len() - 6);
        assert!(parse_dacl(&bad).is_err());
        assert_eq!(sid_string(&[1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]), "S-1-1-0");
    }
}
