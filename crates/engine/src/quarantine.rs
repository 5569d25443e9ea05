//! Quarantine (PRODUCT.md §7): a cycle in which most objects fail for one cause — or that
//! fails as a whole before any object (cannot bind, token endpoint refuses, DC unreachable) —
//! puts the job into `Quarantine` with that cause. Retries slow down (1 min, 5 min, 15 min,
//! 1 h, then 6 h, by consecutive quarantined cycles); the first good cycle clears it
//! (`JobState::Active`). Per-object escrow keeps its own back-off, untouched by this.

use std::collections::BTreeMap;

use exo_writeback_core::outcome::OutcomeCode;
use exo_writeback_core::provisioning::{
    CycleCounts, CycleId, CycleKind, CycleStatus, JobState, quarantine_backoff,
};
use exo_writeback_store::StoreError;
use exo_writeback_store::prelude::*;
use jiff::Timestamp;

/// Fewer failed objects than this never quarantine the job (one bad mailbox in a tiny tenant
/// is an escrow matter, not a systemic cause).
pub const MIN_FAILED_OBJECTS: u64 = 3;

/// How many recent cycles are looked at to count consecutive quarantined ones.
const HISTORY: usize = 16;

/// The cause that quarantines a completed cycle, if any: one cause accounts for more than
/// half of the objects in scope (mailboxes out of scope do not dilute it), and for at least
/// [`MIN_FAILED_OBJECTS`].
/// `causes` counts failed objects by outcome code; `examples` holds one reason per code.
pub fn dominant_cause(
    counts: &CycleCounts,
    causes: &BTreeMap<OutcomeCode, u64>,
    examples: &BTreeMap<OutcomeCode, String>,
) -> Option<String> {
    let (code, n) = causes.iter().max_by_key(|(_, n)| **n)?;
    if *n < MIN_FAILED_OBJECTS || *n * 2 <= counts.in_scope {
        return None;
    }
    let example = examples
        .get(code)
        .map(|e| format!(" — e.g. {e}"))
        .unwrap_or_default();
    Some(format!(
        "{n} of {} objects in scope failed with {code}{example}",
        counts.in_scope
    ))
}

/// Whether the job may run a cycle at `now`: `Err((reason, next_retry))` while quarantined
/// and the next retry is not due yet.
pub fn check(state: &JobState, now: Timestamp) -> Result<(), (String, Timestamp)> {
    match state {
        JobState::Quarantine {
            reason, next_retry, ..
        } if now < *next_retry => Err((reason.clone(), *next_retry)),
        _ => Ok(()),
    }
}

/// Put the job into quarantine after a cycle the store already recorded as
/// `CycleStatus::Quarantined`: the back-off grows with the number of consecutive quarantined
/// cycles (this one included). Keeps `since` of a quarantine already in effect.
pub fn enter<St: Store>(
    store: &mut St,
    reason: &str,
    now: Timestamp,
) -> Result<JobState, StoreError> {
    let consecutive = store
        .recent_cycles(HISTORY)?
        .iter()
        .filter(|c| c.status != CycleStatus::Running && c.status != CycleStatus::Interrupted)
        .take_while(|c| matches!(c.status, CycleStatus::Quarantined { .. }))
        .count()
        .max(1);
    let since = match store.job_state()? {
        JobState::Quarantine { since, .. } => since,
        _ => now,
    };
    let consecutive = u32::try_from(consecutive).unwrap_or(u32::MAX);
    let next_retry = now
        .checked_add(quarantine_backoff(consecutive))
        .unwrap_or(Timestamp::MAX);
    let state = JobState::Quarantine {
        reason: reason.to_string(),
        since,
        next_retry,
    };
    store.set_job_state(&state)?;
    tracing::warn!(reason, %next_retry, consecutive, "job quarantined: most of the cycle failed for one cause; retries slow down until a good cycle (`exo-writeback restart --scope quarantine` retries now)");
    Ok(state)
}

/// Record a cycle that could not start at all (the agent could not bind to AD, …) as a
/// quarantined cycle, and quarantine the job. Returns the new job state.
pub fn record_failed_start<St: Store>(
    store: &mut St,
    reason: &str,
    now: Timestamp,
) -> Result<JobState, StoreError> {
    let kind = match store.watermark()? {
        Some(_) => CycleKind::Delta,
        None => CycleKind::Initial,
    };
    let cycle: CycleId = store.begin_cycle(kind, now)?;
    store.finish_cycle(
        cycle,
        now,
        &CycleCounts::default(),
        &CycleStatus::Quarantined {
            reason: reason.to_string(),
        },
    )?;
    enter(store, reason, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(imported: u64, failed: u64) -> CycleCounts {
        CycleCounts {
            imported,
            in_scope: imported,
            failed,
            ..CycleCounts::default()
        }
    }

    /// Mailboxes out of scope do not dilute a systemic failure: the cause counts against the
    /// objects in scope (issue 18).
    #[test]
    fn the_dominant_cause_counts_against_the_objects_in_scope() {
        let causes: BTreeMap<OutcomeCode, u64> = [(OutcomeCode::LdapError, 4)].into();
        let ex: BTreeMap<OutcomeCode, String> =
            [(OutcomeCode::LdapError, "LDAP result 50".to_string())].into();
        let c = CycleCounts {
            imported: 20,
            in_scope: 6,
            skipped: 14,
            failed: 4,
            ..CycleCounts::default()
        };
        let reason = dominant_cause(&c, &causes, &ex).expect("quarantined");
        assert!(
            reason.starts_with("4 of 6 objects in scope failed with LdapError"),
            "{reason}"
        );
    }

    #[test]
    fn dominant_cause_needs_most_objects_and_a_minimum() {
        let ex: BTreeMap<OutcomeCode, String> =
            [(OutcomeCode::LdapError, "LDAP result 50".to_string())].into();
        // (imported, [(code, n)], quarantined?)
        type Case<'a> = (u64, &'a [(&'a str, u64)], bool);
        let cases: &[Case] = &[
            (10, &[("LdapError", 6)], true),
            (10, &[("LdapError", 5)], false),
            (10, &[("LdapError", 4), ("SchemaConstraint", 4)], false),
            (2, &[("LdapError", 2)], false),
            (3, &[("LdapError", 3)], true),
            (100, &[], false),
        ];
        for (imported, causes, want) in cases {
            let c: BTreeMap<OutcomeCode, u64> = causes
                .iter()
                .map(|(k, n)| (OutcomeCode::parse(k).expect("code"), *n))
                .collect();
            let failed = c.values().sum();
            let got = dominant_cause(&counts(*imported, failed), &c, &ex);
            assert_eq!(got.is_some(), *want, "{imported} {causes:?}: {got:?}");
            if let Some(r) = got {
                assert!(
                    r.contains("LdapError") && r.contains("LDAP result 50"),
                    "{r}"
                );
            }
        }
    }

    #[test]
    fn check_refuses_until_the_next_retry() {
        let t: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
        let state = JobState::Quarantine {
            reason: "invalid credentials".into(),
            since: t,
            next_retry: t + jiff::SignedDuration::from_mins(1),
        };
        assert!(check(&state, t).is_err());
        assert!(check(&state, t + jiff::SignedDuration::from_secs(59)).is_err());
        assert!(check(&state, t + jiff::SignedDuration::from_mins(1)).is_ok());
        assert!(check(&JobState::Active, t).is_ok());
    }
}
