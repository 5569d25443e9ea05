//! `exo-writeback unpin --object <identity> | --all`: release pins set by `undo` and `reject`;
//! the next cycle writes the Exchange Online values of those attributes (a delta for objects
//! that change, a full reconcile for the others).

use std::process::ExitCode;

use exo_writeback_engine::describe_pins;
use serde_json::json;

use exo_writeback_agent::admin::{self, Unpin};
use exo_writeback_agent::compose;

use crate::cmd::ConfigArg;
use crate::logging::init_logging;
use crate::out::outln;

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["object", "all"])))]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The object whose pins to release: objectGUID, DN, ExternalDirectoryObjectId, primary
    /// SMTP address or UPN.
    #[arg(long)]
    pub object: Option<String>,
    /// Release every pin.
    #[arg(long)]
    pub all: bool,
    /// Print what was released as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = compose::load_config(&args.config.config)?;
    let what = match &args.object {
        Some(o) => Unpin::Object(o.clone()),
        None => Unpin::All,
    };
    let (released, object) = match crate::cmd::running_agent(&config)? {
        Some(agent) => agent.unpin(args.object.clone()).await?,
        None => admin::unpin(&config, &what).await?,
    };
    if args.json {
        outln!(
            "{}",
            json!({
                "released": released,
                "object_guid": object.map(|g| g.to_string()),
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    if released.attributes == 0 {
        outln!("no pins to release");
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "released {}: the next cycle writes their Exchange Online values (`exo-writeback sync --full` for objects unchanged in Exchange Online)",
        describe_pins(released).replacen(' ', " pinned ", 1)
    );
    Ok(ExitCode::SUCCESS)
}
