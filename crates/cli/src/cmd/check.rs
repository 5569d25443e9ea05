//! `exo-writeback check`: the agent library checks each side (`agent::check`: the transport,
//! the bind account, the DC's naming context against the configured base DN, every search
//! base and container scope, the schema verdict per profile, Exchange Online, and the opted-in
//! custom mapping targets); this prints its report, as text or JSON. Exit 0 only when
//! everything checked is fine; 1 when a check failed; 2 when the configuration cannot be used.

use std::process::ExitCode;

use exo_writeback_agent::check::{self, CheckReport};

use crate::cmd::ConfigArg;
use crate::config::Config;
use crate::logging::init_logging;
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

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = Config::load(&args.config.config)?;
    let only = args.only.map(|side| match side {
        Side::Ad => check::Side::Ad,
        Side::Exo => check::Side::Exo,
    });
    let report = check::check(&config, only).await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{}", render(&report));
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn render(report: &CheckReport) -> String {
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
    use exo_writeback_agent::check::{AdReport, ProfileReport};
    use exo_writeback_agent::read_rights::{ReadRights, UnreadableAttribute};

    #[test]
    fn render_names_what_the_schema_lacks() {
        // The verdicts of a schema with only `mail` and `proxyAddresses` (in part): the
        // agent's check/ad.rs tests how they are found.
        let base = vec![
            ProfileReport {
                profile: "cloud-managed",
                exchange_schema_detected: false,
                missing: vec!["extensionAttribute1", "msExchHideFromAddressLists"],
            },
            ProfileReport {
                profile: "hybrid",
                exchange_schema_detected: false,
                missing: vec!["msDS-ExternalDirectoryObjectId"],
            },
        ];
        let text = render(&CheckReport {
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
                    unreadable: vec![UnreadableAttribute {
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
