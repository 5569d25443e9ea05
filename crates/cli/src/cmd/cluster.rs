//! The cluster of agents sharing a PostgreSQL state, as `status` prints it.

use exo_writeback_agent::state::Cluster;

/// `cluster:` and the lines under it: who leads (host, pid, since), who writes now, each
/// standby, and the last takeover with its reason.
pub fn lines(c: &Cluster, location: &str) -> Vec<String> {
    let mut out = vec![format!(
        "cluster:    {} agent(s) on {location} (lease {}s)",
        c.agents.len(),
        c.lease_secs
    )];
    out.push(match &c.leader {
        Some(l) => format!(
            "  leader:   {} pid {} (`{}`) since {}, lease epoch {}",
            l.host, l.pid, l.command, l.since, l.epoch
        ),
        None => {
            "  leader:   none — no agent runs cycles (a standby takes over within one lease time)"
                .into()
        }
    });
    if let Some(w) = &c.writer {
        out.push(format!(
            "  writing:  {} pid {} (`{}`) since {}",
            w.host, w.pid, w.command, w.since
        ));
    }
    for a in c.standbys() {
        out.push(format!(
            "  standby:  {} pid {} (`{}`) since {}, last seen {}",
            a.host, a.pid, a.command, a.started_at, a.seen_at
        ));
    }
    match &c.last_takeover {
        Some(t) => out.push(format!(
            "  takeover: {} pid {} at {} (epoch {}; {} in all): {}",
            t.host, t.pid, t.at, t.epoch, c.takeovers, t.reason
        )),
        None => out.push("  takeover: none yet".into()),
    }
    out
}
