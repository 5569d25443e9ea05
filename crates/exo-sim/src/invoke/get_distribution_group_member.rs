//! Get-DistributionGroupMember: the members of one distribution group or mail-enabled
//! security group, nested groups as group records (not expanded), in pages of at most 1,000
//! followed by `@odata.nextLink` with the same body (Microsoft's "DistributionGroupMember
//! endpoint in the Exchange Online Admin API"; the cmdlet's documentation).
//!
//! Parameters: `Identity` (mandatory: the group) and `ResultSize` (default 1000). The real
//! cmdlet's on-premises parameters (`DomainController`, `Credential`,
//! `ReadFromDomainController`, `IgnoreDefaultScope`) are refused as unknown. A mailbox or a
//! contact is not a group: not found, as the service answers for any other identity.

use serde_json::{Map, Value};

use crate::errors::InvokeError;
use crate::recipient::member_property;
use crate::state::StateError;

use super::paging::{Page, parse_result_size};
use super::{InvokeContext, InvokeOk, ambiguous, check_known, identity_param, param, selection};

pub(super) fn get_distribution_group_member(
    ctx: &InvokeContext<'_>,
    params: &Map<String, Value>,
    fingerprint: u64,
) -> Result<InvokeOk, InvokeError> {
    check_known(params, &["Identity", "ResultSize"])?;
    let select = selection(ctx.select, member_property, "recipient")?;
    let select_ref = select.as_deref();
    let Some(id) = identity_param(params, "DistributionGroupMemberIdParameter")? else {
        // A mandatory parameter missing: PowerShell's binding error, in C2's shape
        // (modelled: no capture shows it over the admin API).
        return Err(InvokeError::ParameterSet {
            detail: "Cannot process command because of one or more missing mandatory parameters: Identity.".into(),
        });
    };
    let group = ctx.state.recipient(&id, true).map_err(|e| match e {
        StateError::Ambiguous(_) => ambiguous(&id),
        _ => InvokeError::NotFound(id.clone()),
    })?;
    let result_size = parse_result_size(param(params, "ResultSize"))?;
    let mut page = Page::start(ctx, fingerprint, result_size)?;
    ctx.state.scan_members(group.guid, page.after(), |m| {
        page.push(m.guid(), |out| m.render_into(out, select_ref))
    });
    Ok(page.finish())
}
