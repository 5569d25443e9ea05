//! `exo-writeback approve <cycle>`: apply the changes a cycle held by the change threshold.

use std::process::ExitCode;

use exo_writeback_core::provisioning::CycleId;

use exo_writeback_agent::compose;

use crate::cmd::ConfigArg;
use crate::logging::init_logging;
use crate::out::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The held cycle (see `exo-writeback status` or `preview`).
    pub cycle: i64,
    /// Print the report of the cycle that applies the held changes as JSON (as `sync --json`).
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = compose::load_config(&args.config.config)?;
    let report = if let Some(agent) = crate::cmd::running_agent(&config)? {
        agent.approve(args.cycle).await?
    } else {
        let holder = format!("exo-writeback approve {}", args.cycle);
        let (mut engine, _lock) = compose::writing_engine(&config, &holder).await?;
        engine.approve(CycleId(args.cycle)).await?
    };
    if args.json {
        outln!("{}", crate::cmd::sync::report_json(&report));
    } else {
        outln!("approved the changes held by cycle {}", args.cycle);
        crate::cmd::sync::print_report(&report);
    }
    Ok(if report.counts.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
