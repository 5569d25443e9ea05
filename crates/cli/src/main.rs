//! `exo-writeback`: writes Exchange Online attribute changes back to on-premises AD.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod config;

#[derive(Parser)]
#[command(
    name = "exo-writeback",
    version,
    about = "Writes Exchange Online attribute changes back to on-premises Active Directory"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Connect to AD (and Exchange Online) and report the bind identity, naming context and schema verdict.
    Check(cmd::check::Args),
    /// Evaluate a mapping expression against given source values.
    Expr(cmd::expr::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Check(args) => cmd::check::run(args).await,
            Command::Expr(args) => cmd::expr::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
