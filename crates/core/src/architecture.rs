//! The architecture invariants of every crate (ARCHITECTURE.md), enforced by walking the source
//! tree: each crate's dependencies, the I/O crates that must stay at the edges, what the pure
//! crates and the engine may import, printing and `anyhow` at binary edges only, and the size
//! of source files. A new module or crate is checked without being listed here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace's `crates/` directory.
fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crates/")
        .to_path_buf()
}

/// Every crate directory under `crates/` (its name → its path).
fn crates() -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(crates_dir()).expect("read crates/") {
        let path = entry.expect("entry").path();
        if path.join("Cargo.toml").is_file() {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("crate dir name")
                .to_string();
            out.insert(name, path);
        }
    }
    out
}

/// The names in one table of a crate's manifest (`[dependencies]`, `[dev-dependencies]`).
fn dependencies(krate: &Path, table: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(krate.join("Cargo.toml")).expect("Cargo.toml");
    let mut out = BTreeSet::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == format!("[{table}]");
            continue;
        }
        if inside
            && let Some((name, _)) = line.split_once(['=', '.'])
            && !line.starts_with('#')
        {
            out.insert(name.trim().to_string());
        }
    }
    out
}

/// The crate directory of one of our packages (`exo-writeback-core` → `core`).
fn our_crate(package: &str) -> Option<&str> {
    match package {
        "exo-sim" => Some("exo-sim"),
        p => p.strip_prefix("exo-writeback-"),
    }
}

/// Our crates a crate depends on (normal dependencies).
fn our_dependencies(krate: &Path) -> BTreeSet<String> {
    dependencies(krate, "dependencies")
        .iter()
        .filter_map(|d| our_crate(d).map(str::to_string))
        .collect()
}

/// Every source file of a directory, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// A source file that holds tests only (`src/tests/…`, `tests.rs`, `…_tests.rs`, this one).
fn is_test_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == "tests.rs"
        || name == "architecture.rs"
        || name.ends_with("_tests.rs")
        || path.components().any(|c| c.as_os_str() == "tests")
}

/// A source file's code before its unit tests (`#[cfg(test)]` at the top level).
fn code_of(text: &str) -> &str {
    match text.find("\n#[cfg(test)]\nmod ") {
        Some(i) => &text[..i],
        None => text,
    }
}

/// The non-test source files of a crate's `src/`, with their code.
fn sources(krate: &Path) -> Vec<(PathBuf, String)> {
    rust_files(&krate.join("src"))
        .into_iter()
        .filter(|p| !is_test_file(p))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("source");
            let code = code_of(&text).to_string();
            (p, code)
        })
        .collect()
}

/// Which of our crates each crate may depend on: no import points upward.
const ALLOWED: &[(&str, &[&str])] = &[
    ("expr", &[]),
    ("testlab", &[]),
    // A Windows-shaped LDAP server for the tests of `ad` and `agent` (dev-only).
    ("winad", &[]),
    ("core", &["expr"]),
    ("ad", &["core"]),
    ("exo", &["core"]),
    ("store", &["core"]),
    ("store-sqlite", &["core", "store"]),
    ("store-postgres", &["core", "store"]),
    ("exo-sim", &["core", "ad"]),
    ("engine", &["core", "expr", "store"]),
    (
        "agent",
        &[
            "core",
            "expr",
            "ad",
            "exo",
            "engine",
            "store-sqlite",
            "store-postgres",
        ],
    ),
    // The agent's HTTP service (API, metrics, console, daemon, the CLI's client).
    ("api", &["core", "store-sqlite", "engine", "agent"]),
    // The binary parses and prints: it reaches AD and Exchange Online through the agent, a
    // running agent through the API's client.
    (
        "cli",
        &["core", "expr", "store-sqlite", "engine", "agent", "api"],
    ),
    (
        "bench",
        &[
            "core",
            "ad",
            "exo",
            "store-sqlite",
            "engine",
            "agent",
            "testlab",
            "exo-sim",
        ],
    ),
];

#[test]
fn every_crate_depends_only_on_the_crates_below_it() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    for (name, path) in crates() {
        let Some(may) = allowed.get(name.as_str()) else {
            panic!("crates/{name} is not placed in the architecture test's ALLOWED table");
        };
        for dep in our_dependencies(&path) {
            assert!(
                may.contains(&dep.as_str()),
                "crates/{name} must not depend on crates/{dep} (it may use {may:?})"
            );
        }
    }
}

/// Our crates a crate links, itself included (normal dependencies, transitively).
fn closure(name: &str, all: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![name.to_string()];
    while let Some(c) = todo.pop() {
        if seen.insert(c.clone())
            && let Some(path) = all.get(&c)
        {
            todo.extend(our_dependencies(path));
        }
    }
    seen
}

#[test]
fn io_crates_stay_at_the_edges() {
    // (crate, third-party crates nothing it links may depend on)
    let rules: &[(&str, &[&str])] = &[
        (
            "expr",
            &[
                "ldap3", "reqwest", "rusqlite", "postgres", "tokio", "axum", "hyper",
            ],
        ),
        (
            "core",
            &[
                "ldap3", "reqwest", "rusqlite", "postgres", "tokio", "axum", "hyper",
            ],
        ),
        (
            "engine",
            &["ldap3", "reqwest", "rusqlite", "postgres", "axum", "hyper"],
        ),
        (
            "store",
            &["ldap3", "reqwest", "rusqlite", "postgres", "tokio"],
        ),
        ("ad", &["reqwest", "rusqlite", "postgres"]),
        ("exo", &["ldap3", "rusqlite", "postgres"]),
    ];
    let all = crates();
    for (name, forbidden) in rules {
        for linked in closure(name, &all) {
            let deps = dependencies(&all[&linked], "dependencies");
            for f in *forbidden {
                assert!(
                    !deps.contains(*f),
                    "crates/{name} must not link {f}, but it links crates/{linked}, which depends on it"
                );
            }
        }
    }
    // The binary parses and prints; the protocols are the agent's.
    let cli = dependencies(&all["cli"], "dependencies");
    for f in ["ldap3", "reqwest", "rusqlite", "postgres"] {
        assert!(!cli.contains(f), "crates/cli must not depend on {f}");
    }
}

#[test]
fn the_engine_links_no_ldap_http_or_sqlite_crate() {
    // The resolved graph, third-party crates included.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-p",
            "exo-writeback-engine",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(crates_dir())
        .output()
        .expect("cargo tree");
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.contains("exo-writeback-engine"), "{tree}");
    for f in [
        "ldap3 ",
        "reqwest ",
        "rusqlite ",
        "postgres ",
        "tokio-postgres ",
        "hyper ",
    ] {
        assert!(
            !tree.lines().any(|l| l.starts_with(f)),
            "`cargo tree -p exo-writeback-engine -e normal` shows {f}"
        );
    }
}

#[test]
fn pure_crates_import_no_io_crates() {
    const IO: [&str; 8] = [
        "ldap3", "reqwest", "rusqlite", "tokio", "axum", "hyper", "std::fs", "std::net",
    ];
    let all = crates();
    for name in ["core", "expr"] {
        for (path, code) in sources(&all[name]) {
            for io in IO {
                assert!(
                    !code.contains(&format!("{io}::")) && !code.contains(&format!("use {io}")),
                    "{} must not use {io}: crates/{name} does no I/O",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn the_engine_knows_no_protocol() {
    let all = crates();
    for (path, code) in sources(&all["engine"]) {
        for word in [
            "ldap3",
            "reqwest",
            "rusqlite",
            "postgres::",
            "ldap_code",
            "LdapResult",
        ] {
            assert!(
                !code.contains(word),
                "{} mentions {word}: the engine talks through its ports and knows no protocol",
                path.display()
            );
        }
    }
}

/// Crates whose `src/` is a binary's, or test support: they may print and use `anyhow`.
const EDGES: [&str; 3] = ["cli", "bench", "testlab"];

#[test]
fn library_crates_print_nothing_and_return_typed_errors() {
    for (name, path) in crates() {
        if EDGES.contains(&name.as_str()) {
            continue;
        }
        for (file, code) in sources(&path) {
            // A binary's main (exo-sim's) is an edge.
            if file.ends_with("main.rs") {
                continue;
            }
            let shown = file
                .strip_prefix(crates_dir())
                .unwrap_or(&file)
                .display()
                .to_string();
            for p in ["println!", "eprintln!", "print!(", "dbg!"] {
                assert!(
                    !code.contains(p),
                    "{shown} uses {p}: library crates log (tracing) and return; binaries print"
                );
            }
            assert!(
                !code.contains("anyhow"),
                "{shown} uses anyhow: library crates return typed errors (thiserror)"
            );
        }
    }
}

/// Source files over the limit, each with its reason, until they are split.
const OVERSIZED: [(&str, &str); 0] = [];

/// About 600 lines of code (tests apart) at most per source file.
const MAX_LINES: usize = 650;

#[test]
fn no_source_file_is_over_about_600_lines() {
    let mut over = Vec::new();
    for (name, path) in crates() {
        for (file, code) in sources(&path) {
            let shown = file
                .strip_prefix(crates_dir())
                .unwrap_or(&file)
                .display()
                .to_string();
            let lines = code.lines().count();
            if lines > MAX_LINES && !OVERSIZED.iter().any(|(f, _)| *f == shown) {
                over.push(format!("{shown} ({lines} lines, crate {name})"));
            }
        }
    }
    assert!(
        over.is_empty(),
        "split these by subject (one operation per file): {over:?}"
    );
}
