//! `check`: where the agent looks. The base DN is compared with the naming contexts the DC
//! announces in its rootDSE (a configured value is not printed as if the DC reported it),
//! and every `ad.search_bases` and `writeback.container_scope` DN must parse, lie in a naming
//! context, and exist — a typo otherwise passes `check` and makes every cycle find nothing.

use exo_writeback_ad::AdConnection;
use exo_writeback_core::ldap_text::{Dn, dn_eq, is_within};
use serde::Serialize;

/// The base DN and what the DC says about it.
#[derive(Debug, Serialize)]
pub struct BaseDnReport {
    pub dn: String,
    /// Set in the configuration (`ad.base_dn`), rather than the DC's default.
    pub configured: bool,
    pub ok: bool,
    pub detail: String,
}

/// One configured container DN.
#[derive(Debug, Serialize)]
pub struct ContainerReport {
    /// `ad.search_bases` or `writeback.container_scope`.
    pub setting: &'static str,
    pub dn: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl ContainerReport {
    /// The label and verdict `check` prints (`search base <DN>`, `OK` or `FAILED: …`).
    pub fn line(&self) -> (String, String) {
        let what = match self.setting {
            "ad.search_bases" => "search base",
            _ => "container scope",
        };
        let verdict = match &self.problem {
            None => "OK".to_string(),
            Some(p) => format!("FAILED: {p}"),
        };
        (format!("{what} {}", self.dn), verdict)
    }
}

/// Why `dn` cannot be used, or `None`: it parses, lies in one of the DC's naming contexts
/// and exists.
async fn problem(conn: &AdConnection, dn: &str) -> Option<String> {
    if let Err(e) = Dn::parse(dn) {
        return Some(format!("not a DN: {e}"));
    }
    let contexts = &conn.root_dse().naming_contexts;
    if !contexts.iter().any(|nc| is_within(dn, nc)) {
        let hint = exo_writeback_expr::closest(dn, contexts.iter().map(String::as_str))
            .map(|s| format!(" (did you mean {s}?)"))
            .unwrap_or_default();
        return Some(format!(
            "not a naming context of the DC, nor inside one (the DC holds: {}){hint}",
            contexts.join("; ")
        ));
    }
    match conn.read_by_dn(dn, &["objectClass"]).await {
        Ok(Some(_)) => None,
        Ok(None) => Some("does not exist on the DC".into()),
        Err(e) => Some(format!("cannot be read: {e}")),
    }
}

/// The base DN the agent uses (configured, else the DC's default naming context).
pub async fn base_dn(conn: &AdConnection) -> BaseDnReport {
    let dn = conn.base_dn().to_string();
    let configured = conn.config().base_dn.is_some();
    let problem = problem(conn, &dn).await;
    let is_context = conn
        .root_dse()
        .naming_contexts
        .iter()
        .any(|nc| dn_eq(nc, &dn));
    let detail = match (&problem, configured, is_context) {
        (Some(p), _, _) => format!("FAILED: {p}"),
        (None, false, _) => "the DC's default naming context".into(),
        (None, true, true) => "a naming context of the DC".into(),
        (None, true, false) => "exists on the DC".into(),
    };
    BaseDnReport {
        ok: problem.is_none(),
        dn,
        configured,
        detail,
    }
}

/// Every `ad.search_bases` and `writeback.container_scope` DN, checked. A container scope
/// that neither lies in nor holds a search base is a problem too: no object in it is read.
pub async fn containers(conn: &AdConnection, container_scope: &[String]) -> Vec<ContainerReport> {
    let mut out = Vec::new();
    for dn in conn.config().search_bases.iter().flatten() {
        let problem = problem(conn, dn).await;
        out.push(ContainerReport {
            setting: "ad.search_bases",
            dn: dn.clone(),
            ok: problem.is_none(),
            problem,
        });
    }
    let bases = conn.search_bases();
    for dn in container_scope {
        let mut problem = problem(conn, dn).await;
        if problem.is_none() && !bases.iter().any(|b| is_within(dn, b) || is_within(b, dn)) {
            problem = Some(
                "outside every search base (ad.search_bases), so no object in it is ever read"
                    .into(),
            );
        }
        out.push(ContainerReport {
            setting: "writeback.container_scope",
            dn: dn.clone(),
            ok: problem.is_none(),
            problem,
        });
    }
    out
}
