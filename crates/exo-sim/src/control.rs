//! The control API under `/_sim/` (not part of the Exchange protocol; see PROTOCOL.md).

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::App;
use crate::faults::{Endpoint, FaultRule};
use crate::mailbox::{RecipientKind, SimMailbox, format_exchange_date};
use crate::seed::{SeedSpec, generate};
use crate::state::StateError;

mod recipients;

pub use recipients::recipient_doc;

pub(crate) fn routes() -> Router<App> {
    Router::new()
        .merge(recipients::routes())
        .route("/_sim/health", get(|| async { "ok" }))
        .route("/_sim/seed", post(seed))
        .route("/_sim/mailboxes", get(list).post(create))
        .route(
            "/_sim/mailboxes/{id}",
            get(read).put(replace).patch(patch).delete(remove),
        )
        .route("/_sim/clock", get(clock).post(advance))
        .route(
            "/_sim/faults",
            get(faults).post(add_faults).delete(clear_faults),
        )
        .route("/_sim/stats", get(stats))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn state_error(e: StateError) -> Response {
    let status = match e {
        StateError::NotFound(_) => StatusCode::NOT_FOUND,
        StateError::DuplicateGuid(_)
        | StateError::AddressInUse { .. }
        | StateError::Ambiguous(_) => StatusCode::CONFLICT,
        StateError::Invalid(_) => StatusCode::BAD_REQUEST,
    };
    error(status, e.to_string())
}

/// The control API's JSON view of a mailbox (PascalCase names as in Get-Mailbox).
pub fn to_doc(m: &SimMailbox) -> Value {
    let mut o = Map::new();
    o.insert("Guid".into(), json!(m.guid));
    o.insert("ExchangeGuid".into(), json!(m.exchange_guid));
    o.insert(
        "ArchiveGuid".into(),
        json!(m.archive_guid.unwrap_or(Uuid::nil())),
    );
    o.insert("ArchiveStatus".into(), json!(m.archive_status()));
    o.insert("Identity".into(), json!(m.identity()));
    o.insert(
        "ExternalDirectoryObjectId".into(),
        json!(m.external_directory_object_id),
    );
    o.insert("ImmutableId".into(), json!(m.immutable_id));
    o.insert("UserPrincipalName".into(), json!(m.user_principal_name));
    o.insert("PrimarySmtpAddress".into(), json!(m.primary_smtp_address()));
    o.insert("WindowsEmailAddress".into(), json!(m.windows_email_address));
    o.insert("DisplayName".into(), json!(m.display_name));
    o.insert("Alias".into(), json!(m.alias));
    o.insert("Name".into(), json!(m.name));
    o.insert("EmailAddresses".into(), json!(m.email_addresses));
    for i in 1..=15u8 {
        o.insert(format!("CustomAttribute{i}"), json!(m.custom_attribute(i)));
    }
    for i in 1..=5u8 {
        o.insert(
            format!("ExtensionCustomAttribute{i}"),
            json!(m.extension_custom_attribute(i)),
        );
    }
    o.insert(
        "HiddenFromAddressListsEnabled".into(),
        json!(m.hidden_from_address_lists_enabled),
    );
    o.insert("RecipientTypeDetails".into(), json!(m.kind.details()));
    o.insert("IsDirSynced".into(), json!(m.is_dir_synced));
    o.insert(
        "IsExchangeCloudManaged".into(),
        json!(m.is_exchange_cloud_managed),
    );
    o.insert("LegacyExchangeDN".into(), json!(m.legacy_exchange_dn()));
    o.insert("InPlaceHolds".into(), json!(m.in_place_holds));
    o.insert(
        "WhenChangedUTC".into(),
        json!(format_exchange_date(m.when_changed, true)),
    );
    o.insert(
        "WhenCreatedUTC".into(),
        json!(format_exchange_date(m.when_created, true)),
    );
    Value::Object(o)
}

fn want_str(k: &str, v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        _ => Err(format!("{k} must be a string")),
    }
}

fn want_bool(k: &str, v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("{k} must be true or false"))
}

fn want_list(k: &str, v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{k} must be a list of strings"))
            })
            .collect(),
        _ => Err(format!("{k} must be a list of strings")),
    }
}

fn want_guid(k: &str, v: &Value) -> Result<Uuid, String> {
    v.as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| format!("{k} must be a GUID string"))
}

/// An ISO 8601 time (`…Z` or with an offset); without an offset, or a bare date, it is UTC.
fn want_date(k: &str, v: &Value) -> Result<jiff::Timestamp, String> {
    let iso = |s: &str| {
        s.parse::<jiff::Timestamp>().ok().or_else(|| {
            s.parse::<jiff::civil::DateTime>()
                .ok()
                .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).ok())
                .map(|z| z.timestamp())
        })
    };
    v.as_str()
        .map(str::trim)
        .and_then(iso)
        .ok_or_else(|| format!("{k} must be an ISO 8601 date"))
}

/// A doc's custom attribute, its value checked.
enum CustomValue {
    /// `CustomAttributeN` (1–15).
    Custom(u8, String),
    /// `ExtensionCustomAttributeN` (1–5).
    Extension(u8, Vec<String>),
}

/// `Some` when `k` names a custom or extension custom attribute (a number out of range is an
/// unknown property), `None` for any other name.
fn custom_value(k: &str, v: &Value) -> Result<Option<CustomValue>, String> {
    let lk = k.to_ascii_lowercase();
    let number = |n: &str, max: u8| {
        n.parse::<u8>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| format!("unknown property {k}"))
    };
    if let Some(n) = lk.strip_prefix("extensioncustomattribute") {
        return Ok(Some(CustomValue::Extension(
            number(n, 5)?,
            want_list(k, v)?,
        )));
    }
    if let Some(n) = lk.strip_prefix("customattribute") {
        return Ok(Some(CustomValue::Custom(number(n, 15)?, want_str(k, v)?)));
    }
    Ok(None)
}

/// Applies a (partial) doc to a mailbox. `Guid` is accepted only when equal to the
/// mailbox's; computed properties (`PrimarySmtpAddress`, `ArchiveStatus`, `Identity`) are
/// refused unless equal to the current value.
pub fn apply_doc(m: &mut SimMailbox, doc: &Map<String, Value>) -> Result<(), String> {
    for (k, v) in doc {
        match custom_value(k, v)? {
            Some(CustomValue::Custom(n, value)) => {
                m.set_custom_attribute(n, &value);
                continue;
            }
            Some(CustomValue::Extension(n, values)) => {
                m.set_extension_custom_attribute(n, values);
                continue;
            }
            None => {}
        }
        let lk = k.to_ascii_lowercase();
        match lk.as_str() {
            "guid" => {
                if want_guid(k, v)? != m.guid {
                    return Err("Guid cannot change".into());
                }
            }
            "exchangeguid" => m.exchange_guid = want_guid(k, v)?,
            "archiveguid" => {
                m.archive_guid = match v {
                    Value::Null => None,
                    _ => Some(want_guid(k, v)?).filter(|g| !g.is_nil()),
                }
            }
            "externaldirectoryobjectid" => m.external_directory_object_id = want_str(k, v)?,
            "immutableid" => m.immutable_id = want_str(k, v)?,
            "userprincipalname" => m.user_principal_name = want_str(k, v)?,
            "windowsemailaddress" => m.windows_email_address = want_str(k, v)?,
            "displayname" => m.display_name = want_str(k, v)?,
            "alias" => m.alias = want_str(k, v)?,
            "name" => m.name = want_str(k, v)?,
            "emailaddresses" => {
                let list = want_list(k, v)?;
                if list.iter().filter(|a| a.starts_with("SMTP:")).count() != 1 {
                    return Err(
                        "EmailAddresses must contain exactly one SMTP: (primary) address".into(),
                    );
                }
                m.email_addresses = list;
            }
            "hiddenfromaddresslistsenabled" => {
                m.hidden_from_address_lists_enabled = want_bool(k, v)?
            }
            "recipienttypedetails" => m.kind = v
                .as_str()
                .and_then(RecipientKind::from_details)
                .ok_or_else(|| {
                    format!(
                        "{k} must be UserMailbox, SharedMailbox, RoomMailbox or EquipmentMailbox"
                    )
                })?,
            "isdirsynced" => m.is_dir_synced = want_bool(k, v)?,
            "isexchangecloudmanaged" => m.is_exchange_cloud_managed = want_bool(k, v)?,
            "legacyexchangedn" => {
                m.legacy_exchange_dn = Some(want_str(k, v)?).filter(|s| !s.is_empty())
            }
            "inplaceholds" => m.in_place_holds = want_list(k, v)?,
            "whenchangedutc" | "whenchanged" => m.when_changed = want_date(k, v)?,
            "whencreatedutc" | "whencreated" => m.when_created = want_date(k, v)?,
            "primarysmtpaddress" | "archivestatus" | "identity" => {
                let current = to_doc(m);
                let canon = match lk.as_str() {
                    "primarysmtpaddress" => "PrimarySmtpAddress",
                    "archivestatus" => "ArchiveStatus",
                    _ => "Identity",
                };
                if current.get(canon) != Some(v) {
                    return Err(format!("{k} is computed and cannot be set (got {v})"));
                }
            }
            _ => return Err(format!("unknown property {k}")),
        }
    }
    if m.primary_smtp_address().is_empty() {
        return Err("the mailbox needs a primary (SMTP:) address".into());
    }
    Ok(())
}

#[derive(Deserialize)]
struct SeedRequest {
    #[serde(default)]
    replace: bool,
    #[serde(flatten)]
    spec: SeedSpec,
}

async fn seed(State(app): State<App>, Json(req): Json<SeedRequest>) -> Response {
    app.state.count(Endpoint::Any);
    let state = app.state.clone();
    let result = tokio::task::spawn_blocking(move || {
        if req.replace {
            state.clear_mailboxes();
        }
        state.add_mailboxes(generate(&req.spec))
    })
    .await;
    match result {
        Ok(Ok(added)) => {
            Json(json!({ "added": added, "mailboxes": app.state.mailbox_count() })).into_response()
        }
        Ok(Err(e)) => state_error(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    after: Option<Uuid>,
    limit: Option<usize>,
}

async fn list(State(app): State<App>, Query(q): Query<ListQuery>) -> Response {
    app.state.count(Endpoint::Any);
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    let page = app.state.mailboxes_after(q.after, limit);
    let next = if page.len() == limit {
        page.last().map(|m| m.guid)
    } else {
        None
    };
    let docs: Vec<Value> = page.iter().map(to_doc).collect();
    Json(json!({ "mailboxes": docs, "next": next, "total": app.state.mailbox_count() }))
        .into_response()
}

async fn create(State(app): State<App>, Json(doc): Json<Map<String, Value>>) -> Response {
    app.state.count(Endpoint::Any);
    let guid = match doc.iter().find(|(k, _)| k.eq_ignore_ascii_case("guid")) {
        Some((k, v)) => match want_guid(k, v) {
            Ok(g) => g,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        },
        None => Uuid::new_v4(),
    };
    let primary = doc
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("emailaddresses"))
        .and_then(|(_, v)| v.as_array())
        .and_then(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .find_map(|s| s.strip_prefix("SMTP:"))
        })
        .map(str::to_string);
    let Some(primary) = primary else {
        return error(
            StatusCode::BAD_REQUEST,
            "EmailAddresses with one SMTP: (primary) address is required",
        );
    };
    let alias = primary.split('@').next().unwrap_or("").to_string();
    let mut m = SimMailbox::new(guid, &alias, &primary, app.state.now());
    if let Err(e) = apply_doc(&mut m, &doc) {
        return error(StatusCode::BAD_REQUEST, e);
    }
    match app.state.add_mailbox(m.clone()) {
        Ok(_) => (StatusCode::CREATED, Json(to_doc(&m))).into_response(),
        Err(e) => state_error(e),
    }
}

async fn read(State(app): State<App>, Path(id): Path<String>) -> Response {
    app.state.count(Endpoint::Any);
    match app.state.resolve(&id) {
        Ok(g) => match app.state.mailbox(&g.to_string()) {
            Some(m) => Json(to_doc(&m)).into_response(),
            None => state_error(StateError::NotFound(id)),
        },
        Err(e) => state_error(e),
    }
}

fn update(app: &App, id: &str, doc: &Map<String, Value>, replace: bool) -> Response {
    let now = app.state.now();
    let sets_changed = doc
        .keys()
        .any(|k| k.eq_ignore_ascii_case("whenchangedutc") || k.eq_ignore_ascii_case("whenchanged"));
    let mut refusal = None;
    let result = app.state.update_mailbox_with(id, |m| {
        if replace {
            let mut fresh =
                SimMailbox::new(m.guid, &m.alias, m.primary_smtp_address(), m.when_created);
            fresh.exchange_guid = m.exchange_guid;
            *m = fresh;
        }
        if let Err(e) = apply_doc(m, doc) {
            refusal = Some(e.clone());
            return Err(StateError::Invalid(e));
        }
        if !sets_changed {
            m.when_changed = now;
        }
        Ok(())
    });
    match result {
        Ok(m) => Json(to_doc(&m)).into_response(),
        Err(_) if refusal.is_some() => error(StatusCode::BAD_REQUEST, refusal.unwrap_or_default()),
        Err(e) => state_error(e),
    }
}

async fn replace(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(doc): Json<Map<String, Value>>,
) -> Response {
    app.state.count(Endpoint::Any);
    update(&app, &id, &doc, true)
}

async fn patch(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(doc): Json<Map<String, Value>>,
) -> Response {
    app.state.count(Endpoint::Any);
    update(&app, &id, &doc, false)
}

async fn remove(State(app): State<App>, Path(id): Path<String>) -> Response {
    app.state.count(Endpoint::Any);
    match app.state.remove_mailbox(&id) {
        Ok(m) => Json(to_doc(&m)).into_response(),
        Err(e) => state_error(e),
    }
}

async fn clock(State(app): State<App>) -> Response {
    app.state.count(Endpoint::Any);
    Json(json!({ "now": format_exchange_date(app.state.now(), true) })).into_response()
}

#[derive(Deserialize)]
struct Advance {
    advance_secs: u64,
}

async fn advance(State(app): State<App>, Json(a): Json<Advance>) -> Response {
    app.state.count(Endpoint::Any);
    app.state.advance_clock(a.advance_secs);
    Json(json!({ "now": format_exchange_date(app.state.now(), true) })).into_response()
}

async fn faults(State(app): State<App>) -> Response {
    app.state.count(Endpoint::Any);
    let rules: Vec<Value> = app
        .state
        .faults()
        .into_iter()
        .map(|(id, rule, fired)| json!({ "id": id, "rule": rule, "fired": fired }))
        .collect();
    Json(json!({ "faults": rules })).into_response()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(FaultRule),
    Many(Vec<FaultRule>),
}

async fn add_faults(State(app): State<App>, Json(rules): Json<OneOrMany>) -> Response {
    app.state.count(Endpoint::Any);
    let rules = match rules {
        OneOrMany::One(r) => vec![r],
        OneOrMany::Many(v) => v,
    };
    for r in &rules {
        if let Some(p) = r.probability
            && !(0.0..=1.0).contains(&p)
        {
            return error(
                StatusCode::BAD_REQUEST,
                format!("probability must be within 0..=1, got {p}"),
            );
        }
        if let crate::faults::FaultKind::InvalidUtf8 { text } = &r.kind
            && !text.chars().any(|c| ('\u{80}'..='\u{FF}').contains(&c))
        {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "invalid_utf8: {text:?} holds no character of U+0080..U+00FF, so its Latin-1 form would still be valid UTF-8"
                ),
            );
        }
    }
    let ids: Vec<u64> = rules.into_iter().map(|r| app.state.add_fault(r)).collect();
    Json(json!({ "ids": ids })).into_response()
}

async fn clear_faults(State(app): State<App>) -> Response {
    app.state.count(Endpoint::Any);
    app.state.clear_faults();
    StatusCode::NO_CONTENT.into_response()
}

async fn stats(State(app): State<App>) -> Response {
    let s = &app.state;
    let body = json!({
        "token": s.request_count(Endpoint::Token),
        "invoke": s.request_count(Endpoint::Invoke),
        "nextlink": s.request_count(Endpoint::NextLink),
        "control": s.control_count(),
        "mailboxes": s.mailbox_count(),
    });
    s.count(Endpoint::Any);
    Json(body).into_response()
}
