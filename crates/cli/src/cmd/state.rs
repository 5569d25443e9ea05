//! `exo-writeback state migrate --to postgres://…`: the SQLite state copied into PostgreSQL,
//! every table's rows counted on both sides. The password comes from `--password-file` or
//! `--password-env` (or, when the configuration's `[state]` names the same URL, from there);
//! never from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use exo_writeback_agent::compose;
use exo_writeback_agent::migrate::sqlite_to_postgres;
use exo_writeback_agent::state::StateSettings;

use crate::cmd::ConfigArg;
use crate::logging::init_logging;
use crate::out::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: StateCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum StateCommand {
    /// Copy the SQLite state (sync.state_dir) into an empty PostgreSQL state and verify the
    /// counts; then set `[state] url` to it and start the agents.
    Migrate(MigrateArgs),
}

#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The PostgreSQL state: postgres://user@host:port/database (no password in it).
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// A file holding the database password.
    #[arg(long, value_name = "FILE", conflicts_with = "password_env")]
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the database password.
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    /// The CA of the server's certificate (PEM); default: the system's trust store.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let StateCommand::Migrate(args) = args.command;
    let config = compose::load_config(&args.config.config)?;
    // The configuration's [state] for the same URL gives what the flags leave out.
    let same = config.state.as_ref().filter(|s| s.url == args.to);
    let given = args.password_file.is_some() || args.password_env.is_some();
    let target = StateSettings {
        url: args.to.clone(),
        password_file: if given {
            args.password_file
        } else {
            same.and_then(|s| s.password_file.clone())
        },
        password_env: if given {
            args.password_env
        } else {
            same.and_then(|s| s.password_env.clone())
        },
        ca_file: args
            .ca_file
            .or_else(|| same.and_then(|s| s.ca_file.clone())),
        lease: same.map_or(jiff::SignedDuration::from_secs(15), |s| s.lease),
    };
    let done = sqlite_to_postgres(&config, &target).await?;
    outln!(
        "copied {} into {}; the counts match:",
        done.source.display(),
        done.target
    );
    for (table, n) in done.counts.tables() {
        outln!("  {table:<14} {n}");
    }
    outln!(
        "next: set [state] url = \"{}\" (with its password_file or password_env) in the \
         configuration of every agent, then start them",
        done.target
    );
    Ok(ExitCode::SUCCESS)
}
