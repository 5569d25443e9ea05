//! `exo-writeback`: writes Exchange Online attribute changes back to on-premises AD.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod cmd;
mod logging;
mod out;
mod output;

use exo_writeback_agent::config;

/// jemalloc, not glibc's malloc: an initial cycle at 1M keeps millions of small live objects
/// (the cycle's sets, maps and B-trees) among its short-lived ones, and glibc's bins grew so
/// fragmented that its allocations cost more per mailbox the more mailboxes the cycle had
/// read (docs/performance-history.md, "The allocator at 1M").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Run one writeback cycle (initial when there is no watermark, else delta; --full forces a full reconcile).
    Sync(cmd::sync::Args),
    /// Run the agent: initial cycle, then a delta cycle every interval and a daily full reconcile.
    Run(cmd::run::Args),
    /// Forget state so the next cycle starts over (full, watermark, escrow or quarantine).
    Restart(cmd::restart::Args),
    /// Show what the next cycle would write, per object and attribute, writing nothing.
    Preview(cmd::preview::Args),
    /// Apply the changes a cycle held by the change threshold.
    Approve(cmd::approve::Args),
    /// Refuse the changes a cycle held by the change threshold (logged; nothing written).
    Reject(cmd::reject::Args),
    /// Show provisioning logs.
    Logs(cmd::logs::Args),
    /// Provision one mailbox now and show the four steps (import, scope, match, action).
    Provision(cmd::provision::Args),
    /// Restore the previous values of a cycle or an object from the journal, and pin them.
    Undo(cmd::undo::Args),
    /// Release attributes pinned by undo or reject, so their Exchange Online values are written.
    Unpin(cmd::unpin::Args),
    /// Stop cycles (the agent keeps running and waits) until `resume`.
    Pause(cmd::pause::Args),
    /// Let cycles run again after `pause`.
    Resume(cmd::resume::Args),
    /// Show the job state, whether an agent runs, the last cycles, the watermark, escrow and pins.
    Status(cmd::status::Args),
    /// The state's database: `state migrate --to postgres://…` copies a SQLite state into PostgreSQL.
    State(cmd::state::Args),
    /// Show the effective mapping table of the enabled profiles and custom mappings.
    Profiles(cmd::profiles::Args),
    /// Write the man pages and shell completions (for packaging).
    #[command(hide = true)]
    Manual(cmd::manual::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Manual(args) = cli.command {
        return match cmd::manual::run(args, Cli::command()) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        };
    }
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
            Command::Sync(args) => cmd::sync::run(args).await,
            Command::Run(args) => cmd::run::run(args).await,
            Command::Restart(args) => cmd::restart::run(args).await,
            Command::Preview(args) => cmd::preview::run(args).await,
            Command::Approve(args) => cmd::approve::run(args).await,
            Command::Reject(args) => cmd::reject::run(args).await,
            Command::Logs(args) => cmd::logs::run(args).await,
            Command::Provision(args) => cmd::provision::run(args).await,
            Command::Undo(args) => cmd::undo::run(args).await,
            Command::Unpin(args) => cmd::unpin::run(args).await,
            Command::Pause(args) => cmd::pause::run(args).await,
            Command::Resume(args) => cmd::resume::run(args).await,
            Command::Status(args) => cmd::status::run(args).await,
            Command::State(args) => cmd::state::run(args).await,
            Command::Profiles(args) => cmd::profiles::run(args).await,
            Command::Manual(_) => Ok(ExitCode::SUCCESS),
        }
    });
    match result {
        Ok(_) if out::failed() => ExitCode::from(2),
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    /// The agent's memory comes from jemalloc ([`ALLOCATOR`]), not from glibc's malloc: a
    /// 64 MiB allocation through Rust's global allocator leaves glibc's count of its mapped
    /// bytes as it was (glibc would map it: above its mmap threshold).
    #[test]
    fn the_global_allocator_is_not_glibc_malloc() {
        const SIZE: usize = 64 << 20;
        // SAFETY: mallinfo2 only reads glibc's counters.
        let before = unsafe { libc::mallinfo2() }.hblkhd;
        let block = vec![1u8; SIZE];
        let after = unsafe { libc::mallinfo2() }.hblkhd;
        assert_eq!(block.len(), SIZE);
        assert!(
            after < before + SIZE,
            "glibc's malloc served a {SIZE}-byte allocation of the global allocator \
             (mapped bytes {before} -> {after})"
        );
    }
}
