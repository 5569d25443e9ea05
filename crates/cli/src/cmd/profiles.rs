//! `exo-writeback profiles --show`: the effective mapping table.

use std::process::ExitCode;

use exo_writeback_agent::compose;

use crate::cmd::ConfigArg;
use crate::out::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Show the effective mapping table (the default).
    #[arg(long)]
    pub show: bool,
    /// Print the effective mapping table as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let settings = match crate::config::Config::load(&args.config.config) {
        Ok(config) => compose::plan_settings(&config)?,
        Err(e) if !args.config.config.exists() => {
            eprintln!("note: {e}; showing the defaults");
            exo_writeback_core::settings::WritebackPlanSettings::default()
        }
        Err(e) => return Err(e.into()),
    };
    let rows = settings.mapping_table();
    if args.json {
        let list: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "target": r.target, "kind": r.kind, "source": r.source,
                    "values": r.values, "origin": r.origin, "notes": r.notes,
                })
            })
            .collect();
        outln!("{}", serde_json::Value::Array(list));
    } else {
        crate::output::print_table(
            &[
                "AD attribute",
                "kind",
                "source",
                "values",
                "origin",
                "notes",
            ],
            &rows
                .iter()
                .map(|r| {
                    vec![
                        r.target.clone(),
                        r.kind.clone(),
                        r.source.clone(),
                        r.values.clone(),
                        r.origin.clone(),
                        r.notes.clone(),
                    ]
                })
                .collect::<Vec<_>>(),
        );
    }
    Ok(ExitCode::SUCCESS)
}
