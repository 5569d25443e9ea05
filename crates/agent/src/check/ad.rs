//! The AD side of `check`: the connection (transport, bind identity), the bind account, where
//! the agent looks, whether the schema carries each writeback profile's attributes, and whether
//! the account may read the attributes the plans need.

use exo_writeback_ad::Transport;
use exo_writeback_ad::forest_directory::ForestDirectory;
use exo_writeback_core::profile_attrs::PROFILES;
use exo_writeback_core::schema::Schema;
use serde::Serialize;

use super::forest::{self, ForestReport};
use super::identity::{self, BindAccountReport};
use super::scope::{self, BaseDnReport, ContainerReport};
use crate::config::Config;
use crate::read_rights::{self, ReadRights};

/// The AD half.
#[derive(Debug, Serialize)]
pub struct AdReport {
    pub ok: bool,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_identity: Option<String>,
    /// The bind account and whether it is privileged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_account: Option<BindAccountReport>,
    /// The DC's default naming context, as its rootDSE announces it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub naming_context: Option<String>,
    /// The base DN the agent uses, checked against the DC's naming contexts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_dn: Option<BaseDnReport>,
    /// Every `ad.search_bases` and `writeback.container_scope` DN, checked.
    pub containers: Vec<ContainerReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_host_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_attributes: Option<usize>,
    pub profiles: Vec<ProfileReport>,
    /// The forest: its domains and the DC serving each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forest: Option<ForestReport>,
    /// May the bind account read the attributes the plans need? Unreadable ones fail the
    /// check (`read_rights.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_rights: Option<ReadRights>,
}

/// Whether the schema carries a writeback profile's attributes.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ProfileReport {
    pub profile: &'static str,
    pub exchange_schema_detected: bool,
    pub missing: Vec<&'static str>,
}

pub(super) async fn check_ad_side(config: &Config) -> AdReport {
    let mut report = AdReport {
        ok: false,
        url: config.ad.url.clone(),
        error: None,
        transport: None,
        bind_identity: None,
        bind_account: None,
        naming_context: None,
        base_dn: None,
        containers: Vec::new(),
        dns_host_name: None,
        schema_attributes: None,
        profiles: Vec::new(),
        read_rights: None,
        forest: None,
    };
    let password = match config.ad_password() {
        Ok(p) => p,
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    let forest = match ForestDirectory::open(&config.ad, password).await {
        Ok(f) => f,
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    let conn = forest.home().connection().await;
    report.transport = Some(match conn.transport() {
        Transport::Ldaps => "LDAPS, certificate verified",
        Transport::StartTls => "StartTLS, certificate verified",
        Transport::Plain if config.ad.is_sealed() => {
            "Kerberos-sealed LDAP (SASL GSSAPI signing and sealing)"
        }
        Transport::Plain => "plain LDAP, NOT encrypted",
    });
    report.bind_identity = Some(conn.bind_identity().to_string());
    report.bind_account = Some(identity::examine(&conn).await);
    report.naming_context = conn.root_dse().default_naming_context.clone();
    let base_dn = scope::base_dn(&conn).await;
    report.containers = scope::containers(&conn, &config.writeback.container_scope).await;
    let places_ok = base_dn.ok && report.containers.iter().all(|c| c.ok);
    report.base_dn = Some(base_dn);
    report.dns_host_name = conn.root_dse().dns_host_name.clone();
    match conn.schema().await {
        Ok(schema) => {
            report.schema_attributes = Some(schema.len());
            report.profiles = profile_verdicts(&schema);
            report.ok = places_ok && report.profiles.iter().all(|p| p.exchange_schema_detected);
        }
        Err(e) => report.error = Some(format!("cannot read the schema: {e}")),
    }
    let forest_report = forest::examine(&forest).await;
    report.ok &= forest_report.ok();
    report.forest = Some(forest_report);
    if let Ok(plan) = config.writeback_plan() {
        let rights = read_rights::probe_forest(&forest, &plan.required_ad_attributes(), &[])
            .await
            .unwrap_or_else(|e| ReadRights {
                unverified: Some(e.to_string()),
                ..ReadRights::default()
            });
        report.ok &= rights.unreadable.is_empty();
        report.read_rights = Some(rights);
    }
    report
}

/// Per writeback profile, the attributes the schema lacks.
pub fn profile_verdicts(schema: &Schema) -> Vec<ProfileReport> {
    PROFILES
        .iter()
        .map(|(profile, attributes)| {
            let missing: Vec<&'static str> = attributes
                .iter()
                .copied()
                .filter(|a| !schema.contains(a))
                .collect();
            ProfileReport {
                profile,
                exchange_schema_detected: missing.is_empty(),
                missing,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use exo_writeback_core::schema::{AttributeSchema, Syntax};

    fn schema_with(names: &[&str]) -> Schema {
        Schema::new(names.iter().map(|n| AttributeSchema {
            ldap_display_name: n.to_string(),
            attribute_id: String::new(),
            syntax: Syntax::Unicode,
            single_valued: true,
            range_lower: None,
            range_upper: None,
        }))
    }

    #[test]
    fn verdicts() {
        let all: Vec<&str> = PROFILES
            .iter()
            .flat_map(|(_, a)| a.iter().copied())
            .collect();
        let full = profile_verdicts(&schema_with(&all));
        assert!(
            full.iter()
                .all(|p| p.exchange_schema_detected && p.missing.is_empty())
        );

        let base = profile_verdicts(&schema_with(&["mail", "proxyAddresses"]));
        let cloud = &base[0];
        assert_eq!(cloud.profile, "cloud-managed");
        assert!(!cloud.exchange_schema_detected);
        assert!(cloud.missing.contains(&"extensionAttribute1"));
        assert!(cloud.missing.contains(&"msExchHideFromAddressLists"));
        assert!(!cloud.missing.contains(&"mail"));
        assert!(base[1].missing.contains(&"msDS-ExternalDirectoryObjectId"));
    }
}
