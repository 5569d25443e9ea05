//! `check`: connect to each side and report what the writeback will work with: the
//! transport ("Kerberos-sealed LDAP" for Kerberos over plain 389), the forest with the DC
//! serving each domain (`check/forest.rs`), the bind account (a warning when it is privileged), the DC's naming context
//! against the configured base DN, every search base and container scope, the schema verdict
//! per profile (`check/ad.rs`, `identity.rs`, `scope.rs`), Exchange Online's token, a sample
//! of its mailboxes and the client certificate (`check/exo.rs`), and the opted-in custom
//! mapping targets. A side that cannot be used is a finding in its section of the
//! [`CheckReport`], not an error; only a configuration that cannot be used is an error. The
//! CLI prints the report (text or JSON) and exits 0 only when it is `ok`.

use serde::Serialize;

use crate::config::Config;
use crate::error::AgentError;

mod ad;
mod exo;
mod forest;
mod identity;
mod scope;

pub use ad::{AdReport, ProfileReport, profile_verdicts};
pub use exo::{CertificateReport, EXO_CHECK_PAGE, EXO_SAMPLE, ExoReport};
pub use forest::{DcReport, ForestReport};
pub use identity::BindAccountReport;
pub use scope::{BaseDnReport, ContainerReport};

/// The side to check alone (`check --only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Ad,
    Exo,
}

/// The whole report: one section per side checked.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ad: Option<AdReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exo: Option<ExoReport>,
    /// Custom mapping targets beyond the safe list (`writeback.allow_extra_targets`).
    pub extra_targets: Vec<String>,
}

/// Check both sides, or `only` one: a side checked alone that is not configured fails.
pub async fn check(config: &Config, only: Option<Side>) -> Result<CheckReport, AgentError> {
    let check_ad = only != Some(Side::Exo);
    let check_exo = only != Some(Side::Ad);

    let ad = if check_ad {
        Some(ad::check_ad_side(config).await)
    } else {
        None
    };
    let exo = if check_exo {
        Some(exo::check_exo_side(config, only == Some(Side::Exo)).await)
    } else {
        None
    };
    let ok = ad.as_ref().is_none_or(|r| r.ok) && exo.as_ref().is_none_or(|r| r.ok);
    let extra_targets = config.writeback_plan()?.extra_targets;
    Ok(CheckReport {
        ok,
        ad,
        exo,
        extra_targets,
    })
}
