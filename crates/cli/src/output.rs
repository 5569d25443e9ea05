//! What the subcommands print alike: tables and the progress display.

use crate::out::outln;
use exo_writeback_agent::compose::RealEngine;

/// Whether stdout is a terminal (tables and progress bars for people).
pub fn interactive() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// Print rows as an aligned table with a header.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        outln!("{}", out.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// Attach a progress display to a cycle: a spinner on a terminal, log lines otherwise.
pub fn attach_progress(engine: &mut RealEngine) {
    use exo_writeback_engine::Progress;
    if interactive() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        engine.on_progress(move |p| match p {
            Progress::Imported(n) => bar.set_message(format!("imported {n} mailboxes")),
            Progress::Writing { done, total } => {
                bar.set_message(format!("writing {done}/{total} objects"));
                if done == total {
                    bar.finish_and_clear();
                }
            }
        });
    } else {
        engine.on_progress(|p| match p {
            Progress::Imported(n) => tracing::info!(imported = n, "importing"),
            Progress::Writing { done, total } => tracing::info!(done, total, "writing"),
        });
    }
}
