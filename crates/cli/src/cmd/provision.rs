//! `exo-writeback provision <identity> [--dry-run] [--json]`: provision on demand — run the
//! four steps for one mailbox now and show each with ✓/✗/–, the modified attributes
//! old → new, or the skip reason.

use std::process::ExitCode;

use exo_writeback_core::provisioning::{LogStatus, Step};
use exo_writeback_engine::describe_change;

use exo_writeback_agent::compose;

use crate::cmd::ConfigArg;
use crate::logging::init_logging;
use crate::out::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    /// UPN or SMTP address, ExternalDirectoryObjectId, `User_<id>`, or an AD DN.
    pub identity: String,
    /// Show what would be written; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the provisioning log entry (its four steps, the modified attributes) as JSON.
    #[arg(long)]
    pub json: bool,
}

fn print_step(name: &str, s: &Step) {
    if s.details.is_empty() {
        outln!("{} {name}", s.status.mark());
    } else {
        outln!("{} {name}: {}", s.status.mark(), s.details);
    }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = compose::load_config(&args.config.config)?;
    let report = if args.dry_run {
        // Writes nothing: no state lock.
        let mut engine = compose::engine(&config).await?;
        engine.provision(&args.identity, true).await?
    } else if let Some(agent) = crate::cmd::running_agent(&config)? {
        agent.provision(&args.identity, false).await?
    } else {
        let (mut engine, _lock) =
            compose::writing_engine(&config, "exo-writeback provision").await?;
        engine.provision(&args.identity, false).await?
    };
    let e = &report.entry;
    if args.json {
        let mut v = serde_json::to_value(e)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("identity".into(), report.identity.clone().into());
            obj.insert("dry_run".into(), report.dry_run.into());
            obj.insert("on_demand_cycle".into(), report.cycle.map(|c| c.0).into());
        }
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        outln!(
            "provision on demand: {}{}",
            report.identity,
            if report.dry_run {
                " (dry run: nothing is written)"
            } else {
                ""
            }
        );
        print_step("Import from Exchange Online", &e.steps.import);
        print_step("Determine if in scope", &e.steps.scoping);
        print_step("Match in Active Directory", &e.steps.matching);
        print_step("Perform action", &e.steps.export);
        outln!(
            "action: {}, status: {}",
            crate::cmd::logs::action_text(e),
            e.status.as_str()
        );
        if let Some(r) = &e.reason {
            outln!("{}: {}", r.code, r.message);
            outln!("recommended action: {}", r.recommended_action);
        }
        if !e.modified.is_empty() {
            outln!(
                "modified attributes{}:",
                if report.dry_run { " (would be)" } else { "" }
            );
            for m in &e.modified {
                outln!("  {}: {}", m.attribute, describe_change(m));
            }
        }
    }
    Ok(match e.status {
        LogStatus::Failure => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    })
}
