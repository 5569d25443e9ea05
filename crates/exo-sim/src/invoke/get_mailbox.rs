//! Get-Mailbox: identity or OPATH filter, RecipientTypeDetails, ResultSize and `$select`,
//! paged with skiptokens bound to the back-end server the routing anchor resolves to.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::errors::InvokeError;
use crate::mailbox::{RecipientKind, SimMailbox, canonical_property};
use crate::opath;
use crate::routing::Route;
use crate::skiptoken::{self, PagePosition};
use crate::state::StateError;

use super::{
    DEFAULT_RESULT_SIZE, InvokeContext, InvokeOk, MORE_RESULTS_WARNING, SKIPTOKEN_LIFETIME_SECS,
    check_known, envelope_errors, envelope_start, envelope_warnings, param, transformation,
};

/// Property names to keep: the `$select` query option (SOURCES.md §E; Get-Mailbox has no
/// `Properties` parameter, that is Get-EXOMailbox), plus the identity properties. `None` =
/// every property.
fn selection(select: Option<&str>) -> Result<Option<Vec<&'static str>>, InvokeError> {
    let mut names: Vec<String> = Vec::new();
    if let Some(s) = select {
        names.extend(s.split(',').map(|x| x.trim().to_string()));
    }
    names.retain(|n| !n.is_empty() && n != "*");
    if names.is_empty() {
        return Ok(None);
    }
    let mut out: Vec<&'static str> = vec!["Identity", "Guid", "ExternalDirectoryObjectId"];
    for n in &names {
        let c = canonical_property(n).ok_or_else(|| InvokeError::ParameterSet {
            detail: format!("The property '{n}' isn't a property of a mailbox."),
        })?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(Some(out))
}

fn parse_result_size(v: Option<&Value>) -> Result<Option<u64>, InvokeError> {
    match v {
        None | Some(Value::Null) => Ok(Some(DEFAULT_RESULT_SIZE)),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(n) if n > 0 => Ok(Some(n)),
            _ => Err(transformation(
                "ResultSize",
                &Value::Number(n.clone()),
                "Microsoft.Exchange.Data.Unlimited`1[System.UInt32]",
                "The value must be a positive whole number or Unlimited.",
            )),
        },
        Some(Value::String(s)) if s.eq_ignore_ascii_case("unlimited") => Ok(None),
        Some(Value::String(s)) => match s.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(transformation(
                "ResultSize",
                &Value::String(s.clone()),
                "Microsoft.Exchange.Data.Unlimited`1[System.UInt32]",
                "The value must be a positive whole number or Unlimited.",
            )),
        },
        Some(other) => Err(transformation(
            "ResultSize",
            other,
            "Microsoft.Exchange.Data.Unlimited`1[System.UInt32]",
            "The value must be a positive whole number or Unlimited.",
        )),
    }
}

pub(super) fn get_mailbox(
    ctx: &InvokeContext<'_>,
    params: &Map<String, Value>,
    fingerprint: u64,
) -> Result<InvokeOk, InvokeError> {
    check_known(
        params,
        &["Identity", "Filter", "ResultSize", "RecipientTypeDetails"],
    )?;
    let select = selection(ctx.select)?;
    let select_ref = select.as_deref();
    let identity = param(params, "Identity");
    let filter_param = param(params, "Filter");
    if let (Some(_), Some(_)) = (identity, filter_param) {
        return Err(InvokeError::ParameterSet {
            detail: "Identity and Filter belong to different parameter sets.".into(),
        });
    }
    let mut out = String::with_capacity(4096);
    if let Some(id) = identity {
        let id = match id {
            Value::String(s) => s.clone(),
            other => {
                return Err(transformation(
                    "Identity",
                    other,
                    "Microsoft.Exchange.Configuration.Tasks.MailboxIdParameter",
                    "Identity must be a string.",
                ));
            }
        };
        let guid = ctx.state.resolve(&id).map_err(|e| match e {
            StateError::Ambiguous(_) => InvokeError::Cmdlet {
                error_id: "Ex0F9BBE",
                exception: "Microsoft.Exchange.Configuration.Tasks.ManagementObjectAmbiguousException",
                message: format!(
                    "The operation couldn't be performed because '{id}' matches multiple entries."
                ),
            },
            _ => InvokeError::NotFound(id.clone()),
        })?;
        envelope_start(ctx, &mut out);
        envelope_warnings(&mut out, &[]);
        envelope_errors(&mut out, ctx);
        out.push_str(",\"value\":[");
        if let Some(m) = ctx.state.mailbox(&guid.to_string()) {
            m.render_into(&mut out, select_ref, ctx.tenant_domain);
        }
        out.push_str("]}");
        return Ok(InvokeOk { body: out });
    }
    let filter = match filter_param {
        None | Some(Value::Null) => None,
        Some(Value::String(f)) => Some(opath::parse(f).map_err(|e| InvokeError::BadFilter {
            filter: f.clone(),
            message: e.message.clone(),
            position: e.position,
        })?),
        Some(other) => {
            return Err(transformation(
                "Filter",
                other,
                "System.String",
                "Filter must be a string.",
            ));
        }
    };
    let types: Option<Vec<RecipientKind>> = match param(params, "RecipientTypeDetails") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let items: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            let mut kinds = Vec::new();
            for it in items {
                let kind = it
                    .as_str()
                    .and_then(|s| {
                        s.split(',')
                            .map(|p| RecipientKind::from_details(p.trim()))
                            .collect::<Option<Vec<_>>>()
                    })
                    .ok_or_else(|| {
                        transformation(
                            "RecipientTypeDetails",
                            it,
                            "Microsoft.Exchange.Data.Directory.Recipient.RecipientTypeDetails[]",
                            "Specify one of the following enumerator names and try again: UserMailbox, SharedMailbox, RoomMailbox, EquipmentMailbox",
                        )
                    })?;
                kinds.extend(kind);
            }
            Some(kinds)
        }
    };
    let result_size = parse_result_size(param(params, "ResultSize"))?;
    let now = ctx.state.now().as_second();
    let position = match ctx.skiptoken {
        None => None,
        Some(t) => {
            let p = skiptoken::decode(&ctx.state.inner.secret, t)
                .ok_or(InvokeError::ExpiredPagination)?;
            if p.fingerprint != fingerprint || now - p.issued > SKIPTOKEN_LIFETIME_SECS {
                return Err(InvokeError::ExpiredPagination);
            }
            // The page was produced on one back-end server; only that server can continue
            // it. A follow-up whose anchor resolves elsewhere, or nowhere (the front door
            // then picks any server), fails as the real service does (capture C3).
            if ctx.route != Route::Mailbox(usize::from(p.backend)) {
                return Err(InvokeError::ExpiredPagination);
            }
            Some(p)
        }
    };
    let already = position.map(|p| p.returned).unwrap_or(0);
    let remaining = result_size.map(|r| r.saturating_sub(already));
    let page_cap = remaining
        .map(|r| r.min(ctx.page_size as u64))
        .unwrap_or(ctx.page_size as u64) as usize;
    let mut values = String::with_capacity(4096);
    let mut taken = 0usize;
    let mut last = position.map(|p| p.last);
    let mut more = false;
    let type_ok = |m: &SimMailbox| types.as_ref().is_none_or(|t| t.contains(&m.kind));
    ctx.state.scan(last, filter.as_ref(), |m| {
        if !type_ok(m) {
            return true;
        }
        if taken == page_cap {
            more = true;
            return false;
        }
        if taken > 0 {
            values.push(',');
        }
        m.render_into(&mut values, select_ref, ctx.tenant_domain);
        taken += 1;
        last = Some(m.guid);
        true
    });
    let returned = already + taken as u64;
    let result_size_reached = result_size.is_some_and(|r| returned >= r);
    let next_link = if more && !result_size_reached {
        let token = match (ctx.break_next_link, last) {
            (false, Some(last)) => skiptoken::encode(
                &ctx.state.inner.secret,
                &PagePosition {
                    last,
                    returned,
                    issued: now,
                    fingerprint,
                    backend: ctx.state.serving_backend(ctx.route),
                },
            ),
            _ => "AD-broken-by-fault-injection".to_string(),
        };
        // The query options of the first request go with the link, as OData next links
        // carry them (modelled: capture A4's link had none to carry).
        let select = ctx
            .select
            .map(|s| {
                let enc: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
                format!("&%24select={enc}")
            })
            .unwrap_or_default();
        Some(format!(
            "{}/adminapi/beta/{}/InvokeCommand?%24skiptoken={token}{select}",
            ctx.base, ctx.tenant
        ))
    } else {
        None
    };
    envelope_start(ctx, &mut out);
    if let Some(link) = &next_link {
        let _ = write!(
            out,
            ",\"@odata.nextLink\":{}",
            crate::mailbox::json_str(link)
        );
    }
    if more {
        envelope_warnings(&mut out, &[MORE_RESULTS_WARNING]);
    } else {
        envelope_warnings(&mut out, &[]);
    }
    envelope_errors(&mut out, ctx);
    out.push_str(",\"value\":[");
    out.push_str(&values);
    out.push_str("]}");
    Ok(InvokeOk { body: out })
}
