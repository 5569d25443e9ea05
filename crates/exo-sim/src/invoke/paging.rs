//! What every listing cmdlet shares: `ResultSize`, the `$skiptoken` that continues a listing
//! (bound to the request body and to the back-end server that produced the page), the page's
//! records and the envelope with its `@odata.nextLink` and warnings. Get-Mailbox,
//! Get-DistributionGroup, Get-MailContact and Get-DistributionGroupMember each scan their own
//! records in Guid order and hand each one to [`Page::push`].

use std::fmt::Write as _;

use serde_json::Value;
use uuid::Uuid;

use crate::errors::InvokeError;
use crate::routing::Route;
use crate::skiptoken::{self, PagePosition};

use super::{
    DEFAULT_RESULT_SIZE, InvokeContext, InvokeOk, MORE_RESULTS_WARNING, SKIPTOKEN_LIFETIME_SECS,
    envelope_errors, envelope_start, envelope_warnings, transformation,
};

/// `-ResultSize`: a positive number or `Unlimited` (`None`); default 1000 (the cmdlets'
/// documentation). Anything else is capture C1's ParameterTransformationException.
pub(super) fn parse_result_size(v: Option<&Value>) -> Result<Option<u64>, InvokeError> {
    let refuse = |v: &Value| {
        transformation(
            "ResultSize",
            v,
            "Microsoft.Exchange.Data.Unlimited`1[System.UInt32]",
            "The value must be a positive whole number or Unlimited.",
        )
    };
    match v {
        None | Some(Value::Null) => Ok(Some(DEFAULT_RESULT_SIZE)),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(n) if n > 0 => Ok(Some(n)),
            _ => Err(refuse(&Value::Number(n.clone()))),
        },
        Some(Value::String(s)) if s.eq_ignore_ascii_case("unlimited") => Ok(None),
        Some(Value::String(s)) => match s.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(refuse(&Value::String(s.clone()))),
        },
        Some(other) => Err(refuse(other)),
    }
}

/// One result page being built.
pub(super) struct Page<'c, 'a> {
    ctx: &'c InvokeContext<'a>,
    fingerprint: u64,
    result_size: Option<u64>,
    already: u64,
    cap: usize,
    now: i64,
    values: String,
    taken: usize,
    last: Option<Uuid>,
    more: bool,
}

impl<'c, 'a> Page<'c, 'a> {
    /// Starts a page: the first of a listing, or the one a skiptoken continues. A token that
    /// was tampered with, is older than 30 simulated minutes, belongs to another request body
    /// or is followed through an anchor that does not resolve to the server that produced it
    /// is refused with capture C3.
    pub(super) fn start(
        ctx: &'c InvokeContext<'a>,
        fingerprint: u64,
        result_size: Option<u64>,
    ) -> Result<Self, InvokeError> {
        let now = ctx.state.now().as_second();
        let position = match ctx.skiptoken {
            None => None,
            Some(t) => {
                let p = skiptoken::decode(&ctx.state.inner.secret, t)
                    .ok_or(InvokeError::ExpiredPagination)?;
                if p.fingerprint != fingerprint || now - p.issued > SKIPTOKEN_LIFETIME_SECS {
                    return Err(InvokeError::ExpiredPagination);
                }
                // The page was produced on one back-end server; only that server can
                // continue it. A follow-up whose anchor resolves elsewhere, or nowhere (the
                // front door then picks any server), fails as the real service does (C3).
                if ctx.route != Route::Mailbox(usize::from(p.backend)) {
                    return Err(InvokeError::ExpiredPagination);
                }
                Some(p)
            }
        };
        let already = position.map(|p| p.returned).unwrap_or(0);
        let remaining = result_size.map(|r| r.saturating_sub(already));
        let cap = remaining
            .map(|r| r.min(ctx.page_size as u64))
            .unwrap_or(ctx.page_size as u64) as usize;
        Ok(Page {
            ctx,
            fingerprint,
            result_size,
            already,
            cap,
            now,
            values: String::with_capacity(4096),
            taken: 0,
            last: position.map(|p| p.last),
            more: false,
        })
    }

    /// The Guid the scan continues after (exclusive), `None` on a first page.
    pub(super) fn after(&self) -> Option<Uuid> {
        self.last
    }

    /// Adds the record `guid` rendered by `render`; false once the page is full (the scan
    /// stops: one more record exists).
    pub(super) fn push(&mut self, guid: Uuid, render: impl FnOnce(&mut String)) -> bool {
        if self.taken == self.cap {
            self.more = true;
            return false;
        }
        if self.taken > 0 {
            self.values.push(',');
        }
        render(&mut self.values);
        self.taken += 1;
        self.last = Some(guid);
        true
    }

    /// The envelope around the page's records, with a nextLink while more records remain
    /// within ResultSize (the client re-POSTs the same body to it).
    pub(super) fn finish(self) -> InvokeOk {
        let ctx = self.ctx;
        let returned = self.already + self.taken as u64;
        let result_size_reached = self.result_size.is_some_and(|r| returned >= r);
        let next_link = if self.more && !result_size_reached {
            let token = match (ctx.break_next_link, self.last) {
                (false, Some(last)) => skiptoken::encode(
                    &ctx.state.inner.secret,
                    &PagePosition {
                        last,
                        returned,
                        issued: self.now,
                        fingerprint: self.fingerprint,
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
        let mut out = String::with_capacity(self.values.len() + 512);
        envelope_start(ctx, &mut out);
        if let Some(link) = &next_link {
            let _ = write!(
                out,
                ",\"@odata.nextLink\":{}",
                crate::mailbox::json_str(link)
            );
        }
        if self.more {
            envelope_warnings(&mut out, &[MORE_RESULTS_WARNING]);
        } else {
            envelope_warnings(&mut out, &[]);
        }
        envelope_errors(&mut out, ctx);
        out.push_str(",\"value\":[");
        out.push_str(&self.values);
        out.push_str("]}");
        InvokeOk { body: out }
    }
}

/// A one-record answer (`-Identity`): the envelope with `record` (or none) and no paging.
pub(super) fn single(ctx: &InvokeContext<'_>, record: Option<&str>) -> InvokeOk {
    let mut out = String::with_capacity(4096);
    envelope_start(ctx, &mut out);
    envelope_warnings(&mut out, &[]);
    envelope_errors(&mut out, ctx);
    out.push_str(",\"value\":[");
    if let Some(r) = record {
        out.push_str(r);
    }
    out.push_str("]}");
    InvokeOk { body: out }
}
