//! Which DCs the agent uses, kept beside the state for `status`: `dc-status.json` in
//! `sync.state_dir`, written when a process connects to the forest and again whenever a
//! connection moves to another DC. The last failover survives later starts (a new process
//! connects without failing over). A file rather than the state database: it describes this
//! machine's connections, not the writeback, and a stale one is only informative.

use std::path::{Path, PathBuf};

use exo_writeback_ad::domain::{DcStatus, Failover};
use exo_writeback_ad::forest_directory::ForestStatus;
use serde::{Deserialize, Serialize};

/// The file's name in the state directory.
pub const FILE: &str = "dc-status.json";

/// One connection: a domain's DC (or the global catalog's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DcInUse {
    pub domain: String,
    pub dc: String,
    /// How it was found (configured, DNS SRV …).
    pub source: String,
    pub read_only: bool,
    pub global_catalog: bool,
    /// Candidates passed over and why (a read-only DC for writes …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

/// A move from one DC to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverRecord {
    /// RFC 3339.
    pub at: String,
    pub domain: String,
    pub from: String,
    pub to: String,
    pub reason: String,
}

/// What `status` shows of the forest's connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DcStatusRecord {
    /// When it was written (RFC 3339).
    pub updated_at: String,
    /// One line per domain of the forest.
    pub forest: Vec<String>,
    pub domains: Vec<DcInUse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_catalog: Option<DcInUse>,
    /// Failovers of the process that wrote the file, oldest first.
    #[serde(default)]
    pub failovers: Vec<FailoverRecord>,
    /// The last failover ever recorded (also from an earlier process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failover: Option<FailoverRecord>,
}

fn in_use(s: &DcStatus) -> DcInUse {
    DcInUse {
        domain: s.domain.clone(),
        dc: s.dc.clone(),
        source: s.source.to_string(),
        read_only: s.read_only,
        global_catalog: s.global_catalog,
        skipped: s
            .skipped
            .iter()
            .map(|(dc, why)| format!("{dc}: {why}"))
            .collect(),
    }
}

fn failover(f: &Failover) -> FailoverRecord {
    FailoverRecord {
        at: jiff::Timestamp::try_from(f.at)
            .map(|t| t.to_string())
            .unwrap_or_default(),
        domain: f.domain.clone(),
        from: f.from.clone(),
        to: f.to.clone(),
        reason: f.reason.clone(),
    }
}

impl std::fmt::Display for DcInUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: DC {} ({}", self.domain, self.dc, self.source)?;
        if self.read_only {
            f.write_str(", read-only")?;
        }
        if self.global_catalog {
            f.write_str(", global catalog")?;
        }
        f.write_str(")")
    }
}

impl std::fmt::Display for FailoverRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} domain {}: moved from DC {} to DC {}: {}",
            self.at, self.domain, self.from, self.to, self.reason
        )
    }
}

/// The record of `status`, keeping `previous`'s last failover when `status` has none.
pub fn record(status: &ForestStatus, previous: Option<DcStatusRecord>) -> DcStatusRecord {
    let mut all: Vec<&Failover> = status
        .domains
        .iter()
        .chain(status.global_catalog.as_ref())
        .flat_map(|d| d.failovers.iter())
        .collect();
    all.sort_by_key(|f| f.at);
    let failovers: Vec<FailoverRecord> = all.into_iter().map(failover).collect();
    let last_failover = failovers
        .last()
        .cloned()
        .or_else(|| previous.and_then(|p| p.last_failover));
    DcStatusRecord {
        updated_at: jiff::Timestamp::now().to_string(),
        forest: status.forest.clone(),
        domains: status.domains.iter().map(in_use).collect(),
        global_catalog: status.global_catalog.as_ref().map(in_use),
        failovers,
        last_failover,
    }
}

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// The record in `state_dir`, if there is a readable one.
pub fn read(state_dir: &Path) -> Option<DcStatusRecord> {
    let text = std::fs::read_to_string(path(state_dir)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes the record of `status` (atomically: a temporary file renamed). A failure is logged,
/// never an error: the file only informs `status`.
pub fn write(state_dir: &Path, status: &ForestStatus) {
    let record = record(status, read(state_dir));
    let target = path(state_dir);
    let tmp = state_dir.join(format!(".{FILE}.tmp"));
    let result = serde_json::to_vec_pretty(&record)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&tmp, bytes))
        .and_then(|()| std::fs::rename(&tmp, &target));
    if let Err(e) = result {
        tracing::warn!(file = %target.display(), error = %e, "cannot record the DCs in use for status");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exo_writeback_ad::locator::DcSource;
    use std::time::{Duration, SystemTime};

    fn dc(domain: &str, dc: &str, failovers: Vec<Failover>) -> DcStatus {
        DcStatus {
            domain: domain.into(),
            dc: dc.into(),
            source: DcSource::Configured,
            read_only: false,
            global_catalog: true,
            skipped: vec![("rodc1".into(), "read-only DC".into())],
            failovers,
        }
    }

    #[test]
    fn the_last_failover_outlives_the_process_that_saw_it() {
        let moved = Failover {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            domain: "lab.example.test".into(),
            from: "dc1".into(),
            to: "dc2".into(),
            reason: "unreachable".into(),
        };
        let first = ForestStatus {
            forest: vec!["lab.example.test".into()],
            domains: vec![dc("lab.example.test", "dc2", vec![moved])],
            global_catalog: None,
        };
        let written = record(&first, None);
        let last = written.last_failover.clone().expect("the move");
        assert_eq!((last.from.as_str(), last.to.as_str()), ("dc1", "dc2"));
        assert!(last.at.starts_with("2027-01-15"), "{}", last.at);
        assert_eq!(written.domains[0].skipped, ["rodc1: read-only DC"]);
        let next_start = ForestStatus {
            domains: vec![dc("lab.example.test", "dc1", vec![])],
            ..first
        };
        let again = record(&next_start, Some(written));
        assert!(again.failovers.is_empty());
        assert_eq!(again.last_failover, Some(last));
        assert_eq!(again.domains[0].dc, "dc1");
    }
}
