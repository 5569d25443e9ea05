//! `exo-writeback check`: connect to each side and report what the writeback will work with:
//! the transport, the bind account (a warning when it is privileged), the DC's naming
//! context against the configured base DN, every search base and container scope, the
//! schema verdict per profile, and the opted-in custom mapping targets. Exit 0 only when
//! everything checked is fine; 1 when a check failed; 2 when the configuration cannot be used.

use std::process::ExitCode;

use exo_writeback_ad::{AdConnection, Transport};
use exo_writeback_agent::read_rights::{self, ReadRights};
use exo_writeback_core::profile_attrs::PROFILES;
use exo_writeback_core::schema::Schema;
use serde::Serialize;

use crate::cmd::ConfigArg;
use crate::cmd::check_identity::{self, BindAccountReport};
use crate::cmd::check_scope::{self, BaseDnReport, ContainerReport};
use crate::config::{Config, init_logging};
use crate::out::{out, outln};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Check only one side.
    #[arg(long, value_enum)]
    pub only: Option<Side>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Ad,
    Exo,
}

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
    /// May the bind account read the attributes the plans need (a DACL evaluation per search
    /// base)? Unreadable ones fail the check.
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

/// The Exchange Online half.
#[derive(Debug, Serialize, Default)]
pub struct ExoReport {
    pub ok: bool,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Mailboxes read in the sample (at most [`EXO_SAMPLE`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mailboxes_sampled: Option<usize>,
    /// Whether the tenant has more mailboxes than the sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub more_mailboxes: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_mailbox: Option<String>,
    /// The client certificate, to compare with the app registration (certificate
    /// credentials only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateReport>,
    /// What should be dealt with soon although nothing fails (a certificate close to expiry).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The client certificate as the Entra admin center shows it under Certificates & secrets.
#[derive(Debug, Serialize, Default)]
pub struct CertificateReport {
    pub subject: String,
    pub sha1_thumbprint: String,
    pub sha256_thumbprint: String,
    pub expires: String,
}

/// How many mailboxes `check` reads from Exchange Online.
pub const EXO_SAMPLE: usize = 100;

/// The result pages `check` asks for: small, so a tenant of more than this many mailboxes
/// shows whether paging works (a routing anchor that finds no mailbox fails at the second
/// page) before the first cycle does.
pub const EXO_CHECK_PAGE: u32 = 50;

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = Config::load(&args.config.config)?;
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
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{}", render(&report));
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn check_ad_side(config: &Config) -> AdReport {
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
    };
    let password = match config.ad_password() {
        Ok(p) => p,
        Err(e) => {
            report.error = Some(format!("{e:#}"));
            return report;
        }
    };
    let conn = match AdConnection::connect(&config.ad, password).await {
        Ok(c) => c,
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    report.transport = Some(match conn.transport() {
        Transport::Ldaps => "LDAPS, certificate verified",
        Transport::StartTls => "StartTLS, certificate verified",
        Transport::Plain => "plain LDAP, NOT encrypted",
    });
    report.bind_identity = Some(conn.bind_identity().to_string());
    report.bind_account = Some(check_identity::examine(&conn).await);
    report.naming_context = conn.root_dse().default_naming_context.clone();
    let base_dn = check_scope::base_dn(&conn).await;
    report.containers = check_scope::containers(&conn, &config.writeback.container_scope).await;
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
    if let Ok(plan) = config.writeback_plan() {
        let rights = read_rights::probe(&conn, &plan.required_ad_attributes())
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

/// Gets a token and reads a sample of mailboxes (one result page at most).
async fn check_exo_side(config: &Config, asked_alone: bool) -> ExoReport {
    use futures::StreamExt;
    let Some(exo) = &config.exo else {
        return ExoReport {
            // Skipped, not failed, unless it was asked for alone.
            ok: !asked_alone,
            status: "not configured (no [exo] section)".into(),
            ..ExoReport::default()
        };
    };
    let mut report = ExoReport {
        tenant: Some(exo.tenant.clone()),
        ..ExoReport::default()
    };
    let fail = |mut report: ExoReport, status: &str, e: &dyn std::fmt::Display| {
        report.status = status.into();
        report.error = Some(e.to_string());
        report
    };
    let client = match exo.settings() {
        Ok(mut settings) => {
            settings.page_size = settings.page_size.min(EXO_CHECK_PAGE);
            match exo_writeback_exo::ExoClient::new(settings) {
                Ok(c) => c,
                Err(e) => return fail(report, "FAILED: configuration", &e),
            }
        }
        Err(e) => return fail(report, "FAILED: configuration", &e),
    };
    report.endpoint = Some(client.endpoint().to_string());
    if let Some(c) = &client.settings().certificate {
        report.certificate = Some(CertificateReport {
            subject: c.subject.clone(),
            sha1_thumbprint: c.sha1_thumbprint.clone(),
            sha256_thumbprint: c.sha256_thumbprint.clone(),
            expires: c.expiry(),
        });
    }
    report.warnings = client.settings().warnings(jiff::Timestamp::now());
    if let Err(e) = client.check_token().await {
        return fail(report, "FAILED: no access token", &e);
    }
    let mut sample = client.mailboxes(None).take(EXO_SAMPLE + 1);
    let mut read = 0usize;
    while let Some(item) = sample.next().await {
        match item {
            Ok(m) => {
                read += 1;
                if report.first_mailbox.is_none() {
                    report.first_mailbox = m.primary_smtp_address.or(m.user_principal_name);
                }
            }
            // One odd record does not fail the check; it is reported.
            Err(e) if e.is_record_error() => {
                read += 1;
                report.error.get_or_insert_with(|| e.to_string());
            }
            Err(e) => return fail(report, "FAILED: cannot read mailboxes", &e),
        }
    }
    report.mailboxes_sampled = Some(read.min(EXO_SAMPLE));
    report.more_mailboxes = Some(read > EXO_SAMPLE);
    report.ok = true;
    report.status = "OK".into();
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

fn render(report: &Report) -> String {
    let mut out = String::new();
    if let Some(ad) = &report.ad {
        out.push_str(&format!(
            "AD ({}): {}\n",
            ad.url,
            if ad.ok { "OK" } else { "FAILED" }
        ));
        if let Some(e) = &ad.error {
            out.push_str(&format!("  error: {e}\n"));
        }
        let mut field = |name: &str, value: &Option<String>| {
            if let Some(v) = value {
                out.push_str(&format!("  {name}: {v}\n"));
            }
        };
        field("transport", &ad.transport.map(str::to_string));
        field("bind identity", &ad.bind_identity);
        if let Some(account) = &ad.bind_account {
            if let Some(dn) = &account.dn {
                let verdict = if account.privileged {
                    "PRIVILEGED"
                } else {
                    "not privileged"
                };
                field("bind account", &Some(format!("{dn} ({verdict})")));
            }
            field("warning", &account.warning());
        }
        field(
            "naming context",
            &ad.naming_context
                .as_ref()
                .map(|nc| format!("{nc} (the DC's default)")),
        );
        if let Some(base) = &ad.base_dn {
            let origin = if base.configured {
                "configured"
            } else {
                "default"
            };
            field(
                "base DN",
                &Some(format!("{} ({origin}): {}", base.dn, base.detail)),
            );
        }
        for container in &ad.containers {
            let (label, verdict) = container.line();
            field(&label, &Some(verdict));
        }
        field("domain controller", &ad.dns_host_name);
        field(
            "schema",
            &ad.schema_attributes.map(|n| format!("{n} attributes")),
        );
        for p in &ad.profiles {
            if p.exchange_schema_detected {
                out.push_str(&format!(
                    "  profile {}: Exchange schema detected\n",
                    p.profile
                ));
            } else {
                out.push_str(&format!(
                    "  profile {}: schema lacks {} attribute(s) the profile needs: {}\n",
                    p.profile,
                    p.missing.len(),
                    p.missing.join(", ")
                ));
            }
        }
        if let Some(rights) = &ad.read_rights {
            match &rights.unverified {
                Some(why) => out.push_str(&format!(
                    "  warning: cannot verify that the bind account may read the attributes the plans need: {why}\n"
                )),
                None if rights.unreadable.is_empty() => out.push_str(&format!(
                    "  read rights: every attribute the plans need is readable ({})\n",
                    rights.samples.join("; ")
                )),
                None => {
                    for u in &rights.unreadable {
                        out.push_str(&format!("  cannot read {}: {}\n", u.attribute, u.message));
                    }
                }
            }
        }
    }
    if let Some(exo) = &report.exo {
        out.push_str(&format!("Exchange Online: {}\n", exo.status));
        let mut field = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                out.push_str(&format!("  {name}: {v}\n"));
            }
        };
        field("tenant", exo.tenant.clone());
        field("endpoint", exo.endpoint.clone());
        if let Some(c) = &exo.certificate {
            field("certificate", Some(c.subject.clone()));
            field(
                "certificate thumbprint (SHA-1)",
                Some(c.sha1_thumbprint.clone()),
            );
            field(
                "certificate thumbprint (SHA-256)",
                Some(c.sha256_thumbprint.clone()),
            );
            field("certificate expires", Some(c.expires.clone()));
        }
        for w in &exo.warnings {
            field("warning", Some(w.clone()));
        }
        field("error", exo.error.clone());
        field(
            "mailboxes",
            exo.mailboxes_sampled.map(|n| {
                if exo.more_mailboxes == Some(true) {
                    format!("more than {n} (read a sample of {n})")
                } else {
                    format!("{n}")
                }
            }),
        );
        field("first mailbox", exo.first_mailbox.clone());
    }
    if let Some(line) = extra_targets_line(&report.extra_targets) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The line `check` and `status` print when custom mappings write opted-in targets.
pub fn extra_targets_line(extra_targets: &[String]) -> Option<String> {
    (!extra_targets.is_empty()).then(|| {
        format!(
            "custom mapping targets opted in (writeback.allow_extra_targets): {}",
            extra_targets.join(", ")
        )
    })
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

        let text = render(&Report {
            ok: false,
            ad: Some(AdReport {
                ok: false,
                url: "ldaps://x".into(),
                error: None,
                transport: None,
                bind_identity: Some("me".into()),
                bind_account: None,
                naming_context: None,
                base_dn: None,
                containers: Vec::new(),
                dns_host_name: None,
                schema_attributes: Some(2),
                profiles: base,
                read_rights: Some(ReadRights {
                    account: Some("CN=svc,DC=x".into()),
                    samples: vec!["CN=u,DC=x".into()],
                    unreadable: vec![read_rights::UnreadableAttribute {
                        attribute: "extensionAttribute15".into(),
                        sample_dn: "CN=u,DC=x".into(),
                        message: "the bind account CN=svc,DC=x may not read it".into(),
                    }],
                    unverified: None,
                }),
            }),
            exo: None,
            extra_targets: Vec::new(),
        });
        assert!(text.contains("bind identity: me"), "{text}");
        assert!(text.contains("msExchHideFromAddressLists"), "{text}");
        assert!(!text.contains("Exchange schema detected"), "{text}");
        assert!(
            text.contains("cannot read extensionAttribute15: the bind account CN=svc,DC=x"),
            "{text}"
        );
    }
}
