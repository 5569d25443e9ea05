//! The cluster as `status` shows it: who leads (host, pid, since), who writes now, the agents
//! standing by, and the last takeover with its reason.

use std::time::Duration;

use jiff::Timestamp;
use postgres::Client;
use serde::Serialize;

use crate::error::E;
use crate::lease::Holder;
use crate::pg::get;

/// The agents sharing one state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cluster {
    /// The agent running cycles (`None`: none, or its lease lapsed).
    pub leader: Option<Holder>,
    /// Who writes the state and AD at this instant (a cycle, a command), if anyone.
    pub writer: Option<Holder>,
    /// Every agent seen renewing within the last three lease times, oldest first; those that
    /// do not lead stand by.
    pub agents: Vec<AgentSeen>,
    /// The latest change of leader.
    pub last_takeover: Option<Takeover>,
    /// How many changes of leader the state has seen.
    pub takeovers: u64,
    /// The lease time this agent uses.
    pub lease_secs: f64,
}

impl Cluster {
    /// The agents that do not lead.
    pub fn standbys(&self) -> impl Iterator<Item = &AgentSeen> {
        self.agents.iter().filter(|a| !a.leader)
    }
}

/// An agent of the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentSeen {
    pub host: String,
    pub pid: u32,
    pub command: String,
    pub started_at: Timestamp,
    pub seen_at: Timestamp,
    pub leader: bool,
}

/// A change of leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Takeover {
    pub at: Timestamp,
    pub epoch: i64,
    pub host: String,
    pub pid: u32,
    pub command: String,
    /// The leader before (`host pid N`), if there was one.
    pub previous: Option<String>,
    pub reason: String,
}

fn pid(p: i32) -> u32 {
    u32::try_from(p).unwrap_or(0)
}

fn holder(row: &postgres::Row) -> Result<Option<Holder>, E> {
    let live: bool = get(row, 7)?;
    let host: Option<String> = get(row, 1)?;
    if !live || host.is_none() {
        return Ok(None);
    }
    Ok(Some(Holder {
        host: host.unwrap_or_default(),
        pid: pid(get::<Option<i32>>(row, 2)?.unwrap_or(0)),
        command: get::<Option<String>>(row, 3)?.unwrap_or_default(),
        since: get::<Option<Timestamp>>(row, 4)?.unwrap_or(Timestamp::UNIX_EPOCH),
        expires_at: get::<Option<Timestamp>>(row, 5)?.unwrap_or(Timestamp::UNIX_EPOCH),
        epoch: get(row, 6)?,
    }))
}

pub(crate) fn read(c: &mut Client, ttl: Duration) -> Result<Cluster, E> {
    let mut leader = None;
    let mut writer = None;
    let mut leader_id = None;
    for row in c.query(
        "SELECT name, host, pid, command, since, expires_at, epoch,
                holder IS NOT NULL AND expires_at > clock_timestamp(), holder
         FROM leases",
        &[],
    )? {
        let name: String = get(&row, 0)?;
        let h = holder(&row)?;
        if name == "leader" {
            if h.is_some() {
                leader_id = get::<Option<uuid::Uuid>>(&row, 8)?;
            }
            leader = h;
        } else {
            writer = h;
        }
    }
    let window = 3.0 * ttl.as_secs_f64();
    let agents = c
        .query(
            "SELECT id, host, pid, command, started_at, seen_at FROM agents
             WHERE seen_at > clock_timestamp() - make_interval(secs => $1)
             ORDER BY started_at, id",
            &[&window],
        )?
        .iter()
        .map(|r| {
            Ok(AgentSeen {
                leader: Some(get::<uuid::Uuid>(r, 0)?) == leader_id,
                host: get(r, 1)?,
                pid: pid(get(r, 2)?),
                command: get(r, 3)?,
                started_at: get(r, 4)?,
                seen_at: get(r, 5)?,
            })
        })
        .collect::<Result<Vec<_>, E>>()?;
    let last_takeover = c
        .query_opt(
            "SELECT at, epoch, host, pid, command, previous_host, previous_pid, reason
             FROM takeovers WHERE lease = 'leader' ORDER BY seq DESC LIMIT 1",
            &[],
        )?
        .map(|r| {
            let previous_host: Option<String> = get(&r, 5)?;
            let previous_pid: Option<i32> = get(&r, 6)?;
            Ok::<_, E>(Takeover {
                at: get(&r, 0)?,
                epoch: get(&r, 1)?,
                host: get(&r, 2)?,
                pid: pid(get(&r, 3)?),
                command: get(&r, 4)?,
                previous: previous_host.map(|h| format!("{h} pid {}", previous_pid.map_or(0, pid))),
                reason: get(&r, 7)?,
            })
        })
        .transpose()?;
    let takeovers: i64 = get(
        &c.query_one("SELECT count(*) FROM takeovers WHERE lease = 'leader'", &[])?,
        0,
    )?;
    Ok(Cluster {
        leader,
        writer,
        agents,
        last_takeover,
        takeovers: u64::try_from(takeovers).unwrap_or(0),
        lease_secs: ttl.as_secs_f64(),
    })
}

/// Why this agent becomes the leader, from the lease row it found.
pub(crate) fn describe_takeover(
    held_before: bool,
    host: Option<&str>,
    pid: Option<i32>,
    command: Option<&str>,
    released_at: Option<Timestamp>,
    expires_at: Option<Timestamp>,
    now: Timestamp,
) -> String {
    let who = match (host, pid) {
        (Some(h), Some(p)) => format!(
            "`{}` on {h} (pid {p})",
            command.unwrap_or("exo-writeback run")
        ),
        _ => "the previous leader".to_string(),
    };
    if !held_before {
        return "first leader of this state".into();
    }
    if let Some(at) = released_at {
        return format!("{who} stopped and gave the lease back at {at}");
    }
    match expires_at {
        Some(at) => {
            let overdue = now.duration_since(at).as_secs_f64().max(0.0);
            format!(
                "the lease of {who} expired at {at} ({overdue:.1} s ago): it was not renewed — \
                 the agent stopped, froze, or lost the database"
            )
        }
        None => format!("{who} held no live lease"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takeover_reasons_say_what_happened_to_the_previous_leader() {
        let t = |s: &str| -> Timestamp { s.parse().expect("ts") };
        let now = t("2026-03-01T08:00:10Z");
        assert_eq!(
            describe_takeover(false, None, None, None, None, None, now),
            "first leader of this state"
        );
        let released = describe_takeover(
            true,
            Some("srv-a"),
            Some(41),
            Some("exo-writeback run"),
            Some(t("2026-03-01T08:00:09Z")),
            None,
            now,
        );
        assert!(
            released.contains("`exo-writeback run` on srv-a (pid 41) stopped"),
            "{released}"
        );
        let expired = describe_takeover(
            true,
            Some("srv-a"),
            Some(41),
            Some("exo-writeback run"),
            None,
            Some(t("2026-03-01T08:00:07.5Z")),
            now,
        );
        assert!(
            expired.contains("expired at 2026-03-01T08:00:07.5Z (2.5 s ago)"),
            "{expired}"
        );
        assert!(expired.contains("srv-a (pid 41)"), "{expired}");
    }
}
