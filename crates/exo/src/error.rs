//! Errors of the Exchange Online connector, and the parser for the service's OData error body.

use std::fmt;

use serde_json::Value;

use crate::config::ConfigError;

/// Everything that can go wrong talking to Exchange Online. Messages name the request and
/// what to do; they never contain the client secret, the private key, the client assertion or
/// an access token.
#[derive(Debug, thiserror::Error)]
pub enum ExoError {
    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),

    #[error("certificate credential: {0}")]
    Certificate(String),

    #[error(
        "token request to {endpoint} was refused (HTTP {status}): {message}. Check tenant, client_id and the credential"
    )]
    TokenRefused {
        endpoint: String,
        status: u16,
        message: String,
    },

    #[error("token response from {endpoint} is unusable: {problem}")]
    TokenResponse { endpoint: String, problem: String },

    #[error(
        "{request}: Exchange Online rejected the token (HTTP 401) even after one refresh: {error}. Check that the app has the Exchange.ManageAsApp permission with admin consent"
    )]
    Unauthorized {
        request: String,
        error: ServiceError,
    },

    #[error(
        "{request}: access denied (HTTP 403): {error}. The app needs an Exchange role (e.g. Exchange Recipient Administrator) assigned to its service principal"
    )]
    Forbidden {
        request: String,
        error: ServiceError,
    },

    #[error("{request}: Exchange Online answered HTTP {status}: {error}")]
    Service {
        request: String,
        status: u16,
        error: ServiceError,
    },

    #[error(
        "{request}: Exchange Online did not answer within {timeout_secs} s ({attempts} tries). A filtered Get-Mailbox of a large tenant can take minutes before its first page; if the service is not down, raise [exo] timeout_secs (default 960, the ExchangeOnlineManagement module's)"
    )]
    TimedOut {
        request: String,
        timeout_secs: u64,
        attempts: u32,
    },

    #[error("{request}: gave up after {attempts} tries; last failure: {last}")]
    RetriesExhausted {
        request: String,
        attempts: u32,
        last: String,
    },

    #[error(
        "{request}: the response body is not a complete result page ({problem}); the listing stops here and is incomplete"
    )]
    MalformedPage { request: String, problem: String },

    #[error(
        "{request}: following @odata.nextLink failed (HTTP {status}): {error}. The listing is incomplete; a paging link is served only by the back-end server the routing anchor (X-AnchorMailbox, from [exo] tenant: the tenant ID or initial domain) finds, and for about 30 minutes, so poll again"
    )]
    BrokenNextLink {
        request: String,
        status: u16,
        error: ServiceError,
    },

    #[error(
        "{request}: Exchange Online answered, but reported errors with the result page (@adminapi.errors): {}. The page's records were handed on; the listing stops here and counts as incomplete, so the next poll reads these mailboxes again",
        errors.join(" | ")
    )]
    CmdletErrors {
        request: String,
        errors: Vec<String>,
    },

    #[error("{request}: refusing to follow @odata.nextLink: {problem}")]
    UnsafeNextLink { request: String, problem: String },

    #[error("invalid request: {0}")]
    InvalidRequest(String),

    #[error(
        "mailbox {mailbox}: {problem}; this record is skipped (nothing is written to AD for it), the others are read"
    )]
    MalformedRecord {
        mailbox: String,
        problem: String,
        /// The record's ExternalDirectoryObjectId and PrimarySmtpAddress, when readable.
        external_directory_object_id: Option<String>,
        primary_smtp_address: Option<String>,
    },
}

impl ExoError {
    /// The parsed service error, when the service sent one.
    pub fn service_error(&self) -> Option<&ServiceError> {
        match self {
            ExoError::Unauthorized { error, .. }
            | ExoError::Forbidden { error, .. }
            | ExoError::Service { error, .. }
            | ExoError::BrokenNextLink { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Whether this error is about a single record (the stream goes on after it).
    pub fn is_record_error(&self) -> bool {
        matches!(self, ExoError::MalformedRecord { .. })
    }
}

/// The useful part of an error body of the admin API
/// (`{"error":{"code","message","details":[{"message"}],"innererror":{…"internalexception"}}}`),
/// or of a body that is not JSON at all (a 403 may be NUL bytes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceError {
    /// `error.code`, e.g. `BadRequest`, `NotFound`, `InternalServerError`.
    pub code: Option<String>,
    /// The most specific text found: `details[0].message` without its `id|type|` prefix,
    /// else the innermost `internalexception.message`, else `error.message`.
    pub message: String,
    /// The .NET exception type, from `details[0].message` or the innermost exception.
    pub exception_type: Option<String>,
    /// Error id such as `Ex6F9304` (first part of `details[0].message`).
    pub error_id: Option<String>,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        let mut extra = Vec::new();
        if let Some(t) = &self.exception_type {
            extra.push(t.rsplit('.').next().unwrap_or(t).to_owned());
        }
        if let Some(c) = &self.code {
            extra.push(format!("code {c}"));
        }
        if !extra.is_empty() {
            write!(f, " [{}]", extra.join(", "))?;
        }
        Ok(())
    }
}

const MAX_TEXT: usize = 500;

/// The back-end exceptions the ExchangeOnlineManagement module retries
/// (`$RetryableExceptions` in the script it generates).
pub const TRANSIENT_EXCEPTIONS: [&str; 5] = [
    "DCOverloadedException",
    "SuitabilityDirectoryException",
    "ServerInMMException",
    "ADServerSettingsChangedException",
    "StorageTransientException",
];

fn clip(text: &str) -> String {
    let t = text.trim();
    if t.chars().count() <= MAX_TEXT {
        t.to_owned()
    } else {
        let mut s: String = t.chars().take(MAX_TEXT).collect();
        s.push('…');
        s
    }
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

impl ServiceError {
    /// Parses an error body. Never fails: a body that is not the expected JSON becomes its
    /// (clipped, printable) text, and an empty or all-NUL body says so.
    pub fn parse(body: &[u8]) -> ServiceError {
        let text = String::from_utf8_lossy(body);
        let cleaned: String = text
            .chars()
            .filter(|c| *c != '\0' && (!c.is_control() || *c == '\n'))
            .collect();
        let cleaned = cleaned.trim();
        if cleaned.is_empty() {
            let message = if body.is_empty() {
                "empty response body".to_owned()
            } else {
                format!(
                    "response body of {} bytes with no readable text",
                    body.len()
                )
            };
            return ServiceError {
                message,
                ..Default::default()
            };
        }
        let Ok(json) = serde_json::from_str::<Value>(cleaned) else {
            return ServiceError {
                message: clip(cleaned),
                ..Default::default()
            };
        };
        let err = match json.get("error") {
            Some(e @ Value::Object(_)) => e,
            // The OAuth/other shape `{"error":"code","error_description":"…"}`.
            Some(Value::String(code)) => {
                let message = str_at(&json, "error_description")
                    .or(Some(code.trim()).filter(|c| !c.is_empty()))
                    .unwrap_or(cleaned);
                return ServiceError {
                    code: Some(code.clone()).filter(|c| !c.trim().is_empty()),
                    message: clip(message),
                    ..Default::default()
                };
            }
            _ => &json,
        };
        Self::from_error_object(err).unwrap_or_else(|| ServiceError {
            message: clip(cleaned),
            ..Default::default()
        })
    }

    fn from_error_object(err: &Value) -> Option<ServiceError> {
        if !err.is_object() {
            return None;
        }
        let code = str_at(err, "code").map(str::to_owned);
        let top_message = str_at(err, "message");
        let (mut error_id, mut exception_type, mut detail_text) = (None, None, None);
        if let Some(first) = err
            .get("details")
            .and_then(Value::as_array)
            .and_then(|d| d.first())
            && let Some(m) = str_at(first, "message")
        {
            let parts: Vec<&str> = m.splitn(3, '|').collect();
            if parts.len() == 3 {
                error_id = Some(parts[0].trim())
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned);
                exception_type = Some(parts[1].trim())
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned);
                detail_text = Some(parts[2].trim().to_owned());
            } else {
                detail_text = Some(m.to_owned());
            }
        }
        // Innermost internalexception.
        let inner = err.get("innererror");
        let mut deepest: Option<&Value> = None;
        let mut cursor = inner.and_then(|i| i.get("internalexception"));
        while let Some(e) = cursor.filter(|e| e.is_object()) {
            deepest = Some(e);
            cursor = e.get("internalexception");
        }
        let inner_text = deepest.and_then(|e| str_at(e, "message"));
        let inner_type = deepest.and_then(|e| str_at(e, "type"));
        if exception_type.is_none() {
            exception_type = inner_type.map(str::to_owned);
        }
        let message = detail_text
            .filter(|t| !t.is_empty())
            .or(inner_text.map(str::to_owned))
            .or(inner.and_then(|i| str_at(i, "message")).map(str::to_owned))
            .or(top_message.map(str::to_owned))?;
        Some(ServiceError {
            code,
            message: clip(&message),
            exception_type,
            error_id,
        })
    }

    /// Whether the service says the object does not exist: the exception is
    /// `ManagementObjectNotFoundException` (captures C4, C5, C7) or the text is its "couldn't be
    /// found on". Neither the HTTP status nor `code` tells: a real capture shows not-found
    /// under `InternalServerError` (C7), and a 404 `NotFound` without that exception (a wrong
    /// tenant segment, a wrong path) is not about the object.
    pub fn is_object_not_found(&self) -> bool {
        let by_type = self
            .exception_type
            .as_deref()
            .is_some_and(|t| t.ends_with("ManagementObjectNotFoundException"));
        by_type || self.message.contains("couldn't be found on")
    }

    /// Whether the service names one of the transient back-end exceptions the
    /// ExchangeOnlineManagement module retries whatever the HTTP status
    /// (`$RetryableExceptions`, matched in `details[0].message`): the same request will
    /// likely succeed a little later.
    pub fn is_transient_backend(&self) -> bool {
        let named = |text: &str| TRANSIENT_EXCEPTIONS.iter().any(|name| text.contains(name));
        self.exception_type.as_deref().is_some_and(named) || named(&self.message)
    }

    /// Whether the error is the expired-paging one ("Expired or Invalid pagination request").
    pub fn is_expired_pagination(&self) -> bool {
        self.message.contains("pagination request")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_bytes_and_empty_bodies() {
        let e = ServiceError::parse(&[0u8; 64]);
        assert!(e.message.contains("64 bytes"), "{e}");
        assert_eq!(ServiceError::parse(b"").message, "empty response body");
        let e = ServiceError::parse(b"You have reached the maximum number of concurrent requests per tenant. Please wait and try again");
        assert!(e.message.starts_with("You have reached"), "{e}");
    }

    #[test]
    fn details_message_is_split() {
        let body = br#"{"error":{"code":"NotFound","message":"Error executing cmdlet","details":[{"code":"Client","target":"","message":"Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|The operation couldn't be performed because object 'x@y' couldn't be found on 'DC1'."}]}}"#;
        let e = ServiceError::parse(body);
        assert_eq!(e.code.as_deref(), Some("NotFound"));
        assert_eq!(e.error_id.as_deref(), Some("Ex6F9304"));
        assert!(e.message.starts_with("The operation couldn't be performed"));
        assert!(e.is_object_not_found());
        assert!(
            e.to_string().contains("ManagementObjectNotFoundException"),
            "{e}"
        );
    }

    #[test]
    fn transient_backend_exceptions_are_recognised_by_name() {
        for name in TRANSIENT_EXCEPTIONS {
            let body = format!(
                r#"{{"error":{{"code":"BadRequest","message":"Error executing cmdlet","details":[{{"code":"Client","target":"","message":"Ex1|Microsoft.Exchange.Data.Directory.{name}|Try again."}}]}}}}"#
            );
            assert!(
                ServiceError::parse(body.as_bytes()).is_transient_backend(),
                "{name}"
            );
        }
        let unknown = br#"{"error":{"code":"BadRequest","message":"Invalid Operation","details":[{"code":"Client","target":"","message":"|Microsoft.Exchange.AdminApi.CommandInvocation.AmbiguousParameterSetException|Parameter set cannot be resolved using the specified named parameters. Invalid cmdlet parameters specified. BogusParameter"}]}}"#;
        assert!(!ServiceError::parse(unknown).is_transient_backend());
    }

    #[test]
    fn a_not_found_code_alone_is_not_an_absent_object() {
        let body = br#"{"error":{"code":"NotFound","message":"The tenant 'x' is not served here.","innererror":{"message":"The tenant 'x' is not served here.","type":"Microsoft.Exchange.Admin.OData.Core.ODataServiceException","stacktrace":""}}}"#;
        assert!(!ServiceError::parse(body).is_object_not_found());
    }

    #[test]
    fn oauth_error_shape() {
        let e = ServiceError::parse(
            br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#,
        );
        assert_eq!(e.code.as_deref(), Some("invalid_client"));
        assert!(e.message.starts_with("AADSTS7000215"));
        assert!(!e.is_object_not_found());
    }

    #[test]
    fn long_text_is_clipped() {
        let body = "x".repeat(5000);
        let e = ServiceError::parse(body.as_bytes());
        assert!(e.message.chars().count() <= MAX_TEXT + 1);
    }
}
