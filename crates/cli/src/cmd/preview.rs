//! `exo-writeback preview [--json] [--full]`: what the next cycle would write, per object and
//! attribute, writing nothing; and the changes a held (ThresholdExceeded) cycle waits to apply.

use std::process::ExitCode;

use exo_writeback_engine::{CycleMode, PreviewItem, describe_change};

use exo_writeback_agent::compose;

use crate::cmd::ConfigArg;
use crate::logging::init_logging;
use crate::out::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Preview a full reconcile instead of the next delta.
    #[arg(long)]
    pub full: bool,
    /// Print the preview (every planned change per object and attribute) as JSON.
    #[arg(long)]
    pub json: bool,
}

fn rows(items: &[PreviewItem]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for item in items {
        let who = item
            .primary_smtp_address
            .clone()
            .unwrap_or_else(|| item.cloud_id.clone());
        let dn = item.dn.clone().unwrap_or_default();
        if item.changes.is_empty() {
            out.push(vec![
                who.clone(),
                dn.clone(),
                item.code.to_string(),
                String::new(),
                item.reason.clone().unwrap_or_default(),
            ]);
        }
        for c in &item.changes {
            out.push(vec![
                who.clone(),
                dn.clone(),
                item.code.to_string(),
                c.attribute.clone(),
                describe_change(c),
            ]);
        }
    }
    out
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = compose::load_config(&args.config.config)?;
    let engine = compose::engine(&config).await?;
    let mode = if args.full {
        CycleMode::Full
    } else {
        CycleMode::Auto
    };
    let preview = engine.preview(mode).await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&preview)?);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(held) = &preview.held {
        outln!(
            "cycle {} is held by the change threshold; `exo-writeback approve {}` writes these {} objects, `exo-writeback reject {}` refuses them:",
            held.cycle,
            held.cycle,
            held.items.len(),
            held.cycle
        );
        crate::output::print_table(
            &["mailbox", "AD object", "state", "attribute", "old → new"],
            &rows(&held.items),
        );
        outln!();
    }
    outln!(
        "next {} cycle: {} objects to write ({} removing values; threshold {}){}",
        preview.kind,
        preview.would_write,
        preview.removing,
        preview.threshold,
        if preview.would_be_held {
            " — it would be held"
        } else {
            ""
        }
    );
    if !preview.items.is_empty() {
        crate::output::print_table(
            &[
                "mailbox",
                "AD object",
                "outcome",
                "attribute",
                "old → new / reason",
            ],
            &rows(&preview.items),
        );
    }
    Ok(ExitCode::SUCCESS)
}
