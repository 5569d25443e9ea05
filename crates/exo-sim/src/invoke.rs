//! `POST /adminapi/beta/{tenant}/InvokeCommand`: Get-Mailbox and Set-Mailbox.
//!
//! This file reads the request, holds what both cmdlets share (parameter lookup and checks,
//! the errors of a parameter's value, multi-valued changes) and writes the result envelope;
//! each cmdlet is in its own file (`invoke/get_mailbox.rs`, `invoke/set_mailbox.rs`), the
//! rules of an address list in `invoke/addresses.rs`.

use std::fmt::Write as _;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::errors::InvokeError;
use crate::routing::Route;
use crate::state::SimState;

mod addresses;
mod get_mailbox;
mod set_mailbox;

use get_mailbox::get_mailbox;
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
