//! Whether an AD account is privileged: a member (directly or through nesting) of the groups
//! AD protects with AdminSDHolder, or an account with `adminCount=1`. `check` warns when the
//! agent binds as one (docs/least-privilege.md). Pure: SIDs in, reasons out.
//!
//! The groups are identified by SID, not name (names are localised): the domain-relative
//! RIDs and the BUILTIN SIDs of MS-DTYP 2.4.2.4 ("Well-Known SID Structures"), the set of
//! "Appendix C: Protected Accounts and Groups in Active Directory".

use exo_writeback_expr::sid_to_string;

/// Privileged groups of a domain, by relative identifier (RID). Enterprise and Schema
/// Admins exist in the forest root domain only; a SID with the RID of any domain counts.
pub const DOMAIN_GROUPS: [(u32, &str); 7] = [
    (512, "Domain Admins"),
    (518, "Schema Admins"),
    (519, "Enterprise Admins"),
    (516, "Domain Controllers"),
    (521, "Read-only Domain Controllers"),
    (526, "Key Admins"),
    (527, "Enterprise Key Admins"),
];

/// Privileged BUILTIN groups (`S-1-5-32-<RID>`).
pub const BUILTIN_GROUPS: [(u32, &str); 6] = [
    (544, "Administrators"),
    (548, "Account Operators"),
    (549, "Server Operators"),
    (550, "Print Operators"),
    (551, "Backup Operators"),
    (552, "Replicator"),
];

/// The last sub-authority of an account-domain SID (`S-1-5-21-a-b-c-RID`), or `None`.
fn domain_rid(sid: &str) -> Option<u32> {
    let parts: Vec<&str> = sid.strip_prefix("S-1-5-21-")?.split('-').collect();
    match parts.as_slice() {
        [_, _, _, rid] => rid.parse().ok(),
        _ => None,
    }
}

/// Why the account is privileged (empty: it is not). `object_sid` is the account's own
/// objectSid, `token_groups` the binary SIDs of its `tokenGroups` (every group it belongs
/// to, transitively, including its primary group), `admin_count` its `adminCount`.
pub fn privileged_reasons(
    object_sid: Option<&[u8]>,
    token_groups: &[&[u8]],
    admin_count: Option<&str>,
) -> Vec<String> {
    let mut reasons = Vec::new();
    if object_sid
        .and_then(sid_to_string)
        .and_then(|s| domain_rid(&s))
        == Some(500)
    {
        reasons.push("the domain's built-in Administrator account".to_string());
    }
    let groups: Vec<String> = token_groups
        .iter()
        .filter_map(|b| sid_to_string(b))
        .collect();
    for (rid, name) in DOMAIN_GROUPS {
        if groups.iter().any(|s| domain_rid(s) == Some(rid)) {
            reasons.push(format!("member of {name}"));
        }
    }
    for (rid, name) in BUILTIN_GROUPS {
        if groups.iter().any(|s| *s == format!("S-1-5-32-{rid}")) {
            reasons.push(format!("member of {name}"));
        }
    }
    if admin_count.is_some_and(|c| c.trim() == "1") {
        reasons.push("adminCount=1".to_string());
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binary SID from its parts.
    fn sid(authority: u8, subs: &[u32]) -> Vec<u8> {
        let mut b = vec![1, subs.len() as u8, 0, 0, 0, 0, 0, authority];
        for s in subs {
            b.extend_from_slice(&s.to_le_bytes());
        }
        b
    }

    #[test]
    fn groups_are_recognised_by_sid() {
        let domain = |rid| sid(5, &[21, 1, 2, 3, rid]);
        let admin = domain(500);
        let groups = [domain(513), domain(512), sid(5, &[32, 544]), domain(519)];
        let groups: Vec<&[u8]> = groups.iter().map(Vec::as_slice).collect();
        assert_eq!(
            privileged_reasons(Some(&admin), &groups, Some("1")),
            [
                "the domain's built-in Administrator account",
                "member of Domain Admins",
                "member of Enterprise Admins",
                "member of Administrators",
                "adminCount=1"
            ]
        );
        // Domain Users and Authenticated Users (S-1-5-11) alone: not privileged.
        let plain = [domain(513), sid(5, &[11]), sid(5, &[32, 545])];
        let plain: Vec<&[u8]> = plain.iter().map(Vec::as_slice).collect();
        assert!(privileged_reasons(Some(&domain(1234)), &plain, Some("0")).is_empty());
        // Operators, and a RID that only looks alike in another authority.
        let ops = [
            sid(5, &[32, 551]),
            sid(5, &[32, 548]),
            sid(5, &[21, 9, 512]),
        ];
        let ops: Vec<&[u8]> = ops.iter().map(Vec::as_slice).collect();
        assert_eq!(
            privileged_reasons(None, &ops, None),
            ["member of Account Operators", "member of Backup Operators"]
        );
    }
}
