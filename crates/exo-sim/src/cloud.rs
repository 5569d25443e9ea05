//! The Microsoft cloud the emulated tenant lives in: it decides the one token scope the token
//! endpoint accepts and the audience of the tokens it issues.
//!
//! Independent of the client's table (this crate does not depend on `exo`). Sources, per
//! cloud, for the Exchange Online resource (API host and token audience):
//! worldwide and GCC `https://outlook.office365.com`, GCC High `https://outlook.office365.us`,
//! DoD `https://outlook-dod.office365.us`, 21Vianet `https://partner.outlook.cn` —
//! cisagov/ScubaGear `EXORestHelper.psm1` (`Get-ExchangeOnlineScope`, worldwide/GCC/GCC High/
//! DoD), microsoft/CSS-Exchange `Shared/AzureFunctions/Get-CloudServiceEndpoint.ps1`
//! (`ExchangeOnlineEndpoint` for Global, USGovernmentL4, USGovernmentL5, ChinaCloud).

use serde::{Deserialize, Serialize};

/// A Microsoft cloud.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SimCloud {
    /// Microsoft 365 worldwide, and GCC (which uses the worldwide hosts).
    #[default]
    Worldwide,
    GccHigh,
    Dod,
    China,
}

impl SimCloud {
    /// The Exchange Online resource: the API host, and the token scope without `/.default`.
    pub fn resource(self) -> &'static str {
        match self {
            SimCloud::Worldwide => "https://outlook.office365.com",
            SimCloud::GccHigh => "https://outlook.office365.us",
            SimCloud::Dod => "https://outlook-dod.office365.us",
            SimCloud::China => "https://partner.outlook.cn",
        }
    }

    /// The only scope a client-credentials request may ask for.
    pub fn scope(self) -> String {
        format!("{}/.default", self.resource())
    }

    pub const ALL: [SimCloud; 4] = [
        SimCloud::Worldwide,
        SimCloud::GccHigh,
        SimCloud::Dod,
        SimCloud::China,
    ];
}

impl std::str::FromStr for SimCloud {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "worldwide" => Ok(SimCloud::Worldwide),
            "gcc-high" => Ok(SimCloud::GccHigh),
            "dod" => Ok(SimCloud::Dod),
            "china" => Ok(SimCloud::China),
            other => Err(format!(
                "unknown cloud {other:?} (worldwide, gcc-high, dod, china)"
            )),
        }
    }
}
