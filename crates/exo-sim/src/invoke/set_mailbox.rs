//! Set-Mailbox: the parameters the writeback's profiles change, each checked as the service
//! checks it, applied to one mailbox at once or not at all.

use serde_json::{Map, Value};

use crate::errors::InvokeError;
use crate::mailbox::{RecipientKind, SimMailbox};
use crate::state::StateError;

use super::addresses::{
    apply_email_addresses, bad_address, make_primary, split_address, valid_smtp,
};
use super::{
    COMMON_PARAMETERS, InvokeContext, InvokeOk, MultiChange, check_known, cmdlet_error,
    envelope_start, envelope_warnings, multi_change, param, transformation,
};

pub(super) fn set_mailbox(
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
