//! `GET /api/v1/logs` (JSON or CSV, the filters of `exo-writeback logs`, keyset paging) and
//! `GET /api/v1/logs/{id}` (one entry with its steps and old → new values).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use exo_writeback_core::provisioning::{
    Action, CycleId, LogEntryId, LogStatus, ProvisioningLogEntry,
};
use exo_writeback_store_sqlite::LogQuery;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Reader;
use crate::error::{ApiError, ErrorBody};
use crate::model::log::{LogEntry, LogPage};
use crate::state::AppState;

/// The largest page.
pub const MAX_PAGE: usize = 5000;

#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
pub struct LogsQuery {
    /// `success`, `skipped`, `failure`, `warning` (comma-separated for several).
    pub status: Option<String>,
    /// ExternalDirectoryObjectId, primary SMTP address, DN or objectGUID.
    pub identity: Option<String>,
    pub cycle: Option<i64>,
    /// Entries at or after this time (RFC 3339) or this long ago (`2h`, `30m`).
    pub since: Option<String>,
    /// Entries per page (default 100, at most 5000).
    pub limit: Option<usize>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// `json` (default) or `csv` (also chosen by `Accept: text/csv`).
    pub format: Option<String>,
}

/// `--since` and `since=`: a time (RFC 3339) or a duration ago (`2h`, `30m`).
pub fn parse_since(text: &str, now: jiff::Timestamp) -> Result<jiff::Timestamp, String> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    let d: jiff::SignedDuration = text.parse().map_err(|_| {
        format!("since {text:?} is neither a time (2026-05-01T00:00:00Z) nor a duration (2h)")
    })?;
    Ok(now.checked_sub(d.abs()).unwrap_or(jiff::Timestamp::MIN))
}

impl LogsQuery {
    fn to_store(&self) -> Result<LogQuery, ApiError> {
        let mut statuses = Vec::new();
        for s in self.status.iter().flat_map(|s| s.split(',')) {
            let s = s.trim();
            if s.is_empty() {
                continue;
            }
            statuses.push(LogStatus::from_name(s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "status {s:?}: use success, skipped, failure or warning"
                ))
            })?);
        }
        let after = match self.cursor.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => Some(LogEntryId(uuid::Uuid::parse_str(c).map_err(|_| {
                ApiError::bad_request(format!("cursor {c:?} is not a cursor this API gave"))
            })?)),
            None => None,
        };
        Ok(LogQuery {
            statuses,
            identity: self.identity.clone().filter(|i| !i.trim().is_empty()),
            cycle: self.cycle.map(CycleId),
            since: self
                .since
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| parse_since(s, jiff::Timestamp::now()))
                .transpose()
                .map_err(ApiError::bad_request)?,
            limit: self.limit.unwrap_or(100).clamp(1, MAX_PAGE),
            after,
            ..LogQuery::default()
        })
    }

    /// This query's URL with `cursor` set.
    fn link(&self, cursor: &str) -> String {
        let mut pairs = vec![];
        let mut add = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                pairs.push(format!("{k}={}", encode(&v)));
            }
        };
        add("status", self.status.clone());
        add("identity", self.identity.clone());
        add("cycle", self.cycle.map(|c| c.to_string()));
        add("since", self.since.clone());
        add("limit", self.limit.map(|l| l.to_string()));
        add("format", self.format.clone());
        add("cursor", Some(cursor.to_string()));
        format!("/api/v1/logs?{}", pairs.join("&"))
    }
}

/// Percent-encoding of a query value (RFC 3986 unreserved characters kept).
fn encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A CSV field, quoted only when it must be (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The columns of a log entry's summary: `exo-writeback logs` (table and CSV) and the CSV
/// of `GET /api/v1/logs`.
pub const COLUMNS: [&str; 9] = [
    "time", "cycle", "kind", "source", "target", "action", "status", "reason", "modified",
];

/// An entry's action as the log shows it.
pub fn action_text(e: &ProvisioningLogEntry) -> &'static str {
    match e.action {
        Action::Update => "Update",
        Action::Other => "Other",
        Action::Skip => "Skip",
    }
}

/// An entry's source: its address (else its id), with the kind of a group or contact
/// (`dl-sales@contoso.example (group)`; a mailbox is shown bare).
fn source_text(e: &ProvisioningLogEntry) -> String {
    let id = e
        .source
        .primary_smtp_address
        .clone()
        .or_else(|| e.source.external_directory_object_id.clone())
        .unwrap_or_default();
    if e.source.kind.is_mailbox() {
        id
    } else {
        format!("{id} ({})", e.source.kind)
    }
}

/// One entry's summary (the [`COLUMNS`]); `kind` is its cycle's kind (`Delta`, `Undo` …).
pub fn summary(e: &ProvisioningLogEntry, kind: &str) -> [String; 9] {
    [
        e.time.to_string(),
        e.cycle.to_string(),
        kind.to_string(),
        source_text(e),
        e.target.dn.clone().unwrap_or_default(),
        action_text(e).to_string(),
        e.status.as_str().to_string(),
        e.reason
            .as_ref()
            .map(|r| format!("{}: {}", r.code, r.message))
            .unwrap_or_default(),
        e.modified
            .iter()
            .map(|m| m.attribute.clone())
            .collect::<Vec<_>>()
            .join(" "),
    ]
}

/// One entry as a CSV row (the [`COLUMNS`]).
pub fn csv_row(e: &ProvisioningLogEntry, kind: &str) -> String {
    summary(e, kind)
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",")
}

#[utoipa::path(get, path = "/api/v1/logs", tag = "logs",
    security(("bearer" = [])), params(LogsQuery),
    responses(
        (status = 200, body = LogPage, description = "a page of entries, newest first (CSV with `format=csv`: the `X-Next-Cursor` header carries the cursor)"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    _caller: Reader,
    headers: HeaderMap,
    Query(q): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    let query = q.to_store()?;
    let limit = query.limit;
    let (entries, kinds) = state
        .read(move |store, _| {
            let entries = store.query_logs(&query)?;
            let mut kinds = BTreeMap::new();
            for e in &entries {
                if let std::collections::btree_map::Entry::Vacant(slot) = kinds.entry(e.cycle) {
                    let kind = store.cycle(e.cycle)?.map(|c| c.kind.as_str().to_string());
                    slot.insert(kind.unwrap_or_default());
                }
            }
            Ok((entries, kinds))
        })
        .await?;
    let next = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.id.to_string()))
        .flatten();
    let csv = match q.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format {other:?}: use json or csv"
            )));
        }
        None => headers
            .get(header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.contains("text/csv")),
    };
    if csv {
        let mut body = COLUMNS.join(",");
        body.push('\n');
        for e in &entries {
            let kind = kinds.get(&e.cycle).map(String::as_str).unwrap_or_default();
            body.push_str(&csv_row(e, kind));
            body.push('\n');
        }
        let mut response = body.into_response();
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        h.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"provisioning-logs.csv\""),
        );
        if let Some(n) = next.as_deref().and_then(|n| HeaderValue::from_str(n).ok()) {
            h.insert("x-next-cursor", n);
        }
        return Ok(response);
    }
    Ok(Json(LogPage {
        value: entries.iter().map(Into::into).collect(),
        next_link: next.as_deref().map(|n| q.link(n)),
        next_cursor: next,
    })
    .into_response())
}

#[utoipa::path(get, path = "/api/v1/logs/{id}", tag = "logs",
    security(("bearer" = [])), params(("id" = String, Path, description = "the entry's id")),
    responses((status = 200, body = LogEntry), (status = 404, body = ErrorBody)))]
pub async fn one(
    State(state): State<Arc<AppState>>,
    _caller: Reader,
    Path(id): Path<String>,
) -> Result<Json<LogEntry>, ApiError> {
    let uuid = uuid::Uuid::parse_str(&id)
        .map_err(|_| ApiError::not_found(format!("there is no log entry {id:?}")))?;
    let entry = state
        .read(move |store, _| Ok(store.log_entry(LogEntryId(uuid))?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("there is no log entry {id:?}")))?;
    Ok(Json((&entry).into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        let cases = [
            ("plain", "plain"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
        ];
        for (input, want) in cases {
            assert_eq!(csv_field(input), want, "{input:?}");
        }
    }

    #[test]
    fn since_takes_a_time_or_a_duration_ago() {
        let now: jiff::Timestamp = "2026-05-01T12:00:00Z".parse().unwrap();
        assert_eq!(
            parse_since("2026-05-01T00:00:00Z", now)
                .unwrap()
                .to_string(),
            "2026-05-01T00:00:00Z"
        );
        assert_eq!(
            parse_since("2h", now).unwrap().to_string(),
            "2026-05-01T10:00:00Z"
        );
        assert!(parse_since("yesterday", now).is_err());
    }

    #[test]
    fn the_next_link_keeps_the_filters() {
        let q = LogsQuery {
            status: Some("failure,warning".into()),
            identity: Some("a b@contoso.example".into()),
            ..LogsQuery::default()
        };
        assert_eq!(
            q.link("c1"),
            "/api/v1/logs?status=failure%2Cwarning&identity=a%20b%40contoso.example&cursor=c1"
        );
    }
}
