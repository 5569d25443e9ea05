//! Bearer tokens with a role. A request names its token in `Authorization: Bearer <token>`;
//! it is compared with every configured token in constant time (SHA-256 digests compared with
//! `subtle`, so neither a token's content nor its length shows in the time taken), and never
//! logged. A refused request is logged with its source address. There is no anonymous access
//! besides `/healthz`, `/readyz` and the console's static files, and no setting to allow it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use exo_writeback_agent::config::{ApiToken, Role};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// The configured tokens, as digests.
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<Entry>,
}

#[derive(Clone)]
struct Entry {
    name: String,
    role: Role,
    digest: [u8; 32],
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| (&e.name, e.role)))
            .finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    pub fn new(tokens: &[ApiToken]) -> Tokens {
        Tokens {
            entries: tokens
                .iter()
                .map(|t| Entry {
                    name: t.name.clone(),
                    role: t.role,
                    digest: digest(t.secret.expose()),
                })
                .collect(),
        }
    }

    /// The caller a presented token names. Every entry is compared (no early exit).
    pub fn caller(&self, presented: &str) -> Option<Caller> {
        let d = digest(presented);
        let mut found = None;
        for e in &self.entries {
            if bool::from(e.digest.ct_eq(&d)) {
                found = Some(Caller {
                    name: e.name.clone(),
                    role: e.role,
                    on_behalf: None,
                });
            }
        }
        found
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Who is asking: a token's name and role, and the person the client says it acts for
/// (the CLI sends its user in [`ON_BEHALF_HEADER`]; recorded beside the token, not trusted
/// for anything else).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
    pub on_behalf: Option<String>,
}

/// The header a client names the person it acts for in.
pub const ON_BEHALF_HEADER: &str = "x-exo-writeback-user";

impl Caller {
    /// How this caller is named where the state records who did something.
    pub fn who(&self) -> String {
        match &self.on_behalf {
            Some(user) => format!("{user} (through API token {:?})", self.name),
            None => format!("API token {:?}", self.name),
        }
    }
}

/// The person a request says it acts for: printable, at most 100 characters.
fn on_behalf(parts: &Parts) -> Option<String> {
    let v = parts.headers.get(ON_BEHALF_HEADER)?.to_str().ok()?.trim();
    (!v.is_empty() && v.len() <= 100 && v.chars().all(|c| !c.is_control())).then(|| v.to_string())
}

/// A caller holding at least the reader role.
#[derive(Debug, Clone)]
pub struct Reader(pub Caller);

/// A caller holding the operator role.
#[derive(Debug, Clone)]
pub struct Operator(pub Caller);

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn source(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_else(|| "an unknown address".into())
}

/// The caller of a request that needs `role`, or the refusal (logged with its source).
fn authorize(parts: &Parts, state: &AppState, role: Role) -> Result<Caller, ApiError> {
    let what = format!("{} {}", parts.method, parts.uri.path());
    let Some(token) = bearer(parts) else {
        tracing::warn!(source = %source(parts), request = %what, "refused a request without a bearer token");
        state.metrics.refused("missing");
        return Err(ApiError::unauthorized());
    };
    let Some(mut caller) = state.tokens().caller(token) else {
        tracing::warn!(source = %source(parts), request = %what, "refused a request with an unknown token");
        state.metrics.refused("unknown");
        state.security_event(format!(
            "a request with an unknown API token was refused ({what} from {})",
            source(parts)
        ));
        return Err(ApiError::unauthorized());
    };
    if caller.role < role {
        tracing::warn!(source = %source(parts), request = %what, token = %caller.name, "refused a request: the token's role is {}, {} is needed", caller.role.as_str(), role.as_str());
        state.metrics.refused("role");
        return Err(ApiError::forbidden(role));
    }
    caller.on_behalf = on_behalf(parts);
    Ok(caller)
}

impl FromRequestParts<Arc<AppState>> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        authorize(parts, state, Role::Reader).map(Reader)
    }
}

impl FromRequestParts<Arc<AppState>> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        authorize(parts, state, Role::Operator).map(Operator)
    }
}

#[cfg(test)]
mod tests {
    use exo_writeback_core::secret::Secret;

    use super::*;

    fn token(name: &str, role: Role, secret: &str) -> ApiToken {
        ApiToken {
            name: name.into(),
            role,
            secret: Secret::new(secret),
        }
    }

    #[test]
    fn a_token_names_its_caller_and_nothing_else_does() {
        let tokens = Tokens::new(&[
            token("console", Role::Reader, "r".repeat(40).as_str()),
            token("ops", Role::Operator, "o".repeat(40).as_str()),
        ]);
        assert_eq!(
            tokens.caller(&"o".repeat(40)),
            Some(Caller {
                name: "ops".into(),
                role: Role::Operator,
                on_behalf: None,
            })
        );
        assert_eq!(
            tokens.caller(&"r".repeat(40)).map(|c| c.role),
            Some(Role::Reader)
        );
        for wrong in ["", "o", &"o".repeat(39), &"o".repeat(41), &"R".repeat(40)] {
            assert_eq!(tokens.caller(wrong), None, "{wrong}");
        }
        assert!(!format!("{tokens:?}").contains("ooo"));
    }
}
