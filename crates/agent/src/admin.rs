//! An administrator's decisions on the state, which need neither AD nor Exchange Online:
//! pausing and resuming the job, rejecting a held cycle, releasing pins. Each writes the state
//! behind the state lock (waiting for a running cycle, as every writer does).

use exo_writeback_core::provisioning::{CycleId, Pause, PinCount};
use exo_writeback_engine::CycleReport;
use exo_writeback_store_sqlite::LogQuery;
use exo_writeback_store_sqlite::prelude::*;
use jiff::Timestamp;
use uuid::Uuid;

use crate::config::Config;
use crate::error::AgentError;
use crate::state::WriteLock;

/// Who runs this command: the account behind `sudo` (`SUDO_USER`), else `USER` or `LOGNAME`,
/// else the process's user as the system names it.
pub fn operator() -> String {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let user = var("USER").or_else(|| var("LOGNAME")).or_else(system_user);
    match (var("SUDO_USER"), user) {
        (Some(sudo), Some(user)) if sudo != user => format!("{sudo} (as {user})"),
        (Some(sudo), _) => sudo,
        (None, Some(user)) => user,
        (None, None) => format!("an unnamed user (pid {})", std::process::id()),
    }
}

/// The name of the process's real user (Linux: `/proc/self/status` and `/etc/passwd`).
fn system_user() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let name = passwd.lines().find_map(|l| {
        let mut fields = l.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid).then(|| name.to_string())
    });
    Some(name.unwrap_or_else(|| format!("uid {uid}")))
}

/// The store, behind the state lock or writer lease (held as long as the returned lock lives).
async fn locked_store(
    config: &Config,
    holder: &str,
) -> Result<(Box<dyn Store>, WriteLock), AgentError> {
    let lock = WriteLock::acquire(config, holder).await?;
    Ok((lock.store()?, lock))
}

/// Pauses the job: cycles stop (a running `run` keeps running and says so each interval;
/// `sync` refuses) until [`resume`]. Returns the pause, and the one already in effect if the
/// job was paused before (it is replaced).
/// `by` names who pauses it (the [`operator`] of a command, an API token's holder).
pub async fn pause(
    config: &Config,
    by: &str,
    reason: Option<&str>,
) -> Result<(Pause, Option<Pause>), AgentError> {
    let (mut store, _lock) = locked_store(config, "exo-writeback pause").await?;
    let pause = Pause {
        by: by.to_string(),
        since: Timestamp::now(),
        reason: reason.map(str::to_string),
    };
    let before = store.set_pause(Some(&pause))?;
    Ok((pause, before))
}

/// Resumes the job; returns the pause that was lifted (`None`: it was not paused).
pub async fn resume(config: &Config) -> Result<Option<Pause>, AgentError> {
    let (mut store, _lock) = locked_store(config, "exo-writeback resume").await?;
    Ok(store.set_pause(None)?)
}

/// Rejects the changes held by `cycle` (see `exo_writeback_engine::reject`); `by` names who
/// rejects them.
pub async fn reject(
    config: &Config,
    cycle: CycleId,
    by: &str,
    reason: Option<&str>,
) -> Result<CycleReport, AgentError> {
    let holder = format!("exo-writeback reject {cycle}");
    let (mut store, _lock) = locked_store(config, &holder).await?;
    Ok(exo_writeback_engine::reject::reject(
        &mut store, cycle, by, reason,
    )?)
}

/// What `unpin` releases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unpin {
    /// The pins of one object: an objectGUID, DN, ExternalDirectoryObjectId, primary SMTP
    /// address or UPN the provisioning log knows it by.
    Object(String),
    All,
}

/// Releases pins; the next cycle writes the Exchange Online values of those attributes.
/// Returns what was released and the object it was resolved to.
pub async fn unpin(config: &Config, what: &Unpin) -> Result<(PinCount, Option<Uuid>), AgentError> {
    let (mut store, _lock) = locked_store(config, "exo-writeback unpin").await?;
    match what {
        Unpin::All => Ok((store.unpin(None)?, None)),
        Unpin::Object(identity) => {
            let guid = object_of(&store, identity)?.ok_or_else(|| {
                AgentError::UnknownObject(format!(
                    "no AD object is known for {identity:?}: give its objectGUID, DN, \
                     ExternalDirectoryObjectId, primary SMTP address or UPN as the provisioning \
                     log shows it (`exo-writeback status` lists the pins)"
                ))
            })?;
            Ok((store.unpin(Some(&guid))?, Some(guid)))
        }
    }
}

/// The AD object an identity names: an objectGUID, a pinned object's DN, or the target of the
/// newest log entry found by that identity (ExternalDirectoryObjectId, SMTP address, UPN, DN).
fn object_of(store: &dyn Store, identity: &str) -> Result<Option<Uuid>, AgentError> {
    let id = identity.trim();
    if let Ok(g) = Uuid::parse_str(id)
        && store.join(id)?.is_none()
    {
        return Ok(Some(g));
    }
    let entries = store.query_logs(&LogQuery {
        identity: Some(id.to_string()),
        limit: 50,
        ..LogQuery::default()
    })?;
    if let Some(g) = entries.iter().find_map(|e| e.target.object_guid) {
        return Ok(Some(g));
    }
    let bare = exo_writeback_core::mailbox::bare_cloud_id(id);
    Ok(store.join(bare)?.map(|j| j.object_guid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_is_named() {
        let who = operator();
        assert!(!who.trim().is_empty());
        assert!(!who.starts_with("an unnamed user"), "{who}");
    }
}
