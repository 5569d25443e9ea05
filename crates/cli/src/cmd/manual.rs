//! `exo-writeback manual <dir>` (hidden): the man pages and shell completions, generated from
//! the clap definitions, for the Debian package (`scripts/package`). `<dir>/man1/*.1`: one
//! page for the command and one per subcommand; `<dir>/completions/`: bash, zsh and fish.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap_complete::Shell;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where to write `man1/` and `completions/`.
    pub dir: PathBuf,
}

pub fn run(args: Args, mut command: clap::Command) -> anyhow::Result<ExitCode> {
    let man = args.dir.join("man1");
    std::fs::create_dir_all(&man).with_context(|| format!("create {}", man.display()))?;
    command = command.disable_help_subcommand(true);
    command.build();
    clap_mangen::generate_to(command.clone(), &man)
        .with_context(|| format!("write the man pages into {}", man.display()))?;
    let completions = args.dir.join("completions");
    std::fs::create_dir_all(&completions)
        .with_context(|| format!("create {}", completions.display()))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut command, "exo-writeback", &completions)
            .with_context(|| format!("write the {shell} completion"))?;
    }
    Ok(ExitCode::SUCCESS)
}
