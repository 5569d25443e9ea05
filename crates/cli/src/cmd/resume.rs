//! `exo-writeback resume`: lift a pause; cycles run again (a running agent at its next
//! interval).

use std::process::ExitCode;

use exo_writeback_agent::{admin, compose};

use crate::cmd::ConfigArg;
use crate::logging::init_logging;
use crate::out::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = compose::load_config(&args.config.config)?;
    let lifted = match crate::cmd::running_agent(&config)? {
        Some(agent) => agent.resume().await?,
        None => admin::resume(&config).await?,
    };
    match lifted {
        Some(p) => outln!(
            "resumed (paused by {} since {}): cycles run again — a running agent at its next interval",
            p.by,
            p.since
        ),
        None => outln!("the job was not paused; nothing changed"),
    }
    Ok(ExitCode::SUCCESS)
}
