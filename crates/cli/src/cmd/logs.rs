//! `exo-writeback logs [--status …] [--identity …] [--cycle …] [--since …] [--all]
//! [--format table|json|csv]`: provisioning logs, newest first, with the kind of each entry's
//! cycle. Objects that were already in sync (nothing to write) are left out unless `--all`.

use std::process::ExitCode;

use anyhow::Context;
use std::collections::BTreeMap;

use exo_writeback_core::provisioning::{CycleId, LogStatus, ProvisioningLogEntry};
use exo_writeback_store_sqlite::LogQuery;
use exo_writeback_store_sqlite::prelude::*;

use exo_writeback_agent::compose;

use crate::cmd::ConfigArg;
use crate::logging::init_logging;
use crate::out::outln;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    /// success, skipped, failure, warning or held (repeat or comma-separate for several).
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<String>,
    /// UPN, primary SMTP address, ExternalDirectoryObjectId (or User_<id>), DN or objectGUID.
    #[arg(long)]
    pub identity: Option<String>,
    /// Show the objects that were already in sync too (left out by default).
    #[arg(long)]
    pub all: bool,
    #[arg(long)]
    pub cycle: Option<i64>,
    /// Entries at or after this time (RFC 3339, e.g. 2026-05-01T00:00:00Z) or this long ago
    /// (e.g. 2h, 30m).
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

fn parse_since(text: &str) -> anyhow::Result<jiff::Timestamp> {
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    let d: jiff::SignedDuration = text.parse().with_context(|| {
        format!("--since {text:?} is neither a time (2026-05-01T00:00:00Z) nor a duration (2h)")
    })?;
    Ok(jiff::Timestamp::now()
        .checked_sub(d.abs())
        .unwrap_or(jiff::Timestamp::MIN))
}

pub use exo_writeback_api::routes::logs::action_text;
use exo_writeback_api::routes::logs::{COLUMNS, csv_row};

/// The kind of each cycle the entries belong to (`Delta`, `Undo`, `Reject` …).
type Kinds = BTreeMap<CycleId, String>;

fn summary(e: &ProvisioningLogEntry, kinds: &Kinds) -> [String; 9] {
    exo_writeback_api::routes::logs::summary(e, kind_of(e, kinds))
}

fn kind_of<'k>(e: &ProvisioningLogEntry, kinds: &'k Kinds) -> &'k str {
    kinds.get(&e.cycle).map(String::as_str).unwrap_or_default()
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let config = compose::load_config(&args.config.config)?;
    let store = compose::open_store(&config)?;
    let mut statuses = Vec::new();
    for s in &args.status {
        statuses.push(LogStatus::from_name(s.trim()).with_context(|| {
            format!("--status {s:?}: use success, skipped, failure, warning or held")
        })?);
    }
    let query = LogQuery {
        statuses,
        identity: args.identity.clone(),
        cycle: args.cycle.map(CycleId),
        since: args.since.as_deref().map(parse_since).transpose()?,
        limit: args.limit,
        hide_in_sync: !args.all,
        ..LogQuery::default()
    };
    let entries = store.query_logs(&query)?;
    let mut kinds = Kinds::new();
    for e in &entries {
        if let std::collections::btree_map::Entry::Vacant(slot) = kinds.entry(e.cycle) {
            let kind = store.cycle(e.cycle)?.map(|c| c.kind.as_str().to_string());
            slot.insert(kind.unwrap_or_default());
        }
    }
    if entries.is_empty() {
        let hidden = if args.all {
            ""
        } else {
            " (objects already in sync are left out; --all shows them)"
        };
        let what = match &args.identity {
            Some(identity) => format!("no entries for {identity}{hidden}"),
            None => format!("no entries{hidden}"),
        };
        // Machine-readable formats stay empty on stdout.
        match args.format {
            Format::Table => outln!("{what}"),
            Format::Json | Format::Csv => eprintln!("{what}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.format {
        Format::Json => {
            for e in &entries {
                outln!("{}", serde_json::to_string(e)?);
            }
        }
        Format::Csv => {
            outln!("{}", COLUMNS.join(","));
            for e in &entries {
                outln!("{}", csv_row(e, kind_of(e, &kinds)));
            }
        }
        Format::Table => {
            crate::output::print_table(
                &COLUMNS,
                &entries
                    .iter()
                    .map(|e| summary(e, &kinds).to_vec())
                    .collect::<Vec<_>>(),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_time_or_a_duration_ago() {
        let t = parse_since("2026-05-01T00:00:00Z").expect("time");
        assert_eq!(t.to_string(), "2026-05-01T00:00:00Z");
        let before = jiff::Timestamp::now();
        let ago = parse_since("2h").expect("duration");
        let diff = before.duration_since(ago);
        assert!(diff >= jiff::SignedDuration::from_mins(119), "{diff:?}");
        assert!(diff <= jiff::SignedDuration::from_mins(121), "{diff:?}");
        let err = parse_since("yesterday-ish").unwrap_err().to_string();
        assert!(err.contains("yesterday-ish"), "{err}");
    }
}
