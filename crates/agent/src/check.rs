//! `exo-writeback check`: connect to each side and report what the writeback will work with:
//! the transport, the bind account (a warning when it is privileged), the DC's naming
//! context against the configured base DN, every search base and container scope, the
//! schema verdict per profile, and the opted-in custom mapping targets. Exit 0 only when
//! everything checked is fine; 1 when a check failed; 2 when the configuration cannot be used.

use std::process::ExitCode;

use exo_writeback_ad::{AdConnection, Transport};
use exo_writeback_core::profile_attrs::PROFILES;
use exo_writeback_core::schema::Schema;
use serde::Serialize;

use crate::cmd::ConfigArg;
use crate::cmd::check_identity::{self, BindAccountReport};
use crate::cmd::check_scope::{self, BaseDnReport, ContainerReport};
use crate::config::Config;
use crate::logging::init_logging;
use crate::out::{out, outln};

mod ad;
mod exo;
mod identity;
mod scope;

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ad: Option<AdReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exo: Option<ExoReport>,
    /// Custom mapping targets beyond the safe list (`writeback.allow_extra_targets`).
    pub extra_targets: Vec<String>,
}

pub async fn check(config: &Config, only: Option<Side>) -> Result<CheckReport, AgentError> {
    let check_ad = args.only != Some(Side::Exo);
    let check_exo = args.only != Some(Side::Ad);

    let ad = if check_ad {
        Some(check_ad_side(&config).await)
    } else {
        None
    };
    let exo = if check_exo {
        Some(check_exo_side(&config, args.only == Some(Side::Exo)).await)
    } else {
        None
    };
    let ok = ad.as_ref().is_none_or(|r| r.ok) && exo.as_ref().is_none_or(|r| r.ok);
    let extra_targets = config.writeback_plan()?.extra_targets;
    let report = Report {
        ok,
        ad,
        exo,
        extra_targets,
    };
}
