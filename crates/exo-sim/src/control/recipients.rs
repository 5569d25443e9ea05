//! The control API's groups and mail contacts (issue 17), beside the mailboxes: create one,
//! read it, change its properties, add or remove a group's member — as an administrator
//! changes them in Exchange Online, so tests and the demo drive the writeback of groups and
//! contacts over HTTP. Every change goes through the state's checks (an address another
//! recipient holds, a member that is no recipient, a changed Guid or kind are refused) and
//! sets WhenChanged to the simulated clock, as the mailboxes' do.
//!
//! - `POST /_sim/groups`, `POST /_sim/contacts`: create (EmailAddresses with one `SMTP:`
//!   address, or a contact's ExternalEmailAddress; a group's `RecipientTypeDetails`
//!   `MailUniversalDistributionGroup` (default) or `MailUniversalSecurityGroup`).
//! - `GET`/`PATCH /_sim/groups/{id}`, `/_sim/contacts/{id}`: read, change properties.
//!   `PrimarySmtpAddress` makes that address the primary and keeps the old primary as a
//!   secondary `smtp:` address (Set-DistributionGroup/Set-MailContact `-PrimarySmtpAddress`);
//!   a contact's `ExternalEmailAddress`, changed without `EmailAddresses`, becomes its primary
//!   SMTP address the same way (a mail contact's address is where its mail goes).
//! - `POST /_sim/groups/{id}/members` `{"Member": "<identity>"}`, `DELETE
//!   /_sim/groups/{id}/members/{member}`: add or remove one member (a mailbox, contact or
//!   group of the emulator).

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{
    CustomValue, custom_value, error, state_error, want_bool, want_date, want_guid, want_list,
    want_str,
};
use crate::App;
use crate::faults::Endpoint;
use crate::invoke::valid_smtp;
use crate::mailbox::format_exchange_date;
use crate::recipient::{GROUP_TYPE_DETAILS, RecipientDetails, SimRecipient};
use crate::state::StateError;

pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/_sim/groups", post(create_group))
        .route("/_sim/groups/{id}", get(read_group).patch(patch_group))
        .route("/_sim/groups/{id}/members", post(add_member))
        .route(
            "/_sim/groups/{id}/members/{member}",
            axum::routing::delete(remove_member),
        )
        .route("/_sim/contacts", post(create_contact))
        .route(
            "/_sim/contacts/{id}",
            get(read_contact).patch(patch_contact),
        )
}

/// The control API's JSON view of a group or contact (PascalCase names as the cmdlets').
pub fn recipient_doc(r: &SimRecipient) -> Value {
    let mut o = Map::new();
    o.insert("Guid".into(), json!(r.guid));
    o.insert(
        "ExternalDirectoryObjectId".into(),
        json!(r.external_directory_object_id),
    );
    o.insert("Identity".into(), json!(r.identity()));
    o.insert("Alias".into(), json!(r.alias));
    o.insert("Name".into(), json!(r.name));
    o.insert("DisplayName".into(), json!(r.display_name));
    o.insert("PrimarySmtpAddress".into(), json!(r.primary_smtp_address()));
    o.insert("EmailAddresses".into(), json!(r.email_addresses));
    for i in 1..=15u8 {
        o.insert(format!("CustomAttribute{i}"), json!(r.custom_attribute(i)));
    }
    for i in 1..=5u8 {
        o.insert(
            format!("ExtensionCustomAttribute{i}"),
            json!(r.extension_custom_attribute(i)),
        );
    }
    o.insert(
        "HiddenFromAddressListsEnabled".into(),
        json!(r.hidden_from_address_lists_enabled),
    );
    o.insert("RecipientTypeDetails".into(), json!(r.type_details()));
    o.insert("IsDirSynced".into(), json!(r.is_dir_synced));
    o.insert(
        "WhenChangedUTC".into(),
        json!(format_exchange_date(r.when_changed, true)),
    );
    match &r.details {
        RecipientDetails::Group { members, .. } => {
            o.insert("Members".into(), json!(members));
        }
        RecipientDetails::Contact {
            external_email_address,
        } => {
            o.insert("ExternalEmailAddress".into(), json!(external_email_address));
        }
    }
    Value::Object(o)
}

/// `SMTP:x@y` from `x@y` or `smtp:x@y`; `Err` when it is no valid SMTP address.
fn external_address(k: &str, v: &Value) -> Result<String, String> {
    let text = want_str(k, v)?;
    let address = match text.split_once(':') {
        Some((p, a)) if p.eq_ignore_ascii_case("smtp") => a.to_string(),
        Some(_) => return Err(format!("{k} must be an SMTP address, not {text:?}")),
        None => text.clone(),
    };
    if !valid_smtp(&address) {
        return Err(format!("{k}: {address:?} is not a valid SMTP address"));
    }
    Ok(format!("SMTP:{address}"))
}

/// Makes `address` the primary SMTP address, the old primary kept as a secondary one.
fn set_primary(r: &mut SimRecipient, address: &str) -> Result<(), String> {
    if !valid_smtp(address) {
        return Err(format!("{address:?} is not a valid SMTP address"));
    }
    for a in r.email_addresses.iter_mut() {
        if let Some(old) = a.strip_prefix("SMTP:") {
            *a = format!("smtp:{old}");
        }
    }
    r.email_addresses.retain(|a| {
        !a.split_once(':')
            .is_some_and(|(p, x)| p.eq_ignore_ascii_case("smtp") && x.eq_ignore_ascii_case(address))
    });
    r.email_addresses.insert(0, format!("SMTP:{address}"));
    Ok(())
}

/// Applies a (partial) doc to a group or contact. `Guid`, the kind and the members are not
/// changed here (the members through their own routes).
fn apply_recipient_doc(r: &mut SimRecipient, doc: &Map<String, Value>) -> Result<(), String> {
    let sets_addresses = doc.keys().any(|k| k.eq_ignore_ascii_case("emailaddresses"));
    let mut primary = None;
    for (k, v) in doc {
        match custom_value(k, v)? {
            Some(CustomValue::Custom(n, value)) => {
                r.set_custom_attribute(n, &value);
                continue;
            }
            Some(CustomValue::Extension(n, values)) => {
                r.set_extension_custom_attribute(n, values);
                continue;
            }
            None => {}
        }
        let lk = k.to_ascii_lowercase();
        match lk.as_str() {
            "guid" => {
                if want_guid(k, v)? != r.guid {
                    return Err("Guid cannot change".into());
                }
            }
            "externaldirectoryobjectid" => r.external_directory_object_id = want_str(k, v)?,
            "alias" => {
                let alias = want_str(k, v)?;
                if alias.is_empty() || alias.len() > 64 {
                    return Err(format!("{k} must be 1 to 64 characters"));
                }
                r.alias = alias;
            }
            "name" => r.name = want_str(k, v)?,
            "displayname" => r.display_name = want_str(k, v)?,
            "emailaddresses" => {
                let list = want_list(k, v)?;
                if list.iter().filter(|a| a.starts_with("SMTP:")).count() != 1 {
                    return Err(
                        "EmailAddresses must contain exactly one SMTP: (primary) address".into(),
                    );
                }
                r.email_addresses = list;
            }
            "primarysmtpaddress" => primary = Some(want_str(k, v)?),
            "hiddenfromaddresslistsenabled" => {
                r.hidden_from_address_lists_enabled = want_bool(k, v)?
            }
            "isdirsynced" => r.is_dir_synced = want_bool(k, v)?,
            "whenchangedutc" | "whenchanged" => r.when_changed = want_date(k, v)?,
            "externalemailaddress" => {
                let address = external_address(k, v)?;
                let RecipientDetails::Contact {
                    external_email_address,
                } = &mut r.details
                else {
                    return Err(format!("{k} is a mail contact's property, not a group's"));
                };
                *external_email_address = address.clone();
                if !sets_addresses && primary.is_none() {
                    primary = Some(address["SMTP:".len()..].to_string());
                }
            }
            "recipienttypedetails" => {
                let wanted = want_str(k, v)?;
                if !wanted.eq_ignore_ascii_case(r.type_details()) {
                    return Err(format!(
                        "{k} cannot change (is {}, asked {wanted})",
                        r.type_details()
                    ));
                }
            }
            _ => return Err(format!("unknown property {k}")),
        }
    }
    if let Some(p) = primary {
        set_primary(r, &p)?;
    }
    if r.primary_smtp_address().is_empty() {
        return Err("a recipient needs a primary (SMTP:) address".into());
    }
    Ok(())
}

fn created(app: &App, r: SimRecipient) -> Response {
    match app.state.add_recipients([r.clone()]) {
        Ok(_) => (StatusCode::CREATED, Json(recipient_doc(&r))).into_response(),
        Err(e) => state_error(e),
    }
}

fn new_guid(doc: &Map<String, Value>) -> Result<Uuid, String> {
    match doc.iter().find(|(k, _)| k.eq_ignore_ascii_case("guid")) {
        Some((k, v)) => want_guid(k, v),
        None => Ok(Uuid::new_v4()),
    }
}

fn field<'a>(doc: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    doc.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn primary_of(doc: &Map<String, Value>) -> Option<String> {
    field(doc, "EmailAddresses")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .find_map(|s| s.strip_prefix("SMTP:"))
        })
        .map(str::to_string)
}

async fn create_group(State(app): State<App>, Json(doc): Json<Map<String, Value>>) -> Response {
    app.state.count(Endpoint::Any);
    let guid = match new_guid(&doc) {
        Ok(g) => g,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let Some(primary) = primary_of(&doc) else {
        return error(
            StatusCode::BAD_REQUEST,
            "EmailAddresses with one SMTP: (primary) address is required",
        );
    };
    let security = match field(&doc, "RecipientTypeDetails").and_then(Value::as_str) {
        None => false,
        Some(t) if t.eq_ignore_ascii_case(GROUP_TYPE_DETAILS[0]) => false,
        Some(t) if t.eq_ignore_ascii_case(GROUP_TYPE_DETAILS[1]) => true,
        Some(t) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "RecipientTypeDetails must be {} or {}, not {t}",
                    GROUP_TYPE_DETAILS[0], GROUP_TYPE_DETAILS[1]
                ),
            );
        }
    };
    let alias = primary.split('@').next().unwrap_or("").to_string();
    let mut r = SimRecipient::group(guid, &alias, &primary, security, app.state.now());
    let mut doc = doc;
    doc.retain(|k, _| !k.eq_ignore_ascii_case("recipienttypedetails"));
    if let Err(e) = apply_recipient_doc(&mut r, &doc) {
        return error(StatusCode::BAD_REQUEST, e);
    }
    created(&app, r)
}

async fn create_contact(State(app): State<App>, Json(doc): Json<Map<String, Value>>) -> Response {
    app.state.count(Endpoint::Any);
    let guid = match new_guid(&doc) {
        Ok(g) => g,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let external = match field(&doc, "ExternalEmailAddress") {
        Some(v) => match external_address("ExternalEmailAddress", v) {
            Ok(a) => a["SMTP:".len()..].to_string(),
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        },
        None => {
            return error(
                StatusCode::BAD_REQUEST,
                "ExternalEmailAddress is required for a mail contact",
            );
        }
    };
    let alias = external.split('@').next().unwrap_or("").to_string();
    let mut r = SimRecipient::contact(guid, &alias, &external, app.state.now());
    if let Err(e) = apply_recipient_doc(&mut r, &doc) {
        return error(StatusCode::BAD_REQUEST, e);
    }
    created(&app, r)
}

fn read(app: &App, id: &str, groups: bool) -> Response {
    app.state.count(Endpoint::Any);
    match app.state.recipient(id, groups) {
        Ok(r) => Json(recipient_doc(&r)).into_response(),
        Err(e) => state_error(e),
    }
}

async fn read_group(State(app): State<App>, Path(id): Path<String>) -> Response {
    read(&app, &id, true)
}

async fn read_contact(State(app): State<App>, Path(id): Path<String>) -> Response {
    read(&app, &id, false)
}

/// Changes a group or contact with `f` (WhenChanged set to the clock first); a refusal of
/// `f` or of the state's checks stores nothing.
fn change(
    app: &App,
    id: &str,
    groups: bool,
    f: impl FnOnce(&mut SimRecipient) -> Result<(), String>,
) -> Response {
    app.state.count(Endpoint::Any);
    match app.state.try_update_recipient(id, groups, f) {
        Ok(r) => Json(recipient_doc(&r)).into_response(),
        Err(e) => state_error(e),
    }
}

fn patch(app: &App, id: &str, groups: bool, doc: &Map<String, Value>) -> Response {
    change(app, id, groups, |r| apply_recipient_doc(r, doc))
}

async fn patch_group(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(doc): Json<Map<String, Value>>,
) -> Response {
    patch(&app, &id, true, &doc)
}

async fn patch_contact(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(doc): Json<Map<String, Value>>,
) -> Response {
    patch(&app, &id, false, &doc)
}

/// The Guid of the recipient `id` names: a mailbox, else a contact, else a group.
fn member_guid(app: &App, id: &str) -> Result<Uuid, StateError> {
    if let Ok(g) = app.state.resolve(id) {
        return Ok(g);
    }
    app.state
        .recipient(id, false)
        .or_else(|_| app.state.recipient(id, true))
        .map(|r| r.guid)
}

async fn add_member(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(doc): Json<Map<String, Value>>,
) -> Response {
    let Some(member) = field(&doc, "Member").and_then(Value::as_str) else {
        return error(
            StatusCode::BAD_REQUEST,
            "{\"Member\": \"<identity>\"} is required",
        );
    };
    let guid = match member_guid(&app, member) {
        Ok(g) => g,
        Err(e) => return state_error(e),
    };
    change(&app, &id, true, |r| match &mut r.details {
        RecipientDetails::Group { members, .. } => members
            .insert(guid)
            .then_some(())
            .ok_or_else(|| format!("{member} is already a member")),
        RecipientDetails::Contact { .. } => Err("a contact has no members".into()),
    })
}

async fn remove_member(
    State(app): State<App>,
    Path((id, member)): Path<(String, String)>,
) -> Response {
    let guid = match member_guid(&app, &member) {
        Ok(g) => g,
        Err(e) => return state_error(e),
    };
    change(&app, &id, true, |r| match &mut r.details {
        RecipientDetails::Group { members, .. } => members
            .remove(&guid)
            .then_some(())
            .ok_or_else(|| format!("{member} is not a member")),
        RecipientDetails::Contact { .. } => Err("a contact has no members".into()),
    })
}
