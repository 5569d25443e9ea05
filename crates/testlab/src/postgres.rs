//! A real PostgreSQL 15 cluster for the tests of the PostgreSQL state: `lab/pg-up` into a fresh
//! directory under `<repo>/target/lab-run/`, on a loopback address of its own, TLS required
//! (its own test CA), run as the `postgres` system account; `lab/pg-down` when dropped. A
//! watchdog stops it when the test process is gone (also after `kill -9`).
//!
//! [`LabPostgres::shared`] gives a test binary one cluster; each test takes a database of its
//! own ([`LabPostgres::database`]), dropped with its guard.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::{LabDc, LabError, combined, lab_env_value, run, run_root};

/// A running lab PostgreSQL cluster. Dropping it stops the cluster and removes its directory.
#[derive(Debug)]
pub struct LabPostgres {
    pub dir: PathBuf,
    /// The loopback address it listens on (port [`LabPostgres::port`]).
    pub addr: String,
    pub port: u16,
    /// The superuser the tests (and the agents under test) connect as.
    pub user: String,
    /// The superuser's password (mode 0600, no trailing newline).
    pub password_file: PathBuf,
    /// The test CA that signed the server's certificate (PEM).
    pub ca_file: PathBuf,
    /// A pgpass file for `psql`.
    pub pass_file: PathBuf,
    /// The postmaster.
    pub pid: u32,
    stopped: bool,
}

static NEXT_CLUSTER: AtomicU32 = AtomicU32::new(0);
static NEXT_DATABASE: AtomicU32 = AtomicU32::new(0);
static SHARED: OnceLock<Result<LabPostgres, String>> = OnceLock::new();

/// A database of its own for one test, dropped (connections closed) with the guard.
#[derive(Debug)]
pub struct LabDatabase {
    pub name: String,
    /// `postgres://<user>@<addr>:<port>/<name>` (no password: it is in the password file).
    pub url: String,
    cluster: &'static LabPostgres,
}

impl Drop for LabDatabase {
    fn drop(&mut self) {
        if let Err(e) = self.cluster.psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
        ) {
            eprintln!(
                "exo-writeback-testlab: dropping database {}: {e}",
                self.name
            );
        }
    }
}

impl LabPostgres {
    /// Starts a fresh cluster (a few seconds: initdb, certificates, start).
    pub fn start() -> Result<LabPostgres, LabError> {
        let repo = LabDc::repo_root();
        let run_dir = run_root();
        std::fs::create_dir_all(&run_dir).map_err(|source| LabError::Io {
            action: "create",
            path: run_dir.clone(),
            source,
        })?;
        let n = NEXT_CLUSTER.fetch_add(1, Ordering::Relaxed);
        let dir = run_dir.join(format!("pg-{}-{n}", std::process::id()));
        if dir.exists() {
            let _ = run(
                Command::new(repo.join("lab/pg-down")).arg(&dir),
                &repo.join("lab/pg-down"),
            );
        }
        // Offset from the DCs' candidates of this process, and free on 5432.
        let addr = crate::free_address_on(std::process::id(), 2048 + n, &[5432])?;
        let program = repo.join("lab/pg-up");
        let output = run(
            Command::new(&program)
                .arg("--watch-pid")
                .arg(std::process::id().to_string())
                .arg(&dir)
                .arg(addr.to_string()),
            &program,
        )?;
        if !output.status.success() {
            return Err(LabError::UpFailed {
                dir,
                addr: addr.to_string(),
                status: output.status.to_string(),
                output: combined(&output),
            });
        }
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        let env_file = dir.join("pg.env");
        let env = std::fs::read_to_string(&env_file).map_err(|source| LabError::Io {
            action: "read",
            path: env_file.clone(),
            source,
        })?;
        let pid = lab_env_value(&env, "PG_PID")
            .and_then(|v| v.parse().ok())
            .ok_or(LabError::BadLabEnv {
                file: env_file,
                key: "PG_PID",
            })?;
        Ok(LabPostgres {
            addr: addr.to_string(),
            port: 5432,
            user: "exo".into(),
            password_file: dir.join("password"),
            ca_file: dir.join("tls/ca.pem"),
            pass_file: dir.join("pgpass"),
            pid,
            dir,
            stopped: false,
        })
    }

    /// One cluster for the whole test process, started on first use and stopped when the
    /// process exits. Panics (failing the calling test) if it cannot start.
    pub fn shared() -> &'static LabPostgres {
        let shared = SHARED.get_or_init(|| match LabPostgres::start() {
            Ok(pg) => {
                // SAFETY: registering a plain `extern "C" fn()` with the C library.
                unsafe {
                    libc::atexit(stop_shared_at_exit);
                }
                Ok(pg)
            }
            Err(e) => Err(e.to_string()),
        });
        match shared {
            Ok(pg) => pg,
            Err(e) => panic!("the lab PostgreSQL could not start: {e}"),
        }
    }

    /// A fresh database on the shared cluster, dropped with the guard.
    pub fn database() -> Result<LabDatabase, LabError> {
        let cluster = LabPostgres::shared();
        let name = format!(
            "t_{}_{}",
            std::process::id(),
            NEXT_DATABASE.fetch_add(1, Ordering::Relaxed)
        );
        cluster.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        Ok(LabDatabase {
            url: cluster.url(&name),
            name,
            cluster,
        })
    }

    /// Creates a database on this cluster (removed with the cluster); returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, LabError> {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.url(name))
    }

    /// `postgres://<user>@<addr>:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{}@{}:{}/{database}",
            self.user, self.addr, self.port
        )
    }

    /// The superuser's password.
    pub fn password(&self) -> String {
        match std::fs::read_to_string(&self.password_file) {
            Ok(p) => p.trim_end_matches(['\r', '\n']).to_string(),
            Err(e) => panic!("cannot read {}: {e}", self.password_file.display()),
        }
    }

    /// Runs SQL with `psql` on `database` (TLS verified against the lab CA); returns its
    /// output (unaligned, tuples only).
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, LabError> {
        let conninfo = format!(
            "host={} port={} user={} dbname={database} sslmode=verify-full sslrootcert={}",
            self.addr,
            self.port,
            self.user,
            self.ca_file.display()
        );
        let mut cmd = Command::new("psql");
        cmd.env("PGPASSFILE", &self.pass_file)
            .env("PGCONNECT_TIMEOUT", "10")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(conninfo)
            .arg("-c")
            .arg(sql);
        let output = run(&mut cmd, std::path::Path::new("psql"))?;
        if !output.status.success() {
            return Err(LabError::ToolFailed {
                program: "psql".into(),
                args: sql.to_string(),
                status: output.status.to_string(),
                output: combined(&output),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// A real restart (`lab/pg-restart`): stopped (every connection cut; `immediate`: as after
    /// a crash), nothing listening for `down`, started again on the same data.
    pub fn restart(&self, down: Duration, immediate: bool) -> Result<(), LabError> {
        let program = LabDc::repo_root().join("lab/pg-restart");
        let mut cmd = Command::new(&program);
        cmd.arg("--down-secs")
            .arg(format!("{:.3}", down.as_secs_f64()));
        if immediate {
            cmd.arg("--immediate");
        }
        let output = run(cmd.arg(&self.dir), &program)?;
        if !output.status.success() {
            return Err(LabError::RestartFailed {
                dir: self.dir.clone(),
                status: output.status.to_string(),
                output: combined(&output),
            });
        }
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        Ok(())
    }

    /// Stops the cluster and removes its directory, reporting failures.
    pub fn stop(mut self) -> Result<(), LabError> {
        self.stopped = true;
        pg_down(&self.dir)
    }
}

fn pg_down(dir: &std::path::Path) -> Result<(), LabError> {
    let program = LabDc::repo_root().join("lab/pg-down");
    let output = run(Command::new(&program).arg(dir), &program)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(LabError::DownFailed {
            dir: dir.to_path_buf(),
            status: output.status.to_string(),
            output: combined(&output),
        })
    }
}

impl Drop for LabPostgres {
    fn drop(&mut self) {
        if !self.stopped {
            self.stopped = true;
            if let Err(e) = pg_down(&self.dir) {
                eprintln!("exo-writeback-testlab: {e}");
            }
        }
    }
}

extern "C" fn stop_shared_at_exit() {
    if let Some(Ok(pg)) = SHARED.get()
        && let Err(e) = pg_down(&pg.dir)
    {
        eprintln!("exo-writeback-testlab: stopping the lab PostgreSQL: {e}");
    }
}
