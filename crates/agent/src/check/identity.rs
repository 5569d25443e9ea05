//! `check`: is the bind identity privileged? The account is found (a DN as is; a UPN, else
//! its `sAMAccountName` part, as AD's implicit UPN; `DOMAIN\user` by `sAMAccountName`) and
//! its `tokenGroups` (every group, transitively, with the primary group) and `adminCount`
//! are read; `core::privilege` decides. A privileged identity is a warning, not a failure.

use crate::read_rights::{bind_account, domain_root};
use exo_writeback_ad::{AdConnection, AdError};
use exo_writeback_core::directory::AttrValue;
use exo_writeback_core::privilege::privileged_reasons;
use serde::Serialize;

/// What `check` found out about the bind account.
#[derive(Debug, Serialize, Default)]
pub struct BindAccountReport {
    /// The account's DN, when found.
    pub dn: Option<String>,
    pub privileged: bool,
    /// Why it is privileged (empty: it is not).
    pub reasons: Vec<String>,
    /// Why it could not be examined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl BindAccountReport {
    /// The warning `check` prints, if any.
    pub fn warning(&self) -> Option<String> {
        if self.privileged {
            Some(format!(
                "the bind identity is privileged ({}): the agent needs only Read/Write Property on the profile attributes — bind as a least-privilege service account (docs/least-privilege.md)",
                self.reasons.join(", ")
            ))
        } else {
            self.error.as_ref().map(|e| {
                format!("cannot tell whether the bind identity is privileged: {e} (docs/least-privilege.md)")
            })
        }
    }
}

/// Find the bind account and decide whether it is privileged.
pub async fn examine(conn: &AdConnection) -> BindAccountReport {
    match find_and_read(conn).await {
        Ok(Some((dn, reasons))) => BindAccountReport {
            dn: Some(dn),
            privileged: !reasons.is_empty(),
            reasons,
            error: None,
        },
        Ok(None) => BindAccountReport {
            error: Some(format!(
                "no account {} found below {}",
                conn.bind_identity(),
                domain_root(conn)
            )),
            ..BindAccountReport::default()
        },
        Err(e) => BindAccountReport {
            error: Some(e.to_string()),
            ..BindAccountReport::default()
        },
    }
}

async fn find_and_read(conn: &AdConnection) -> Result<Option<(String, Vec<String>)>, AdError> {
    let Some(account) = bind_account(conn, &["tokenGroups", "adminCount", "objectSid"]).await?
    else {
        return Ok(None);
    };
    let bytes = |v: &AttrValue| match v {
        AttrValue::Bytes(b) => Some(b.clone()),
        AttrValue::Text(_) => None,
    };
    let groups: Vec<Vec<u8>> = account
        .attributes
        .get("tokenGroups")
        .iter()
        .filter_map(bytes)
        .collect();
    let sid = account.attributes.get("objectSid").first().and_then(bytes);
    let admin_count = account
        .attributes
        .get("adminCount")
        .first()
        .and_then(|v| v.as_text().map(str::to_string));
    let groups: Vec<&[u8]> = groups.iter().map(Vec::as_slice).collect();
    let reasons = privileged_reasons(sid.as_deref(), &groups, admin_count.as_deref());
    Ok(Some((account.dn, reasons)))
}
