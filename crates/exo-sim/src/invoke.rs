//! `POST /adminapi/beta/{tenant}/InvokeCommand`: Get-Mailbox, Set-Mailbox,
//! Get-DistributionGroup, Get-MailContact and Get-DistributionGroupMember.
//!
//! This file reads the request, holds what the cmdlets share (parameter lookup and checks,
//! `-Identity`, `-Filter`, `-RecipientTypeDetails` and `$select`, the errors of a parameter's
//! value, multi-valued changes) and writes the result envelope; each cmdlet is in its own file
//! (`invoke/get_mailbox.rs`, `invoke/set_mailbox.rs`, `invoke/get_recipients.rs` for groups
//! and contacts, `invoke/get_distribution_group_member.rs`), the paging every listing shares in
//! `invoke/paging.rs`, the rules of an address list in `invoke/addresses.rs`.

use std::fmt::Write as _;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::errors::InvokeError;
use crate::opath;
use crate::routing::Route;
use crate::state::SimState;

mod addresses;

pub(crate) use addresses::valid_smtp;
mod get_distribution_group_member;
mod get_mailbox;
mod get_recipients;
mod paging;
mod set_mailbox;

use get_distribution_group_member::get_distribution_group_member;
use get_mailbox::get_mailbox;
use get_recipients::{get_distribution_group, get_mail_contact};
use set_mailbox::set_mailbox;

/// The Content-Type the service answers with (fixture A2).
pub const ODATA_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// The warning that comes with a truncated result (fixture A4).
pub const MORE_RESULTS_WARNING: &str = "There are more results available than are currently displayed. To view them, increase the value for the ResultSize parameter.";

/// Get-Mailbox's default ResultSize (Microsoft's Get-Mailbox documentation).
pub const DEFAULT_RESULT_SIZE: u64 = 1000;

/// Skiptokens expire after this many simulated seconds (fixture C3: 00:30:00).
pub const SKIPTOKEN_LIFETIME_SECS: i64 = 30 * 60;

/// What a request needs from its surroundings.
pub struct InvokeContext<'a> {
    pub state: &'a SimState,
    /// `http://host:port` as the client addressed us (for @odata.context and nextLink).
    pub base: &'a str,
    pub tenant: &'a str,
    pub tenant_domain: &'a str,
    /// The page size asked for with `Prefer: odata.maxpagesize=N`, already capped.
    pub page_size: usize,
    pub skiptoken: Option<&'a str>,
    /// `$select` query option.
    pub select: Option<&'a str>,
    /// Fault injection: emit an unusable skiptoken.
    pub break_next_link: bool,
    /// Where the request's `X-AnchorMailbox` routes it (see `routing`).
    pub route: Route,
    /// Fault injection: `@adminapi.errors` to report in a successful page.
    pub admin_api_errors: Option<&'a [String]>,
    /// Name of the "server" in not-found messages.
    pub server: &'a str,
}

/// A successful InvokeCommand result body.
pub struct InvokeOk {
    pub body: String,
}

/// Runs one InvokeCommand request body.
pub fn invoke(ctx: &InvokeContext<'_>, body: &[u8]) -> Result<InvokeOk, InvokeError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| InvokeError::BadBody(format!("not JSON ({e})")))?;
    let input = v
        .get("CmdletInput")
        .and_then(Value::as_object)
        .ok_or_else(|| InvokeError::BadBody("no CmdletInput object".into()))?;
    let name = input
        .get("CmdletName")
        .and_then(Value::as_str)
        .ok_or_else(|| InvokeError::BadBody("no CmdletName string".into()))?;
    let empty = Map::new();
    let params = match input.get("Parameters") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(p)) => p,
        Some(_) => return Err(InvokeError::BadBody("Parameters is not an object".into())),
    };
    let fingerprint = {
        let mut h = Sha256::new();
        h.update(name.to_ascii_lowercase().as_bytes());
        h.update(Value::Object(params.clone()).to_string().as_bytes());
        let d = h.finalize();
        u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    };
    match name.to_ascii_lowercase().as_str() {
        "get-mailbox" => get_mailbox(ctx, params, fingerprint),
        "set-mailbox" => set_mailbox(ctx, params),
        "get-distributiongroup" => get_distribution_group(ctx, params, fingerprint),
        "get-mailcontact" => get_mail_contact(ctx, params, fingerprint),
        "get-distributiongroupmember" => get_distribution_group_member(ctx, params, fingerprint),
        _ => Err(InvokeError::UnknownCmdlet(name.to_string())),
    }
}

fn param<'a>(params: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

const COMMON_PARAMETERS: &[&str] = &[
    "ErrorAction",
    "WarningAction",
    "Verbose",
    "Debug",
    "Confirm",
    "WhatIf",
    "InformationAction",
];

fn check_known(params: &Map<String, Value>, known: &[&str]) -> Result<(), InvokeError> {
    let unknown: Vec<&str> = params
        .keys()
        .filter(|k| {
            !known.iter().any(|n| n.eq_ignore_ascii_case(k))
                && !COMMON_PARAMETERS.iter().any(|n| n.eq_ignore_ascii_case(k))
        })
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(InvokeError::ParameterSet {
            detail: format!("Invalid cmdlet parameters specified. {}", unknown.join(",")),
        })
    }
}

/// `-Identity`, when given: a string (else C1's transformation error naming `id_type`), never
/// together with `-Filter` (another parameter set).
fn identity_param(
    params: &Map<String, Value>,
    id_type: &str,
) -> Result<Option<String>, InvokeError> {
    let Some(id) = param(params, "Identity") else {
        return Ok(None);
    };
    if param(params, "Filter").is_some() {
        return Err(InvokeError::ParameterSet {
            detail: "Identity and Filter belong to different parameter sets.".into(),
        });
    }
    match id {
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(transformation(
            "Identity",
            other,
            &format!("Microsoft.Exchange.Configuration.Tasks.{id_type}"),
            "Identity must be a string.",
        )),
    }
}

/// Several objects answer to one `-Identity` (modelled: no capture).
fn ambiguous(id: &str) -> InvokeError {
    InvokeError::Cmdlet {
        error_id: "Ex0F9BBE",
        exception: "Microsoft.Exchange.Configuration.Tasks.ManagementObjectAmbiguousException",
        message: format!(
            "The operation couldn't be performed because '{id}' matches multiple entries."
        ),
    }
}

/// `-Filter`, parsed for the properties of one recipient family.
fn filter_param(
    params: &Map<String, Value>,
    family: opath::Family,
) -> Result<Option<opath::Filter>, InvokeError> {
    match param(params, "Filter") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(f)) => {
            opath::parse_for(f, family)
                .map(Some)
                .map_err(|e| InvokeError::BadFilter {
                    filter: f.clone(),
                    message: e.message.clone(),
                    position: e.position,
                })
        }
        Some(other) => Err(transformation(
            "Filter",
            other,
            "System.String",
            "Filter must be a string.",
        )),
    }
}

/// `-RecipientTypeDetails`: one value, a list, or a comma-separated string of the cmdlet's
/// types (`from_details`); anything else names the accepted ones (`accepted`).
fn recipient_types<T>(
    v: &Value,
    from_details: impl Fn(&str) -> Option<T>,
    accepted: &str,
) -> Result<Vec<T>, InvokeError> {
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
                    .map(|p| from_details(p.trim()))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| {
                transformation(
                    "RecipientTypeDetails",
                    it,
                    "Microsoft.Exchange.Data.Directory.Recipient.RecipientTypeDetails[]",
                    &format!(
                        "Specify one of the following enumerator names and try again: {accepted}"
                    ),
                )
            })?;
        kinds.extend(kind);
    }
    Ok(kinds)
}

/// Property names to keep: the `$select` query option (SOURCES.md §E; the Get- cmdlets have
/// no `Properties` parameter, that is Get-EXOMailbox's), plus the identity properties, each
/// spelled as `canonical` names it for the cmdlet's records. `None` = every property. A name
/// the records do not have is refused.
fn selection(
    select: Option<&str>,
    canonical: impl Fn(&str) -> Option<&'static str>,
    what: &str,
) -> Result<Option<Vec<&'static str>>, InvokeError> {
    let names: Vec<&str> = select
        .map(|s| s.split(',').map(str::trim).collect())
        .unwrap_or_default();
    let names: Vec<&str> = names
        .into_iter()
        .filter(|n| !n.is_empty() && *n != "*")
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    let mut out: Vec<&'static str> = vec!["Identity", "Guid", "ExternalDirectoryObjectId"];
    for n in names {
        let c = canonical(n).ok_or_else(|| InvokeError::ParameterSet {
            detail: format!("The property '{n}' isn't a property of a {what}."),
        })?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(Some(out))
}

fn transformation(parameter: &str, value: &Value, target: &str, reason: &str) -> InvokeError {
    InvokeError::Transformation {
        parameter: parameter.to_string(),
        value: match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
        target_type: target.to_string(),
        reason: reason.to_string(),
    }
}

fn envelope_start(ctx: &InvokeContext<'_>, out: &mut String) {
    let _ = write!(
        out,
        "{{\"@odata.context\":{}",
        crate::mailbox::json_str(&format!(
            "{}/adminapi/beta/{}/$metadata#Collection(Exchange.GenericHashTable)",
            ctx.base, ctx.tenant
        ))
    );
}

fn envelope_warnings(out: &mut String, warnings: &[&str]) {
    let _ = write!(
        out,
        ",\"adminapi.warnings@odata.type\":\"#Collection(String)\",\"@adminapi.warnings\":{}",
        serde_json::to_string(warnings).unwrap_or_else(|_| "[]".into())
    );
}

/// `@adminapi.errors` in a successful page (fault injection): the module reports each entry
/// as a cmdlet error and marks the run failed (PROTOCOL.md §4). The pair is shaped like the
/// warnings pair; no capture of it exists.
fn envelope_errors(out: &mut String, ctx: &InvokeContext<'_>) {
    if let Some(errors) = ctx.admin_api_errors {
        let _ = write!(
            out,
            ",\"adminapi.errors@odata.type\":\"#Collection(String)\",\"@adminapi.errors\":{}",
            serde_json::to_string(errors).unwrap_or_else(|_| "[]".into())
        );
    }
}

fn cmdlet_error(error_id: &'static str, exception: &'static str, message: String) -> InvokeError {
    InvokeError::Cmdlet {
        error_id,
        exception,
        message,
    }
}

fn string_list(name: &str, v: &Value) -> Result<Vec<String>, InvokeError> {
    match v {
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str().map(str::to_string).ok_or_else(|| {
                    transformation(
                        name,
                        v,
                        "Microsoft.Exchange.Data.MultiValuedProperty`1[System.String]",
                        "Each value must be a string.",
                    )
                })
            })
            .collect(),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Null => Ok(Vec::new()),
        other => Err(transformation(
            name,
            other,
            "Microsoft.Exchange.Data.MultiValuedProperty`1[System.String]",
            "Expected a list of strings.",
        )),
    }
}

/// A multi-valued change: the whole list, or Add/Remove.
enum MultiChange {
    Replace(Vec<String>),
    Modify {
        add: Vec<String>,
        remove: Vec<String>,
    },
}

fn multi_change(name: &str, v: &Value) -> Result<MultiChange, InvokeError> {
    match v {
        Value::Object(o) => {
            let mut add = Vec::new();
            let mut remove = Vec::new();
            for (k, x) in o {
                if k.starts_with('@') {
                    continue;
                }
                match k.to_ascii_lowercase().as_str() {
                    "add" | "+" => add = string_list(name, x)?,
                    "remove" | "-" => remove = string_list(name, x)?,
                    _ => {
                        return Err(transformation(
                            name,
                            v,
                            "Microsoft.Exchange.Data.MultiValuedProperty`1[System.String]",
                            &format!("The hashtable key '{k}' is not valid; use Add or Remove."),
                        ));
                    }
                }
            }
            Ok(MultiChange::Modify { add, remove })
        }
        other => Ok(MultiChange::Replace(string_list(name, other)?)),
    }
}
