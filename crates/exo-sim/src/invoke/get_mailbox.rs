//! Get-Mailbox: identity or OPATH filter, RecipientTypeDetails, ResultSize and `$select`,
//! paged with skiptokens bound to the back-end server the routing anchor resolves to.

use serde_json::{Map, Value};

use crate::errors::InvokeError;
use crate::mailbox::{RecipientKind, SimMailbox, canonical_property};
use crate::opath::Family;
use crate::state::StateError;

use super::paging::{self, Page, parse_result_size};
use super::{
    InvokeContext, InvokeOk, ambiguous, check_known, filter_param, identity_param, param,
    recipient_types, selection,
};

pub(super) fn get_mailbox(
    ctx: &InvokeContext<'_>,
    params: &Map<String, Value>,
    fingerprint: u64,
) -> Result<InvokeOk, InvokeError> {
    check_known(
        params,
        &["Identity", "Filter", "ResultSize", "RecipientTypeDetails"],
    )?;
    let select = selection(ctx.select, canonical_property, "mailbox")?;
    let select_ref = select.as_deref();
    if let Some(id) = identity_param(params, "MailboxIdParameter")? {
        let guid = ctx.state.resolve(&id).map_err(|e| match e {
            StateError::Ambiguous(_) => ambiguous(&id),
            _ => InvokeError::NotFound(id.clone()),
        })?;
        let record = ctx.state.mailbox(&guid.to_string()).map(|m| {
            let mut r = String::with_capacity(4096);
            m.render_into(&mut r, select_ref, ctx.tenant_domain);
            r
        });
        return Ok(paging::single(ctx, record.as_deref()));
    }
    let filter = filter_param(params, Family::Mailbox)?;
    let types: Option<Vec<RecipientKind>> = match param(params, "RecipientTypeDetails") {
        None | Some(Value::Null) => None,
        Some(v) => Some(recipient_types(
            v,
            RecipientKind::from_details,
            "UserMailbox, SharedMailbox, RoomMailbox, EquipmentMailbox",
        )?),
    };
    let result_size = parse_result_size(param(params, "ResultSize"))?;
    let mut page = Page::start(ctx, fingerprint, result_size)?;
    let type_ok = |m: &SimMailbox| types.as_ref().is_none_or(|t| t.contains(&m.kind));
    ctx.state.scan(page.after(), filter.as_ref(), |m| {
        if !type_ok(m) {
            return true;
        }
        page.push(m.guid, |out| {
            m.render_into(out, select_ref, ctx.tenant_domain)
        })
    });
    Ok(page.finish())
}
