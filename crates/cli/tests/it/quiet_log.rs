//! A healthy lab logs no warning: an administrator reads every WARN line as something to act
//! on, so the initial cycle, a delta with a change and a full reconcile against a DC and a
//! tenant that are both fine must log none — apart from the one the harness asks for
//! (`allow_insecure_http`: the emulator is plain HTTP on a loopback address).

use crate::harness::Lab;

/// The warning the harness's configuration causes on purpose.
const EXPECTED: &str = "plain http to a loopback address";

fn warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(" WARN ") && !l.contains(EXPECTED))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_cycles_log_no_warning() {
    let lab = Lab::start(6).await;
    lab.update(3, |m| m.set_custom_attribute(1, "changed in the cloud"));
    for (step, args) in [
        ("initial", &["sync", "--json"][..]),
        ("delta", &["sync", "--json"][..]),
        ("full reconcile", &["sync", "--full", "--json"][..]),
    ] {
        if step == "delta" {
            lab.update(5, |m| m.set_custom_attribute(2, "a later change"));
        }
        let r = lab.run(args).await;
        assert_eq!(r.code, 0, "{step}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains(EXPECTED),
            "{step}: the harness's own warning is logged, so WARN lines reach stderr: {}",
            r.stderr
        );
        assert_eq!(
            warnings(&r.stderr),
            Vec::<&str>::new(),
            "{step}: {}",
            r.stderr
        );
    }
}
