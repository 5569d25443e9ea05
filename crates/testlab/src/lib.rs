//! Test support: a real Samba AD domain controller for integration tests (and a real
//! PostgreSQL, [`LabPostgres`], for the tests of the PostgreSQL state).
//!
//! [`LabDc::start`] runs `lab/up` into a fresh directory under `<repo>/target/lab-run/` on a
//! loopback address of its own, and `lab/down` when the [`LabDc`] is dropped (also when a test
//! panics). [`LabDc::shared`] gives every test of a test binary the same DC (with the Exchange
//! schema), stopped when the process exits.
//!
//! A DC never outlives its test process: samba runs with `--maximum-runtime`, and `lab/up
//! --watch-pid` leaves a small watchdog that runs `lab/down` as soon as the test process is gone
//! (also after `kill -9`).
//!
//! Architecture invariant: this crate only shells out to the lab scripts and reads `/proc`; it
//! knows nothing about LDAP beyond the connection facts it hands to tests.

use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The realm's base DN, the same in every lab DC.
pub const BASE_DN: &str = "DC=lab,DC=example,DC=test";
/// The administrator's bind identity (a UPN), the same in every lab DC.
pub const BIND_DN: &str = "Administrator@lab.example.test";
/// The OU that `LabOptions::users` fills with mailbox users `mbx00001`, `mbx00002`, ...
pub const MAILBOXES_OU: &str = "OU=Mailboxes,DC=lab,DC=example,DC=test";

mod forest;
mod postgres;
mod proxy;
pub use forest::{ACCOUNTS, ForestMember, ForestOptions, LabForest, REALM};
pub use postgres::{LabDatabase, LabPostgres};
pub use proxy::TcpProxy;

/// What kind of DC to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabOptions {
    /// Extend the schema with the Exchange attributes (default). `false` gives a plain AD
    /// schema, for detection tests.
    pub exchange_schema: bool,
    /// Seed `OU=Mailboxes` with this many deterministic mailbox users (0: none).
    pub users: u32,
    /// Samba stops by itself after this long: a safety net if every other cleanup fails.
    pub max_runtime: Duration,
    /// A member of a lab forest instead of a lone DC (see [`LabForest`]).
    forest: Option<forest::MemberSpec>,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            exchange_schema: true,
            users: 0,
            max_runtime: Duration::from_secs(2 * 60 * 60),
            forest: None,
        }
    }
}

impl LabOptions {
    /// A DC without the Exchange schema extension.
    pub fn plain() -> Self {
        LabOptions {
            exchange_schema: false,
            ..LabOptions::default()
        }
    }

    /// The same options with `n` seeded mailbox users.
    pub fn with_users(self, n: u32) -> Self {
        LabOptions { users: n, ..self }
    }
}

/// Why a lab DC could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("lab/up {addr} into {dir} failed ({status}):\n{output}")]
    UpFailed {
        dir: PathBuf,
        addr: String,
        status: String,
        output: String,
    },
    #[error("lab/down {dir} failed ({status}):\n{output}")]
    DownFailed {
        dir: PathBuf,
        status: String,
        output: String,
    },
    #[error(
        "no free loopback address found for a lab DC after {tries} tries (something listens on port 636 of each)"
    )]
    NoFreeAddress { tries: u32 },
    #[error("{program} {args} against the lab DC failed ({status}):\n{output}")]
    ToolFailed {
        program: String,
        args: String,
        status: String,
        output: String,
    },
    #[error("no objectSid for {sam} in:\n{output}")]
    NoSid { sam: String, output: String },
    #[error("lab/restart {dir} failed ({status}):\n{output}")]
    RestartFailed {
        dir: PathBuf,
        status: String,
        output: String,
    },
    #[error("{file} is missing the entry {key}; was it written by lab/up?")]
    BadLabEnv { file: PathBuf, key: &'static str },
}

/// A running lab domain controller. Dropping it stops the DC and removes its directory.
#[derive(Debug)]
pub struct LabDc {
    /// The lab directory (holds the DC's databases, logs, certificates and config files).
    pub dir: PathBuf,
    /// The loopback address the DC listens on, e.g. `127.23.4.5`.
    pub addr: String,
    /// `ldaps://<addr>`.
    pub url: String,
    /// `<dir>/exo-writeback.toml`, with a ready `[ad]` section.
    pub config_file: PathBuf,
    /// `DC=lab,DC=example,DC=test`.
    pub base_dn: String,
    /// `Administrator@lab.example.test`.
    pub bind_dn: String,
    /// The administrator password file (mode 0600, no trailing newline).
    pub password_file: PathBuf,
    /// The lab's test CA certificate (PEM), which signed the DC's server certificate.
    pub ca_file: PathBuf,
    /// Samba's root process (its process group holds all of samba's processes).
    pub pid: u32,
    stopped: bool,
}

pub(crate) static NEXT_DC: AtomicU32 = AtomicU32::new(0);
static SHARED: OnceLock<Result<LabDc, String>> = OnceLock::new();

impl LabDc {
    /// Starts a fresh DC from the template of `opts`' variant (building the template first if
    /// needed; templates are shared by every process and built once).
    pub fn start(opts: LabOptions) -> Result<LabDc, LabError> {
        let repo = Self::repo_root();
        let (dir, addr) = match &opts.forest {
            Some(spec) => (spec.dir.clone(), spec.addrs[spec.member.index()].clone()),
            None => {
                let run_dir = run_root();
                std::fs::create_dir_all(&run_dir).map_err(|source| LabError::Io {
                    action: "create",
                    path: run_dir.clone(),
                    source,
                })?;
                let n = NEXT_DC.fetch_add(1, Ordering::Relaxed);
                let dir = run_dir.join(format!("dc-{}-{n}", std::process::id()));
                (dir, free_address(std::process::id(), n)?.to_string())
            }
        };
        if dir.exists() {
            // Left by an earlier process with the same pid; it is gone, so is its DC.
            run_down(&repo, &dir)?;
        }

        let mut up = Command::new(repo.join("lab/up"));
        up.arg("--max-runtime")
            .arg(opts.max_runtime.as_secs().max(1).to_string())
            .arg("--watch-pid")
            .arg(std::process::id().to_string());
        if !opts.exchange_schema {
            up.arg("--no-exchange-schema");
        }
        if opts.users > 0 {
            up.arg("--users").arg(opts.users.to_string());
        }
        if let Some(spec) = &opts.forest {
            up.arg("--forest-member")
                .arg(spec.member.name())
                .arg("--forest-addrs")
                .arg(spec.addrs.join(","));
        }
        up.arg(&dir).arg(&addr);
        let output = run(&mut up, &repo.join("lab/up"))?;
        let text = combined(&output);
        if !output.status.success() {
            // Stop whatever it left running; the directory stays for its logs unless down works.
            let _ = run_down(&repo, &dir);
            return Err(LabError::UpFailed {
                dir,
                addr,
                status: output.status.to_string(),
                output: text,
            });
        }
        // lab/up reports template build and start times on stderr; show them with --nocapture.
        eprint!("{}", String::from_utf8_lossy(&output.stderr));

        let env_file = dir.join("lab.env");
        let env = std::fs::read_to_string(&env_file).map_err(|source| LabError::Io {
            action: "read",
            path: env_file.clone(),
            source,
        })?;
        let pid = lab_env_value(&env, "LAB_PID")
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or(LabError::BadLabEnv {
                file: env_file.clone(),
                key: "LAB_PID",
            })?;

        Ok(LabDc {
            url: format!("ldaps://{addr}"),
            config_file: dir.join("exo-writeback.toml"),
            base_dn: BASE_DN.to_string(),
            bind_dn: BIND_DN.to_string(),
            password_file: dir.join("admin-password"),
            ca_file: dir.join("tls/ca.pem"),
            addr,
            dir,
            pid,
            stopped: false,
        })
    }

    /// One DC (with the Exchange schema) for the whole test process, started on first use and
    /// stopped when the process exits. Tests sharing it must not depend on each other's
    /// objects: create objects under names of their own.
    ///
    /// Panics (failing the calling test) with `lab/up`'s output if the DC cannot start; every
    /// later call reports the same failure without retrying.
    pub fn shared() -> &'static LabDc {
        let shared = SHARED.get_or_init(|| match LabDc::start(LabOptions::default()) {
            Ok(dc) => {
                // SAFETY: registering a plain `extern "C" fn()` with the C library.
                unsafe {
                    libc::atexit(stop_shared_at_exit);
                }
                Ok(dc)
            }
            Err(e) => Err(e.to_string()),
        });
        match shared {
            Ok(dc) => dc,
            Err(e) => panic!("the shared lab DC could not start: {e}"),
        }
    }

    /// The administrator password, read from [`LabDc::password_file`].
    pub fn password(&self) -> String {
        match std::fs::read_to_string(&self.password_file) {
            Ok(p) => p.trim_end_matches(['\r', '\n']).to_string(),
            Err(e) => panic!(
                "cannot read the lab password file {}: {e}",
                self.password_file.display()
            ),
        }
    }

    /// The repository root (holds `lab/`).
    pub fn repo_root() -> PathBuf {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest
            .parent()
            .and_then(Path::parent)
            .unwrap_or(manifest)
            .to_path_buf();
        root.canonicalize().unwrap_or(root)
    }

    /// An OpenLDAP tool (`ldapsearch`, `ldapmodify`, ...) ready to talk to this DC as the
    /// administrator over LDAPS, verifying the server certificate against the lab CA:
    /// `-x -H <url> -D <bind_dn> -y <password_file>`, with `LDAPTLS_CACERT` set. Add the
    /// tool's own arguments.
    pub fn ldap_tool(&self, tool: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(tool);
        cmd.env("LDAPTLS_CACERT", &self.ca_file)
            .env("LDAPTLS_REQCERT", "demand")
            .arg("-x")
            .arg("-H")
            .arg(&self.url)
            .arg("-D")
            .arg(&self.bind_dn)
            .arg("-y")
            .arg(&self.password_file)
            .stdin(Stdio::null());
        cmd
    }

    /// A real restart (`lab/restart`): samba stopped (its open connections reset), nothing
    /// listening for `down`, then started again on the same data and address; returns once
    /// LDAPS answers. `pid` is updated.
    pub fn restart(&mut self, down: std::time::Duration) -> Result<(), LabError> {
        let program = Self::repo_root().join("lab/restart");
        let output = run(
            Command::new(&program)
                .arg("--down-secs")
                .arg(format!("{:.3}", down.as_secs_f64()))
                .arg("--max-runtime")
                .arg("3600")
                .arg(&self.dir),
            &program,
        )?;
        if !output.status.success() {
            return Err(LabError::RestartFailed {
                dir: self.dir.clone(),
                status: output.status.to_string(),
                output: combined(&output),
            });
        }
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        let env_file = self.dir.join("lab.env");
        let env = std::fs::read_to_string(&env_file).map_err(|source| LabError::Io {
            action: "read",
            path: env_file.clone(),
            source,
        })?;
        self.pid = lab_env_value(&env, "LAB_PID")
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or(LabError::BadLabEnv {
                file: env_file,
                key: "LAB_PID",
            })?;
        Ok(())
    }

    /// Runs a Samba tool (`samba-tool`, `ldbmodify`, …) against the running DC as
    /// Administrator: NTLM over LDAP (signed and sealed), the password from `PASSWD_FILE`, never
    /// on the command line. `input` is passed as the last argument (an LDIF file for
    /// `ldbmodify`). Returns stdout.
    pub fn admin_tool(
        &self,
        program: &str,
        args: &[&str],
        input: Option<&Path>,
    ) -> Result<String, LabError> {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .arg(format!(
                "--configfile={}",
                self.dir.join("etc/smb.conf").display()
            ))
            .arg("-H")
            .arg(format!("ldap://{}", self.addr))
            .args(["-U", "Administrator", "--use-kerberos=off"])
            .env("PASSWD_FILE", &self.password_file);
        if let Some(f) = input {
            cmd.arg(f);
        }
        let output = run(&mut cmd, Path::new(program))?;
        if !output.status.success() {
            return Err(LabError::ToolFailed {
                program: program.to_string(),
                args: args.join(" "),
                status: output.status.to_string(),
                output: combined(&output),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The objectSid (`S-1-5-21-…`) of the account `sam`, as `samba-tool user show` gives it.
    pub fn object_sid(&self, sam: &str) -> Result<String, LabError> {
        let shown = self.admin_tool(
            "samba-tool",
            &["user", "show", sam, "--attributes=objectSid"],
            None,
        )?;
        shown
            .lines()
            .find_map(|l| l.strip_prefix("objectSid: "))
            .map(|s| s.trim().to_string())
            .ok_or(LabError::NoSid {
                sam: sam.to_string(),
                output: shown,
            })
    }

    /// Stops the DC and removes its directory, reporting failures (dropping does the same but
    /// can only print them).
    pub fn stop(mut self) -> Result<(), LabError> {
        self.stopped = true;
        run_down(&Self::repo_root(), &self.dir)
    }
}

impl Drop for LabDc {
    fn drop(&mut self) {
        if !self.stopped {
            self.stopped = true;
            if let Err(e) = run_down(&Self::repo_root(), &self.dir) {
                eprintln!("exo-writeback-testlab: {e}");
            }
        }
    }
}

extern "C" fn stop_shared_at_exit() {
    if let Some(Ok(dc)) = SHARED.get()
        && let Err(e) = run_down(&LabDc::repo_root(), &dc.dir)
    {
        eprintln!("exo-writeback-testlab: stopping the shared lab DC: {e}");
    }
}

/// Every process whose working directory or an open file lies inside `dir` (samba rewrites
/// its command line, so `pgrep -f <dir>` cannot see it; this can). Tests use it to prove that
/// no process survives a stopped DC.
pub fn processes_in(dir: &Path) -> Vec<u32> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let inside = |link: &Path| {
        link.starts_with(&dir) || {
            // A deleted working directory reads as "<path> (deleted)".
            let s = link.to_string_lossy();
            s.strip_suffix(" (deleted)")
                .is_some_and(|p| Path::new(p).starts_with(&dir))
        }
    };
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = procs
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            let base = PathBuf::from(format!("/proc/{pid}"));
            if std::fs::read_link(base.join("cwd")).is_ok_and(|l| inside(&l)) {
                return true;
            }
            std::fs::read_dir(base.join("fd")).is_ok_and(|fds| {
                fds.filter_map(Result::ok)
                    .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| inside(&l)))
            })
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// Where lab directories go: `$EXO_LAB_RUN_DIR` or `<repo>/target/lab-run`.
pub(crate) fn run_root() -> PathBuf {
    std::env::var_os("EXO_LAB_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| LabDc::repo_root().join("target/lab-run"))
}

pub(crate) fn run(cmd: &mut Command, program: &Path) -> Result<std::process::Output, LabError> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|source| LabError::Io {
            action: "run",
            path: program.to_path_buf(),
            source,
        })
}

pub(crate) fn combined(output: &std::process::Output) -> String {
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    text
}

pub(crate) fn run_down(repo: &Path, dir: &Path) -> Result<(), LabError> {
    let program = repo.join("lab/down");
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

pub(crate) fn lab_env_value<'a>(env: &'a str, key: &str) -> Option<&'a str> {
    env.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix('=')?;
        Some(value.trim_matches('\''))
    })
}

/// The `attempt`-th candidate address for process `pid`: 127.b.c.d with b, c, d in 1..=250,
/// so never 127.0.0.1, 127.0.0.53 or a .0/.255 address. Different processes start from
/// different places; a process's own DCs differ by `attempt`.
pub fn candidate_address(pid: u32, attempt: u32) -> Ipv4Addr {
    const SPAN: u64 = 250;
    let x = (u64::from(pid) * 1024 + u64::from(attempt)) % (SPAN * SPAN * SPAN);
    let b = (x / (SPAN * SPAN)) % SPAN;
    let c = (x / SPAN) % SPAN;
    let d = x % SPAN;
    Ipv4Addr::new(127, (b + 1) as u8, (c + 1) as u8, (d + 1) as u8)
}

/// A candidate address with nothing listening on the ports a DC serves.
pub(crate) fn free_address(pid: u32, first: u32) -> Result<Ipv4Addr, LabError> {
    free_address_on(pid, first, &[53, 88, 135, 389, 636, 3268, 3269])
}

/// A candidate address with nothing listening on `ports`.
pub(crate) fn free_address_on(pid: u32, first: u32, ports: &[u16]) -> Result<Ipv4Addr, LabError> {
    const TRIES: u32 = 64;
    let listeners = tcp_listeners();
    for i in 0..TRIES {
        let addr = candidate_address(pid, first.wrapping_add(i.wrapping_mul(4096)));
        if !listeners
            .iter()
            .any(|(a, port)| *a == addr && ports.contains(port))
        {
            return Ok(addr);
        }
    }
    Err(LabError::NoFreeAddress { tries: TRIES })
}

/// IPv4 TCP listeners from /proc/net/tcp (address, port).
fn tcp_listeners() -> Vec<(Ipv4Addr, u16)> {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return Vec::new();
    };
    parse_tcp_listeners(&table)
}

/// Parses the kernel's /proc/net/tcp table, keeping sockets in state LISTEN (0A).
pub fn parse_tcp_listeners(table: &str) -> Vec<(Ipv4Addr, u16)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1)?;
            let state = fields.nth(1)?;
            if state != "0A" {
                return None;
            }
            let (ip_hex, port_hex) = local.split_once(':')?;
            let ip = u32::from_str_radix(ip_hex, 16).ok()?;
            let port = u16::from_str_radix(port_hex, 16).ok()?;
            // The kernel prints the network-order address as a native-endian number.
            Some((Ipv4Addr::from(ip.to_ne_bytes()), port))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_addresses_avoid_reserved_ones_and_differ_per_attempt() {
        let mut seen = std::collections::HashSet::new();
        for pid in [1u32, 2, 53, 4096, 65535, 4_194_304, u32::MAX] {
            for attempt in 0..50 {
                let a = candidate_address(pid, attempt);
                let [first, b, c, d] = a.octets();
                assert_eq!(first, 127);
                assert!(b >= 1, "{a} is in 127.0.x.x");
                assert!((1..=250).contains(&c) && (1..=250).contains(&d), "{a}");
                if pid == 4096 {
                    assert!(seen.insert(a), "{a} repeats for pid 4096");
                }
            }
        }
        assert_ne!(candidate_address(1000, 0), candidate_address(1001, 0));
    }

    #[test]
    fn parses_listeners_from_proc_net_tcp() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0200000B:027C 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0\n\
   2: 0200000B:C350 0200000B:027C 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(
            parse_tcp_listeners(table),
            vec![
                (Ipv4Addr::new(11, 0, 0, 2), 636),
                (Ipv4Addr::new(127, 0, 0, 1), 53)
            ]
        );
    }

    #[test]
    fn reads_lab_env_values() {
        let env = "LAB_DIR='/x y'\nLAB_ADDR=127.1.2.3\nLAB_PID=42\n";
        assert_eq!(lab_env_value(env, "LAB_PID"), Some("42"));
        assert_eq!(lab_env_value(env, "LAB_DIR"), Some("/x y"));
        assert_eq!(lab_env_value(env, "LAB_AD"), None);
    }
}
