//! Get-DistributionGroup and Get-MailContact: the same listing as Get-Mailbox (identity or
//! OPATH filter, RecipientTypeDetails, ResultSize, `$select`, pages bound to their request
//! body and back-end server) over the emulator's groups or its mail contacts.
//!
//! Parameters: a subset of the real cmdlets' (Microsoft's Get-DistributionGroup and
//! Get-MailContact documentation): `Identity`, `Filter`, `ResultSize`,
//! `RecipientTypeDetails`. Their other real parameters (`Anr`, `ManagedBy`,
//! `OrganizationalUnit`, `SortBy`, `Include…WithDisplayNames`) are refused as unknown, like
//! anything else, so a client cannot come to rely on one the emulator does not model.

use serde_json::{Map, Value};

use crate::errors::InvokeError;
use crate::opath::Family;
use crate::recipient::{
    CONTACT_TYPE_DETAILS, GROUP_TYPE_DETAILS, contact_property, group_property,
};
use crate::state::StateError;

use super::paging::{self, Page, parse_result_size};
use super::{
    InvokeContext, InvokeOk, ambiguous, check_known, filter_param, identity_param, param,
    recipient_types, selection,
};

pub(super) fn get_distribution_group(
    ctx: &InvokeContext<'_>,
    params: &Map<String, Value>,
    fingerprint: u64,
) -> Result<InvokeOk, InvokeError> {
    list(ctx, params, fingerprint, Family::Group)
}

pub(super) fn get_mail_contact(
    ctx: &InvokeContext<'_>,
    params: &Map<String, Value>,
    fingerprint: u64,
) -> Result<InvokeOk, InvokeError> {
    list(ctx, params, fingerprint, Family::Contact)
}

fn list(
    ctx: &InvokeContext<'_>,
    params: &Map<String, Value>,
    fingerprint: u64,
    family: Family,
) -> Result<InvokeOk, InvokeError> {
    let groups = family == Family::Group;
    check_known(
        params,
        &["Identity", "Filter", "ResultSize", "RecipientTypeDetails"],
    )?;
    let (canonical, what, id_type, types): (fn(&str) -> Option<&'static str>, _, _, _) = if groups {
        (
            group_property,
            "distribution group",
            "DistributionGroupIdParameter",
            GROUP_TYPE_DETAILS,
        )
    } else {
        (
            contact_property,
            "mail contact",
            "MailContactIdParameter",
            CONTACT_TYPE_DETAILS,
        )
    };
    let select = selection(ctx.select, canonical, what)?;
    let select_ref = select.as_deref();
    if let Some(id) = identity_param(params, id_type)? {
        let r = ctx.state.recipient(&id, groups).map_err(|e| match e {
            StateError::Ambiguous(_) => ambiguous(&id),
            _ => InvokeError::NotFound(id.clone()),
        })?;
        let mut record = String::with_capacity(2048);
        r.render_into(&mut record, select_ref, ctx.tenant_domain);
        return Ok(paging::single(ctx, Some(&record)));
    }
    let filter = filter_param(params, family)?;
    let wanted: Option<Vec<&'static str>> = match param(params, "RecipientTypeDetails") {
        None | Some(Value::Null) => None,
        Some(v) => Some(recipient_types(
            v,
            |s| types.iter().find(|t| t.eq_ignore_ascii_case(s)).copied(),
            &types.join(", "),
        )?),
    };
    let result_size = parse_result_size(param(params, "ResultSize"))?;
    let mut page = Page::start(ctx, fingerprint, result_size)?;
    ctx.state
        .scan_recipients(groups, page.after(), filter.as_ref(), |r| {
            if wanted
                .as_ref()
                .is_some_and(|w| !w.contains(&r.type_details()))
            {
                return true;
            }
            page.push(r.guid, |out| {
                r.render_into(out, select_ref, ctx.tenant_domain)
            })
        });
    Ok(page.finish())
}
