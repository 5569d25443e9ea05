//! `exo-writeback undo --cycle N | --object <identity>`: restore the journaled previous values
//! (itself logged as an Undo cycle, so it can be undone too).

use std::process::ExitCode;

use exo_writeback_core::provisioning::CycleId;
use exo_writeback_engine::UndoTarget;

use exo_writeback_agent::compose;

use crate::cmd::ConfigArg;
use crate::logging::init_logging;
use crate::out::outln;

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["cycle", "object"])))]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Undo everything this cycle wrote.
    #[arg(long)]
    pub cycle: Option<i64>,
    /// Undo the latest cycle's changes to this object (DN, objectGUID, ExternalDirectoryObjectId, UPN or address).
    #[arg(long)]
    pub object: Option<String>,
    /// Print the report of the undo cycle as JSON (as `sync --json`).
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = compose::load_config(&args.config.config)?;
    if args.cycle.is_none() && args.object.is_none() {
        anyhow::bail!("give --cycle N or --object <identity>");
    }
    let report = if let Some(agent) = crate::cmd::running_agent(&config)? {
        let object = if args.cycle.is_some() {
            None
        } else {
            args.object.clone()
        };
        agent.undo(args.cycle, object).await?
    } else {
        let (mut engine, _lock) = compose::writing_engine(&config, "exo-writeback undo").await?;
        let target = match (&args.cycle, &args.object) {
            (Some(c), _) => UndoTarget::Cycle(CycleId(*c)),
            (None, Some(o)) => UndoTarget::Object(engine.object_ref(o).await?),
            (None, None) => anyhow::bail!("give --cycle N or --object <identity>"),
        };
        engine.undo(target).await?
    };
    if args.json {
        outln!("{}", crate::cmd::sync::report_json(&report));
    } else {
        crate::cmd::sync::print_report(&report);
    }
    Ok(if report.counts.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
