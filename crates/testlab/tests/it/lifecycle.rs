//! DCs never outlive their owner: stop, drop on panic, process exit, kill -9.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use exo_writeback_testlab::{LabDc, LabOptions, processes_in};

use crate::support::{eventually, ok, process_alive, values};

const CHILD_MODE: &str = "EXO_TESTLAB_CHILD_MODE";

fn root_dse_context(dc: &LabDc) -> Vec<String> {
    let out = ok(dc.ldap_tool("ldapsearch").args([
        "-LLL",
        "-b",
        "",
        "-s",
        "base",
        "defaultNamingContext",
    ]));
    values(&out, "defaultNamingContext")
}

#[test]
fn two_dcs_run_side_by_side_on_their_own_addresses() {
    let a = LabDc::start(LabOptions::default()).expect("first DC");
    let b = LabDc::start(LabOptions::default()).expect("second DC");
    assert_ne!(a.addr, b.addr);
    assert_ne!(a.dir, b.dir);
    assert!(
        a.dir.starts_with(LabDc::repo_root().join("target/lab-run"))
            || std::env::var_os("EXO_LAB_RUN_DIR").is_some()
    );
    assert_eq!(root_dse_context(&a), root_dse_context(&b));
    let (a_dir, a_pid) = (a.dir.clone(), a.pid);
    drop(a);
    assert!(!a_dir.exists());
    assert!(!process_alive(a_pid));
    assert_eq!(
        root_dse_context(&b),
        ["DC=lab,DC=example,DC=test"],
        "the other DC still answers"
    );
}

#[test]
fn a_dc_is_stopped_when_its_test_panics() {
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let dc = LabDc::start(LabOptions::default()).expect("DC starts");
        tx.send((dc.dir.clone(), dc.pid)).expect("send");
        panic!("a failing test holding a lab DC");
    })
    .join();
    assert!(result.is_err(), "the thread panicked");
    let (dir, pid) = rx.recv().expect("the DC had started");
    assert!(!dir.exists(), "{} was not removed", dir.display());
    assert!(!process_alive(pid), "samba {pid} survived the panic");
    assert_eq!(processes_in(&dir), Vec::<u32>::new());
}

/// A child test process, killed if the parent test fails early.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs this test binary again, only `test`, in a child mode; returns the child.
fn spawn_child(test: &str, mode: &str) -> ChildGuard {
    let exe = std::env::current_exe().expect("the test binary's path");
    let child = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_MODE, mode)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the test binary runs again");
    ChildGuard(child)
}

/// Reads the child's stdout until it reports its DC ("LAB <dir> <pid>").
fn child_dc(child: &mut std::process::Child) -> (PathBuf, u32) {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next() {
        let line = line.expect("child output");
        // The harness prints the test's name on the same line first.
        if let Some((_, rest)) = line.split_once("LAB ") {
            let (dir, pid) = rest.rsplit_once(' ').expect("LAB <dir> <pid>");
            // Keep reading, so the child never writes into a closed pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return (PathBuf::from(dir), pid.parse().expect("pid"));
        }
    }
    panic!("the child process never reported its DC");
}

#[test]
fn the_shared_dc_stops_when_the_process_exits() {
    if std::env::var(CHILD_MODE).as_deref() == Ok("shared") {
        let dc = LabDc::shared();
        println!("LAB {} {}", dc.dir.display(), dc.pid);
        assert_eq!(root_dse_context(dc), ["DC=lab,DC=example,DC=test"]);
        return;
    }
    let mut child = spawn_child(
        "lifecycle::the_shared_dc_stops_when_the_process_exits",
        "shared",
    );
    let (dir, pid) = child_dc(&mut child.0);
    let status = child.0.wait().expect("child exits");
    assert!(status.success(), "the child test failed: {status}");
    // The atexit handler ran lab/down before the process ended.
    assert!(!dir.exists(), "{} survived the process", dir.display());
    assert!(!process_alive(pid), "samba {pid} survived the process");
    assert_eq!(processes_in(&dir), Vec::<u32>::new());
}

#[test]
fn a_killed_test_process_leaves_no_dc_behind() {
    if std::env::var(CHILD_MODE).as_deref() == Ok("killed") {
        let dc = LabDc::start(LabOptions::default()).expect("DC starts");
        println!("LAB {} {}", dc.dir.display(), dc.pid);
        // Wait to be killed; the generous limit only keeps a lost child from living forever.
        std::thread::sleep(std::time::Duration::from_secs(300));
        return;
    }
    let mut child = spawn_child(
        "lifecycle::a_killed_test_process_leaves_no_dc_behind",
        "killed",
    );
    let (dir, pid) = child_dc(&mut child.0);
    assert!(process_alive(pid), "the child's DC runs");
    child.0.kill().expect("SIGKILL the child");
    let _ = child.0.wait();
    // The watchdog notices within a second or two and runs lab/down.
    assert!(
        eventually(60, || !dir.exists() && !process_alive(pid)),
        "the watchdog did not stop samba {pid} in {}",
        dir.display()
    );
    assert_eq!(processes_in(&dir), Vec::<u32>::new());
}
