//! `exo-writeback-bench`: figures for docs/PERFORMANCE.md.
//!
//! - `dc`: against a real lab Samba DC — the DC's raw modify limit, the engine's initial cycle
//!   on the same change set (and the ratio), delta cycles, propagation latency of `run`, and
//!   the agent's peak RSS. The agent is the real `exo-writeback` binary.
//! - `scale`: the engine in-process against exo-sim (its own process) and an in-memory
//!   directory, one fresh process per size, for throughput and memory against size.
//!
//! Benchmarks print figures; nothing here asserts a timing.

mod dc;
mod memdir;
mod probe;
mod replay;
mod scale;
mod util;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The agent's allocator (`crates/cli/src/main.rs`): `scale` runs the engine in this process,
/// so it measures the engine with the allocator the agent runs with.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "exo-writeback-bench", about = "Benchmarks of exo-writeback")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Against a lab Samba DC seeded with N users.
    Dc(dc::Args),
    /// At scale: exo-sim and an in-memory directory, one process per size.
    Scale(scale::Args),
    /// (internal) One size of `scale`, in its own process.
    #[command(hide = true)]
    ScaleOne(scale::OneArgs),
    /// (internal) exo-sim seeded by its generator, for `scale`.
    #[command(hide = true)]
    Sim(scale::SimArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Dc(a) => runtime.block_on(dc::run(a)),
        Command::Scale(a) => runtime.block_on(scale::run(a)),
        Command::ScaleOne(a) => runtime.block_on(scale::run_one(a)),
        Command::Sim(a) => runtime.block_on(scale::run_sim(a)),
    }
}

/// Where results go by default.
pub fn default_out() -> PathBuf {
    PathBuf::from("bench-results")
}
