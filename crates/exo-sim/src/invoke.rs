//! `POST /adminapi/beta/{tenant}/InvokeCommand`: Get-Mailbox and Set-Mailbox.

use std::fmt::Write as _;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::errors::InvokeError;
use crate::mailbox::{RecipientKind, SimMailbox, canonical_property};
use crate::opath;
use crate::routing::Route;
use crate::skiptoken::{self, PagePosition};
use crate::state::{SimState, StateError};

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

fn get_mailbox(
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

/// Splits `PREFIX:address` (no prefix = `smtp:`).
fn split_address(a: &str) -> (String, String) {
    match a.split_once(':') {
        Some((p, rest)) if !p.contains('@') && !p.is_empty() => (p.to_string(), rest.to_string()),
        _ => ("smtp".to_string(), a.to_string()),
    }
}

fn valid_smtp(addr: &str) -> bool {
    let mut parts = addr.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !addr
                    .chars()
                    .any(|c| c.is_whitespace() || c == ',' || c == ';')
        }
        _ => false,
    }
}

fn cmdlet_error(error_id: &'static str, exception: &'static str, message: String) -> InvokeError {
    InvokeError::Cmdlet {
        error_id,
        exception,
        message,
    }
}

fn bad_address(addr: &str) -> InvokeError {
    cmdlet_error(
        "Ex9A4F2B",
        "Microsoft.Exchange.Data.DataValidationException",
        format!(
            "The email address \"{addr}\" isn't correct. Please use this format: user name, the @ sign, followed by the domain name. For example, tonysmith@contoso.com or tony.smith@contoso.com."
        ),
    )
}

/// Normalises one address: `SMTP:`/`smtp:` kept as given, no prefix → `smtp:`; other
/// prefixes kept. SMTP addresses are validated.
fn normalise_address(raw: &str) -> Result<String, InvokeError> {
    let raw = raw.trim();
    let (prefix, addr) = split_address(raw);
    if prefix.eq_ignore_ascii_case("smtp") {
        if !valid_smtp(&addr) {
            return Err(bad_address(&addr));
        }
        let p = if prefix == "SMTP" { "SMTP" } else { "smtp" };
        Ok(format!("{p}:{addr}"))
    } else if addr.is_empty() {
        Err(bad_address(raw))
    } else {
        Ok(format!("{prefix}:{addr}"))
    }
}

fn same_address(a: &str, b: &str) -> bool {
    let (pa, xa) = split_address(a);
    let (pb, xb) = split_address(b);
    pa.eq_ignore_ascii_case(&pb) && xa.eq_ignore_ascii_case(&xb)
}

fn is_smtp(a: &str) -> bool {
    split_address(a).0.eq_ignore_ascii_case("smtp")
}

fn demote_primary(list: &mut [String]) {
    for a in list.iter_mut() {
        if let Some(x) = a.strip_prefix("SMTP:") {
            *a = format!("smtp:{x}");
        }
    }
}

/// Makes `addr` (no prefix) the primary SMTP address, adding it when missing.
fn make_primary(list: &mut Vec<String>, addr: &str) {
    demote_primary(list);
    let probe = format!("smtp:{addr}");
    if let Some(a) = list.iter_mut().find(|a| same_address(a, &probe)) {
        let (_, x) = split_address(a);
        *a = format!("SMTP:{x}");
    } else {
        list.push(format!("SMTP:{addr}"));
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

fn apply_email_addresses(m: &mut SimMailbox, change: MultiChange) -> Result<(), InvokeError> {
    match change {
        MultiChange::Replace(list) => {
            let mut out: Vec<String> = Vec::new();
            for raw in list {
                let a = normalise_address(&raw)?;
                if out.iter().any(|o| same_address(o, &a)) {
                    return Err(cmdlet_error(
                        "Ex2A0D4C",
                        "Microsoft.Exchange.Data.DataValidationException",
                        format!("The email address \"{a}\" is listed more than once."),
                    ));
                }
                out.push(a);
            }
            let primaries = out.iter().filter(|a| a.starts_with("SMTP:")).count();
            if primaries > 1 {
                return Err(cmdlet_error(
                    "Ex7DA2E6",
                    "Microsoft.Exchange.Data.DataValidationException",
                    "There are multiple primary SMTP addresses. Please ensure there is only one primary address for each address type.".into(),
                ));
            }
            if primaries == 0 {
                match out.iter_mut().find(|a| is_smtp(a)) {
                    Some(first) => {
                        let (_, x) = split_address(first);
                        *first = format!("SMTP:{x}");
                    }
                    None => return Err(no_primary()),
                }
            }
            m.email_addresses = out;
        }
        MultiChange::Modify { add, remove } => {
            let mut list = m.email_addresses.clone();
            for raw in remove {
                let a = normalise_address(&raw)?;
                if list
                    .iter()
                    .any(|o| o.starts_with("SMTP:") && same_address(o, &a))
                {
                    return Err(cmdlet_error(
                        "ExC7E3A1",
                        "Microsoft.Exchange.Data.DataValidationException",
                        format!(
                            "The primary SMTP address \"{}\" can't be removed. Set another primary address first.",
                            split_address(&a).1
                        ),
                    ));
                }
                list.retain(|o| !same_address(o, &a));
            }
            for raw in add {
                let a = normalise_address(&raw)?;
                if let Some(x) = a.strip_prefix("SMTP:") {
                    make_primary(&mut list, x);
                } else if !list.iter().any(|o| same_address(o, &a)) {
                    list.push(a);
                }
            }
            m.email_addresses = list;
        }
    }
    if m.primary_smtp_address().is_empty() {
        return Err(no_primary());
    }
    m.windows_email_address = m.primary_smtp_address().to_string();
    Ok(())
}

fn no_primary() -> InvokeError {
    cmdlet_error(
        "Ex1B1F2C",
        "Microsoft.Exchange.Data.DataValidationException",
        "A primary SMTP address is required. Add an address with the SMTP: prefix.".into(),
    )
}

fn set_mailbox(
    ctx: &InvokeContext<'_>,
    params: &Map<String, Value>,
) -> Result<InvokeOk, InvokeError> {
    let mut known: Vec<String> = [
        "Identity",
        "EmailAddresses",
        "WindowsEmailAddress",
        "HiddenFromAddressListsEnabled",
        "Type",
        "DisplayName",
        "IsExchangeCloudManaged",
        "Force",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    known.extend((1..=15).map(|i| format!("CustomAttribute{i}")));
    known.extend((1..=5).map(|i| format!("ExtensionCustomAttribute{i}")));
    let known_ref: Vec<&str> = known.iter().map(String::as_str).collect();
    check_known(params, &known_ref)?;
    let identity = match param(params, "Identity") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        None | Some(Value::Null) => {
            return Err(InvokeError::ParameterSet {
                detail: "Cannot process command because of one or more missing mandatory parameters: Identity.".into(),
            });
        }
        Some(other) => {
            return Err(transformation(
                "Identity",
                other,
                "Microsoft.Exchange.Configuration.Tasks.MailboxIdParameter",
                "Identity must be a non-empty string.",
            ));
        }
    };
    // Parameters whose source of authority is on-premises AD while the mailbox is not
    // cloud-managed.
    let synced_parameter = params.keys().find(|k| {
        let l = k.to_ascii_lowercase();
        l.starts_with("customattribute")
            || l.starts_with("extensioncustomattribute")
            || matches!(
                l.as_str(),
                "emailaddresses"
                    | "windowsemailaddress"
                    | "hiddenfromaddresslistsenabled"
                    | "displayname"
            )
    });
    let mut cloud_managed_param: Option<bool> = None;
    // Validate and convert every parameter before touching the mailbox.
    type Edit = Box<dyn FnOnce(&mut SimMailbox) -> Result<(), InvokeError>>;
    let mut edits: Vec<Edit> = Vec::new();
    for (k, v) in params {
        let lk = k.to_ascii_lowercase();
        if lk == "identity"
            || lk == "force"
            || COMMON_PARAMETERS.iter().any(|c| c.eq_ignore_ascii_case(k))
        {
            continue;
        }
        if let Some(n) = lk.strip_prefix("extensioncustomattribute") {
            let n: u8 = n.parse().unwrap_or(0);
            let change = multi_change(k, v)?;
            edits.push(Box::new(move |m| {
                let values = match change {
                    MultiChange::Replace(l) => l,
                    MultiChange::Modify { add, remove } => {
                        let mut cur = m.extension_custom_attribute(n).to_vec();
                        cur.retain(|c| !remove.iter().any(|r| r.eq_ignore_ascii_case(c)));
                        for a in add {
                            if !cur.iter().any(|c| c.eq_ignore_ascii_case(&a)) {
                                cur.push(a);
                            }
                        }
                        cur
                    }
                };
                if values.iter().any(|x| x.chars().count() > 2048) {
                    return Err(cmdlet_error(
                        "Ex4C6B7E",
                        "Microsoft.Exchange.Data.DataValidationException",
                        format!("ExtensionCustomAttribute{n}: each value can be at most 2048 characters long."),
                    ));
                }
                m.set_extension_custom_attribute(n, values);
                Ok(())
            }));
            continue;
        }
        if let Some(n) = lk.strip_prefix("customattribute") {
            let n: u8 = n.parse().unwrap_or(0);
            let value = match v {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => {
                    return Err(transformation(
                        k,
                        other,
                        "System.String",
                        "Expected a string.",
                    ));
                }
            };
            if value.chars().count() > 1024 {
                return Err(cmdlet_error(
                    "Ex4C6B7E",
                    "Microsoft.Exchange.Data.DataValidationException",
                    format!(
                        "The length of the property is too long. The maximum length is 1024 and the length of the value provided is {}.",
                        value.chars().count()
                    ),
                ));
            }
            edits.push(Box::new(move |m| {
                m.set_custom_attribute(n, &value);
                Ok(())
            }));
            continue;
        }
        match lk.as_str() {
            "emailaddresses" => {
                if v.is_null() {
                    return Err(transformation(
                        k,
                        v,
                        "Microsoft.Exchange.Data.ProxyAddressCollection",
                        "EmailAddresses cannot be empty.",
                    ));
                }
                let change = multi_change(k, v)?;
                edits.push(Box::new(move |m| apply_email_addresses(m, change)));
            }
            "windowsemailaddress" => {
                let Some(addr) = v.as_str().map(|s| s.trim().to_string()) else {
                    return Err(transformation(
                        k,
                        v,
                        "Microsoft.Exchange.Data.SmtpAddress",
                        "Expected an SMTP address.",
                    ));
                };
                let (_, bare) = split_address(&addr);
                if !valid_smtp(&bare) {
                    return Err(bad_address(&addr));
                }
                edits.push(Box::new(move |m| {
                    make_primary(&mut m.email_addresses, &bare);
                    m.windows_email_address = bare;
                    Ok(())
                }));
            }
            "hiddenfromaddresslistsenabled" => {
                let b = match v {
                    Value::Bool(b) => *b,
                    Value::String(s)
                        if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("$true") =>
                    {
                        true
                    }
                    Value::String(s)
                        if s.eq_ignore_ascii_case("false") || s.eq_ignore_ascii_case("$false") =>
                    {
                        false
                    }
                    other => {
                        return Err(transformation(
                            k,
                            other,
                            "System.Boolean",
                            "Boolean parameters accept only Boolean values and numbers, such as $True, $False, 1 or 0.",
                        ));
                    }
                };
                edits.push(Box::new(move |m| {
                    m.hidden_from_address_lists_enabled = b;
                    Ok(())
                }));
            }
            "type" => {
                let kind = v.as_str().and_then(RecipientKind::from_set_type).ok_or_else(|| {
                    transformation(k, v, "Microsoft.Exchange.Management.RecipientTasks.ConvertibleMailboxSubType", "Unable to match the identifier name to a valid enumerator name. Specify one of the following enumerator names and try again: Regular, Room, Equipment, Shared")
                })?;
                edits.push(Box::new(move |m| {
                    m.kind = kind;
                    Ok(())
                }));
            }
            "isexchangecloudmanaged" => {
                let Some(b) = v.as_bool() else {
                    return Err(transformation(
                        k,
                        v,
                        "System.Boolean",
                        "Boolean parameters accept only Boolean values and numbers, such as $True, $False, 1 or 0.",
                    ));
                };
                cloud_managed_param = Some(b);
                edits.push(Box::new(move |m| {
                    m.is_exchange_cloud_managed = b;
                    Ok(())
                }));
            }
            "displayname" => {
                let Some(d) = v
                    .as_str()
                    .map(str::to_string)
                    .filter(|d| !d.trim().is_empty())
                else {
                    return Err(transformation(
                        k,
                        v,
                        "System.String",
                        "DisplayName cannot be empty.",
                    ));
                };
                edits.push(Box::new(move |m| {
                    m.display_name = d;
                    Ok(())
                }));
            }
            _ => {}
        }
    }
    let now = ctx.state.now();
    let mut edit_error: Option<InvokeError> = None;
    let mut changed = false;
    let result = ctx.state.update_mailbox_with(&identity, |m| {
        let before = m.clone();
        let cloud_managed = cloud_managed_param.unwrap_or(m.is_exchange_cloud_managed);
        if let Some(p) = synced_parameter
            && m.is_dir_synced
            && !cloud_managed
        {
            edit_error = Some(cmdlet_error(
                "Ex0A3B5C",
                "Microsoft.Exchange.Configuration.Tasks.TaskInvalidOperationException",
                format!(
                    "The operation on mailbox \"{identity}\" failed because it's out of the current user's write scope. The action 'Set-Mailbox', '{p}', can't be performed on the object '{identity}' because the object is being synchronized from your on-premises organization. This action should be performed on the object in your on-premises organization."
                ),
            ));
            return Err(StateError::Invalid("synchronised from on-premises".into()));
        }
        for e in edits {
            if let Err(err) = e(m) {
                edit_error = Some(err);
                return Err(StateError::Invalid("edit refused".into()));
            }
        }
        changed = *m != before;
        if changed {
            m.when_changed = now;
        }
        Ok(())
    });
    match result {
        Ok(_) => {}
        Err(_) if edit_error.is_some() => {
            return Err(edit_error.unwrap_or(InvokeError::ExpiredPagination));
        }
        Err(StateError::NotFound(id)) => return Err(InvokeError::NotFound(id)),
        Err(StateError::Ambiguous(id)) => {
            return Err(cmdlet_error(
                "Ex0F9BBE",
                "Microsoft.Exchange.Configuration.Tasks.ManagementObjectAmbiguousException",
                format!(
                    "The operation couldn't be performed because '{id}' matches multiple entries."
                ),
            ));
        }
        Err(StateError::AddressInUse { address, owner }) => {
            return Err(cmdlet_error(
                "ExB7C0A7",
                "Microsoft.Exchange.Management.Tasks.ProxyAddressExistsException",
                format!(
                    "The proxy address \"{address}\" is already being used by the proxy addresses or LegacyExchangeDN of \"{owner}\". Please choose another proxy address."
                ),
            ));
        }
        Err(other) => {
            return Err(cmdlet_error(
                "Ex000000",
                "Microsoft.Exchange.Data.DataValidationException",
                other.to_string(),
            ));
        }
    }
    let mut out = String::new();
    envelope_start(ctx, &mut out);
    let warning;
    if changed {
        envelope_warnings(&mut out, &[]);
    } else {
        warning = format!(
            "The command completed successfully but no settings of '{identity}' have been modified."
        );
        envelope_warnings(&mut out, &[warning.as_str()]);
    }
    out.push_str(",\"value\":[]}");
    Ok(InvokeOk { body: out })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_lists_follow_exchange_rules() {
        let now = jiff::Timestamp::UNIX_EPOCH;
        let mut m = SimMailbox::new(uuid::Uuid::from_u128(1), "a", "a@contoso.com", now);
        apply_email_addresses(
            &mut m,
            MultiChange::Modify {
                add: vec!["SMTP:new@contoso.com".into(), "x500:/o=x".into()],
                remove: vec![],
            },
        )
        .unwrap();
        assert_eq!(
            m.email_addresses,
            ["smtp:a@contoso.com", "SMTP:new@contoso.com", "x500:/o=x"]
        );
        assert_eq!(m.windows_email_address, "new@contoso.com");
        let err = apply_email_addresses(
            &mut m,
            MultiChange::Modify {
                add: vec![],
                remove: vec!["new@contoso.com".into()],
            },
        );
        assert!(err.is_err());
        apply_email_addresses(
            &mut m,
            MultiChange::Replace(vec!["b@contoso.com".into(), "SIP:b@contoso.com".into()]),
        )
        .unwrap();
        assert_eq!(
            m.email_addresses,
            ["SMTP:b@contoso.com", "SIP:b@contoso.com"]
        );
        for bad in [
            vec!["SMTP:a@x.com".to_string(), "SMTP:b@x.com".to_string()],
            vec!["SIP:only@x.com".to_string()],
            vec!["not-an-address".to_string()],
            vec!["a@x.com".to_string(), "A@X.com".to_string()],
        ] {
            assert!(
                apply_email_addresses(&mut m, MultiChange::Replace(bad.clone())).is_err(),
                "{bad:?}"
            );
        }
    }
}
