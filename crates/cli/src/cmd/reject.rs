//! `exo-writeback reject <cycle> [--reason TEXT]`: refuse the changes a cycle held by the change
//! threshold. Nothing is written to AD; each staged object is logged as rejected (who, when,
//! why) and its attributes are left as they are until their Exchange Online values change.

use std::process::ExitCode;

use exo_writeback_core::provisioning::CycleId;
use exo_writeback_engine::describe_pins;

use exo_writeback_agent::{admin, compose};

use crate::cmd::ConfigArg;
use crate::logging::init_logging;
use crate::out::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The held cycle (see `exo-writeback status` or `preview`).
    pub cycle: i64,
    /// Why (kept in the log entries and shown by `status`).
    #[arg(long)]
    pub reason: Option<String>,
    /// Print the report of the cycle that logs the rejection as JSON (as `sync --json`).
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = compose::load_config(&args.config.config)?;
    let report = match crate::cmd::running_agent(&config)? {
        Some(agent) => agent.reject(args.cycle, args.reason.as_deref()).await?,
        None => {
            admin::reject(
                &config,
                CycleId(args.cycle),
                &admin::operator(),
                args.reason.as_deref(),
            )
            .await?
        }
    };
    if args.json {
        let mut v = crate::cmd::sync::report_json(&report);
        v["rejected_cycle"] = args.cycle.into();
        outln!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "rejected the changes held by cycle {}: {} objects not written (logged in cycle {}); {} left as they are until their Exchange Online values change (`exo-writeback unpin` writes them after all)",
        args.cycle,
        report.counts.in_scope,
        report.cycle,
        describe_pins(report.pins_set)
    );
    outln!("the job is released: the next cycle runs as usual");
    Ok(ExitCode::SUCCESS)
}
