//! `exo-writeback pause [--reason TEXT]`: stop cycles without losing state. A running
//! `exo-writeback run` keeps running and says each interval that it is paused; `sync` refuses.
//! Commands run by hand (`provision`, `approve`, `reject`, `undo`) still work.

use std::process::ExitCode;

use serde_json::json;

use exo_writeback_agent::{admin, compose};

use crate::cmd::ConfigArg;
use crate::logging::init_logging;
use crate::out::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Why (shown by `status` and in the agent's log).
    #[arg(long)]
    pub reason: Option<String>,
    /// Print the pause (who, since, reason) as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = compose::load_config(&args.config.config)?;
    let (pause, before) = match crate::cmd::running_agent(&config)? {
        Some(agent) => agent.pause(args.reason.as_deref()).await?,
        None => admin::pause(&config, &admin::operator(), args.reason.as_deref()).await?,
    };
    if args.json {
        outln!(
            "{}",
            json!({
                "by": pause.by,
                "since": pause.since.to_string(),
                "reason": pause.reason,
                "already_paused_by": before.as_ref().map(|p| p.by.clone()),
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(b) = before {
        outln!("(it was already paused by {} since {})", b.by, b.since);
    }
    outln!(
        "paused by {} at {}: no cycle runs (`run` waits, `sync` refuses) until `exo-writeback resume`; state, held changes and pins are kept",
        pause.by,
        pause.since
    );
    Ok(ExitCode::SUCCESS)
}
